"""The HTTP contract of `multus-webhook serve`, over real TLS, against the real process."""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from webhook import certs
from webhook.dev.controlplane import WebhookServer, eventually, standalone_env

NAD_CONFIG = ('{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0", '
              '"ipam": {"type": "static", "addresses": [{"address": "10.1.0.5/24"}]}}')


def review(obj: dict[str, Any] | None = None, *, kind: str = "NetworkAttachmentDefinition",
           operation: str = "CREATE", uid: str | None = None) -> dict[str, Any]:
    group, version = ("k8s.cni.cncf.io", "v1") if kind == "NetworkAttachmentDefinition" else ("", "v1")
    obj = obj if obj is not None else {
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": kind,
        "metadata": {"name": "net1", "namespace": "default"}, "spec": {"config": NAD_CONFIG},
    }
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()), "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": "network-attachment-definitions"},
            "name": "net1", "namespace": "default", "operation": operation,
            "userInfo": {"username": "admin"}, "object": obj, "dryRun": False,
        },
    }


class Client:
    def __init__(self, server: WebhookServer) -> None:
        self.port = server.port
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, bytes]:
        conn = self.connect()
        try:
            conn.request(method, path, body=body, headers={"Content-Type": content_type} if body is not None else {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def post_review(self, payload: dict[str, Any], path: str = "/validate") -> dict[str, Any]:
        status, body = self.request("POST", path, json.dumps(payload).encode())
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    with WebhookServer(tmp_path_factory.mktemp("contract")) as srv:
        yield srv


@pytest.fixture
def client(server: WebhookServer) -> Client:
    return Client(server)


def test_uid_and_type_are_echoed(client: Client) -> None:
    uid = "6a0e8d7e-1111-4aa0-9c1a-000000000001"
    answer = client.post_review(review(uid=uid))
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == uid
    assert answer["response"]["allowed"] is True


def test_denial_has_code_and_message_and_no_patch(client: Client) -> None:
    bad = review({"kind": "NetworkAttachmentDefinition", "metadata": {"name": "x"},
                  "spec": {"config": '{"cniVersion": "0.3.1"}'}})
    response = client.post_review(bad)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "spec.config.type is missing" in response["status"]["message"]
    assert "patch" not in response
    assert "patchType" not in response


def test_validation_never_returns_a_patch(client: Client) -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default",
                                        "labels": {"multus-webhook.io/network-profile": "x"}}, "spec": {}}
    response = client.post_review(review(pod, kind="Pod"))["response"]
    assert "patch" not in response
    assert "patchType" not in response


