"""An apiserver whose quota admission limits cross-namespace pod affinity in every namespace
(``limitedResources``, in its admission configuration, which no API object shows): it refuses every
pod with a term that names namespaces unless a ResourceQuota of the pod's namespace covers it, the
readiness gate's term too. The policy's ``readinessGate: nodeAffinity`` gates every pod by node
affinity instead."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually


def macvlan(subnet: str) -> str:
    return json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
                       "ipam": {"type": "host-local", "subnet": subnet}})

POLICY = "multus-webhook-policy"


@pytest.fixture(scope="module")
def apiserver_args(tmp_path_factory: pytest.TempPathFactory) -> Sequence[str]:
    config = tmp_path_factory.mktemp("admission") / "admission.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [{"name": "ResourceQuota", "configuration": {
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "ResourceQuotaConfiguration",
            "limitedResources": [{"resource": "pods", "matchScopes": [
                {"scopeName": "CrossNamespacePodAffinity", "operator": "Exists"}]}]}}]}))
    return [f"--admission-control-config-file={config}"]


def create(cp: ControlPlane, obj: dict[str, Any], *extra: str) -> Any:
    return cp.kubectl("create", *extra, "-f", "-", input=json.dumps(obj), check=False)


def multus_pod(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"k8s.v1.cni.cncf.io/networks": "data"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def test_the_policy_gates_the_pods_of_every_namespace_by_node_affinity(cluster: ControlPlane,
                                                                      live_webhook: WebhookServer) -> None:
    namespaces = [f"limited-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for i, ns in enumerate(namespaces):
        cluster.kubectl("create", "namespace", ns)
        # Ranges apart: rule nad-range-overlap refuses a second NAD with the first's.
        cluster.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "data", "namespace": ns}, "spec": {"config": macvlan(f"10.4{i}.0.0/24")}}))
    # With the pod affinity gate: refused by the quota, in words that do not name the webhook (once the
    # webhook's cache has the NAD; before, the webhook refuses the pod for naming a NAD it has not seen).
    for ns in namespaces:
        refused = eventually(lambda ns=ns: create(cluster, multus_pod("multus", ns), "--dry-run=server"),
                             "the NAD in the webhook's cache", until=lambda r: "insufficient quota" in r.stderr)
        assert refused.returncode == 1
        assert "CrossNamespacePodAffinity" in refused.stderr, refused.stderr
        assert "multus-webhook" not in refused.stderr

    cluster.kubectl("create", "configmap", POLICY, "-n", "multus-webhook",
                    "--from-literal=policy=readinessGate: nodeAffinity")
    try:
        eventually(lambda: create(cluster, multus_pod("multus", namespaces[0]), "--dry-run=server"),
                   "the policy in force", until=lambda r: r.returncode == 0)
        for ns in namespaces:
            result = create(cluster, multus_pod("multus", ns))
            assert result.returncode == 0, result.stderr
            assert "Warning" not in result.stderr  # whoever set the policy knows
            stored = json.loads(cluster.kubectl("get", "pod", "multus", "-n", ns, "-o", "json").stdout)
            assert stored["spec"]["affinity"] == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": label, "operator": "In", "values": ["true"]}
                    for label in ("multus-webhook.io/multus-ready", "cni.multus-webhook.io/host-local",
                                  "cni.multus-webhook.io/macvlan")]}]}}}
    finally:
        cluster.kubectl("delete", "configmap", POLICY, "-n", "multus-webhook")
