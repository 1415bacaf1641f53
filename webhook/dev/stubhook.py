"""Somebody else's admission webhook, for tests: registered with the real apiserver by URL, it answers
each AdmissionReview as the test says (allow, refuse with a Status of any code, patch the object as a
mutating webhook, or never answer) and records what it was asked. What a cluster's own policies do
to our requests: refuse a node's labels for good (403), shed load (429 with Retry-After: the
apiserver sends the Status's details.retryAfterSeconds as that header), or hold a request for the
webhook's whole timeoutSeconds; or what another mutating webhook does to a pod after ours."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook import certs
from webhook.dev.controlplane import ControlPlane, eventually


@dataclass(frozen=True, slots=True)
class Review:
    """One AdmissionReview request as the stub received it."""

    #: time.monotonic() on arrival.
    at: float
    operation: str
    kind: str
    #: The object's name; for an Event, the name of the object it is about.
    name: str
    object: Mapping[str, Any]


#: The AdmissionResponse for a review, without its uid (``{"allowed": True}``, or ``allowed`` False
#: with a ``status``); None never answers it (the apiserver gives up after the timeoutSeconds).
Answer = Callable[[Review], Mapping[str, Any] | None]


def allow(review: Review) -> Mapping[str, Any]:
    return {"allowed": True}


def patch(ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An answer of a mutating webhook that applies these JSON patch ``ops``."""
    return {"allowed": True, "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(list(ops)).encode()).decode()}


def refuse(code: int, message: str, retry_after: int | None = None) -> dict[str, Any]:
    """A refusal with this HTTP ``code`` and ``message`` (and retryAfterSeconds)."""
    status: dict[str, Any] = {"code": code, "message": message}
    if retry_after is not None:
        status["details"] = {"retryAfterSeconds": retry_after}
    return {"allowed": False, "status": status}


class StubWebhook:
    """Registered for ``rules`` (admissionregistration's RuleWithOperations) and the selectors while
    started, as a validating webhook or a ``mutating`` one (reinvoked when a later one changes the
    object). ``answer`` may be replaced at any time; dry-run reviews (the probe that the apiserver
    calls it) are allowed and not recorded."""

    def __init__(self, cp: ControlPlane, name: str, rules: Sequence[Mapping[str, Any]], answer: Answer = allow, *,
                 object_selector: Mapping[str, Any] | None = None,
                 namespace_selector: Mapping[str, Any] | None = None,
                 timeout_seconds: int = 10, failure_policy: str = "Fail", mutating: bool = False) -> None:
        self.cp, self.name, self.answer = cp, name, answer
        self._reviews: list[Review] = []
        self._probed = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._dir = tempfile.TemporaryDirectory(prefix="stubhook-")
        ca = certs.new_ca("stub-webhook-ca")
        leaf = certs.issue(ca, "stub-webhook", ip_addresses=["127.0.0.1"])
        cert, key = Path(self._dir.name) / "tls.crt", Path(self._dir.name) / "tls.key"
        cert.write_bytes(leaf.cert_pem)
        key.write_bytes(leaf.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                response = stub._respond(body["request"])
                if response is None:
                    stub._release.wait(120)  # held until the stub stops; the apiserver gives up first
                    return
                data = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": {"uid": body["request"]["uid"], **response}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.kind = "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration"
        self.configuration = {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": self.kind,
            "metadata": {"name": name},
            "webhooks": [{
                "name": f"{name}.stub.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": failure_policy, "timeoutSeconds": timeout_seconds, "rules": list(rules),
                "clientConfig": {"url": f"https://127.0.0.1:{self.server.server_address[1]}/",
                                 "caBundle": certs.ca_bundle(ca.cert_pem)},
                **({"objectSelector": object_selector} if object_selector is not None else {}),
                **({"namespaceSelector": namespace_selector} if namespace_selector is not None else {}),
                **({"reinvocationPolicy": "IfNeeded"} if mutating else {}),
            }],
        }
        self._thread: threading.Thread | None = None

    def _respond(self, request: Mapping[str, Any]) -> Mapping[str, Any] | None:
        obj = request.get("object") or {}
        if request.get("dryRun"):
            with self._lock:
                self._probed += 1
            return {"allowed": True}
        name = (obj.get("involvedObject") or {}).get("name") or request.get("name") or ""
        review = Review(time.monotonic(), str(request.get("operation")), str((request.get("kind") or {}).get("kind")),
                        name, obj)
        with self._lock:
            self._reviews.append(review)
        return self.answer(review)

    def start(self, probe: Callable[[], object]) -> StubWebhook:
        """Serves and registers; returns once the apiserver calls it, which ``probe`` (a dry-run request
        its rules match) tells."""
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"stub-{self.name}", daemon=True)
        self._thread.start()
        self.cp.kubectl("apply", "-f", "-", input=json.dumps(self.configuration))

        def probed() -> int:
            probe()
            with self._lock:
                return self._probed

        eventually(probed, f"the apiserver calling webhook {self.name}")
        return self

    def reviews(self, name: str | None = None) -> list[Review]:
        """What it was asked (about ``name`` only, when given), in the order it was asked."""
        with self._lock:
            return [r for r in self._reviews if name is None or r.name == name]

    def stop(self) -> None:
        """Unregisters, answers nothing more (held reviews end unanswered), stops serving."""
        if self._release.is_set():
            return
        self.cp.kubectl("delete", self.kind.lower(), self.name, "--ignore-not-found", check=False)
        self._release.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(10)
        self.server.server_close()
        self._dir.cleanup()

    def __enter__(self) -> StubWebhook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
