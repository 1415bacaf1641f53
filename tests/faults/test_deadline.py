"""The internal deadline: a request the apiserver sent with ?timeout=Ns is answered before that runs
out, with the policy's onTimeout choice when the check could not finish, instead of leaving the
apiserver to time out. Real server process, real TLS, no hooks in the server."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook.dev.controlplane import WebhookServer

NAD_CONFIG = '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}}'
#: The client waits far longer than any deadline here: whether the server answered in time is read from
#: its answer and the time it took, not from the client giving up first, which on a loaded machine is a
#: race between two timers a few hundred milliseconds apart.
PATIENCE = 30.0
#: What answers a trickling body when no deadline cuts it short (the server's --body-timeout default).
BODY_TIMEOUT = 10.0


def review(kind: str, obj: dict[str, Any], uid: str) -> bytes:
    """Encoded the way the apiserver encodes it: kind, apiVersion, then the request with its uid first."""
    group = "k8s.cni.cncf.io" if kind == "NetworkAttachmentDefinition" else ""
    return json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {
        "uid": uid, "kind": {"group": group, "version": "v1", "kind": kind}, "operation": "CREATE",
        "namespace": "default", "name": obj["metadata"]["name"], "userInfo": {"username": "admin"},
        "object": obj}}).encode()


def expensive_nad() -> dict[str, Any]:
    """A legal NAD (under the apiserver's 3 MiB request limit; a NAD's config has no other size limit)
    whose 25,000 valid plugins take the rules well over a second to check. (A pod cannot be as
    expensive: the mutation skips annotations over the apiserver's 256 KiB limit.)"""
    plugins = [{"type": "bridge", "bridge": f"br{i % 100}",
                "ipam": {"type": "host-local", "subnet": f"10.{i // 256 % 256}.{i % 256}.0/24"}} for i in range(25_000)]
    config = json.dumps({"cniVersion": "1.0.0", "name": "big", "plugins": plugins})
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "big", "namespace": "default"}, "spec": {"config": config}}


class Exchange:
    """One HTTPS request over a raw socket, so that the body can be held back like a stuck sender's."""

    def __init__(self, server: WebhookServer) -> None:
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")

    def send(self, path: str, body: bytes, send_only: int | None = None) -> None:
        head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body[:send_only])

    def answer(self) -> tuple[int, dict[str, Any]]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        return int(head.split()[1]), json.loads(rest)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """The default policy: onTimeout deny."""
    with WebhookServer(tmp_path_factory.mktemp("deadline-deny")) as server:
        yield server


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    work = tmp_path_factory.mktemp("deadline-allow")
    (work / "policy.yaml").write_text("onTimeout: allow\n")
    with WebhookServer(work, ["--policy", str(work / "policy.yaml")]) as server:
        yield server


def post(server: WebhookServer, path: str, body: bytes, send_only: int | None = None
         ) -> tuple[int, dict[str, Any], float]:
    """(status, answer, seconds from sending the request to its answer). The server's clock starts
    when it has the request head, after this one's: the seconds are never less than what it waited."""
    exchange = Exchange(server)
    try:
        started = time.monotonic()
        exchange.send(path, body, send_only)
        status, answer = exchange.answer()
        return status, answer, time.monotonic() - started
    finally:
        exchange.close()


def metric(server: WebhookServer, name: str) -> str:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(f"{server.url}/metrics", context=ctx, timeout=5) as resp:
        return "\n".join(line for line in resp.read().decode().splitlines() if line.startswith(name))


