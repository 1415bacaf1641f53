"""Pod mutation: network profiles into the networks annotation, and the readiness pod affinity.

Pure (no aiohttp, no kubernetes client). Every change is an addition: a key the user wrote is never
removed or rewritten, and running the mutation on its own output changes nothing, as
``reinvocationPolicy: IfNeeded`` requires. What cannot be applied (a missing profile, a clash) is left
to the validating rules, which refuse the pod with the reason (rules/pod_cluster.py). The gate itself
(what it requires, its two forms) is defined in rules/gate.py, which the rules read it back with.
"""

from __future__ import annotations

import bisect
import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.names import DHCP_DAEMON, DHCP_SOCKET, NAMESPACE, READY_LABEL, binary_label
from webhook.objects import as_mapping
from webhook.rules.gate import (
    GATE_MATCHES_NO_NODE,
    GATE_NODE_NAME_SET,
    GATE_OFF_BY_POLICY,
    GATE_REQUIRED,
    is_readiness_term,
    mark_gate,
    needs_text,
    readiness_requirements,
    readiness_term,
    required_binaries,
    selects_no_node,
    sized_profiled_annotations,
)
from webhook.rules.policy import Policy
from webhook.rules.view import ClusterView

#: The id `multus-webhook check` reports the warnings of /mutate under: they come from no rule (no
#: policy sets their severity, as none sets it on the server), but every format needs an id to say
#: where a finding comes from (SARIF's ruleId, the text's rule column).
MUTATION_WARNING = "pod-mutation"


@dataclass
class PodMutation:
    ops: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The pod's annotations after the mutation (its profile applied, its mark); None when it is not mutated.
    annotations: dict[str, Any] | None = None
    #: The pod's spec.affinity with the readiness gate; None when the mutation writes none.
    affinity: Mapping[str, Any] | None = None


def with_readiness_term(affinity: Mapping[str, Any], term: Mapping[str, Any]) -> Mapping[str, Any]:
    """``affinity`` with ``term`` among its required pod affinity terms, everything else kept. For pods
    with no required pod affinity term of their own: the scheduler looks for one pod that matches all
    of a pod's terms at once, which the agent pod and a pod the user meant never are. A term already
    there is not added twice, and a podAffinity the apiserver will refuse (not an object, terms not a
    list) is left for it to refuse."""
    pod_affinity = affinity.get("podAffinity")
    if pod_affinity is None:
        pod_affinity = {}
    elif not isinstance(pod_affinity, Mapping):
        return affinity
    terms = pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if terms is None:
        terms = []
    elif not isinstance(terms, list):
        return affinity
    if term in terms:
        return affinity
    required = {"requiredDuringSchedulingIgnoredDuringExecution": [*terms, term]}
    return {**affinity, "podAffinity": {**pod_affinity, **required}}


