"""Rule pod-networks-gate-outgrown: an UPDATE of a pending pod's selection annotations against the
readiness gate the mutation gave it at CREATE (both forms, none at all), through the real mutation,
the real engine and the validating handler."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest

from webhook.admission.handlers import AdmissionContext, validate
from webhook.admission.mutation import mutate_pod
from webhook.admission.review import AdmissionRequest
from webhook.cluster.static import StaticClusterView
from webhook.rules import Finding, Policy, Subject, evaluate

RULE = "pod-networks-gate-outgrown"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
MACVLAN = json.dumps({"cniVersion": "1.0.0", "name": "m", "type": "macvlan", "master": "eth0",
                      "ipam": {"type": "static", "addresses": [{"address": "10.10.0.5/24"}]}})
OTHER_MACVLAN = json.dumps({"cniVersion": "1.0.0", "name": "m2", "type": "macvlan", "master": "eth1",
                            "ipam": {"type": "static", "addresses": [{"address": "10.11.0.5/24"}]}})
BRIDGE = json.dumps({"cniVersion": "1.0.0", "name": "b", "plugins": [
    {"type": "bridge", "bridge": "br1", "ipam": {"type": "host-local", "subnet": "10.20.0.0/24"}},
    {"type": "tuning"}]})
DHCP = json.dumps({"cniVersion": "1.0.0", "name": "d", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}})
OWN_POD_AFFINITY = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}


def nad(name: str, config: str) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": "apps"}, "spec": {"config": config}}


def view() -> StaticClusterView:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "labels": {"multus-webhook.io/multus-ready": "true"}}}
    return StaticClusterView([node, nad("macvlan", MACVLAN), nad("macvlan2", OTHER_MACVLAN), nad("bridge", BRIDGE),
                              nad("dhcp", DHCP)])


def pod(annotations: dict[str, str], affinity: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if affinity is not None:
        spec["affinity"] = affinity
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps",
                                                            "annotations": annotations}, "spec": spec}


def created(annotations: dict[str, str], affinity: dict[str, Any] | None = None, policy: Policy | None = None,
            agent_namespace: str = "multus-webhook") -> dict[str, Any]:
    """The pod as the apiserver stores it after /mutate: the gate is the mutation's own."""
    obj = pod(annotations, affinity)
    result = mutate_pod(obj, "apps", view(), policy or Policy(), agent_namespace)
    out: dict[str, Any] = jsonpatch.apply_patch(obj, result.ops)
    return out


def annotated(old: dict[str, Any], **annotations: str) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["metadata"]["annotations"].update(annotations)
    return new


def judged(old: dict[str, Any], new: dict[str, Any], policy: Policy | None = None,
           operation: str = "UPDATE") -> list[Finding]:
    subject = Subject(new, "Pod", operation=operation, old_object=old if operation == "UPDATE" else None,
                      view=view())
    return [f for f in evaluate(subject, policy or Policy()) if f.rule == RULE]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


GATE_FORMS = {
    "pod affinity": {},
    "node affinity, for a pod with pod affinity terms of its own": {"affinity": OWN_POD_AFFINITY},
    "node affinity, by the policy": {"policy": Policy(readiness_gate="nodeAffinity")},
}


@pytest.mark.parametrize("form", GATE_FORMS)
def test_networks_needing_binaries_the_gate_leaves_out_are_named_sorted(form: str) -> None:
    old = created({NETWORKS: "macvlan"}, **GATE_FORMS[form])
    found = only(judged(old, annotated(old, **{NETWORKS: "macvlan,bridge"})))
    assert found.severity.value == "warn"
    assert found.field == f'metadata.annotations["{NETWORKS}"]'
    assert "to networks that need the CNI binaries bridge, host-local, tuning, which its readiness gate" in \
        found.message, found.message
    assert "recreate the pod (delete it: a workload's controller makes a new one" in found.message


def test_the_dhcp_daemon_the_gate_leaves_out_is_named_as_a_daemon() -> None:
    old = created({NETWORKS: "macvlan"})
    found = only(judged(old, annotated(old, **{NETWORKS: "macvlan,dhcp"})))
    assert ("to networks that need the CNI binary dhcp and the CNI dhcp daemon answering on /run/cni/dhcp.sock, "
            "which its readiness gate") in found.message, found.message


@pytest.mark.parametrize("form", GATE_FORMS)
def test_a_gate_that_covers_the_new_networks_says_nothing(form: str) -> None:
    old = created({NETWORKS: "macvlan,bridge"}, **GATE_FORMS[form])
    assert judged(old, annotated(old, **{NETWORKS: "bridge"})) == []
    assert judged(old, annotated(old, **{NETWORKS: "macvlan2@net1"})) == []
    assert judged(old, annotated(old, **{NETWORKS: "macvlan", DEFAULT_NETWORK: "apps/bridge"})) == []


