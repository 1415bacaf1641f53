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
from webhook.names import APPLIED_PROFILE_ANNOTATION, NAMESPACE, PROFILE_LABEL, READINESS_GATE_ANNOTATION
from webhook.objects import MAX_ANNOTATIONS_SIZE
from webhook.rules import Finding, Policy, Severity, Subject, evaluate
from webhook.rules.gate import GATE_MARKS, required_binaries, required_gate_labels

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


def test_check_judges_a_pod_with_the_gate_and_the_mark_the_mutation_gives_it() -> None:
    # `multus-webhook check` has no apiserver: as_validated is what /validate would see.
    v = view()
    obj, _ = as_validated(pod({NETWORKS: "macvlan"}), "apps", v, Policy())
    assert obj["metadata"]["annotations"][READINESS_GATE_ANNOTATION] == "required"
    assert judged(dict(obj), v, Policy()) == []
    obj, _ = as_validated(pod({NETWORKS: "macvlan"}), "apps", v, Policy(readiness_affinity=False))
    assert obj["metadata"]["annotations"][READINESS_GATE_ANNOTATION] == "off-by-policy"


# --- the mark: /mutate ran --------------------------------------------------------------------------


#: What /mutate marks each case with (None: no mark, the pod asks Multus for nothing or is not mutated).
MARKS = {
    "node affinity form into a pod that matches no node": "matches-no-node",
    "spec.nodeName": "nodeName-set",
    "gate off": "off-by-policy",
    "gate off, profile label": "off-by-policy",
    "an annotation that attaches nothing": None,
    "no selection": None,
    "annotations over the apiserver's limit": None,
    "a profile that does not exist": None,
    "defaultNetworks in a system namespace": None,
}


@pytest.mark.parametrize("case", CASES)
def test_the_mutation_marks_every_pod_that_asks_multus_for_networks_with_what_it_did(case: str) -> None:
    obj, policy, _ = CASES[case]
    v = view()
    assert mutated(obj, v, policy)["metadata"].get("annotations", {}).get(READINESS_GATE_ANNOTATION) == MARKS.get(
        case, "required")


def lost(obj: dict[str, Any], v: StaticClusterView, policy: Policy) -> Finding:
    [found] = judged(obj, v, policy)
    assert found.severity == Severity.WARN
    assert found.field == "spec.affinity"
    assert "never handled" not in found.message
    assert "manifests/components/mutate-every-pod" not in found.message
    return found


def test_a_marked_pod_the_policy_here_would_gate_is_warned_about_not_refused_naming_the_policy() -> None:
    """/mutate and /validate on different policies: the policy ConfigMap changed between the two calls,
    or two replicas disagree (one on its last good policy, one on the defaults)."""
    v = view()
    for asks in (pod({NETWORKS: "macvlan"}), pod(labels={PROFILE_LABEL: "data"}), pod()):
        at_mutate = Policy(readiness_affinity=False, default_networks=WITH_DEFAULTS.default_networks)
        obj = mutated(asks, v, at_mutate)
        assert required_gate_labels(obj["spec"].get("affinity"), NAMESPACE) is None
        found = lost(obj, v, WITH_DEFAULTS)
        assert found.message.startswith(f"/mutate left the pod without a readiness gate as readinessAffinity was "
                                        f"false in its policy ({READINESS_GATE_ANNOTATION} is 'off-by-policy')")
        assert "the policy changed between /mutate and /validate" in found.message
        assert "the webhook's replicas disagree on the policy" in found.message
        # The same pod unmarked, as an older /mutate leaves it: refused (an older /mutate gates it when due).
        unmarked = {**obj, "metadata": {**obj["metadata"], "annotations": {
            k: v for k, v in obj["metadata"]["annotations"].items() if k != READINESS_GATE_ANNOTATION}}}
        assert [f.severity for f in judged(unmarked, v, WITH_DEFAULTS)] == [Severity.DENY]


