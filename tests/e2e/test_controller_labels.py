"""`multus-webhook controller` and `agent` as real processes against the real apiserver; the Node has no
kubelet, the test patches its status (a reboot is a new status.nodeInfo.bootID)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from webhook.agent import nodestate
from webhook.agent.nodestate import NAMESPACE
from webhook.agent.probe import HostLayout
from webhook.agent.standin import StandInHost, StandInNode, Subcommand
from webhook.controller.decide import REBOOT_RACE_EXPOSED_EVENT
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually
from webhook.kube import format_time, utcnow
from webhook.names import READY_LABEL

BIN = "cni.multus-webhook.io/"
INITIAL = {READY_LABEL: "true", BIN + "bridge": "true", BIN + "macvlan": "true", BIN + "multus-shim": "true"}


@pytest.fixture
def node(controlplane: ControlPlane) -> Iterator[StandInNode]:
    controlplane.kubectl("create", "namespace", NAMESPACE, check=False)
    n = StandInNode(controlplane, f"node-{uuid.uuid4().hex[:8]}", "boot-1", labels={"team": "blue"})
    yield n
    n.delete()


def start_agent(cp: ControlPlane, host: StandInHost, node: StandInNode, log: Path, *extra: str) -> Subcommand:
    return Subcommand(["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node.name,
                       "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2", *extra],
                      log).start()


def start_controller(cp: ControlPlane, lease: str, identity: str, log: Path, *extra: str) -> Subcommand:
    return Subcommand(["controller", "--kubeconfig", str(cp.kubeconfig), "--agent-interval", "1",
                       "--lease-name", lease, "--identity", identity, "--lease-duration", "3",
                       "--renew-deadline", "2", "--retry-period", "0.5", *extra], log).start()


def lease_holder(cp: ControlPlane, lease: str, namespace: str = NAMESPACE) -> str:
    out = cp.kubectl("get", "lease", "-n", namespace, lease, "-o", "jsonpath={.spec.holderIdentity}", check=False)
    return out.stdout


def labels_are(node: StandInNode, expected: dict[str, str]) -> Any:
    """The node's labels of ours, and the same on its agent pod (the pods' readiness gate)."""
    return eventually(lambda: node.own_labels() == expected == node.agent_labels(), what=f"labels {expected}")


def ready(node: StandInNode) -> bool:
    """Ready on the node and on its agent pod alike (False when they disagree)."""
    return READY_LABEL in node.own_labels() and READY_LABEL in node.agent_labels()


def not_ready(node: StandInNode) -> bool:
    return READY_LABEL not in node.own_labels() and READY_LABEL not in node.agent_labels()


def reasons(node: StandInNode) -> list[str]:
    return [e["reason"] for e in node.events()]


def events_through(node: StandInNode, reason: str, message: str = "", count: int = 1) -> list[dict[str, Any]]:
    """The node's Events once the ``count``-th of ``reason`` (whose message starts with ``message``) is among
    them, counting an Event said again on the one made as many times as its count. The controller emits an
    Event after its label patch, and a thread of its own sends it: seeing the labels does not mean the Event
    is there yet. Events are sent one at a time in the order they were made, so every Event emitted before
    that one is there too."""
    return eventually(node.events, f"Event #{count} {reason} {message!r}", until=lambda events: sum(
        e["count"] for e in events if e["reason"] == reason and e["message"].startswith(message)) >= count)


def test_ready_label_follows_boots_and_heartbeats(controlplane: ControlPlane, host: StandInHost, node: StandInNode,
                                                  tmp_path: Path) -> None:
    cp = controlplane
    host.make_ready("boot-1")
    lease = f"lease-{uuid.uuid4().hex[:8]}"
    controller = start_controller(cp, lease, "only", tmp_path / "controller.log")
    agent = start_agent(cp, host, node, tmp_path / "agent.log")
    try:
        labels_are(node, INITIAL)
        assert node.labels()["team"] == "blue"

        # The inventory: labels come and go with the binaries; nobody else's label moves.
        host.add_binary("ipvlan")
        host.remove_binary("bridge")
        labels_are(node, {READY_LABEL: "true", BIN + "ipvlan": "true", BIN + "macvlan": "true",
                          BIN + "multus-shim": "true"})

        # Reboot by power loss: the agent has no chance to say goodbye, its last report (ready, on
        # boot-1) is still fresh when the kubelet reports the new boot. The boot id alone decides.
        # macvlan does not come back with the new boot (say, it was installed on a tmpfs).
        agent.kill()
        host.stop_daemon()
        host.set_boot_id("boot-2")
        host.remove_binary("macvlan")
        node.reboot("boot-2")
        # Only the ready label comes off: the binary labels stay as the last inventory left them until
        # the agent reports on boot-2 (decide.desired_labels says why). They would go in the same
        # patch that takes the ready label off, so seeing them in place after it is conclusive.
        last_inventory = {BIN + "ipvlan": "true", BIN + "macvlan": "true", BIN + "multus-shim": "true"}
        labels_are(node, last_inventory)
        down = [e for e in events_through(node, "MultusNotReady") if e["reason"] == "MultusNotReady"]
        assert down[0]["message"] == ("the node runs boot boot-2 but its MultusNodeState is about boot boot-1: the "
                                      f"agent has not reported since the reboot; removed label {READY_LABEL}")
        assert [e["message"] for e in node.events() if e["reason"] == "CNIBinariesChanged"][1:] == [
            "CNI binaries labelled for ipvlan; unlabelled for bridge"]
        # The agent is back before Multus: the binary labels follow the inventory of the new boot, the
        # node is still not ready.
        agent = start_agent(cp, host, node, tmp_path / "agent.log")
        labels_are(node, {BIN + "ipvlan": "true", BIN + "multus-shim": "true"})
        assert cp.kubectl("get", "mns", "-n", NAMESPACE, node.name,
                          "-o", "jsonpath={.status.bootID}").stdout == "boot-2"
        assert not_ready(node)
        host.start_daemon()
        eventually(lambda: ready(node), what="ready again on boot-2")

        # NotReady node.
        node.patch_status(ready=False)
        eventually(lambda: not_ready(node), what="label removed on NotReady")
        node.patch_status(ready=True)
        eventually(lambda: ready(node), what="ready again")

        # A dead agent (no chance to say goodbye): the heartbeat goes stale within three intervals.
        agent.kill()
        eventually(lambda: not_ready(node), timeout=10, what="label removed on staleness")
        agent = start_agent(cp, host, node, tmp_path / "agent.log")
        eventually(lambda: ready(node), what="ready with a live agent")

        # A clean agent stop marks the node not ready at once: by the agent's own last word, not by its
        # heartbeat going stale (which would also take the label, a few seconds later). The Event's
        # message tells which did it; a deadline of a few seconds told nothing (staleness too comes
        # within three intervals) and failed whenever the controller was slow to react.
        assert agent.stop() == 0
        eventually(lambda: not_ready(node), what="label removed on agent stop")

        events = events_through(node, "MultusNotReady", count=4)
        stopped = [e["message"] for e in events if e["reason"] == "MultusNotReady"][3]
        assert stopped == f"the agent stopped; nothing vouches for Multus on this node; removed label {READY_LABEL}"
        # Each time the node became ready again on boot-2 said the same: one Event, counted three times.
        assert sorted((e["message"].split(";")[0], e["count"]) for e in events if e["reason"] == "MultusReady") == [
            ("Multus is ready on boot boot-1", 1), ("Multus is ready on boot boot-2", 3)]
        assert sum(e["count"] for e in events if e["reason"] == "MultusNotReady") == 4
        by_reason = {e["reason"]: e for e in events}
        assert by_reason["MultusReady"]["type"] == "Normal"
        assert by_reason["MultusNotReady"]["type"] == "Warning"
        assert by_reason["MultusNotReady"]["involvedObject"]["name"] == node.name
        assert {e["reportingInstance"] for e in events} == {"only"}
        assert [e["message"] for e in events if e["reason"] == "CNIBinariesChanged"][1:] == [
            "CNI binaries labelled for ipvlan; unlabelled for bridge", "CNI binaries unlabelled for macvlan"]
    finally:
        agent.stop()
        assert controller.stop() == 0, controller.output()
    assert lease_holder(cp, lease) == ""  # released on a clean stop
    assert node.labels()["team"] == "blue"


def test_a_binary_name_that_cannot_be_a_label_does_not_hold_back_the_others(
        controlplane: ControlPlane, host: StandInHost, node: StandInNode, tmp_path: Path) -> None:
    """"bridge2\\n" passed the label-name test ("$" matches before a final newline): the apiserver refused
    the whole label patch, the ready label with it. Listed in the inventory, it is simply not a label."""
    cp = controlplane
    host.make_ready("boot-1")
    host.add_binary("bridge2\n")
    controller = start_controller(cp, f"lease-{uuid.uuid4().hex[:8]}", "only", tmp_path / "controller.log")
    agent = start_agent(cp, host, node, tmp_path / "agent.log")
    try:
        labels_are(node, INITIAL)
        status = json.loads(cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o", "json").stdout)["status"]
        assert status["cniBinaries"] == ["bridge", "bridge2\n", "macvlan", "multus-shim"]
    finally:
        agent.stop()
        assert controller.stop() == 0, controller.output()
    assert "Invalid value" not in controller.output()


def test_binary_names_that_are_not_utf8_are_left_out_and_the_state_is_written(
        controlplane: ControlPlane, host: StandInHost, node: StandInNode, tmp_path: Path) -> None:
    """tap\\xff and tap\\xfe: the apiserver stores each as "tap\\ufffd", and two of them in cniBinaries (a
    set) had the status refused at every poll, the node never ready."""
    cp = controlplane
    host.make_ready("boot-1")
    bin_dir = os.fsencode(host.path(host.layout.cni_bin_dir))
    for raw in (b"tap\xff", b"tap\xfe"):
        path = os.path.join(bin_dir, raw)
        with open(path, "wb") as f:
            f.write(b"#!/bin/sh\n")
        os.chmod(path, 0o755)
    controller = start_controller(cp, f"lease-{uuid.uuid4().hex[:8]}", "only", tmp_path / "controller.log")
    agent = start_agent(cp, host, node, tmp_path / "agent.log")
    try:
        labels_are(node, INITIAL)
        status = json.loads(cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o", "json").stdout)["status"]
        assert status["cniBinaries"] == ["bridge", "macvlan", "multus-shim"]
        [installed] = [c for c in status["conditions"] if c["type"] == "MultusBinaryInstalled"]
        assert installed["message"].endswith("left out, their names not UTF-8 (no CNI config, which is JSON, can "
                                             "name them): /opt/cni/bin/tap\\xfe, /opt/cni/bin/tap\\xff")
    finally:
        agent.stop()
        assert controller.stop() == 0, controller.output()
    assert "could not write MultusNodeState" not in agent.output()


def test_a_config_the_runtime_would_use_at_the_next_reboot_is_one_warning_event_per_transition(
        controlplane: ControlPlane, node: StandInNode, tmp_path: Path) -> None:
    """Cilium's old 05-cilium.conflist left at the top level: the node stays ready, so no label change
    tells; a Warning Event on the Node does, once when RebootRaceGuarded turns False, not at each of
    the heartbeats that bring the controller a look at the node, and again when it turns False anew."""
    cp = controlplane
    host = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    host.make_ready("boot-1")
    controller = start_controller(cp, f"lease-{uuid.uuid4().hex[:8]}", "only", tmp_path / "controller.log")
    agent = start_agent(cp, host, node, tmp_path / "agent.log", "--primary-cni-config", "cilium/05-cilium.conflist")

    def races() -> list[dict[str, Any]]:
        return [e for e in node.events() if e["reason"] == REBOOT_RACE_EXPOSED_EVENT]

    def heartbeat() -> str:
        return cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o", "jsonpath={.status.heartbeatTime}").stdout

    try:
        labels_are(node, INITIAL)
        assert races() == []
        host.write_config("05-cilium.conflist")
        [race] = eventually(races, what="the Warning Event")
        assert race["type"] == "Warning"
        assert race["involvedObject"]["name"] == node.name
        assert race["message"].startswith("RebootRaceGuarded is False (OtherTopLevelConfig): "
                                          "/etc/cni/net.d/05-cilium.conflist is a CNI config at the top level")
        # Two heartbeats later, each a look at the node for the controller.
        first = heartbeat()
        eventually(heartbeat, until=lambda beat: beat > first, what="a heartbeat")
        second = heartbeat()
        eventually(heartbeat, until=lambda beat: beat > second, what="another heartbeat")
        # Events go out in the order they were made: once a later one is there, any earlier one is too.
        host.add_binary("vlan")
        events_through(node, "CNIBinariesChanged", "CNI binaries labelled for vlan")
        assert [e["count"] for e in races()] == [1]
        assert ready(node)

        host.remove_config("05-cilium.conflist")
        eventually(lambda: cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o",
                                      "jsonpath={.status.conditions[?(@.type=='RebootRaceGuarded')].status}").stdout,
                   until=lambda status: status == "True", what="guarded once the file is gone")
        host.write_config("05-cilium.conflist")
        # It says the same as the first: counted on it.
        eventually(lambda: [e["count"] for e in races()], until=lambda counts: counts == [2],
                   what="the second transition's Event")
    finally:
        agent.stop()
        host.cleanup()
        assert controller.stop() == 0, controller.output()


def test_two_controllers_never_both_act(controlplane: ControlPlane, host: StandInHost, node: StandInNode,
                                        tmp_path: Path) -> None:
    cp = controlplane
    host.make_ready("boot-1")
    lease = f"lease-{uuid.uuid4().hex[:8]}"
    first = start_controller(cp, lease, "first", tmp_path / "first.log")
    eventually(lambda: lease_holder(cp, lease) == "first", what="first holds the lease")
    second = start_controller(cp, lease, "second", tmp_path / "second.log")
    agent = start_agent(cp, host, node, tmp_path / "agent.log")
    try:
        labels_are(node, INITIAL)
        host.add_binary("vlan")
        eventually(lambda: BIN + "vlan" in node.own_labels(), what="vlan label")
        assert lease_holder(cp, lease) == "first"
        events = events_through(node, "CNIBinariesChanged", "CNI binaries labelled for vlan")
        assert {e["reportingInstance"] for e in events} == {"first"}

        # The leader dies without releasing: the standby waits out the lease, then acts.
        first.kill()
        eventually(lambda: lease_holder(cp, lease) == "second", timeout=15, what="second takes over")
        host.add_binary("tap")
        eventually(lambda: BIN + "tap" in node.own_labels(), what="tap label by the new leader")
        events = events_through(node, "CNIBinariesChanged", "CNI binaries labelled for tap")
        changes = [e for e in events if e["reason"] == "CNIBinariesChanged"]
        assert [(e["reportingInstance"], e["message"]) for e in changes] == [
            ("first", "CNI binaries labelled for bridge, macvlan, multus-shim"),
            ("first", "CNI binaries labelled for vlan"),
            ("second", "CNI binaries labelled for tap"),
        ]
        record = json.loads(cp.kubectl("get", "lease", "-n", NAMESPACE, lease, "-o", "json").stdout)["spec"]
        assert record["leaseTransitions"] == 1
    finally:
        agent.stop()
        assert second.stop() == 0, second.output()


def write_heartbeat(cp: ControlPlane, node: StandInNode, moment: datetime, *, stopped: bool = False) -> None:
    """What an agent on boot-1 that finds Multus ready writes, ``moment`` read from the node's clock; or,
    ``stopped``, what it leaves behind when it exits."""
    stamp = format_time(moment)
    ready = ({"status": "False", "reason": "AgentStopped", "message": "the agent stopped"} if stopped else
             {"status": "True", "reason": "AllChecksPassed", "message": "ok"})
    status = {"nodeName": node.name, "bootID": "boot-1", "multusReady": not stopped, "cniBinaries": [],
              "heartbeatTime": stamp, "conditions": [{"type": "Ready", **ready, "lastTransitionTime": stamp}]}
    cp.kubectl("patch", "mns", "-n", NAMESPACE, node.name, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": status}))


def test_conditions_of_status_unknown_are_not_taken_for_true(
        controlplane: ControlPlane, node: StandInNode, tmp_path: Path) -> None:
    """Kubernetes' third status, as the node lifecycle controller writes the Node's Ready when the kubelet
    stops posting, and as anyone may write an agent's condition (kubectl edit): neither counts as True,
    an Unknown RebootRaceGuarded is no Warning (only False is), and the controller goes on."""
    cp = controlplane
    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(node.name, NAMESPACE)))
    controller = start_controller(cp, f"lease-{uuid.uuid4().hex[:8]}", "only", tmp_path / "controller.log")
    unknown_race = {"type": "RebootRaceGuarded", "status": "Unknown", "reason": "OtherTopLevelConfig",
                    "message": "edited", "lastTransitionTime": format_time(utcnow())}

    def beat(*conditions: dict[str, Any], multus_ready: bool = True) -> dict[str, str]:
        """A live agent's heartbeat, with ``conditions`` in place of its Ready=True."""
        write_heartbeat(cp, node, utcnow())
        if conditions or not multus_ready:
            cp.kubectl("patch", "mns", "-n", NAMESPACE, node.name, "--subresource=status", "--type=merge", "-p",
                       json.dumps({"status": {"multusReady": multus_ready, "conditions": list(conditions)}}))
        return node.own_labels()

    try:
        eventually(beat, what="ready", until=lambda labels: READY_LABEL in labels)
        cp.kubectl("patch", "node", node.name, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]}}))
        eventually(beat, what="not ready on a Node Ready=Unknown", until=lambda labels: READY_LABEL not in labels)
        node.patch_status(ready=True)
        eventually(beat, what="ready again", until=lambda labels: READY_LABEL in labels)
        ready_unknown = {"type": "Ready", "status": "Unknown", "reason": "Edited", "message": "nobody knows",
                         "lastTransitionTime": format_time(utcnow())}
        eventually(lambda: beat(ready_unknown, unknown_race, multus_ready=False),
                   what="not ready on an agent's Ready=Unknown", until=lambda labels: READY_LABEL not in labels)
        down = events_through(node, "MultusNotReady", count=2)
        assert [e["message"] for e in down if e["reason"] == "MultusNotReady"][1] == \
            f"nobody knows; removed label {READY_LABEL}"
        eventually(lambda: beat(unknown_race), what="ready with RebootRaceGuarded=Unknown",
                   until=lambda labels: READY_LABEL in labels)
        events_through(node, "MultusReady", count=3)
        assert [e for e in node.events() if e["reason"] == REBOOT_RACE_EXPOSED_EVENT] == []
    finally:
        assert controller.stop() == 0, controller.output()
        cp.kubectl("delete", "mns", "-n", NAMESPACE, node.name, "--wait=false", check=False)


