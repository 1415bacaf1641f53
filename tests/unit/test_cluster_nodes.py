"""The store's node table: what the rules see is published again only for the nodes an event touched,
and always equals what a rebuild from scratch would publish."""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.cluster import nodes
from webhook.cluster.nodes import NodeTable
from webhook.cluster.store import AGENT_POD, NODE, NODE_STATE, ClusterStore
from webhook.names import BINARY_LABEL_PREFIX, READY_LABEL

NAMES = ["a", "b", "c", "d"]
BINARIES = ["macvlan", "ipvlan", "whereabouts"]
STATE_NAMES = [*NAMES, "s-a", "s-b"]


def node(name: str, zone: str = "z1", version: str = "1", taint: str | None = None,
         cordoned: bool = False) -> dict[str, Any]:
    labels = {"zone": zone, f"{BINARY_LABEL_PREFIX}{zone}": "true", **({READY_LABEL: "true"} if zone == "z1" else {})}
    return {"kind": "Node", "metadata": {"name": name, "labels": labels, "resourceVersion": version},
            "spec": {"taints": [{"key": taint, "effect": "NoSchedule"}] if taint else [],
                     **({"unschedulable": True} if cordoned else {})},
            "status": {"nodeInfo": {"bootID": f"boot-{name}"},
                       "conditions": [{"type": "Ready", "status": "True", "message": "kubelet is posting"}]}}


def state(name: str, binaries: list[str], node_name: str | None = None, beat: str = "t0",
          unverified: list[str] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"cniBinaries": binaries, "unverifiedBinaries": unverified or [], "multusReady": True,
                              "dhcpDaemon": False, "heartbeatTime": beat,
                              "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                              "message": "Multus is ready", "lastTransitionTime": beat},
                                             {"type": "CNIConfig", "status": "True"}]}
    if node_name:
        status["nodeName"] = node_name
    return {"kind": "MultusNodeState", "metadata": {"name": name, "namespace": "multus-webhook"}, "status": status}


def published(table: NodeTable) -> tuple[Any, ...]:
    return (table.nodes, table.untainted, table.cordoned, table.reporting, table.closed_reporting, table.holders,
            table.ready)


