"""Node readiness, our labels and the Events they stand for, decided from plain objects."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from webhook.agent.nodestate import status_body
from webhook.agent.probe import HostLayout, evaluate, read_host
from webhook.agent.standin import StandInHost
from webhook.cluster.nodes import slim_node, slim_state
from webhook.controller.decide import (
    NODE_STATES_NOT_FED,
    Heartbeat,
    Verdict,
    boot_time,
    desired_labels,
    first_ready_time,
    label_patch,
    needs_look,
    observe,
    readiness,
    ready_time,
    reboot_race_warning,
    stale_at,
    transitions,
)
from webhook.kube import format_time
from webhook.names import READY_LABEL, binary_label

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
#: The controller's monotonic clock.
MONO = 5000.0


def node(boot: str | None = "b2", ready: str | None = "True", labels: dict[str, str] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"nodeInfo": {"bootID": boot} if boot else {}}
    if ready is not None:
        status["conditions"] = [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}]
    return {"metadata": {"name": "n", "labels": labels or {}}, "status": status}


def state(boot: str | None = "b2", ready: bool = True, written: datetime = NOW,
          binaries: tuple[str, ...] = ("bridge", "multus-shim")) -> dict[str, Any]:
    return {"status": {
        "bootID": boot, "multusReady": ready, "cniBinaries": list(binaries), "dhcpDaemon": False,
        "heartbeatTime": format_time(written),
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "reason": "AllChecksPassed" if ready else "NotAnswering",
                        "message": "ok" if ready else "the Multus daemon does not answer"}],
    }}


def beat(s: dict[str, Any] | None, silent: float = 1.0, fresh: bool = True) -> Heartbeat:
    """The heartbeat of ``s`` as a controller saw it: unchanged for ``silent`` seconds at MONO."""
    return Heartbeat((s or {}).get("status", {}).get("heartbeatTime"), MONO - silent, fresh)


def decided(n: dict[str, Any], s: dict[str, Any] | None, silent: float = 1.0, fresh: bool = True,
            interval: float = 10) -> Verdict:
    return readiness(n, s, beat(s, silent, fresh), MONO, interval)


def test_ready_when_everything_agrees() -> None:
    assert decided(node(), state()) == Verdict(True, "MultusReady", "Multus is ready on boot b2")


@pytest.mark.parametrize(
    ("n", "s", "reason"),
    [
        (node(ready="False"), state(), "NodeNotReady"),
        (node(ready="Unknown"), state(), "NodeNotReady"),
        (node(ready=None), state(), "NodeNotReady"),
        (node(), None, "NoNodeState"),
        (node(boot=None), state(), "NodeBootIDUnknown"),
        (node(boot="b3"), state(), "BootIDChanged"),
        (node(), state(boot=None), "BootIDChanged"),
        (node(), state(ready=False), "NotAnswering"),
    ],
)
def test_not_ready(n: dict[str, Any], s: dict[str, Any] | None, reason: str) -> None:
    verdict = decided(n, s)
    assert (verdict.ready, verdict.reason) == (False, reason)


def test_messages_say_what_to_look_at() -> None:
    assert decided(node(boot="b3"), state()).message == (
        "the node runs boot b3 but its MultusNodeState is about boot b2: the agent has not reported since the reboot")
    assert decided(node(), state(), silent=31).message == "the agent's heartbeat has not changed for 31s (limit 30s)"
    assert decided(node(), state(ready=False)).message == "the Multus daemon does not answer"


def test_the_heartbeat_limit_is_three_intervals_without_a_change() -> None:
    assert decided(node(), state(), silent=2.9, interval=1).ready
    verdict = decided(node(), state(), silent=3.0, interval=1)
    assert (verdict.ready, verdict.reason) == (False, "HeartbeatStale")
    s = state()
    del s["status"]["heartbeatTime"]
    assert decided(node(), s).message == "the agent has written no heartbeat"


@pytest.mark.parametrize("skew", [-45.0, 0.0, 600.0])
def test_the_nodes_clock_does_not_enter(skew: float) -> None:
    """Only when this controller saw the heartbeat change counts: a node clock 45s behind is not stale
    forever, one 10 minutes ahead does not hide a dead agent."""
    n = node()
    first = state(written=NOW + timedelta(seconds=skew))
    last = observe(observe(None, first, MONO), state(written=NOW + timedelta(seconds=skew + 10)), MONO + 10)
    assert readiness(n, first, last, MONO + 10, 10).ready
    assert readiness(n, first, last, MONO + 39.9, 10).ready
    assert readiness(n, first, last, MONO + 40, 10).reason == "HeartbeatStale"  # the agent died at MONO + 10


def test_observe_notes_when_the_value_changed() -> None:
    a, b = state(written=NOW), state(written=NOW + timedelta(seconds=10))
    found = observe(None, a, MONO)
    assert found == Heartbeat(a["status"]["heartbeatTime"], MONO, False)
    assert observe(found, a, MONO + 5) is found
    assert observe(found, state(written=NOW), MONO + 5) is found  # an equal copy is no change
    assert observe(found, b, MONO + 7) == Heartbeat(b["status"]["heartbeatTime"], MONO + 7, True)
    # A state that shows up after the controller started looking was written since.
    assert observe(observe(None, None, MONO), a, MONO + 1) == Heartbeat(a["status"]["heartbeatTime"], MONO + 1, True)
    assert observe(found, None, MONO + 2) == Heartbeat(None, MONO + 2, True)


def test_until_the_heartbeat_is_seen_to_change_the_ready_label_stays_as_it_is() -> None:
    """A new leader: the state says ready, but a dead agent's last word says so too."""
    verdict = decided(node(), state(), silent=0, fresh=False)
    assert (verdict.ready, verdict.reason) == (None, "HeartbeatUnconfirmed")
    binaries = {"cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/multus-shim": "true"}
    assert desired_labels(node(labels={READY_LABEL: "true"}), state(), verdict) == {READY_LABEL: "true", **binaries}
    assert desired_labels(node(), state(), verdict) == binaries
    assert decided(node(), state(), silent=30, fresh=False).reason == "HeartbeatStale"
    assert decided(node(), state(ready=False), silent=0, fresh=False).ready is False


