"""LiveClusterView: the cluster store fed by list + watch of Nodes, MultusNodeStates,
NetworkAttachmentDefinitions, NetworkProfiles, Pods (metadata only) and ResourceQuotas, with the
official kubernetes client.

Each resource has a reflector thread: list (paged), then watch from the list's resourceVersion with
bookmarks; a watch that ends or breaks is resumed after the last event it delivered, a 410 Gone
relists, any other failure (apiserver down, connection reset, a watch silent for WATCH_SILENCE)
retries with capped exponential backoff. The threads write the store; the admission path only reads
it and never calls the API server. The controller decides from the same store (``kinds`` narrows it
to Nodes and MultusNodeStates when the controller runs alone).
``known`` (and /readyz) turn true once every resource has been listed once, and stay true: when
the apiserver is away the webhook keeps answering from what it has, and /readyz says for how long it
has been out of contact (see docs/failure-modes.md for why that does not make it unready).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import ReadTimeoutError

from webhook.cluster.store import (
    AGENT_POD,
    KINDS,
    NAD,
    NETWORK_PROFILE,
    NODE,
    NODE_STATE,
    POD,
    RESOURCE_QUOTA,
    ClusterStore,
)
from webhook.heap import freeze_long_lived, no_cyclic_gc
from webhook.kube import METADATA_LIST, list_pages, open_response, retry_after, status_message
from webhook.names import AGENT_POD_LABELS, NAMESPACE
from webhook.ratelog import FailureLog

log = logging.getLogger(__name__)

#: Where the agents write MultusNodeStates (one per node).
STATE_NAMESPACE = NAMESPACE


JSON = "application/json"
#: A watch that delivers nothing for this long, not even a bookmark, is taken for dead and opened again
#: (from the last resourceVersion: nothing is listed again). A connection that went away without a
#: reset (a node or NAT dropping it) is found sooner by TCP keepalive (webhook.kube.load_client); this
#: catches a peer that still acknowledges but sends nothing (a stalled apiserver or proxy). The
#: apiserver sends a watch that asks for bookmarks one about every minute, but only once its cache has
#: moved past the watch's resourceVersion: on a quiet resource the first came after 120 s (measured,
#: kube-apiserver 1.37), hence the margin. Before this, a silent watch went unnoticed for 330 s.
WATCH_SILENCE = 150.0
#: A watch that ends sooner than this with no event in it is no watch (client-go's reflector says the
#: same): something ends every watch at once, and it is opened again only after a backoff.
SHORT_WATCH = 1.0
#: Where a CustomResourceDefinition is read, to tell a CRD that is not installed from one the
#: apiserver does not serve yet (both answer 404).
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
# Pods are many and large and only their annotations matter here: ask for metadata only.
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


#: The pods the cache keeps: those not finished (see resources()).
RUNNING_PODS = "status.phase!=Succeeded,status.phase!=Failed"


#: The ConfigMap (in the webhook's namespace) whose ``policy`` key overrides the policy file.
POLICY_CONFIGMAP = "multus-webhook-policy"
POLICY = "PolicyConfigMap"


@dataclass(frozen=True)
class Resource:
    kind: str
    path: str
    metadata_only: bool = False
    field_selector: str = ""
    label_selector: str = ""
    #: Objects per list request at most, below the view's page size.
    page_size: int | None = None
    #: The CustomResourceDefinition that serves it (none for built-in kinds).
    crd: str = ""

    @property
    def api_version(self) -> str:
        """Of its objects, which the items of a list do not carry (those of a metadata list carry another)."""
        group_version = self.path.split("/")[2:4]  # /api/v1/... or /apis/<group>/<version>/...
        return group_version[0] if self.path.startswith("/api/") else "/".join(group_version)

    @property
    def list_accept(self) -> str:
        return METADATA_LIST if self.metadata_only else JSON

    def limit(self, page_size: int) -> int:
        return min(page_size, self.page_size or page_size)

    def selectors(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in (("fieldSelector", self.field_selector),
                                                  ("labelSelector", self.label_selector)) if value]


def resources(state_namespace: str = STATE_NAMESPACE, kinds: Collection[str] = KINDS) -> tuple[Resource, ...]:
    """What the webhook reads of the cluster, and how: the live view and `check --kubeconfig` (snapshot)
    both list from here, so that check reads the cluster the webhook does."""
    every = (
        # Whole Nodes: the controller reads the Ready condition and the boot id (the store keeps little
        # else). Their status is tens of KiB each: small pages keep what a list holds at once small.
        Resource(NODE, "/api/v1/nodes", page_size=100),
        Resource(NODE_STATE, f"/apis/multus-webhook.io/v1alpha1/namespaces/{state_namespace}/multusnodestates",
                 crd="multusnodestates.multus-webhook.io"),
        Resource(NAD, "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions",
                 crd="network-attachment-definitions.k8s.cni.cncf.io"),
        Resource(NETWORK_PROFILE, "/apis/multus-webhook.io/v1alpha1/networkprofiles",
                 crd="networkprofiles.multus-webhook.io"),
        # Running and pending pods only: a Succeeded or Failed pod's sandbox is gone (the kubelet ran CNI
        # DEL), so it holds no NAD (nad-in-use); a watch with this selector sends DELETED when a pod
        # finishes. Nothing else reads the cached pods (the repair lists a node's pods itself).
        Resource(POD, "/api/v1/pods", metadata_only=True, field_selector=RUNNING_PODS),
        # Whole: their nodeName is in the spec. One per node, reduced to a few fields as they come.
        Resource(AGENT_POD, f"/api/v1/namespaces/{state_namespace}/pods",
                 label_selector=",".join(f"{k}={v}" for k, v in AGENT_POD_LABELS.items())),
        # Whole (their scopes are in the spec), but few, and each kept only as a name, if at all.
        Resource(RESOURCE_QUOTA, "/api/v1/resourcequotas"),
    )
    return tuple(r for r in every if r.kind in kinds)


def policy_resource(namespace: str) -> Resource:
    """The policy ConfigMap in the webhook's ``namespace``, listed (and watched) by its name."""
    return Resource(POLICY, f"/api/v1/namespaces/{namespace}/configmaps",
                    field_selector=f"metadata.name={POLICY_CONFIGMAP}")


