"""The dhcp daemon and the readiness gate end to end, on a real apiserver with a real kube-scheduler:
`multus-webhook serve` (webhook, live cache and controller) and the real `multus-webhook agent` on two
stand-in hosts, both with the dhcp plugin, one with its daemon answering on /run/cni/dhcp.sock (a socket
accepting connections; tests/differential/test_dhcp_daemon_real.py shows the real daemon and plugin
agree with the agent on it). Pods on a dhcp NAD land only where the daemon answers, and wait once it
stops."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from webhook.agent.standin import StandInHost, Subcommand
from webhook.dev.controlplane import CRDS, ControlPlane, WebhookServer, eventually
from webhook.names import DHCP_SOCKET, NAMESPACE, READY_LABEL

IMAGE = "registry.invalid/none:never-pulled"  # no kubelet: never pulled
DHCP_LABEL = "cni.multus-webhook.io/dhcp-daemon"


def get(cp: ControlPlane, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cp.kubectl("get", *args, "-o", "json").stdout)
    return out


def pod(name: str, namespace: str, network: str = "dhcp-net") -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": namespace,
                                    "annotations": {"k8s.v1.cni.cncf.io/networks": network}},
                       "spec": {"containers": [{"name": "main", "image": IMAGE}]}})


def agent_labels(cp: ControlPlane, node: str) -> dict[str, str]:
    labels: dict[str, str] = get(cp, "pod", "-n", NAMESPACE, f"agent-{node}")["metadata"].get("labels", {})
    return labels


def unschedulable(p: dict[str, Any]) -> bool:
    return any(c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable"
               for c in p.get("status", {}).get("conditions", []))


def test_dhcp_pods_land_only_where_the_dhcp_daemon_answers(
        gate_cp: ControlPlane, gate_server: WebhookServer, tmp_path: Path) -> None:
    ns = f"dhcp-{uuid.uuid4().hex[:8]}"
    gate_cp.kubectl("create", "namespace", ns)
    hosts = {name: StandInHost() for name in ("node-a", "node-b")}
    agents = []
    try:
        for host in hosts.values():
            host.make_ready("boot-1", binaries=("multus-shim", "macvlan", "dhcp"))
        hosts["node-a"].start_daemon(DHCP_SOCKET)
        for name, host in hosts.items():
            agents.append(Subcommand(["agent", "--kubeconfig", str(gate_cp.kubeconfig), "--node-name", name,
                                      "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2"],
                                     tmp_path / f"agent-{name}.log").start())
        for name in hosts:
            eventually(lambda n=name: agent_labels(gate_cp, n).get(READY_LABEL) == "true",  # type: ignore[misc]
                       f"Multus ready on {name}")
        eventually(lambda: agent_labels(gate_cp, "node-a").get(DHCP_LABEL) == "true", "node-a labelled for dhcp")
        assert DHCP_LABEL not in agent_labels(gate_cp, "node-b")
        assert DHCP_LABEL not in get(gate_cp, "node", "node-b")["metadata"]["labels"]

        created = gate_cp.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "dhcp-net", "namespace": ns},
            "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0",
                                           "ipam": {"type": "dhcp"}})}}))
        # A node has the daemon: nothing to warn about.
        assert "dhcp" not in created.stderr, created.stderr
        eventually(lambda: gate_cp.kubectl("apply", "--dry-run=server", "-f", "-", input=pod("probe", ns),
                                           check=False).returncode == 0, "the NAD in the webhook's cache")
        for i in range(4):
            gate_cp.kubectl("create", "-f", "-", input=pod(f"app-{i}", ns))
        for i in range(4):
            placed = eventually(lambda i=i: get(gate_cp, "pod", "-n", ns, f"app-{i}"),  # type: ignore[misc]
                                f"pod app-{i} placed", until=lambda p: bool(p["spec"].get("nodeName")))
            assert placed["spec"]["nodeName"] == "node-a"

        # The daemon stops on node-a: the label goes, and a new pod waits (no node can run it).
        hosts["node-a"].stop_daemon(DHCP_SOCKET)
        eventually(lambda: DHCP_LABEL not in agent_labels(gate_cp, "node-a"), "node-a unlabelled for dhcp")
        gate_cp.kubectl("create", "-f", "-", input=pod("late", ns))
        held = eventually(lambda: get(gate_cp, "pod", "-n", ns, "late"), "the scheduler to hold pod late back",
                          until=unschedulable)
        assert "nodeName" not in held["spec"]
        state = get(gate_cp, "multusnodestate", "-n", NAMESPACE, "node-a")["status"]
        assert state["dhcpDaemon"] is False
        assert any(c["type"] == "DHCPDaemonAnswering" and c["status"] == "False" for c in state["conditions"])
        # The NAD applied again now says so.
        again = gate_cp.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "dhcp-net2", "namespace": ns},
            "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0",
                                           "ipam": {"type": "dhcp"}})}}))
        assert "none of the 2 node(s) that report has the CNI dhcp daemon answering" in again.stderr, again.stderr
    finally:
        for agent in agents:
            agent.stop()
        for host in hosts.values():
            host.cleanup()
        gate_cp.kubectl("delete", "pods", "-n", ns, "--all", "--grace-period=0", "--force", "--wait=false",
                        check=False)


def without_dhcp_daemon(crd: dict[str, Any]) -> dict[str, Any]:
    """The MultusNodeState CRD as a release before the daemon check had it: no status.dhcpDaemon, which
    the apiserver then prunes from every status an agent writes."""
    for version in crd["spec"]["versions"]:
        del version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["dhcpDaemon"]
    return crd


def test_a_node_state_without_the_dhcp_daemon_field_leaves_dhcp_pods_free_to_land(
        gate_cp: ControlPlane, gate_server: WebhookServer, tmp_path: Path) -> None:
    """An upgrade that did not re-apply manifests/crds (or an agent older than the check): the
    MultusNodeState says nothing of the daemon. Not knowing is not a daemon that is down: the node is
    labelled as before the gate required the daemon, and dhcp pods are placed rather than Pending for
    good."""
    ns = f"dhcp-{uuid.uuid4().hex[:8]}"
    gate_cp.kubectl("create", "namespace", ns)
    crd_file = CRDS / "multusnodestates.yaml"
    gate_cp.kubectl("apply", "-f", "-", input=json.dumps(without_dhcp_daemon(yaml.safe_load(crd_file.read_text()))))
    host = StandInHost()
    agent = None
    try:
        host.make_ready("boot-1", binaries=("multus-shim", "macvlan", "dhcp"))
        host.start_daemon(DHCP_SOCKET)
        agent = Subcommand(["agent", "--kubeconfig", str(gate_cp.kubeconfig), "--node-name", "node-a",
                            "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2"],
                           tmp_path / "agent-a.log").start()
        state = eventually(lambda: get(gate_cp, "multusnodestate", "-n", NAMESPACE, "node-a")["status"],
                           "the agent's dhcp condition", until=lambda s: any(
                               c["type"] == "DHCPDaemonAnswering" for c in s.get("conditions", [])))
        assert "dhcpDaemon" not in state  # pruned: what the controller gets to see
        eventually(lambda: agent_labels(gate_cp, "node-a").get(DHCP_LABEL) == "true", "node-a labelled for dhcp")
        gate_cp.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "dhcp-net", "namespace": ns},
            "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0",
                                           "ipam": {"type": "dhcp"}})}}))
        eventually(lambda: gate_cp.kubectl("apply", "--dry-run=server", "-f", "-", input=pod("probe", ns),
                                           check=False).returncode == 0, "the NAD in the webhook's cache")
        gate_cp.kubectl("create", "-f", "-", input=pod("app", ns))
        placed = eventually(lambda: get(gate_cp, "pod", "-n", ns, "app"), "pod app placed or held",
                            until=lambda p: bool(p["spec"].get("nodeName")) or unschedulable(p))
        assert placed["spec"].get("nodeName") == "node-a", placed["status"]
    finally:
        if agent is not None:
            agent.stop()
        host.cleanup()
        gate_cp.kubectl("apply", "-f", str(crd_file))
        gate_cp.kubectl("delete", "pods", "-n", ns, "--all", "--grace-period=0", "--force", "--wait=false",
                        check=False)
        gate_cp.kubectl("delete", "multusnodestate", "-n", NAMESPACE, "--all", check=False)
