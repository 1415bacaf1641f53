"""The controller against an apiserver that refuses its patches, sheds its load or is slow to answer,
as admission webhooks of the cluster's own make it (webhook.dev.stubhook, registered with the real
apiserver): refused node patches back off, and neither an Event nor one node's slow patch holds up
taking the ready label off another node."""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from webhook import kube
from webhook.agent import nodestate
from webhook.agent.nodestate import NAMESPACE
from webhook.agent.standin import StandInHost, StandInNode, Subcommand
from webhook.cluster.store import AGENT_POD, NODE, NODE_STATE, ClusterStore
from webhook.controller import metrics as controller_metrics
from webhook.controller.controller import Controller, ControllerConfig
from webhook.controller.decide import REBOOT_RACE_EXPOSED_EVENT
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.dev.stubhook import Review, StubWebhook, allow, refuse
from webhook.kube import SHORT_TIMEOUT, EventRecorder, format_time, load_client, utcnow
from webhook.names import READY_LABEL, binary_label

NODE_UPDATES = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["nodes"]}]
STATE_DELETES = [{"apiGroups": ["multus-webhook.io"], "apiVersions": ["v1alpha1"], "operations": ["DELETE"],
                  "resources": ["multusnodestates"]}]
EVICTIONS = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods/eviction"]}]
EVENT_CREATES = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["events"]}]


@pytest.fixture
def marker(controlplane: ControlPlane) -> str:
    """A label value that puts a test's nodes, and no other, under its stub webhook."""
    controlplane.kubectl("create", "namespace", NAMESPACE, check=False)
    return uuid.uuid4().hex[:8]


@pytest.fixture
def nodes(controlplane: ControlPlane, marker: str) -> Iterator[list[StandInNode]]:
    made: list[StandInNode] = []
    yield made
    for n in made:
        controlplane.kubectl("delete", "mns", "-n", NAMESPACE, n.name, "--wait=false", check=False)
        n.delete()


def stub_node(cp: ControlPlane, nodes: list[StandInNode], marker: str, **labels: str) -> StandInNode:
    n = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1", labels={"stub": marker, **labels})
    nodes.append(n)
    return n


def probe_node(cp: ControlPlane, node: StandInNode) -> None:
    cp.kubectl("label", "node", node.name, "--dry-run=server", "--overwrite", "probe=1", check=False)


def node_labels(review: Review) -> Mapping[str, str]:
    labels: Mapping[str, str] = (review.object.get("metadata") or {}).get("labels") or {}
    return labels


