"""Logging a failure that repeats (a watch or a lease renewal while the apiserver is away) once per
interval instead of at every retry, and its end once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: A repeating failure is logged at most once per this many seconds for each key.
INTERVAL = 60.0


@dataclass(slots=True)
class _Run:
    """A run of failures of one key: when it began, when a line was last logged, how many failures
    went unlogged since, and in all."""

    began: float
    logged: float
    unlogged: int = 0
    failures: int = 1


@dataclass
class FailureLog:
    """Each key (a watched kind, a lease) gets a WARNING at its first failure, then at most one per
    ``interval`` telling how many went unlogged in between, and an INFO once it works again. Retries
    every couple of seconds during an apiserver outage (8 watches and the lease) made about 170 lines a
    minute per replica, which buried what else the log said; the state is in /readyz and the metrics
    meanwhile."""

    logger: logging.Logger
    interval: float = INTERVAL
    clock: Callable[[], float] = time.monotonic
    _runs: dict[str, _Run] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, key: str, message: str) -> None:
        now = self.clock()
        with self._lock:
            run = self._runs.get(key)
            if run is None:
                self._runs[key] = _Run(now, now)
                unlogged = 0
            else:
                run.failures += 1
                if now - run.logged < self.interval:
                    run.unlogged += 1
                    return
                unlogged, run.unlogged, run.logged = run.unlogged, 0, now
        self.logger.warning("%s%s", message, f" ({unlogged} more failures like it since the last such line, "
                            "not logged)" if unlogged else "")

    def recovered(self, key: str, message: str) -> None:
        """Logged only after failures of ``key``; cheap otherwise (a watch calls it at every event)."""
        if key not in self._runs:
            return
        with self._lock:
            run = self._runs.pop(key, None)
        if run is not None:
            self.logger.info("%s after %d failures in %.0fs", message, run.failures, self.clock() - run.began)
