"""How long `multus-webhook serve` keeps connections, over real TLS, against the real process.

A connection with no request under way must stay open longer than the apiserver keeps idle ones (90s),
while a TLS handshake or a request head must be over within --idle-timeout. The tests do not wait for
a duration: a slow client whose head is cut off by the --idle-timeout deadline is the clock, and
whatever was started before that client's first byte has been waiting at least as long.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook import certs
from webhook.dev.controlplane import WebhookServer
from webhook.server import KEEPALIVE_TIMEOUT

#: http.DefaultTransport's IdleConnTimeout (Go net/http transport.go), which the apiserver's webhook
#: client inherits (k8s.io/apimachinery pkg/util/net/http.go SetOldTransportDefaults).
APISERVER_IDLE_CONN_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    with WebhookServer(tmp_path_factory.mktemp("connections"), ["--idle-timeout", "1"]) as srv:
        yield srv


def review() -> dict[str, Any]:
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "net1", "namespace": "default"},
           "spec": {"config": '{"cniVersion": "0.3.1", "type": "bridge", "ipam": {}}'}}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "k8s.cni.cncf.io", "version": "v1",
                                           "kind": "NetworkAttachmentDefinition"},
        "operation": "CREATE", "namespace": "default", "name": "net1", "object": nad}}


def tls_connection(server: WebhookServer) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                           server_hostname="127.0.0.1")


def https(server: WebhookServer) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)


def post(conn: http.client.HTTPSConnection) -> http.client.HTTPResponse:
    conn.request("POST", "/validate", body=json.dumps(review()).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp


def head_cut_off(server: WebhookServer) -> None:
    """Returns once the server has closed a connection whose request head stopped half-way, at least
    --idle-timeout after its first byte (recv raises instead if it stays open far longer)."""
    with tls_connection(server) as slow:
        slow.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
        assert slow.recv(100) == b""


def test_keep_alive_outlasts_the_apiserver_idle_connections() -> None:
    assert KEEPALIVE_TIMEOUT > APISERVER_IDLE_CONN_TIMEOUT


def test_connections_with_no_request_under_way_outlive_the_head_deadline(server: WebhookServer) -> None:
    used = https(server)
    assert post(used).status == 200
    kept = used.sock
    # Go's transport parks in its idle pool a connection it dialled for a request that another
    # connection then served: a new connection that has sent nothing is idle too.
    unused = tls_connection(server)
    try:
        head_cut_off(server)
        # Both have been idle for longer than --idle-timeout, and are still served.
        assert post(used).status == 200
        assert used.sock is kept  # the same connection, not a new one
        body = json.dumps(review()).encode()
        unused.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert unused.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        used.close()
        unused.close()


def test_a_tls_handshake_is_bounded_by_the_idle_timeout(server: WebhookServer) -> None:
    # Connected before the slow client, and never sends a ClientHello: asyncio's own handshake
    # timeout is 60s.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
        head_cut_off(server)
        assert silent.recv(100) == b""


def test_a_request_answered_before_its_body_arrived_closes_the_connection(server: WebhookServer) -> None:
    # Otherwise the rest of the body, arriving after the answer, would start the head deadline and
    # the server would close a connection the client believes it can reuse.
    with tls_connection(server) as conn:
        conn.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += conn.recv(65536)
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 415"), answer
        assert b"\r\nconnection: close" in head, answer


def test_a_complete_request_keeps_the_connection(server: WebhookServer) -> None:
    conn = https(server)
    try:
        for _ in range(3):
            resp = post(conn)
            assert resp.status == 200
            assert resp.getheader("Connection", "").lower() != "close"
    finally:
        conn.close()


def test_by_default_the_server_listens_on_ipv6_and_ipv4(tmp_path: Path) -> None:
    """On an IPv6-only or IPv6-first cluster the kubelet's probes and the apiserver reach the pod at
    its IPv6 address: a server on 0.0.0.0 alone never became ready there."""
    ca = certs.new_ca()
    leaf = certs.issue(ca, "localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1", "::1"])
    certs.write_bundle(tmp_path / "certs", ca, leaf)
    # The last --host wins: "" is serve's default, given to override the test harness's 127.0.0.1.
    with WebhookServer(tmp_path, ["--host", ""]) as srv:
        ctx = ssl.create_default_context(cafile=str(srv.ca_file))
        for address in ("::1", "127.0.0.1"):
            conn = http.client.HTTPSConnection(address, srv.port, context=ctx, timeout=10)
            try:
                conn.request("GET", "/healthz")
                assert conn.getresponse().status == 200, address
            finally:
                conn.close()
        log = (srv.dir / "webhook.log").read_text()
        assert f"[::]:{srv.port}" in log
        assert f"0.0.0.0:{srv.port}" in log


def request(body: bytes) -> bytes:
    return (b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def big_review() -> bytes:
    # Over many TLS records: the head reaches the application before the body's end has arrived.
    payload = review()
    payload["request"]["object"]["metadata"]["annotations"] = {"pad": "x" * 258 * 1024}
    return json.dumps(payload).encode()


@pytest.mark.parametrize("body", [json.dumps(review()).encode(), big_review()], ids=["small", "258KiB"])
@pytest.mark.parametrize("answered_before", [0, 1], ids=["alone", "behind-another"])
def test_a_request_head_pipelined_in_the_same_write_has_the_head_deadline(
        server: WebhookServer, body: bytes, answered_before: int) -> None:
    """The start of a head written behind a complete request (pipelining) was held until the keep-alive
    (120s) ran out: its first byte came before the request ahead of it reached the application."""
    with tls_connection(server) as conn:
        conn.sendall(request(body) * (1 + answered_before) + b"POST /validate HTTP/1.1\r\nHost: x\r\n")
        answers = b""
        # recv raises (10s) if the connection outlives the deadline of --idle-timeout (1s).
        while chunk := conn.recv(65536):
            answers += chunk
    assert answers.count(b"HTTP/1.1 200 OK") == 1 + answered_before, answers


@pytest.mark.parametrize("body", [json.dumps(review()).encode(), big_review()], ids=["small", "258KiB"])
def test_a_connection_kept_after_a_request_outlives_the_head_deadline(server: WebhookServer, body: bytes) -> None:
    """Whatever the size of the request: counting where its body ends must not find a next head."""
    with tls_connection(server) as conn:
        for _ in range(2):
            conn.sendall(request(body))
            answer = b""
            while b"}}" not in answer:
                answer += conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 OK"), answer
            head_cut_off(server)