def with_required_affinity(affinity: Mapping[str, Any], requirements: Sequence[dict[str, Any]]) -> Mapping[str, Any]:
    """``affinity`` with every requirement in every required nodeSelectorTerm that selects something
    (terms are ORed, so each must carry them), or in a new term when there is no required node
    affinity; everything else is kept.

    An empty term (no matchExpressions and no matchFields) matches no node: with the requirements in
    it, it would match every ready node and widen what the user wrote, so it is left empty. So is a
    required node affinity with no terms at all, which the apiserver refuses (mutation runs before its
    validation: filling it in would let the invalid pod through), and a node affinity of a shape it
    refuses."""
    node_affinity = affinity.get("nodeAffinity")
    if node_affinity is None:
        node_affinity = {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") \
        if isinstance(node_affinity, Mapping) else None
    if required is None and isinstance(node_affinity, Mapping):
        return {**affinity, "nodeAffinity": {**node_affinity, "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [dict(r) for r in requirements]}]}}}
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    if not (isinstance(terms, list) and all(isinstance(t, Mapping) and isinstance(
            t.get("matchExpressions") or [], list) for t in terms)):
        return affinity
    result = copy.deepcopy(dict(affinity))
    for term in result["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]:
        if not (term.get("matchExpressions") or term.get("matchFields")):
            continue
        expressions = term["matchExpressions"] = term.get("matchExpressions") or []
        for requirement in requirements:
            if requirement not in expressions:
                expressions.append(dict(requirement))
    return result


def without_readiness_terms(affinity: Mapping[str, Any], agent_namespace: str) -> Mapping[str, Any]:
    """``affinity`` without the gate's pod affinity terms: a pod that has some of its own as well (added
    by a later webhook, or copied from a gated pod) would match none of them with one pod."""
    pod_affinity = as_mapping(affinity.get("podAffinity"))
    terms = pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(terms, list) or not any(is_readiness_term(t, agent_namespace) for t in terms):
        return affinity
    kept = [t for t in terms if not is_readiness_term(t, agent_namespace)]
    return {**affinity, "podAffinity": {**pod_affinity, "requiredDuringSchedulingIgnoredDuringExecution": kept}}


def has_own_pod_affinity(affinity: Mapping[str, Any], agent_namespace: str) -> bool:
    """Whether the pod has required pod affinity terms besides the gate."""
    pod_affinity = affinity.get("podAffinity")
    terms = pod_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") \
        if isinstance(pod_affinity, Mapping) else None
    return isinstance(terms, list) and any(not is_readiness_term(t, agent_namespace) for t in terms)


def node_gate_reason(affinity: Mapping[str, Any], namespace: str, view: ClusterView, policy: Policy,
                     agent_namespace: str) -> str | None:
    """Why the pod is gated by a node affinity on the node labels rather than by readiness_term; "" when
    the policy says so for every pod (no warning: whoever set it knows), None for the pod affinity."""
    if policy.readiness_gate == "nodeAffinity":
        return ""
    if has_own_pod_affinity(affinity, agent_namespace):
        return ("spec.affinity.podAffinity has required terms of its own, which the scheduler needs one pod to "
                "match all at once")
    quotas = view.cross_namespace_affinity_quotas(namespace)
    if quotas:
        return (f"namespace {namespace} has ResourceQuota {', '.join(quotas)} with the scope "
                f"CrossNamespacePodAffinity, which counts a pod affinity term naming namespace {agent_namespace} "
                "(the agents' pods) against its limits and refuses the pod beyond them")
    return None


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _annotation_ops(before: Mapping[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON patch from the pod's annotations to ``after``, a key at a time (the mutation only adds
    keys or rewrites the networks one). Written out rather than diffed with jsonpatch.make_patch,
    whose generic walk was 5% of the server's CPU on the pod path."""
    if before is None:
        return [{"op": "add", "path": "/metadata/annotations", "value": after}] if after else []
    ops: list[dict[str, Any]] = []
    for key, value in after.items():
        if key not in before:
            ops.append({"op": "add", "path": f"/metadata/annotations/{_pointer(key)}", "value": value})
        elif before[key] != value:
            ops.append({"op": "replace", "path": f"/metadata/annotations/{_pointer(key)}", "value": value})
    return ops


def as_validated(pod: Mapping[str, Any], namespace: str, view: ClusterView, policy: Policy,
                 agent_namespace: str = NAMESPACE) -> tuple[Mapping[str, Any], list[str]]:
    """``pod`` as the validating webhook receives it after /mutate: with its profile applied, its
    readiness gate and its mark (which rule pod-networks-gate-missing looks for), and the warnings
    /mutate answers with. For `check`, which has no apiserver to call the two webhooks in turn: the same mutate_pod
    as the server's, so that check warns about what `kubectl apply --dry-run=server` warns about."""
    mutation = mutate_pod(pod, namespace, view, policy, agent_namespace)
    metadata = as_mapping(pod.get("metadata"))
    annotations = mutation.annotations
    if annotations is not None and annotations != (metadata.get("annotations") or {}):
        pod = {**pod, "metadata": {**metadata, "annotations": annotations}}
    if mutation.affinity is not None:
        pod = {**pod, "spec": {**as_mapping(pod.get("spec")), "affinity": mutation.affinity}}
    return pod, mutation.warnings


def mutate_pod(pod: Mapping[str, Any], namespace: str, view: ClusterView, policy: Policy,
               agent_namespace: str = NAMESPACE) -> PodMutation:
    """The patch for ``pod`` in ``namespace``; ``agent_namespace`` is where the agents' pods run (the
    webhook's own namespace)."""
    result = PodMutation()
    metadata = as_mapping(pod.get("metadata"))
    spec = as_mapping(pod.get("spec"))
    sized = sized_profiled_annotations(metadata, namespace, view, result.warnings, policy)
    if sized is None:
        return result
    annotations, size = sized
    result.annotations = annotations
    binaries = required_binaries(annotations, namespace, view, policy)
    if binaries is not None:
        mark = _readiness_gate(result, spec, binaries, namespace, view, policy, agent_namespace)
        if mark is not None:
            mark_gate(annotations, size, mark, result.warnings)
    result.ops += _annotation_ops(metadata.get("annotations"), annotations)
    if result.affinity is not None:
        # The whole affinity at once: both gates keep everything they were given.
        result.ops.append({"op": "add" if spec.get("affinity") is None else "replace", "path": "/spec/affinity",
                           "value": result.affinity})
    return result


def _readiness_gate(result: PodMutation, spec: Mapping[str, Any], binaries: frozenset[str], namespace: str,
                    view: ClusterView, policy: Policy, agent_namespace: str) -> str | None:
    """Sets ``result.affinity`` to the pod's affinity with the gate for ``binaries`` when it needs one;
    returns the mark for the pod (rules/gate.py GATE_MARKS), None for a pod the apiserver refuses."""
    if not policy.readiness_affinity:
        return GATE_OFF_BY_POLICY
    if spec.get("nodeName"):
        result.warnings.append(f"spec.nodeName is set to {spec['nodeName']!r}: the pod is not held back until Multus "
                               "is ready on that node, and may start without its secondary networks")
        return GATE_NODE_NAME_SET
    original_affinity = spec.get("affinity")
    if original_affinity is not None and not isinstance(original_affinity, Mapping):
        return None  # not a valid pod; the apiserver refuses it anyway
    written: Mapping[str, Any] = original_affinity or {}
    mark = GATE_REQUIRED
    why = node_gate_reason(written, namespace, view, policy, agent_namespace)
    if why is None:
        affinity = with_readiness_term(written, readiness_term(binaries, agent_namespace))
    else:
        if selects_no_node(written):
            mark = GATE_MATCHES_NO_NODE
        affinity = with_required_affinity(without_readiness_terms(written, agent_namespace),
                                          readiness_requirements(binaries))
        if why:
            result.warnings.append(
                f"{why}: the readiness gate is a node affinity on the node label {READY_LABEL} (and on the labels "
                "of the CNI binaries) instead, which a kubelet that starts while the node does not carry those "
                "labels checks again and fails the pod for (reason NodeAffinity; see docs/failure-modes.md)")
    if affinity is not original_affinity and affinity != original_affinity:
        result.affinity = affinity
    if view.nodes() and not view.ready_nodes:
        result.warnings.append(f"no node is labelled {READY_LABEL}=true yet: the pod stays Pending until Multus "
                               f"is ready on a node (see the MultusNodeState objects in namespace {agent_namespace})")
    elif view.ready_nodes and view.cni_inventory_known:
        required = _gated_binaries(binaries)
        if required and not _ready_node_holds(view, required):
            missing = tuple(binary for binary in required if not _ready_node_holds(view, (binary,)))
            named = missing or required
            what = needs_text(named) if missing else f"all of {needs_text(named)} at once"
            plugins = sum(binary != DHCP_DAEMON for binary in named)
            where = "a Multus-ready node" if missing else "one Multus-ready node"
            fixes = [f"install {'them' if plugins > 1 else 'it'} into the CNI bin directory (/opt/cni/bin) of "
                     f"{where}"] if plugins else []
            if DHCP_DAEMON in named:
                fixes.append(f"run the CNI dhcp daemon (`/opt/cni/bin/dhcp daemon`, listening on {DHCP_SOCKET}) "
                             f"{'there' if plugins else 'on ' + where}")
            labels = ", ".join(str(binary_label(binary)) for binary in named)
            result.warnings.append(
                f"no node labelled {READY_LABEL}=true has {what}, which the pod's networks need: its readiness gate "
                f"requires the node label(s) {labels} as well, so the pod stays Pending until a Multus-ready node has "
                f"them; {' and '.join(fixes)} (see the MultusNodeState objects in namespace {agent_namespace})")
    return mark


@functools.lru_cache(maxsize=256)
def _gated_binaries(binaries: frozenset[str]) -> tuple[str, ...]:
    """Those of ``binaries`` whose node label the gate requires (those that can have one), in order of
    name. Few distinct sets: remembered."""
    return tuple(binary for binary in sorted(binaries) if binary_label(binary))


def _ready_node_holds(view: ClusterView, binaries: Sequence[str]) -> bool:
    """Whether a Multus-ready node (one at least) reports every one of ``binaries``. Asked of every gated
    pod: where the binaries are on every node, the first ready node answers; else it walks the smaller of
    the ready nodes and the holders of the rarest binary, and stops at the first that fits."""
    ready = view.ready_nodes
    first = ready[0]
    for binary in binaries:  # a loop rather than all(): this is most pods' whole cost
        if first not in view.binary_holders(binary):
            break
    else:
        return True
    holders = sorted((view.binary_holders(binary) for binary in binaries), key=len)
    if len(ready) <= len(holders[0]):
        return any(all(name in held for held in holders) for name in ready)
    return any(all(name in held for held in holders[1:]) and _sorted_has(ready, name) for name in holders[0])


def _sorted_has(names: Sequence[str], name: str) -> bool:
    i = bisect.bisect_left(names, name)
    return i < len(names) and names[i] == name
