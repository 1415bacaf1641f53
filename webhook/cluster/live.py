"""LiveClusterView: the cluster store fed by list + watch of Nodes, MultusNodeStates,
NetworkAttachmentDefinitions, NetworkProfiles and Pods (metadata only), with the official kubernetes
client.

Each resource has a reflector thread: list (paged), then watch from the list's resourceVersion with
bookmarks; a watch that ends is resumed from the last resourceVersion seen, a 410 Gone relists, any
other failure (apiserver down, connection reset) retries with capped exponential backoff. The
threads write the store; the admission path only reads it and never calls the API server. The
controller decides from the same store (``kinds`` narrows it to Nodes and MultusNodeStates when the
controller runs alone).
``known`` (and /readyz) turn true once every resource has been listed once, and stay true: when
the apiserver is away the webhook keeps answering from what it has, and /readyz says for how long it
has been out of contact (see docs/failure-modes.md for why that does not make it unready).
"""

from __future__ import annotations

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

from webhook.cluster.store import AGENT_POD, KINDS, NAD, NETWORK_PROFILE, NODE, NODE_STATE, POD, ClusterStore
from webhook.heap import freeze_long_lived, no_cyclic_gc
from webhook.kube import METADATA_LIST, list_pages, open_response, status_message
from webhook.names import AGENT_POD_LABELS, NAMESPACE

log = logging.getLogger(__name__)

#: Where the agents write MultusNodeStates (one per node).
STATE_NAMESPACE = NAMESPACE


JSON = "application/json"
# Pods are many and large and only their annotations matter here: ask for metadata only.
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


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


def resources(state_namespace: str = STATE_NAMESPACE, kinds: Collection[str] = KINDS) -> tuple[Resource, ...]:
    every = (
        # Whole Nodes: the controller reads the Ready condition and the boot id (the store keeps little
        # else). Their status is tens of KiB each: small pages keep what a list holds at once small.
        Resource(NODE, "/api/v1/nodes", page_size=100),
        Resource(NODE_STATE, f"/apis/multus-webhook.io/v1alpha1/namespaces/{state_namespace}/multusnodestates"),
        Resource(NAD, "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions"),
        Resource(NETWORK_PROFILE, "/apis/multus-webhook.io/v1alpha1/networkprofiles"),
        Resource(POD, "/api/v1/pods", metadata_only=True),
        # Whole: their nodeName is in the spec. One per node, reduced to a few fields as they come.
        Resource(AGENT_POD, f"/api/v1/namespaces/{state_namespace}/pods",
                 label_selector=",".join(f"{k}={v}" for k, v in AGENT_POD_LABELS.items())),
    )
    return tuple(r for r in every if r.kind in kinds)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Gone(ApiError):
    """410: the resourceVersion is too old (compacted); only a new list can continue."""