def test_the_nodes_clock_does_not_decide_whether_its_heartbeat_is_stale(
        controlplane: ControlPlane, node: StandInNode, tmp_path: Path) -> None:
    """The agent stamps heartbeatTime with the node's clock. 45s behind, a live agent keeps the node
    ready; 10 minutes ahead, a dead agent's node loses the label within three intervals all the same."""
    cp = controlplane
    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(node.name, NAMESPACE)))
    controller = start_controller(cp, f"lease-{uuid.uuid4().hex[:8]}", "only", tmp_path / "controller.log")
    try:
        def beat_behind() -> bool:
            write_heartbeat(cp, node, utcnow() - timedelta(seconds=45))
            return READY_LABEL in node.own_labels()

        eventually(beat_behind, what="ready with a node clock 45s behind")
        until = time.monotonic() + 4  # more than three intervals of 1s
        while time.monotonic() < until:
            assert beat_behind()
            time.sleep(0.2)

        write_heartbeat(cp, node, utcnow() + timedelta(seconds=600))  # its last word, then the agent dies
        eventually(lambda: not_ready(node), timeout=10,
                   what="label removed though the last heartbeat is 10 minutes in the future")
    finally:
        assert controller.stop() == 0, controller.output()
        cp.kubectl("delete", "mns", "-n", NAMESPACE, node.name, "--wait=false", check=False)


