"""The opt-in repair against the real apiserver: pods bound to a node that comes back from a reboot
without their secondary networks. No kubelet and no kube-controller-manager run: the test writes the
pods' status as a kubelet would, and nothing recreates a deleted pod (a bound pod stays, terminating,
until its kubelet confirms; that is what "deleted" looks like here)."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

import webhook.controller.controller as controller_module
from webhook.agent.nodestate import NAMESPACE
from webhook.agent.standin import StandInHost, StandInNode, Subcommand, multus_config_delegating_to
from webhook.cluster.live import LiveClusterView
from webhook.cluster.store import NODE, NODE_STATE
from webhook.controller.controller import Controller, ControllerConfig
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.kube import format_time, load_client, parse_time, utcnow
from webhook.names import BINARY_LABEL_PREFIX, READY_LABEL

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NETWORKS = "macvlan-network, bridge-network-with-gateway@br1"


def full_status(namespace: str) -> list[dict[str, Any]]:
    return [{"name": "cilium", "interface": "eth0", "default": True},
            {"name": f"{namespace}/macvlan-network", "interface": "net1"},
            {"name": f"{namespace}/bridge-network-with-gateway", "interface": "br1"}]


@pytest.fixture
def node(controlplane: ControlPlane) -> Iterator[StandInNode]:
    controlplane.kubectl("create", "namespace", NAMESPACE, check=False)
    n = StandInNode(controlplane, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    yield n
    n.delete()


@pytest.fixture
def workload(controlplane: ControlPlane, namespace: str) -> dict[str, Any]:
    """The NADs the pods ask for, and a ReplicaSet to own some of them; returns the ReplicaSet."""
    nads = [d for f in ("macvlan-network.yaml", "bridge-network.yaml")
            for d in yaml.safe_load_all((EXAMPLES / f).read_text()) if d and d["kind"] == "NetworkAttachmentDefinition"]
    # A result of cniVersion 0.2.0 lists no interfaces, so Multus writes no network-status entry for it.
    nads.append({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                 "metadata": {"name": "legacy-network"},
                 "spec": {"config": json.dumps({"cniVersion": "0.2.0", "name": "legacy", "type": "macvlan",
                                                "master": "eth0", "ipam": {"type": "static"}})}})
    controlplane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({"kind": "List", "apiVersion": "v1",
                                                                                "items": nads}))
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    out = controlplane.kubectl("create", "-n", namespace, "-f", "-", "-o", "json", input=json.dumps(rs)).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def make_pod(cp: ControlPlane, namespace: str, node: StandInNode, name: str, *, owner: dict[str, Any] | None,
             networks: str | None = NETWORKS, status: list[dict[str, Any]] | None = None) -> None:
    annotations = {}
    if networks is not None:
        annotations["k8s.v1.cni.cncf.io/networks"] = networks
    if status is not None:
        annotations["k8s.v1.cni.cncf.io/network-status"] = json.dumps(status)
    meta: dict[str, Any] = {"name": name, "labels": {"app": "web"}, "annotations": annotations}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
           "spec": {"nodeName": node.name, "containers": [{"name": "c", "image": "busybox"}]}}
    cp.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))


def set_sandbox_time(cp: ControlPlane, namespace: str, name: str, moment: str) -> None:
    """What the kubelet writes when it has made the pod's sandbox."""
    status = {"phase": "Running", "startTime": moment, "conditions": [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": moment}]}
    cp.kubectl("patch", "pod", "-n", namespace, name, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": status}))


def set_no_sandbox(cp: ControlPlane, namespace: str, name: str, moment: str) -> None:
    """What the kubelet writes while the pod waits for its sandbox (the runtime retries it)."""
    status = {"phase": "Pending", "startTime": moment, "conditions": [
        {"type": "PodReadyToStartContainers", "status": "False", "lastTransitionTime": moment}]}
    cp.kubectl("patch", "pod", "-n", namespace, name, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": status}))


def node_state(cp: ControlPlane, node: StandInNode) -> dict[str, Any]:
    out = cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o", "jsonpath={.status}", check=False).stdout
    result: dict[str, Any] = json.loads(out) if out else {}
    return result


def ready_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def terminating(cp: ControlPlane, namespace: str, name: str) -> bool:
    out = cp.kubectl("get", "pod", "-n", namespace, name, "-o", "jsonpath={.metadata.deletionTimestamp}",
                     check=False)
    return out.returncode != 0 or bool(out.stdout)


def pod_events(cp: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    out = cp.kubectl("get", "events", "-n", namespace, "--field-selector",
                     f"involvedObject.kind=Pod,involvedObject.name={name}", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def agent(cp: ControlPlane, host: StandInHost, node: StandInNode, log: Path) -> Subcommand:
    return Subcommand(["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node.name,
                       "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2"], log).start()


def controller(cp: ControlPlane, log: Path, *extra: str) -> Subcommand:
    return Subcommand(["controller", "--kubeconfig", str(cp.kubeconfig), "--agent-interval", "1",
                       "--lease-name", f"lease-{uuid.uuid4().hex[:8]}", "--lease-duration", "3",
                       "--renew-deadline", "2", "--retry-period", "0.5", "--repair", *extra], log).start()


_probes = itertools.count()


def caught_up(host: StandInHost, node: StandInNode) -> None:
    """Returns once the controller process has made a whole look at ``node`` that began after the call,
    its repair step included: whatever it would do to the node's pods as things are, it has done. A
    CNI binary added to the node is labelled by a look that begins after it was added; a second one,
    added once that label is on, is labelled by a later look, which begins only after the first has
    ended (one thread looks at the nodes, one at a time, labels first, then the repair)."""
    for _ in range(2):
        probe = f"probe-{next(_probes)}"
        host.add_binary(probe)
        eventually(lambda key=BINARY_LABEL_PREFIX + probe: key in node.own_labels(),
                   what=f"the controller's look at the node after {probe} was added")


def looks_after(ctl: Controller, node: StandInNode) -> None:
    """Returns once the in-process controller has finished a look at ``node`` that began after the look
    under way at the call (a deletion in it, say) had ended: two looks on newer heartbeats than the
    one its last finished look took in (the agent writes one every second, and each is a change that
    makes it look again)."""
    def beat() -> object:
        seen = ctl.looked.get(node.name)
        return None if seen is None or seen[1] is None else (seen[1].get("status") or {}).get("heartbeatTime")

    last = beat()
    for _ in range(2):
        last = eventually(beat, what="the controller's next look at the node",
                          until=lambda b, before=last: b is not None and b != before)


def test_after_a_reboot_owned_pods_missing_a_network_are_deleted(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Only pods whose sandbox exists can lack networks: a pod waiting for its sandbox, such as the
    replacement a deletion causes, is no damage however empty its network-status."""
    cp = controlplane
    host.make_ready("boot-1")
    ctl = controller(cp, tmp_path / "controller.log")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    try:
        eventually(lambda: READY_LABEL in node.own_labels(), what="ready on boot-1")
        caught_up(host, node)  # the repair of boot-1 is over: it lists pods on that boot no more
        short = full_status(namespace)[:2]
        make_pod(cp, namespace, node, "owned-missing", owner=workload, status=short)
        make_pod(cp, namespace, node, "bare-missing", owner=None, status=short)
        make_pod(cp, namespace, node, "owned-complete", owner=workload, status=full_status(namespace))
        make_pod(cp, namespace, node, "owned-no-networks", owner=workload, networks=None)
        for name in ("owned-missing", "bare-missing", "owned-complete", "owned-no-networks"):
            set_sandbox_time(cp, namespace, name, format_time(utcnow()))
        # Repair happens when a node is ready again on a new boot, not for pods placed meanwhile.
        caught_up(host, node)
        assert not terminating(cp, namespace, "owned-missing")

        ag.kill()
        host.stop_daemon()
        host.set_boot_id("boot-2")
        node.reboot("boot-2")
        eventually(lambda: READY_LABEL not in node.own_labels(), what="not ready after the reboot")
        # The kubelet on boot-2 before Multus is back: two sandboxes made with the primary network only
        # (their network-status is left from boot-1), one waiting for its sandbox, and a replacement pod
        # of the ReplicaSet that no kubelet has taken up yet.
        moment = format_time(utcnow())
        for name in ("owned-missing", "bare-missing"):
            set_sandbox_time(cp, namespace, name, moment)
        set_no_sandbox(cp, namespace, "owned-complete", moment)
        make_pod(cp, namespace, node, "owned-replacement", owner=workload)
        # Wired once Multus is back (a sandbox time past its readiness), on a network Multus never lists.
        make_pod(cp, namespace, node, "owned-legacy", owner=workload, networks="legacy-network",
                 status=full_status(namespace)[:1])
        set_sandbox_time(cp, namespace, "owned-legacy", format_time(utcnow() + timedelta(minutes=5)))
        ag = agent(cp, host, node, tmp_path / "agent.log")
        # The probe labels need the agent's report on boot-2: the controller has seen Multus not ready
        # there, with the pods as the kubelet left them.
        caught_up(host, node)
        assert not terminating(cp, namespace, "owned-missing")  # Multus is not back yet
        host.start_daemon()

        eventually(lambda: terminating(cp, namespace, "owned-missing"), what="owned-missing deleted")
        events = eventually(lambda: pod_events(cp, namespace, "bare-missing"), what="bare-missing reported")
        assert [(e["type"], e["reason"]) for e in events] == [("Warning", "MultusNetworksMissing")]
        assert events[0]["message"] == (
            f"its network-status lacks {namespace}/bridge-network-with-gateway@br1; not evicted because no "
            "controller would recreate it: delete it to get its networks back")
        repaired = pod_events(cp, namespace, "owned-missing")
        assert [e["reason"] for e in repaired] == ["MultusNetworksRepaired"]
        assert repaired[0]["message"].endswith("; evicted so that ReplicaSet/web recreates it with its networks")
        caught_up(host, node)  # the pass that deleted owned-missing judged the rest of the node's pods too
        for name in ("bare-missing", "owned-complete", "owned-no-networks", "owned-replacement", "owned-legacy"):
            assert not terminating(cp, namespace, name), name
    finally:
        ag.stop()
        assert ctl.stop() == 0, ctl.output()


def reboot_under_a_dead_agent(cp: ControlPlane, host: StandInHost, node: StandInNode, log: Path) -> None:
    """An agent reported boot-0 and died; the node is on boot-1 now: the next agent's status is the
    first word about that boot."""
    host.make_ready("boot-0")
    ag = agent(cp, host, node, log)
    try:
        eventually(lambda: node_state(cp, node).get("bootID") == "boot-0", what="the agent on boot-0")
    finally:
        ag.kill()
    host.set_boot_id("boot-1")


def test_pods_whose_sandbox_predates_multus_on_this_boot_are_stale_whatever_the_agent_did_since(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The controller starts after the node is ready on its boot (it was restarted, or another replica
    took over), and after the agent was restarted on that boot (a DaemonSet rollout, which leaves
    Ready=False behind): pods whose network-status lists everything but whose sandbox was made before
    Multus FIRST became ready on this boot are stale, those made after are not, though the Ready
    condition changed after them. With a burst of one and a slow rate, only one deletion happens."""
    cp = controlplane
    reboot_under_a_dead_agent(cp, host, node, tmp_path / "agent.log")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    ctl: Subcommand | None = None
    try:
        first = eventually(lambda: node_state(cp, node), until=lambda s: bool(s.get("firstReadyTime")),
                           what="Multus first ready on boot-1")
        assert first["firstReadyBootID"] == "boot-1"
        since = parse_time(first["firstReadyTime"])
        assert since is not None
        before, after = format_time(since - timedelta(seconds=60)), format_time(since + timedelta(seconds=1))
        full = full_status(namespace)
        for name, owner, moment in [("stale-1", workload, before), ("stale-2", workload, before),
                                    ("fresh", workload, after), ("bare-stale", None, before)]:
            make_pod(cp, namespace, node, name, owner=owner, status=full)
            set_sandbox_time(cp, namespace, name, moment)

        # The agent's restart comes after "fresh" was made, as it would on a node (a fast machine can
        # otherwise restart it within the second).
        eventually(lambda: utcnow() > since + timedelta(seconds=1.5), what="a moment after 'fresh'")
        assert ag.stop() == 0
        assert ready_condition(node_state(cp, node))["reason"] == "AgentStopped"
        ag = agent(cp, host, node, tmp_path / "agent.log")
        again = eventually(lambda: node_state(cp, node), until=lambda s: bool(s.get("multusReady")),
                           what="ready again after the agent's restart")
        assert ready_condition(again)["lastTransitionTime"] > after  # "fresh" is older than the Ready condition
        assert (again["firstReadyBootID"], again["firstReadyTime"]) == ("boot-1", first["firstReadyTime"])

        ctl = controller(cp, tmp_path / "controller.log", "--repair-burst", "1", "--repair-rate", "0.001")
        eventually(lambda: terminating(cp, namespace, "stale-1") or terminating(cp, namespace, "stale-2"),
                   what="a stale pod deleted")
        eventually(lambda: pod_events(cp, namespace, "bare-stale"), what="bare-stale reported")
        caught_up(host, node)  # looks that met the empty bucket again
        assert [terminating(cp, namespace, n) for n in ("stale-1", "stale-2")].count(True) == 1
        assert not terminating(cp, namespace, "fresh")
        assert not terminating(cp, namespace, "bare-stale")
        message = pod_events(cp, namespace, "bare-stale")[0]["message"]
        assert "before Multus became ready on this boot" in message
    finally:
        ag.stop()
        if ctl is not None:
            assert ctl.stop() == 0, ctl.output()


def test_sandboxes_made_after_multus_became_ready_but_before_the_agent_saw_it_are_not_stale(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """At boot the Multus daemon re-creates the socket directory the agent had mounted, and the agent
    restarts and waits out the kubelet's back-off (10s to 5min) while the kubelet makes the node's
    sandboxes again, through Multus. The agent that then sees Multus ready dates the first readiness
    from the host (the daemon's socket; its config is left from the boot before), not from its own
    look: a sandbox made in between is not stale, one made before Multus was ready is."""
    cp = controlplane
    reboot_under_a_dead_agent(cp, host, node, tmp_path / "agent.log")
    ag: Subcommand | None = None
    ctl: Subcommand | None = None
    try:
        host.restart_daemon()  # the daemon on boot-1: its socket made now
        socket_made = host.path(host.layout.multus_socket).stat().st_ctime
        conf = host.path(host.layout.cni_conf_dir) / host.layout.multus_config
        os.utime(conf, (socket_made - 600, socket_made - 600))  # 00-multus.conf is left from boot-0
        became_ready = datetime.fromtimestamp(socket_made, UTC)
        # The kubelet's times are whole seconds; "between" is in a later second than the socket.
        eventually(lambda: utcnow() >= became_ready.replace(microsecond=0) + timedelta(seconds=1),
                   what="the second after Multus became ready")
        between = utcnow().replace(microsecond=0)
        for name, moment in [("stale", became_ready - timedelta(seconds=60)), ("between", between)]:
            make_pod(cp, namespace, node, name, owner=workload, status=full_status(namespace))
            set_sandbox_time(cp, namespace, name, format_time(moment.replace(microsecond=0)))
        eventually(lambda: utcnow() > between + timedelta(seconds=1.5), what="the agent's restart back-off")

        ag = agent(cp, host, node, tmp_path / "agent.log")
        first = eventually(lambda: node_state(cp, node), what="Multus first ready on boot-1",
                           until=lambda s: s.get("firstReadyBootID") == "boot-1" and bool(s.get("firstReadyTime")))
        assert first["firstReadyTime"] == format_time(became_ready.replace(microsecond=0))
        ctl = controller(cp, tmp_path / "controller.log")
        eventually(lambda: terminating(cp, namespace, "stale"), what="the pod made before Multus deleted")
        caught_up(host, node)  # the pass that deleted it judged "between" too
        assert not terminating(cp, namespace, "between")
    finally:
        if ag is not None:
            ag.stop()
        if ctl is not None:
            assert ctl.stop() == 0, ctl.output()


def test_pods_wired_while_the_multus_daemon_restarted_on_the_same_boot_are_repaired(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """A rollout or a crash of the Multus daemon takes its config away until it is back: meanwhile the
    runtime wires new sandboxes with the primary network alone, and Multus writes no network-status
    for them. Once the daemon is back (a later readyTime on the same boot) the node's pods are judged
    again, and listed once more an agent interval later for a sandbox whose status the kubelet sent
    late; pods wired through Multus before the restart are left alone."""
    cp = controlplane
    reboot_under_a_dead_agent(cp, host, node, tmp_path / "agent.log")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    ctl = controller(cp, tmp_path / "controller.log", "--agent-interval", "5")
    try:
        before = eventually(lambda: node_state(cp, node), what="Multus ready on boot-1",
                            until=lambda s: s.get("firstReadyBootID") == "boot-1" and bool(s.get("firstReadyTime")))
        assert before["readyTime"] == before["firstReadyTime"]
        eventually(lambda: READY_LABEL in node.own_labels(), what="ready on boot-1")
        make_pod(cp, namespace, node, "healthy", owner=workload, status=full_status(namespace))
        set_sandbox_time(cp, namespace, "healthy", format_time(utcnow()))
        caught_up(host, node)  # the repair of the first run is over
        assert not terminating(cp, namespace, "healthy")

        host.stop_daemon()
        host.remove_config(host.layout.multus_config)  # as the daemon does on its way out
        eventually(lambda: READY_LABEL not in node.own_labels(), what="not ready while the daemon restarts")
        gap_time = utcnow()
        gap = format_time(gap_time)
        for name in ("wired-in-the-gap", "reported-late"):
            make_pod(cp, namespace, node, name, owner=workload)
        set_sandbox_time(cp, namespace, "wired-in-the-gap", gap)
        set_no_sandbox(cp, namespace, "reported-late", gap)
        # File times are whole seconds on some file systems: the run that begins is in a later second.
        eventually(lambda: utcnow() > gap_time + timedelta(seconds=1), what="a second after the gap")
        host.restart_daemon()
        host.write_config(host.layout.multus_config, multus_config_delegating_to("05-cilium.conflist"))

        after = eventually(lambda: node_state(cp, node), what="Multus ready again on boot-1",
                           until=lambda s: bool(s.get("readyTime")) and s["readyTime"] != before["readyTime"])
        assert (after["firstReadyBootID"], after["firstReadyTime"]) == ("boot-1", before["firstReadyTime"])
        eventually(lambda: terminating(cp, namespace, "wired-in-the-gap"), what="the pod wired in the gap evicted")
        # The kubelet's status of the other sandbox made in the gap arrives after the run's first list.
        assert not terminating(cp, namespace, "reported-late")
        set_sandbox_time(cp, namespace, "reported-late", gap)
        eventually(lambda: terminating(cp, namespace, "reported-late"), what="the late one evicted at the recheck")
        caught_up(host, node)
        assert not terminating(cp, namespace, "healthy")
        assert "Multus is ready again on boot boot-1" in ctl.output()
    finally:
        ag.stop()
        assert ctl.stop() == 0, ctl.output()


def test_the_first_readiness_on_a_boot_an_agent_did_not_see_begin_is_not_guessed(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """An agent that finds no MultusNodeState (a new install on running nodes) cannot tell when Multus
    became ready on this boot: pods made long before are not judged stale by a guess."""
    cp = controlplane
    host.make_ready("boot-1")
    make_pod(cp, namespace, node, "old", owner=workload, status=full_status(namespace))
    set_sandbox_time(cp, namespace, "old", format_time(utcnow() - timedelta(days=1)))
    ag = agent(cp, host, node, tmp_path / "agent.log")
    ctl = controller(cp, tmp_path / "controller.log")
    try:
        eventually(lambda: READY_LABEL in node.own_labels(), what="ready on boot-1")
        status = node_state(cp, node)
        assert "firstReadyTime" not in status
        assert "firstReadyBootID" not in status
        caught_up(host, node)  # the look that made the node ready, its repair included, is over
        assert not terminating(cp, namespace, "old")
    finally:
        ag.stop()
        assert ctl.stop() == 0, ctl.output()


@contextlib.contextmanager
def in_process_controller(api: Any, **settings: Any) -> Iterator[tuple[Controller, list[tuple[str, str, str]]]]:
    """A running Controller with repair on, in this process, and its requests (not the Lease's) as
    (method, path, fieldSelector), recorded while they go to the apiserver as they are."""
    calls: list[tuple[str, str, str]] = []
    real = controller_module.request

    def recorded(api: Any, method: str, path: str, **kw: Any) -> Any:
        calls.append((method, path, dict(kw.get("query") or ()).get("fieldSelector", "")))
        return real(api, method, path, **kw)

    view = LiveClusterView(api, state_namespace=NAMESPACE, kinds=(NODE, NODE_STATE))
    view.start()
    ctl = Controller(api, ControllerConfig(**{"agent_interval": 1, "lease_name": f"lease-{uuid.uuid4().hex[:8]}",
                                              "identity": "in-process", "lease_duration": 3, "renew_deadline": 2,
                                              "retry_period": 0.5, "repair": True, **settings}), view)
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    controller_module.request = recorded
    thread.start()
    try:
        yield ctl, calls
    finally:
        stop.set()
        thread.join(15)
        controller_module.request = real
        view.stop()


def damaged_pods(cp: ControlPlane, namespace: str, node: StandInNode, workload: dict[str, Any],
                 names: tuple[str, ...] = ("short-1", "short-2")) -> None:
    """Pods of ``workload`` whose network-status lacks a network, their sandbox made now."""
    for name in names:
        make_pod(cp, namespace, node, name, owner=workload, status=full_status(namespace)[:2])
        set_sandbox_time(cp, namespace, name, format_time(utcnow()))


def test_a_repair_waiting_for_the_rate_limit_lists_the_pods_once(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    cp = controlplane
    damaged_pods(cp, namespace, node, workload)
    host.make_ready("boot-1")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    try:
        with in_process_controller(load_client(str(cp.kubeconfig)), repair_burst=1, repair_rate=0.001) as (ctl, calls):
            eventually(lambda: terminating(cp, namespace, "short-1"), what="one pod deleted")
            looks_after(ctl, node)  # the next token comes in 1,000s
            listed = [c for c in calls if c[2] == f"spec.nodeName={node.name}"]
            deleted = [c for c in calls if c[1].endswith("/eviction")]
            assert len(listed) == 1, listed
            assert deleted == [("POST", f"/api/v1/namespaces/{namespace}/pods/short-1/eviction", "")]
            assert not terminating(cp, namespace, "short-2")

            # What the controller keeps about a node goes with the boot, and with the node.
            assert ctl.repairs[node.name].boot == "boot-1"
            node.reboot("boot-2")
            host.set_boot_id("boot-2")
            eventually(lambda: ctl.repairs[node.name].boot == "boot-2", what="the repair of boot-1 forgotten")
            node.delete()
            eventually(lambda: node.name not in {*ctl.repairs, *ctl.heartbeats, *ctl.looked},
                       what="the node forgotten")
    finally:
        ag.stop()


def test_a_repair_that_may_not_delete_pods_says_so_once_and_backs_off(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """repair on, but deployed without the pod-repair component: the webhook's service account may not
    delete pods."""
    cp = controlplane
    docs = [d for d in yaml.safe_load_all(cp.kubectl("kustomize", str(MANIFESTS / "base")).stdout) if d]
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "ClusterRole", "RoleBinding",
                                             "ClusterRoleBinding")]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    damaged_pods(cp, namespace, node, workload)
    host.make_ready("boot-1")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    api = config.new_client_from_config(config_file=str(cp.kubeconfig))
    api.set_default_header("Impersonate-User", "system:serviceaccount:multus-webhook:multus-webhook")
    caplog.set_level(logging.INFO, logger=controller_module.__name__)
    try:
        # The shipped Role grants the Lease by its shipped name only.
        with in_process_controller(api, lease_name=ControllerConfig().lease_name) as (ctl, calls):
            eventually(lambda: [c for c in calls if c[1].endswith("/eviction")], what="an eviction tried")
            eventually(lambda: READY_LABEL in node.own_labels(), what="the node labelled all the same")
            looks_after(ctl, node)  # looks that would try again without the back-off
            deleted = [c for c in calls if c[1].endswith("/eviction")]
        assert len(deleted) == 1, deleted
        errors = [r.getMessage() for r in caplog.records
                  if r.name == controller_module.__name__ and r.levelno >= logging.ERROR]
        assert len(errors) == 1, errors
        assert "may not evict pods" in errors[0]
        assert "multus-webhook-pod-repair" in errors[0]
        assert "cannot create resource \"pods/eviction\"" in errors[0]
        assert not terminating(cp, namespace, "short-1")
    finally:
        api.close()
        ag.stop()


def test_evictions_keep_to_disruption_budgets_and_job_pods_are_only_reported(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plain delete would take a StatefulSet below its budget, and an evicted running Job pod counts
    against the Job's backoffLimit. No disruption controller runs here, so the apiserver finds no
    disruption allowed under the budget (429) until it is gone."""
    cp = controlplane
    monkeypatch.setattr(controller_module, "DISRUPTION_RETRY", 1.0)
    damaged_pods(cp, namespace, node, workload, ("plain", "guarded", "batch-x"))
    cp.kubectl("label", "pod", "-n", namespace, "guarded", "--overwrite", "app=guarded")
    cp.kubectl("patch", "pod", "-n", namespace, "batch-x", "--type=merge", "-p", json.dumps({"metadata": {
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "batch", "uid": str(uuid.uuid4()),
                             "controller": True}]}}))
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guarded"},
              "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}
    cp.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(budget))
    host.make_ready("boot-1")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    caplog.set_level(logging.INFO, logger=controller_module.__name__)
    try:
        with in_process_controller(load_client(str(cp.kubeconfig))) as (ctl, calls):
            eventually(lambda: terminating(cp, namespace, "plain"), what="the pod without a budget evicted")
            eventually(lambda: any("pod " + namespace + "/guarded" in r.getMessage() and "not evicted yet"
                                   in r.getMessage() for r in caplog.records), what="the budget's refusal")
            events = eventually(lambda: pod_events(cp, namespace, "batch-x"), what="the Job's pod reported")
            assert [e["reason"] for e in events] == ["MultusNetworksMissing"]
            assert "not evicted because evicting it would count as a failure against the Job's backoffLimit" \
                in events[0]["message"]
            looks_after(ctl, node)
            assert not terminating(cp, namespace, "guarded")
            assert not terminating(cp, namespace, "batch-x")
            # Evictions only, never a plain delete of a pod (the states of nodes gone are deleted besides).
            assert not [c for c in calls if c[0] == "DELETE" and "/pods/" in c[1]]
            cp.kubectl("delete", "pdb", "-n", namespace, "guarded")
            eventually(lambda: terminating(cp, namespace, "guarded"), what="evicted once the budget is gone")
            looks_after(ctl, node)
            assert not terminating(cp, namespace, "batch-x")
    finally:
        ag.stop()


def test_a_pod_whose_eviction_keeps_failing_is_given_up_and_holds_up_no_other(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The apiserver answers 500 to the eviction of a pod two PodDisruptionBudgets select, at every try:
    that pod stayed first in line, took a token every 2s and no other pod of the node was repaired. It
    stays given up when the node's pods are listed again (here while the kubelet has not rewritten
    another pod's status since the boot): it was tried once more, with one more Event, at every list."""
    cp = controlplane
    monkeypatch.setattr(controller_module, "DISRUPTION_RETRY", 0.5)
    damaged_pods(cp, namespace, node, workload, ("a-twice", "plain"))
    cp.kubectl("label", "pod", "-n", namespace, "a-twice", "--overwrite", "app=twice")
    for budget in ("one", "two"):
        cp.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": budget},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "twice"}}}}))
    booted = utcnow() - timedelta(minutes=5)
    make_pod(cp, namespace, node, "not-rewritten", owner=workload, status=full_status(namespace))
    set_sandbox_time(cp, namespace, "not-rewritten", format_time(booted - timedelta(hours=1)))
    host.set_boot_time(booted)
    host.make_ready("boot-1")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    try:
        with in_process_controller(load_client(str(cp.kubeconfig))) as (ctl, calls):
            eventually(lambda: terminating(cp, namespace, "plain"), what="the other pod evicted")
            events = eventually(lambda: pod_events(cp, namespace, "a-twice"), what="the pod given up")
            assert [e["reason"] for e in events] == ["MultusNetworksMissing"]
            assert f"the eviction was refused {controller_module.MAX_EVICTION_TRIES} times" in events[0]["message"]
            assert "more than one PodDisruptionBudget" in events[0]["message"]
            lists = len([c for c in calls if c[2] == f"spec.nodeName={node.name}"])
            eventually(lambda: len([c for c in calls if c[2] == f"spec.nodeName={node.name}"]) >= lists + 2,
                       what="the node's pods listed again")
            looks_after(ctl, node)
            tries = [c for c in calls if c[1].endswith("/a-twice/eviction")]
            assert len(tries) == controller_module.MAX_EVICTION_TRIES
            assert len(pod_events(cp, namespace, "a-twice")) == 1
            assert not terminating(cp, namespace, "a-twice")
            assert not terminating(cp, namespace, "not-rewritten")
    finally:
        ag.stop()


def test_pods_whose_status_predates_the_boot_are_judged_once_the_kubelet_has_rewritten_it(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a reboot the kubelet rewrites each pod's status when it first syncs the pod, which with many
    pods can come after Multus is ready. Until then the pod's sandbox condition is True from the boot
    before, as old as its network-status: such pods were evicted as made before Multus (or for the
    networks their old sandbox lacked), though the kubelet would have given them a new sandbox through
    Multus. The agent reports the host's boot time; those pods are judged once rewritten, and one the
    kubelet never rewrites is given up, not evicted."""
    cp = controlplane
    reboot_under_a_dead_agent(cp, host, node, tmp_path / "agent.log")
    host.restart_daemon()  # the daemon on boot-1: Multus is ready from now
    became_ready = datetime.fromtimestamp(host.path(host.layout.multus_socket).stat().st_ctime, UTC)
    booted = became_ready.replace(microsecond=0) - timedelta(seconds=120)
    host.set_boot_time(booted)
    full = full_status(namespace)
    for name, status in [("made-before-multus", full), ("made-after-multus", full), ("never-rewritten", full[:2])]:
        make_pod(cp, namespace, node, name, owner=workload, status=status)
        set_sandbox_time(cp, namespace, name, format_time(booted - timedelta(hours=3)))
    ag = agent(cp, host, node, tmp_path / "agent.log")
    caplog.set_level(logging.INFO, logger=controller_module.__name__)
    try:
        state = eventually(lambda: node_state(cp, node), what="Multus first ready on boot-1",
                           until=lambda s: s.get("firstReadyBootID") == "boot-1" and bool(s.get("firstReadyTime")))
        assert state["bootTime"] == format_time(booted)
        assert parse_time(state["firstReadyTime"]) == became_ready.replace(microsecond=0)
        with in_process_controller(load_client(str(cp.kubeconfig))) as (ctl, calls):
            eventually(lambda: READY_LABEL in node.own_labels(), what="ready on boot-1")
            looks_after(ctl, node)  # the look that made it ready, its repair included, is over
            for name in ("made-before-multus", "made-after-multus", "never-rewritten"):
                assert not terminating(cp, namespace, name), name
            waiting = [r.getMessage() for r in caplog.records if "has not rewritten the status" in r.getMessage()]
            assert len(waiting) == 1, waiting
            assert f"pods {namespace}/made-after-multus, {namespace}/made-before-multus, " \
                   f"{namespace}/never-rewritten since the node booted" in waiting[0]  # as listed: by name

            # The kubelet syncs two of them: one gets its sandbox after Multus is ready, one got it before
            # (with the primary network only; its network-status stays the boot before's). The first is
            # written first, so that the list that shows the second rewritten shows both.
            set_sandbox_time(cp, namespace, "made-after-multus", format_time(utcnow()))
            set_sandbox_time(cp, namespace, "made-before-multus", format_time(booted + timedelta(seconds=30)))
            eventually(lambda: terminating(cp, namespace, "made-before-multus"), what="the pod made before Multus")
            events = pod_events(cp, namespace, "made-before-multus")
            assert [e["reason"] for e in events] == ["MultusNetworksRepaired"]
            assert "before Multus became ready on this boot" in events[0]["message"]
            looks_after(ctl, node)
            assert not terminating(cp, namespace, "made-after-multus")
            assert not terminating(cp, namespace, "never-rewritten")  # lacks a network, as on the boot before
            assert not ctl.repairs[node.name].done

            # The kubelet never rewrites the last one: once the patience is over, it is left alone.
            monkeypatch.setattr(controller_module, "REWRITE_PATIENCE", 0.0)
            given_up = eventually(lambda: [r for r in caplog.records if r.levelno == logging.WARNING
                                           and "they are not judged on this boot" in r.getMessage()],
                                  what="the pod never rewritten given up")
            assert f"the status of pod {namespace}/never-rewritten since the node booted" in given_up[0].getMessage()
            assert ctl.repairs[node.name].done
            lists = [c for c in calls if c[2] == f"spec.nodeName={node.name}"]
            looks_after(ctl, node)
            assert [c for c in calls if c[2] == f"spec.nodeName={node.name}"] == lists  # listed no more
            assert not terminating(cp, namespace, "never-rewritten")
            assert pod_events(cp, namespace, "never-rewritten") == []
    finally:
        ag.stop()


def test_a_pod_an_admission_policy_may_not_evict_is_given_up_and_holds_up_no_other(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A ValidatingAdmissionPolicy refuses (403) the eviction of one pod: that pod's refusal, not a
    permission the repair lacks, so it is not held against the node (every 403 was taken for missing
    RBAC, and the node's other pods waited 10 minutes for each try). What the policy sees is the
    Eviction, which names the pod."""
    cp = controlplane
    monkeypatch.setattr(controller_module, "DISRUPTION_RETRY", 0.5)
    damaged_pods(cp, namespace, node, workload, ("a-kept", "plain"))
    policy = f"no-eviction-{namespace}"
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
             {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods/eviction"]}]},
             "validations": [{"expression": "object.metadata.name != 'a-kept'", "reason": "Forbidden",
                              "message": "a-kept is not to be evicted"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"], "matchResources": {
             "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}}]}))
    eviction = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                           "metadata": {"name": "a-kept", "namespace": namespace}})
    ag: Subcommand | None = None
    try:
        eventually(lambda: cp.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/a-kept/eviction"
                                      "?dryRun=All", "-f", "-", input=eviction, check=False).stderr,
                   "the policy in force", until=lambda err: "a-kept is not to be evicted" in err)
        host.make_ready("boot-1")
        ag = agent(cp, host, node, tmp_path / "agent.log")
        caplog.set_level(logging.INFO, logger=controller_module.__name__)
        with in_process_controller(load_client(str(cp.kubeconfig))) as (ctl, calls):
            eventually(lambda: terminating(cp, namespace, "plain"), what="the other pod evicted")
            events = eventually(lambda: pod_events(cp, namespace, "a-kept"), what="the pod given up")
            assert [e["reason"] for e in events] == ["MultusNetworksMissing"]
            message = events[0]["message"]
            assert f"the eviction was refused {controller_module.MAX_EVICTION_TRIES} times" in message
            assert f"ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request: a-kept is not to " \
                "be evicted" in message, message
            looks_after(ctl, node)
            tries = [c for c in calls if c[1].endswith("/a-kept/eviction")]
            assert len(tries) == controller_module.MAX_EVICTION_TRIES
            assert not terminating(cp, namespace, "a-kept")
        errors = [r.getMessage() for r in caplog.records
                  if r.name == controller_module.__name__ and r.levelno >= logging.ERROR]
        assert not errors, errors  # no "may not evict pods": that is for missing RBAC
    finally:
        if ag is not None:
            ag.stop()
        cp.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False)
