"""The live cache and the controller when the connection to the apiserver breaks the ways a network breaks
it: a TCP proxy (webhook.dev.tcpproxy) in front of the real apiserver resets its connections, or lets
them go silent without closing them (a peer gone without a reset, or one that acknowledges and sends
nothing). Own control plane (module fixture `cluster`): Nodes are created and a CRD is changed."""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

import webhook.controller.controller as controller_module
from webhook.agent import nodestate
from webhook.agent.agent import Agent as RealAgent
from webhook.agent.agent import AgentConfig
from webhook.agent.probe import HostLayout
from webhook.agent.standin import StandInHost, StandInNode
from webhook.cluster.live import LiveClusterView, Resource
from webhook.cluster.store import NAD, NETWORK_PROFILE, NODE, POD
from webhook.controller.controller import KINDS, REPAIR_KINDS, Controller, ControllerConfig
from webhook.controller.lease import LeaderElector
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.dev.stubhook import StubWebhook, allow, refuse
from webhook.dev.tcpproxy import TcpProxy
from webhook.kube import MERGE_PATCH, format_time, load_client, open_response, request, utcnow
from webhook.names import NAMESPACE, READY_LABEL

pytestmark = pytest.mark.slow
STATES = f"/apis/multus-webhook.io/v1alpha1/namespaces/{NAMESPACE}/multusnodestates"


@pytest.fixture
def proxy(cluster: ControlPlane) -> Iterator[TcpProxy]:
    p = TcpProxy(cluster.port)
    yield p
    p.close()


@pytest.fixture
def proxied(cluster: ControlPlane, proxy: TcpProxy, tmp_path: Path) -> ApiClient:
    """A client whose connections go through the proxy."""
    return load_client(str(proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied.kubeconfig")))


@pytest.fixture
def ns(cluster: ControlPlane) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def nad(name: str, namespace: str) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": "eth1", "ipam": {"type": "static"}}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": json.dumps(config)}}


def create(cp: ControlPlane, obj: dict[str, Any]) -> None:
    cp.kubectl("create", "-f", "-", input=json.dumps(obj))


def started(view: LiveClusterView) -> LiveClusterView:
    view.start()
    eventually(lambda: view.known, "the first sync")
    return view


def watching(view: LiveClusterView) -> LiveClusterView:
    """started(), and every kind's watch open. The first sync is the lists; each kind's watch opens after
    its own list: a test that stalls, resets or clears the connections right after ``known`` could act
    before a watch opened, and catch the watch's request instead of its stream (CI once did)."""
    started(view)
    eventually(lambda: all(r.kind in view._open for r in view.resources), "every kind's watch to open")
    return view


def test_every_connection_to_the_apiserver_is_kept_alive_by_tcp(cluster: ControlPlane) -> None:
    """A watch whose connection vanished without a reset fails within about 30s, not never."""
    raw = open_response(load_client(str(cluster.kubeconfig)), "GET", "/api/v1/namespaces",
                        query=[("watch", "true"), ("timeoutSeconds", "5")])
    try:
        sock = raw.connection.sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert [sock.getsockopt(socket.IPPROTO_TCP, option) for option in
                (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT)] == [15, 5, 3]
    finally:
        raw.close()
        raw.release_conn()


def test_a_silent_watch_is_found_dead_counted_out_of_contact_and_resumed(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient, ns: str,
        caplog: pytest.LogCaptureFixture) -> None:
    view = watching(LiveClusterView(proxied, kinds=(NAD,), watch_silence=3))
    try:
        assert view.readiness() == (True, "ok")
        proxy.stall()  # the watch's connection, and every new one, carries nothing and is not closed
        create(cluster, nad("during", ns))
        eventually(lambda: view.out_of_contact(NAD) > 0, "the silent watch found dead")
        ready, reason = view.readiness()
        assert ready, reason
        assert reason.startswith("ok, answering from the cache: no contact with the apiserver for "), reason
        assert "no event or bookmark for 3s: the watch is taken for dead" in caplog.text
        proxy.resume()
        eventually(lambda: view.nad(ns, "during"), "the NAD created meanwhile, through a new connection")
    finally:
        view.stop()


class Recording(LiveClusterView):
    """Notes the names of the objects it stores and the resourceVersion of each watch it opens."""

    def __init__(self, api: ApiClient, **kwargs: Any) -> None:
        super().__init__(api, **kwargs)
        self.stored: list[str] = []
        self.watched_from: list[str] = []

    def upsert(self, kind: str, obj: Any) -> None:
        self.stored.append(obj["metadata"]["name"])
        super().upsert(kind, obj)

    def _request(self, path: str, query: list[tuple[str, str]], accept: str, read_timeout: float) -> Any:
        if ("watch", "true") in query:
            self.watched_from.append(dict(query)["resourceVersion"])
        return super()._request(path, query, accept, read_timeout)


def test_a_watch_broken_by_a_reset_resumes_after_the_last_event_it_delivered(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient, ns: str) -> None:
    view = Recording(proxied, kinds=(NAD,))
    watching(view)
    try:
        for name in ("a", "b", "c"):
            create(cluster, nad(name, ns))
        eventually(lambda: view.nad(ns, "c"), "the NADs through the watch")
        last = cluster.kubectl("get", "nad", "-n", ns, "c", "-o", "jsonpath={.metadata.resourceVersion}").stdout
        opened = len(view.watched_from)
        proxy.reset()
        eventually(lambda: len(view.watched_from) > opened, "the watch opened again")
        create(cluster, nad("d", ns))
        eventually(lambda: view.nad(ns, "d"), "the NAD created after the reset")
        # Events come in order: a replay of a, b and c would have come before d.
        assert view.stored == ["a", "b", "c", "d"]
        assert int(view.watched_from[opened]) >= int(last)
    finally:
        view.stop()