ops = st.one_of(
    st.tuples(st.just("node"), st.sampled_from(NAMES), st.sampled_from(["z1", "z2"]),
              st.sampled_from([None, "dedicated", "node.kubernetes.io/not-ready", "node.cilium.io/agent-not-ready"]),
              st.booleans()),
    st.tuples(st.just("node-gone"), st.sampled_from(NAMES)),
    st.tuples(st.just("state"), st.sampled_from(STATE_NAMES), st.lists(st.sampled_from(BINARIES)),
              st.sampled_from([None, *NAMES]), st.lists(st.sampled_from(BINARIES))),
    st.tuples(st.just("state-gone"), st.sampled_from(STATE_NAMES)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_publishing_only_what_an_event_touched_equals_a_rebuild(steps: list[tuple[Any, ...]]) -> None:
    table = NodeTable(lambda s: s)
    taints: dict[str, str | None] = {}
    cordons: dict[str, bool] = {}
    for step in steps:
        if step[0] == "node":
            table.put_node(step[1], node(step[1], step[2], taint=step[3], cordoned=step[4]))
            taints[step[1]], cordons[step[1]] = step[3], step[4]
        elif step[0] == "node-gone":
            table.remove_node(step[1])
            taints.pop(step[1], None)
            cordons.pop(step[1], None)
        elif step[0] == "state":
            table.put_state(("multus-webhook", step[1]), state(step[1], step[2], step[3], unverified=step[4]))
        else:
            table.remove_state(("multus-webhook", step[1]))
        table.publish()
        rebuilt = copy.deepcopy(table)
        rebuilt._rebuild()
        assert published(table) == published(rebuilt)
        assert [n.name for n in table.nodes] == sorted(n.name for n in table.nodes)
        # A lasting taint keeps pods off; a not-ready node's (or Cilium's agent's) does not.
        assert {n.name for n in table.nodes if n.tainted} == {
            name for name, taint in taints.items() if taint == "dedicated"}
        assert {n.name for n in table.nodes if not n.schedulable} == {
            name for name, taint in taints.items() if taint == "dedicated" or cordons[name]}
        assert table.untainted == sum(1 for n in table.nodes if not n.tainted)
        assert table.cordoned == sum(1 for n in table.nodes if n.cordoned and not n.tainted)
        assert table.closed_reporting == tuple(n.name for n in table.nodes
                                               if n.cni_binaries is not None and not n.schedulable)


@pytest.mark.parametrize("rebuild", [True, False], ids=["rebuild", "update"])
def test_changes_a_failed_publish_left_out_are_published_by_the_next(
    monkeypatch: pytest.MonkeyPatch, rebuild: bool
) -> None:
    table = NodeTable(lambda s: s)
    heard: list[Collection[str]] = []
    table.listen(heard.append)
    if not rebuild:  # with a node published, a new one is published alone
        table.put_node("a", node("a"))
        table.publish()
        heard.clear()
    table.put_node("b", node("b"))
    table.put_state(("multus-webhook", "b"), state("b", ["ipvlan"]))
    real, calls = nodes._one_copy_each, []

    def fails_once(holders: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        # Raised once the node is recorded (_update) but before the nodes are published.
        calls.append(holders)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return real(holders)

    monkeypatch.setattr(nodes, "_one_copy_each", fails_once)
    with pytest.raises(RuntimeError, match="injected"):
        table.publish()
    assert heard == []
    table.publish()
    assert [n.name for n in table.nodes] == (["b"] if rebuild else ["a", "b"])
    assert table.holders == {"ipvlan": frozenset({"b"})}
    rebuilt = copy.deepcopy(table)
    rebuilt._rebuild()
    assert published(table) == published(rebuilt)
    assert heard == [{"b"}]


def test_a_heartbeat_publishes_nothing_new_but_tells_the_listeners() -> None:
    store = ClusterStore()
    store.upsert_all([(NODE, node(n)) for n in NAMES] + [(NODE_STATE, state(n, ["macvlan"])) for n in NAMES])
    heard: list[Collection[str]] = []
    store.on_nodes_changed(heard.append)
    before = (store.nodes(), store.reporting_nodes, store.binary_holders("macvlan"))
    store.upsert(NODE_STATE, state("b", ["macvlan"], beat="t1"))
    assert (store.nodes(), store.reporting_nodes, store.binary_holders("macvlan")) == before
    assert store.nodes() is before[0]  # not even rebuilt
    assert heard == [{"b"}]
    kept = store.node_state("b")
    assert kept is not None
    assert kept["status"]["heartbeatTime"] == "t1"
    # The controller reads the Ready condition's reason and message; nothing else of the conditions is kept.
    assert kept["status"]["conditions"] == [{"type": "Ready", "reason": "Ready", "message": "Multus is ready"}]
    store.upsert(NODE_STATE, state("b", ["macvlan", "ipvlan"], beat="t2"))
    assert store.binary_holders("ipvlan") == frozenset({"b"})
    assert store.nodes() is not before[0]


def test_a_late_watch_event_does_not_undo_what_the_controller_recorded() -> None:
    store = ClusterStore()
    store.upsert(NODE, node("a", "z1", version="7"))
    store.upsert(NODE, node("a", "z2", version="9"))  # the controller's own patch, recorded
    store.upsert(NODE, node("a", "z3", version="8"))  # the watch event from before it
    assert store.nodes()[0].labels == {f"{BINARY_LABEL_PREFIX}z2": "true"}
    assert store.ready_nodes == ()  # z2 nodes carry no ready label
    kept = store.node_object("a")
    assert kept is not None
    assert kept["status"] == {"nodeInfo": {"bootID": "boot-a"},
                                                   "conditions": [{"type": "Ready", "status": "True"}]}


def test_a_node_state_is_never_taken_back_to_an_older_version() -> None:
    """A watch event applied again (or one from before what the controller read from the apiserver)
    would bring an old heartbeat or boot id back: a dead agent's heartbeat would look fresh."""
    store = ClusterStore()
    newer, older = state("a", ["macvlan"], beat="t2"), state("a", ["macvlan"], beat="t1")
    newer["metadata"]["resourceVersion"], older["metadata"]["resourceVersion"] = "12", "11"
    store.upsert(NODE_STATE, newer)
    heard: list[Collection[str]] = []
    store.on_nodes_changed(heard.append)
    store.upsert(NODE_STATE, older)
    kept = store.node_state("a")
    assert kept is not None
    assert kept["status"]["heartbeatTime"] == "t2"
    assert heard == []
    store.replace(NODE_STATE, [older])  # the same through a relist's page
    assert (store.node_state("a") or {})["status"]["heartbeatTime"] == "t2"


def test_only_our_own_node_labels_are_kept_one_copy_per_distinct_set() -> None:
    store = ClusterStore()
    store.upsert_all((NODE, node(n, "z1")) for n in NAMES)
    labels = [n.labels for n in store.nodes()]
    assert labels[0] == {f"{BINARY_LABEL_PREFIX}z1": "true", READY_LABEL: "true"}  # "zone" is nobody's business
    assert all(x is labels[0] for x in labels)


def agent(name: str, node_name: str | None, version: str = "1", **labels: str) -> dict[str, Any]:
    spec = {"nodeName": node_name} if node_name else {}
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "multus-webhook", "uid": f"uid-{name}",
                                        "resourceVersion": version,
                                        "labels": {"app.kubernetes.io/component": "agent", **labels}},
            "spec": {**spec, "containers": [{"name": "agent", "image": "x"}]}, "status": {"phase": "Running"}}


def test_agent_pods_are_kept_by_node_with_only_our_labels_and_tell_the_listeners() -> None:
    store = ClusterStore()
    store.upsert_all([(NODE, node(n)) for n in NAMES])
    heard: list[Collection[str]] = []
    store.on_nodes_changed(heard.append)
    before = store.nodes()
    store.upsert(AGENT_POD, agent("agent-x", None))  # not bound yet: stands for no node
    assert heard == []
    store.upsert(AGENT_POD, agent("agent-x", "a", version="2", **{READY_LABEL: "true", "other": "x"}))
    assert heard == [{"a"}]
    assert store.nodes() is before  # nothing the rules read
    assert store.agent_pods("a") == ({"metadata": {"name": "agent-x", "namespace": "multus-webhook",
                                                   "uid": "uid-agent-x", "resourceVersion": "2",
                                                   "labels": {READY_LABEL: "true"}},
                                      "spec": {"nodeName": "a"}},)
    store.upsert(AGENT_POD, agent("agent-x", "a", version="1"))  # a late watch event
    assert store.agent_pods("a")[0]["metadata"]["labels"] == {READY_LABEL: "true"}
    store.upsert(AGENT_POD, agent("agent-y", "a", version="3"))  # a rollout: two for a while
    assert [p["metadata"]["name"] for p in store.agent_pods("a")] == ["agent-x", "agent-y"]
    store.delete(AGENT_POD, agent("agent-x", "a"))
    assert [p["metadata"]["name"] for p in store.agent_pods("a")] == ["agent-y"]
    assert heard[-1] == {"a"}
    store.replace(AGENT_POD, [agent("agent-z", "b", version="4")])  # a relist
    assert store.agent_pods("a") == ()
    assert [p["metadata"]["name"] for p in store.agent_pods("b")] == ["agent-z"]


def test_of_the_conditions_only_ready_and_a_false_reboot_race_are_kept_with_what_is_read_of_them() -> None:
    """What the controller reads, and no more: a Node's Ready status; a state's Ready, without the
    lastTransitionTime each agent restart moves, and its reboot race only while False (one copy of each
    message)."""
    race = {"type": nodes.REBOOT_RACE, "status": "False", "reason": "OtherTopLevelConfig", "message": "m",
            "lastTransitionTime": "t", "observedGeneration": 3}
    conditions = [{"type": "Ready", "status": "True", "reason": "r", "message": "up", "lastTransitionTime": "t"},
                  {**race, "status": "True"}, race, {"type": "MemoryPressure", "status": "False"}, "odd"]
    assert nodes.slim_node({"status": {"conditions": conditions}})["status"]["conditions"] == [
        {"type": "Ready", "status": "True"}]
    shared: list[Any] = []
    kept = nodes.slim_state({"status": {"conditions": conditions}}, lambda v: shared.append(v) or v)["status"]
    assert kept["conditions"] == [{"type": "Ready", "reason": "r", "message": "up"},
                                  {k: v for k, v in race.items() if k != "observedGeneration"}]
    assert "m" in shared
    assert "up" not in shared
    for odd in (None, {}, "Ready"):
        assert nodes.slim_state({"status": {"conditions": odd}})["status"]["conditions"] == []