def test_a_refused_node_patch_backs_off_and_only_a_change_of_the_patch_brings_the_try_forward(
        controlplane: ControlPlane, host: StandInHost, nodes: list[StandInNode], marker: str, tmp_path: Path) -> None:
    """A policy that freezes node labels (a hardened cluster) refuses every patch for good: the
    controller tries again after 2s, 4s, 8s ..., though the agent's heartbeat changes every second,
    and logs each refusal as one line. What it would write changing (here the node's inventory) is
    tried at once: backing off must not delay a change, least of all a node losing its ready label. A
    429 is tried again no sooner than its Retry-After asks. Once the patch is let through the node is
    labelled."""
    cp = controlplane
    node = stub_node(cp, nodes, marker)
    stub = StubWebhook(cp, f"frozen-{marker}", NODE_UPDATES, lambda r: refuse(403, "node labels are frozen"),
                       object_selector={"matchLabels": {"stub": marker}})
    controller = agent = None
    try:
        stub.start(lambda: probe_node(cp, node))
        host.make_ready("boot-1")
        controller = Subcommand(["controller", "--kubeconfig", str(cp.kubeconfig), "--agent-interval", "1",
                                 "--lease-name", f"lease-{marker}", "--lease-duration", "3", "--renew-deadline", "2",
                                 "--retry-period", "0.5"], tmp_path / "controller.log").start()
        agent = Subcommand(["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node.name,
                            "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2"],
                           tmp_path / "agent.log").start()
        # The agent pod is labelled (the policy is about nodes); what the node's look would write settles
        # once the agent's heartbeat has been seen to change (the node is then ready).
        eventually(lambda: READY_LABEL in node.agent_labels(), what="the agent pod labelled")
        settled = time.monotonic()
        # The heartbeats the agent wrote meanwhile, every one, as a watch brings them. Sampled with a
        # kubectl each, only as many were counted as the machine let start in the time: each sample a
        # process and a TLS handshake, and loaded, fewer than one a second.
        watch = subprocess.Popen([str(cp.bin_dir / "kubectl"), "--kubeconfig", str(cp.kubeconfig), "get", "mns",
                                  "-n", NAMESPACE, node.name, "--watch",
                                  "-o", 'jsonpath={.status.heartbeatTime}{"\\n"}'],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            time.sleep(24)  # the span the tries are counted over, not a wait for something
        finally:
            watch.terminate()
            written, _ = watch.communicate(timeout=10)
        beats = set(written.split())
        tries = [r.at for r in stub.reviews(node.name) if r.at >= settled]
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        assert len(beats) >= 15  # a live agent: each heartbeat is a look at the node
        # Without the back-off: a try at every heartbeat and every 2s, about 24.
        assert 2 <= len(tries) <= 5, gaps
        assert gaps, tries
        assert gaps[-1] >= 7, gaps
        assert READY_LABEL not in node.own_labels()
        log = controller.output()
        assert "HTTP response headers" not in log
        refused = [line for line in log.splitlines() if f"node {node.name}: 403" in line]
        assert refused, log[-2000:]
        assert "node labels are frozen; trying again in" in refused[-1]

        # The change below comes right after the back-off's next refused try, so that its try after that
        # (twice the last wait away, 30s or more) is far from it: "at once" is then told from "when the
        # back-off lets it" by tens of seconds, not by how fast the machine lets the controller react.
        def refusals() -> list[str]:
            return [line for line in controller.output().splitlines() if f"node {node.name}: 403" in line]

        refused = eventually(refusals, "the back-off's next try", until=lambda lines: len(lines) > len(refused),
                             timeout=60)
        # Its arrival here (it was logged once refused, so it is the last), later than the look that sent
        # it by the request's way through the apiserver: a second covers that.
        waited = float(refused[-1].rsplit("trying again in ", 1)[1].split("s", 1)[0])
        backed_off_until = stub.reviews(node.name)[-1].at + waited - 1

        # The apiserver sheds load and says when to come back; meanwhile what the node's look would write
        # changes (a new binary), which is tried at once, backed off as it may be.
        stub.answer = lambda r: refuse(429, "too busy", retry_after=6)
        vlan = binary_label("vlan")
        host.add_binary("vlan")
        eventually(lambda: "vlan" in cp.kubectl("get", "mns", "-n", NAMESPACE, node.name,
                                                "-o", "jsonpath={.status.cniBinaries}").stdout, what="vlan reported")
        reported = time.monotonic()
        first = eventually(lambda: [r for r in stub.reviews(node.name) if vlan in node_labels(r)],
                           what="the new patch tried", timeout=10)[0]
        # At once: well before the back-off would have tried it anyway (a bound of 3s after the report
        # measured how fast a loaded machine let the controller react, with the back-off's own try
        # only some 5s after the report).
        assert first.at < backed_off_until, (first.at - reported, backed_off_until - reported)
        second = eventually(lambda: [r for r in stub.reviews(node.name) if r.at > first.at],
                            what="the next try", timeout=20)[0]
        assert second.at - first.at >= 5.5  # not the 2s of the back-off's first step
        assert "429 Too Many Requests: admission webhook" in controller.output()

        stub.answer = allow
        eventually(lambda: {READY_LABEL, vlan} <= set(node.own_labels()), what="the node labelled", timeout=30)
    finally:
        if agent is not None:
            agent.stop()
        if controller is not None:
            controller.stop()
        stub.stop()


def make_state(cp: ControlPlane, node: StandInNode, binaries: list[str]) -> None:
    """The MultusNodeState of an agent on boot-1 that finds Multus ready with ``binaries``."""
    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(node.name, NAMESPACE)))
    stamp = format_time(utcnow())
    status = {"nodeName": node.name, "bootID": "boot-1", "multusReady": True, "cniBinaries": binaries,
              "dhcpDaemon": False, "heartbeatTime": stamp,
              "conditions": [{"type": "Ready", "status": "True", "reason": "AllChecksPassed", "message": "ok",
                              "lastTransitionTime": stamp}]}
    cp.kubectl("patch", "mns", "-n", NAMESPACE, node.name, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": status}))


def store_of(cp: ControlPlane, *of: StandInNode) -> ClusterStore:
    """A store holding the nodes, their agent pods and states as the apiserver has them now."""
    def get(*what: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(cp.kubectl("get", *what, "-o", "json").stdout)
        return got

    store = ClusterStore()
    for n in of:
        store.upsert(NODE, get("node", n.name))
        store.upsert(AGENT_POD, get("pod", "-n", NAMESPACE, n.agent_pod))
        state = cp.kubectl("get", "mns", "-n", NAMESPACE, n.name, "-o", "json", check=False)
        if state.returncode == 0:
            store.upsert(NODE_STATE, json.loads(state.stdout))
    return store


def leading(cp: ControlPlane, store: ClusterStore, marker: str, **settings: Any) -> Controller:
    """A controller in this process that holds a lease of its own (for its renew deadline, 10s)."""
    config = ControllerConfig(**{"agent_interval": 1, "lease_name": f"lease-{marker}", "identity": marker, **settings})
    controller = Controller(load_client(str(cp.kubeconfig)), config, store)
    assert controller.elector.try_acquire_or_renew()
    return controller


def down(cp: ControlPlane, node: StandInNode) -> None:
    """A node with the ready label, on it and on its agent pod, whose kubelet reports it NotReady."""
    cp.kubectl("label", "node", node.name, f"{READY_LABEL}=true")
    cp.kubectl("label", "pod", "-n", NAMESPACE, node.agent_pod, f"{READY_LABEL}=true")
    node.patch_status(ready=False)


def test_a_pass_takes_ready_labels_off_first_and_a_patch_that_hangs_holds_it_up_seconds_only(
        controlplane: ControlPlane, nodes: list[StandInNode], marker: str) -> None:
    """One pass has two nodes to look at: one to be given a binary label, whose patch an admission
    webhook holds (up to its timeoutSeconds, 30s), and one whose kubelet reports it NotReady. The
    second loses its ready label first, and the held patch is given up after a few seconds and backed
    off: the pass is over long before the webhook's timeout."""
    cp = controlplane
    adding = stub_node(cp, nodes, marker)
    losing = stub_node(cp, nodes, marker)
    make_state(cp, adding, ["bridge"])
    down(cp, losing)
    stub = StubWebhook(cp, f"slow-{marker}", NODE_UPDATES, lambda r: None if r.name == adding.name else allow(r),
                       object_selector={"matchLabels": {"stub": marker}}, timeout_seconds=30)
    try:
        stub.start(lambda: probe_node(cp, losing))
        controller = leading(cp, store_of(cp, adding, losing), marker)
        started = time.monotonic()
        controller.reconcile([adding.name, losing.name])
        took = time.monotonic() - started
        assert [r.name for r in stub.reviews()][:2] == [losing.name, adding.name]
        assert READY_LABEL not in losing.own_labels()
        assert READY_LABEL not in losing.agent_labels()
        assert took < SHORT_TIMEOUT[1] + 3, took
        assert controller.backoffs[adding.name].failures == 1
        assert binary_label("bridge") not in adding.own_labels()
    finally:
        stub.stop()


def going_down_with_events_held(cp: ControlPlane, nodes: list[StandInNode], marker: str
                                ) -> tuple[StandInNode, StubWebhook]:
    """A node of the test going down, and an admission webhook on Events (not started) that never answers
    (its timeoutSeconds, 30s, holds each Event the controller records)."""
    losing = stub_node(cp, nodes, marker)
    down(cp, losing)
    return losing, StubWebhook(cp, f"events-{marker}", EVENT_CREATES, lambda r: None, timeout_seconds=30,
                               failure_policy="Ignore",
                               namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": "default"}})


def probe_event(cp: ControlPlane) -> None:
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "probe.", "namespace": "default"},
             "involvedObject": {"kind": "Node", "name": "probe"}, "reason": "Probe", "message": "probe"}
    cp.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(event), check=False)