def test_a_state_the_cache_holds_behind_the_apiserver_is_looked_at_again_after_an_interval(
        controlplane: ControlPlane, node: StandInNode) -> None:
    """The watch that brings the MultusNodeStates stalled: the cache holds an older state than the
    apiserver, whose heartbeat has not moved for ten intervals. Before it takes the ready label the
    controller reads the state from the apiserver; the cache was behind, so the verdict is
    NodeStateBehind and the label stays. The node is looked at again after one agent interval, whatever
    the cache did with the state read (it refuses one it takes for older, after an etcd restore, and
    then nothing else brought the look back), and that look judges the state the apiserver holds."""
    from webhook.cluster.store import AGENT_POD, NODE, NODE_STATE, ClusterStore
    from webhook.controller import decide
    from webhook.controller.controller import Controller, ControllerConfig
    from webhook.kube import load_client

    cp = controlplane

    def get(*what: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(cp.kubectl("get", *what, "-o", "json").stdout)
        return got

    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(node.name, NAMESPACE)))
    try:
        write_heartbeat(cp, node, utcnow())
        cp.kubectl("label", "node", node.name, f"{READY_LABEL}=true")
        cp.kubectl("label", "pod", "-n", NAMESPACE, node.agent_pod, f"{READY_LABEL}=true")
        store = ClusterStore()
        store.upsert(NODE, get("node", node.name))
        store.upsert(AGENT_POD, get("pod", "-n", NAMESPACE, node.agent_pod))
        store.upsert(NODE_STATE, get("mns", "-n", NAMESPACE, node.name))  # the watch's last event
        write_heartbeat(cp, node, utcnow(), stopped=True)  # the agent's last word, which the watch does not bring
        controller = Controller(load_client(str(cp.kubeconfig)), ControllerConfig(agent_interval=1), store)

        def look(heartbeat: decide.Heartbeat, now: float) -> float | None:
            return controller.reconcile_node(store.node_object(node.name) or {}, store.node_state(node.name),
                                             store.agent_pods(node.name), heartbeat, now)

        held = store.node_state(node.name)
        assert held is not None
        now = time.monotonic()
        unchanged = decide.Heartbeat(held["status"]["heartbeatTime"], now - 10, True)
        assert look(unchanged, now) == 1
        assert ready(node)
        assert "MultusNotReady" not in reasons(node)
        fresh = store.node_state(node.name)
        assert fresh is not None
        assert fresh["status"]["multusReady"] is False

        assert look(decide.observe(unchanged, fresh, now + 1), now + 1) is None
        assert not_ready(node)
        # Events are sent from a thread of their own, after the look.
        [down] = eventually(lambda: [e["message"] for e in node.events() if e["reason"] == "MultusNotReady"],
                            what="the MultusNotReady Event")
        assert down.startswith("the agent stopped; removed label"), down
    finally:
        cp.kubectl("delete", "mns", "-n", NAMESPACE, node.name, "--wait=false", check=False)