def test_stopping_after_the_apiserver_reset_a_watch_raises_nothing(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient, ns: str) -> None:
    """stop() shuts each watch's socket down to wake its reader; a socket the peer has reset is not
    connected any more (ENOTCONN), and stop() raised, leaving the other watches running."""
    reading = threading.Event()

    class Held(LiveClusterView):
        def upsert(self, kind: str, obj: Any) -> None:
            reading.set()
            super().upsert(kind, obj)

    view = watching(Held(proxied, kinds=(NAD,)))
    raw = view._open[NAD]
    with view._lock:  # the reader, given an event, waits for the store with its response still open
        create(cluster, nad("x", ns))
        assert reading.wait(10)
        proxy.reset()

        def reset() -> bool:
            try:
                raw.connection.sock.getpeername()
            except OSError:
                return True
            return False

        eventually(reset, "the reset to reach the watch's socket")
        view.stop(timeout=0)
    assert view._stop.is_set()


def test_a_relist_holds_up_neither_the_other_watches_nor_the_controller(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient, ns: str) -> None:
    """A list whose next page does not come (a stalled connection: up to 60s per page) used to hold the
    store's lock, and with it every watch event of every kind and the controller's writes."""
    view = watching(LiveClusterView(proxied, kinds=(NODE, NAD, POD)))
    pods = next(r for r in view.resources if r.kind == POD)
    failed: list[Exception] = []

    def list_pods() -> None:  # what a 410 Gone makes the view do
        try:
            view._list(pods)
        except Exception as exc:  # the proxy's reset ends it
            failed.append(exc)

    relist = threading.Thread(target=list_pods, daemon=True)
    try:
        proxy.stall(open_ones=False)  # the watches go on; a new connection (the relist's) carries nothing
        proxied.rest_client.pool_manager.clear()  # no idle connection for the relist to reuse
        accepted = proxy.accepted
        relist.start()
        eventually(lambda: proxy.accepted > accepted, "the relist's connection")
        create(cluster, nad("during", ns))
        # Well before the relist's connection gives its TLS handshake up (10s), which let the lock go.
        eventually(lambda: view.nad(ns, "during"), "a NAD's watch event while the Pods are listed", timeout=5)
        view.upsert(NODE, {"metadata": {"name": "written-by-the-controller", "resourceVersion": "1"}})
        assert "written-by-the-controller" in view.node_names()
        assert relist.is_alive()
    finally:
        proxy.reset()  # the relist fails
        relist.join(15)
        view.stop()
    assert failed, "the relist ended by the reset"


class Relisting(LiveClusterView):
    """Notes for how long its kind has been out of contact as each list begins and as each page lands."""

    def __init__(self, api: ApiClient, **kwargs: Any) -> None:
        super().__init__(api, **kwargs)
        self.noted: list[tuple[str, float]] = []

    def _list(self, res: Resource) -> str:
        self.noted.append(("list", self.out_of_contact(res.kind)))
        return super()._list(res)

    def replace_pages(self, kind: str, pages: Iterable[Iterable[Mapping[str, Any]]]) -> None:
        def noting() -> Iterator[Iterable[Mapping[str, Any]]]:
            for page in pages:
                self.noted.append(("page", self.out_of_contact(kind)))
                yield page

        super().replace_pages(kind, noting())


def test_a_410_gone_counts_as_out_of_contact_until_the_relists_first_page(
        cluster: ControlPlane, caplog: pytest.LogCaptureFixture) -> None:
    """A CRD that changes (an upgrade of it) gets a new watch cache in the apiserver, which begins at the
    change: the watch the change ends is resumed from a resourceVersion that cache never held and is
    answered 410 Gone, as after an apiserver restart. The relist waits for any list under way (lists run
    one at a time), and until its first page the kind is not fed; it counted as fed (the 410 comes in
    a watch that opened), so MultusNodeStates waiting that way had their heartbeats judged."""
    crd = "network-attachment-definitions.k8s.cni.cncf.io"
    caplog.set_level(logging.INFO, logger=LiveClusterView.__module__)
    view = watching(Relisting(load_client(str(cluster.kubeconfig)), kinds=(NAD,)))
    listed = len(view.noted)
    try:
        with view._listing:  # another kind's list under way: the relist waits for it
            cluster.kubectl("patch", "crd", crd, "--type=json", "-p", json.dumps([
                {"op": "add", "path": "/spec/versions/0/additionalPrinterColumns",
                 "value": [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]))
            eventually(lambda: len(view.noted) > listed, "the relist")
            assert "NetworkAttachmentDefinition: resourceVersion expired (410 Gone)" in caplog.text
            assert view.noted[listed][0] == "list"
            assert view.noted[listed][1] > 0
            assert view.out_of_contact(NAD) > 0
            reason = view.readiness()[1]
            assert "no contact with the apiserver for" in reason, reason
            assert "(last error: NetworkAttachmentDefinition: 410: too old resource version: " in reason, reason
        eventually(lambda: len(view.noted) > listed + 1, "the relist's first page")
        assert view.noted[listed + 1] == ("page", 0.0)
        eventually(lambda: view.readiness() == (True, "ok"), "the relist done")
    finally:
        view.stop()
        cluster.kubectl("patch", "crd", crd, "--type=json", "-p", json.dumps([
            {"op": "remove", "path": "/spec/versions/0/additionalPrinterColumns"}]), check=False)


class WatchCutter(http.server.ThreadingHTTPServer):
    """An HTTP intermediary in front of the real apiserver (plain HTTP to its clients, TLS as the admin to
    the apiserver) that answers every watch with the apiserver's status and ``watch_body``, by default
    none: a load balancer or proxy that ends long responses at once. Lists go through whole."""

    def __init__(self, cp: ControlPlane, watch_body: bytes = b"") -> None:
        context = ssl.create_default_context(cafile=str(cp.pki / "ca.crt"))
        context.load_cert_chain(cp.pki / "admin.crt", cp.pki / "admin.key")
        self.watches: list[float] = []  # when each watch came (monotonic)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream = http.client.HTTPSConnection("127.0.0.1", cp.port, context=context, timeout=30)
                upstream.request("GET", self.path, headers={"Accept": self.headers.get("Accept") or "*/*"})
                response = upstream.getresponse()
                watch = "watch=true" in self.path
                if watch:
                    cutter.watches.append(time.monotonic())
                body = watch_body if watch else response.read()
                self.send_response(response.status)
                self.send_header("Content-Type", response.getheader("Content-Type") or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def log_message(self, *args: Any) -> None:
                pass

        cutter = self
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "cut",
            "clusters": [{"name": "cut", "cluster": {"server": f"http://127.0.0.1:{self.server_address[1]}"}}],
            "users": [{"name": "cut", "user": {}}],
            "contexts": [{"name": "cut", "context": {"cluster": "cut", "user": "cut"}}]}))
        return path


