"""The aiohttp application: admission endpoints, health, metrics, TLS with certificate reload."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pydantic
from aiohttp import hdrs, web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from webhook import __version__
from webhook.admission.handlers import SERVED_KINDS, AdmissionContext, Handler, mutate, validate
from webhook.admission.response import Response, Unwritable, allowed, denied, errored, to_review
from webhook.admission.review import AdmissionRequest, AdmissionReview
from webhook.heap import freeze_long_lived
from webhook.ratelog import RateLimit
from webhook.rules import Finding, Severity
from webhook.text import printable
from webhook.tls import ReloadingTLS, common_names, has_verified_peer

# orjson parses an AdmissionReview in a third of the time of the json module (12 us against 40 us for
# a 3 KiB pod, about 7% of a pod review's whole cost) and writes the answer faster too.
_parse_json: Callable[[bytes], Any] = orjson.loads


def _review_response(uid: str, response: Response, *, mutating: bool) -> tuple[web.Response, Response]:
    """The AdmissionReview answering ``uid``, and the Response it carries: one that cannot be written is
    replaced by a review saying why, since an HTTP 500 would reach the user only as "failed calling
    webhook"."""
    try:
        body = orjson.dumps(to_review(uid, response, mutating=mutating))
    except Unwritable as exc:
        # Like JSON too deep to read: the user's object is the reason, and the denial names it.
        log.warning("uid=%s: %s", uid, exc)
        response = denied(str(exc), code=422, reason="Invalid")
        body = orjson.dumps(to_review(uid, response, mutating=mutating))
    except Exception:
        log.exception("cannot write the answer to uid=%s", uid)
        response = errored("internal error in multus-webhook; see its logs", code=500)
        body = orjson.dumps(to_review(uid, response, mutating=mutating))
    return web.Response(body=body, content_type="application/json"), response

log = logging.getLogger(__name__)

MAX_BODY = 7 * 1024 * 1024  # what the apiserver may send, as in controller-runtime
#: A TLS handshake, and a request head from its first byte, must be over within this (--idle-timeout):
#: slow clients cannot hold connections open for ever.
IDLE_TIMEOUT = 30.0
#: A connection with no request under way (kept alive after an answer, or new and unused) is closed
#: after this. It must outlast the apiserver's own idle timeout: a server that closes an idle
#: connection first races the apiserver's reuse of it, and a POST written onto a connection being
#: closed fails the call ("failed calling webhook ... EOF", kubernetes/kubernetes#127335; Go does not
#: retry a POST that may have been sent). The apiserver's webhook client is a client-go REST client
#: speaking HTTP/1.1 (k8s.io/apiserver pkg/util/webhook/client.go: NextProtos = ["http/1.1"]) whose
#: transport (client-go transport/cache.go) leaves IdleConnTimeout unset, so SetOldTransportDefaults
#: (k8s.io/apimachinery pkg/util/net/http.go) gives it http.DefaultTransport's 90s. Go's transport
#: also parks connections it dialled but did not use in that pool, so a new connection that has sent
#: nothing gets this too.
KEEPALIVE_TIMEOUT = 120.0
#: After SIGTERM, connections get this long to leave (each answer meanwhile says "Connection: close")
#: before those still idle are closed. The apiserver reaches the pod through its Service, and a
#: connection it holds stays on this pod however long it terminates: closing one under it as it writes
#: a POST fails that call (#127335 again). Its pooled connections carry a request every few ms under
#: load, so a few seconds lets each get its last answer; it fits, with the drain of requests in
#: flight, in the deployment's terminationGracePeriodSeconds (30) after its preStop sleep (10).
CONNECTION_GRACE = 5.0
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
#: orjson reads JSON nested this deep, and refuses deeper ("depth limit exceeded").
JSON_DEPTH = 1024
#: Where a request line starts: llhttp skips empty lines before one.
_NOT_AN_EMPTY_LINE = re.compile(rb"[^\r\n]")
# The apiserver encodes the uid first in the request; a trickling body's uid, or that of one too deeply
# nested to parse, is in its first bytes.
_UID_PREFIX = re.compile(rb'"request"\s*:\s*\{\s*"uid"\s*:\s*"([0-9A-Za-z-]{1,64})"')


