"""Thin helpers over the official `kubernetes` client shared by the cluster cache, the agent, the
controller and the certificate manager: client loading, REST calls by path with plain JSON, RFC 3339
times and Events. Everything here does I/O or reads the clock; decisions live in pure modules.

Calls go through the client's ApiClient (configuration, authentication, TLS, connection pool) by
path, not through its generated API classes: the pure code works on objects as the apiserver serves
them (camelCase dicts), and importing CoreV1Api alone costs a process 21 MiB (measured), more than
the webhook's whole cache of 5,000 nodes."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.keepalive import tcp_keepalive_socket_options

log = logging.getLogger(__name__)

#: TCP keepalive on every connection to the apiserver: first probe after 15 s idle, then every 5 s, given up
#: after 3 unanswered. A watch whose connection went away without a reset (a node, NAT or load balancer
#: that dropped it) fails within about 30 s instead of waiting on a socket that never delivers (the
#: MultusNodeStates come on one: the controller would see every heartbeat stop).
KEEPALIVE = {"idle": 15, "interval": 5, "count": 3}

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
#: Events about a cluster-scoped object (a Node) go to the default namespace, as the kubelet's do.
NODE_EVENT_NAMESPACE = "default"


def load_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An explicit kubeconfig, else the pod's service account, else $KUBECONFIG / ~/.kube/config.
    Raises kubernetes.config.ConfigException when none works."""
    in_cluster = not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST")
    path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    # The client calls a file that is not there "Invalid kube-config file. No configuration found.", which
    # sends the user looking inside it. A list ($KUBECONFIG's a:b) is the client's to merge.
    if not in_cluster and os.pathsep not in path and not os.path.exists(os.path.expanduser(path)):
        raise config.ConfigException("no such file")
    configuration = client.Configuration()
    # Every caller retries on its own terms (watches with backoff, the agent and controller on their
    # next pass); urllib3's immediate retries would only add noise and delay.
    configuration.retries = False
    configuration.socket_options = tcp_keepalive_socket_options(**KEEPALIVE)
    if in_cluster:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration)
    return client.ApiClient(configuration)


JSON = "application/json"
#: A list's items with their metadata only (what a Node or Pod is to the rules).
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
#: (connect, read) seconds for one call.
TIMEOUT = (10.0, 60.0)
#: (connect, read) seconds for a call that others wait for (the controller's one loop labels every node)
#: or that is best effort (an Event): an apiserver, or an admission webhook it calls, that takes longer
#: holds the rest up by this much at most, and the call is tried again later.
SHORT_TIMEOUT = (3.0, 5.0)