def test_the_default_network_is_judged_too() -> None:
    old = created({NETWORKS: "macvlan"})
    found = only(judged(old, annotated(old, **{DEFAULT_NETWORK: "apps/bridge"})))
    assert found.field == f'metadata.annotations["{DEFAULT_NETWORK}"]'
    assert "binaries bridge, host-local, tuning," in found.message


def test_a_pod_created_without_networks_has_no_gate_and_is_told_so() -> None:
    old = created({"team": "blue"})
    assert "affinity" not in old["spec"]
    found = only(judged(old, annotated(old, **{NETWORKS: "macvlan"})))
    assert "has no readiness gate" in found.message
    assert "is not held back until Multus is ready on a node" in found.message
    # Networks that attach nothing ask Multus for nothing: no gate needed.
    assert judged(old, annotated(old, **{NETWORKS: "[]"})) == []


def test_no_readiness_affinity_no_gate_and_no_warning() -> None:
    off = Policy(readiness_affinity=False)
    old = created({"team": "blue"}, policy=off)
    assert judged(old, annotated(old, **{NETWORKS: "macvlan"}), off) == []
    old = created({NETWORKS: "macvlan"}, policy=off)
    assert "affinity" not in old["spec"]
    assert judged(old, annotated(old, **{NETWORKS: "bridge"}), off) == []


def test_a_pod_on_a_node_is_not_judged() -> None:
    old = created({NETWORKS: "macvlan"})
    old["spec"]["nodeName"] = "n1"
    assert judged(old, annotated(old, **{NETWORKS: "bridge"})) == []


def test_create_is_not_judged() -> None:
    # A pod as /validate sees it without /mutate before it (the mutating webhook away): no gate.
    assert judged(pod({}), pod({NETWORKS: "bridge"}), operation="CREATE") == []


def test_an_update_that_leaves_the_networks_as_they_were_says_nothing() -> None:
    old = created({})
    new = annotated(old, **{NETWORKS: "bridge"})
    # Already there (admitted while the webhook was away): a label change is not about networks.
    new["metadata"]["labels"] = {"app": "x"}
    assert judged(new, copy.deepcopy(new)) == []


def test_the_gate_of_the_stored_pod_counts_when_the_update_omits_it() -> None:
    """As check judges a manifest against the stored pod: the manifest has no affinity, which an apply
    leaves as the apiserver stored it."""
    old = created({NETWORKS: "macvlan"})
    manifest = pod({NETWORKS: "bridge"})
    assert "has no readiness gate" not in only(judged(old, manifest)).message
    assert judged(old, pod({NETWORKS: "macvlan2"})) == []


def test_the_gate_is_read_in_the_webhooks_own_namespace() -> None:
    """The handler passes its namespace: a gate naming another namespace is not ours."""
    old = created({NETWORKS: "macvlan"}, agent_namespace="net-system")
    new = annotated(old, **{NETWORKS: "bridge"})

    def warnings(namespace: str) -> list[str]:
        request = AdmissionRequest.model_validate({
            "uid": "u", "kind": {"kind": "Pod"}, "operation": "UPDATE", "namespace": "apps",
            "object": new, "oldObject": old})
        response = validate(request, AdmissionContext(view=view(), namespace=namespace))
        assert response.allowed
        return [w for w in response.warnings if w.endswith(f"[{RULE}]")]

    [outgrown] = warnings("net-system")
    assert "binaries bridge, host-local, tuning," in outgrown
    [none] = warnings("multus-webhook")
    assert "has no readiness gate" in none


def test_a_node_affinity_gate_needs_every_term_that_selects_to_carry_a_label() -> None:
    ready = {"key": "multus-webhook.io/multus-ready", "operator": "In", "values": ["true"]}
    bridge = {"key": "cni.multus-webhook.io/bridge", "operator": "In", "values": ["true"]}
    zone = {"key": "zone", "operator": "In", "values": ["a"]}

    def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": t} if t else {} for t in terms]}}}

    plain = json.dumps({"cniVersion": "1.0.0", "name": "d", "type": "bridge", "bridge": "br2"})
    v = StaticClusterView([nad("plain-bridge", plain)])

    def found(gate: dict[str, Any]) -> list[str]:
        old = pod({}, gate)
        subject = Subject(annotated(old, **{NETWORKS: "plain-bridge"}), "Pod", operation="UPDATE",
                          old_object=old, view=v)
        return [f.message for f in evaluate(subject, Policy()) if f.rule == RULE]

    assert found(affinity([ready, bridge], [zone, ready, bridge], [])) == []  # an empty term selects nothing
    [missing] = found(affinity([ready, bridge], [ready, zone]))  # either term may place the pod
    assert "binary bridge, which its readiness gate" in missing
    [none] = found(affinity([ready, bridge], [zone]))
    assert "has no readiness gate" in none
