"""Logging what repeats at most once per interval for each key, the next line telling how many were
left out: HTTP error answers and denials (webhook/server.py) that any client can send as fast as it
likes, and failures that repeat (a watch or a lease renewal while the apiserver is away), whose end is
logged once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

#: What repeats is logged at most once per this many seconds for each key.
INTERVAL = 60.0


@dataclass
class RateLimit:
    """At most one line per ``interval`` for each key (the keys must be a bounded set). Thread-safe: the
    watches and the lease each run in a thread of their own."""

    interval: float = INTERVAL
    clock: Callable[[], float] = time.monotonic
    #: Per key: when a line was last logged, and how many went unlogged since.
    _last: dict[Hashable, tuple[float, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def limited(self, key: Hashable) -> str | None:
        """None when a line for ``key`` was logged within the interval, which this one then counts as
        unlogged; else what the line to log now should end with."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.interval:
                self._last[key] = (last[0], last[1] + 1)
                return None
            self._last[key] = (now, 0)
        unlogged = last[1] if last is not None else 0
        return f" (and {unlogged} more like it since the last such line, not logged)" if unlogged else ""

    def forget(self, key: Hashable) -> None:
        """The next line for ``key`` is logged at once."""
        with self._lock:
            self._last.pop(key, None)


@dataclass
class FailureLog:
    """Each key (a watched kind, a lease) gets a WARNING at its first failure, then at most one per
    interval, and an INFO once it works again. Retries every couple of seconds during an apiserver
    outage (8 watches and the lease) made about 170 lines a minute per replica, which buried what else
    the log said; the state is in /readyz and the metrics meanwhile."""

    logger: logging.Logger
    limit: RateLimit = field(default_factory=RateLimit)
    #: Per key failing now: when its failures began, and how many there were.
    _runs: dict[str, tuple[float, int]] = field(default_factory=dict)

    def failed(self, key: str, message: str) -> None:
        began, failures = self._runs.get(key, (self.limit.clock(), 0))
        self._runs[key] = (began, failures + 1)
        suffix = self.limit.limited(key)
        if suffix is not None:
            self.logger.warning("%s%s", message, suffix)

    def recovered(self, key: str, message: str) -> None:
        """Logged only after failures of ``key``; cheap otherwise (a watch calls it at every event)."""
        run = self._runs.pop(key, None)
        if run is not None:
            self.limit.forget(key)
            self.logger.info("%s after %d failures in %.0fs", message, run[1], self.limit.clock() - run[0])