def test_serve_runs_the_controller_on_its_own_cache_in_its_one_namespace(
        controlplane: ControlPlane, host: StandInHost, tmp_path: Path) -> None:
    """As deployed: the controller inside `serve` decides from the webhook's cache, and --namespace is
    where both read the MultusNodeStates and the agent pods, and where the Lease is."""
    cp = controlplane
    ns = f"mw-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "namespace", ns)
    node = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1", namespace=ns)
    # An agent pod in the default namespace is somebody else's: the controller never labels it.
    stray = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    host.make_ready("boot-1")
    (tmp_path / "serve").mkdir()
    server = WebhookServer(tmp_path / "serve", [
        "--kubeconfig", str(cp.kubeconfig), "--namespace", ns, "--agent-interval", "1", "--lease-name", "embedded",
        "--identity", "serve-1", "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5"])
    agent = start_agent(cp, host, node, tmp_path / "agent.log", "--namespace", ns)
    server.start()
    try:
        labels_are(node, INITIAL)
        assert lease_holder(cp, "embedded", ns) == "serve-1"
        # The controller's metrics, beside the webhook's (the nodes of other tests count too).
        status, text = server.get("/metrics")
        assert status == 200, text
        samples = {(s.name, *sorted(s.labels.values())): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        assert samples[("multus_webhook_controller_leader",)] == 1
        assert samples[("multus_webhook_nodes", "MultusReady", "true")] >= 1
        assert samples[("multus_webhook_events_dropped_total",)] == 0
        assert samples[("multus_webhook_pod_repairs_total", "evicted")] == 0
        agent.kill()  # no goodbye: only the heartbeat going stale tells
        eventually(lambda: not_ready(node), timeout=10, what="label removed on staleness")
        agent = start_agent(cp, host, node, tmp_path / "agent.log", "--namespace", ns)
        eventually(lambda: ready(node), what="ready again")
        assert stray.agent_labels() == {}
    finally:
        agent.stop()
        assert server.stop() == 0, (tmp_path / "serve" / "webhook.log").read_text()
        node.delete()
        stray.delete()


def test_the_controllers_own_store_lists_nodes_and_states_in_pages_and_keeps_only_what_it_reads(
        controlplane: ControlPlane) -> None:
    """What `multus-webhook controller` decides from: a LiveClusterView of Nodes, MultusNodeStates and
    agent pods only."""
    from webhook.agent import nodestate
    from webhook.cluster.live import LiveClusterView
    from webhook.cluster.store import AGENT_POD, NODE, NODE_STATE
    from webhook.controller.controller import KINDS
    from webhook.kube import load_client

    cp = controlplane
    ns = f"states-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "namespace", ns)
    states = [{"apiVersion": f"{nodestate.GROUP}/{nodestate.VERSION}", "kind": "MultusNodeState",
               "metadata": {"name": f"n{i}", "namespace": ns}} for i in range(5)]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": states}))
    #: The MultusNodeStates' lists, each as the number of items of its pages once its last page is in.
    lists: list[list[int]] = []
    reading: list[int] = []
    limits: set[str] = set()

    class Counting(LiveClusterView):
        def _get_json(self, path: str, query: list[tuple[str, str]], accept: str) -> Any:
            body = super()._get_json(path, query, accept)
            if path.endswith("/multusnodestates"):  # only its own thread lists them: no lock needed
                limits.update(v for k, v in query if k == "limit")
                if not any(k == "continue" for k, _ in query):
                    reading.clear()
                reading.append(len(body.get("items") or []))
                if not (body.get("metadata") or {}).get("continue"):
                    lists.append(list(reading))
            return body

    view = Counting(load_client(str(cp.kubeconfig)), state_namespace=ns, kinds=KINDS, page_size=2)
    view.start()
    try:
        eventually(lambda: view.known, "the controller's store synced")
        assert [r.kind for r in view.resources] == [NODE, NODE_STATE, AGENT_POD]
        # Every list read (a watch that fails at any time, 410 Gone, has it listed again) took three pages.
        assert limits == {"2"}
        assert lists, "no list of MultusNodeStates read to its end"
        assert all(pages == [2, 2, 1] for pages in lists), lists
        kept = view.objects(NODE_STATE)
        assert sorted(o["metadata"]["name"] for o in kept) == [f"n{i}" for i in range(5)]
        # kubectl apply left managedFields and its last-applied copy: neither is kept.
        assert all(set(o["metadata"]) <= {"name", "namespace", "uid", "resourceVersion"} for o in kept)
    finally:
        view.stop()


def test_a_patch_decided_for_an_agent_pod_never_lands_on_another_of_the_same_name(
        controlplane: ControlPlane, node: StandInNode) -> None:
    """The controller's patch carries the pod's uid: a pod made again under the name meanwhile (its watch
    events not seen yet) refuses it, and the controller leaves the pod to its next look."""
    from webhook.cluster.nodes import slim_agent_pod
    from webhook.cluster.store import ClusterStore
    from webhook.controller.controller import Controller, ControllerConfig
    from webhook.kube import load_client

    cp = controlplane
    seen = slim_agent_pod(json.loads(cp.kubectl("get", "pod", "-n", NAMESPACE, node.agent_pod, "-o", "json").stdout))
    node.recreate_agent_pod()
    controller = Controller(load_client(str(cp.kubeconfig)), ControllerConfig(), ClusterStore())
    controller._label_agent(seen, {READY_LABEL: "true"})  # no error: the pod's next look will label it
    assert node.agent_labels() == {}
    current = slim_agent_pod(json.loads(cp.kubectl("get", "pod", "-n", NAMESPACE, node.agent_pod, "-o", "json").stdout))
    controller._label_agent(current, {READY_LABEL: "true"})
    assert node.agent_labels() == {READY_LABEL: "true"}


def test_an_agent_pod_an_admission_policy_refuses_to_label_holds_up_neither_its_node_nor_the_others(
        controlplane: ControlPlane, host: StandInHost, tmp_path: Path) -> None:
    """A refusal by admission (here a ValidatingAdmissionPolicy for one agent pod) is that pod's: its node
    is labelled all the same (the node-affinity gate reads the node), and the other nodes' agent pods
    are labelled, unlike a refusal by RBAC, which holds back every agent pod for a while."""
    cp = controlplane
    cp.kubectl("create", "namespace", NAMESPACE, check=False)
    refused = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    other = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    policy = f"refuse-{refused.name}"
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
             {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods"]}]},
             "validations": [{"expression": f"object.metadata.name != '{refused.agent_pod}' || "
                                            "object.metadata.labels == oldObject.metadata.labels",
                              "message": "these labels are frozen", "reason": "Forbidden"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy}, "spec": {"policyName": policy, "validationActions": ["Deny"]}}]}))
    other_host = StandInHost()
    controller = agents = None
    try:
        eventually(lambda: cp.kubectl("label", "pod", "-n", NAMESPACE, refused.agent_pod, "--overwrite",
                                      f"probe={uuid.uuid4().hex[:8]}", check=False).stderr,
                   "the policy in force", until=lambda err: "these labels are frozen" in err)
        host.make_ready("boot-1")
        other_host.make_ready("boot-1")
        lease = f"lease-{uuid.uuid4().hex[:8]}"
        controller = start_controller(cp, lease, "only", tmp_path / "controller.log")
        agents = [start_agent(cp, host, refused, tmp_path / "agent-1.log"),
                  start_agent(cp, other_host, other, tmp_path / "agent-2.log")]
        eventually(lambda: ready(other), what="the other node and its agent pod labelled")
        eventually(lambda: READY_LABEL in refused.own_labels(), what="the refused agent pod's node labelled")
        assert refused.agent_labels() == {}
        assert "these labels are frozen" in controller.output()
        assert "Role needs the verb patch" not in controller.output()
    finally:
        for agent in agents or ():
            agent.stop()
        if controller is not None:
            controller.stop()
        other_host.cleanup()
        cp.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False)
        for n in (refused, other):
            cp.kubectl("delete", "mns", "-n", NAMESPACE, n.name, "--wait=false", check=False)
            n.delete()