def test_a_missing_state_is_not_judged_in_a_new_leaders_grace_period() -> None:
    """Its cache may not hold the states yet (an apiserver registering its CRDs answered 404): every node
    would lose its ready label."""
    labelled = node(labels={READY_LABEL: "true"})
    verdict = readiness(labelled, None, observe(None, None, MONO), MONO + 29, 10)
    assert (verdict.ready, verdict.reason) == (None, "NoNodeState")
    assert desired_labels(labelled, None, verdict) == {READY_LABEL: "true"}
    assert readiness(labelled, None, observe(None, None, MONO), MONO + 30, 10).ready is False
    assert stale_at(observe(None, None, MONO), 10, MONO) == MONO + 30  # looked at again when it ends
    # A state seen to go is a state gone.
    gone = observe(observe(None, state(), MONO), None, MONO + 1)
    assert readiness(labelled, None, gone, MONO + 1, 10).ready is False


def test_nothing_rests_on_node_states_the_cache_is_not_fed() -> None:
    """One watch brings every MultusNodeState: when it fails, every heartbeat stays the same."""
    verdict = readiness(node(), state(), beat(state(), silent=100), MONO, 10, states_unfed=42)
    assert verdict == Verdict(None, NODE_STATES_NOT_FED, "the apiserver has not fed the cache's MultusNodeStates "
                                                         "for 42s: whether the agent still reports is not known")
    assert readiness(node(), None, beat(None), MONO, 10, states_unfed=42).reason == NODE_STATES_NOT_FED
    # What the states that are there say, and what the Node says, still counts.
    assert decided(node(), state(), silent=1) == readiness(node(), state(), beat(state()), MONO, 10, states_unfed=42)
    assert readiness(node(boot="b3"), state(), beat(state(), silent=100), MONO, 10, states_unfed=42).reason == (
        "BootIDChanged")
    assert readiness(node(ready="False"), state(), beat(state(), silent=100), MONO, 10, states_unfed=42).reason == (
        "NodeNotReady")


def test_desired_labels() -> None:
    assert desired_labels(node(), state(), decided(node(), state())) == {
        READY_LABEL: "true", "cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/multus-shim": "true"}


