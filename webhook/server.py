"""The aiohttp application: admission endpoints, health, metrics, TLS with certificate reload."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pydantic
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from webhook.admission.handlers import VALIDATED_KINDS, AdmissionContext, Handler, mutate, validate
from webhook.admission.response import Response, allowed, denied, errored, to_review
from webhook.admission.review import AdmissionRequest, AdmissionReview
from webhook.heap import freeze_long_lived
from webhook.tls import ReloadingTLS

# orjson parses an AdmissionReview in a third of the time of the json module (12 us against 40 us for
# a 3 KiB pod, about 7% of a pod review's whole cost) and writes the answer faster too.
_parse_json: Callable[[bytes], Any] = orjson.loads


def _review_response(review: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(review), content_type="application/json")

log = logging.getLogger(__name__)

MAX_BODY = 7 * 1024 * 1024  # what the apiserver may send, as in controller-runtime
#: A connection that has not sent a whole request head in this time is closed (also between
#: keep-alive requests): slow or idle clients cannot hold connections open for ever.
IDLE_TIMEOUT = 30.0
#: The apiserver sends a body at once; one that trickles in for longer is not from it.
BODY_TIMEOUT = 10.0
#: Without ?timeout= (not from an apiserver), answer within this: the default timeoutSeconds (10) minus
#: a margin.
DEADLINE = 9.0
#: Answer this long before the apiserver's ?timeout= runs out (at most a quarter of it), so that the
#: answer is back before it gives up and applies failurePolicy.
DEADLINE_MARGIN = 1.0
#: Bodies above this are checked in a worker thread, so that the deadline can cut the wait short.
#: Smaller ones are checked inline: a thread hop costs 100-150us, more than checking a typical NAD or
#: pod (~80us), and 32 KiB is checked in tens of milliseconds.
THREAD_ABOVE = 32 * 1024
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# The apiserver encodes the uid first in the request; a trickling body's uid is in its first bytes.
_UID_PREFIX = re.compile(rb'"request"\s*:\s*\{\s*"uid"\s*:\s*"([0-9A-Za-z-]{1,64})"')


#: The ``kind`` label of requests for kinds no handler serves.
OTHER_KIND = "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "multus_webhook_requests",
            f"Admission requests answered, by endpoint, kind ({OTHER_KIND} for kinds not served), operation and "
            "verdict.",
            ["endpoint", "kind", "operation", "verdict"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "multus_webhook_request_duration_seconds",
            "Time to answer an admission request, from the body read to the response.",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.deadline_answers = Counter(
            "multus_webhook_deadline_answers",
            "Requests answered with the policy's onTimeout choice because the check would not finish "
            "before the apiserver's timeout, by endpoint and by what was still running (body or rules).",
            ["endpoint", "stage"],
            registry=self.registry,
        )
        # Label children looked up once: labels() validates and locks on every call, which showed
        # in the profile of a loaded server.
        self._answered: dict[tuple[str, str, str, str], Any] = {}
        self._latency: dict[str, Any] = {}

    def answered(self, endpoint: str, kind: str, operation: str, verdict: str, seconds: float) -> None:
        # Any client can send any kind: one label value for those not served keeps the series (and
        # the children cached here) bounded.
        key = (endpoint, kind if kind in VALIDATED_KINDS else OTHER_KIND, operation, verdict)
        counter = self._answered.get(key)
        if counter is None:
            counter = self._answered[key] = self.requests.labels(*key)
        counter.inc()
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.latency.labels(endpoint)
        latency.observe(seconds)


@dataclass
class ServerState:
    context: AdmissionContext = field(default_factory=AdmissionContext)
    metrics: Metrics = field(default_factory=Metrics)
    #: Answers (ready, reason) for /readyz; the live cache replaces it.
    readiness: Callable[[], tuple[bool, str]] = field(default=lambda: (True, "ok"))
    body_timeout: float = BODY_TIMEOUT
    #: The answer is due this long after a request without ?timeout= starts.
    deadline: float = DEADLINE
    deadline_margin: float = DEADLINE_MARGIN
    #: Where large requests are checked. One worker: hostile large bodies cannot take more than one
    #: core; those queued behind it get the onTimeout answer at their deadline.
    checks: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="check"))
    #: Requests being served (including those whose body is still arriving), for the drain on SIGTERM.
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)


STATE_KEY = web.AppKey("state", ServerState)


def _verdict(response: Response) -> str:
    if not response.allowed:
        return "deny"
    if response.patch:
        return "patch"
    return "warn" if response.warnings else "allow"


def _bad_request(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


@functools.lru_cache(maxsize=64)
def go_duration(text: str) -> float | None:
    """Seconds in a Go duration such as the apiserver's ?timeout=5s, or None when it is not one."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def answer_by(request: web.Request, state: ServerState) -> tuple[float, float]:
    """(monotonic time the answer is due, the timeout it comes from)."""
    timeout = go_duration(request.query.get("timeout", ""))
    if timeout is None or timeout <= 0:
        return time.monotonic() + state.deadline, state.deadline
    return time.monotonic() + timeout - min(state.deadline_margin, timeout / 4), timeout


def on_timeout(state: ServerState, kind: str, timeout: float, what: str) -> Response:
    """The policy's answer for a request that could not be checked in time."""
    subject = f"this {kind}" if kind else "this object"
    if state.context.policy.on_timeout == "allow":
        return allowed([f"multus-webhook did not check {subject}: {what} before the apiserver's {timeout:g}s "
                        "timeout (policy onTimeout: allow)"])
    return denied(f"multus-webhook could not check {subject} before the apiserver's {timeout:g}s timeout: {what}; "
                  "retry, or make the object smaller (policy onTimeout: deny)", code=504, reason="Timeout")


