"""The stack moved to another namespace by a kustomization of the user's (`namespace: netops`): what
kustomize rewrites and what it does not, on a control plane of this module's own (a real apiserver:
objects applied, RBAC asked with `kubectl auth can-i`, pods sent or not sent to the pod webhooks)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.cli import parser
from webhook.dev.controlplane import ControlPlane

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
STAND_INS = Path(__file__).with_name("stand-in-crds.yaml")
MOVED = "netops"
AGENT_SA = f"system:serviceaccount:{MOVED}:multus-webhook-agent"
RBAC_KINDS = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
WEBHOOK_KINDS = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


@pytest.fixture(scope="module")
def moved(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The base, moved by an overlay in a temporary directory as docs/install.md tells the user to
    write it, as `kubectl kustomize` builds it."""
    overlay = tmp_path_factory.mktemp("netops")
    (overlay / "kustomization.yaml").write_text(json.dumps({
        "namespace": MOVED, "resources": [os.path.relpath(MANIFESTS / "base", overlay)],
        "transformers": [os.path.relpath(MANIFESTS / "follow-namespace", overlay)]}))
    return [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(overlay)).stdout) if d]


# Every component at once (uninstall apart, below): each one's own objects and patches, moved.
COMPONENTS = ["cert-manager", "pod-repair", "cilium", "talos", "mutate-every-pod"]
FOLLOW_NAMESPACE = MANIFESTS / "components" / "cert-manager" / "follow-namespace"


@pytest.fixture(scope="module", params=[COMPONENTS, [*COMPONENTS, "uninstall"]], ids=["install", "uninstall"])
def moved_components(request: pytest.FixtureRequest, cluster: ControlPlane,
                     tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The components in the moved base, as docs/install.md tells the user to write it."""
    overlay = tmp_path_factory.mktemp("netops-components")
    (overlay / "kustomization.yaml").write_text(json.dumps({
        "namespace": MOVED, "resources": [os.path.relpath(MANIFESTS / "base", overlay)],
        "components": [os.path.relpath(MANIFESTS / "components" / c, overlay) for c in request.param],
        "transformers": [os.path.relpath(FOLLOW_NAMESPACE, overlay)]}))
    return [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(overlay)).stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def as_list(docs: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def container_args(docs: list[dict[str, Any]], kind: str, name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The container's arguments as our CLI parses them, in a pod of the namespace kustomize gave it
    (the downward API's values where its env takes them from there)."""
    doc = find(docs, kind, name)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    for env in container.get("env", []):
        field = env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        value = {"metadata.namespace": doc["metadata"]["namespace"], "spec.nodeName": "node-1"}.get(field)
        if value is not None or "value" in env:
            monkeypatch.setenv(env["name"], value if value is not None else env["value"])
    return parser(container["args"]).parse_args(container["args"])


def test_the_commands_in_the_moved_pods_use_the_moved_namespace(moved: list[dict[str, Any]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent wrote its MultusNodeState into multus-webhook, where its moved Role grants nothing,
    so no node was ever reported ready."""
    assert find(moved, "DaemonSet", "multus-webhook-agent")["metadata"]["namespace"] == MOVED
    assert container_args(moved, "DaemonSet", "multus-webhook-agent", monkeypatch).namespace == MOVED
    assert container_args(moved, "Deployment", "multus-webhook", monkeypatch).namespace == MOVED


def test_the_pod_webhooks_skip_the_moved_namespace_by_its_name(moved: list[dict[str, Any]]) -> None:
    """By the name only the apiserver sets (a label anyone may set would exempt any namespace):
    kustomize's `namespace:` rewrites the service's namespace, follow-namespace the selector's."""
    for kind in WEBHOOK_KINDS:
        for hook in find(moved, kind, "multus-webhook")["webhooks"]:
            assert hook["clientConfig"]["service"]["namespace"] == MOVED
            if hook["name"].startswith(("pods.", "pod-bindings.")):
                assert hook["namespaceSelector"] == {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [MOVED]}]}


def test_the_moved_stack_is_accepted_and_its_agent_may_write_only_there(cluster: ControlPlane,
                                                                        moved: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "-f", "-", input=as_list([find(moved, "Namespace", MOVED)]))
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=as_list(moved), check=False)
    assert result.returncode == 0, result.stderr
    cluster.kubectl("apply", "-f", "-", input=as_list([d for d in moved if d["kind"] in RBAC_KINDS]))
    for verb in ("get", "create"):
        assert can(cluster, AGENT_SA, verb, "multusnodestates.multus-webhook.io", MOVED)
        assert not can(cluster, AGENT_SA, verb, "multusnodestates.multus-webhook.io", "multus-webhook")
    assert can(cluster, AGENT_SA, "patch", "multusnodestates.multus-webhook.io", MOVED, "status")