def state_exists(cp: ControlPlane, name: str) -> bool:
    return cp.kubectl("get", "mns", "-n", NAMESPACE, name, "--ignore-not-found", "-o", "name").stdout.strip() != ""


def test_the_states_of_nodes_that_are_gone_are_deleted(controlplane: ControlPlane, host: StandInHost,
                                                       node: StandInNode, tmp_path: Path) -> None:
    """The agents create the MultusNodeStates and nothing else removes them (no owner reference: the
    agent may not read its Node, and garbage collection needs one): the controller deletes the state of
    a node that is gone, one left from before it started as well as one whose Node goes while it runs.
    The state of a node that is there stays."""
    cp = controlplane
    ghost = f"gone-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(ghost, NAMESPACE)))
    other = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(other.name, NAMESPACE)))
    host.make_ready("boot-1")
    agent = start_agent(cp, host, node, tmp_path / "agent.log")
    controller = start_controller(cp, f"lease-{uuid.uuid4().hex[:8]}", "only", tmp_path / "controller.log")
    try:
        labels_are(node, INITIAL)
        eventually(lambda: not state_exists(cp, ghost), what="the state of a node gone before the start deleted")
        # The agent would write its state again (until its pod, bound to a node that is gone, is
        # deleted), and the controller would delete it again.
        assert agent.stop() == 0
        node.delete()
        eventually(lambda: not state_exists(cp, node.name), what="the state of a node deleted meanwhile deleted")
        assert state_exists(cp, other.name)
        assert f"deleted MultusNodeState {NAMESPACE}/{ghost}: node {ghost} is gone" in controller.output()
        assert f"deleted MultusNodeState {NAMESPACE}/{node.name}: node {node.name} is gone" in controller.output()
    finally:
        agent.stop()
        assert controller.stop() == 0, controller.output()
        cp.kubectl("delete", "mns", "-n", NAMESPACE, ghost, other.name, "--ignore-not-found", check=False)
        other.delete()