class BodyTimeout(Exception):
    def __init__(self, received: bytes) -> None:
        super().__init__("request body still arriving")
        self.received = received


async def read_body(request: web.Request, seconds: float) -> bytes:
    """The whole body; BodyTimeout (with what did arrive) when it takes longer than ``seconds``."""
    if request.content.is_eof():
        # Already all there (the usual case: an apiserver's body comes in one go): no wait to bound,
        # and the timeout's timer would cost more than reading it.
        whole = request.content.read_nowait()
        if len(whole) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(whole))
        return whole
    body = bytearray()
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.readany():
                body.extend(chunk)
                if len(body) > MAX_BODY:
                    raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    except TimeoutError:
        raise BodyTimeout(bytes(body)) from None
    return bytes(body)


def admission_endpoint(handler: Handler, *, mutating: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    endpoint = "/mutate" if mutating else "/validate"

    def reply(state: ServerState, req: AdmissionRequest, response: Response, started: float) -> web.Response:
        state.metrics.answered(endpoint, req.kind.kind, req.operation, _verdict(response),
                               time.perf_counter() - started)
        return _review_response(to_review(req.uid, response, mutating=mutating))

    def run(req: AdmissionRequest, state: ServerState) -> Response:
        try:
            return handler(req, state.context)
        except Exception:
            log.exception("handler failed on %s %s %s/%s uid=%s", req.operation, req.kind.kind,
                          req.namespace, req.name, req.uid)
            return errored("internal error in multus-webhook; see its logs", code=500)

    async def serve(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        due, timeout = answer_by(request, state)
        if request.content_type != "application/json":
            return _bad_request(415, f"Content-Type must be application/json, not {request.content_type!r}")
        body_wait = min(state.body_timeout, due - time.monotonic())
        try:
            body = await read_body(request, body_wait)
        except web.HTTPRequestEntityTooLarge:
            return _bad_request(413, f"request body is larger than {MAX_BODY} bytes")
        except BodyTimeout as exc:
            uid = _UID_PREFIX.search(exc.received[:4096])
            if uid is None or body_wait == state.body_timeout:
                return _bad_request(408, f"request body not received within {body_wait:.3g}s")
            state.metrics.deadline_answers.labels(endpoint, "body").inc()
            return _review_response(to_review(uid.group(1).decode(), on_timeout(
                state, "", timeout, "its request body was still arriving"), mutating=mutating))
        started = time.perf_counter()
        try:
            payload = _parse_json(body)
        except (ValueError, RecursionError) as exc:
            return _bad_request(400, f"body is not valid JSON: {exc}")
        try:
            review = AdmissionReview.model_validate(payload)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
            )
            return _bad_request(400, f"not an admission.k8s.io/v1 AdmissionReview: {problems}")
        req = review.request
        if len(body) <= THREAD_ABOVE:
            return reply(state, req, run(req, state), started)
        check = asyncio.get_running_loop().run_in_executor(state.checks, run, req, state)
        done, _ = await asyncio.wait({check}, timeout=max(0.0, due - time.monotonic()))
        if done:
            return reply(state, req, check.result(), started)
        # A check still queued is dropped; a running one cannot be stopped and its result is ignored.
        check.cancel()
        state.metrics.deadline_answers.labels(endpoint, "rules").inc()
        log.warning("%s %s %s/%s uid=%s (%d bytes) not checked within its deadline; answered per onTimeout",
                    req.operation, req.kind.kind, req.namespace, req.name, req.uid, len(body))
        return reply(state, req, on_timeout(state, req.kind.kind, timeout, "the check did not finish"), started)

    return serve


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    ready, reason = request.app[STATE_KEY].readiness()
    return web.Response(text=reason, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE_KEY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def no_tracebacks(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    state.in_flight += 1
    state.idle.clear()
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return _bad_request(500, "internal error in multus-webhook; see its logs")
    finally:
        state.in_flight -= 1
        if not state.in_flight:
            state.idle.set()


def make_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[no_tracebacks])
    app[STATE_KEY] = state
    app.router.add_post("/validate", admission_endpoint(validate, mutating=False))
    app.router.add_post("/mutate", admission_endpoint(mutate, mutating=True))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_forever(
    state: ServerState,
    *,
    cert_dir: Path,
    host: str = "0.0.0.0",
    port: int = 8443,
    client_ca: Path | None = None,
    shutdown_timeout: float = 15.0,
    idle_timeout: float = IDLE_TIMEOUT,
    started: Callable[[], Any] | None = None,
    background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, let requests in flight finish, return.
    Each of ``background`` runs beside the server until the stop event it is given is set."""
    # What is alive now (a --cluster-state of thousands of objects, the modules) lives as long as the
    # server; the live cache freezes what it lists itself, once listed.
    freeze_long_lived()
    tls = ReloadingTLS(cert_dir, client_ca)
    runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=shutdown_timeout,
                           keepalive_timeout=idle_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls.context)
    await site.start()
    log.info("serving HTTPS on %s:%d (certificates from %s)", host, port, cert_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(job(stop)) for job in background]
    if started is not None:
        started()
    await stop.wait()
    for task in tasks:
        task.cancel()
    # Stop accepting, then let every request already started finish, even one whose body is still
    # arriving: aiohttp's own shutdown cuts those off.
    log.info("stopping: draining %d request(s) in flight", state.in_flight)
    await site.stop()
    if state.in_flight:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.idle.wait(), shutdown_timeout)
    await runner.cleanup()
    state.checks.shutdown(wait=False, cancel_futures=True)
