"""A local copy of one kind of object, kept by list + watch (relist on 410 Gone or any error), so the
controller decides from memory and hears of every change at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import watch

from webhook.controller.kube import call, is_status
from webhook.heap import freeze_long_lived, no_cyclic_gc

log = logging.getLogger(__name__)

Key = tuple[str, str]
#: Objects per list request.
PAGE = 500


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _version(obj: Mapping[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def newer_or_same(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether ``new`` may replace ``old``. Resource versions are opaque by contract but etcd revisions
    in practice; comparing them keeps a late watch event from undoing a write we already recorded."""
    if old is None:
        return True
    a, b = _version(new), _version(old)
    return a is None or b is None or a >= b


class Mirror:
    def __init__(self, what: str, list_fn: Callable[..., Any], *args: Any, on_change: Callable[[], None],
                 watch_timeout: int = 60,
                 keep: Callable[[dict[str, Any]], dict[str, Any]] = lambda obj: obj, page_size: int = PAGE) -> None:
        """``keep`` reduces each object to what the controller reads before it is stored."""
        self.what = what
        self.keep = keep
        self.page_size = page_size
        self.list_fn, self.args = list_fn, args
        self.on_change = on_change
        self.watch_timeout = watch_timeout
        self.synced = threading.Event()
        self._items: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._watch: watch.Watch | None = None

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items.values())

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._items.get((namespace, name))

    def record(self, obj: dict[str, Any]) -> None:
        """Take in an object we just wrote, ahead of its watch event."""
        obj = self.keep(obj)
        with self._lock:
            if newer_or_same(obj, self._items.get(key_of(obj))):
                self._items[key_of(obj)] = obj

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                self._list_and_watch(stop)
                backoff = 0.5
            except Exception as exc:
                if stop.is_set():  # stop() cut the watch short: not a failure
                    return
                if not is_status(exc, 410):
                    log.warning("watching %s: %s; relisting in %.1fs", self.what, exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 30)

    def stop(self) -> None:
        """Unblock a watch that is waiting for its next event."""
        w = self._watch
        if w is not None:
            w.stop()  # type: ignore[no-untyped-call]

    def _list(self) -> str:
        """List in pages, each reduced to what is kept as it comes (5,000 whole Nodes at once were tens
        of MiB of a server's memory for good); returns the list's resourceVersion."""
        items: dict[Key, dict[str, Any]] = {}
        token: str | None = None
        with no_cyclic_gc():
            while True:
                page = call(self.list_fn, *self.args, limit=self.page_size, **({"_continue": token} if token else {}))
                items.update((key_of(o), self.keep(o)) for o in page.get("items") or [])
                token = page["metadata"].get("continue")
                if not token:
                    break
        with self._lock:
            self._items = items
        if not self.synced.is_set():
            freeze_long_lived()  # what was just listed lasts; before the first sync, a pause is harmless
        return str(page["metadata"]["resourceVersion"])

    def _list_and_watch(self, stop: threading.Event) -> None:
        version = self._list()
        self.synced.set()
        self.on_change()
        while not stop.is_set():
            self._watch = watch.Watch()  # type: ignore[no-untyped-call]
            for event in self._watch.stream(  # type: ignore[no-untyped-call]
                    self.list_fn, *self.args, resource_version=version,
                    timeout_seconds=self.watch_timeout, allow_watch_bookmarks=True, deserialize=False):
                obj = self.keep(event.get("object") or {})
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event.get("type") == "BOOKMARK":
                    continue
                with self._lock:
                    if event.get("type") == "DELETED":
                        self._items.pop(key_of(obj), None)
                    elif newer_or_same(obj, self._items.get(key_of(obj))):
                        self._items[key_of(obj)] = obj
                self.on_change()
                if stop.is_set():
                    return