def test_a_dhcp_daemon_answering_on_this_boot_is_labelled_and_its_silence_unlabelled() -> None:
    running = state()
    running["status"]["dhcpDaemon"] = True
    labels = desired_labels(node(), running, decided(node(), running))
    assert labels["cni.multus-webhook.io/dhcp-daemon"] == "true"
    assert label_patch(labels, desired_labels(node(labels=labels), state(), decided(node(), state()))) == {
        "cni.multus-webhook.io/dhcp-daemon": None}


def test_an_agent_that_does_not_report_the_dhcp_daemon_leaves_dhcp_pods_free_to_land() -> None:
    """An agent older than the daemon probe (a rolling upgrade), or a CRD not re-applied that prunes
    status.dhcpDaemon: not knowing is not a daemon that is down, so the node is labelled as before the gate
    required the daemon; only an agent that says False withholds the label."""
    silent = state()
    del silent["status"]["dhcpDaemon"]
    labels = desired_labels(node(), silent, decided(node(), silent))
    assert labels["cni.multus-webhook.io/dhcp-daemon"] == "true"
    assert "cni.multus-webhook.io/dhcp-daemon" not in desired_labels(node(), state(), decided(node(), state()))


def test_a_stale_heartbeat_keeps_the_inventory_of_this_boot() -> None:
    labelled = node(labels={READY_LABEL: "true"})
    assert desired_labels(labelled, state(), decided(labelled, state(), silent=100)) == {
        "cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/multus-shim": "true"}


#: A node labelled from its last inventory (boot b2): ready, and two binaries.
LAST_INVENTORY = {"cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/macvlan": "true"}


@pytest.mark.parametrize(("n", "s", "silent", "reason"), [
    (node(boot="b3"), state(boot="b2"), 1.0, "BootIDChanged"),
    (node(boot="b3", ready="False"), state(boot="b2"), 1.0, "NodeNotReady"),
    (node(boot="b3", ready="Unknown"), state(boot="b2"), 100.0, "NodeNotReady"),
    (node(boot="b2", ready="False"), state(boot="b2", binaries=("bridge", "macvlan")), 100.0, "NodeNotReady"),
    (node(boot="b2"), state(boot="b2", binaries=("bridge", "macvlan")), 100.0, "HeartbeatStale"),
    (node(boot="b3"), None, 1.0, "NoNodeState"),
    (node(boot=None), state(boot="b2"), 1.0, "NodeBootIDUnknown"),
])
def test_binary_labels_stay_until_the_agent_reports_on_the_current_boot(
        n: dict[str, Any], s: dict[str, Any] | None, silent: float, reason: str) -> None:
    """A kubelet restarting after a reboot re-admits its pods against their required node affinity:
    a binary label taken off before the agent reports on the new boot fails every pod tied to it
    (phase Failed, reason NodeAffinity). Only the ready label comes off."""
    n["metadata"]["labels"] = {READY_LABEL: "true", **LAST_INVENTORY, "team": "a"}
    verdict = decided(n, s, silent=silent)
    assert (verdict.ready, verdict.reason) == (False, reason)
    assert desired_labels(n, s, verdict) == LAST_INVENTORY
    assert label_patch(n["metadata"]["labels"], desired_labels(n, s, verdict)) == {READY_LABEL: None}


def test_the_agents_report_on_the_new_boot_replaces_the_last_inventory() -> None:
    rebooted = node(boot="b3", labels={**LAST_INVENTORY, "team": "a"})
    now = state(boot="b3", binaries=("bridge", "ipvlan"))
    verdict = decided(rebooted, now)
    assert verdict.ready is True
    assert label_patch(rebooted["metadata"]["labels"], desired_labels(rebooted, now, verdict)) == {
        READY_LABEL: "true", "cni.multus-webhook.io/ipvlan": "true", "cni.multus-webhook.io/macvlan": None}
    # Not ready yet on the new boot: its inventory counts all the same.
    waiting = state(boot="b3", ready=False, binaries=("bridge",))
    assert desired_labels(rebooted, waiting, decided(rebooted, waiting)) == {"cni.multus-webhook.io/bridge": "true"}


