"""Node readiness, our labels and the Events they stand for, decided from plain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhook.cluster.nodes import slim_node
from webhook.controller.decide import (
    Verdict,
    desired_labels,
    label_patch,
    needs_look,
    readiness,
    seen,
    transitions,
)
from webhook.kube import format_time
from webhook.names import READY_LABEL, binary_label

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def node(boot: str | None = "b2", ready: str | None = "True", labels: dict[str, str] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"nodeInfo": {"bootID": boot} if boot else {}}
    if ready is not None:
        status["conditions"] = [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}]
    return {"metadata": {"name": "n", "labels": labels or {}}, "status": status}


def state(boot: str | None = "b2", ready: bool = True, age: float = 1.0,
          binaries: tuple[str, ...] = ("bridge", "multus-shim")) -> dict[str, Any]:
    return {"status": {
        "bootID": boot, "multusReady": ready, "cniBinaries": list(binaries),
        "heartbeatTime": format_time(NOW - timedelta(seconds=age)),
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "reason": "AllChecksPassed" if ready else "NotAnswering",
                        "message": "ok" if ready else "the Multus daemon does not answer"}],
    }}


def test_ready_when_everything_agrees() -> None:
    assert readiness(node(), state(), NOW, 10) == Verdict(True, "MultusReady", "Multus is ready on boot b2")


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
        (node(), state(age=30), "HeartbeatStale"),
        (node(), state(ready=False), "NotAnswering"),
    ],
)
def test_not_ready(n: dict[str, Any], s: dict[str, Any] | None, reason: str) -> None:
    verdict = readiness(n, s, NOW, 10)
    assert (verdict.ready, verdict.reason) == (False, reason)


def test_messages_say_what_to_look_at() -> None:
    assert readiness(node(boot="b3"), state(), NOW, 10).message == (
        "the node runs boot b3 but its MultusNodeState is about boot b2: the agent has not reported since the reboot")
    assert readiness(node(), state(age=31), NOW, 10).message == "the agent's last heartbeat was 31s ago (limit 30s)"
    assert readiness(node(), state(ready=False), NOW, 10).message == "the Multus daemon does not answer"


def test_the_heartbeat_limit_is_three_intervals() -> None:
    assert readiness(node(), state(age=2.9), NOW, 1).ready
    assert not readiness(node(), state(age=3.0), NOW, 1).ready
    s = state()
    del s["status"]["heartbeatTime"]
    assert readiness(node(), s, NOW, 10).message.startswith("the agent's last heartbeat was never")


def test_desired_labels() -> None:
    assert desired_labels(node(), state(), readiness(node(), state(), NOW, 10)) == {
        READY_LABEL: "true", "cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/multus-shim": "true"}


def test_a_stale_heartbeat_keeps_the_inventory_of_this_boot_but_a_new_boot_drops_it() -> None:
    stale = state(age=100)
    assert desired_labels(node(), stale, readiness(node(), stale, NOW, 10)) == {
        "cni.multus-webhook.io/bridge": "true", "cni.multus-webhook.io/multus-shim": "true"}
    rebooted = node(boot="b3")
    assert desired_labels(rebooted, state(), readiness(rebooted, state(), NOW, 10)) == {}


def test_binaries_that_cannot_be_label_names_are_skipped() -> None:
    s = state(binaries=("ok_1.2", "-bad", "a" * 64, "with space", "x"))
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
        verdict = readiness(whole, s, NOW, 10)
        assert readiness(slim, s, NOW, 10) == verdict
        assert desired_labels(slim, s, verdict) == desired_labels(whole, s, verdict)
        desired = desired_labels(whole, s, verdict)
        assert label_patch(slim["metadata"]["labels"], desired) == label_patch(whole["metadata"]["labels"], desired)


def test_a_node_is_decided_again_only_when_its_objects_change_or_its_heartbeat_goes_stale() -> None:
    n, s = node(), state(age=1.0)
    last = seen(n, s, 10, NOW)
    assert needs_look(None, n, s, NOW)
    assert not needs_look(last, n, s, NOW)
    assert not needs_look(last, n, s, NOW + timedelta(seconds=28))
    assert needs_look(last, n, s, NOW + timedelta(seconds=29))  # heartbeat 1 s old + 3 intervals of 10 s
    assert needs_look(last, node(), s, NOW)  # the store replaced the Node: an equal copy is still a change
    assert needs_look(last, n, state(age=1.0), NOW)
    assert needs_look(last, n, None, NOW)
    without = seen(n, None, 10, NOW)  # no state: nothing but a new object can change the verdict
    assert not needs_look(without, n, None, NOW + timedelta(days=1))
    # Seen stale already: it stays stale until the state changes (no look again and again meanwhile).
    old = state(age=60.0)
    assert seen(n, old, 10, NOW)[2] is None
    assert not needs_look(seen(n, old, 10, NOW), n, old, NOW + timedelta(days=1))