def test_a_watch_that_ends_at_once_is_opened_again_only_after_a_backoff(
        cluster: ControlPlane, tmp_path: Path) -> None:
    """client-go's reflector does the same: without it, the view asked for a new watch as fast as the
    intermediary answered, hundreds of times a second, and counted itself in contact throughout."""
    cutter = WatchCutter(cluster)
    view = started(LiveClusterView(load_client(str(cutter.kubeconfig(tmp_path / "cut.kubeconfig"))), kinds=(NAD,)))
    try:
        eventually(lambda: len(cutter.watches) >= 5, "five watches asked for")
        # Backoffs of 0.2, 0.4, 0.8 and 1.6s (each within 20%) between them.
        assert cutter.watches[4] - cutter.watches[0] >= 0.8 * 3.0
        # Polled, not read once: a watch's opening counts as contact until it is found to have ended at
        # once, so for the moment between its response head and its (empty) end the kind reads fed.
        # A view that counts itself in contact throughout (the bug this test is for) never satisfies it.
        eventually(lambda: (view.out_of_contact(NAD), view.readiness()[1]), "the watches counted out of contact",
                   until=lambda got: got[0] > 0 and "the watch ended at once with no event" in got[1])
    finally:
        view.stop()
        cutter.shutdown()
        cutter.server_close()


def test_a_watch_that_fails_as_it_opens_counts_as_out_of_contact(cluster: ControlPlane, tmp_path: Path) -> None:
    """An apiserver that opens every watch and at once sends an ERROR event (a 500: etcd unable to decrypt,
    say) never feeds the kind. Its opening counted as contact, so the time out of contact never passed
    the backoff cap and the gauge operators alert on stayed low."""
    error = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
                                         "reason": "InternalError", "message": "unable to transform key"}}
    cutter = WatchCutter(cluster, json.dumps(error).encode() + b"\n")
    view = started(LiveClusterView(load_client(str(cutter.kubeconfig(tmp_path / "cut.kubeconfig"))), kinds=(NAD,),
                                   backoff_first=0.05, backoff_cap=0.2))
    try:
        # Both read at one moment outside a watch's opening (see the test above).
        eventually(lambda: (view.out_of_contact(NAD), view.readiness()[1]),
                   "the watches failing counted out of contact", until=lambda got: got[0] > 3 and
                   "(last error: NetworkAttachmentDefinition: 500: unable to transform key)" in got[1])
    finally:
        view.stop()
        cutter.shutdown()
        cutter.server_close()