def test_an_inventory_the_agent_could_not_read_leaves_the_binary_labels_as_they_are() -> None:
    """An agent that cannot read the bin directory publishes no inventory (and an older one's empty
    inventory with its BinDirUnreadable condition is kept as none): the binaries on the disk are not known
    to be gone."""
    host = StandInHost()
    try:
        host.make_ready("b2", binaries=("multus-shim", "bridge"))
        layout = dataclasses.replace(host.layout, cni_bin_dir="/does/not/exist")
        report = evaluate(read_host(layout), layout)
    finally:
        host.cleanup()
    labelled = node(labels={**LAST_INVENTORY, "team": "a"})
    for status in (status_body("n", report, None, NOW),  # this agent: no cniBinaries
                   {**status_body("n", report, None, NOW), "cniBinaries": [], "unverifiedBinaries": []}):  # older
        kept = slim_state({"metadata": {"name": "n"}, "status": {k: v for k, v in status.items() if v is not None}})
        assert "cniBinaries" not in kept["status"]
        assert desired_labels(labelled, kept, decided(labelled, kept)) == LAST_INVENTORY


def test_a_link_the_agent_cannot_follow_is_labelled_as_the_rules_count_it() -> None:
    """The agent's report of a link to where it sees nothing, as the controller keeps it: the rules
    count it as there, so the mutation's gate requires its label; without the label every pod needing
    it would stay Pending (a distribution's plugins are such links)."""
    host = StandInHost()
    try:
        host.make_ready("b2", binaries=("multus-shim", "bridge"))
        (host.path(host.layout.cni_bin_dir) / "macvlan").symlink_to("/host/opt/cni/bin/macvlan.real")
        report = evaluate(read_host(host.layout), host.layout)
    finally:
        host.cleanup()
    kept = slim_state({"metadata": {"name": "n"}, "status": status_body("n", report, None, NOW)})
    assert kept["status"]["unverifiedBinaries"] == frozenset({"macvlan"})
    assert desired_labels(node(), kept, decided(node(), kept)) == {
        READY_LABEL: "true", "cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/multus-shim": "true",
        "cni.multus-webhook.io/macvlan": "true"}


def test_binaries_that_cannot_be_label_names_are_skipped() -> None:
    s = state(binaries=("ok_1.2", "-bad", "a" * 64, "with space", "x", "bridge2\n"))
    assert set(desired_labels(node(), s, Verdict(False, "", ""))) == {
        "cni.multus-webhook.io/ok_1.2", "cni.multus-webhook.io/x"}
    assert binary_label("a" * 63) == "cni.multus-webhook.io/" + "a" * 63


def test_the_patch_touches_only_our_labels() -> None:
    current = {"kubernetes.io/hostname": "n", "team": "a", READY_LABEL: "true",
               "cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/gone": "true",
               "cni.example.com/bridge": "true"}
    desired = {"cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/macvlan": "true", "team": "b"}
    assert label_patch(current, desired) == {
        READY_LABEL: None, "cni.multus-webhook.io/gone": None, "cni.multus-webhook.io/macvlan": "true"}


def test_nothing_to_patch_when_labels_are_right() -> None:
    labels = {READY_LABEL: "true", "cni.multus-webhook.io/bridge": "true", "other": "x"}
    assert label_patch(labels, {READY_LABEL: "true", "cni.multus-webhook.io/bridge": "true"}) == {}


def test_a_wrong_value_of_our_label_is_corrected() -> None:
    assert label_patch({READY_LABEL: "false"}, {READY_LABEL: "true"}) == {READY_LABEL: "true"}


def test_transitions() -> None:
    down = Verdict(False, "BootIDChanged", "the node rebooted")
    events = transitions({READY_LABEL: None, "cni.multus-webhook.io/b": None, "cni.multus-webhook.io/a": None}, down)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "MultusNotReady", f"the node rebooted; removed label {READY_LABEL}"),
        ("Normal", "CNIBinariesChanged", "CNI binaries unlabelled for a, b"),
    ]
    up = Verdict(True, "MultusReady", "Multus is ready on boot b2")
    events = transitions({READY_LABEL: "true", "cni.multus-webhook.io/ipvlan": "true",
                          "cni.multus-webhook.io/tap": None}, up)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Normal", "MultusReady", f"Multus is ready on boot b2; set label {READY_LABEL}=true"),
        ("Normal", "CNIBinariesChanged", "CNI binaries labelled for ipvlan; unlabelled for tap"),
    ]
    assert transitions({}, up) == []


