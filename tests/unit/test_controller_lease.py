"""Leader election decisions on a Lease record."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from webhook.controller.lease import (
    LeaseRecord,
    check_timings,
    claimed_spec,
    lease_seconds,
    may_take,
    released_spec,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HELD = LeaseRecord("a", 15, "2026-03-01T11:00:00.000000Z", "2026-03-01T11:59:59.000000Z", 3)


def test_record_of_a_lease() -> None:
    assert LeaseRecord.of({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 2}}) == \
        LeaseRecord("a", 15, None, None, 2)
    assert LeaseRecord.of({"spec": {"holderIdentity": ""}}) == LeaseRecord(None, None, None, None, 0)
    assert LeaseRecord.of(None) == LeaseRecord(None, None, None, None, 0)


def test_who_may_take_the_lease() -> None:
    assert may_take(HELD, "a", 0, 15)
    assert not may_take(HELD, "b", 14.9, 15)
    assert may_take(HELD, "b", 15, 15)
    assert may_take(LeaseRecord(None, 15, None, None, 3), "b", 0, 15)
    # The record's own duration rules, not the candidate's default.
    assert may_take(LeaseRecord("a", 1, None, None, 0), "b", 1, 15)


def test_renewing_keeps_the_acquire_time_and_the_count() -> None:
    assert claimed_spec(HELD, "a", NOW, 15) == {
        "holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": "2026-03-01T11:00:00.000000Z",
        "renewTime": "2026-03-01T12:00:00.000000Z", "leaseTransitions": 3}


def test_taking_over_counts_a_transition() -> None:
    spec = claimed_spec(HELD, "b", NOW, 15)
    assert (spec["holderIdentity"], spec["acquireTime"], spec["leaseTransitions"]) == \
        ("b", "2026-03-01T12:00:00.000000Z", 4)
    assert claimed_spec(LeaseRecord(None, None, None, None, 4), "b", NOW, 15)["leaseTransitions"] == 4


def test_releasing_leaves_no_holder() -> None:
    spec = released_spec(HELD, NOW)
    assert "holderIdentity" not in spec
    assert spec["leaseDurationSeconds"] == 1
    assert may_take(LeaseRecord.of({"spec": spec}), "b", 0, 15)


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(10, 10, 2), (15, 10, 10), (15, 10, 0), (5, 10, 2)])
def test_timings_that_cannot_work(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        check_timings(duration, deadline, retry)


def test_the_lease_duration_is_whole_seconds_as_the_lease_holds_it() -> None:
    """Written rounded, 2.5 became 2: a candidate took over at 2.0s while the holder acted until 2.4s."""
    with pytest.raises(ValueError, match=r"the lease duration must be a whole number of seconds .* not 2.5"):
        check_timings(2.5, 2.4, 1)
    check_timings(3.0, 2.5, 1)
    assert lease_seconds(3.0) == 3


def test_the_command_line_names_the_option() -> None:
    done = subprocess.run([sys.executable, "-m", "webhook.cli", "controller", "--lease-duration", "2.5",
                           "--renew-deadline", "2.4"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert ("error: argument --lease-duration: a whole number of seconds (a Lease holds whole seconds), not 2.5"
            in done.stderr)