def test_apiserver_timeout_query_is_accepted(client: Client) -> None:
    answer = client.post_review(review(), path="/validate?timeout=10s")
    assert answer["response"]["allowed"] is True


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not valid JSON"),
    (b"[]", "not an admission.k8s.io/v1 AdmissionReview"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}).encode(),
     "apiVersion"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request"),
    (json.dumps({**review(), "request": {**review()["request"], "operation": "PATCH"}}).encode(), "operation"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
])
def test_malformed_requests_are_400_with_a_reason(client: Client, body: bytes, reason: str) -> None:
    status, answer = client.request("POST", "/validate", body)
    assert status == 400
    status_body = json.loads(answer)
    # A metav1.Status: the only body whose message client-go (the apiserver) passes on.
    assert {k: status_body[k] for k in ("apiVersion", "kind", "status", "reason", "code")} == {
        "apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "BadRequest", "code": 400}
    assert reason in status_body["message"]
    assert b"Traceback" not in answer


def test_an_object_nested_too_deeply_to_read_is_denied_saying_why(client: Client) -> None:
    """The apiserver accepts JSON nested 10,000 levels (a NetworkProfile's cni-args keeps any); orjson
    stops at 1024. With the uid still found, the user gets a denial naming the limit, not the
    apiserver's "failed calling webhook"."""
    uid = "6a0e8d7e-1111-4aa0-9c1a-000000000002"
    nested = b'{"a": ' * 1100 + b"1" + b"}" * 1100
    body = json.dumps(review(uid=uid)).encode().replace(b'"spec": {', b'"deep": ' + nested + b', "spec": {')
    status, answer = client.request("POST", "/validate", body)
    assert status == 200, answer
    response = json.loads(answer)["response"]
    assert response["uid"] == uid
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert "nested more than 1024 levels deep" in response["status"]["message"]


def test_wrong_content_type_is_415(client: Client) -> None:
    status, answer = client.request("POST", "/validate", json.dumps(review()).encode(), content_type="text/plain")
    assert status == 415
    assert json.loads(answer)["reason"] == "UnsupportedMediaType"
    assert "application/json" in json.loads(answer)["message"]


def test_body_over_7_mib_is_413(client: Client) -> None:
    payload = review()
    payload["request"]["object"]["metadata"]["annotations"] = {"big": "x" * (7 * 1024 * 1024)}
    status, answer = client.request("POST", "/validate", json.dumps(payload).encode())
    assert status == 413
    assert b"larger than" in answer


def test_health_readiness_and_metrics(client: Client) -> None:
    client.post_review(review())
    assert client.request("GET", "/healthz")[0] == 200
    assert client.request("GET", "/readyz")[0] == 200
    status, body = client.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    assert ('multus_webhook_requests_total{dry_run="false",endpoint="/validate",kind="NetworkAttachmentDefinition",'
            'operation="CREATE",verdict="allow"}') in text
    assert 'multus_webhook_request_duration_seconds_bucket{endpoint="/validate"' in text
    # Deadline answers come seconds after the request: buckets that tell 4s from 9s.
    assert 'multus_webhook_request_duration_seconds_bucket{endpoint="/validate",le="10.0"}' in text
    # It counts 404s and 405s on any path too.
    assert ("# HELP multus_webhook_error_answers_total Requests to any path answered with an HTTP error (a "
            "metav1.Status) instead of an AdmissionReview, by endpoint (the path of a route, other for any other)"
            ) in text
    assert "\nprocess_resident_memory_bytes " in text
    assert "\npython_info{" in text


def test_error_answers_are_counted_by_endpoint_and_code(client: Client) -> None:
    def count() -> float:
        text = client.request("GET", "/metrics")[1].decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "multus_webhook_error_answers_total" and sample.labels == {
                        "endpoint": "/mutate", "code": "415"}:
                    return sample.value
        return 0.0

    before = count()
    assert client.request("POST", "/mutate", b"{}", content_type="text/plain")[0] == 415
    assert count() == before + 1


SERVED = "multus-webhook serves POST /validate, POST /mutate, GET /healthz, GET /readyz, GET /metrics"


def test_a_path_or_method_not_served_is_a_status_naming_the_endpoints(client: Client) -> None:
    # They were aiohttp's plain-text "404: Not Found" and "405: Method Not Allowed".
    def errors() -> dict[tuple[str, str], float]:
        text = client.request("GET", "/metrics")[1].decode()
        return {(s.labels["endpoint"], s.labels["code"]): s.value for family in text_string_to_metric_families(text)
                for s in family.samples if s.name == "multus_webhook_error_answers_total"}

    before = errors()
    conn = client.connect()
    try:
        conn.request("GET", "/validate")
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (
            405, failure(405, "MethodNotAllowed", f"/validate does not take GET; {SERVED}"))
        assert resp.getheader("Allow") == "POST"
    finally:
        conn.close()
    for path in ("/nothere", "/nothere/%0Aelse", "/validate/"):
        status, body = client.request("POST", path, b"{}")
        assert (status, json.loads(body)) == (404, failure(404, "NotFound", f"no such endpoint; {SERVED}"))
    after = errors()
    # Paths nobody routes share one label: a client cannot add label values at will.
    assert after[("/validate", "405")] == before.get(("/validate", "405"), 0) + 1
    assert after[("other", "404")] == before.get(("other", "404"), 0) + 3
    assert not {endpoint for endpoint, _ in after} - {"/validate", "/mutate", "other"}


def test_junk_requests_log_their_first_error_answer_and_not_one_line_each(tmp_path: Path) -> None:
    """Anyone reaching the port can send junk as fast as they like: a line for each would bury the log
    (the counter above records the volume)."""
    with WebhookServer(tmp_path) as server:
        conn = Client(server).connect()
        for body, content_type in [(b"x", "text/plain")] * 200 + [(b"{", "application/json")] * 200:
            conn.request("POST", "/validate", body=body, headers={"Content-Type": content_type})
            conn.getresponse().read()
        conn.close()
        lines = (server.dir / "webhook.log").read_text().splitlines()
    logged = [line[line.index("POST"):] for line in lines if "answered" in line]
    assert len(logged) == 2, logged
    assert logged[0] == "POST /validate answered 415: Content-Type must be application/json, not 'text/plain'"
    assert logged[1].startswith("POST /validate answered 400: body is not valid JSON: ")


def test_metrics_show_the_serving_certificate(client: Client, server: WebhookServer) -> None:
    served = x509.load_pem_x509_certificate((server.cert_dir / "tls.crt").read_bytes())
    samples = {sample.name: sample.value
               for family in text_string_to_metric_families(client.request("GET", "/metrics")[1].decode())
               for sample in family.samples}
    assert samples["multus_webhook_certificate_expiry_timestamp_seconds"] == served.not_valid_after_utc.timestamp()
    assert samples["multus_webhook_certificate_reload_failures_total"] == 0


def test_kinds_not_served_share_one_metrics_label(client: Client) -> None:
    # Any client can send any kind: one series per kind would grow without bound.
    series = ('multus_webhook_requests_total{dry_run="false",endpoint="/validate",kind="other",operation="CREATE",'
              'verdict="allow"} ')

    def count() -> float:
        text = client.request("GET", "/metrics")[1].decode()
        assert "Bogus" not in text
        return sum(float(line.removeprefix(series)) for line in text.splitlines() if line.startswith(series))

    before = count()
    for i in range(3):
        client.post_review(review(kind=f"Bogus{i}"))
    assert count() == before + 3


def test_bindings_count_under_their_own_kind(client: Client) -> None:
    # /validate judges Bindings (pod-binding-selection): like the other kinds it serves, not "other".
    def count(kind: str) -> float:
        series = (f'multus_webhook_requests_total{{dry_run="false",endpoint="/validate",kind="{kind}",'
                  'operation="CREATE",verdict="allow"} ')
        text = client.request("GET", "/metrics")[1].decode()
        return sum(float(line.removeprefix(series)) for line in text.splitlines() if line.startswith(series))

    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "net1", "namespace": "default"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    before, other_before = count("Binding"), count("other")
    for _ in range(2):
        assert client.post_review(review(binding, kind="Binding"))["response"]["allowed"] is True
    assert (count("Binding"), count("other")) == (before + 2, other_before)


def test_only_tls_is_served(server: WebhookServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(100)
    assert not reply.startswith(b"HTTP/1.1 200")


def tls_version(server: WebhookServer, maximum: ssl.TLSVersion) -> str | None:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    ctx.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock, \
            ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        return tls.version()


def test_tls_1_3_is_preferred_and_1_2_accepted(server: WebhookServer) -> None:
    assert tls_version(server, ssl.TLSVersion.MAXIMUM_SUPPORTED) == "TLSv1.3"
    assert tls_version(server, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_tls_1_2_takes_only_ecdhe_with_aead_ciphers(server: WebhookServer) -> None:
    """OpenSSL's defaults took the CBC suites Go lists as insecure (crypto/tls InsecureCipherSuites), such
    as ECDHE-ECDSA-AES256-SHA384; Go's defaults, which the apiserver offers, are ECDHE with AES-GCM or
    ChaCha20-Poly1305."""
    offered = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    offered.set_ciphers("ALL:@SECLEVEL=0")
    accepted = []
    for cipher in {c["name"] for c in offered.get_ciphers() if c["protocol"] == "TLSv1.2"}:
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(f"{cipher}:@SECLEVEL=0")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock, \
                    ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
                accepted.append(cipher)
        except ssl.SSLError:
            pass
    assert sorted(accepted) == ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                "ECDHE-ECDSA-CHACHA20-POLY1305"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_below_1_2_is_refused_by_the_server(server: WebhookServer) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused, \
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock, ctx.wrap_socket(sock):
        pass
    # The server hung up on the hello (or sent a protocol_version alert); a client unable to speak
    # TLS 1.1 would have failed with NO_PROTOCOLS_AVAILABLE before sending anything.
    assert isinstance(refused.value, ssl.SSLEOFError) or "PROTOCOL_VERSION" in str(refused.value).upper()


def served_serial(port: int, ca: Path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
            ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_swapped_on_disk_is_served_by_the_next_connection(tmp_path: Path) -> None:
    with WebhookServer(tmp_path) as server:
        client = Client(server)
        first = served_serial(server.port, server.ca_file)
        failures: list[str] = []
        answered = 0
        stop = threading.Event()

        def load() -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    client.post_review(review())  # a new connection (and handshake) each time
                    answered += 1
                except Exception as exc:
                    failures.append(repr(exc))

        worker = threading.Thread(target=load)
        worker.start()
        try:
            # Counted, not timed: on a loaded machine half a second may not see a single request.
            eventually(lambda: answered >= 3, what="requests under way before the swap")
            # A new serving certificate from a new CA: the client trusts both, as during a CA rotation.
            new_ca = certs.new_ca("rotated-ca")
            leaf = certs.issue(new_ca, "127.0.0.1", ip_addresses=["127.0.0.1"])
            bundle = server.ca_file.read_bytes() + new_ca.cert_pem
            client.ctx.load_verify_locations(cadata=new_ca.cert_pem.decode())
            certs.write_bundle(server.cert_dir, new_ca, leaf, force=True)
            server.ca_file.write_bytes(bundle)
            second = served_serial(server.port, server.ca_file)
            swapped = answered
            eventually(lambda: answered >= swapped + 3, what="requests answered after the swap")
        finally:
            stop.set()
            worker.join()
        assert second != first
        assert second == leaf.cert.serial_number
        assert answered > 0
        assert failures == []


def test_sigterm_drains_the_request_in_flight_and_exits_0(tmp_path: Path) -> None:
    server = WebhookServer(tmp_path)
    server.start()
    assert server.proc is not None
    body = json.dumps(review()).encode()
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:10])
        # One event loop serves both connections: by the time a request sent after that head is
        # answered, the head has been read and its handler started.
        assert Client(server).request("GET", "/healthz")[0] == 200
        os.kill(server.proc.pid, signal.SIGTERM)
        # The rest of the body only once the server is shutting down, and has counted this request
        # among those to drain (a request it had not seen yet would make this pass for nothing).
        log = server.dir / "webhook.log"
        draining = eventually(lambda: [line for line in log.read_text().splitlines() if "stopping: draining" in line],
                              what="the server to begin its shutdown")
        assert draining[0].endswith("stopping: draining 1 request(s) in flight"), draining
        tls.sendall(body[10:])
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    answer = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert answer["response"]["allowed"] is True
    assert server.proc.wait(20) == 0


def test_sigterm_lets_kept_alive_connections_end_after_an_answer(tmp_path: Path) -> None:
    """The apiserver keeps its connections to the pod (reached through the Service) and writes its next
    POST on one whenever it likes: after SIGTERM each answer says "Connection: close", and no connection
    is closed under a client that is writing a request (a POST cut off so is a failed call,
    kubernetes/kubernetes#127335)."""
    server = WebhookServer(tmp_path)
    server.start()
    assert server.proc is not None
    body = json.dumps(review()).encode()
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    lost: list[str] = []
    answered = closing = 0
    lock = threading.Lock()

    def keep_sending() -> None:
        nonlocal answered, closing
        conn: http.client.HTTPSConnection | None = None
        while True:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
                try:
                    conn.connect()
                except OSError:  # no longer listening: the client dials elsewhere
                    return
            try:
                conn.request("POST", "/validate?timeout=5s", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    lost.append(repr(exc))
                return
            with lock:
                answered += 1
                closing += resp.will_close
            if resp.will_close:
                conn.close()
                conn = None

    workers = [threading.Thread(target=keep_sending) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        eventually(lambda: answered >= 40, what="requests on kept-alive connections")
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.proc.wait(30) == 0
    finally:
        server.stop()
        for worker in workers:
            worker.join(30)
    assert lost == []
    assert closing >= len(workers)


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    certs_only = WebhookServer(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "webhook.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--cert-dir", str(certs_only.cert_dir)], capture_output=True, text=True, timeout=60,
            env=standalone_env())
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"multus-webhook serve: cannot listen on 127.0.0.1:{port}: Address already in use")


def test_patch_is_base64_json_patch(client: Client) -> None:
    # A pod asking for secondary networks is held back until Multus is ready on its node: a patch
    # adds the readiness affinity and its mark (no cluster state here, so that is all), nothing the user
    # wrote goes.
    annotations = {"k8s.v1.cni.cncf.io/networks": "macvlan-conf", "team": "a"}
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "annotations": annotations},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
    response = client.post_review(review(pod, kind="Pod"), path="/mutate")["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    # The mark that tells /validate the pod went through /mutate is added.
    assert patched["metadata"] == {**pod["metadata"], "annotations": {
        **annotations, "multus-webhook.io/readiness-gate": "required"}}
    assert patched["spec"]["affinity"] == {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "multus-webhook",
                                          "app.kubernetes.io/component": "agent",
                                          "multus-webhook.io/multus-ready": "true"}},
        "namespaces": ["multus-webhook"], "topologyKey": "kubernetes.io/hostname"}]}}
    # A pod asking Multus for nothing is admitted unchanged.
    plain = {"kind": "Pod", "metadata": {"name": "q", "namespace": "default"}, "spec": {}}
    assert "patch" not in client.post_review(review(plain, kind="Pod"), path="/mutate")["response"]


