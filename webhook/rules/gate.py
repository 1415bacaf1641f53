"""The readiness gate: what a pod's networks need of its node (its profile applied), the two forms the
mutating webhook writes (webhook/admission/mutation.py), and how a rule reads them back from a pod.
Here, in the pure core, so that the mutation that writes the gate and the rules that judge a pod
against it (pod-networks-gate-outgrown, pod-networks-gate-missing) share one definition."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from webhook.multus.profiles import ProfileMerge
from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    default_network_is_nad,
    network_references,
    parse_networks,
)
from webhook.names import (
    AGENT_POD_LABELS,
    APPLIED_PROFILE_ANNOTATION,
    DHCP_DAEMON,
    DHCP_SOCKET,
    HOSTNAME_LABEL,
    PROFILE_LABEL,
    READINESS_GATE_ANNOTATION,
    READY_LABEL,
    binary_label,
    is_own_label,
)
from webhook.objects import MAX_ANNOTATIONS_SIZE, annotations_size, as_mapping, text_size
from webhook.rules.policy import Policy
from webhook.rules.view import ClusterView

#: The values the mutation gives READINESS_GATE_ANNOTATION: the gate is required in spec.affinity, or why
#: there is none. Fixed: a pod created by an older replica keeps its value through a rolling upgrade.
GATE_REQUIRED = "required"
GATE_OFF_BY_POLICY = "off-by-policy"
GATE_NODE_NAME_SET = "nodeName-set"
GATE_MATCHES_NO_NODE = "matches-no-node"
GATE_MARKS = frozenset({GATE_REQUIRED, GATE_OFF_BY_POLICY, GATE_NODE_NAME_SET, GATE_MATCHES_NO_NODE})


def mark_gate(annotations: dict[str, Any], size: int, mark: str, warnings: list[str]) -> None:
    """Put ``mark`` in ``annotations`` (in place; ``size`` as annotations_size counts them) unless the
    key is there already. The mutation cannot tell its own mark from an earlier call (the apiserver
    reinvokes it) from one written by hand: kept either way. Only one of GATE_MARKS counts as a mark (one
    written by hand is then taken at its word, like a gate written by hand); another value is said to be
    none."""
    given = annotations.get(READINESS_GATE_ANNOTATION)
    if given is None:
        # One the apiserver would refuse as too long is left out: the rule then judges the pod by its
        # gate alone, as an unmarked pod.
        if size + len(READINESS_GATE_ANNOTATION) + len(mark) <= MAX_ANNOTATIONS_SIZE:
            annotations[READINESS_GATE_ANNOTATION] = mark
    elif not (isinstance(given, str) and given in GATE_MARKS):
        warnings.append(f"metadata.annotations[{READINESS_GATE_ANNOTATION!r}] is {given!r}, written by hand; left "
                        f"as it is, and not taken for the mark /mutate leaves ({', '.join(sorted(GATE_MARKS))}) by "
                        "rule pod-networks-gate-missing, which judges the pod by its readiness gate alone")


def _attaches_nothing(networks: str, namespace: str) -> bool:
    parsed = parse_networks(networks, namespace)
    return parsed.ok and not parsed.selections


def required_binaries(annotations: Mapping[str, Any], namespace: str, view: ClusterView,
                      policy: Policy) -> frozenset[str] | None:
    """The CNI binaries the pod's networks need on its node; None when it asks Multus for nothing. Its
    networks are those its annotations select and the policy's defaultNetworks, which Multus attaches at
    every ADD of a pod outside systemNamespaces, annotated or not (pkg/k8sclient GetDefaultNetworks),
    looking each up as a NAD in its multusNamespace."""
    networks = annotations.get(NETWORKS_ANNOTATION)
    refs = network_references(annotations, namespace, multus_namespace=policy.multus_namespace)
    defaults = policy.default_networks.attached(namespace)
    # A value that cannot be read still sends the pod through Multus's parsing on the node; an empty
    # one ("", "[]") attaches nothing.
    asks = bool(refs) or bool(defaults) or DEFAULT_NETWORK_ANNOTATION in annotations or (
        isinstance(networks, str) and not _attaches_nothing(networks, namespace))
    if not asks:
        return None
    nads = [(ref.namespace, ref.name) for ref in refs]
    # One that is a path, or a CNI config file in Multus's confDir rather than a NAD, needs binaries
    # that nothing in the cluster tells: the gate waits for Multus alone.
    nads += [(policy.multus_namespace, name) for name in defaults if default_network_is_nad(name)]
    needed: set[str] = set()
    for nad_namespace, name in nads:
        binaries = view.nad_binaries(nad_namespace, name)
        if binaries is not None:  # a missing NAD is refused by rule pod-networks-nad-exists (nad-in-use)
            needed |= binaries
    return frozenset(needed)


def pod_profile_merge(annotations: Mapping[str, Any], namespace: str, name: str, view: ClusterView,
                      policy: Policy) -> ProfileMerge | None:
    """view.profile_merge of NetworkProfile ``name`` into the selection annotations of a pod in
    ``namespace``, its interfaces named after the policy's defaultNetworks; None when there is no such
    profile."""
    existing = annotations.get(NETWORKS_ANNOTATION)
    default = annotations.get(DEFAULT_NETWORK_ANNOTATION)
    return view.profile_merge(namespace, name, existing if isinstance(existing, str) else None,
                              policy.default_networks.first_index(namespace),
                              default if isinstance(default, str) else None)


def with_profile(annotations: Mapping[str, Any], size: int, name: str,
                 merged: str | None) -> tuple[dict[str, Any], int]:
    """``annotations`` (``size`` as annotations_size counts them) with NetworkProfile ``name`` applied, its
    merge giving the networks annotation ``merged`` (None: left as it is) and the annotation saying it
    was applied unless there is one; and their size, counted for the entries it changes alone: /mutate
    and rule pod-network-profile have counted the rest already."""
    changes = {NETWORKS_ANNOTATION: merged} if merged is not None and merged != annotations.get(
        NETWORKS_ANNOTATION) else {}
    if annotations.get(APPLIED_PROFILE_ANNOTATION) is None:
        changes[APPLIED_PROFILE_ANNOTATION] = name
    profiled = dict(annotations)
    for key, value in changes.items():
        size += text_size(value) + (-text_size(annotations[key]) if key in annotations else text_size(key))
        profiled[key] = value
    return profiled, size


def profiled_annotations(metadata: Mapping[str, Any], namespace: str, view: ClusterView,
                         warnings: list[str], policy: Policy) -> dict[str, Any] | None:
    """The pod's annotations with its labelled profile applied, as /mutate writes them; None when the pod
    is not mutated (webhook/admission/mutation.py)."""
    sized = sized_profiled_annotations(metadata, namespace, view, warnings, policy)
    return None if sized is None else sized[0]


def sized_profiled_annotations(metadata: Mapping[str, Any], namespace: str, view: ClusterView,
                               warnings: list[str], policy: Policy) -> tuple[dict[str, Any], int] | None:
    """profiled_annotations and their size as annotations_size counts it, which the mutation needs
    again for its mark (counting them again was a tenth of its time)."""
    original = metadata.get("annotations")
    if original is not None and not isinstance(original, Mapping):
        return None  # not a valid pod; the apiserver refuses it anyway
    annotations = dict(original or {})
    # The apiserver refuses annotations over MAX_ANNOTATIONS_SIZE, but only after the mutating
    # webhooks: mutating such a pod would be wasted work, and parsing megabytes of selections is slow.
    size = annotations_size(annotations)
    if size > MAX_ANNOTATIONS_SIZE:
        warnings.append(f"metadata.annotations total {size} bytes, over the {MAX_ANNOTATIONS_SIZE} "
                        "the apiserver accepts: not mutated")
        return None
    name = as_mapping(metadata.get("labels")).get(PROFILE_LABEL)
    if not isinstance(name, str):
        return annotations, size
    merge = pod_profile_merge(annotations, namespace, name, view, policy)
    if merge is None or merge.error is not None:
        return annotations, size  # refused (or warned about) by rule pod-network-profile, saying why
    profiled, profiled_size = with_profile(annotations, size, name, merge.merged)
    if profiled_size > MAX_ANNOTATIONS_SIZE:
        # The profile would take the pod past the limit, and the apiserver would refuse it with only
        # "metadata.annotations: Too long": not applied, and rule pod-network-profile refuses the pod
        # saying why.
        return annotations, size
    warnings.extend(merge.notes)
    applied = annotations.get(APPLIED_PROFILE_ANNOTATION)
    if applied is not None and applied != name:
        warnings.append(f"metadata.annotations[{APPLIED_PROFILE_ANNOTATION!r}] is {applied!r}, written by hand; "
                        f"left as it is although NetworkProfile {name} was applied")
    return profiled, profiled_size


def needs_text(binaries: Sequence[str]) -> str:
    """What a gate's ``binaries`` stand for, in words: names.DHCP_DAEMON among them is the dhcp daemon,
    a process the node runs, not a file to copy into its bin directory."""
    plugins = [binary for binary in binaries if binary != DHCP_DAEMON]
    parts = [f"the CNI binar{'ies' if len(plugins) > 1 else 'y'} {', '.join(plugins)}"] if plugins else []
    if DHCP_DAEMON in binaries:
        parts.append(f"the CNI dhcp daemon answering on {DHCP_SOCKET}")
    return " and ".join(parts)


def gate_labels(binaries: Iterable[str]) -> list[str]:
    """The labels, each "true", that a gate for ``binaries`` requires: the ready label, then those of the
    binaries in order of name. A file name that cannot be a label name has none: the controller never
    sets such a label, so no gate may require it."""
    return [READY_LABEL, *(label for label in map(binary_label, sorted(binaries)) if label)]


@functools.lru_cache(maxsize=256)
def readiness_term(binaries: frozenset[str], agent_namespace: str) -> dict[str, Any]:
    """The required pod affinity term for a pod that needs ``binaries``: the agent pod on the same node
    (in ``agent_namespace``) carries the ready label and the label of each binary, which the controller
    gives it while Multus is ready on the node's current boot. Few distinct sets: remembered, and
    shared between answers, so never to be modified.

    A pod affinity and not a node affinity on the node's labels, which would say the same: the kubelet
    checks its pods' required node affinity again when it starts (kubernetes/kubernetes#76322,
    #124586), so after a reboot, with the ready label off until Multus is back, it would fail every
    pod it runs that has the gate (phase Failed, reason NodeAffinity). Pod affinity is the scheduler's
    alone."""
    labels = {**AGENT_POD_LABELS, **{label: "true" for label in gate_labels(binaries)}}
    return {"labelSelector": {"matchLabels": labels}, "namespaces": [agent_namespace],
            "topologyKey": HOSTNAME_LABEL}


@functools.lru_cache(maxsize=256)
def readiness_requirements(binaries: frozenset[str]) -> tuple[dict[str, Any], ...]:
    """The node selector requirements for ``binaries``, the gate of pods that have required pod affinity
    terms of their own (see mutation.mutate_pod). Few distinct sets: remembered, and shared between
    answers, so never to be modified."""
    return tuple({"key": label, "operator": "In", "values": ["true"]} for label in gate_labels(binaries))


def is_readiness_term(term: Any, agent_namespace: str) -> bool:
    """Whether ``term`` is a gate readiness_term wrote (for any set of binaries)."""
    if not isinstance(term, Mapping) or term.get("namespaces") != [agent_namespace] or \
            term.get("topologyKey") != HOSTNAME_LABEL:
        return False
    labels = as_mapping(as_mapping(term.get("labelSelector")).get("matchLabels"))
    return labels.get(READY_LABEL) == "true" and all(labels.get(k) == v for k, v in AGENT_POD_LABELS.items())


def _term_requirements(term: Mapping[str, Any]) -> set[str]:
    """Our labels a nodeSelectorTerm requires to be "true", in the form readiness_requirements writes."""
    expressions = term.get("matchExpressions")
    return {e["key"] for e in expressions if isinstance(e, Mapping) and isinstance(e.get("key"), str)
            and is_own_label(e["key"]) and e.get("operator") == "In" and e.get("values") == ["true"]
            } if isinstance(expressions, list) else set()


def _required_node_terms(affinity: Mapping[str, Any]) -> Any:
    return as_mapping(as_mapping(affinity.get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution")).get("nodeSelectorTerms")


def _selecting_terms(affinity: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The required nodeSelectorTerms that select something: an empty one matches no node."""
    terms = _required_node_terms(affinity)
    return [t for t in terms if isinstance(t, Mapping) and (t.get("matchExpressions") or t.get(
        "matchFields"))] if isinstance(terms, list) else []


