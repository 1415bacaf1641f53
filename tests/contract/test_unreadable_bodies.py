"""Bodies aiohttp cannot read and answers that cannot be written, against the real `multus-webhook serve`
over TLS: each gets a metav1.Status or an AdmissionReview, never a 500, and the log gets one line within
the error log's limit rather than a traceback for each request."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from webhook.dev.controlplane import WebhookServer, eventually

REQUESTS = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    with WebhookServer(tmp_path_factory.mktemp("unreadable")) as srv:
        yield srv


def connect(server: WebhookServer) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)


def send(server: WebhookServer, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = connect(server)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def log_lines(server: WebhookServer) -> list[str]:
    return (server.dir / "webhook.log").read_text().splitlines()


def error_answers(server: WebhookServer, endpoint: str, code: str) -> float:
    conn = connect(server)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "multus_webhook_error_answers_total" and s.labels == {"endpoint": endpoint, "code": code})


def test_a_body_not_in_its_content_encoding_is_a_400_naming_it(server: WebhookServer) -> None:
    """zlib's error surfaced as an internal error, with a traceback of 75 lines for each request."""
    before, counted = len(log_lines(server)), error_answers(server, "/validate", "400")
    for encoding in ("gzip", "deflate"):
        for _ in range(REQUESTS):
            status, body = send(server, "/validate", b"hello, not compressed", {"Content-Encoding": encoding})
            assert status == 400, body
            answer = json.loads(body)
            assert (answer["kind"], answer["reason"]) == ("Status", "BadRequest")
            assert answer["message"].startswith(f"body cannot be decoded as Content-Encoding '{encoding}'")
    logged = log_lines(server)[before:]
    assert not [line for line in logged if "Traceback" in line or "ERROR" in line], logged
    assert len([line for line in logged if "answered 400" in line]) == 1, logged
    assert error_answers(server, "/validate", "400") == counted + 2 * REQUESTS


def test_a_client_gone_before_its_body_is_one_line_not_a_500(server: WebhookServer) -> None:
    before, counted = len(log_lines(server)), error_answers(server, "/mutate", "400")
    for _ in range(REQUESTS):
        conn = connect(server)
        conn.putrequest("POST", "/mutate")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", "1000")
        conn.endheaders(b'{"apiVersion": ')
        conn.close()
    eventually(lambda: error_answers(server, "/mutate", "400"), "the answers to the clients gone",
               lambda count: count == counted + REQUESTS, timeout=10)
    logged = log_lines(server)[before:]
    assert not [line for line in logged if "Traceback" in line or "ERROR" in line], logged
    assert [line[line.index("POST"):] for line in logged if "answered" in line] == [
        "POST /mutate answered 400: the client closed the connection before its whole body arrived"]


def test_malformed_chunks_log_one_line_within_the_limit(server: WebhookServer) -> None:
    """aiohttp answers these itself; its logger wrote an ERROR and a traceback of 11 lines for each."""
    before = len(log_lines(server))
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    for _ in range(REQUESTS):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                             server_hostname="127.0.0.1") as conn:
            # One write: aiohttp finds the error before the request reaches the application.
            conn.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\nZZ\r\n')
            assert conn.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    logged = log_lines(server)[before:]
    assert not [line for line in logged if "Traceback" in line or "ERROR" in line], logged
    assert [line[line.index("malformed"):] for line in logged if "answered" in line] == [
        "malformed request answered 400: Invalid character in chunk size: b'ZZ' ^"]


def deep_pod_review(depth: int) -> bytes:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "default", "annotations": {"k8s.v1.cni.cncf.io/networks": "net1"}},
           "spec": {"containers": [{"name": "c", "image": "i"}], "affinity": "AFFINITY"}}
    review = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": f"deep-{depth}", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "default", "name": "p", "object": pod}})
    # Written out: the json module does not write 1000 levels.
    return review.replace('"AFFINITY"', '{"a": ' * depth + "1" + "}" * depth).encode()


def test_a_patch_too_deep_to_write_is_a_denial_naming_the_field(server: WebhookServer) -> None:
    """The mutation copies spec.affinity into its patch; orjson reads 1024 levels but writes 254, and
    the answer was a 500."""
    status, body = send(server, "/mutate", deep_pod_review(252))
    assert status == 200, body
    assert json.loads(body)["response"]["patchType"] == "JSONPatch"
    for depth in (253, 1000):
        status, body = send(server, "/mutate", deep_pod_review(depth))
        assert status == 200, body
        response = json.loads(body)["response"]
        assert response["uid"] == f"deep-{depth}"
        assert response["allowed"] is False
        assert "patch" not in response
        assert (response["status"]["code"], response["status"]["reason"]) == (422, "Invalid")
        assert (f"the value it would write at spec.affinity is nested {depth} levels deep"
                in response["status"]["message"])