def test_slow_clients_are_cut_off_and_do_not_hold_up_others(tmp_path: Path) -> None:
    with WebhookServer(tmp_path, ["--idle-timeout", "2", "--body-timeout", "1"]) as server:
        client = Client(server)
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        slow = []
        for _ in range(20):  # slowloris: request heads that never finish
            sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                                   server_hostname="127.0.0.1")
            sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        try:
            for _ in range(20):  # each on a new connection, answered while the slow ones wait
                assert client.post_review(review())["response"]["allowed"] is True
            # A body that never completes gets a 408 once the body timeout passes.
            body = json.dumps(review()).encode()
            trickle = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                                      server_hostname="127.0.0.1")
            trickle.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:20])
            assert trickle.recv(100).startswith(b"HTTP/1.1 408")
            trickle.close()
            # The idle timeout (2s) closes every unfinished head: recv returns b"" on close, and raises
            # if it is still open well after the timeout.
            for sock in slow:
                sock.settimeout(10)
                assert sock.recv(100) == b""
        finally:
            for sock in slow:
                sock.close()


def kubelet_probe(server: WebhookServer, path: str) -> int:
    """GET as the kubelet's HTTPS probe does: no client certificate, the server's not verified."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def failure(code: int, reason: str, message: str) -> dict[str, Any]:
    """The metav1.Status the server answers a refused client with (the apiserver quotes its message)."""
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": code,
            "reason": reason, "message": message}


def post_as(server: WebhookServer, certs_dir: Path, cert: str | None, path: str = "/validate") -> tuple[int, bytes]:
    """POST a review to ``path``, presenting the client certificate ``certs_dir``/``cert``.crt (none: None)."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    if cert:
        ctx.load_cert_chain(certs_dir / f"{cert}.crt", certs_dir / f"{cert}.key")
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(review()).encode(), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_client_ca_guards_admission_and_leaves_the_probes_open(tmp_path: Path) -> None:
    client_ca = certs.new_ca("apiserver-clients")
    (tmp_path / "client-ca.crt").write_bytes(client_ca.cert_pem)
    apiserver = certs.issue(client_ca, "kube-apiserver", client=True)
    (tmp_path / "client.crt").write_bytes(apiserver.cert_pem)
    (tmp_path / "client.key").write_bytes(apiserver.key_pem)
    stranger = certs.issue(certs.new_ca("other"), "stranger", client=True)
    (tmp_path / "stranger.crt").write_bytes(stranger.cert_pem)
    (tmp_path / "stranger.key").write_bytes(stranger.key_pem)

    # No client certificate for the start-up probe either: the Deployment's probes have none.
    with WebhookServer(tmp_path, ["--client-ca", str(tmp_path / "client-ca.crt")]) as server:
        post = functools.partial(post_as, server, tmp_path)
        for path in ("/validate", "/mutate"):
            status, body = post("client", path)
            assert status == 200, body
            assert json.loads(body)["response"]["allowed"] is True
            # No certificate: refused with a metav1.Status, which the apiserver quotes in its error.
            status, body = post(None, path)
            assert status == 401
            assert json.loads(body) == failure(
                401, "Unauthorized", f"multus-webhook answers {path} only over a connection that presents a client "
                "certificate signed by its --client-ca, and this one presented none (the apiserver presents one when "
                "its AdmissionConfiguration gives it a kubeconfig for this webhook)")
        # A certificate from another CA fails the handshake, whatever the path.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post("stranger")
        for path in ("/healthz", "/readyz", "/metrics"):
            assert kubelet_probe(server, path) == 200, path
        metrics = Client(server).request("GET", "/metrics")[1].decode()
        assert 'multus_webhook_unauthenticated_requests_total{endpoint="/validate"} 1.0' in metrics
        assert 'multus_webhook_unauthenticated_requests_total{endpoint="/mutate"} 1.0' in metrics