def test_events_are_sent_off_the_decision_path_and_dropped_counted_when_too_many_wait(
        controlplane: ControlPlane, nodes: list[StandInNode], marker: str, caplog: pytest.LogCaptureFixture) -> None:
    """An admission webhook on Events that never answers (its timeoutSeconds, 30s, held each Event the
    controller recorded, and with it every node's labels): the node loses its ready label at once,
    the MultusNotReady Event waits in the recorder's queue. Past the queue's capacity Events are
    dropped, counted and logged; once Events go through again what waited is sent."""
    cp = controlplane
    losing, stub = going_down_with_events_held(cp, nodes, marker)
    caplog.set_level(logging.INFO, logger="webhook.kube")
    recorder = None
    try:
        stub.start(lambda: probe_event(cp))
        controller = leading(cp, store_of(cp, losing), marker)
        started = time.monotonic()
        controller.reconcile([losing.name])
        # Sent on the pass, the Event would hold it for its read timeout (the webhook holds it for 30s);
        # off it, the pass is two patches. Under that bound either way: 2s measured the machine too.
        assert time.monotonic() - started < SHORT_TIMEOUT[1] - 1
        assert READY_LABEL not in losing.own_labels()
        assert READY_LABEL not in losing.agent_labels()
        eventually(lambda: stub.reviews(losing.name), what="the MultusNotReady Event on its way")

        recorder = EventRecorder(load_client(str(cp.kubeconfig)), component="test", instance=marker, capacity=2)
        reasons = [f"Queued{i}" for i in range(5)]
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": losing.name}}
        recorder.emit(node, kind="Node", event_type="Normal", reason=reasons[0], message="first")
        eventually(lambda: [r for r in stub.reviews() if r.object.get("reason") == reasons[0]],
                   what="the first Event held by the webhook")
        for reason in reasons[1:]:
            recorder.emit(node, kind="Node", event_type="Normal", reason=reason, message="waits or is dropped")
        assert recorder.dropped == 2
        assert any("dropping event Queued3 on Node/" in r.getMessage() for r in caplog.records)
        stub.stop()  # Events go through again
        eventually(lambda: any("dropped 2 events while 2 were waiting" in r.getMessage() for r in caplog.records),
                   what="the drops counted once the queue drained", timeout=SHORT_TIMEOUT[1] * 3)
        recorded = eventually(lambda: {e["reason"] for e in losing.events()} & set(reasons[1:]),
                              what="the Events that waited sent", until=lambda got: len(got) == 2)
        assert recorded == {"Queued1", "Queued2"}
    finally:
        stub.stop()
        if recorder is not None:
            recorder.close(SHORT_TIMEOUT[1])


