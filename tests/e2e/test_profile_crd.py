"""The NetworkProfile CRD's schema on a real kube-apiserver (no webhook registered: the schema alone).
It checks the types and port ranges of portMappings, nothing more: whether an entry fails a pod depends
on the NAD it reaches (only a portmap that declares the portMappings capability gets it, and its backend
only after an IPAM gave an address), which networkprofile-networks judges in the webhook, where a policy
(warn, off, audit) can relax it. A refusal by the schema could not be relaxed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.dev.controlplane import ControlPlane
from webhook.rules.pod_cluster import _BACKEND_PROTOCOLS


def profile(name: str, *entries: dict[str, Any] | None, network: str = "data") -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"networks": [{"name": network, "portMappings": list(entries)}]}}


def apply(cluster: ControlPlane, obj: dict[str, Any], *flags: str) -> tuple[int, str]:
    result = cluster.kubectl("apply", *flags, "-f", "-", input=json.dumps(obj), check=False)
    return result.returncode, result.stderr.strip()


AT = "spec.networks[0].portMappings[0]"


@pytest.mark.parametrize(("entry", "error"), [
    ({"hostPort": 8080, "protocol": "tcp"}, f"{AT}.containerPort: Required value"),
    ({"hostPort": -5, "containerPort": 80, "protocol": "tcp"},
     f"{AT}.hostPort: Invalid value: -5: {AT}.hostPort in body should be greater than or equal to 0"),
    ({"hostPort": 65536, "containerPort": 80, "protocol": "tcp"},
     f"{AT}.hostPort: Invalid value: 65536: {AT}.hostPort in body should be less than or equal to 65535"),
    ({"hostPort": 8080, "containerPort": 0, "protocol": "tcp"},
     f"{AT}.containerPort: Invalid value: 0: {AT}.containerPort in body should be greater than or equal to 1"),
    ({"hostPort": 8080, "containerPort": 80, "protocol": 6},
     f'{AT}.protocol: Invalid value: "integer": {AT}.protocol in body must be of type string'),
])
def test_the_schema_refuses_what_is_out_of_type_or_range_naming_the_field(
        cluster: ControlPlane, entry: dict[str, Any], error: str) -> None:
    code, stderr = apply(cluster, profile("bad", entry), "--dry-run=server")
    assert code != 0
    assert stderr.startswith('The NetworkProfile "bad" is invalid: '), stderr
    assert error in stderr, stderr


def test_the_schema_leaves_the_protocol_and_a_host_port_of_0_to_the_webhook(cluster: ControlPlane) -> None:
    """Whatever the protocol, and with hostPort 0 or left out: these fail a pod only through a NAD whose
    portmap takes portMappings (and for the protocol, only with the backend that refuses it)."""
    named = set(_BACKEND_PROTOCOLS["iptables"]) | set(_BACKEND_PROTOCOLS["nftables"])
    for protocol in sorted(named | {p.upper() for p in named} | {"Tcp", "icmp", "all", "1", "", " tcp"}):
        code, stderr = apply(cluster, profile("p", {"hostPort": 8080, "containerPort": 80, "protocol": protocol}),
                             "--dry-run=server")
        assert code == 0, (protocol, stderr)
    for entry in ({"hostPort": 0, "containerPort": 80, "protocol": "tcp"}, {"containerPort": 80},
                  {"hostPort": 8080, "containerPort": 80}):
        code, stderr = apply(cluster, profile("p", entry), "--dry-run=server")
        assert code == 0, (entry, stderr)


def test_a_profile_whose_nad_has_no_portmap_is_stored_and_its_profiles_read_and_change(cluster: ControlPlane) -> None:
    """The reviewer's case: a macvlan NAD without portmap ignores the entry, and a pod with the same
    annotation starts; the profile is stored, read back as written, relabelled and changed."""
    code, stderr = apply(cluster, profile("plain", {"containerPort": 80}, network="macvlan"))
    assert code == 0, stderr
    try:
        stored = json.loads(cluster.kubectl("get", "networkprofile", "plain", "-o", "json").stdout)
        assert stored["spec"]["networks"] == [{"name": "macvlan", "portMappings": [{"containerPort": 80}]}]
        relabelled = cluster.kubectl("label", "networkprofile", "plain", "team=blue", check=False)
        assert relabelled.returncode == 0, relabelled.stderr
        changed = cluster.kubectl("patch", "networkprofile", "plain", "--type=json", "-p",
                                  '[{"op": "add", "path": "/spec/networks/0/interface", "value": "net9"}]',
                                  check=False)
        assert changed.returncode == 0, changed.stderr
    finally:
        cluster.kubectl("delete", "networkprofile", "plain", "--ignore-not-found")