def test_client_name_admits_only_certificates_with_that_common_name(tmp_path: Path) -> None:
    # The apiserver's client CA is often the cluster CA, which signs every kubelet's certificate too.
    client_ca = certs.new_ca("cluster-ca")
    (tmp_path / "client-ca.crt").write_bytes(client_ca.cert_pem)
    for name in ("kube-apiserver", "system:node:worker-1"):
        pair = certs.issue(client_ca, name, client=True)
        (tmp_path / f"{name}.crt").write_bytes(pair.cert_pem)
        (tmp_path / f"{name}.key").write_bytes(pair.key_pem)
    args = ["--client-ca", str(tmp_path / "client-ca.crt"), "--client-name", "admission-client, kube-apiserver"]
    with WebhookServer(tmp_path, args) as server:
        post = functools.partial(post_as, server, tmp_path)
        for path in ("/validate", "/mutate"):
            status, body = post("kube-apiserver", path)
            assert status == 200, body
            assert json.loads(body)["response"]["allowed"] is True
            status, body = post("system:node:worker-1", path)
            assert status == 403
            assert json.loads(body) == failure(
                403, "Forbidden", f"multus-webhook answers {path} only to clients whose certificate has one of the "
                "Common Names of its --client-name (admission-client, kube-apiserver), and this one has "
                "'system:node:worker-1'")
        metrics = Client(server).request("GET", "/metrics")[1].decode()
        assert 'multus_webhook_forbidden_requests_total{endpoint="/validate"} 1.0' in metrics