def exposed_node(store: ClusterStore, name: str) -> None:
    """A settled node in ``store`` only (its Events need no Node in the apiserver): ready, labelled so, with
    a state whose RebootRaceGuarded is False for a config at the top level."""
    store.upsert(NODE, {"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": name, "uid": name, "labels": {READY_LABEL: "true"}},
                        "status": {"nodeInfo": {"bootID": "boot-1"},
                                   "conditions": [{"type": "Ready", "status": "True"}]}})
    stamp = format_time(utcnow())
    race = {"type": "RebootRaceGuarded", "status": "False", "reason": "OtherTopLevelConfig",
            "message": "/etc/cni/net.d/05-cilium.conflist is a CNI config at the top level",
            "lastTransitionTime": stamp}
    store.upsert(NODE_STATE, {**nodestate.new_object(name, NAMESPACE), "status": {
        "nodeName": name, "bootID": "boot-1", "multusReady": True, "cniBinaries": [], "dhcpDaemon": False,
        "heartbeatTime": stamp,
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllChecksPassed", "message": "ok",
                        "lastTransitionTime": stamp}, race]}})


def test_a_start_over_many_exposed_nodes_warns_each_once_as_the_event_queue_drains_and_crowds_out_no_other(
        controlplane: ControlPlane, nodes: list[StandInNode], marker: str) -> None:
    """A leader's first pass finds more nodes whose RebootRaceGuarded is False than its Event queue holds,
    while the apiserver is slow to take Events (an admission webhook holds them). Counted as warned
    before their Events were queued, most were dropped and never sent in that process, and the
    MultusNotReady of a node going down after them in the pass was dropped too. The warnings leave half
    the queue to the others, wait rather than drop, and are all sent, once each, in later passes."""
    cp = controlplane
    losing, stub = going_down_with_events_held(cp, nodes, marker)
    store = store_of(cp, losing)
    exposed = [f"exposed-{marker}-{i}" for i in range(8)]
    for name in exposed:
        exposed_node(store, name)

    def warned() -> dict[str, int]:
        events = json.loads(cp.kubectl("get", "events", "-n", "default", "--field-selector",
                                       f"reason={REBOOT_RACE_EXPOSED_EVENT}", "-o", "json").stdout)["items"]
        names = [e["involvedObject"]["name"] for e in events]
        return {n: names.count(n) for n in exposed if n in names}

    controller = leading(cp, store, marker)
    controller.events = EventRecorder(load_client(str(cp.kubeconfig)), component="test", instance=marker, capacity=4)
    try:
        stub.start(lambda: probe_event(cp))
        assert controller.elector.try_acquire_or_renew()
        controller.reconcile(None)
        assert READY_LABEL not in losing.own_labels()
        assert controller.events.dropped == 0
        stub.stop()  # Events go through again
        eventually(lambda: "MultusNotReady" in [e["reason"] for e in losing.events()], what="MultusNotReady sent")

        def passes() -> dict[str, int]:
            assert controller.elector.try_acquire_or_renew()
            controller.reconcile(controller._due(time.monotonic()))
            return warned()

        eventually(passes, what="every exposed node warned", until=lambda got: len(got) == len(exposed),
                   timeout=30)
        # Every node looked at again in the same term (as heartbeats bring looks): no second Event.
        controller._forget_looks()
        controller.reconcile(None)
        controller.events.close(SHORT_TIMEOUT[1])
        assert warned() == dict.fromkeys(exposed, 1)
        assert controller.events.dropped == 0
    finally:
        stub.stop()
        controller.events.close(SHORT_TIMEOUT[1])