def _slim(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object without managedFields, which no rule reads and which can outweigh the rest."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


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
            self.resources += (Resource(POLICY, f"/api/v1/namespaces/{state_namespace}/configmaps",
                                        field_selector=f"metadata.name={POLICY_CONFIGMAP}"),)
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff_first, self.backoff_cap = backoff_first, backoff_cap
        self._stop = threading.Event()
        self._synced: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._open: set[Any] = set()
        self._open_lock = threading.Lock()
        self.last_error = ""
        # Per resource: since when (monotonic) it has been failing to reach the apiserver.
        self._out_since: dict[str, float] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        for res in self.resources:
            thread = threading.Thread(target=self._reflect, args=(res,), name=f"watch-{res.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._open_lock:
            for resp in list(self._open):
                # Unblocks a thread waiting on the watch stream.
                resp.shutdown()
        for thread in self._threads:
            thread.join(timeout)

    def list_once(self) -> None:
        """List every resource once, without watching (a synchronous first sync, for tests).
        Raises ApiError or a connection error when the cluster cannot be read."""
        for res in self.resources:
            self._list(res)

    def out_of_contact(self) -> float:
        """Seconds since the first resource lost the apiserver (0 while every list and watch works)."""
        since = self._out_since.copy().values()
        return time.monotonic() - min(since) if since else 0.0

    def readiness(self) -> tuple[bool, str]:
        waiting = [r.kind for r in self.resources if r.kind not in self._synced]
        if not waiting:
            away = self.out_of_contact()
            if not away:
                return True, "ok"
            return True, (f"ok, answering from the cache: no contact with the apiserver for {away:.0f}s "
                          f"(last error: {self.last_error})")
        detail = f" (last error: {self.last_error})" if self.last_error else ""
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

    def replace(self, kind: str, objects: Iterable[Mapping[str, Any]]) -> None:
        if kind == POLICY and self._on_policy is not None:
            listed = list(objects)  # the whole list read, so that its resourceVersion is known
            self._on_policy(listed[0] if listed else None)
        else:
            super().replace(kind, objects)

    def _mark_synced(self, kind: str) -> None:
        self._synced.add(kind)
        if len(self._synced) == len(self.resources) and not self._known:
            freeze_long_lived()  # the whole cluster, just listed, before /readyz lets requests in
            self._known = True
            log.info("cluster cache synced")

    # --- the reflector loop ---------------------------------------------------------------------

    def _reflect(self, res: Resource) -> None:
        backoff = _Backoff(self.backoff_first, self.backoff_cap)
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list(res)
                    backoff.reset()
                version = self._watch(res, version, backoff)
            except Gone:
                log.info("%s: resourceVersion expired (410 Gone); listing again", res.kind)
                version = None
            except ApiError as exc:
                self._failed(res, exc, answered=0 < exc.status < 500)
                if exc.status == 404:
                    version = None
                    if res.kind not in self._synced:
                        # The CRD is not installed: nothing of this kind exists until it is. A 404 after
                        # the first sync is more likely an apiserver still registering CRDs after a
                        # restart, so what is known is kept until a list succeeds.
                        self._mark_synced(res.kind)
                self._stop.wait(backoff.next())
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._failed(res, exc)
                self._stop.wait(backoff.next())

    def _failed(self, res: Resource, exc: Exception, answered: bool = False) -> None:
        self.last_error = f"{res.kind}: {exc}"
        # A 4xx (a CRD not installed, RBAC) is an apiserver that answers: the cache is not going stale.
        if answered:
            self._out_since.pop(res.kind, None)
        else:
            self._out_since.setdefault(res.kind, time.monotonic())
        log.warning("watching %s failed: %s; retrying", res.kind, exc)

    def _list(self, res: Resource) -> str:
        with no_cyclic_gc():
            return self._list_pages(res)

    def _list_pages(self, res: Resource) -> str:
        listed: list[str] = []  # the list's resourceVersion, once its last page is in
        self.replace(res.kind, self._items(res, listed))
        if self._known:
            freeze_long_lived(collect=False)  # a relist: what it stored lasts until the next change
        self._mark_synced(res.kind)
        log.debug("listed %s at resourceVersion %s", res.kind, listed[0])
        return listed[0]

    def _items(self, res: Resource, listed: list[str]) -> Iterator[Mapping[str, Any]]:
        """The items of a paged list, page after page (50,000 pods are never held at once)."""
        accept = METADATA_LIST if res.metadata_only else JSON
        limit = min(self.page_size, res.page_size or self.page_size)
        for body in list_pages(lambda query: self._get_json(res.path, query, accept), self._selector(res), limit):
            self._out_since.pop(res.kind, None)
            yield from (_slim(i) for i in body.get("items") or () if isinstance(i, Mapping))
            meta = body.get("metadata") or {}
            if not meta.get("continue"):
                listed.append(str(meta.get("resourceVersion") or ""))

    @staticmethod
    def _selector(res: Resource) -> list[tuple[str, str]]:
        return [(name, value) for name, value in (("fieldSelector", res.field_selector),
                                                  ("labelSelector", res.label_selector)) if value]

    def _watch(self, res: Resource, version: str, backoff: _Backoff) -> str:
        """Apply watch events until the server ends the watch; returns the last resourceVersion."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("resourceVersion", version),
                 ("timeoutSeconds", str(self.watch_timeout)), *self._selector(res)]
        for event in self._stream(res.path, query, METADATA_WATCH if res.metadata_only else JSON,
                                  opened=lambda: self._out_since.pop(res.kind, None)):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, Mapping):
                continue
            if kind == "ERROR":
                status, message = int(obj.get("code") or 0), str(obj.get("message") or "")
                raise (Gone if status == 410 else ApiError)(status, message)
            if kind in ("ADDED", "MODIFIED"):
                self.upsert(res.kind, _slim(obj))
            elif kind == "DELETED":
                self.delete(res.kind, obj)
            meta = obj.get("metadata")
            if isinstance(meta, Mapping) and meta.get("resourceVersion"):
                version = str(meta["resourceVersion"])
            backoff.reset()
            self.last_error = ""
        return version

    # --- HTTP through the official client --------------------------------------------------------

    def _request(self, path: str, query: list[tuple[str, str]], accept: str, read_timeout: float) -> Any:
        try:
            return open_response(self.api, "GET", path, query=query, accept=accept, timeout=(10, read_timeout))
        except ApiException as exc:
            status = int(exc.status or 0)
            raise (Gone if status == 410 else ApiError)(status, status_message(exc)) from None

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

    def _stream(self, path: str, query: list[tuple[str, str]], accept: str,
                opened: Callable[[], object] = lambda: None) -> Iterator[Mapping[str, Any]]:
        # A silent connection is dead after the server's own timeout plus a margin.
        raw = self._request(path, query, accept, read_timeout=self.watch_timeout + 30)
        opened()
        with self._open_lock:
            self._open.add(raw)
        try:
            for line in iter_resp_lines(raw):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    return
                if line:
                    event = json.loads(line)
                    if isinstance(event, Mapping):
                        yield event
        finally:
            with self._open_lock:
                self._open.discard(raw)
            # A watch may end mid-stream: close rather than return a half-read connection to the pool.
            raw.close()
            raw.release_conn()
