"""The readiness gate end to end, on a real apiserver with a real kube-scheduler: `multus-webhook serve`
(webhook, live cache and controller) and a real `multus-webhook agent` on a stand-in host. A pod that
asks for a secondary network is held back until Multus is ready on a node, placed there, and stays
there through the node's reboot while new pods wait for Multus on the new boot. The kubelet is the
only part played by the test (Node status, bootID).

What the kubelet would do when it starts again after the reboot cannot run here; the test checks what
it reads (pkg/kubelet/lifecycle/predicate.go: required node affinity, nodeName, host ports, resources,
NoExecute taints) holds for the pod already placed: the gate put nothing there that the node, now
without its ready label, fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webhook.agent.standin import StandInHost, Subcommand
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually
from webhook.names import NAMESPACE, READY_LABEL

IMAGE = "registry.invalid/none:never-pulled"  # no kubelet: never pulled
MACVLAN = json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
                      "ipam": {"type": "whereabouts", "range": "10.40.0.0/24"}})


def get(gate_cp: ControlPlane, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(gate_cp.kubectl("get", *args, "-o", "json").stdout)
    return out


def pod(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"k8s.v1.cni.cncf.io/networks": "data"}},
            "spec": {"containers": [{"name": "main", "image": IMAGE}]}}


def unschedulable(p: dict[str, Any]) -> bool:
    return any(c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable"
               for c in p.get("status", {}).get("conditions", []))


def agent_ready(cp: ControlPlane, node: str) -> bool:
    return get(cp, "pod", "-n", NAMESPACE, f"agent-{node}")["metadata"].get("labels", {}).get(READY_LABEL) == "true"


def test_gated_pods_wait_for_multus_land_where_it_is_ready_and_stay_through_a_reboot(
        gate_cp: ControlPlane, gate_server: WebhookServer, boot: Callable[[ControlPlane, str, str], None],
        tmp_path: Path) -> None:
    ns = f"gate-{uuid.uuid4().hex[:8]}"
    gate_cp.kubectl("create", "namespace", ns)
    gate_cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "data", "namespace": ns}, "spec": {"config": MACVLAN}}))
    # The NAD in the webhook's cache: a pod naming it is admitted (a dry run, so nothing is created).
    eventually(lambda: gate_cp.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod("probe", ns)),
                                  check=False).returncode == 0, "the NAD in the webhook's cache")

    # No node is ready: the pod is admitted with the gate and the scheduler holds it back.
    gate_cp.kubectl("create", "-f", "-", input=json.dumps(pod("early", ns)))
    held = eventually(lambda: get(gate_cp, "pod", "-n", ns, "early"), "the scheduler to hold pod early back",
                      until=unschedulable)
    assert "nodeName" not in held["spec"]
    assert "nodeAffinity" not in held["spec"]["affinity"]

    # Multus becomes ready on node-a (its agent reports so); node-b never reports.
    host = StandInHost()
    host.make_ready("boot-1", binaries=("multus-shim", "macvlan", "whereabouts"))
    agent = Subcommand(["agent", "--kubeconfig", str(gate_cp.kubeconfig), "--node-name", "node-a", "--host-root",
                        str(host.root), "--interval", "1", "--poll-interval", "0.2"], tmp_path / "agent.log").start()
    try:
        placed = eventually(lambda: get(gate_cp, "pod", "-n", ns, "early"), "pod early placed",
                            until=lambda p: bool(p["spec"].get("nodeName")))
        assert placed["spec"]["nodeName"] == "node-a"
        assert not agent_ready(gate_cp, "node-b")

        # A pod with a required pod affinity of its own (next to a db pod) is gated by node affinity
        # instead: one more pod affinity term would need a single pod matching both.
        gate_cp.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db", "namespace": ns, "labels": {"app": "db"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "main", "image": IMAGE}]}}))
        near_db = pod("near-db", ns)
        near_db["spec"]["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
        created = gate_cp.kubectl("create", "-f", "-", input=json.dumps(near_db))
        assert "readiness gate is a node affinity" in created.stderr
        placed = eventually(lambda: get(gate_cp, "pod", "-n", ns, "near-db"), "pod near-db placed",
                            until=lambda p: bool(p["spec"].get("nodeName")))
        assert placed["spec"]["nodeName"] == "node-a"

        # node-a reboots; Multus is not back yet (the agent is down with it).
        agent.kill()
        host.stop_daemon()
        host.set_boot_id("boot-2")
        boot(gate_cp, "node-a", "boot-2")
        eventually(lambda: not agent_ready(gate_cp, "node-a"), "the gate closed on node-a")
        # The controller takes the agent pod's label off first, the node's in a patch after it.
        eventually(lambda: READY_LABEL not in get(gate_cp, "node", "node-a")["metadata"]["labels"],
                   "node-a's ready label taken off")
        gate_cp.kubectl("create", "-f", "-", input=json.dumps(pod("late", ns)))
        eventually(lambda: get(gate_cp, "pod", "-n", ns, "late"), "the scheduler to hold pod late back",
                   until=unschedulable)

        # The pod already on node-a: what a starting kubelet checks of it, the node (without its ready
        # label now) passes. Under the old gate, a node affinity on that label, it failed.
        early = get(gate_cp, "pod", "-n", ns, "early")
        assert early["spec"]["nodeName"] == "node-a"
        assert "nodeAffinity" not in early["spec"]["affinity"]
        assert "nodeSelector" not in early["spec"]
        assert "deletionTimestamp" not in early["metadata"]

        # Multus is back on boot-2: the pod held back meanwhile is placed.
        agent = Subcommand(agent.args, tmp_path / "agent.log").start()
        host.start_daemon()
        late = eventually(lambda: get(gate_cp, "pod", "-n", ns, "late"), "pod late placed",
                          until=lambda p: bool(p["spec"].get("nodeName")))
        assert late["spec"]["nodeName"] == "node-a"
    finally:
        agent.stop()
        host.cleanup()
        gate_cp.kubectl("delete", "pods", "-n", ns, "--all", "--grace-period=0", "--force", "--wait=false", check=False)