def test_a_node_warned_of_then_deleted_while_another_replica_leads_is_forgotten_at_the_next_term(
        controlplane: ControlPlane, marker: str) -> None:
    """Which nodes were warned of the reboot race is kept across leader terms (this process sent their
    Events already), so a node deleted while another replica led was never forgotten: its entry stayed
    for the life of the process, one more with each node an autoscaler took away. The first pass of a
    term forgets it, and keeps that of a node still there."""
    cp = controlplane
    store = ClusterStore()
    gone, kept = f"exposed-{marker}-gone", f"exposed-{marker}-kept"
    for name in (gone, kept):
        exposed_node(store, name)
    controller = leading(cp, store, marker)
    try:
        controller._resume(("term-1", 0), time.monotonic())
        controller.reconcile(None)
        assert set(controller.race_warned) == {gone, kept}
        controller._lapse()  # another replica leads; meanwhile the node and its state go
        store.delete(NODE_STATE, store.node_state(gone))
        store.delete(NODE, store.node_object(gone))
        assert controller.elector.try_acquire_or_renew()
        controller._resume(("term-3", 0), time.monotonic())
        controller.reconcile(None)
        assert set(controller.race_warned) == {kept}
    finally:
        controller.events.close(SHORT_TIMEOUT[1])


def test_a_node_deleted_while_another_replica_leads_leaves_the_gauge_at_the_next_term(
        controlplane: ControlPlane, marker: str) -> None:
    """The verdicts the leader's multus_webhook_nodes counts are kept across terms: a node deleted while
    another replica led (an autoscaler's scale-down) was counted for the life of the process, firing an
    alert on not-ready nodes for good. The first pass of a term forgets it, whether or not it was warned of."""
    cp = controlplane
    store = ClusterStore()
    gone, kept = f"exposed-{marker}-gone", f"exposed-{marker}-kept"
    for name in (gone, kept):
        exposed_node(store, name)
    controller = leading(cp, store, marker)
    registry = CollectorRegistry()
    controller_metrics.register(registry, controller)

    def counted() -> float:
        return sum(s.value for m in registry.collect() for s in m.samples if s.name == "multus_webhook_nodes")

    try:
        controller._resume(("term-1", 0), time.monotonic())
        controller.reconcile(None)
        controller.unreported_warned.add(gone)  # as if its agent had never reported
        assert counted() == 2
        controller._lapse()
        store.delete(NODE_STATE, store.node_state(gone))
        store.delete(NODE, store.node_object(gone))
        controller.race_warned.pop(gone)  # a node never warned of: only its verdict is left
        assert controller.elector.try_acquire_or_renew()
        controller._resume(("term-3", 0), time.monotonic())
        controller.reconcile(None)
        assert counted() == 1
        assert set(controller.verdicts) == {kept}
        assert gone not in controller.unreported_warned
    finally:
        controller.events.close(SHORT_TIMEOUT[1])


def beat(cp: ControlPlane, store: ClusterStore, node: StandInNode) -> None:
    """A heartbeat other than the last, in the apiserver and in ``store`` (as its watch would bring it)."""
    stamp = format_time(utcnow() + timedelta(seconds=1))
    cp.kubectl("patch", "mns", "-n", NAMESPACE, node.name, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"heartbeatTime": stamp}}))
    store.upsert(NODE_STATE, json.loads(cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o", "json").stdout))


def test_an_eviction_that_hangs_holds_up_the_pass_seconds_only_and_the_repair_keeps_its_place(
        controlplane: ControlPlane, nodes: list[StandInNode], marker: str, namespace: str) -> None:
    """An admission webhook on evictions holds them (up to its timeoutSeconds, 30s): the repair's
    eviction used the 60s default, and the node looked at after the repairing one (a binary label to
    add) waited the webhook's 30s. The eviction is given up after a few seconds, the node backs off
    with the pod still first in its repair's line, and the next look after the back-off evicts it."""
    cp = controlplane
    repairing = stub_node(cp, nodes, marker)
    adding = stub_node(cp, nodes, marker)
    make_state(cp, repairing, [])
    make_state(cp, adding, ["bridge"])
    # What a kubelet leaves after a reboot before Multus was back: a sandbox made with the primary
    # network only, under a network-status that lists one of the pod's two networks.
    now = format_time(utcnow())
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": str(uuid.uuid4()), "controller": True}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "damaged", "namespace": namespace, "ownerReferences": [owner], "annotations": {
               "k8s.v1.cni.cncf.io/networks": "net-a, net-b",
               "k8s.v1.cni.cncf.io/network-status": json.dumps([{"name": f"{namespace}/net-a", "interface": "net1"}])}},
           "spec": {"nodeName": repairing.name, "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    cp.kubectl("create", "-f", "-", input=json.dumps(pod))
    cp.kubectl("patch", "pod", "-n", namespace, "damaged", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"phase": "Running", "startTime": now, "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now}]}}))
    eviction = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                           "metadata": {"name": "damaged", "namespace": namespace}})
    stub = StubWebhook(cp, f"evictions-{marker}", EVICTIONS, lambda r: None, timeout_seconds=30,
                       namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}})
    try:
        stub.start(lambda: cp.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/damaged/eviction"
                                      "?dryRun=All", "-f", "-", input=eviction, check=False))
        store = store_of(cp, repairing, adding)
        controller = leading(cp, store, marker, repair=True)
        controller.reconcile([repairing.name])  # its heartbeat seen once: not ready before it is seen to change
        beat(cp, store, repairing)
        started = time.monotonic()
        controller.reconcile([repairing.name, adding.name])
        took = time.monotonic() - started
        assert [r.operation for r in stub.reviews("damaged")] == ["CREATE"]  # the eviction, held
        assert took < SHORT_TIMEOUT[1] + 3, took
        assert READY_LABEL in repairing.own_labels()
        assert binary_label("bridge") in adding.own_labels()
        held = controller.backoffs[repairing.name]
        assert held.failures == 1
        job = controller.repairs[repairing.name]
        assert job.todo is not None
        assert [d.name for d in job.todo] == ["damaged"]
        assert not cp.kubectl("get", "pod", "-n", namespace, "damaged",
                              "-o", "jsonpath={.metadata.deletionTimestamp}").stdout

        stub.answer = allow
        eventually(lambda: time.monotonic() >= held.not_before, what="the back-off over")
        beat(cp, store, repairing)
        controller.reconcile([repairing.name])
        assert cp.kubectl("get", "pod", "-n", namespace, "damaged",
                          "-o", "jsonpath={.metadata.deletionTimestamp}").stdout
        assert repairing.name not in controller.backoffs
        assert job.done
    finally:
        stub.stop()