@pytest.mark.parametrize(("boot", "ready"),
                         [("b2", "True"), ("b1", "True"), (None, "True"), ("b2", "False"), ("b2", None)])
def test_the_slim_node_the_controller_keeps_decides_as_the_whole_node(boot: str | None, ready: str | None) -> None:
    whole = node(boot, ready, {"kubernetes.io/hostname": "n", READY_LABEL: "true"})
    whole["metadata"] |= {"uid": "u1", "resourceVersion": "42", "annotations": {"big": "x" * 1000}}
    whole["status"] |= {"images": [{"names": [f"registry.example/image-{i}"], "sizeBytes": i} for i in range(100)],
                        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}
    slim = slim_node(whole)
    assert len(repr(slim)) < len(repr(whole)) / 10
    assert slim["metadata"] == {"name": "n", "uid": "u1", "resourceVersion": "42", "labels": {READY_LABEL: "true"}}
    assert slim["status"]["conditions"] == ([{"type": "Ready", "status": ready}] if ready else [])
    for s in (state(), state("b1"), None):
        for fresh in (True, False):
            verdict = decided(whole, s, fresh=fresh)
            assert decided(slim, s, fresh=fresh) == verdict
            assert desired_labels(slim, s, verdict) == desired_labels(whole, s, verdict)
        verdict = decided(whole, s)
        assert desired_labels(slim, s, verdict) == desired_labels(whole, s, verdict)
        desired = desired_labels(whole, s, verdict)
        assert label_patch(slim["metadata"]["labels"], desired) == label_patch(whole["metadata"]["labels"], desired)


def test_a_node_is_decided_again_only_when_its_objects_change_or_its_time_comes() -> None:
    n, s, agents = node(), state(), ({"metadata": {"name": "agent-1"}},)
    last = (n, s, agents, stale_at(beat(s, silent=1.0), 10, MONO))
    assert needs_look(None, n, s, agents, MONO)
    assert not needs_look(last, n, s, agents, MONO)
    assert not needs_look(last, n, s, agents, MONO + 28)
    assert needs_look(last, n, s, agents, MONO + 29)  # unchanged for 1 s + 3 intervals of 10 s
    assert needs_look(last, node(), s, agents, MONO)  # the store replaced the Node: an equal copy is still a change
    assert needs_look(last, n, state(), agents, MONO)
    assert needs_look(last, n, None, agents, MONO)
    assert needs_look(last, n, s, (), MONO)  # the agent pod went (or a new one came): it may need our labels
    assert needs_look(last, n, s, (dict(agents[0]),), MONO)
    without = (n, None, agents, None)  # no state: nothing but a new object can change the verdict
    assert not needs_look(without, n, None, agents, MONO + 86400)


def test_when_a_heartbeat_goes_stale() -> None:
    s = state()
    assert stale_at(beat(s, silent=1.0), 10, MONO) == MONO + 29
    # Stale already: it stays stale until the state changes (no look again and again meanwhile).
    assert stale_at(beat(s, silent=30.0), 10, MONO) is None
    assert stale_at(beat(None), 10, MONO) is None


def test_the_first_readiness_counts_only_for_the_boot_it_was_recorded_on() -> None:
    s = state()
    assert first_ready_time(node(), s) is None  # written by an agent that does not record it
    s["status"] |= {"firstReadyBootID": "b2", "firstReadyTime": format_time(NOW)}
    assert first_ready_time(node(), s) == NOW
    assert first_ready_time(node(boot="b3"), s) is None
    assert first_ready_time(node(boot=None), s) is None
    s["status"]["firstReadyTime"] = None  # watched from its start, not ready yet
    assert first_ready_time(node(), s) is None