class Shedding(http.server.ThreadingHTTPServer):
    """An apiserver shedding load (API Priority and Fairness): every request answered 429 with a
    Retry-After. A real one cannot be made to do so on demand."""

    def __init__(self, retry_after: str) -> None:
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
                           "reason": "TooManyRequests", "message": "too many requests"}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(429)
                self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Waits(threading.Event):
    """A stop event that notes how long each wait on it was to last."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_a_429_is_retried_no_sooner_than_its_retry_after(tmp_path: Path) -> None:
    """The reflectors retried after their own backoff (0.2s, doubling up to 5s), whatever the apiserver
    asked for. Its Retry-After is obeyed, up to a minute."""
    server = Shedding("7")
    kubeconfig = tmp_path / "shedding.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "s",
        "clusters": [{"name": "s", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "s", "user": {}}], "contexts": [{"name": "s", "context": {"cluster": "s", "user": "s"}}]}))
    view = LiveClusterView(load_client(str(kubeconfig)), kinds=(NAD,))
    stop = view._stop = Waits()
    view.start()
    try:
        waits = eventually(lambda: list(stop.waits), "the list refused", until=bool)
        assert waits[0] == 7
        assert "429: too many requests" in view.readiness()[1]
    finally:
        view.stop()
        server.shutdown()
        server.server_close()


def service_account_client(cp: ControlPlane, proxy: TcpProxy, namespace: str, path: Path) -> ApiClient:
    """A client through the proxy as a ServiceAccount that may list and watch NADs (ClusterRoleBinding
    ``namespace``)."""
    cp.kubectl("create", "serviceaccount", "-n", namespace, "reader")
    cp.kubectl("create", "clusterrole", namespace, "--verb=list,watch",
               "--resource=network-attachment-definitions.k8s.cni.cncf.io")
    cp.kubectl("create", "clusterrolebinding", namespace, f"--clusterrole={namespace}",
               f"--serviceaccount={namespace}:reader")
    token = cp.kubectl("create", "token", "reader", "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(proxy.kubeconfig(cp.kubeconfig, path).read_text())
    config["users"] = [{"name": "reader", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "reader"
    path.write_text(yaml.safe_dump(config))
    return load_client(str(path))


def test_a_refusal_after_the_sync_counts_as_out_of_contact(
        cluster: ControlPlane, proxy: TcpProxy, ns: str, tmp_path: Path) -> None:
    """With its RBAC revoked the cache of a kind is frozen: that is no contact, though the apiserver answers."""
    api = service_account_client(cluster, proxy, ns, tmp_path / "reader.kubeconfig")
    view = watching(LiveClusterView(api, kinds=(NAD,)))
    try:
        cluster.kubectl("delete", "clusterrolebinding", ns)
        proxy.reset()  # an open watch is not authorized again; the next one is
        eventually(lambda: view.readiness()[1], "the watch refused", until=lambda r: "403" in r)
        # Refused again and again (with backoff): the time since the last list or event keeps growing.
        eventually(lambda: view.out_of_contact(NAD) > 3, "the refusals counted as out of contact")
        ready, reason = view.readiness()
        assert ready
        assert "no contact with the apiserver for" in reason, reason
    finally:
        view.stop()
        cluster.kubectl("delete", "clusterrole", ns, check=False)


def test_readyz_names_the_error_of_the_kind_failing_longest(
        cluster: ControlPlane, proxy: TcpProxy, ns: str, tmp_path: Path) -> None:
    """The error was one for every kind, and any event of any kind cleared it: with Pods refused and a
    NAD created, /readyz said "(last error: )" or nothing at all."""
    api = service_account_client(cluster, proxy, ns, tmp_path / "reader.kubeconfig")  # NADs only
    view = LiveClusterView(api, kinds=(NAD, POD), backoff_first=60, backoff_cap=60)  # no retry during the test
    view.start()
    try:
        refused = "(last error: Pod: 403: "
        eventually(lambda: view.readiness()[1], "the Pods refused", until=lambda r: refused in r)
        eventually(lambda: NAD in view._open, "the NADs' watch open")
        create(cluster, nad("any", ns))
        eventually(lambda: view.nad(ns, "any"), "the NAD's event")
        ready, reason = view.readiness()
        assert not ready
        assert reason.startswith("cluster cache not synced: waiting for the first list of Pod " + refused), reason
    finally:
        view.stop()
        cluster.kubectl("delete", "clusterrole", ns, check=False)


class Agent:
    """Writes a MultusNodeState's heartbeat ``every`` so many seconds as a live agent would (Multus ready on
    ``boot``); a write that fails is tried again at the next one. Through ``api``, or straight to the
    apiserver."""

    def __init__(self, cp: ControlPlane, node: str, boot: str, *, every: float = 0.3,
                 api: ApiClient | None = None) -> None:
        self.api = api or load_client(str(cp.kubeconfig))
        self.node, self.boot, self.every = node, boot, every
        self.stopped = threading.Event()
        request(self.api, "POST", STATES, body={"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
                                                "metadata": {"name": node, "namespace": NAMESPACE}})
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while not self.stopped.is_set():
            status = {"nodeName": self.node, "bootID": self.boot, "multusReady": True, "cniBinaries": ["macvlan"],
                      "heartbeatTime": format_time(utcnow())}
            try:
                request(self.api, "PATCH", f"{STATES}/{self.node}/status", body={"status": status},
                        content_type=MERGE_PATCH)
            except Exception as exc:  # the agent carries on, as the real one does
                logging.getLogger(__name__).info("heartbeat of %s not written: %s", self.node, exc)
            self.stopped.wait(self.every)

    def die(self) -> None:
        self.stopped.set()
        self.thread.join()


def test_a_dead_feed_of_node_states_unlabels_no_node_and_a_dead_agent_still_goes(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient) -> None:
    """One watch brings every MultusNodeState: when it goes silent, the controller sees every heartbeat
    stop. Before taking a node's ready label for a stale heartbeat it reads the state from the apiserver,
    and while the states are known not to be fed it judges no heartbeat."""
    node = StandInNode(cluster, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    agent = Agent(cluster, node.name, "boot-1")
    view = LiveClusterView(proxied, kinds=KINDS)  # WATCH_SILENCE (150s): the silence outlasts the test
    config = ControllerConfig(agent_interval=1, lease_name=f"lease-{uuid.uuid4().hex[:8]}", identity="faults",
                              lease_duration=3, renew_deadline=2, retry_period=0.5)
    stop = threading.Event()
    controller = threading.Thread(target=Controller(load_client(str(cluster.kubeconfig)), config, view).run,
                                  args=(stop,), daemon=True)
    try:
        watching(view)
        controller.start()
        eventually(lambda: node.own_labels().get(READY_LABEL) == "true", "the node labelled ready")
        state = view.node_state(node.name)
        assert state is not None
        heartbeat = state["status"]["heartbeatTime"]
        proxy.stall()  # every watch silent, and every new connection
        # The watch delivers nothing now: the controller found the heartbeat stale, read the state from
        # the apiserver, stored it, and had the watch opened again, which cannot be fed.
        eventually(lambda: (view.node_state(node.name) or {})["status"]["heartbeatTime"] != heartbeat,
                   "the controller's read of the state", timeout=15)
        eventually(lambda: view.out_of_contact("MultusNodeState") > 0, "the states' watch known not fed")
        agent.die()
        # A heartbeat is stale after 3s; the states have not been fed for twice that: nothing was judged.
        eventually(lambda: view.out_of_contact("MultusNodeState") > 6, "the states unfed for 6s", timeout=20)
        assert node.own_labels().get(READY_LABEL) == "true" == node.agent_labels().get(READY_LABEL)
        assert "MultusNotReady" not in [e["reason"] for e in node.events()]
        proxy.resume()
        eventually(lambda: READY_LABEL not in node.own_labels(), "the dead agent's node unlabelled")
        # The Event is sent by a thread of its own after the label patch.
        down = eventually(lambda: [e["message"] for e in node.events() if e["reason"] == "MultusNotReady"],
                          "the MultusNotReady Event")
        assert len(down) == 1, down
        assert "the agent's heartbeat has not changed for" in down[0], down
    finally:
        stop.set()
        agent.stopped.set()
        controller.join(10)
        view.stop()
        node.delete()


def lease_spec(cp: ControlPlane, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(cp.kubectl("get", "lease", "-n", NAMESPACE, name, "-o", "json").stdout)["spec"]
    return spec


#: The lease timings of the controllers the lapse tests start, and of the replica that takes over.
LAPSING = {"lease_duration": 3, "renew_deadline": 2, "retry_period": 0.5}


@pytest.fixture
def leader(cluster: ControlPlane, proxied: ApiClient) -> Iterator[Callable[..., tuple[Controller, str]]]:
    """Starts a controller whose lease calls, and only they, go through the proxy (its cache and its
    writes go straight to the apiserver), with short timings: a heartbeat is stale after 6s (three agent
    intervals of 2s), a renewal failing for 2s ends leadership. Gives it and its lease's name; stopped
    after the test."""
    stops: list[Callable[[], None]] = []

    def start(identity: str, *, kinds: tuple[str, ...] = KINDS, **settings: Any) -> tuple[Controller, str]:
        direct = load_client(str(cluster.kubeconfig))
        view = LiveClusterView(direct, kinds=kinds)
        lease = f"lease-{uuid.uuid4().hex[:8]}"
        config = ControllerConfig(**{"agent_interval": 2, **LAPSING, **settings}, lease_name=lease,
                                  identity=identity)
        controller = Controller(direct, config, view)
        controller.elector.api = proxied
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)

        def stopped() -> None:
            stop.set()
            thread.join(10)
            view.stop()

        stops.append(stopped)
        started(view)
        thread.start()
        return controller, lease

    yield start
    for stopped in stops:
        stopped()


def handed_over_and_back(cluster: ControlPlane, proxy: TcpProxy, controller: Controller, lease: str) -> None:
    """While the controller's renewals fail, another replica takes its lease, then lets it go (it stops
    renewing): the controller leads again, in a new term."""
    other = LeaderElector(load_client(str(cluster.kubeconfig)), name=lease, namespace=NAMESPACE, identity="other",
                          duration=LAPSING["lease_duration"], renew_deadline=LAPSING["renew_deadline"],
                          retry_period=LAPSING["retry_period"])
    proxy.stall()
    eventually(lambda: not controller.elector.is_leader(), "leadership lapsed", timeout=10)
    eventually(other.try_acquire_or_renew, "the other replica takes over", timeout=10)
    proxy.resume()
    proxy.reset()  # the other replica stops renewing; the first one takes over once the lease expires
    eventually(controller.elector.is_leader, "the first replica leads again", timeout=15)


def test_a_dead_agents_node_is_unlabelled_though_the_leaders_renewals_keep_failing(
        cluster: ControlPlane, proxy: TcpProxy, leader: Callable[..., tuple[Controller, str]]) -> None:
    """The leader's lease renewals (and only they: the cache and the label patches go straight to the
    apiserver) fail for a few seconds at a time, more often than a heartbeat goes stale: each time the
    replica stops acting, then renews the lease it still holds, no other replica in between. A lapse
    like that is no new leader term: the heartbeats observed before it still count (the lapse itself
    does not), so a dead agent's node loses its ready label all the same. It kept it for good when every
    lapse started a new grace period."""
    node = StandInNode(cluster, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    agent = Agent(cluster, node.name, "boot-1")
    lapses = 0
    try:
        controller, lease = leader("flaky")
        eventually(lambda: node.own_labels().get(READY_LABEL) == "true", "the node labelled ready")
        agent.die()
        died = time.monotonic()
        while READY_LABEL in node.own_labels() and time.monotonic() - died < 40:
            time.sleep(2)  # then still leading up to 2s (the renew deadline): less than the 6s of a grace
            lapse(proxy, controller)
            lapses += 1
        unlabelled = time.monotonic() - died
        spec = lease_spec(cluster, lease)
        assert (spec["holderIdentity"], spec.get("leaseTransitions", 0)) == ("flaky", 0)  # nobody else held it
        assert READY_LABEL not in node.own_labels(), f"still ready {unlabelled:.0f}s after the agent died, " \
                                                     f"through {lapses} lapses"
        assert lapses <= 4, f"unlabelled {unlabelled:.0f}s after the agent died, after {lapses} lapses"
        eventually(lambda: READY_LABEL not in node.agent_labels(), "the agent pod unlabelled")
        down = [e["message"] for e in node.events() if e["reason"] == "MultusNotReady"]
        assert len(down) == 1, down
        assert "the agent's heartbeat has not changed for" in down[0], down
    finally:
        agent.stopped.set()
        node.delete()


def lapse(proxy: TcpProxy, controller: Controller) -> None:
    """A lapse of the controller's leadership, ended by renewing the lease it still holds (its elector's
    connections, and only they, go through ``proxy``); over once the controller acts again."""
    proxy.stall()  # the renewal in flight, and every one after it, hangs
    eventually(lambda: not controller.elector.is_leader(), "leadership lapsed", timeout=10)
    # The controller has found out (its pass stopped acting, Controller._lapse): a fixed second let
    # the renewal through first on a loaded machine, and the test then went on without any lapse.
    eventually(lambda: controller._lapsed_at is not None, "the controller stopped acting", timeout=10)
    proxy.resume()
    proxy.reset()  # the renewal hanging fails; the next one goes through
    eventually(controller.elector.is_leader, "the lease renewed", timeout=10)
    # And it has acted again (Controller._resume): a next lapse starting before that would be taken
    # for this one, still going on.
    eventually(lambda: controller._lapsed_at is None, "the controller acting again", timeout=10)


def lapses(cluster: ControlPlane, proxy: TcpProxy, controller: Controller, lease: str, times: int) -> None:
    """``times`` lapses (see lapse), each followed by 2s of acting again."""
    for _ in range(times):
        lapse(proxy, controller)
        time.sleep(2)  # 2s of acting (lapse() returns once it acts again), not a wait for something
    spec = lease_spec(cluster, lease)
    assert (spec["holderIdentity"], spec.get("leaseTransitions", 0)) == (controller.config.identity, 0)


def test_a_repair_goes_on_through_lapses_of_the_leaders_renewals_without_starting_over(
        cluster: ControlPlane, proxy: TcpProxy, leader: Callable[..., tuple[Controller, str]], ns: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same lapses as above, on a node with a pod that lacks a network and that no controller would
    recreate: the repair lists the node's pods once and reports the pod with one Event. A lapse that no
    other replica filled is no new term, in which another leader may have repaired: the repair of the
    node's boot goes on as it was. It started over at every lapse, listing the pods again and sending
    the pod one more MultusNetworksMissing Event each time. A new term still starts it over."""
    lists: list[str] = []
    real = controller_module.request

    def recorded(api: Any, method: str, path: str, **kw: Any) -> Any:
        selector = dict(kw.get("query") or ()).get("fieldSelector", "")
        if path == "/api/v1/pods" and selector.startswith("spec.nodeName="):
            lists.append(selector)
        return real(api, method, path, **kw)

    monkeypatch.setattr(controller_module, "request", recorded)  # recorded on their way to the apiserver
    node = StandInNode(cluster, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    agent = Agent(cluster, node.name, "boot-1")
    create(cluster, nad("net-a", ns))
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "lacking", "namespace": ns, "annotations": {
               "k8s.v1.cni.cncf.io/networks": "net-a",
               "k8s.v1.cni.cncf.io/network-status": json.dumps([{"name": "cilium", "interface": "eth0",
                                                                 "default": True}])}},
           "spec": {"nodeName": node.name, "containers": [{"name": "c", "image": "busybox"}]}}
    create(cluster, pod)
    made = format_time(utcnow())
    cluster.kubectl("patch", "pod", "-n", ns, "lacking", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"phase": "Running", "startTime": made, "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": made}]}}))

    def missing() -> list[dict[str, Any]]:
        out = cluster.kubectl("get", "events", "-n", ns, "--field-selector",
                              "involvedObject.kind=Pod,involvedObject.name=lacking", "-o", "json").stdout
        return [e for e in json.loads(out)["items"] if e["reason"] == "MultusNetworksMissing"]

    try:
        controller, lease = leader("repairing", kinds=REPAIR_KINDS, repair=True)
        reported = eventually(missing, "the pod reported")
        assert "not evicted because no controller would recreate it" in reported[0]["message"], reported
        assert len(lists) == 1, lists
        lapses(cluster, proxy, controller, lease, 3)  # each followed by a pass, and the Event it would send
        assert node.own_labels().get(READY_LABEL) == "true"
        assert (len(lists), [e["count"] for e in missing()]) == (1, [1]), (lists, missing())

        # A new term starts the repair over: another replica held the lease meanwhile (and could have
        # repaired, or been told of the pod's networks otherwise).
        handed_over_and_back(cluster, proxy, controller, lease)
        # It says the same: counted on the Event made in the first term.
        eventually(lambda: [e["count"] for e in missing()] == [2], "the pod reported again in the new term")
        assert len(lists) == 2, lists
    finally:
        agent.stopped.set()
        node.delete()


