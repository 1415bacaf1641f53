"""kubectl against the real kube-apiserver with multus-webhook registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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


BROKEN_CONFIGS = [
    ({"cniVersion": "0.3.1", "type": "vlan", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.2/24"}]}},
     "spec.config.master", "[nad-plugin-vlan-master]"),
    ({"cniVersion": "0.3.1", "type": "bridge", "vlan": 5000}, "spec.config.vlan", "[nad-plugin-vlan-id]"),
    ({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
      "ipam": {"type": "host-local", "subnet": "10.2.0.1/24"}}, "spec.config.ipam.subnet", "[nad-ipam-host-local]"),
    ({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
      "ipam": {"type": "whereabouts", "range": "10.3.0.0/24", "exclude": ["10.3.0.300/32"]}},
     "spec.config.ipam.exclude[0]", "[nad-ipam-whereabouts]"),
    ({"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "tuning"}, {"type": "macvlan", "master": "eth0"}]},
     "spec.config.plugins[0]", "[nad-plugin-needs-previous-result]"),
    ({"cniVersion": "9.9.9", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}},
     "spec.config.cniVersion", "[nad-config-cni-version]"),
]


@pytest.mark.parametrize(("config", "field", "rule"), BROKEN_CONFIGS, ids=[r for _, _, r in BROKEN_CONFIGS])
def test_broken_cni_configs_are_refused_by_kubectl_apply(
    controlplane: ControlPlane, webhook: WebhookServer, namespace: str, config: dict[str, Any], field: str, rule: str
) -> None:
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "broken", "namespace": namespace}, "spec": {"config": json.dumps(config)}}
    result = controlplane.kubectl("apply", "-f", "-", input=json.dumps(nad), check=False)
    assert result.returncode == 1
    assert DENIED in result.stderr
    assert field in result.stderr
    assert rule in result.stderr