#: The ``kind`` label of requests for kinds no handler serves.
OTHER_KIND = "other"

# Every counter and histogram would also export a *_created series: twice the series, and nothing in
# the text format uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "multus_webhook_requests",
            f"Admission requests answered with an AdmissionReview, by endpoint, kind ({OTHER_KIND} for kinds not "
            "served, and for requests answered before their body was read), operation, verdict (allow, warn, "
            "patch, deny, or error for a request that could not be judged) and dry_run (the request's dryRun; "
            "empty when its body was not read).",
            ["endpoint", "kind", "operation", "verdict", "dry_run"],
            registry=self.registry,
        )
        self.findings = Counter(
            "multus_webhook_findings",
            "What the rules found in admission requests, one per finding, by kind, rule id, severity (deny or "
            "warn, as answered), audited (true for a warning that audit mode made of a denial) and dry_run.",
            ["kind", "rule", "severity", "audited", "dry_run"],
            registry=self.registry,
        )
        self.rule_errors = Counter(
            "multus_webhook_rule_errors",
            "Rules that raised instead of judging an object (a bug: the log has the traceback; the object got a "
            "warning saying so), by rule id.",
            ["rule"],
            registry=self.registry,
        )
        self.errors = Counter(
            "multus_webhook_error_answers",
            "Requests to any path answered with an HTTP error (a metav1.Status) instead of an AdmissionReview, "
            f"by endpoint (the path of a route, {UNKNOWN_PATH} for any other) and HTTP status code: on /validate "
            "and /mutate the apiserver applies failurePolicy to each.",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "multus_webhook_request_duration_seconds",
            "Time to answer an admission request, from the body read to the response.",
            ["endpoint"],
            # Up to 10s: deadline answers come a margin before the apiserver's timeoutSeconds (10 at most
            # by default, 5 in our manifests).
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0),
            registry=self.registry,
        )
        self.deadline_answers = Counter(
            "multus_webhook_deadline_answers",
            "Requests answered with the policy's onTimeout choice because the check would not finish "
            "before the apiserver's timeout, by endpoint and by what was still running (body or rules).",
            ["endpoint", "stage"],
            registry=self.registry,
        )
        self.unauthenticated = Counter(
            "multus_webhook_unauthenticated_requests",
            "Admission requests refused (401) because the connection presented no client certificate "
            "while --client-ca is set: an apiserver that does not present one fails every call.",
            ["endpoint"],
            registry=self.registry,
        )
        self.forbidden = Counter(
            "multus_webhook_forbidden_requests",
            "Admission requests refused (403) because the client certificate's Common Name is not one of "
            "--client-name: a client the client CA signed that is not the apiserver.",
            ["endpoint"],
            registry=self.registry,
        )
        Gauge("multus_webhook_build_info", "The version of multus-webhook running (the value is always 1).",
              ["version"], registry=self.registry).labels(__version__).set(1)
        # process_resident_memory_bytes, open fds, CPU seconds; python_info.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        # Label children looked up once: labels() validates and locks on every call, which showed
        # in the profile of a loaded server.
        self._answered: dict[tuple[str, str, str, str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self._found: dict[tuple[str, str, str, bool, str], Any] = {}

    def answered(self, endpoint: str, kind: str, operation: str, verdict: str, seconds: float,
                 dry_run: str = "") -> None:
        # Any client can send any kind: one label value for those not served (or not read: kind "")
        # keeps the series (and the children cached here) bounded.
        key = (endpoint, kind if kind in SERVED_KINDS else OTHER_KIND, operation, verdict, dry_run)
        counter = self._answered.get(key)
        if counter is None:
            counter = self._answered[key] = self.requests.labels(*key)
        counter.inc()
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.latency.labels(endpoint)
        latency.observe(seconds)

    def found(self, kind: str, findings: Sequence[Finding], dry_run: str) -> None:
        """Counts ``findings`` of one review of ``kind`` (one the handlers serve: only they find anything).
        Rule ids are the registry's, so the series stay bounded."""
        for finding in findings:
            key = (kind, finding.rule, finding.severity.value, finding.audited, dry_run)
            counter = self._found.get(key)
            if counter is None:
                counter = self._found[key] = self.findings.labels(
                    kind, finding.rule, finding.severity.value, "true" if finding.audited else "false", dry_run)
            counter.inc()
            if finding.rule_failed:
                self.rule_errors.labels(finding.rule).inc()


class TLSMetrics:
    """The serving certificate's state for Prometheus, read from the reloader at each scrape."""

    def __init__(self, tls: ReloadingTLS) -> None:
        self.tls = tls

    def collect(self) -> Iterator[Metric]:
        # The reloader looks at the files only on a handshake; looking at a scrape too keeps these
        # true for a server that nothing connects to.
        self.tls.maybe_reload()
        yield CounterMetricFamily(
            "multus_webhook_certificate_reload_failures",
            "Broken states of the certificate files (a key and certificate that do not load together, a "
            "missing file), each counted once; the certificate loaded before is served meanwhile.",
            value=self.tls.reload_failures)
        yield GaugeMetricFamily(
            "multus_webhook_certificate_expiry_timestamp_seconds",
            "notAfter (Unix time) of the serving certificate being served.",
            value=self.tls.not_after)


@dataclass
class ErrorLog:
    """Logs HTTP error answers, at most one line per interval for each (endpoint, code): any client that
    reaches the port can send junk as fast as it likes, and a line for each would bury the log. The line
    logged next tells how many went unlogged since; multus_webhook_error_answers_total counts every one.
    Denials are logged the same way."""

    limit: RateLimit = field(default_factory=RateLimit)

    def answered(self, method: str, endpoint: str, code: int, message: str) -> None:
        # The routes' paths and our few codes: the keys stay bounded.
        suffix = self.limit.limited((endpoint, code))
        if suffix is not None:
            log.warning("%s %s answered %d: %s%s", method, endpoint, code, message, suffix)

    def denied(self, req: AdmissionRequest, findings: Sequence[Finding]) -> None:
        """The rules that refused ``req``, at INFO: the metrics count them, the log names the object. A
        flood of one kind's denials by one rule (the first) is one line per interval, dry runs (a GitOps
        tool's every sync) apart from the rest; the keys are bounded by the registry."""
        rules = list(dict.fromkeys(f.rule for f in findings if f.severity is Severity.DENY))
        suffix = self.limit.limited((req.kind.kind, rules[0], req.dry_run))
        if suffix is not None:
            log.info("denied %s %s %s/%s uid=%s%s by rule(s) %s%s", req.operation, req.kind.kind, req.namespace,
                     req.name, req.uid, " (dry run)" if req.dry_run else "", ", ".join(rules), suffix)


#: The logger aiohttp's connections log to (their default is aiohttp.server).
_AIOHTTP_LOG = logging.getLogger(f"{__name__}.aiohttp")


class ParserErrors(logging.Filter):
    """aiohttp answers a request its parser refuses (a malformed head, chunks out of form) with a 400 of
    its own, and logs it as an ERROR with a traceback: any client can send those as fast as it likes.
    They go to the error log instead, on one line within its limit. Anything else aiohttp logs (an error
    of ours that escaped the middlewares) passes as it is."""

    def __init__(self, error_log: ErrorLog) -> None:
        super().__init__()
        self.error_log = error_log

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            # The head was not read: neither method nor path is known.
            self.error_log.answered("malformed", "request", exc.code or 400, _one_line(exc.message))
            return False
        # aiohttp reads the rest of a body the request was answered without, to keep the connection:
        # the answer is logged already, and what went wrong with the rest is the client's.
        return not isinstance(exc, web.RequestPayloadError)


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
    #: Open connections by their aiohttp protocol, for the request-head deadline.
    connections: dict[web.RequestHandler, Connection] = field(default_factory=dict)
    #: Set when the last of ``connections`` closes.
    no_connections: asyncio.Event = field(default_factory=asyncio.Event)
    #: Shutting down: every answer closes its connection.
    draining: bool = False
    error_log: ErrorLog = field(default_factory=ErrorLog)


STATE_KEY = web.AppKey("state", ServerState)


def _verdict(response: Response) -> str:
    if response.error:
        return "error"
    if not response.allowed:
        return "deny"
    if response.patch:
        return "patch"
    return "warn" if response.warnings else "allow"


#: metav1.StatusReason of each HTTP error the server answers.
_STATUS_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                   405: "MethodNotAllowed", 408: "Timeout", 413: "RequestEntityTooLarge",
                   415: "UnsupportedMediaType", 500: "InternalError"}
#: The endpoint label of a request to a path the server has no route for.
UNKNOWN_PATH = "other"


def error_answer(request: web.Request, code: int, message: str,
                 headers: Mapping[str, str] | None = None) -> web.Response:
    """An HTTP error as a metav1.Status, as the apiserver itself answers: its webhook client takes the
    message of a non-2xx answer only from one (client-go rest Result.Error; "the server rejected our
    request for an unknown reason" otherwise), so the apiserver's "failed calling webhook" error carries
    it, and a person with curl reads the same. Counted, and logged within limits: the apiserver fails
    the call."""
    # Any client can ask for any path: only the routes' own become label values and log keys.
    routed = request.path in {resource.canonical for resource in request.app.router.resources()}
    endpoint = request.path if routed else UNKNOWN_PATH
    state = request.app[STATE_KEY]
    state.metrics.errors.labels(endpoint, str(code)).inc()
    state.error_log.answered(request.method, endpoint, code, message)
    return web.json_response({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                              "message": message, "reason": _STATUS_REASONS[code], "code": code}, status=code,
                             headers=headers)


def _no_client_certificate(request: web.Request) -> web.Response:
    return error_answer(request, 401, (
        f"multus-webhook answers {request.path} only over a connection that presents a client certificate "
        "signed by its --client-ca, and this one presented none (the apiserver presents one when its "
        "AdmissionConfiguration gives it a kubeconfig for this webhook)"))


def _not_a_client_name(request: web.Request, presented: list[str], allowed: frozenset[str]) -> web.Response:
    return error_answer(request, 403, (
        f"multus-webhook answers {request.path} only to clients whose certificate has one of the Common Names "
        f"of its --client-name ({', '.join(sorted(allowed))}), and this one has "
        f"{', '.join(repr(n) for n in presented) if presented else 'none'}"))


def _one_line(message: str) -> str:
    """aiohttp's parser errors on one line: they point at the offending bytes with a caret below them."""
    return printable(" ".join(part.strip() for part in message.splitlines() if part.strip()))


def _unreadable_body(request: web.Request, exc: web.RequestPayloadError) -> str:
    """Why aiohttp could not read the body (it gives its parser's error as the cause): a Content-Encoding
    that does not decode, chunks out of form, a body that ended short."""
    cause = exc.__cause__
    if isinstance(cause, ContentEncodingError):
        encoding = printable(request.headers.get(hdrs.CONTENT_ENCODING, ""))
        return (f"body cannot be decoded as Content-Encoding {encoding!r}: it is not data in that encoding (the "
                "apiserver sends bodies without one)")
    return f"body cannot be read: {_one_line(cause.message if isinstance(cause, HttpProcessingError) else str(exc))}"


def _unreadable(exc: Exception) -> str | None:
    """Why valid JSON could not be read, when that is why (orjson's nesting limit), else None."""
    if isinstance(exc, RecursionError) or "depth limit exceeded" in str(exc):
        return (f"multus-webhook cannot read this object: it is nested more than {JSON_DEPTH} levels deep (a "
                "value inside a value, such as cni-args), deeper than the webhook's JSON reader goes; "
                "flatten it")
    return None


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


def admission_endpoint(handler: Handler, *, mutating: bool, client_certificates: bool = False,
                       client_names: frozenset[str] = frozenset(),
                       ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``client_certificates``: answer only connections that presented a (verified) client certificate,
    and when ``client_names`` has any, one with one of those Common Names."""
    endpoint = "/mutate" if mutating else "/validate"

    def reply(state: ServerState, req: AdmissionRequest, response: Response, started: float) -> web.Response:
        answer, sent = _review_response(req.uid, response, mutating=mutating)
        dry_run = "true" if req.dry_run else "false"
        state.metrics.answered(endpoint, req.kind.kind, req.operation, _verdict(sent), time.perf_counter() - started,
                               dry_run)
        # Most reviews find nothing: they pay only this test.
        if sent.findings:
            state.metrics.found(req.kind.kind, sent.findings, dry_run)
            if not sent.allowed:
                state.error_log.denied(req, sent.findings)
        return answer

    def run(req: AdmissionRequest, state: ServerState) -> Response:
        try:
            return handler(req, state.context)
        except Exception:
            log.exception("handler failed on %s %s %s/%s uid=%s", req.operation, req.kind.kind,
                          req.namespace, req.name, req.uid)
            return errored("internal error in multus-webhook; see its logs", code=500)

    async def serve(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        if client_certificates:
            peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
            if not has_verified_peer(peer):
                state.metrics.unauthenticated.labels(endpoint).inc()
                return _no_client_certificate(request)
            if client_names and client_names.isdisjoint(presented := common_names(peer)):
                state.metrics.forbidden.labels(endpoint).inc()
                return _not_a_client_name(request, presented, client_names)
        due, timeout = answer_by(request, state)
        if request.content_type != "application/json":
            return error_answer(request, 415, f"Content-Type must be application/json, not {request.content_type!r}")
        body_wait = min(state.body_timeout, due - time.monotonic())
        reading = time.perf_counter()
        try:
            body = await read_body(request, body_wait)
        except web.HTTPRequestEntityTooLarge:
            return error_answer(request, 413, f"request body is larger than {MAX_BODY} bytes")
        except web.RequestPayloadError as exc:
            return error_answer(request, 400, _unreadable_body(request, exc))
        except ConnectionResetError:
            # aiohttp's word for a client gone mid-body: nobody reads this answer, but it is counted.
            return error_answer(request, 400, "the client closed the connection before its whole body arrived")
        except BodyTimeout as exc:
            uid = _UID_PREFIX.search(exc.received[:4096])
            if uid is None or body_wait == state.body_timeout:
                return error_answer(request, 408, f"request body not received within {body_wait:.3g}s")
            state.metrics.deadline_answers.labels(endpoint, "body").inc()
            answer, late = _review_response(uid.group(1).decode(),
                                            on_timeout(state, "", timeout, "its request body was still arriving"),
                                            mutating=mutating)
            # Neither kind nor operation was read; the wait for the body is the time it took.
            state.metrics.answered(endpoint, "", "", _verdict(late), time.perf_counter() - reading)
            return answer
        started = time.perf_counter()
        try:
            payload = _parse_json(body)
        except (ValueError, RecursionError) as exc:
            unread = _unreadable(exc)
            uid = _UID_PREFIX.search(body[:4096]) if unread else None
            if unread is None or uid is None:
                return error_answer(request, 400, f"body is not valid JSON: {exc}")
            # JSON the apiserver accepted (it reads 10,000 levels) that we cannot read: a denial
            # saying why reaches the user, where an HTTP error would only be "failed calling webhook".
            log.warning("%s uid=%s: %s", endpoint, uid.group(1).decode(), unread)
            answer, refusal = _review_response(uid.group(1).decode(), denied(unread, code=422, reason="Invalid"),
                                               mutating=mutating)
            state.metrics.answered(endpoint, "", "", _verdict(refusal), time.perf_counter() - started)
            return answer
        try:
            review = AdmissionReview.model_validate(payload)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
            )
            return error_answer(request, 400, f"not an admission.k8s.io/v1 AdmissionReview: {problems}")
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


def _endpoints(app: web.Application) -> str:
    """The routes, for a client that asked for something else (HEAD goes with each GET)."""
    return ", ".join(f"{route.method} {route.resource.canonical}" for route in app.router.routes()
                     if route.method != "HEAD" and route.resource is not None)


@web.middleware
async def no_tracebacks(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    state.in_flight += 1
    state.idle.clear()
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        # The path is a route's: it may be named. The Allow header stays, as HTTP wants for a 405.
        return error_answer(request, 405, f"{request.path} does not take {request.method}; multus-webhook "
                                          f"serves {_endpoints(request.app)}", headers={"Allow": exc.headers["Allow"]})
    except web.HTTPNotFound:
        # The path is not named back: anyone may send any text in it.
        return error_answer(request, 404, f"no such endpoint; multus-webhook serves {_endpoints(request.app)}")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return error_answer(request, 500, "internal error in multus-webhook; see its logs")
    finally:
        state.in_flight -= 1
        if not state.in_flight:
            state.idle.set()


@web.middleware
async def head_deadline(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Tells the request's Connection that its head is complete, and when it has been answered."""
    state = request.app[STATE_KEY]
    connection = state.connections.get(request.protocol)
    if connection is None:  # not accepted by serve_forever (aiohttp's test server)
        return await handler(request)
    connection.request_started(request)
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        return response
    except web.HTTPException as exc:
        response = exc
        raise
    finally:
        if response is not None and (state.draining or not request.content.is_eof()):
            # Answered without reading the whole body (401, 413, 415...): the rest may still arrive
            # after the answer, where it would start the head deadline and close the connection while
            # it looks idle to the client. Saying "Connection: close" ends it cleanly instead. When
            # shutting down, it tells the client not to write another request on this connection, which
            # is about to close.
            response.force_close()
        connection.request_done()


class CannotListen(Exception):
    """The address cannot be listened on (in use, not this host's); the message says which and why."""


class Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a deadline for request heads.

    aiohttp has one timer for a connection (keepalive_timeout), running from the connection's start or
    the last answer whatever the client sends meanwhile. One value cannot be both longer than the
    apiserver keeps idle connections (KEEPALIVE_TIMEOUT) and short enough for a client that trickles a
    request head (slowloris), so aiohttp's timer gets the first and this adds the second: it starts at
    the first byte of a request and stops when the request reaches the application (its head is
    complete; the body has --body-timeout).

    A client may write its next request before the answer to this one (pipelining), in the same write as
    this one's body even: the next head's first byte is then among bytes aiohttp has parsed, which it
    does not tell. So the connection keeps the bytes from the start of the first request not yet
    started, and when one starts, drops its head (up to its blank line) and its body (Content-Length);
    anything left, or received after that body, is the next request's. A chunked body's end is aiohttp's
    alone to find: past one, the deadline runs only for bytes received between requests, as it did
    before pipelining was accounted for."""

    def __init__(self, handler: web.RequestHandler, head_timeout: float, state: ServerState) -> None:
        self.handler = handler
        self.head_timeout = head_timeout
        self._state = state
        self._between_requests = True
        self._deadline: asyncio.TimerHandle | None = None
        #: Whether the bytes are still accounted for (no chunked body so far).
        self._tracking = True
        #: Bytes from the first byte of the next request not yet started.
        self._unstarted = bytearray()
        #: Bytes of the body of the request under way still to come.
        self._body_left = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._state.connections[self.handler] = self
        self._state.no_connections.clear()
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._tracking:
            body = min(len(data), self._body_left)
            self._body_left -= body
            self._unstarted += memoryview(data)[body:]
            next_request = bool(self._unstarted)
        else:
            next_request = self._between_requests
        if next_request:
            self._arm_deadline()
        self.handler.data_received(data)

    def eof_received(self) -> None:
        # aiohttp's returns None too: the transport closes once the client has closed its side.
        self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._state.connections.pop(self.handler, None)
        if not self._state.connections:
            self._state.no_connections.set()
        self.handler.connection_lost(exc)

    def request_started(self, request: web.Request) -> None:
        self._between_requests = False
        self._cancel_deadline()
        if not self._tracking:
            return
        unstarted = self._unstarted
        # A head ends at its first empty line.
        first = _NOT_AN_EMPTY_LINE.search(unstarted)
        head_end = unstarted.find(b"\r\n\r\n", first.start()) if first else -1
        if hdrs.TRANSFER_ENCODING in request.headers or head_end < 0:
            self._tracking = False
            unstarted.clear()
            return
        end = head_end + 4 + (request.content_length or 0)
        self._body_left = max(0, end - len(unstarted))
        del unstarted[:end]
        if unstarted:
            self._arm_deadline()

    def request_done(self) -> None:
        self._between_requests = True

    def _arm_deadline(self) -> None:
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(self.head_timeout, self._head_too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        log.debug("closing a connection whose request head took longer than %gs", self.head_timeout)
        if self._between_requests:
            self.handler.force_close()
        else:
            # A pipelined head that stalled: the request under way still gets its answer.
            self.handler.close()


def make_app(state: ServerState, *, client_certificates: bool = False,
             client_names: frozenset[str] = frozenset()) -> web.Application:
    """``client_certificates`` (with --client-ca): /validate and /mutate answer only connections that
    presented a client certificate, with one of ``client_names`` (--client-name) when given. /healthz,
    /readyz and /metrics stay open: the kubelet's probes present none, and the metrics are counts with
    no object in them (a scraper would need a certificate from the apiserver's client CA otherwise)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[head_deadline, no_tracebacks])
    app[STATE_KEY] = state
    for path, handler, mutating in (("/validate", validate, False), ("/mutate", mutate, True)):
        endpoint = admission_endpoint(handler, mutating=mutating, client_certificates=client_certificates,
                                      client_names=client_names)
        app.router.add_post(path, endpoint)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def _address(sockname: Any) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_forever(
    state: ServerState,
    *,
    cert_dir: Path,
    host: str = "",
    port: int = 8443,
    client_ca: Path | None = None,
    client_names: frozenset[str] = frozenset(),
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
    state.metrics.registry.register(TLSMetrics(tls))
    app = make_app(state, client_certificates=client_ca is not None, client_names=client_names)
    # One server per process: its error log takes the place of any earlier one's.
    _AIOHTTP_LOG.filters[:] = [ParserErrors(state.error_log)]
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout, keepalive_timeout=KEEPALIVE_TIMEOUT,
                           logger=_AIOHTTP_LOG)
    await runner.setup()
    protocol = runner.server
    assert protocol is not None  # set by setup()
    loop = asyncio.get_running_loop()
    # Not web.TCPSite: it cannot pass ssl_handshake_timeout, and asyncio's default (60s) lets a client
    # that never sends a ClientHello hold a connection that long whatever --idle-timeout says.
    # host "" is every address of both families (a socket each): on an IPv6-only or IPv6-first
    # cluster, the probes and the apiserver reach the pod at its IPv6 address.
    try:
        listener = await loop.create_server(
            lambda: Connection(protocol(), idle_timeout, state), host or None, port,
            ssl=tls.context, ssl_handshake_timeout=idle_timeout, backlog=128)
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CannotListen(f"cannot listen on {_address((host, port))}: {reason}") from exc
    log.info("serving HTTPS on %s (certificates from %s)",
             ", ".join(_address(sock.getsockname()) for sock in listener.sockets), cert_dir)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(job(stop)) for job in background]
    if started is not None:
        started()
    await stop.wait()
    for task in tasks:
        task.cancel()
    # Stop accepting, then let every request already started finish, even one whose body is still
    # arriving: aiohttp's own shutdown cuts those off. Meanwhile each answer closes its connection, and
    # kept-alive connections get CONNECTION_GRACE to carry their last request: aiohttp's shutdown
    # would close them under a client writing its next one.
    log.info("stopping: draining %d request(s) in flight", state.in_flight)
    state.draining = True
    listener.close()
    drained_by = loop.time() + shutdown_timeout
    if state.connections:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.no_connections.wait(), min(CONNECTION_GRACE, shutdown_timeout))
    if state.in_flight:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.idle.wait(), max(0.0, drained_by - loop.time()))
    await runner.cleanup()
    state.checks.shutdown(wait=False, cancel_futures=True)