def test_a_refused_node_patch_keeps_backing_off_through_lapses_of_the_leaders_renewals(
        cluster: ControlPlane, proxy: TcpProxy, leader: Callable[..., tuple[Controller, str]]) -> None:
    """A policy refuses every patch of the node's labels for good: the controller tries again after 2s,
    4s, 8s, 16s ... The same lapses as above do not start the back-off over (no other replica acted in
    between): it tried again at once after every lapse."""
    marker = uuid.uuid4().hex[:8]
    node = StandInNode(cluster, f"node-{marker}", "boot-1", labels={"stub": marker})
    stub = StubWebhook(cluster, f"frozen-{marker}", [{"apiGroups": [""], "apiVersions": ["v1"],
                                                      "operations": ["UPDATE"], "resources": ["nodes"]}],
                       lambda r: refuse(403, "node labels are frozen"),
                       object_selector={"matchLabels": {"stub": marker}})
    agent = None
    try:
        stub.start(lambda: cluster.kubectl("label", "node", node.name, "--dry-run=server", "--overwrite", "probe=1",
                                           check=False))
        agent = Agent(cluster, node.name, "boot-1")
        controller, lease = leader("refused")
        # The node's ready label is part of the patch once the heartbeat was seen to change; from then on
        # the same patch is refused, and tried after 2s, 4s, 8s: the next try some 16s after the fourth.
        eventually(lambda: READY_LABEL in node.agent_labels(), "the agent pod labelled")

        def same_patch() -> list[Any]:
            return [r for r in stub.reviews(node.name)
                    if ((r.object.get("metadata") or {}).get("labels") or {}).get(READY_LABEL) == "true"]

        eventually(lambda: len(same_patch()) >= 4, "four tries of the same patch", timeout=30)
        since = time.monotonic()
        lapses(cluster, proxy, controller, lease, 3)
        tries = [r.at - since for r in same_patch() if r.at > since]
        assert len(tries) <= 1, f"tried at {tries} (s after the fourth try), through 3 lapses"
        assert READY_LABEL not in node.own_labels()
    finally:
        if agent is not None:
            agent.stopped.set()
        stub.stop()
        node.delete()