def test_a_node_the_cache_has_not_seen_keeps_its_state_and_a_state_made_again_is_not_deleted(
        controlplane: ControlPlane, node: StandInNode) -> None:
    """The cache may lack a Node the apiserver has (made while its watch was behind or out of contact):
    the apiserver is asked before the state goes. And the deletion names the uid of the state found
    gone, so one made since under the name (the node came back and its agent wrote) stays."""
    from webhook.cluster.store import NODE_STATE, ClusterStore
    from webhook.controller.controller import Controller, ControllerConfig
    from webhook.kube import load_client

    cp = controlplane

    def state() -> dict[str, Any]:
        got: dict[str, Any] = json.loads(cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o", "json").stdout)
        return got

    cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(node.name, NAMESPACE)))
    try:
        store = ClusterStore()  # holds the state, not the Node
        store.upsert(NODE_STATE, state())
        controller = Controller(load_client(str(cp.kubeconfig)), ControllerConfig(), store)
        controller._delete_state(node.name)
        assert state_exists(cp, node.name), "deleted while its Node exists"

        cp.kubectl("delete", "node", node.name)
        cp.kubectl("delete", "mns", "-n", NAMESPACE, node.name)
        cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(node.name, NAMESPACE)))
        again = state()["metadata"]["uid"]
        controller._delete_state(node.name)  # the store still holds the one deleted
        assert state()["metadata"]["uid"] == again, "a state made since was deleted"

        store.upsert(NODE_STATE, state())
        controller._delete_state(node.name)
        assert not state_exists(cp, node.name)
    finally:
        cp.kubectl("delete", "mns", "-n", NAMESPACE, node.name, "--ignore-not-found", check=False)


