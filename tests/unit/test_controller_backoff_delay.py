"""How long a node whose look failed waits, and which later looks it holds back."""

from __future__ import annotations

from typing import Any

from webhook.controller.controller import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    BACKOFF_JITTER,
    Look,
    backoff_delay,
    covered,
    writes_of,
)
from webhook.controller.decide import Heartbeat, Verdict
from webhook.names import READY_LABEL, binary_label

BRIDGE = binary_label("bridge")


def between(value: float, low: float) -> bool:
    return low <= value <= low * (1 + BACKOFF_JITTER)


def test_the_wait_doubles_from_the_base_up_to_the_cap_with_a_little_jitter() -> None:
    waits = [backoff_delay(n, None) for n in range(1, 12)]
    expected = [min(BACKOFF_BASE * 2 ** (n - 1), BACKOFF_CAP) for n in range(1, 12)]
    assert all(between(w, e) for w, e in zip(waits, expected, strict=True)), waits
    assert expected[-1] == BACKOFF_CAP
    assert between(backoff_delay(10**6, None), BACKOFF_CAP)  # days of failures: no overflow


def test_an_answer_that_asks_for_a_longer_wait_gets_it_within_the_cap() -> None:
    assert between(backoff_delay(1, 7.0), 7.0)
    assert between(backoff_delay(4, 1.0), BACKOFF_BASE * 8)  # a shorter ask does not cut the back-off
    assert between(backoff_delay(1, 86400.0), BACKOFF_CAP)


def test_jitter_spreads_nodes_refused_together() -> None:
    assert len({backoff_delay(3, None) for _ in range(20)}) > 1


def obj(uid: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": uid, "uid": uid, "labels": labels}}


def test_a_look_is_held_back_only_when_it_would_write_nothing_new() -> None:
    node, agent = obj("n"), obj("a")
    desired = {READY_LABEL: "true", BRIDGE: "true"}
    failed = writes_of(node, [agent], desired)
    assert covered(failed, failed)
    # The agent pod's labels landed, the node's did not: nothing new to write.
    assert covered(writes_of(node, [obj("a", **desired)], desired), failed)
    # A new binary, an agent pod made again, the ready label to come off: each is new.
    assert not covered(writes_of(node, [agent], {**desired, binary_label("vlan"): "true"}), failed)
    assert not covered(writes_of(node, [obj("a2")], desired), failed)
    labelled = obj("n", **{READY_LABEL: "true"})
    assert not covered(writes_of(labelled, [agent], {BRIDGE: "true"}),
                       writes_of(labelled, [agent], desired))
    # A failure outside any look's writes (a bug in deciding) holds nothing back.
    assert not covered(failed, None)


def look(node: dict[str, Any], agents: list[dict[str, Any]], desired: dict[str, str]) -> Look:
    return Look(node, None, tuple(agents), Heartbeat(None, 0.0, False), 0.0, Verdict(None, "", ""), desired,
                writes_of(node, agents, desired))


def test_a_look_that_takes_the_ready_label_off_a_node_or_an_agent_pod_goes_first() -> None:
    ready = {READY_LABEL: "true"}
    assert look(obj("n", **ready), [obj("a")], {}).unreadies
    assert look(obj("n"), [obj("a", **ready)], {}).unreadies
    assert not look(obj("n"), [obj("a")], ready).unreadies
    assert not look(obj("n", **ready), [obj("a", **ready)], {**ready, BRIDGE: "true"}).unreadies
    assert not look(obj("n", **{BRIDGE: "true"}), [], {}).unreadies
