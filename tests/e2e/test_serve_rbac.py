"""`multus-webhook serve` (live cache and controller) authenticated as its ServiceAccount, with only the
RBAC of manifests/base applied to the real apiserver: a token of system:serviceaccount:multus-webhook:
multus-webhook, not the admin kubeconfig. Every list and watch of the cache, the Lease, the node label
patch, the node Event, the deletion of a gone node's MultusNodeState and the Lease's release on stop
must be allowed; tests/manifests checks the
same grants one by one with `kubectl auth can-i`, and that the broader ones are gone."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from webhook.agent.standin import StandInHost, StandInNode, Subcommand
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually
from webhook.names import READY_LABEL

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NAMESPACE = "multus-webhook"
SERVICE_ACCOUNT = "multus-webhook"
#: serve's default --lease-name, the one the Role names.
LEASE = "multus-webhook-controller"
RBAC_KINDS = {"Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
#: The ValidatingAdmissionPolicy (and its binding) that keeps the webhook's patches of pods and nodes to our labels.
LABELS_ONLY = "multus-webhook-labels-only"


def service_account_kubeconfig(cp: ControlPlane, path: Path, *, pod_patch: bool = True) -> Path:
    """The base's RBAC (without the Role's patch of pods, for the manifests before the agent pods were
    labelled) and the policy narrowing what that patch may change, applied; and a kubeconfig holding a
    token of the webhook's ServiceAccount."""
    docs = [d for d in yaml.safe_load_all(cp.kubectl("kustomize", str(MANIFESTS / "base")).stdout) if d]
    items = [d for d in docs if d["kind"] in RBAC_KINDS or d["metadata"]["name"] == LABELS_ONLY]
    if not pod_patch:
        for role in (d for d in items if d["kind"] == "Role" and d["metadata"]["name"] == SERVICE_ACCOUNT):
            role["rules"] = [r for r in role["rules"] if r["resources"] != ["pods"]]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    token = cp.kubectl("create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=1h").stdout.strip()
    config: dict[str, Any] = yaml.safe_load(cp.kubeconfig.read_text())
    config["users"] = [{"name": "webhook", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "webhook"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def node_agent_and_server(cp: ControlPlane, host: StandInHost, kubeconfig: Path,
                          tmp_path: Path) -> tuple[StandInNode, Subcommand, WebhookServer]:
    """A node whose agent (running) finds Multus ready, and serve as the ServiceAccount (not started)
    with no Lease left by an earlier test."""
    cp.kubectl("delete", "lease", "-n", NAMESPACE, LEASE, "--ignore-not-found")
    node = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    host.make_ready("boot-1")
    # The agent has RBAC of its own (manifests/base/agent): it runs as the admin here.
    agent = Subcommand(["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node.name,
                        "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2"],
                       tmp_path / "agent.log").start()
    server = WebhookServer(tmp_path / "serve", [
        "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE, "--identity", "rbac-test",
        "--agent-interval", "1", "--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.5"])
    return node, agent, server


def lease_holder(cp: ControlPlane) -> str:
    return cp.kubectl("get", "lease", "-n", NAMESPACE, LEASE, "-o", "jsonpath={.spec.holderIdentity}",
                      check=False).stdout


def test_serve_runs_on_the_base_rbac_alone(controlplane: ControlPlane, host: StandInHost, tmp_path: Path) -> None:
    cp = controlplane
    kubeconfig = service_account_kubeconfig(cp, tmp_path / "webhook.kubeconfig")
    whoami = cp.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
    node, agent, server = node_agent_and_server(cp, host, kubeconfig, tmp_path)
    log = server.dir / "webhook.log"
    try:
        with server:
            # Every list of the cache: nodes, MultusNodeStates, NADs, NetworkProfiles, pods, ResourceQuotas, the
            # policy ConfigMap.
            eventually(lambda: server.readyz()[0] == 200, what="the cache synced as the ServiceAccount")
            eventually(lambda: lease_holder(cp) == "rbac-test", what="the Lease created and held")
            eventually(lambda: node.own_labels().get(READY_LABEL) == "true" == node.agent_labels().get(READY_LABEL),
                       what="the node and its agent pod labelled")
            eventually(lambda: "MultusReady" in [e["reason"] for e in node.events()], what="the node's Event")
            # The state of a node that is gone is deleted.
            agent.stop()
            node.delete()
            eventually(lambda: cp.kubectl("get", "mns", "-n", NAMESPACE, node.name, "--ignore-not-found", "-o",
                                          "name").stdout == "", what="the MultusNodeState of the deleted node deleted")
        assert lease_holder(cp) == "", "the Lease is released (read and updated) on stop"
        output = log.read_text(errors="replace")
        assert "forbidden" not in output.lower(), output
        assert "could not" not in output, output
    finally:
        agent.stop()
        node.delete()


def test_the_webhook_may_change_only_our_labels_of_a_pod(controlplane: ControlPlane, tmp_path: Path) -> None:
    """RBAC grants patch on pods in the namespace (to label the agent pods); the policy keeps it to our
    labels: an agent pod's image, or anyone else's label, stays out of the webhook's reach."""
    cp = controlplane
    kubeconfig = service_account_kubeconfig(cp, tmp_path / "webhook.kubeconfig")
    node = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    as_webhook = ("--kubeconfig", str(kubeconfig), "-n", NAMESPACE)
    try:
        # The policy is enforced once the apiserver has loaded it: wait for a refusal.
        refused = eventually(lambda: cp.kubectl(*as_webhook, "label", "pod", node.agent_pod, "team=red", check=False),
                             "the policy in force", until=lambda r: r.returncode != 0)
        assert "may change only the labels multus-webhook.io/multus-ready and cni.multus-webhook.io/* of a pod" \
            in refused.stderr
        cp.kubectl(*as_webhook, "label", "pod", node.agent_pod, f"{READY_LABEL}=true", "cni.multus-webhook.io/x=true")
        assert node.agent_labels() == {READY_LABEL: "true", "cni.multus-webhook.io/x": "true"}
        cp.kubectl(*as_webhook, "label", "pod", node.agent_pod, f"{READY_LABEL}-")
        image = cp.kubectl(*as_webhook, "set", "image", f"pod/{node.agent_pod}", "agent=evil:latest", check=False)
        assert image.returncode != 0
        assert "may change only the labels" in image.stderr
        annotated = cp.kubectl(*as_webhook, "annotate", "pod", node.agent_pod, "x=y", check=False)
        assert "may change only the labels" in annotated.stderr
        # Labels of others, removed: refused too.
        cp.kubectl("label", "pod", "-n", NAMESPACE, node.agent_pod, "team=blue")
        removed = cp.kubectl(*as_webhook, "label", "pod", node.agent_pod, "team-", check=False)
        assert "may change only the labels" in removed.stderr
        assert node.agent_labels() == {"cni.multus-webhook.io/x": "true"}
    finally:
        node.delete()


def test_the_webhook_may_change_only_our_labels_of_a_node(controlplane: ControlPlane, tmp_path: Path) -> None:
    """RBAC grants patch on every Node (the controller's labels); the policy keeps it to our labels:
    cordoning, untainting, or relabelling a node for others' rules stays out of the webhook's reach."""
    cp = controlplane
    kubeconfig = service_account_kubeconfig(cp, tmp_path / "webhook.kubeconfig")
    node = StandInNode(cp, f"node-{uuid.uuid4().hex[:8]}", "boot-1")
    as_webhook = ("--kubeconfig", str(kubeconfig))
    said = "may change only the labels multus-webhook.io/multus-ready and cni.multus-webhook.io/* of a node"
    try:
        cp.kubectl("label", "node", node.name, "topology.kubernetes.io/zone=a")
        # The policy is enforced once the apiserver has loaded it: wait for a refusal (of a change each
        # time: kubectl sends nothing for a label the node already has).
        tries = itertools.count()
        refused = eventually(lambda: cp.kubectl(*as_webhook, "label", "node", node.name, "--overwrite",
                                                f"team=red-{next(tries)}", check=False),
                             "the policy in force", until=lambda r: r.returncode != 0)
        assert said in refused.stderr
        cp.kubectl("label", "node", node.name, "team-")
        for attempt in (("cordon", node.name), ("taint", "node", node.name, "evil=yes:NoSchedule"),
                        ("label", "node", node.name, "--overwrite", "topology.kubernetes.io/zone=evil"),
                        ("label", "node", node.name, "topology.kubernetes.io/zone-"),
                        ("annotate", "node", node.name, "x=y")):
            answer = cp.kubectl(*as_webhook, *attempt, check=False)
            assert said in answer.stderr, attempt
        cp.kubectl(*as_webhook, "label", "node", node.name, f"{READY_LABEL}=true", "cni.multus-webhook.io/x=true")
        cp.kubectl(*as_webhook, "label", "node", node.name, "cni.multus-webhook.io/x-")
        node_json = json.loads(cp.kubectl("get", "node", node.name, "-o", "json").stdout)
        labels = node_json["metadata"]["labels"]
        assert labels[READY_LABEL] == "true"
        assert "cni.multus-webhook.io/x" not in labels
        assert labels["topology.kubernetes.io/zone"] == "a"
        assert not node_json["spec"].get("unschedulable")
        assert "evil" not in {t["key"] for t in node_json["spec"].get("taints", [])}
    finally:
        node.delete()


def test_without_the_permission_to_label_agent_pods_the_nodes_are_still_labelled(
        controlplane: ControlPlane, host: StandInHost, tmp_path: Path) -> None:
    """The Role of the manifests before the agent pods were labelled: the node labels kept as before, one
    error in the log, and no retry storm (one refused patch, not one per heartbeat)."""
    cp = controlplane
    kubeconfig = service_account_kubeconfig(cp, tmp_path / "webhook.kubeconfig", pod_patch=False)
    node, agent, server = node_agent_and_server(cp, host, kubeconfig, tmp_path)
    log = server.dir / "webhook.log"
    try:
        with server:
            eventually(lambda: node.own_labels().get(READY_LABEL) == "true", what="the node labelled")
            # Heartbeats every second: each one a look at the node, none a second patch of its agent pod.
            def heartbeat() -> str:
                return cp.kubectl("get", "mns", "-n", NAMESPACE, node.name,
                                  "-o", "jsonpath={.status.heartbeatTime}").stdout

            beats = eventually(heartbeat, "a heartbeat", until=bool)
            eventually(lambda: heartbeat() != beats, "a heartbeat after the node was labelled", timeout=10)
            assert node.agent_labels() == {}
        output = log.read_text(errors="replace")
        # Each refusal is logged: one means the heartbeats since did not try again.
        assert output.count("the apiserver refused to label the agent pods") == 1, output
    finally:
        agent.stop()
        node.delete()
        service_account_kubeconfig(cp, tmp_path / "restored.kubeconfig")  # the Role as shipped, for later tests