@pytest.mark.parametrize(("read", "key"), [(boot_time, "bootTime"), (ready_time, "readyTime")])
def test_the_boot_and_ready_times_count_only_for_the_boot_the_status_is_about(
        read: Callable[[Mapping[str, Any], Mapping[str, Any] | None], datetime | None], key: str) -> None:
    """The agent writes them with the boot id: a status about another boot (the node rebooted, its
    agent has not reported since) would date this boot from the one before."""
    s = state()
    assert read(node(), s) is None  # written by an agent that does not report it
    s["status"][key] = format_time(NOW)
    assert read(node(), s) == NOW
    assert read(node(boot="b3"), s) is None
    assert read(node(boot=None), s) is None
    assert read(node(), None) is None
    s["status"][key] = None  # the agent could not read it; Multus is not ready
    assert read(node(), s) is None


def test_a_reboot_race_is_one_warning_per_transition_as_the_controller_keeps_the_state() -> None:
    """From the real agent's status, slimmed as the controller's store keeps it: a stale top-level
    config is a Warning naming the file; the same transition (later heartbeats) is the same key, a new
    one (the condition True in between, or another boot) another; True, or False only because Multus's
    config is not written yet (every reboot), is none."""
    host = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    try:
        host.make_ready("b2")
        guarded = evaluate(read_host(host.layout), host.layout)
        host.write_config("05-cilium.conflist")
        exposed = evaluate(read_host(host.layout), host.layout)
        host.remove_config("00-multus.conf")
        layout = dataclasses.replace(host.layout, primary_config=None)
        unknown = evaluate(read_host(layout), layout)
    finally:
        host.cleanup()

    def kept(*reports: Any, at: datetime = NOW) -> dict[str, Any]:
        previous = None
        for i, report in enumerate(reports):
            previous = status_body("n", report, previous, at + timedelta(seconds=i))
        return slim_state({"metadata": {"name": "n"}, "status": previous})

    first = reboot_race_warning(kept(exposed))
    assert first is not None
    key, warning = first
    assert (warning.type, warning.reason) == ("Warning", "RebootRaceNotGuarded")
    assert warning.message.startswith("RebootRaceGuarded is False (OtherTopLevelConfig): "
                                      "/etc/cni/net.d/05-cilium.conflist is a CNI config at the top level")
    assert reboot_race_warning(kept(exposed, exposed, exposed)) == first
    again = reboot_race_warning(kept(exposed, guarded, exposed))
    assert again is not None
    assert again[0] != key
    assert reboot_race_warning(kept(guarded)) is None
    assert reboot_race_warning(kept(unknown)) is None
    assert [c["type"] for c in kept(guarded)["status"]["conditions"]] == ["Ready"]


def _reasons(source: Path, call: str, position: int, accept: Callable[[ast.Call], bool]) -> set[str]:
    """The reasons given as a literal or a module constant in the calls of ``call`` in ``source``."""
    tree = ast.parse(source.read_text())
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == call and accept(node):
            arg = node.args[position]
            if isinstance(arg, ast.Constant):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                found.add(constants[arg.id])
    return found


def test_every_reason_a_verdict_can_have_is_known_to_the_nodes_metric() -> None:
    """multus_webhook_nodes clamps reasons it does not know to Other (a newer agent's): a reason of this
    version's controller or agent left out of the known set would be counted as Other too."""
    import webhook.agent.probe as probe
    import webhook.controller.decide as decide_module
    from webhook.controller.metrics import KNOWN_REASONS, OTHER, reason_label

    checks = {"BINARIES", "CONFIG_FIRST", "PRIMARY", "DAEMON", "BOOT_ID"}
    assert {getattr(probe, c) for c in checks} == set(probe.CHECKS)
    failing = _reasons(Path(probe.__file__), "Condition", 2,
                       # False or Unknown (None): both fail Ready and give it their reason.
                       lambda n: ast.unparse(n.args[0]) in checks and ast.unparse(n.args[1]) in ("False", "None"))
    assert failing == probe.CHECK_FALSE_REASONS
    decided = _reasons(Path(decide_module.__file__), "Verdict", 1, lambda n: True)
    assert {"NoNodeState", "HeartbeatStale", "MultusReady"} <= decided <= decide_module.OWN_REASONS
    assert decide_module.OWN_REASONS <= KNOWN_REASONS
    assert reason_label("NotAnswering") == "NotAnswering"
    assert reason_label("AgentStopped") == "AgentStopped"
    assert reason_label("NodeStateBehind") == "NodeStateBehind"
    assert reason_label("SomethingNewer") == OTHER