def open_response(api: client.ApiClient, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                  body: Any = None, content_type: str = JSON, accept: str = JSON,
                  timeout: tuple[float, float] = TIMEOUT) -> Any:
    """Send a request; the urllib3 response, body not yet read (a watch reads it as a stream; the
    caller releases it). Raises ApiException for an answer other than 2xx."""
    headers = {"Accept": accept, **({"Content-Type": content_type} if body is not None else {})}
    method, url, headers, body, _ = api.param_serialize(
        method, path, query_params=list(query), header_params=headers, body=body, auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        response.read()  # type: ignore[no-untyped-call]
        response.response.release_conn()
        raise ApiException(http_resp=response)
    return response.response


def request(api: client.ApiClient, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
            body: Any = None, content_type: str = JSON, accept: str = JSON,
            timeout: tuple[float, float] = TIMEOUT) -> Any:
    """One call; its decoded JSON body (None when empty). Raises ApiException for an answer other than 2xx."""
    raw = open_response(api, method, path, query=query, body=body, content_type=content_type, accept=accept,
                        timeout=timeout)
    try:
        data = raw.data
    finally:
        raw.release_conn()
    return json.loads(data) if data else None


def list_pages(fetch: Callable[[list[tuple[str, str]]], Mapping[str, Any]], query: Sequence[tuple[str, str]],
               limit: int) -> Iterator[Mapping[str, Any]]:
    """The bodies of a list read ``limit`` items at a time; ``fetch`` GETs the list with a query. The
    last body is the one whose metadata has no ``continue`` (its resourceVersion is the list's)."""
    token: str | None = None
    while True:
        body = fetch([("limit", str(limit)), *query, *([("continue", token)] if token else [])])
        yield body
        meta = body.get("metadata")
        token = meta.get("continue") if isinstance(meta, Mapping) else None
        if not token:
            return


def status_message(exc: ApiException) -> str:
    """The message of the Status object the apiserver answered with, else the body or the reason."""
    text = exc.body if isinstance(exc.body, str) else ""
    try:
        return str(json.loads(text).get("message") or text)
    except (ValueError, AttributeError):
        return text or str(exc.reason)


def describe(exc: BaseException) -> str:
    """One line for a log: an apiserver's answer as its code and message (ApiException's own text
    carries every response header and the whole body), anything else as its type and text."""
    if isinstance(exc, ApiException):
        text = f"{exc.status} {exc.reason}: {status_message(exc)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def retry_after(exc: BaseException) -> float | None:
    """The seconds an apiserver's answer asks to wait before the next try (its Retry-After header: with
    a 429 from API Priority and Fairness, or any refusal whose Status carries retryAfterSeconds), None
    when it asks nothing. Only the delta-seconds form: the apiserver sends no other."""
    headers = getattr(exc, "headers", None) if isinstance(exc, ApiException) else None
    value = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def is_status(exc: BaseException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: heartbeats a second apart must stay distinguishable."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time from an object, or None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def event_body(involved: Mapping[str, Any], *, kind: str, event_type: str, reason: str, message: str,
               component: str, instance: str) -> dict[str, Any]:
    """A core/v1 Event on ``involved`` (a Node or a Pod as served), stamped now."""
    meta = involved.get("metadata", {})
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.",
                     "namespace": meta.get("namespace") or NODE_EVENT_NAMESPACE},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", "v1"), "kind": kind, "name": meta.get("name"),
            "namespace": meta.get("namespace"), "uid": meta.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component, "host": instance},
        "reportingComponent": component,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


#: Events an EventRecorder holds while they wait to be sent.
EVENT_QUEUE = 1000
#: An Event said again within this many seconds of the last time is counted on the Event already made
#: (its count and lastTimestamp), as client-go's EventCorrelator does, not made anew.
EVENT_REPEAT_WINDOW = 600.0
#: Events an EventRecorder remembers for that (the most recently said), each a few hundred bytes.
EVENTS_REMEMBERED = 4096
#: Seconds an EventRecorder waits after a failed list of the Events an earlier process made before it
#: lists them again: Events said meanwhile are made without counting on those.
EVENT_LIST_RETRY = 60.0

#: What tells one Event from another: the object it is about (uid, kind, namespace, name), its type,
#: reason and message.
EventKey = tuple[str | None, str, str | None, str | None, str, str, str]


@dataclass(slots=True)
class _Made:
    """An Event made: where it is, its count and resourceVersion, and when it was last said (monotonic)."""

    namespace: str
    name: str
    count: int
    said: float
    version: str


def event_key(body: Mapping[str, Any]) -> EventKey:
    involved = body["involvedObject"]
    return (involved.get("uid"), involved["kind"], involved.get("namespace"), involved.get("name"),
            body["type"], body["reason"], body["message"])


