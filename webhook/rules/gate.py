"""The readiness gate: what a pod's networks need of its node, the two forms the mutating webhook
writes (webhook/admission/mutation.py), and how a rule reads them back from a pod. Here, in the pure
core, so that the mutation that writes the gate and the rule that judges an UPDATE against it share
one definition."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    network_references,
    parse_networks,
)
from webhook.names import AGENT_POD_LABELS, HOSTNAME_LABEL, READY_LABEL, binary_label, is_own_label
from webhook.objects import as_mapping
from webhook.rules.policy import Policy
from webhook.rules.view import ClusterView


def _attaches_nothing(networks: str, namespace: str) -> bool:
    parsed = parse_networks(networks, namespace)
    return parsed.ok and not parsed.selections


def required_binaries(annotations: Mapping[str, Any], namespace: str, view: ClusterView,
                      policy: Policy) -> frozenset[str] | None:
    """The CNI binaries the pod's networks need on its node; None when it asks Multus for nothing."""
    networks = annotations.get(NETWORKS_ANNOTATION)
    refs = network_references(annotations, namespace, multus_namespace=policy.multus_namespace)
    # A value that cannot be read still sends the pod through Multus's parsing on the node; an empty
    # one ("", "[]") attaches nothing.
    asks = bool(refs) or DEFAULT_NETWORK_ANNOTATION in annotations or (
        isinstance(networks, str) and not _attaches_nothing(networks, namespace))
    if not asks:
        return None
    needed: set[str] = set()
    for ref in refs:
        binaries = view.nad_binaries(ref.namespace, ref.name)
        if binaries is not None:  # a missing NAD is refused by rule pod-networks-nad-exists
            needed |= binaries
    return frozenset(needed)


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
    node_required = as_mapping(as_mapping(affinity.get("nodeAffinity")).get(
        "requiredDuringSchedulingIgnoredDuringExecution"))
    node_terms = node_required.get("nodeSelectorTerms")
    selecting = [t for t in node_terms if isinstance(t, Mapping) and (t.get("matchExpressions") or t.get(
        "matchFields"))] if isinstance(node_terms, list) else []
    if selecting:
        common = set.intersection(*map(_term_requirements, selecting))
        if READY_LABEL in common:
            gated = True
            required |= common
    return frozenset(required) if gated else None