def can(cp: ControlPlane, who: str, verb: str, resource: str, namespace: str, subresource: str | None = None) -> bool:
    args = ["auth", "can-i", verb, resource, "--as", who, "-n", namespace]
    result = cp.kubectl(*args, *(["--subresource", subresource] if subresource else []), check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


def test_the_pod_webhooks_skip_the_moved_namespace_and_no_other(cluster: ControlPlane,
                                                                moved: list[dict[str, Any]]) -> None:
    """The webhook configurations of the moved build, registered for real with no webhook behind them
    (failurePolicy Fail): a pod that asks Multus for a network is refused wherever the apiserver calls
    the webhook, and created where it does not. A tenant's namespace carrying the label an earlier
    version skipped by (multus-webhook.io/webhook-namespace) is not exempt."""
    cluster.kubectl("apply", "-f", "-", input=as_list([find(moved, "Namespace", MOVED)]))
    cluster.kubectl("create", "namespace", "tenant", check=False)
    cluster.kubectl("label", "--overwrite", "namespace", "tenant", "multus-webhook.io/webhook-namespace=true")
    configurations = as_list([d for d in moved if d["kind"] in WEBHOOK_KINDS])
    cluster.kubectl("apply", "-f", "-", input=configurations)
    try:
        for namespace, sent in ((MOVED, False), ("default", True), ("tenant", True)):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": namespace,
                                "annotations": {"k8s.v1.cni.cncf.io/networks": "data"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
            result = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
            if sent:
                assert result.returncode == 1
                assert 'failed calling webhook "pods.multus-webhook.io"' in result.stderr
            else:
                assert result.returncode == 0, result.stderr
    finally:
        cluster.kubectl("delete", "-f", "-", input=configurations)


def strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every string of an object, with the key it is under."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, k)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v, key)]
    return [(key, value)] if isinstance(value, str) else []


def test_nothing_of_the_moved_components_names_the_old_namespace(moved_components: list[dict[str, Any]]) -> None:
    """A namespace field, a `namespace/name` reference or a `<service>.<namespace>` DNS name left on
    multus-webhook: each points at objects that are not there."""
    left = [(d["kind"], d["metadata"]["name"], key, value) for d in moved_components
            for key, value in strings(d)
            if (key == "namespace" and value == "multus-webhook") or value.startswith("multus-webhook/")
            or re.search(r"\.multus-webhook(\.svc\b|$)", value)]
    assert not left


def test_the_moved_serving_certificate_is_for_the_moved_service(moved_components: list[dict[str, Any]]) -> None:
    """The apiserver dials <service>.<namespace>.svc and refuses a certificate without that name;
    cainjector reads the CA from the Certificate `inject-ca-from` names, and injects none when it is
    not there."""
    service = find(moved_components, "Service", "multus-webhook")["metadata"]
    assert service["namespace"] == MOVED
    dialed = f"{service['name']}.{service['namespace']}.svc"
    for kind in ("Certificate", "Issuer"):
        assert {d["metadata"]["namespace"] for d in moved_components if d["kind"] == kind} == {MOVED}
    serving = find(moved_components, "Certificate", "multus-webhook-tls")
    assert serving["spec"]["dnsNames"] == [service["name"], f"{service['name']}.{MOVED}", dialed,
                                           f"{dialed}.cluster.local"]
    for kind in WEBHOOK_KINDS:
        webhooks = find(moved_components, kind, "multus-webhook")
        assert webhooks["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{MOVED}/multus-webhook-tls"
        assert {h["clientConfig"]["service"]["namespace"] for h in webhooks["webhooks"]} == {MOVED}


def test_a_namespace_of_63_characters_gets_certificates_cert_manager_accepts(
        cluster: ControlPlane, tmp_path: Path) -> None:
    """cert-manager refuses a Certificate whose commonName is over 64 characters (and issues nothing);
    `multus-webhook.<namespace>.svc` is that long for namespaces of 46 characters or more."""
    namespace = "n" * 63  # the longest a namespace can be
    (tmp_path / "kustomization.yaml").write_text(json.dumps({
        "namespace": namespace, "resources": [os.path.relpath(MANIFESTS / "base", tmp_path)],
        "components": [os.path.relpath(MANIFESTS / "components" / "cert-manager", tmp_path)],
        "transformers": [os.path.relpath(FOLLOW_NAMESPACE, tmp_path)]}))
    docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(tmp_path)).stdout) if d]
    certificates = [d for d in docs if d["kind"] == "Certificate"]
    assert len(certificates) == 2
    assert all(len(c["spec"].get("commonName", "")) <= 64 for c in certificates), certificates
    serving = find(docs, "Certificate", "multus-webhook-tls")
    assert f"multus-webhook.{namespace}.svc" in serving["spec"]["dnsNames"]


def test_follow_namespace_changes_nothing_where_nothing_moved(cluster: ControlPlane, tmp_path: Path) -> None:
    """The same transformer in a kustomization without `namespace:` builds overlays/cert-manager."""
    (tmp_path / "kustomization.yaml").write_text(json.dumps({
        "resources": [os.path.relpath(MANIFESTS / "overlays" / "cert-manager", tmp_path)],
        "transformers": [os.path.relpath(FOLLOW_NAMESPACE, tmp_path)]}))
    assert (cluster.kubectl("kustomize", str(tmp_path)).stdout
            == cluster.kubectl("kustomize", str(MANIFESTS / "overlays" / "cert-manager")).stdout)


def test_the_moved_components_are_accepted(cluster: ControlPlane, moved_components: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "-f", str(STAND_INS))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(STAND_INS))
    cluster.kubectl("apply", "-f", "-", input=as_list([find(moved_components, "Namespace", MOVED)]))
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=as_list(moved_components), check=False)
    assert result.returncode == 0, result.stderr