def test_a_refused_state_deletion_is_logged_and_holds_back_the_others_for_a_while(
        controlplane: ControlPlane, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the verb (new image, old RBAC) the refusal is an error naming it, and the other states of
    nodes that are gone wait as long as the refused one: one refused request per wait, not one per state
    (a scale-down leaves many)."""
    import logging

    from webhook.cluster.store import NODE_STATE, ClusterStore
    from webhook.controller import controller as controller_module
    from webhook.kube import load_client

    cp = controlplane
    cp.kubectl("create", "namespace", NAMESPACE, check=False)
    user = f"no-delete-{uuid.uuid4().hex[:8]}"
    names = [f"gone-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": user},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}]}))
    api = load_client(str(cp.kubeconfig))
    api.set_default_header("Impersonate-User", user)
    calls: list[tuple[str, str]] = []
    real = controller_module.request

    def recorded(api: Any, method: str, path: str, **kw: Any) -> Any:
        calls.append((method, path))
        return real(api, method, path, **kw)

    monkeypatch.setattr(controller_module, "request", recorded)
    caplog.set_level(logging.INFO, logger=controller_module.__name__)
    try:
        store = ClusterStore()
        for name in names:
            cp.kubectl("create", "-f", "-", input=json.dumps(nodestate.new_object(name, NAMESPACE)))
            store.upsert(NODE_STATE, json.loads(cp.kubectl("get", "mns", "-n", NAMESPACE, name, "-o", "json").stdout))
        controller = controller_module.Controller(api, controller_module.ControllerConfig(), store)
        for name in names:
            controller._delete_state(name)
        assert [m for m, _ in calls] == ["GET", "DELETE"], calls  # the second state waits
        assert all(state_exists(cp, name) for name in names)
        [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert f"refused to delete MultusNodeState {NAMESPACE}/{names[0]} of node {names[0]}" in error
        assert "Role needs the verb delete on multusnodestates" in error
        assert sorted(n for _, n in controller._deadlines) == sorted(names)  # both tried again after the wait
    finally:
        api.close()
        cp.kubectl("delete", "mns", "-n", NAMESPACE, *names, "--ignore-not-found", check=False)
        cp.kubectl("delete", "clusterrolebinding,clusterrole", user, check=False)
