"""The opt-in repair against the real apiserver: pods bound to a node that comes back from a reboot
without their secondary networks. No kubelet and no kube-controller-manager run: the test writes the
pods' status as a kubelet would, and nothing recreates a deleted pod (a bound pod stays, terminating,
until its kubelet confirms; that is what "deleted" looks like here)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.agent.nodestate import NAMESPACE
from webhook.agent.standin import StandInHost, StandInNode, Subcommand
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.kube import format_time, parse_time
from webhook.names import READY_LABEL

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


def test_after_a_reboot_owned_pods_missing_a_network_are_deleted(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    cp = controlplane
    host.make_ready("boot-1")
    ctl = controller(cp, tmp_path / "controller.log")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    try:
        eventually(lambda: READY_LABEL in node.own_labels(), what="ready on boot-1")
        short = full_status(namespace)[:2]
        make_pod(cp, namespace, node, "owned-missing", owner=workload, status=short)
        make_pod(cp, namespace, node, "bare-missing", owner=None, status=short)
        make_pod(cp, namespace, node, "owned-complete", owner=workload, status=full_status(namespace))
        make_pod(cp, namespace, node, "owned-no-networks", owner=workload, networks=None)
        # Repair happens when a node is ready again on a new boot, not for pods placed meanwhile.
        time.sleep(2)
        assert not terminating(cp, namespace, "owned-missing")

        ag.kill()
        host.stop_daemon()
        host.set_boot_id("boot-2")
        node.reboot("boot-2")
        eventually(lambda: READY_LABEL not in node.own_labels(), what="not ready after the reboot")
        ag = agent(cp, host, node, tmp_path / "agent.log")
        time.sleep(2)
        assert not terminating(cp, namespace, "owned-missing")  # Multus is not back yet
        host.start_daemon()

        eventually(lambda: terminating(cp, namespace, "owned-missing"), what="owned-missing deleted")
        events = eventually(lambda: pod_events(cp, namespace, "bare-missing"), what="bare-missing reported")
        assert [(e["type"], e["reason"]) for e in events] == [("Warning", "MultusNetworksMissing")]
        assert events[0]["message"] == (
            f"its network-status lacks {namespace}/bridge-network-with-gateway@br1; not deleted because no "
            "controller would recreate it: delete it to get its networks back")
        repaired = pod_events(cp, namespace, "owned-missing")
        assert [e["reason"] for e in repaired] == ["MultusNetworksRepaired"]
        assert repaired[0]["message"].endswith("; deleted so that ReplicaSet/web recreates it with its networks")
        for name in ("bare-missing", "owned-complete", "owned-no-networks"):
            assert not terminating(cp, namespace, name), name
    finally:
        ag.stop()
        assert ctl.stop() == 0, ctl.output()


def test_pods_whose_sandbox_predates_multus_on_this_boot_are_stale(
    controlplane: ControlPlane, host: StandInHost, node: StandInNode, namespace: str, workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The controller starts after the node is ready on its boot (e.g. it was restarted): pods whose
    network-status lists everything but whose sandbox was made before Multus became ready are stale.
    With a burst of one and a slow rate, only one deletion happens at first."""
    cp = controlplane
    host.make_ready("boot-1")
    ag = agent(cp, host, node, tmp_path / "agent.log")
    ctl: Subcommand | None = None
    try:
        def ready_since() -> str:
            out = cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "-o",
                             'jsonpath={.status.conditions[?(@.type=="Ready")]}', check=False).stdout
            condition = json.loads(out) if out else {}
            return str(condition["lastTransitionTime"]) if condition.get("status") == "True" else ""

        since = parse_time(eventually(ready_since, what="Multus ready"))
        assert since is not None
        before, after = format_time(since - timedelta(seconds=60)), format_time(since + timedelta(seconds=1))
        full = full_status(namespace)
        for name, owner, moment in [("stale-1", workload, before), ("stale-2", workload, before),
                                    ("fresh", workload, after), ("bare-stale", None, before)]:
            make_pod(cp, namespace, node, name, owner=owner, status=full)
            set_sandbox_time(cp, namespace, name, moment)

        ctl = controller(cp, tmp_path / "controller.log", "--repair-burst", "1", "--repair-rate", "0.001")
        eventually(lambda: terminating(cp, namespace, "stale-1") or terminating(cp, namespace, "stale-2"),
                   what="a stale pod deleted")
        eventually(lambda: pod_events(cp, namespace, "bare-stale"), what="bare-stale reported")
        time.sleep(2)
        assert [terminating(cp, namespace, n) for n in ("stale-1", "stale-2")].count(True) == 1
        assert not terminating(cp, namespace, "fresh")
        assert not terminating(cp, namespace, "bare-stale")
        message = pod_events(cp, namespace, "bare-stale")[0]["message"]
        assert "before Multus became ready on this boot" in message
    finally:
        ag.stop()
        if ctl is not None:
            assert ctl.stop() == 0, ctl.output()