SPEC_REWRITTEN = {
    # A later webhook writes spec.affinity as it wants it: the gate (either form) is gone.
    "pod affinity gate dropped": ({NETWORKS: "macvlan"}, {}, Policy(), lambda spec: spec.pop("affinity")),
    "node affinity gate dropped": ({NETWORKS: "macvlan"}, {"affinity": OWN_POD_AFFINITY}, Policy(),
                                   lambda spec: spec.update(affinity=OWN_POD_AFFINITY)),
    # A later webhook takes spec.nodeName away (and the gate /mutate wrote when reinvoked with it).
    "spec.nodeName removed": ({NETWORKS: "macvlan"}, {"nodeName": "n1"}, Policy(), lambda spec: spec.pop("nodeName")),
    "the empty node term dropped": ({NETWORKS: "macvlan"}, {"affinity": NO_NODE}, Policy(readiness_gate="nodeAffinity"),
                                   lambda spec: spec.pop("affinity")),
}


@pytest.mark.parametrize("case", SPEC_REWRITTEN)
def test_a_marked_pod_whose_gate_a_later_webhook_took_away_is_warned_about_naming_that_webhook(case: str) -> None:
    annotations, spec, policy, rewrite = SPEC_REWRITTEN[case]
    v = view()
    obj = mutated(pod(annotations, **spec), v, policy)
    assert judged(obj, v, policy) == []
    rewrite(obj["spec"])
    found = lost(obj, v, policy)
    mark = obj["metadata"]["annotations"][READINESS_GATE_ANNOTATION]
    assert found.message.startswith(f"/mutate handled the pod ({READINESS_GATE_ANNOTATION} is {mark!r}) but "
                                    "spec.affinity has no readiness gate: a mutating webhook that ran after /mutate "
                                    "rewrote spec.affinity")


def test_a_marked_pod_is_not_judged_for_its_profile() -> None:
    # A profile label a later webhook adds gets the profile when the apiserver reinvokes /mutate; the
    # profile may have changed or gone since /mutate applied it.
    v = view()
    obj = mutated(pod({NETWORKS: "macvlan"}, labels={PROFILE_LABEL: "data"}), v, Policy())
    del obj["metadata"]["annotations"][APPLIED_PROFILE_ANNOTATION]
    assert judged(obj, v, Policy()) == []


def test_a_mark_written_by_hand_is_kept_and_only_one_of_the_marks_counts() -> None:
    v = view()
    for value in ("yes", "Required", ""):
        mutation = mutate_pod(pod({NETWORKS: "macvlan", READINESS_GATE_ANNOTATION: value}), "apps", v, Policy())
        assert (mutation.annotations or {})[READINESS_GATE_ANNOTATION] == value
        assert f"metadata.annotations['{READINESS_GATE_ANNOTATION}'] is {value!r}, written by hand" in \
            mutation.warnings[0]
        # Not a mark: a pod that skipped /mutate is refused all the same.
        assert [f.severity for f in judged(pod({NETWORKS: "macvlan", READINESS_GATE_ANNOTATION: value}), v,
                                           Policy())] == [Severity.DENY]
    # One of the marks, by hand (or by /mutate before the apiserver reinvoked it): kept, without a word,
    # and taken at its word, like a gate written by hand.
    for value in sorted(GATE_MARKS):
        mutation = mutate_pod(pod({NETWORKS: "macvlan", READINESS_GATE_ANNOTATION: value}), "apps", v, Policy())
        assert (mutation.annotations or {})[READINESS_GATE_ANNOTATION] == value
        assert mutation.warnings == []
        assert [f.severity for f in judged(pod({NETWORKS: "macvlan", READINESS_GATE_ANNOTATION: value}), v,
                                           Policy())] == [Severity.WARN]
    # A value that is not even a string (a manifest `check` reads): no mark, and no crash.
    assert [f.severity for f in judged(pod({NETWORKS: "macvlan", READINESS_GATE_ANNOTATION: {"a": 1}}), v,
                                       Policy())] == [Severity.DENY]  # type: ignore[dict-item]


def test_no_mark_that_would_take_the_annotations_past_the_apiservers_limit() -> None:
    v = view()
    filler = "x" * (MAX_ANNOTATIONS_SIZE - len(NETWORKS) - len("macvlan") - len("big") - 10)
    obj = mutated(pod({NETWORKS: "macvlan", "big": filler}), v, Policy())
    assert READINESS_GATE_ANNOTATION not in obj["metadata"]["annotations"]
    assert required_gate_labels(obj["spec"]["affinity"], NAMESPACE) is not None
    assert judged(obj, v, Policy()) == []


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
