"""Rule pod-networks-gate-missing: a new pod that /mutate would gate (or whose profile it would apply)
but that carries no gate never went through /mutate. Judged against the real mutation: every pod the
mutation handled is admitted, and a pod that skipped it is refused exactly when the mutation would
have written a gate or applied a profile. Also the gate's binaries of the policy's defaultNetworks."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import pytest

from webhook.admission.mutation import as_validated, mutate_pod
from webhook.cluster.static import StaticClusterView
from webhook.multus.selection import DefaultNetworks
from webhook.names import APPLIED_PROFILE_ANNOTATION, NAMESPACE, PROFILE_LABEL
from webhook.objects import MAX_ANNOTATIONS_SIZE
from webhook.rules import Finding, Policy, Severity, Subject, evaluate
from webhook.rules.gate import required_binaries, required_gate_labels

RULE = "pod-networks-gate-missing"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
MACVLAN = json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
                      "ipam": {"type": "whereabouts", "range": "10.10.0.0/24"}})
BRIDGE = json.dumps({"cniVersion": "1.0.0", "name": "b", "plugins": [
    {"type": "bridge", "bridge": "br1", "ipam": {"type": "host-local", "subnet": "10.20.0.0/24"}}]})
OWN_POD_AFFINITY = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
NO_NODE = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}}
CROSS_NAMESPACE_QUOTA = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "apps"},
                         "spec": {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": [
                             {"scopeName": "CrossNamespacePodAffinity", "operator": "Exists"}]}}}
WITH_DEFAULTS = Policy(default_networks=DefaultNetworks(("cluster-bridge",), ("kube-system",)))


def nad(name: str, config: str, namespace: str = "apps") -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": config}}


def profile(name: str, networks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": name, "namespace": "apps"}, "spec": {"networks": networks}}


def view(*extra: dict[str, Any]) -> StaticClusterView:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "labels": {"multus-webhook.io/multus-ready": "true"}}}
    return StaticClusterView([node, nad("macvlan", MACVLAN), nad("bridge", BRIDGE),
                              nad("cluster-bridge", BRIDGE, "kube-system"),
                              profile("data", [{"name": "macvlan"}]), *extra])


def pod(annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
        namespace: str = "apps", **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p", "namespace": namespace}
    if annotations is not None:
        metadata["annotations"] = annotations
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def mutated(obj: dict[str, Any], v: StaticClusterView, policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = jsonpatch.apply_patch(obj, mutate_pod(obj, obj["metadata"]["namespace"], v, policy).ops)
    return out


def judged(obj: dict[str, Any], v: StaticClusterView, policy: Policy) -> list[Finding]:
    return [f for f in evaluate(Subject(obj, "Pod", view=v), policy) if f.rule == RULE]


# name -> (pod, policy, whether /mutate writes a gate or applies a profile to it)
CASES: dict[str, tuple[dict[str, Any], Policy, bool]] = {
    "networks annotation": (pod({NETWORKS: "macvlan"}), Policy(), True),
    "default-network annotation": (pod({DEFAULT_NETWORK: "bridge"}), Policy(), True),
    "profile label alone": (pod(labels={PROFILE_LABEL: "data"}), Policy(), True),
    "a NAD that does not exist (yet)": (pod({NETWORKS: "later"}), Policy(), True),
    "an annotation that cannot be read": (pod({NETWORKS: "[{"}), Policy(), True),
    "node affinity form, own pod affinity": (pod({NETWORKS: "macvlan"}, affinity=OWN_POD_AFFINITY), Policy(), True),
    "node affinity form, by policy": (pod({NETWORKS: "macvlan"}), Policy(readiness_gate="nodeAffinity"), True),
    "pod affinity form into a pod that matches no node": (pod({NETWORKS: "macvlan"}, affinity=NO_NODE), Policy(),
                                                          True),
    "defaultNetworks, no annotation": (pod(), WITH_DEFAULTS, True),
    "defaultNetworks, an annotation that attaches nothing": (pod({NETWORKS: "[]"}), WITH_DEFAULTS, True),
    "gate off, profile label": (pod(labels={PROFILE_LABEL: "data"}), Policy(readiness_affinity=False), True),
    # /mutate writes no gate and applies no profile: never refused.
    "an annotation that attaches nothing": (pod({NETWORKS: "[]"}), Policy(), False),
    "no selection": (pod(), Policy(), False),
    "spec.nodeName": (pod({NETWORKS: "macvlan"}, nodeName="n1"), Policy(), False),
    "gate off": (pod({NETWORKS: "macvlan"}), Policy(readiness_affinity=False), False),
    "node affinity form into a pod that matches no node": (
        pod({NETWORKS: "macvlan"}, affinity=NO_NODE), Policy(readiness_gate="nodeAffinity"), False),
    "annotations over the apiserver's limit": (
        pod({NETWORKS: "macvlan", "big": "x" * MAX_ANNOTATIONS_SIZE}), Policy(), False),
    "a profile that does not exist": (pod(labels={PROFILE_LABEL: "nowhere"}), Policy(), False),
    "defaultNetworks in a system namespace": (pod(namespace="kube-system"), WITH_DEFAULTS, False),
}


#: Gated by /mutate, but no gate is missed: the scheduler places the pod on no node.
NEVER_SCHEDULED = {"pod affinity form into a pod that matches no node"}


@pytest.mark.parametrize("case", CASES)
def test_a_pod_that_went_through_the_mutation_is_never_refused(case: str) -> None:
    obj, policy, _ = CASES[case]
    v = view()
    assert judged(mutated(obj, v, policy), v, policy) == []


@pytest.mark.parametrize("case", CASES)
def test_a_pod_that_skipped_the_mutation_is_refused_when_it_would_have_been_gated_or_profiled(
        case: str) -> None:
    obj, policy, mutates = CASES[case]
    v = view()
    mutation = mutate_pod(obj, obj["metadata"]["namespace"], v, policy)
    # The table says what the mutation does, so that the rule is checked against the real one.
    assert (mutation.affinity is not None or APPLIED_PROFILE_ANNOTATION in (mutation.annotations or {})) == mutates
    found = judged(obj, v, policy)
    assert bool(found) == (mutates and case not in NEVER_SCHEDULED), found
    if found:
        [finding] = found
        assert finding.severity.value == "deny"
        assert "manifests/components/mutate-every-pod" in finding.message
        assert "another mutating webhook" in finding.message


def test_the_message_names_what_asks_and_what_is_missing() -> None:
    v = view()
    [found] = judged(pod({NETWORKS: "bridge"}, labels={PROFILE_LABEL: "data"}), v, Policy())
    assert found.field == f'metadata.annotations["{NETWORKS}"]'
    assert found.message.startswith(f'metadata.annotations["{NETWORKS}"] and metadata.labels["{PROFILE_LABEL}"] ask '
                                    "Multus for networks, but the pod has no readiness gate in spec.affinity")
    assert "NetworkProfile data is not applied" in found.message
    [found] = judged(pod(), v, WITH_DEFAULTS)
    assert found.field == "spec.affinity"
    assert found.message.startswith("the policy's defaultNetworks (cluster-bridge) ask Multus for networks, but the "
                                    "pod has no readiness gate")
    [found] = judged(pod(labels={PROFILE_LABEL: "data"}), v, Policy(readiness_affinity=False))
    assert found.field == f'metadata.labels["{PROFILE_LABEL}"]'
    assert "readiness gate" not in found.message.split(":")[0]


def test_the_policy_can_turn_it_into_a_warning_or_off() -> None:
    v = view()
    obj = pod({NETWORKS: "macvlan"})
    assert [f.severity.value for f in judged(obj, v, Policy(severities={RULE: Severity.WARN}))] == ["warn"]
    assert judged(obj, v, Policy(severities={RULE: Severity.OFF})) == []


RACES = {
    # The gate's binaries change, not whether there is one.
    "a NAD created in between": (view(), view(nad("later", BRIDGE)), {NETWORKS: "later"}, {}),
    "a quota that moves the gate to the node affinity, created in between": (
        view(), view(CROSS_NAMESPACE_QUOTA), {NETWORKS: "macvlan"}, {}),
    # The mutation marked the profile it applied; it is not applied again.
    "a profile changed in between": (view(profile("p2", [{"name": "macvlan"}])),
                                     view(profile("p2", [{"name": "bridge", "interface": "br0"}])),
                                     {}, {PROFILE_LABEL: "p2"}),
}


@pytest.mark.parametrize("race", RACES)
def test_what_changes_between_mutate_and_validate_is_not_taken_for_a_skipped_mutation(race: str) -> None:
    at_mutate, at_validate, annotations, labels = RACES[race]
    obj = mutated(pod(annotations, labels), at_mutate, Policy())
    assert required_gate_labels(obj["spec"]["affinity"], NAMESPACE) is not None
    assert judged(obj, at_validate, Policy()) == []


def test_check_judges_a_pod_with_the_gate_the_mutation_gives_it() -> None:
    # `multus-webhook check` has no apiserver: as_validated is what /validate would see.
    v = view()
    obj, _ = as_validated(pod({NETWORKS: "macvlan"}), "apps", v, Policy())
    assert judged(dict(obj), v, Policy()) == []


# --- the default networks' binaries -------------------------------------------------------------------


def test_the_gate_requires_the_binaries_of_the_policys_default_networks_outside_system_namespaces() -> None:
    v = view()
    assert required_binaries({NETWORKS: "macvlan"}, "apps", v, WITH_DEFAULTS) == {"macvlan", "whereabouts",
                                                                                   "bridge", "host-local"}
    assert required_binaries({}, "apps", v, WITH_DEFAULTS) == {"bridge", "host-local"}
    # Multus gives the pods of its systemNamespaces no default network.
    assert required_binaries({NETWORKS: "macvlan"}, "kube-system", v, WITH_DEFAULTS) == set()
    assert required_binaries({}, "kube-system", v, WITH_DEFAULTS) is None
    # Looked up in Multus's multusNamespace, not the pod's.
    elsewhere = Policy(multus_namespace="multus", default_networks=WITH_DEFAULTS.default_networks)
    assert required_binaries({}, "apps", v, elsewhere) == set()
    # A path is a CNI config on the node: the gate waits for Multus, with no binary the cluster tells.
    on_disk = Policy(default_networks=DefaultNetworks(("/etc/cni/multus/net.d",), ("kube-system",)))
    assert required_binaries({}, "apps", v, on_disk) == set()


def test_the_mutation_gates_a_pod_for_its_default_networks_binaries() -> None:
    v = view()
    obj = mutated(pod({NETWORKS: "macvlan"}), v, WITH_DEFAULTS)
    assert required_gate_labels(obj["spec"]["affinity"], NAMESPACE) == {
        "multus-webhook.io/multus-ready", "cni.multus-webhook.io/macvlan", "cni.multus-webhook.io/whereabouts",
        "cni.multus-webhook.io/bridge", "cni.multus-webhook.io/host-local"}
