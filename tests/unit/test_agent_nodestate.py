"""The MultusNodeState status the agent writes: transition times, boots, the stop marker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webhook.agent.nodestate import status_body, stopped
from webhook.agent.probe import DAEMON, READY, Condition, Report

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
T1 = T0 + timedelta(seconds=10)


def report(boot: str | None = "b1", daemon: bool = True) -> Report:
    return Report(boot, ("bridge", "multus-shim"), (
        Condition(DAEMON, daemon, "Connected" if daemon else "NotAnswering", "m"),
        Condition(READY, daemon, "AllChecksPassed" if daemon else "NotAnswering", "m"),
    ))


def by_type(status: dict[str, object]) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in status["conditions"]}  # type: ignore[attr-defined]


def test_fields() -> None:
    status = status_body("node-a", report(), None, T0)
    assert status == {
        "nodeName": "node-a", "bootID": "b1", "cniBinaries": ["bridge", "multus-shim"], "binaryCount": 2,
        "multusReady": True, "heartbeatTime": "2026-01-02T03:04:05.123456Z",
        "conditions": [
            {"type": DAEMON, "status": "True", "reason": "Connected", "message": "m",
             "lastTransitionTime": "2026-01-02T03:04:05.123456Z"},
            {"type": READY, "status": "True", "reason": "AllChecksPassed", "message": "m",
             "lastTransitionTime": "2026-01-02T03:04:05.123456Z"},
        ],
    }


def test_a_condition_keeps_its_transition_time_while_it_holds() -> None:
    first = status_body("n", report(), None, T0)
    second = status_body("n", report(), first, T1)
    assert by_type(second)[READY]["lastTransitionTime"] == first["heartbeatTime"]
    assert second["heartbeatTime"] == "2026-01-02T03:04:15.123456Z"


def test_a_flip_gets_a_new_transition_time() -> None:
    first = status_body("n", report(), None, T0)
    second = status_body("n", report(daemon=False), first, T1)
    assert by_type(second)[READY] == {"type": READY, "status": "False", "reason": "NotAnswering", "message": "m",
                                      "lastTransitionTime": "2026-01-02T03:04:15.123456Z"}
    assert second["multusReady"] is False


def test_a_new_boot_starts_every_condition_afresh() -> None:
    # Ready on the old boot and ready again at once on the new one (the agent was never told to stop):
    # the transition time must still be on the new boot, because the repair compares pods with it.
    first = status_body("n", report("b1"), None, T0)
    second = status_body("n", report("b2"), first, T1)
    assert {c["lastTransitionTime"] for c in by_type(second).values()} == {"2026-01-02T03:04:15.123456Z"}


def test_an_unreadable_boot_id_is_written_as_null() -> None:
    status = status_body("n", report(None), status_body("n", report("b1"), None, T0), T1)
    assert status["bootID"] is None


def test_stopped_is_not_ready_whatever_was_seen() -> None:
    r = stopped(report())
    assert not r.ready
    assert [c.type for c in r.conditions] == [DAEMON, READY]
    ready = r.conditions[-1]
    assert (ready.status, ready.reason) == (False, "AgentStopped")
    assert status_body("n", r, None, T0)["multusReady"] is False