class EventRecorder:
    """Sends Events from a thread of its own, so that whoever decides what they say never waits for
    them: an apiserver slow to take Events (an admission webhook on them that does not answer holds
    each create for up to its timeoutSeconds, 30) would otherwise hold up every decision after them.
    Events wait in a bounded queue, sent in the order they were made; when it is full a new one is
    dropped and counted (Events are best effort, and ever more of them waiting would only grow the
    process). The thread starts with the first Event. An Event that can wait (one said again later if not
    now) may leave room for others: it is queued only while ``leave`` slots stay free after it, and emit
    says whether it was, so that its sender tries again later instead of counting it as said.

    An Event said again within EVENT_REPEAT_WINDOW of the last time (a Multus daemon that crash-loops
    makes the same MultusNotReady at each restart) raises the count of the one made then instead of
    making another object in etcd. A sender that may have said it in an earlier process (``find``: a
    controller that starts, or takes the lease over, warns again of what still holds) has it counted on
    the Event that process made, if the apiserver still has it."""

    def __init__(self, api: client.ApiClient, *, component: str, instance: str, capacity: int = EVENT_QUEUE,
                 timeout: tuple[float, float] = SHORT_TIMEOUT) -> None:
        self.api, self.component, self.instance, self.timeout = api, component, instance, timeout
        self._queue: queue.Queue[tuple[dict[str, Any], bool]] = queue.Queue(capacity)
        #: The Events made, least recently said first; those an earlier process made, found by _learn and
        #: not said since (apart, so that more of them than _made holds are not evicted before their turn:
        #: a takeover says them again in the order listed); the (namespace, reason, type) listed, and when
        #: one whose list failed may be listed again. Only the sender thread reads and writes them.
        self._made: OrderedDict[EventKey, _Made] = OrderedDict()
        self._found: dict[EventKey, _Made] = {}
        self._listed: set[tuple[str, str, str]] = set()
        self._list_again: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: Events dropped since the queue was last found drained, and ever.
        self._dropping = 0
        self.dropped = 0

    @property
    def capacity(self) -> int:
        return self._queue.maxsize

    def emit(self, involved: Mapping[str, Any], *, kind: str, event_type: str, reason: str, message: str,
             leave: int = 0, find: bool = False) -> bool:
        """Whether the Event was queued."""
        if leave and self._queue.qsize() + leave >= self._queue.maxsize:
            return False  # not dropped: its sender says it again later
        body = event_body(involved, kind=kind, event_type=event_type, reason=reason, message=message,
                          component=self.component, instance=self.instance)
        try:
            self._queue.put_nowait((body, find))
        except queue.Full:
            with self._lock:
                self._dropping += 1
                self.dropped += 1
                first = self._dropping == 1
            if first:  # the rest of the run is counted, and logged once the queue drains
                log.warning("%d events are waiting to be sent: dropping event %s on %s/%s and any more until "
                            "they are sent", self._queue.maxsize, reason, kind, body["involvedObject"]["name"])
            return False
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)
                self._thread.start()
        return True

    def _run(self) -> None:
        while not (self._closing.is_set() and self._queue.empty()):
            try:
                body, find = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._send(body, find)
            except Exception as exc:  # best effort: logged, never raised
                involved = body["involvedObject"]
                log.warning("could not record event %s on %s/%s: %s", body["reason"], involved["kind"],
                            involved["name"], describe(exc))
            if self._queue.empty():
                with self._lock:
                    dropped, self._dropping = self._dropping, 0
                if dropped:
                    log.warning("dropped %d events while %d were waiting to be sent (%d dropped in all)",
                                dropped, self._queue.maxsize, self.dropped)

    def _send(self, body: dict[str, Any], find: bool) -> None:
        key = event_key(body)
        now = time.monotonic()
        if find:
            self._learn(body, now)
        # Found ones left unsaid past the window would be made anew anyway: kept, a list of thousands (every
        # Warning of the reason in the last hour) would stay for the life of the process. Each list's
        # are found at one time, and lists follow each other, so the oldest come first.
        while self._found and now - next(iter(self._found.values())).said >= EVENT_REPEAT_WINDOW:
            del self._found[next(iter(self._found))]
        found = self._found.pop(key, None)
        made = self._made.get(key) or found
        if made is not None and now - made.said < EVENT_REPEAT_WINDOW:
            try:
                self._count(made, body)
            except Exception as exc:
                if not is_status(exc, 404):
                    raise
                made = None  # expired (the apiserver's --event-ttl, an hour by default) or deleted: made anew
        else:
            made = None
        if made is None:
            created = request(self.api, "POST", f"/api/v1/namespaces/{body['metadata']['namespace']}/events",
                              body=body, timeout=self.timeout)
            made = _Made(created["metadata"]["namespace"], created["metadata"]["name"], 1, now,
                         created["metadata"]["resourceVersion"])
        made.said = now
        self._remember(key, made)

    def _count(self, made: _Made, body: Mapping[str, Any]) -> None:
        """Raises the count of the Event ``made`` by one. The patch holds the resourceVersion the count was
        read at, so that another replica's recorder raising it meanwhile (one that found the Event at a
        takeover) is not undone by a count from before: on a conflict the Event is read again, once."""
        path = f"/api/v1/namespaces/{made.namespace}/events/{made.name}"
        for last in (False, True):
            try:
                patched = request(self.api, "PATCH", path, body={
                    "metadata": {"resourceVersion": made.version}, "count": made.count + 1,
                    "lastTimestamp": body["lastTimestamp"]}, content_type=MERGE_PATCH, timeout=self.timeout)
            except Exception as exc:
                if last or not is_status(exc, 409):
                    raise
                current = request(self.api, "GET", path, timeout=self.timeout)
                made.count, made.version = int(current.get("count") or 1), current["metadata"]["resourceVersion"]
            else:
                made.count, made.version = made.count + 1, patched["metadata"]["resourceVersion"]
                return

    def _learn(self, body: Mapping[str, Any], now: float) -> None:
        """Finds the Events of ``body``'s reason and type this component made in its namespace, in any
        process, as if said ``now``: once per process for each, by one paged list (the apiserver keeps no
        watch cache of Events, so each list reads the namespace's Events from etcd: one per Event said
        again, thousands at a takeover, would read them thousands of times). A list that fails (no RBAC
        to list, a timeout) is logged and tried again EVENT_LIST_RETRY later, not at each Event, and the
        Event is made all the same: at worst one more object, where raising would lose the Warning."""
        namespace, reason, event_type = body["metadata"]["namespace"], body["reason"], body["type"]
        listed = (namespace, reason, event_type)
        if listed in self._listed or now < self._list_again.get(listed, 0.0):
            return
        selector = f"reason={reason},type={event_type},reportingComponent={self.component}"
        found: dict[EventKey, _Made] = {}
        try:
            for page in list_pages(lambda query: request(self.api, "GET", f"/api/v1/namespaces/{namespace}/events",
                                                         query=query, timeout=self.timeout),
                                   [("fieldSelector", selector)], 500):
                for event in page.get("items") or ():
                    made = _Made(namespace, event["metadata"]["name"], int(event.get("count") or 1), now,
                                 event["metadata"]["resourceVersion"])
                    known = found.get(event_key(event))
                    if known is None or known.count < made.count:  # two of them: the one said most
                        found[event_key(event)] = made
        except Exception as exc:
            self._list_again[listed] = now + EVENT_LIST_RETRY
            log.warning("could not list the %s events %s of %s in %s to count on them (making them anew, listing "
                        "again in %.0fs): %s", event_type, reason, self.component, namespace, EVENT_LIST_RETRY,
                        describe(exc))
            return
        self._found.update(found)
        self._listed.add(listed)
        self._list_again.pop(listed, None)

    def _remember(self, key: EventKey, made: _Made) -> None:
        self._made[key] = made
        self._made.move_to_end(key)
        while len(self._made) > EVENTS_REMEMBERED:
            self._made.popitem(last=False)

    def close(self, timeout: float) -> None:
        """Sends what waits for up to ``timeout`` seconds; what is left then is not sent."""
        self._closing.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
