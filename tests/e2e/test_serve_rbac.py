"""`multus-webhook serve` (live cache and controller) authenticated as its ServiceAccount, with only the
RBAC of manifests/base applied to the real apiserver: a token of system:serviceaccount:multus-webhook:
multus-webhook, not the admin kubeconfig. Every list and watch of the cache, the Lease, the node label
patch, the node Event and the Lease's release on stop must be allowed; tests/manifests checks the
same grants one by one with `kubectl auth can-i`, and that the broader ones are gone."""

from __future__ import annotations

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


def service_account_kubeconfig(cp: ControlPlane, path: Path) -> Path:
    """The base's RBAC applied, and a kubeconfig holding a token of the webhook's ServiceAccount."""
    docs = [d for d in yaml.safe_load_all(cp.kubectl("kustomize", str(MANIFESTS / "base")).stdout) if d]
    items = [d for d in docs if d["kind"] in RBAC_KINDS]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    token = cp.kubectl("create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=1h").stdout.strip()
    config: dict[str, Any] = yaml.safe_load(cp.kubeconfig.read_text())
    config["users"] = [{"name": "webhook", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "webhook"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def lease_holder(cp: ControlPlane) -> str:
    return cp.kubectl("get", "lease", "-n", NAMESPACE, LEASE, "-o", "jsonpath={.spec.holderIdentity}",
                      check=False).stdout


def test_serve_runs_on_the_base_rbac_alone(controlplane: ControlPlane, host: StandInHost, tmp_path: Path) -> None:
    cp = controlplane
    kubeconfig = service_account_kubeconfig(cp, tmp_path / "webhook.kubeconfig")
    whoami = cp.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
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
    log = server.dir / "webhook.log"
    try:
        with server:
            # Every list of the cache: nodes, MultusNodeStates, NADs, NetworkProfiles, pods, the policy ConfigMap.
            eventually(lambda: server.readyz()[0] == 200, what="the cache synced as the ServiceAccount")
            eventually(lambda: lease_holder(cp) == "rbac-test", what="the Lease created and held")
            eventually(lambda: node.own_labels().get(READY_LABEL) == "true" == node.agent_labels().get(READY_LABEL),
                       what="the node and its agent pod labelled")
            eventually(lambda: "MultusReady" in [e["reason"] for e in node.events()], what="the node's Event")
        assert lease_holder(cp) == "", "the Lease is released (read and updated) on stop"
        output = log.read_text(errors="replace")
        assert "forbidden" not in output.lower(), output
        assert "could not" not in output, output
    finally:
        agent.stop()
        node.delete()