def test_deleting_the_state_of_a_gone_node_that_hangs_holds_up_the_pass_seconds_only(
        controlplane: ControlPlane, nodes: list[StandInNode], marker: str) -> None:
    """The MultusNodeState of a node that is gone is deleted in the same loop: an admission webhook
    holding that deletion (its timeoutSeconds, 30s) held the next node's labels as long."""
    cp = controlplane
    adding = stub_node(cp, nodes, marker)
    make_state(cp, adding, ["bridge"])
    gone = f"gone-{marker}"
    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(gone, NAMESPACE)))
    cp.kubectl("label", "mns", "-n", NAMESPACE, gone, f"stub={marker}")
    stub = StubWebhook(cp, f"deletes-{marker}", STATE_DELETES, lambda r: None, timeout_seconds=30,
                       object_selector={"matchLabels": {"stub": marker}})
    try:
        stub.start(lambda: cp.kubectl("delete", "mns", "-n", NAMESPACE, gone, "--dry-run=server", check=False))
        store = store_of(cp, adding)
        store.upsert(NODE_STATE, json.loads(cp.kubectl("get", "mns", "-n", NAMESPACE, gone, "-o", "json").stdout))
        controller = leading(cp, store, marker)
        started = time.monotonic()
        controller.reconcile([gone, adding.name])
        took = time.monotonic() - started
        assert [r.operation for r in stub.reviews(gone)] == ["DELETE"]  # held
        assert took < SHORT_TIMEOUT[1] + 3, took
        assert binary_label("bridge") in adding.own_labels()
    finally:
        stub.stop()
        cp.kubectl("delete", "mns", "-n", NAMESPACE, gone, "--ignore-not-found", check=False)


def events_on(cp: ControlPlane, name: str) -> list[dict[str, Any]]:
    """The Events about an object named ``name`` in the default namespace (where Node Events go)."""
    listed = cp.kubectl("get", "events", "-n", "default", "--field-selector", f"involvedObject.name={name}",
                        "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def test_an_event_said_again_counts_on_the_one_made_and_one_gone_is_made_anew(
        controlplane: ControlPlane, marker: str) -> None:
    """A Multus daemon that crash-loops says the same MultusNotReady at each restart: one Event object
    whose count grows, not one object per restart. Another message is another Event; an Event gone
    (expired, deleted) is made anew at the next repeat."""
    cp = controlplane
    recorder = EventRecorder(load_client(str(cp.kubeconfig)), component="test", instance=marker)
    name = f"repeat-{marker}"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": marker}}

    def say(message: str) -> None:
        assert recorder.emit(node, kind="Node", event_type="Warning", reason="MultusNotReady", message=message)

    def counts() -> list[tuple[str, int]]:
        return sorted((e["message"], e["count"]) for e in events_on(cp, name))

    try:
        for _ in range(3):
            say("down")
        eventually(counts, what="one Event counted three times", until=lambda got: got == [("down", 3)])
        say("down again")
        eventually(counts, what="another message, another Event",
                   until=lambda got: got == [("down", 3), ("down again", 1)])
        made = next(e for e in events_on(cp, name) if e["message"] == "down")
        assert made["lastTimestamp"] >= made["firstTimestamp"]
        cp.kubectl("delete", "event", "-n", "default", made["metadata"]["name"])
        say("down")
        eventually(counts, what="the Event deleted made anew",
                   until=lambda got: got == [("down", 1), ("down again", 1)])
    finally:
        recorder.close(SHORT_TIMEOUT[1])


