"""Keeping the cyclic garbage collector off the objects that live as long as the process, and out of
bulk loads."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = True


def freeze_long_lived() -> None:
    """Put every object alive now out of the cyclic collector's reach.

    A full collection walks every tracked container. With the cache of a large cluster (hundreds of
    thousands of dicts and tuples) that is a pause of tens to a hundred milliseconds for every request
    in flight. Frozen objects are still freed by reference counting (our cache holds no cycles), but a
    cycle frozen while alive (an in-flight request's or connection's objects, caught by a relist's
    freeze) is never collected once it dies while frozen. So each call first unfreezes and collects
    everything, which frees what an earlier call froze alive and has died since: memory no longer
    grows with every relist. That pause is taken at the first sync, before the server is ready, and at
    a relist (after a 410 Gone: rare), whose own pages cost more.
    """
    gc.unfreeze()
    gc.collect()
    _trim_c_heap()
    gc.freeze()


def _glibc(name: str) -> Callable[..., Any] | None:
    try:
        return getattr(ctypes.CDLL(None), name, None)  # glibc only
    except OSError:
        return None


_trim = _glibc("malloc_trim")
_mallopt = _glibc("mallopt")
#: mallopt's M_ARENA_MAX (glibc malloc.h).
_M_ARENA_MAX = -8
#: The main thread's arena and one for every other thread.
ARENAS = 2


def limit_malloc_arenas() -> bool:
    """Have glibc share ARENAS malloc arenas between all threads; False where that cannot be set (not
    glibc). Call it before any thread starts: a thread keeps the arena it first allocated in.

    By default each new thread gets an arena of its own, up to 8 per core. The live cache lists and
    watches in a thread per kind, and what a relist's pages leave free in those arenas stays resident:
    `make bench` measured `serve --kubeconfig` at 150.2 MiB (peak 156.7) with them and 145.8 (peak 150.3)
    with two. The GIL already runs one thread at a time, so two arenas are seldom contended."""
    return _mallopt is not None and bool(_mallopt(_M_ARENA_MAX, ARENAS))


def _trim_c_heap() -> None:
    """Give the C heap's free memory back to the system. glibc keeps what a load freed (list pages read
    in the reflector threads, each with its own malloc arena) as resident memory; a server that has
    just loaded a cluster holds on to tens of MiB it will not use again."""
    if _trim is not None:
        _trim(0)


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """No cyclic collection while the block runs (in any thread: the collector is the process's).

    Parsers and list pages allocate hundreds of thousands of containers with no cycle among them, and
    each allocation burst triggers collections that walk everything kept so far: with the live cache
    of 50,000 pods that was 35 full collections of up to 180 ms, over a third of the first sync. Blocks
    may overlap (several reflector threads list at once): the collector is back on when the last ends.
    """
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