def test_a_renewal_on_a_silent_connection_is_given_up_by_the_renew_deadline(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient) -> None:
    """A lease call on a connection that went silent held the elector for the 60s of a read, so the
    replica could not even try to take the lease back for a minute after leadership had ended at the
    renew deadline (2s here). As client-go does, a call on the lease is given up by that deadline."""
    elector = LeaderElector(proxied, name=f"lease-{uuid.uuid4().hex[:8]}", namespace=NAMESPACE, identity="a",
                            duration=3, renew_deadline=2, retry_period=0.5)
    assert elector.try_acquire_or_renew()
    proxy.stall()  # the pooled connection, and every new one, carries nothing
    ended: list[float] = []

    def renew() -> None:
        began = time.monotonic()
        try:
            elector.try_acquire_or_renew()
        except Exception:
            ended.append(time.monotonic() - began)

    thread = threading.Thread(target=renew, daemon=True)
    thread.start()
    thread.join(20)  # a read timeout of the renew deadline (2s) after a connect timeout (3s) at most
    assert ended, "the renewal still hangs 20s later"
    assert not elector.is_leader()


def test_a_leader_back_after_another_held_the_lease_gives_every_agent_a_whole_grace_again(
        cluster: ControlPlane, proxy: TcpProxy, leader: Callable[..., tuple[Controller, str]]) -> None:
    """The other side of the test above: while the leader's renewals failed, another replica took the
    lease (and could have changed labels), then let it go. The first one's term is a new one: what it
    observed before is forgotten, and an agent that stopped before the lapse gets a whole grace period
    from when it acts again, as from any new leader."""
    node = StandInNode(cluster, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    agent = Agent(cluster, node.name, "boot-1")
    try:
        controller, lease = leader("first")
        eventually(lambda: node.own_labels().get(READY_LABEL) == "true", "the node labelled ready")
        agent.die()
        time.sleep(2)
        # The first leader sees the heartbeat stay the same for about 3-4.5s (up to the renew deadline).
        handed_over_and_back(cluster, proxy, controller, lease)
        back = time.monotonic()
        spec = lease_spec(cluster, lease)
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("first", 2)
        # Kept (the silence before the lapse counted), the heartbeat would be stale within 3s; new, after 6s.
        while time.monotonic() - back < 4.5:
            assert node.own_labels().get(READY_LABEL) == "true", f"unlabelled {time.monotonic() - back:.1f}s after"
            time.sleep(0.2)
        eventually(lambda: READY_LABEL not in node.own_labels(), "the dead agent's node unlabelled", timeout=10)
    finally:
        agent.stopped.set()
        node.delete()


def test_a_live_agents_node_keeps_its_label_after_an_outage_longer_than_a_grace(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient) -> None:
    """The apiserver is out of reach for everyone for longer than a heartbeat takes to go stale: the
    leader's renewals, its cache and the agent alike. The leader renews the lease it still holds, in
    the same term, and keeps the heartbeats it observed; the outage does not count as silence (if it
    did, the heartbeat would be stale the moment the leader acts again, before the agent, writing every
    2s, has written again, and the apiserver, asked before the label goes, would confirm it)."""
    node = StandInNode(cluster, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    agent = Agent(cluster, node.name, "boot-1", every=2, api=proxied)
    view = LiveClusterView(proxied, kinds=KINDS)
    lease = f"lease-{uuid.uuid4().hex[:8]}"
    config = ControllerConfig(agent_interval=3, lease_name=lease, identity="blind", lease_duration=3,
                              renew_deadline=2, retry_period=0.5)  # stale after 9s
    stop = threading.Event()
    thread = threading.Thread(target=Controller(proxied, config, view).run, args=(stop,), daemon=True)
    try:
        started(view)
        thread.start()
        eventually(lambda: node.own_labels().get(READY_LABEL) == "true", "the node labelled ready")
        proxy.stall()
        time.sleep(12)
        proxy.resume()
        proxy.reset()
        back = time.monotonic()
        while time.monotonic() - back < 12:
            assert node.own_labels().get(READY_LABEL) == "true", f"unlabelled {time.monotonic() - back:.1f}s after"
            time.sleep(0.2)
        spec = lease_spec(cluster, lease)
        assert (spec["holderIdentity"], spec.get("leaseTransitions", 0)) == ("blind", 0)
        assert "MultusNotReady" not in [e["reason"] for e in node.events()]
    finally:
        stop.set()
        agent.die()
        thread.join(10)
        view.stop()
        node.delete()


def test_a_live_agents_heartbeat_stuck_on_a_silent_connection_resumes_on_a_new_one(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient) -> None:
    """The real agent's pooled connection goes silent (a black-holed peer) while new connections work.
    Its status write used to wait the 60s of a read, so the heartbeat stopped for a minute and the
    controller, which takes the ready label after three intervals, unlabelled a live agent's node. A
    write is now given up within the interval, and the next poll writes on a new connection."""
    host = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    host.make_ready("boot-1")
    node = f"node-{uuid.uuid4().hex[:8]}"
    agent = RealAgent(proxied, AgentConfig(node=node, namespace=NAMESPACE, layout=host.layout, interval=1,
                                           poll_interval=0.2))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    direct = load_client(str(cluster.kubeconfig))

    def heartbeat() -> str | None:
        try:
            obj = request(direct, "GET", f"{STATES}/{node}")
        except Exception:
            return None
        beat: str | None = (obj.get("status") or {}).get("heartbeatTime")
        return beat

    try:
        thread.start()
        first = eventually(heartbeat, "the agent's first heartbeat")
        eventually(lambda: heartbeat() != first, "a second heartbeat: the connection is pooled")
        connections = proxy.accepted
        proxy.stall()  # the open connection goes silent for good...
        proxy.resume()  # ...and new ones carry data
        stalled = heartbeat()
        began = time.monotonic()
        eventually(lambda: heartbeat() != stalled, "the heartbeat resumed on a new connection", timeout=15)
        # Stale for the controller after 3 intervals (3s here): a connect and a read of the interval at most.
        assert time.monotonic() - began < 6, f"the heartbeat stopped for {time.monotonic() - began:.1f}s"
        assert proxy.accepted > connections
    finally:
        stop.set()
        proxy.reset()  # the stuck write, if any, ends now
        thread.join(10)
        host.cleanup()
        direct.close()


def test_a_live_agents_heartbeat_is_stored_by_an_apiserver_slower_than_a_short_timeout(cluster: ControlPlane) -> None:
    """Every status write takes 6s (an admission webhook on them is that slow). A write the agent gives up
    on is cancelled by the apiserver, not stored: with a 5s read no heartbeat was ever stored, and the
    controller would have taken the ready label of every node such an apiserver serves. A read of the
    interval (8s here) lets it through."""
    host = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    host.make_ready("boot-1")
    node = f"node-{uuid.uuid4().hex[:8]}"
    direct = load_client(str(cluster.kubeconfig))
    create(cluster, nodestate.new_object(node, NAMESPACE))

    def slow(review: Any) -> Mapping[str, Any]:
        if review.name == node:
            time.sleep(6)
        return allow(review)

    stub = StubWebhook(cluster, f"slow-{node}", [{"apiGroups": ["multus-webhook.io"], "apiVersions": ["*"],
                                                  "operations": ["UPDATE"], "resources": ["multusnodestates/status"]}],
                       slow, timeout_seconds=15)
    agent = RealAgent(direct, AgentConfig(node=node, namespace=NAMESPACE, layout=host.layout, interval=8,
                                          poll_interval=0.5))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    try:
        stub.start(lambda: cluster.kubectl("patch", "multusnodestate", "-n", NAMESPACE, node, "--subresource=status",
                                           "--type=merge", "-p", '{"status": {}}', "--dry-run=server", check=False))
        thread.start()
        eventually(lambda: (request(direct, "GET", f"{STATES}/{node}").get("status") or {}).get("heartbeatTime"),
                   "a heartbeat stored through the slow webhook", timeout=30)
    finally:
        stop.set()
        stub.stop()
        thread.join(20)
        host.cleanup()
        direct.close()


def test_a_crd_not_served_yet_is_not_taken_for_one_not_installed(cluster: ControlPlane) -> None:
    """An apiserver that has just started answers 404 for CRDs it has not registered yet, as a CRD with its
    only version not served does: the replica is not ready until it is served. A CRD not installed still
    counts as listed (nothing of that kind exists)."""
    crd = "networkprofiles.multus-webhook.io"

    def served(value: bool) -> None:
        cluster.kubectl("patch", "crd", crd, "--type=json", "-p",
                        json.dumps([{"op": "replace", "path": "/spec/versions/0/served", "value": value}]))

    served(False)
    view = LiveClusterView(load_client(str(cluster.kubeconfig)), kinds=(NETWORK_PROFILE,))
    view.start()
    try:
        reason = eventually(lambda: view.readiness()[1], "the 404 explained",
                            until=lambda r: "exists but is not served yet" in r)
        assert reason.startswith("cluster cache not synced: waiting for the first list of NetworkProfile"), reason
        assert not view.known
        served(True)
        eventually(lambda: view.readiness() == (True, "ok"), "the list once served")
    finally:
        view.stop()
        served(True)

    cluster.kubectl("delete", "crd", crd)
    absent = LiveClusterView(load_client(str(cluster.kubeconfig)), kinds=(NETWORK_PROFILE,))
    absent.start()
    try:
        eventually(lambda: absent.readiness() == (True, "ok"), "a CRD not installed taken as nothing to list")
    finally:
        absent.stop()
        cluster.install_crds()


def test_an_outage_is_logged_once_a_minute_per_watch_and_lease_and_its_end_once(
        cluster: ControlPlane, proxy: TcpProxy, proxied: ApiClient, caplog: pytest.LogCaptureFixture) -> None:
    """The apiserver gone (the proxy closes every connection): each watch and the lease retry every
    fraction of a second here (every few seconds in production, about 170 WARNING lines a minute per
    replica), yet each says so once within the minute; each says once that it works again, with the
    count of its failures."""
    caplog.set_level(logging.INFO, logger="webhook")
    view = watching(LiveClusterView(proxied, kinds=(NAD, NODE), backoff_first=0.05, backoff_cap=0.1))
    lease = f"lease-{uuid.uuid4().hex[:8]}"
    elector = LeaderElector(proxied, name=lease, namespace=NAMESPACE, identity="outage", duration=3,
                            renew_deadline=2, retry_period=0.1)
    stop = threading.Event()
    renewing = threading.Thread(target=elector.run, args=(stop,), daemon=True)
    renewing.start()
    try:
        eventually(elector.is_leader, "the lease taken")
        tried = proxy.accepted
        proxy.go_down()
        # Retries of the two watches and the lease: dozens of failures each.
        eventually(lambda: proxy.accepted - tried >= 60, "the watches and the lease retrying", timeout=30)

        def lines(text: str) -> list[str]:
            return [r.getMessage() for r in caplog.records if text in r.getMessage()]

        assert len(lines(f"watching {NAD} failed")) == 1, lines(f"watching {NAD} failed")
        assert len(lines(f"watching {NODE} failed")) == 1, lines(f"watching {NODE} failed")
        assert len(lines(f"lease {NAMESPACE}/{lease}: ")) == 1, lines(f"lease {NAMESPACE}/{lease}: ")
        proxy.resume()
        ends = (f"watching {NAD} works again after ", f"watching {NODE} works again after ",
                f"lease {NAMESPACE}/{lease} can be read and written again after ")
        eventually(lambda: all(lines(text) for text in ends), "a line for each end of the outage", timeout=30)
        assert [len(lines(text)) for text in ends] == [1, 1, 1]
    finally:
        stop.set()
        renewing.join(10)
        view.stop()