def test_a_reboot_race_warning_said_again_by_a_new_process_counts_on_the_event_already_there(
        controlplane: ControlPlane, marker: str) -> None:
    """A restart or a takeover (a new controller process, which remembers no Event) warns again of every
    node still exposed to the reboot race, as intended: on the Event the earlier process made, whose
    count it raises, not on one more object per node and rollout."""
    cp = controlplane
    store = ClusterStore()
    name = f"exposed-{marker}"
    exposed_node(store, name)
    first = leading(cp, store, marker)
    second = leading(cp, store, f"{marker}-next")
    try:
        first.reconcile(None)
        first.events.close(SHORT_TIMEOUT[1])
        assert [(e["reason"], e["count"]) for e in events_on(cp, name)] == [(REBOOT_RACE_EXPOSED_EVENT, 1)]
        second.reconcile(None)
        second.events.close(SHORT_TIMEOUT[1])
        events = events_on(cp, name)
        assert [(e["reason"], e["count"], e["reportingInstance"]) for e in events] == [
            (REBOOT_RACE_EXPOSED_EVENT, 2, marker)]
    finally:
        first.events.close(SHORT_TIMEOUT[1])
        second.events.close(SHORT_TIMEOUT[1])


def node_named(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": name}}


def warn(recorder: EventRecorder, name: str) -> None:
    assert recorder.emit(node_named(name), kind="Node", event_type="Warning", reason="MultusNotReady",
                         message="down", find=True)


def counts_of(cp: ControlPlane, component: str) -> dict[str, list[int]]:
    """The counts of the Events ``component`` made in the default namespace, by the object they are about."""
    listed = json.loads(cp.kubectl("get", "events", "-n", "default", "--field-selector",
                                   f"reportingComponent={component}", "-o", "json").stdout)["items"]
    counts: dict[str, list[int]] = {}
    for event in listed:
        counts.setdefault(event["involvedObject"]["name"], []).append(event["count"])
    return {name: sorted(found) for name, found in counts.items()}


def test_a_takeover_counts_on_more_events_than_a_recorder_remembers(
        controlplane: ControlPlane, marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a takeover with more exposed nodes than the Events a recorder remembers (4,096; 4 here), those
    found from the earlier process were evicted before their turn, each Event made evicting the next one
    to be said: every node got a second object. Found Events wait apart until said."""
    monkeypatch.setattr(kube, "EVENTS_REMEMBERED", 4)
    cp = controlplane
    component = f"test-{marker}"
    names = [f"many-{marker}-{i:02d}" for i in range(10)]
    for instance in ("first", "second"):
        recorder = EventRecorder(load_client(str(cp.kubeconfig)), component=component, instance=instance)
        try:
            for name in names:
                warn(recorder, name)
        finally:
            recorder.close(30)
    assert counts_of(cp, component) == {name: [2] for name in names}


def test_events_found_and_not_said_again_within_the_window_are_let_go(
        controlplane: ControlPlane, marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a takeover finds is every Warning of the reason its component made in the last hour, most never
    said again (another message, a node fixed since): past the window they would be made anew anyway, so
    they are not kept for the life of the process."""
    monkeypatch.setattr(kube, "EVENT_REPEAT_WINDOW", 3.0)
    cp = controlplane
    component = f"test-{marker}"
    names = [f"found-{marker}-{i}" for i in range(3)]
    first = EventRecorder(load_client(str(cp.kubeconfig)), component=component, instance="first")
    try:
        for name in names:
            warn(first, name)
    finally:
        first.close(30)
    second = EventRecorder(load_client(str(cp.kubeconfig)), component=component, instance="second")
    try:
        warn(second, names[0])
        eventually(lambda: counts_of(cp, component)[names[0]], what="counted on", until=[2].__eq__)
        assert len(second._found) == 2
        time.sleep(3)
        warn(second, f"found-{marker}-new")
        eventually(lambda: counts_of(cp, component).get(f"found-{marker}-new"), what="made", until=[1].__eq__)
        assert second._found == {}
    finally:
        second.close(SHORT_TIMEOUT[1])


def test_events_are_made_when_listing_them_is_forbidden_and_the_list_is_not_tried_at_each(
        controlplane: ControlPlane, marker: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """RBAC without list on Events (the ClusterRole before the recorder found Events, still applied; the
    same path as a list that times out): a Warning that may count on an earlier process's Event was lost,
    and each one listed again. It is made, and the list waits EVENT_LIST_RETRY."""
    cp = controlplane
    account = f"events-{marker}"
    cp.kubectl("create", "serviceaccount", "-n", "default", account)
    cp.kubectl("create", "clusterrole", account, "--verb=create,patch", "--resource=events")
    cp.kubectl("create", "clusterrolebinding", account, f"--clusterrole={account}",
               f"--serviceaccount=default:{account}")
    token = cp.kubectl("create", "token", account, "-n", "default", "--duration=1h").stdout.strip()
    config: dict[str, Any] = yaml.safe_load(cp.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = account
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    component = f"test-{marker}"
    recorder = EventRecorder(load_client(str(kubeconfig)), component=component, instance=marker)
    names = [f"unlisted-{marker}-{i}" for i in range(3)]
    caplog.set_level(logging.WARNING, logger=kube.log.name)
    try:
        for name in names:
            warn(recorder, name)
    finally:
        recorder.close(30)
    assert counts_of(cp, component) == {name: [1] for name in names}
    failed = [r.getMessage() for r in caplog.records if "could not list" in r.getMessage()]
    assert len(failed) == 1, failed
    assert "403" in failed[0]


def test_two_replicas_counting_on_one_event_do_not_lower_each_others_count(
        controlplane: ControlPlane, marker: str) -> None:
    """Replica A made an Event, B (leading since) found it and counted twice on it; A saying it again
    patched the count it knew, 3 back to 2. The patch holds the resourceVersion its count was read at;
    on a conflict it is read again."""
    cp = controlplane
    component = f"test-{marker}"
    name = f"shared-{marker}"
    first, second = (EventRecorder(load_client(str(cp.kubeconfig)), component=component, instance=instance)
                     for instance in ("a", "b"))
    try:
        for recorder, count in ((first, 1), (second, 2), (second, 3), (first, 4)):
            warn(recorder, name)
            expected = {name: [count]}
            eventually(lambda: counts_of(cp, component), what=f"count {count}", until=expected.__eq__)
    finally:
        first.close(SHORT_TIMEOUT[1])
        second.close(SHORT_TIMEOUT[1])


def test_a_node_no_agent_reports_on_gets_one_warning_and_the_leaders_metrics_count_nodes_by_verdict(
        controlplane: ControlPlane, nodes: list[StandInNode], marker: str) -> None:
    """A Ready node on which no agent ever reported has no ready label to take off, so no label change
    told why pods needing Multus are not scheduled there: once its grace is over it gets one Warning,
    not one per look. The leader's metrics count the nodes by verdict, a reason this version does not
    know (a newer agent's) as Other; a replica that does not lead reports no nodes."""
    cp = controlplane
    silent = stub_node(cp, nodes, marker)
    odd = stub_node(cp, nodes, marker)
    make_state(cp, odd, [])
    stamp = format_time(utcnow())
    cp.kubectl("patch", "mns", "-n", NAMESPACE, odd.name, "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"multusReady": False, "heartbeatTime": stamp, "conditions": [
            {"type": "Ready", "status": "False", "reason": "SomethingNewer", "message": "a newer agent's reason",
             "lastTransitionTime": stamp}]}}))
    controller = leading(cp, store_of(cp, silent, odd), marker)
    registry = CollectorRegistry()
    controller_metrics.register(registry, controller)
    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    try:
        controller.reconcile(None)
        # The silent node's grace (its agent may not have written yet), the other's reason as Other.
        assert sample("multus_webhook_nodes", ready="unknown", reason="NoNodeState") == 1
        assert sample("multus_webhook_nodes", ready="false", reason="Other") == 1

        def looked() -> tuple[bool | None, str]:
            assert controller.elector.try_acquire_or_renew()
            controller.reconcile(controller._due(time.monotonic()))
            return controller.verdicts[silent.name]

        eventually(looked, what="the grace over", until=lambda verdict: verdict == (False, "NoNodeState"))
        controller._forget_looks()  # looked at again, as a change of the Node brings a look
        controller.reconcile(None)
        controller.events.close(SHORT_TIMEOUT[1])
        warnings = [e for e in silent.events() if e["reason"] == "MultusNotReady"]
        assert [(e["type"], e["count"]) for e in warnings] == [("Warning", 1)], warnings
        assert warnings[0]["message"].startswith("no MultusNodeState reports on this node (is the agent running?); "
                                                 "pods that need Multus are not scheduled on this node")
        assert [e["reason"] for e in odd.events()] == []  # its agent reports: kubectl get mns says why
        assert sample("multus_webhook_controller_leader") == 1
        assert sample("multus_webhook_nodes", ready="false", reason="NoNodeState") == 1
        assert sample("multus_webhook_nodes", ready="false", reason="HeartbeatStale") == 1  # unchanged since
        assert sample("multus_webhook_events_dropped_total") == 0
        assert sample("multus_webhook_pod_repairs_total", result="evicted") == 0
        controller.elector.release()
        assert sample("multus_webhook_controller_leader") == 0
        assert not [s for m in registry.collect() for s in m.samples if s.name == "multus_webhook_nodes"]
    finally:
        controller.events.close(SHORT_TIMEOUT[1])
