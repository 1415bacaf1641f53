"""The NetworkProfile CRD's schema on a real kube-apiserver (no webhook registered: the schema alone):
it refuses the portMappings that portmap fails every pod with, exactly those networkprofile-networks
denies, and it still lets a profile stored before it was tightened be read and relabelled."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from webhook.dev.controlplane import CRDS, ControlPlane
from webhook.rules import Policy, Subject, evaluate
from webhook.rules.pod_cluster import _BACKEND_PROTOCOLS


def profile(name: str, *entries: dict[str, Any] | None) -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"networks": [{"name": "data", "portMappings": list(entries)}]}}


def apply(cluster: ControlPlane, obj: dict[str, Any], *flags: str) -> tuple[int, str]:
    result = cluster.kubectl("apply", *flags, "-f", "-", input=json.dumps(obj), check=False)
    return result.returncode, result.stderr.strip()


AT = "spec.networks[0].portMappings[0]"


@pytest.mark.parametrize(("entry", "error"), [
    ({"hostPort": 0, "containerPort": 80, "protocol": "tcp"},
     f"{AT}.hostPort: Invalid value: 0: {AT}.hostPort in body should be greater than or equal to 1"),
    ({"containerPort": 80, "protocol": "tcp"}, f"{AT}.hostPort: Required value"),
    ({"hostPort": -5, "containerPort": 80, "protocol": "tcp"},
     f"{AT}.hostPort: Invalid value: -5: {AT}.hostPort in body should be greater than or equal to 1"),
    ({"hostPort": 65536, "containerPort": 80, "protocol": "tcp"},
     f"{AT}.hostPort: Invalid value: 65536: {AT}.hostPort in body should be less than or equal to 65535"),
    ({"hostPort": 8080, "containerPort": 0, "protocol": "tcp"},
     f"{AT}.containerPort: Invalid value: 0: {AT}.containerPort in body should be greater than or equal to 1"),
    ({"hostPort": 8080, "containerPort": 80}, f"{AT}.protocol: Required value"),
    ({"hostPort": 8080, "containerPort": 80, "protocol": "icmp"},
     f'{AT}.protocol: Invalid value: "icmp": {AT}.protocol in body should match'),
])
def test_a_port_mapping_portmap_always_fails_is_refused_naming_the_field(
        cluster: ControlPlane, entry: dict[str, Any], error: str) -> None:
    code, stderr = apply(cluster, profile("bad", entry), "--dry-run=server")
    assert code != 0
    assert stderr.startswith('The NetworkProfile "bad" is invalid: '), stderr
    assert error in stderr, stderr


def test_the_schema_takes_every_protocol_the_webhook_takes_and_no_other(cluster: ControlPlane) -> None:
    """A protocol one portmap backend writes a rule for may work (the NAD names or the node picks the
    backend): refusing it would refuse profiles that work. One neither takes fails every pod."""
    named = set(_BACKEND_PROTOCOLS["iptables"]) | set(_BACKEND_PROTOCOLS["nftables"])
    candidates = sorted(named | {p.upper() for p in named} | {"Tcp", "sCtP", "icmp", "all", "1", "", " tcp"})
    for protocol in candidates:
        obj = profile("p", {"hostPort": 8080, "containerPort": 80, "protocol": protocol})
        webhook_denies = any(f.severity.value == "deny" for f in evaluate(Subject(obj, "NetworkProfile"), Policy()))
        code, stderr = apply(cluster, obj, "--dry-run=server")
        assert (code != 0) == webhook_denies, (protocol, stderr)


def test_a_profile_stored_before_the_schema_refused_it_still_reads_and_relabels(cluster: ControlPlane) -> None:
    """CRD validation ratcheting: an UPDATE that leaves the bad entry as it was is not refused by it. The
    networks list has no list-type, so its elements are not matched up: changing any of it is judged in
    full, as the webhook's own ratcheting judges a changed spec.networks in full."""
    [crd] = yaml.safe_load_all((CRDS / "networkprofiles.yaml").read_text())
    loose = json.loads(json.dumps(crd))
    items = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "networks"]["items"]["properties"]["portMappings"]["items"]
    items["required"] = ["containerPort"]
    items["properties"]["hostPort"] = {"type": "integer"}
    items["properties"]["protocol"] = {"type": "string"}
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(loose))
        cluster.kubectl("wait", "--for=condition=Established", "crd/networkprofiles.multus-webhook.io")
        code, stderr = apply(cluster, profile("old", {"hostPort": 0, "containerPort": 80}))
        assert code == 0, stderr
    finally:
        cluster.install_crds()

    stored = json.loads(cluster.kubectl("get", "networkprofile", "old", "-o", "json").stdout)
    assert stored["spec"]["networks"][0]["portMappings"] == [{"containerPort": 80, "hostPort": 0}]
    relabelled = cluster.kubectl("label", "networkprofile", "old", "team=blue", check=False)
    assert relabelled.returncode == 0, relabelled.stderr
    changed = cluster.kubectl("patch", "networkprofile", "old", "--type=json", "-p",
                              '[{"op": "add", "path": "/spec/networks/0/interface", "value": "net9"}]', check=False)
    assert changed.returncode != 0
    assert f"{AT}.hostPort: Invalid value: 0: {AT}.hostPort in body should be greater than or equal to 1" in \
        changed.stderr, changed.stderr
    assert f"{AT}.protocol: Required value" in changed.stderr, changed.stderr
