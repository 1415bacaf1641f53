"""kubectl against the real kube-apiserver with multus-webhook registered."""

from __future__ import annotations

from pathlib import Path

from webhook.dev.controlplane import ControlPlane, WebhookServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

NAD_WITHOUT_TYPE = """
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: no-type
spec:
  config: '{"cniVersion": "0.3.1", "name": "no-type", "master": "eth0"}'
"""

DENIED = 'admission webhook "nads.multus-webhook.io" denied the request: '


def test_seed_macvlan_nad_is_accepted(controlplane: ControlPlane, webhook: WebhookServer, namespace: str) -> None:
    result = controlplane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "macvlan-network.yaml"),
                                  check=False)
    assert result.returncode == 0, result.stderr
    assert "networkattachmentdefinition.k8s.cni.cncf.io/macvlan-network created" in result.stdout
    stored = controlplane.kubectl("get", "-n", namespace, "net-attach-def", "macvlan-network",
                                  "-o", "jsonpath={.spec.config}")
    assert '"type": "macvlan"' in stored.stdout


def test_nad_without_type_is_refused_with_our_message(
    controlplane: ControlPlane, webhook: WebhookServer, namespace: str
) -> None:
    result = controlplane.kubectl("apply", "-n", namespace, "-f", "-", input=NAD_WITHOUT_TYPE, check=False)
    assert result.returncode == 1
    assert DENIED in result.stderr
    assert "spec.config.type is missing" in result.stderr
    assert "[nad-config-structure]" in result.stderr
    missing = controlplane.kubectl("get", "-n", namespace, "net-attach-def", "no-type", check=False)
    assert "NotFound" in missing.stderr


def test_server_side_dry_run_is_refused_the_same_way(
    controlplane: ControlPlane, webhook: WebhookServer, namespace: str
) -> None:
    result = controlplane.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=NAD_WITHOUT_TYPE,
                                  check=False)
    assert result.returncode == 1
    assert DENIED in result.stderr
    assert "spec.config.type is missing" in result.stderr


def test_valid_nad_passes_server_side_dry_run_without_being_stored(
    controlplane: ControlPlane, webhook: WebhookServer, namespace: str
) -> None:
    result = controlplane.kubectl("apply", "--dry-run=server", "-n", namespace, "-f",
                                  str(EXAMPLES / "bridge-network.yaml"), check=False)
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
    assert "NotFound" in controlplane.kubectl("get", "-n", namespace, "nad", "bridge-network-with-gateway",
                                              check=False).stderr


def test_webhook_down_with_failure_policy_fail_refuses_the_apply(
    controlplane: ControlPlane, webhook: WebhookServer, namespace: str
) -> None:
    assert webhook.stop() == 0  # SIGTERM: drains and exits 0
    result = controlplane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "macvlan-network.yaml"),
                                  check=False)
    assert result.returncode == 1
    assert 'failed calling webhook "nads.multus-webhook.io"' in result.stderr
    assert "NotFound" in controlplane.kubectl("get", "-n", namespace, "nad", "macvlan-network", check=False).stderr
