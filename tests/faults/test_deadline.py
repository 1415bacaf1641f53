"""The internal deadline: a request the apiserver sent with ?timeout=Ns is answered before that runs
out, with the policy's onTimeout choice when the check could not finish, instead of leaving the
apiserver to time out. Real server process, real TLS, no hooks in the server."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook.dev.controlplane import WebhookServer

NAD_CONFIG = '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}}'


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

    def __init__(self, server: WebhookServer, patience: float) -> None:
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        # The apiserver gives up after its ?timeout=; so does this client.
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=patience)
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


def post(server: WebhookServer, path: str, body: bytes, patience: float, send_only: int | None = None
         ) -> tuple[int, dict[str, Any]]:
    exchange = Exchange(server, patience)
    try:
        exchange.send(path, body, send_only)
        return exchange.answer()
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
    # and the client, patient only as long as the apiserver (2s), would have given up.
    status, answer = post(strict, "/validate?timeout=2s", body, patience=2, send_only=len(body) // 2)
    assert status == 200
    response = answer["response"]
    assert answer["kind"] == "AdmissionReview"
    assert response["uid"] == uid
    assert response["allowed"] is False
    assert response["status"]["code"] == 504
    assert response["status"]["message"] == (
        "multus-webhook could not check this object before the apiserver's 2s timeout: its request body was "
        "still arriving; retry, or make the object smaller (policy onTimeout: deny)")
    assert 'multus_webhook_deadline_answers_total{endpoint="/validate",stage="body"} 1.0' in metric(
        strict, "multus_webhook_deadline_answers_total")


def test_a_body_without_a_uid_at_the_deadline_is_a_408(strict: WebhookServer) -> None:
    status, answer = post(strict, "/validate?timeout=1s", b'{"kind": "AdmissionReview"' + b" " * 100,
                          patience=1, send_only=30)
    assert status == 408
    assert answer["error"].startswith("request body not received within")


def test_an_expensive_check_is_answered_per_policy_and_others_are_still_served(lenient: WebhookServer) -> None:
    uid = str(uuid.uuid4())
    body = review("NetworkAttachmentDefinition", expensive_nad(), uid)
    assert len(body) < 3 * 1024 * 1024  # what the apiserver accepts at all
    status, answer = post(lenient, "/validate?timeout=1s", body, patience=1)
    assert status == 200
    response = answer["response"]
    assert response["uid"] == uid
    assert response["allowed"] is True
    assert "patch" not in response
    # Wrapped into lines for kubectl; the words are what matters.
    assert " ".join(" ".join(response["warnings"]).split()) == (
        "multus-webhook did not check this NetworkAttachmentDefinition: the check did not finish before the "
        "apiserver's 1s timeout (policy onTimeout: allow)")

    # The abandoned check still runs in its worker; ordinary requests are answered meanwhile, in full.
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "n", "namespace": "default"}, "spec": {"config": "{}"}}
    status, answer = post(lenient, "/validate?timeout=1s", review("NetworkAttachmentDefinition", nad, "small"),
                          patience=1)
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert "[nad-config-structure]" in answer["response"]["status"]["message"]
    assert 'multus_webhook_deadline_answers_total{endpoint="/validate",stage="rules"} 1.0' in metric(
        lenient, "multus_webhook_deadline_answers_total")


def test_without_a_timeout_query_the_deadline_flag_applies(tmp_path: Path) -> None:
    with WebhookServer(tmp_path, ["--deadline", "0.5"]) as server:
        status, answer = post(server, "/validate", review("NetworkAttachmentDefinition", expensive_nad(), "u-flag"),
                              patience=5)
    assert status == 200
    assert answer["response"]["status"]["message"].startswith(
        "multus-webhook could not check this NetworkAttachmentDefinition before the apiserver's 0.5s timeout")