def selects_no_node(affinity: Any) -> bool:
    """Whether a required node affinity of only empty terms keeps the pod off every node: the gate in its
    node affinity form is not written into such terms (mutation.with_required_affinity), nor needed."""
    affinity = as_mapping(affinity)
    terms = _required_node_terms(affinity)
    return isinstance(terms, list) and bool(terms) and not _selecting_terms(affinity)


def has_readiness_gate(affinity: Any, agent_namespace: str) -> bool:
    """Whether ``required_gate_labels`` finds a gate, without collecting its labels: asked of every new
    pod (pod-networks-gate-missing), where the labels cost half the time again."""
    affinity = as_mapping(affinity)
    pod_terms = as_mapping(affinity.get("podAffinity")).get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(pod_terms, list) and any(is_readiness_term(term, agent_namespace) for term in pod_terms):
        return True
    selecting = _selecting_terms(affinity)
    return bool(selecting) and all(READY_LABEL in _term_requirements(term) for term in selecting)


def required_gate_labels(affinity: Any, agent_namespace: str) -> frozenset[str] | None:
    """The labels the readiness gate of a pod with ``affinity`` requires, in either form the mutation
    writes; None when it has no gate.

    Pod affinity: every readiness term (required terms are all met, so their labels add up). Node
    affinity: terms are ORed, so a label is required only when every term that selects something
    carries it (an empty term matches no node, and the mutation leaves it so); the gate is there when
    they all carry the ready label."""
    affinity = as_mapping(affinity)
    required: set[str] = set()
    gated = False
    pod_terms = as_mapping(affinity.get("podAffinity")).get("requiredDuringSchedulingIgnoredDuringExecution")
    for term in pod_terms if isinstance(pod_terms, list) else ():
        if is_readiness_term(term, agent_namespace):
            gated = True
            labels = as_mapping(as_mapping(term["labelSelector"]).get("matchLabels"))
            required |= {k for k, v in labels.items() if isinstance(k, str) and is_own_label(k) and v == "true"}
    selecting = _selecting_terms(affinity)
    if selecting:
        common = set.intersection(*map(_term_requirements, selecting))
        if READY_LABEL in common:
            gated = True
            required |= common
    return frozenset(required) if gated else None
