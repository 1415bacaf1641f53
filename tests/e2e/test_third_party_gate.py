"""Third-party plugins (an SR-IOV NAD) against the readiness gate, end to end: a real apiserver and
kube-scheduler, `multus-webhook serve` registered with the manifests' webhook configurations, and the
real `multus-webhook agent` on stand-in hosts reporting which CNI binaries each node has. The kubelet
is the only part played by the test. The sriov binary is a name in the stand-in's bin directory:
the webhook and the agent only ever look at file names.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from webhook.agent.standin import StandInHost, Subcommand
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually
from webhook.names import NAMESPACE, READY_LABEL

IMAGE = "registry.invalid/none:never-pulled"  # no kubelet: never pulled
SRIOV_RESOURCE = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"}


def get(cp: ControlPlane, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cp.kubectl("get", *args, "-o", "json").stdout)
    return out


def nad(name: str, ns: str, config: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                       "metadata": {"name": name, "namespace": ns, "annotations": SRIOV_RESOURCE},
                       "spec": {"config": json.dumps({**config, "name": name})}})


def pod(name: str, ns: str, network: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns,
                                    "annotations": {"k8s.v1.cni.cncf.io/networks": network}},
                       "spec": {"containers": [{"name": "main", "image": IMAGE}]}})


@contextmanager
def agents(cp: ControlPlane, tmp_path: Path, binaries: dict[str, tuple[str, ...]]) -> Iterator[None]:
    """A real agent on a stand-in host for each node, reporting ``binaries`` (and Multus ready), until the
    controller has labelled each node's agent pod ready."""
    hosts: list[StandInHost] = []
    running: list[Subcommand] = []
    try:
        for node, have in binaries.items():
            host = StandInHost()
            hosts.append(host)
            host.make_ready("boot-1", binaries=("multus-shim", *have))
            running.append(Subcommand(
                ["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node, "--host-root", str(host.root),
                 "--interval", "1", "--poll-interval", "0.2"], tmp_path / f"agent-{node}.log").start())
        for node, have in binaries.items():
            eventually(lambda node=node, have=have: get(cp, "pod", "-n", NAMESPACE, f"agent-{node}")["metadata"].get(
                "labels", {}).get(READY_LABEL) == "true" and set(have) <= set(get(
                    cp, "multusnodestate", "-n", NAMESPACE, node)["status"].get("cniBinaries", [])),
                f"{node} ready, reporting {have}")
        yield
    finally:
        for agent in running:
            agent.stop()
        for host in hosts:
            host.cleanup()


def in_cache(cp: ControlPlane, ns: str, network: str) -> None:
    """Waits until a pod naming ``network`` is admitted (a dry run): the NAD is in the webhook's cache."""
    eventually(lambda: cp.kubectl("apply", "--dry-run=server", "-f", "-", input=pod("probe", ns, network),
                                  check=False).returncode == 0, f"NAD {network} in the webhook's cache")


def scheduled(p: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in p.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), {})


def test_a_pod_whose_gate_no_ready_node_meets_is_warned_at_admission(
        gate_cp: ControlPlane, gate_server: WebhookServer, tmp_path: Path) -> None:
    """An SR-IOV NAD applied before any agent reports (a fresh GitOps sync: nad-cni-binaries knows nothing
    yet), then node-a reports without sriov: a pod on that network can never be placed, and the
    scheduler says only that no node matched its pod affinity. /mutate says which binary is missing."""
    ns = f"tp-{uuid.uuid4().hex[:8]}"
    gate_cp.kubectl("create", "namespace", ns)
    try:
        gate_cp.kubectl("apply", "-f", "-", input=nad("sriov-net", ns, {
            "cniVersion": "0.3.1", "type": "sriov", "vlan": 100,
            "ipam": {"type": "whereabouts", "range": "10.56.217.0/24"}}))
        with agents(gate_cp, tmp_path, {"node-a": ("macvlan", "whereabouts")}):
            in_cache(gate_cp, ns, "sriov-net")
            created = gate_cp.kubectl("create", "-f", "-", input=pod("sriov-app", ns, "sriov-net"))
            assert "no node labelled multus-webhook.io/multus-ready=true has the CNI binary sriov" in created.stderr
            assert "cni.multus-webhook.io/sriov" in created.stderr
            held = eventually(lambda: get(gate_cp, "pod", "-n", ns, "sriov-app"), "the scheduler's verdict",
                              until=lambda q: scheduled(q).get("reason") == "Unschedulable")
            assert not held["spec"].get("nodeName")
            # A pod on a network every ready node can run is not warned.
            gate_cp.kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": "mv", "namespace": ns}, "spec": {"config": json.dumps({
                    "cniVersion": "0.3.1", "name": "mv", "type": "macvlan", "master": "eth0",
                    "ipam": {"type": "whereabouts", "range": "10.57.0.0/24"}})}}))
            in_cache(gate_cp, ns, "mv")
            assert gate_cp.kubectl("create", "-f", "-", input=pod("mv-app", ns, "mv")).stderr.strip() == ""
    finally:
        gate_cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_host_local_behind_a_plugin_one_node_has_is_admitted_and_its_pods_stay_there(
        gate_cp: ControlPlane, gate_server: WebhookServer, tmp_path: Path) -> None:
    """sriov-cni's own example (host-local IPAM) on a cluster where node-a alone has sriov: pods on that
    network only ever run on node-a, so host-local hands out each address once. Admitted, not denied as
    host-local on two nodes; kube-scheduler places every pod on node-a."""
    ns = f"tp-{uuid.uuid4().hex[:8]}"
    gate_cp.kubectl("create", "namespace", ns)
    config = {"cniVersion": "1.0.0", "type": "sriov", "vlan": 0,
              "ipam": {"type": "host-local", "subnet": "10.56.217.0/24", "rangeStart": "10.56.217.171",
                       "rangeEnd": "10.56.217.181", "gateway": "10.56.217.1"}}
    try:
        with agents(gate_cp, tmp_path, {"node-a": ("sriov", "host-local"), "node-b": ("macvlan", "host-local")}):
            applied = gate_cp.kubectl("apply", "-f", "-", input=nad("sriov-hl", ns, config), check=False)
            assert applied.returncode == 0, applied.stderr
            assert "host-local" not in applied.stderr
            assert ("the CNI binary 'sriov' is missing on node(s) node-b: the readiness gate keeps pods on this "
                    "network off them") in applied.stderr
            in_cache(gate_cp, ns, "sriov-hl")
            for i in range(4):
                gate_cp.kubectl("create", "-f", "-", input=pod(f"app-{i}", ns, "sriov-hl"))
            placed = [eventually(lambda i=i: get(gate_cp, "pod", "-n", ns, f"app-{i}"), f"app-{i} placed",
                                 until=lambda q: bool(q["spec"].get("nodeName")))["spec"]["nodeName"]
                      for i in range(4)]
            assert placed == ["node-a"] * 4
    finally:
        gate_cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)