#: The longest a Retry-After is obeyed; a server that asks for more is asked again then.
RETRY_AFTER_MAX = 60.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(f"{status}: {message}" if status else message)  # 0: no HTTP status to tell
        self.status, self.message = status, message
        #: Seconds the server asked to be left alone (its Retry-After, with a 429 or 503).
        self.retry_after = retry_after


class Gone(ApiError):
    """410: the resourceVersion is too old (compacted); only a new list can continue."""


def _slim(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object without managedFields, which no rule reads and which can outweigh the rest."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _shutdown(response: Any) -> None:
    """Wake the thread reading a watch's response. A connection the peer reset is not connected any
    more (OSError, ENOTCONN), and urllib3 refuses a response its reader has begun to close after an
    error (ValueError, RuntimeError): either way that reader is awake already."""
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        response.shutdown()


class _Backoff:
    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.delay = self.first


class LiveClusterView(ClusterStore):
    def __init__(
        self,
        api: Any,
        *,
        state_namespace: str = STATE_NAMESPACE,
        kinds: Collection[str] = KINDS,
        page_size: int = 500,
        watch_timeout: int = 300,
        watch_silence: float = WATCH_SILENCE,
        backoff_first: float = 0.2,
        backoff_cap: float = 5.0,
        on_policy: Callable[[Mapping[str, Any] | None], None] | None = None,
    ) -> None:
        super().__init__()
        self.api = api
        self.resources = resources(state_namespace, kinds)
        # The policy ConfigMap is watched like the rest, but its events go to ``on_policy`` (the
        # ConfigMap, or None when there is none) instead of the store.
        self._on_policy = on_policy
        if on_policy is not None:
            self.resources += (policy_resource(state_namespace),)
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.watch_silence = watch_silence
        self.backoff_first, self.backoff_cap = backoff_first, backoff_cap
        self._stop = threading.Event()
        self._synced: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._open: dict[str, Any] = {}  # kind -> the response its watch is reading
        self._open_lock = threading.Lock()
        # One list at a time, as when the store's lock was held through a whole list: several lists'
        # pages in flight together would raise the first sync's peak memory. Watch events of every
        # kind are applied meanwhile (the store's lock is taken page by page).
        self._listing = threading.Lock()
        # Per resource: the error that made it fail last, told while it is failing.
        self._errors: dict[str, str] = {}
        # Per resource: the resourceVersion to watch from, that of its list and then of each event
        # applied (as client-go's reflector keeps it): a watch that breaks resumes after the last event
        # it delivered, not at its own start (which applied its events twice and, for MultusNodeStates,
        # took heartbeats back in time). A kind without one is listed (again).
        self._versions: dict[str, str] = {}
        # Per resource: when (monotonic) the apiserver last fed it (a list page, a watch opened but for
        # one that ended at once with nothing in it, an event or bookmark), and since when it has been
        # failing: the time of that last success.
        self._started = time.monotonic()
        self._contact: dict[str, float] = {}
        self._failing: dict[str, float] = {}
        # Per resource: the objects it could not apply and skipped (see _skipped_if_failing), for /metrics.
        self._skipped: dict[str, int] = {}
        self._failures = FailureLog(log)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        for res in self.resources:
            thread = threading.Thread(target=self._reflect, args=(res,), name=f"watch-{res.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._open_lock:
            for resp in list(self._open.values()):
                # Unblocks a thread waiting on the watch stream.
                _shutdown(resp)
        for thread in self._threads:
            thread.join(timeout)

    def list_once(self) -> None:
        """List every resource once, without watching (a synchronous first sync, for tests).
        Raises ApiError or a connection error when the cluster cannot be read."""
        for res in self.resources:
            self._list(res)

    def out_of_contact(self, kind: str | None = None) -> float:
        """Seconds since the apiserver last fed ``kind`` (of all kinds, the one fed longest ago) if it
        fails now, 0 while it is fed. Whatever the failure: an apiserver that refuses (403 after an
        RBAC change) leaves that part of the cache as old as one that does not answer."""
        failing = self._failing.copy()
        since = [t for k, t in failing.items() if kind in (None, k)]
        return time.monotonic() - min(since) if since else 0.0

    def skipped(self, kind: str) -> int:
        """How many events (or listed policy ConfigMaps) of ``kind`` could not be applied and were skipped."""
        return self._skipped.get(kind, 0)

    def reopen(self, kind: str) -> None:
        """What is stored of ``kind`` was found behind the apiserver: its watch, however quiet, is not
        fed. It is closed, and opened again from where it was (through a new connection), at once
        rather than after WATCH_SILENCE; meanwhile the kind counts as out of contact."""
        with self._open_lock:
            raw = self._open.get(kind)
        if raw is not None:
            log.warning("%s: the cache is behind the apiserver; opening its watch again", kind)
            _shutdown(raw)

    def readiness(self) -> tuple[bool, str]:
        waiting = [r.kind for r in self.resources if r.kind not in self._synced]
        # The error of the kind failing longest, which out_of_contact() tells of: one error shared by
        # every kind was cleared by any other kind's event, and read "(last error: )".
        failing = self._failing.copy()
        longest = min(failing, key=failing.__getitem__, default=None)
        error = self._errors.get(longest, "") if longest is not None else ""
        if not waiting:
            if longest is None:
                return True, "ok"
            return True, (f"ok, answering from the cache: no contact with the apiserver for "
                          f"{time.monotonic() - failing[longest]:.0f}s (last error: {error})")
        detail = f" (last error: {error})" if error else ""
        return False, f"cluster cache not synced: waiting for the first list of {', '.join(waiting)}{detail}"

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> None:
        if kind == POLICY and self._on_policy is not None:
            self._on_policy(obj)
        else:
            super().upsert(kind, obj)

    def delete(self, kind: str, obj: Mapping[str, Any]) -> None:
        if kind == POLICY and self._on_policy is not None:
            self._on_policy(None)
        else:
            super().delete(kind, obj)

    def replace_pages(self, kind: str, pages: Iterable[Iterable[Mapping[str, Any]]]) -> None:
        if kind == POLICY and self._on_policy is not None:
            listed = [obj for page in pages for obj in page]  # the whole list read: its resourceVersion is known
            with self._skipped_if_failing(kind, "the listed ConfigMap"):
                self._on_policy(listed[0] if listed else None)
        else:
            super().replace_pages(kind, pages)

    @contextlib.contextmanager
    def _skipped_if_failing(self, kind: str, what: str) -> Iterator[None]:
        """Applying one object failed (a bug): it is logged, counted and skipped. Raised, it failed the list
        (the kind never synced, the replica never ready) or the watch, which was opened again from before
        the event and replayed it for ever, so that nothing after it was ever applied."""
        try:
            yield
        except Exception:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            log.exception("%s: could not apply %s; skipped it, please report it", kind, what)

    def _mark_synced(self, kind: str) -> None:
        self._synced.add(kind)
        if len(self._synced) == len(self.resources) and not self._known:
            freeze_long_lived()  # the whole cluster, just listed, before /readyz lets requests in
            self._known = True
            log.info("cluster cache synced")

    # --- the reflector loop ---------------------------------------------------------------------

    def _reflect(self, res: Resource) -> None:
        backoff = _Backoff(self.backoff_first, self.backoff_cap)
        while not self._stop.is_set():
            try:
                if res.kind not in self._versions:
                    self._versions[res.kind] = self._list(res)
                    backoff.reset()
                if not self._watch(res, backoff):
                    self._stop.wait(backoff.next())
            except Gone as exc:
                log.info("%s: resourceVersion expired (410 Gone); listing again", res.kind)
                self._versions.pop(res.kind, None)
                # Not fed until the new list's first page: it may wait behind another kind's list, and
                # meanwhile /readyz names the 410 as its error.
                self._errors[res.kind] = f"{res.kind}: {exc}"
                self._mark_failing(res.kind)
            except ApiError as exc:
                if exc.status == 404:
                    self._versions.pop(res.kind, None)
                    why = self._why_not_served(res)
                    if why is None:
                        # The CRD is not installed: nothing of this kind exists until it is (the list is
                        # tried again), and the objects of a CRD deleted went with it.
                        self.replace_pages(res.kind, ())
                        self._succeeded(res.kind)
                        self._mark_synced(res.kind)
                    else:
                        self._failed(res, ApiError(404, f"{exc.message}: {why}"))
                else:
                    self._failed(res, exc)
                # An apiserver shedding load (429) says when to come back: sooner only adds to its load.
                self._stop.wait(max(backoff.next(), exc.retry_after))
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._failed(res, exc)
                self._stop.wait(backoff.next())

    def _why_not_served(self, res: Resource) -> str | None:
        """After a 404 on ``res``: why it may still be served, None when its CustomResourceDefinition is
        not installed. An apiserver that has just started answers 404 for a while for the
        CRDs it has not registered yet: taken for "none exist", that made a new replica ready with no
        NADs, and a new leader with no MultusNodeStates took every node's ready label."""
        if not res.crd:
            return "a built-in resource"
        try:
            self._get_json(f"{CRD_PATH}/{res.crd}", [], JSON)
        except ApiError as exc:
            return None if exc.status == 404 else f"its CustomResourceDefinition {res.crd} could not be read ({exc})"
        except Exception as exc:
            return f"its CustomResourceDefinition {res.crd} could not be read ({exc})"
        return f"its CustomResourceDefinition {res.crd} exists but is not served yet"

    def _succeeded(self, kind: str) -> None:
        self._contact[kind] = time.monotonic()
        self._failing.pop(kind, None)
        self._failures.recovered(kind, f"watching {kind} works again")

    def _mark_failing(self, kind: str) -> None:
        self._failing.setdefault(kind, self._contact.get(kind, self._started))

    def _failed(self, res: Resource, exc: Exception) -> None:
        """``res`` is failing; for out_of_contact, since its last success."""
        self._errors[res.kind] = f"{res.kind}: {exc}"
        self._mark_failing(res.kind)
        self._failures.failed(res.kind, f"watching {res.kind} failed: {exc}; retrying")

    def _list(self, res: Resource) -> str:
        with self._listing, no_cyclic_gc():
            return self._list_pages(res)

    def _list_pages(self, res: Resource) -> str:
        listed: list[str] = []  # the list's resourceVersion, once its last page is in
        self.replace_pages(res.kind, self._pages(res, listed))
        if self._known:
            freeze_long_lived()  # a relist: what it stored lasts until the next change
        self._mark_synced(res.kind)
        log.debug("listed %s at resourceVersion %s", res.kind, listed[0])
        return listed[0]

    def _pages(self, res: Resource, listed: list[str]) -> Iterator[Iterator[Mapping[str, Any]]]:
        """The items of a paged list, page after page (50,000 pods are never held at once); each page
        is read from the apiserver before it is yielded, so that the store applies it without waiting
        on the network."""
        for body in list_pages(lambda query: self._get_json(res.path, query, res.list_accept), res.selectors(),
                               res.limit(self.page_size)):
            self._succeeded(res.kind)
            meta = body.get("metadata") or {}
            if not meta.get("continue"):
                listed.append(str(meta.get("resourceVersion") or ""))
            yield (_slim(i) for i in body.get("items") or () if isinstance(i, Mapping))

    def _watch(self, res: Resource, backoff: _Backoff) -> bool:
        """Apply watch events from the kind's resourceVersion until the server ends the watch; False when
        it ended at once with nothing in it (counted as a failure, to be backed off)."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("resourceVersion", self._versions[res.kind]),
                 ("timeoutSeconds", str(self.watch_timeout)), *res.selectors()]
        fed = self._contact.get(res.kind, self._started)
        opened = time.monotonic()
        events = 0
        gone = False
        try:
            for event in self._stream(res, query):
                kind, obj = event.get("type"), event.get("object")
                if not isinstance(obj, Mapping):
                    continue
                if kind == "ERROR":
                    status, message = int(obj.get("code") or 0), str(obj.get("message") or "")
                    raise (Gone if status == 410 else ApiError)(status, message)
                with self._skipped_if_failing(res.kind, f"a {kind} event"):
                    if kind in ("ADDED", "MODIFIED"):
                        self.upsert(res.kind, _slim(obj))
                    elif kind == "DELETED":
                        self.delete(res.kind, obj)
                meta = obj.get("metadata")
                if isinstance(meta, Mapping) and meta.get("resourceVersion"):
                    self._versions[res.kind] = str(meta["resourceVersion"])
                events += 1
                self._succeeded(res.kind)
                backoff.reset()
        except Gone:
            gone = True
            raise
        finally:
            # However it ended (empty, an ERROR event, a reset), a watch that applied nothing within
            # SHORT_WATCH did not feed the kind: its opening is not contact. Counted as contact, an
            # apiserver that fails every watch as it opens kept the kind "in contact" for ever.
            at_once = not events and time.monotonic() - opened < SHORT_WATCH and not self._stop.is_set()
            if gone:
                # But a 410 is the apiserver answering, routinely (the resourceVersion was compacted): the
                # kind is out of contact from now until the relist's first page, not since its last event
                # (a quiet kind's, minutes ago).
                self._succeeded(res.kind)
            elif at_once:
                self._contact[res.kind] = fed
        if not at_once:
            return True
        self._failed(res, ApiError(0, "the watch ended at once with no event"))
        return False

    # --- HTTP through the official client --------------------------------------------------------

    def _request(self, path: str, query: list[tuple[str, str]], accept: str, read_timeout: float) -> Any:
        try:
            return open_response(self.api, "GET", path, query=query, accept=accept, timeout=(10, read_timeout))
        except ApiException as exc:
            status = int(exc.status or 0)
            wait = min(retry_after(exc) or 0.0, RETRY_AFTER_MAX)
            raise (Gone if status == 410 else ApiError)(status, status_message(exc), wait) from None

    def _get_json(self, path: str, query: list[tuple[str, str]], accept: str) -> Mapping[str, Any]:
        raw = self._request(path, query, accept, read_timeout=60)
        try:
            # json, not orjson as on the admission path: orjson saved 10% of the sync's CPU, but the
            # cache synced from it held 10 MiB more (146 -> 156 MiB at the bench's scale; measured).
            body = json.loads(raw.data)
        finally:
            raw.release_conn()
        if not isinstance(body, Mapping):
            raise ApiError(0, f"GET {path}: the response is not a JSON object")
        return body

    def _stream(self, res: Resource, query: list[tuple[str, str]]) -> Iterator[Mapping[str, Any]]:
        raw = self._request(res.path, query, METADATA_WATCH if res.metadata_only else JSON,
                            read_timeout=self.watch_silence)
        self._succeeded(res.kind)
        with self._open_lock:
            self._open[res.kind] = raw
        try:
            for line in iter_resp_lines(raw):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    return
                if line:
                    event = json.loads(line)
                    if isinstance(event, Mapping):
                        yield event
        except ReadTimeoutError:
            raise ApiError(0, f"no event or bookmark for {self.watch_silence:.0f}s: the watch is taken for "
                              "dead") from None
        finally:
            with self._open_lock:
                if self._open.get(res.kind) is raw:
                    del self._open[res.kind]
            # A watch may end mid-stream: close rather than return a half-read connection to the pool.
            raw.close()
            raw.release_conn()