def test_a_body_still_arriving_at_the_deadline_gets_the_policy_verdict_in_time(strict: WebhookServer) -> None:
    uid = str(uuid.uuid4())
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "slow", "namespace": "default"}, "spec": {"config": NAD_CONFIG}}
    body = review("NetworkAttachmentDefinition", nad, uid)
    # Half the body, then nothing: without the deadline the server would wait out --body-timeout (10s)
    # and answer 408, long after the apiserver (2s) had given up.
    status, answer, took = post(strict, "/validate?timeout=2s", body, send_only=len(body) // 2)
    assert status == 200
    response = answer["response"]
    assert answer["kind"] == "AdmissionReview"
    assert response["uid"] == uid
    assert response["allowed"] is False
    assert response["status"]["code"] == 504
    assert response["status"]["message"] == (
        "multus-webhook could not check this object before the apiserver's 2s timeout: its request body was "
        "still arriving; retry, or make the object smaller (policy onTimeout: deny)")
    # Loosely: not before the 2s less its margin (0.5s, a quarter), and well before the body timeout.
    # How close to 1.5s depends on the machine's load; the margin itself is checked exactly below.
    assert 1.5 <= took < BODY_TIMEOUT
    assert 'multus_webhook_deadline_answers_total{endpoint="/validate",stage="body"} 1.0' in metric(
        strict, "multus_webhook_deadline_answers_total")
    # An admission request answered like any other: its kind and operation were never read.
    assert ('multus_webhook_requests_total{dry_run="",endpoint="/validate",kind="other",operation="",verdict="deny"} '
            '1.0') in metric(strict, "multus_webhook_requests_total")


def test_a_body_without_a_uid_at_the_deadline_is_a_408(strict: WebhookServer) -> None:
    status, answer, took = post(strict, "/validate?timeout=1s", b'{"kind": "AdmissionReview"' + b" " * 100,
                                send_only=30)
    assert status == 408
    waited = re.fullmatch(r"request body not received within ([0-9.]+)s", answer["message"])
    assert waited is not None, answer
    # The server's own measure: the 1s less its margin (a quarter of it), counted from the request head,
    # less the moment it took to get to the body; the body timeout (10s) would read 10.
    assert 0.5 < float(waited.group(1)) <= 0.75
    assert float(waited.group(1)) <= took < BODY_TIMEOUT


def test_an_expensive_check_is_answered_per_policy_and_others_are_still_served(lenient: WebhookServer) -> None:
    uid = str(uuid.uuid4())
    body = review("NetworkAttachmentDefinition", expensive_nad(), uid)
    assert len(body) < 3 * 1024 * 1024  # what the apiserver accepts at all
    status, answer, took = post(lenient, "/validate?timeout=1s", body)
    assert status == 200
    response = answer["response"]
    assert response["uid"] == uid
    assert response["allowed"] is True
    assert "patch" not in response
    # Wrapped into lines for kubectl; the words are what matters.
    assert " ".join(" ".join(response["warnings"]).split()) == (
        "multus-webhook did not check this NetworkAttachmentDefinition: the check did not finish before the "
        "apiserver's 1s timeout (policy onTimeout: allow)")
    # Loosely: not before the deadline (1s less a quarter); a check left to finish takes over a second
    # here and would have been answered in full, which the words above already rule out.
    assert 0.75 <= took < BODY_TIMEOUT

    # The abandoned check still runs in its worker; ordinary requests are answered meanwhile, in full.
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "n", "namespace": "default"}, "spec": {"config": "{}"}}
    status, answer, _ = post(lenient, "/validate?timeout=1s", review("NetworkAttachmentDefinition", nad, "small"))
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert "[nad-config-structure]" in answer["response"]["status"]["message"]
    assert 'multus_webhook_deadline_answers_total{endpoint="/validate",stage="rules"} 1.0' in metric(
        lenient, "multus_webhook_deadline_answers_total")


def test_without_a_timeout_query_the_deadline_flag_applies(tmp_path: Path) -> None:
    with WebhookServer(tmp_path, ["--deadline", "0.5"]) as server:
        status, answer, took = post(server, "/validate",
                                    review("NetworkAttachmentDefinition", expensive_nad(), "u-flag"))
    assert status == 200
    assert answer["response"]["status"]["message"].startswith(
        "multus-webhook could not check this NetworkAttachmentDefinition before the apiserver's 0.5s timeout")
    # Loosely: not before the flag's 0.5s, and short of the default deadline (9s) it replaces.
    assert 0.5 <= took < 9
