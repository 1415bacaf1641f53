"""Leader election on a coordination.k8s.io Lease, so that several controller replicas can run and
only one acts.

As in client-go, a candidate never compares the holder's renewTime with its own clock: it notes when
it last saw the lease record change and takes over only after the record stayed unchanged for a
whole lease duration by its own monotonic clock. The holder stops acting when it could not renew for
``renew_deadline`` (shorter than the duration), so the two never overlap."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client

from webhook.kube import SHORT_TIMEOUT, describe, format_time, is_status, request, utcnow
from webhook.ratelog import FailureLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    holder: str | None
    duration: int | None
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: Mapping[str, Any] | None) -> LeaseRecord:
        spec = (lease or {}).get("spec") or {}
        return cls(spec.get("holderIdentity") or None, spec.get("leaseDurationSeconds"), spec.get("acquireTime"),
                   spec.get("renewTime"), int(spec.get("leaseTransitions") or 0))


def may_take(record: LeaseRecord, identity: str, unchanged_for: float, default_duration: float) -> bool:
    """Whether ``identity`` may write itself into the lease: it holds it, nobody does, or the holder
    has not renewed for a full lease duration as this candidate observed it."""
    if record.holder in (None, identity):
        return True
    return unchanged_for >= (record.duration or default_duration)


def claimed_spec(record: LeaseRecord, identity: str, now: datetime, duration: int) -> dict[str, Any]:
    """The spec that acquires or renews the lease for ``identity``."""
    renewing = record.holder == identity
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration,
        "acquireTime": record.acquire_time if renewing and record.acquire_time else format_time(now),
        "renewTime": format_time(now),
        "leaseTransitions": record.transitions + (0 if renewing or record.holder is None else 1),
    }


def released_spec(record: LeaseRecord, now: datetime) -> dict[str, Any]:
    """Handing over on a clean stop, so that a standby takes over at once instead of after a duration."""
    return {"leaseDurationSeconds": 1, "renewTime": format_time(now), "acquireTime": record.acquire_time,
            "leaseTransitions": record.transitions}


def lease_seconds(duration: float) -> int:
    """``duration`` as the Lease holds it (whole seconds); ValueError when it is not whole. Written rounded
    (2.5 as 2), it let a candidate take over while the holder still acted (until its renew deadline, 2.4)."""
    if not float(duration).is_integer():
        raise ValueError(f"a whole number of seconds (a Lease holds whole seconds), not {duration:g}")
    return int(duration)


def check_timings(duration: float, renew_deadline: float, retry_period: float) -> None:
    if not 0 < retry_period < renew_deadline < duration:
        raise ValueError("lease timings need 0 < retry period < renew deadline < lease duration")
    try:
        lease_seconds(duration)
    except ValueError as exc:
        raise ValueError(f"the lease duration must be {exc}") from None


class LeaderElector:
    def __init__(self, api: client.ApiClient, *, name: str, namespace: str, identity: str, duration: float = 15,
                 renew_deadline: float = 10, retry_period: float = 2,
                 on_change: Callable[[bool], None] | None = None) -> None:
        check_timings(duration, renew_deadline, retry_period)
        self.api = api
        self.name, self.namespace, self.identity = name, namespace, identity
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.duration, self.renew_deadline, self.retry_period = duration, renew_deadline, retry_period
        self.on_change = on_change
        self._renewed_at = float("-inf")
        #: The term of this replica's leadership: the acquireTime and leaseTransitions it last wrote (None
        #: before it first held the lease). Renewing keeps both, also after a lapse in which the record
        #: stayed ours; any other holder in between means a new acquisition by us, with a new acquireTime
        #: (and a transition unless that holder released the lease). So an unchanged term proves that no
        #: other replica held the lease, and acted, since this one last did.
        self.term: tuple[str, int] | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._leading = False
        self._failures = FailureLog(log)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        """One call on the lease, given up after ``renew_deadline`` without an answer, as client-go bounds
        a renewal: leadership ends at that deadline anyway, and a connection that went silent would
        otherwise hold this loop (and the next attempt to take the lease back) for the 60s of a read."""
        return request(self.api, method, path, body=body, timeout=(SHORT_TIMEOUT[0], self.renew_deadline))

    def is_leader(self) -> bool:
        return time.monotonic() < self.leads_until()

    def leads_until(self) -> float:
        """When (time.monotonic()) this replica stops leading unless it renews first; in the past when it
        does not lead."""
        return self._renewed_at + self.renew_deadline

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception as exc:  # the apiserver may be away; leadership lapses by the deadline
                self._failures.failed("lease", f"lease {self.namespace}/{self.name}: {describe(exc)}")
            else:
                self._failures.recovered("lease", f"lease {self.namespace}/{self.name} can be read and written again")
            self._note()
            stop.wait(self.retry_period)
        self.release()

    def try_acquire_or_renew(self) -> bool:
        try:
            lease = self._call("GET", f"{self.path}/{self.name}")
        except Exception as exc:
            if not is_status(exc, 404):
                raise
            return self._write(None, LeaseRecord(None, None, None, None, 0))
        record = LeaseRecord.of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        if not may_take(record, self.identity, time.monotonic() - self._observed_at, self.duration):
            return False
        return self._write(lease, record)

    def _write(self, lease: dict[str, Any] | None, record: LeaseRecord) -> bool:
        spec = claimed_spec(record, self.identity, utcnow(), lease_seconds(self.duration))
        started = time.monotonic()
        try:
            if lease is None:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
                self._call("POST", self.path, body)
            else:
                self._call("PUT", f"{self.path}/{self.name}", {**lease, "spec": spec})
        except Exception as exc:
            if is_status(exc, 409):  # someone else wrote first (resourceVersion or create race)
                return False
            raise
        # Before the renewal time: whoever sees this replica lead sees the term it leads in.
        self.term = (spec["acquireTime"], spec["leaseTransitions"])
        # From when the request left, not when the answer came: the lease started no later than that.
        self._renewed_at = started
        return True

    def release(self) -> None:
        if not self.is_leader():
            return
        self._renewed_at = float("-inf")
        try:
            lease = self._call("GET", f"{self.path}/{self.name}")
            record = LeaseRecord.of(lease)
            if record.holder == self.identity:
                self._call("PUT", f"{self.path}/{self.name}", {**lease, "spec": released_spec(record, utcnow())})
        except Exception as exc:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
        self._note()

    def _note(self) -> None:
        leading = self.is_leader()
        if leading != self._leading:
            self._leading = leading
            log.info("%s %s lease %s/%s", self.identity, "holds" if leading else "lost", self.namespace, self.name)
            if self.on_change:
                self.on_change(leading)
