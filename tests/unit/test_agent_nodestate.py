"""The MultusNodeState status the agent writes: transition times, boots, the first readiness on a boot,
the stop marker."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from webhook.agent.nodestate import status_body, stopped
from webhook.agent.probe import DAEMON, READY, Condition, Report

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
T1 = T0 + timedelta(seconds=10)
T2 = T0 + timedelta(seconds=20)
T3 = T0 + timedelta(seconds=30)
#: When the host booted, as /proc/stat has it.
BOOTED = datetime(2026, 1, 2, 2, 58, 41, tzinfo=UTC)


def report(boot: str | None = "b1", daemon: bool = True, since: datetime | None = None,
           booted: datetime | None = BOOTED, run: datetime | None = None, stepped: bool = False) -> Report:
    return Report(boot, ("bridge", "multus-shim"), (
        Condition(DAEMON, daemon, "Connected" if daemon else "NotAnswering", "m"),
        Condition(READY, daemon, "AllChecksPassed" if daemon else "NotAnswering", "m"),
    ), boot_time=booted, ready_since=since, run_since=run, clock_stepped=stepped)


def by_type(status: dict[str, object]) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in status["conditions"]}  # type: ignore[attr-defined]


def test_fields() -> None:
    status = status_body("node-a", report(), None, T0)
    assert status == {
        "nodeName": "node-a", "bootID": "b1", "bootTime": "2026-01-02T02:58:41.000000Z",
        "cniBinaries": ["bridge", "multus-shim"], "binaryCount": 2, "unverifiedBinaries": [],
        "dhcpDaemon": False, "multusReady": True, "heartbeatTime": "2026-01-02T03:04:05.123456Z",
        "firstReadyBootID": None, "firstReadyTime": None, "readyTime": None,
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


def test_an_unreadable_boot_time_is_written_as_null() -> None:
    """As a merge patch: the boot time read on an earlier boot must not stay (the repair would take the
    pods' statuses written since that boot for ones from before this one, or the reverse)."""
    status = status_body("n", report("b2", booted=None), status_body("n", report("b1"), None, T0), T1)
    assert "bootTime" in status
    assert status["bootTime"] is None


def test_stopped_is_not_ready_whatever_was_seen() -> None:
    r = stopped(report())
    assert not r.ready
    assert [c.type for c in r.conditions] == [DAEMON, READY]
    ready = r.conditions[-1]
    assert (ready.status, ready.reason) == (False, "AgentStopped")
    status = status_body("n", r, None, T0)
    assert status["multusReady"] is False
    assert status["bootTime"] == "2026-01-02T02:58:41.000000Z"  # still what the host said


def test_links_the_agent_cannot_follow_are_written_apart_and_kept_when_it_stops() -> None:
    """Kept apart from cniBinaries (no label for them); kept when the agent stops, or the NAD checks,
    which count them as present, would start refusing what the node runs."""
    r = dataclasses.replace(report(), unverified_binaries=("macvlan",))
    for written in (status_body("n", r, None, T0), status_body("n", stopped(r), None, T0)):
        assert (written["cniBinaries"], written["unverifiedBinaries"]) == (["bridge", "multus-shim"], ["macvlan"])


def first(status: dict[str, object]) -> tuple[object, object]:
    return status["firstReadyBootID"], status["firstReadyTime"]


def test_the_first_readiness_on_a_boot_survives_agent_and_daemon_restarts() -> None:
    """What the repair compares sandboxes with must not move on the same boot: an agent rollout leaves
    Ready=False behind (AgentStopped) and the next agent starts from the status it reads."""
    old_boot = status_body("n", report("b0"), None, T0)
    waiting = status_body("n", report("b1", daemon=False), old_boot, T0)
    assert first(waiting) == ("b1", None)  # this boot is watched from its start, Multus not ready yet
    ready = status_body("n", report("b1"), waiting, T1)
    assert first(ready) == ("b1", "2026-01-02T03:04:15.000000Z")  # whole seconds, as the kubelet's times
    left = status_body("n", stopped(report("b1")), ready, T2)  # the agent stops
    again = status_body("n", report("b1"), left, T3)  # the next agent, from the status it read
    assert first(again) == first(ready)
    assert by_type(again)[READY]["lastTransitionTime"] == "2026-01-02T03:04:35.123456Z"
    daemon_restart = status_body("n", report("b1"), status_body("n", report("b1", daemon=False), again, T3), T3)
    assert first(daemon_restart) == first(ready)
    # A new boot starts it afresh.
    assert first(status_body("n", report("b2"), daemon_restart, T3)) == ("b2", "2026-01-02T03:04:35.000000Z")


def test_without_a_previous_boot_seen_the_first_readiness_is_unknown() -> None:
    """No status (a new node, a fresh install), or one of this boot written by an agent that did not
    record the first readiness: Multus may have been ready long before, so nothing is recorded (the
    repair then does not judge sandboxes by their age) until the next boot."""
    assert first(status_body("n", report("b1"), None, T0)) == (None, None)
    older_agent = {"bootID": "b1", "multusReady": False,
                   "conditions": [{"type": READY, "status": "False", "reason": "AgentStopped"}]}
    unknown = status_body("n", report("b1"), older_agent, T1)
    assert first(unknown) == (None, None)
    assert first(status_body("n", report("b1"), unknown, T2)) == (None, None)
    assert first(status_body("n", report("b2"), unknown, T2)) == ("b2", "2026-01-02T03:04:25.000000Z")


def test_an_unreadable_boot_id_keeps_the_first_readiness() -> None:
    ready = status_body("n", report("b1"), status_body("n", report("b0"), None, T0), T1)
    blind = status_body("n", stopped(report(None)), ready, T2)
    assert first(blind) == first(ready)
    assert first(status_body("n", report("b1"), blind, T3)) == first(ready)
    # Whether the boot changed while its id could not be read is unknown: nothing is recorded.
    assert first(status_body("n", report("b2"), blind, T3)) == (None, None)


def test_the_first_readiness_is_when_the_host_says_multus_became_ready() -> None:
    """The agent that watched the boot begin was restarted (the Multus daemon re-created the socket
    directory it had mounted) and first sees Multus ready after a restart back-off: the sandboxes the
    kubelet made meanwhile went through Multus, so the readiness dates from the host's evidence."""
    watched = status_body("n", report("b1", daemon=False), status_body("n", report("b0"), None, T0), T0)
    assert first(watched) == ("b1", None)
    became_ready = T1 + timedelta(seconds=0.9)  # 03:04:16.023456
    late = status_body("n", report("b1", since=became_ready), watched, T3)
    assert first(late) == ("b1", "2026-01-02T03:04:16.000000Z")
    # Evidence later than the write is not believed: the write's time is the latest.
    assert first(status_body("n", report("b1", since=T3 + timedelta(hours=1)), watched, T2)) == (
        "b1", "2026-01-02T03:04:25.000000Z")
    # Once recorded, later evidence (a daemon restart) does not move it.
    assert first(status_body("n", report("b1", since=T3), late, T3)) == first(late)


def test_each_run_of_readiness_on_a_boot_has_its_own_ready_time() -> None:
    """A Multus daemon restart on the same boot begins another run: its readyTime is later, the first
    readiness stays; while Multus is not ready (the agent stopping included) there is no run."""
    watched = status_body("n", report("b1", run=T1), status_body("n", report("b0"), None, T0), T1)
    assert (watched["readyTime"], first(watched)) == ("2026-01-02T03:04:15.000000Z",
                                                      ("b1", "2026-01-02T03:04:15.000000Z"))
    gap = status_body("n", report("b1", daemon=False, run=T1), watched, T2)
    assert gap["readyTime"] is None
    assert status_body("n", stopped(report("b1", run=T1)), watched, T2)["readyTime"] is None
    back = status_body("n", report("b1", run=T2 + timedelta(seconds=0.5)), gap, T3)
    assert back["readyTime"] == "2026-01-02T03:04:25.000000Z"  # whole seconds, never later than the write
    assert first(back) == first(watched)


def test_a_clock_step_ends_the_watch_of_the_boot() -> None:
    """Back, sandboxes made after the step carry times earlier than a readiness recorded before it;
    forward, the boot time kept from before the step makes statuses of the previous boot look as if
    they were of this one, judged by their age: either way healthy pods would be evicted. The step
    shows as a boot time other than the one written (by more than the leap second btime may move by),
    or as the agent's flag (host evidence ahead of its clock). Once ended, the watch stays ended on
    that boot; the next boot is watched again."""
    ready = status_body("n", report("b1"), status_body("n", report("b0"), None, T0), T1)
    assert first(ready) == ("b1", "2026-01-02T03:04:15.000000Z")
    leap = status_body("n", report("b1", booted=BOOTED - timedelta(seconds=1)), ready, T2)
    assert first(leap) == first(ready)
    ahead = status_body("n", report("b1", booted=BOOTED + timedelta(minutes=5)), ready, T2)  # stepped forward
    assert first(ahead) == (None, None)
    back = status_body("n", report("b1", booted=BOOTED - timedelta(seconds=30)), ready, T2)
    assert first(back) == (None, None)
    assert first(status_body("n", report("b1", booted=BOOTED - timedelta(seconds=30)), back, T3)) == (None, None)
    assert first(status_body("n", report("b1", stepped=True), ready, T2)) == (None, None)
    assert first(status_body("n", report("b2"), back, T3)) == ("b2", "2026-01-02T03:04:35.000000Z")
    # A boot time of another boot says nothing about this one's clock.
    other = status_body("n", report("b0", booted=BOOTED + timedelta(hours=1)), None, T0)
    assert first(status_body("n", report("b1"), other, T1)) == ("b1", "2026-01-02T03:04:15.000000Z")


def test_the_boot_time_is_kept_as_first_read_while_the_boot_lasts() -> None:
    """A clock stepped forward moves btime later: written as read, pod statuses of this boot from
    before the step would look older than the boot, and the repair would give them up."""
    read = status_body("n", report("b1"), None, T0)
    ahead = status_body("n", report("b1", booted=BOOTED + timedelta(hours=1)), read, T1)
    assert ahead["bootTime"] == read["bootTime"] == "2026-01-02T02:58:41.000000Z"
    assert status_body("n", report("b2", booted=BOOTED + timedelta(hours=1)), ahead, T2)["bootTime"] == (
        "2026-01-02T03:58:41.000000Z")
    unread = status_body("n", report("b1", booted=None), None, T0)
    assert status_body("n", report("b1"), unread, T1)["bootTime"] == "2026-01-02T02:58:41.000000Z"


def test_an_unreadable_bin_dir_publishes_no_inventory() -> None:
    """Not an empty one: the NAD rules read [] as a node without a single plugin (on one node, every NAD
    was refused, saying to install the plugin). null removes the fields in the merge patch."""
    from webhook.agent.probe import HostLayout, evaluate, read_host
    from webhook.cluster.nodes import slim_state

    layout = HostLayout(root=HostLayout().root / "does-not-exist-anywhere")
    status = status_body("n", evaluate(read_host(layout), layout), None, T0)
    assert (status["cniBinaries"], status["unverifiedBinaries"], status["binaryCount"]) == (None, None, None)
    patched = {k: v for k, v in status.items() if v is not None}
    assert "cniBinaries" not in slim_state({"metadata": {"name": "n"}, "status": patched})["status"]
    readable = status_body("n", report(), None, T0)
    assert readable["cniBinaries"] == ["bridge", "multus-shim"]
