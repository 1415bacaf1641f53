"""Rules on a pod's Multus selection annotations that need no cluster state.

Findings name annotation elements as ``webhook.multus.selection`` does:
``metadata.annotations["k8s.v1.cni.cncf.io/networks"][2].interface`` is the interface of the third
element (0-based), whichever form the annotation uses; JSON keys follow as the user spelled them
(``[0].default-route[1]``). Paths are relative to the pod, so for a workload's pod template the
Subject's ``field_prefix`` ("spec.template.") completes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from webhook.cni.fields import describe
from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    PRIMARY_INTERFACE,
    RESERVED_INTERFACES,
    Gateway,
    ParsedNetworks,
    annotation_where,
    checks_default_routes,
    default_route_gateways,
    excess_default_routes,
    excess_default_routes_message,
    interface_names,
)
from webhook.objects import as_mapping
from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import annotation, rule
from webhook.rules.subject import Subject

POD = {"Pod"}
NETWORKS = annotation(NETWORKS_ANNOTATION)
DEFAULT_NETWORK = annotation(DEFAULT_NETWORK_ANNOTATION)


def _string_annotation(subject: Subject, key: str) -> str | Violation | None:
    """The annotation's value; a Violation when it is not a string (possible in a manifest file, which
    the apiserver would refuse outright)."""
    value = subject.annotations.get(key)
    if value is None or isinstance(value, str):
        return value
    where = annotation_where(key)
    return Violation(
        where.field, f"{key} is {describe(value)}, but annotation values are strings: quote the value"
    )


def _parsed(subject: Subject, key: str) -> ParsedNetworks | None:
    return subject.networks if key == NETWORKS_ANNOTATION else subject.default_network


@rule(
    "pod-networks-syntax",
    kinds=POD,
    severity=Severity.DENY,
    title="k8s.v1.cni.cncf.io/networks parses the way Multus reads it",
    judges=[NETWORKS],
)
def networks_syntax(subject: Subject) -> Iterator[Violation]:
    """Multus parses the networks annotation only when the pod's sandbox is created: a malformed
    value (bad JSON, a JSON value of the wrong type, a name the short form refuses, an invalid MAC,
    IP or interface name, a stray comma) then fails every attempt and the pod hangs in
    ContainerCreating. Refusing it at admission names the element and the fix."""
    value = _string_annotation(subject, NETWORKS_ANNOTATION)
    if isinstance(value, Violation):
        yield value
    parsed = _parsed(subject, NETWORKS_ANNOTATION)
    for problem in parsed.problems if parsed else ():
        yield Violation(problem.field, problem.message)


@rule(
    "pod-networks-empty",
    kinds=POD,
    severity=Severity.WARN,
    title="k8s.v1.cni.cncf.io/networks names at least one network",
    judges=[NETWORKS],
)
def networks_empty(subject: Subject) -> Iterator[Violation]:
    """An empty networks annotation (or an empty JSON list) is accepted by Multus, which then starts
    the pod with its primary network only: usually a template variable that expanded to nothing."""
    parsed = _parsed(subject, NETWORKS_ANNOTATION)
    if parsed is not None and parsed.ok and not parsed.selections:
        yield Violation(
            parsed.where.field,
            f"{NETWORKS_ANNOTATION} is empty, so Multus attaches no extra network to this pod: name the "
            "networks to attach (e.g. my-net or other-ns/my-net@net1), or remove the annotation",
        )


@rule(
    "pod-networks-field-names",
    kinds=POD,
    severity=Severity.WARN,
    title="JSON selection elements use only the keys Multus reads, spelled as Multus spells them",
    judges=[NETWORKS, DEFAULT_NETWORK],
)
def networks_field_names(subject: Subject) -> Iterator[Violation]:
    """Multus decodes JSON selection elements with Go's encoding/json, which silently ignores unknown
    keys and matches keys case-insensitively: a typo such as "interfaces" or "ip" is dropped without a
    word and the pod gets a different interface or address than asked for."""
    for key in (NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION):
        parsed = _parsed(subject, key)
        for note in parsed.notes if parsed else ():
            yield Violation(note.field, note.message)


@rule(
    "pod-networks-interface-names",
    kinds=POD,
    severity=Severity.DENY,
    title="every attachment gets its own interface name, and none takes eth0 or lo",
    judges=[NETWORKS],
)
def networks_interface_names(subject: Subject) -> Iterator[Violation]:
    """Two attachments with the same interface name (counting the net1, net2, ... names Multus gives
    elements without one, by position, after those of Multus's defaultNetworks) make the second CNI
    ADD fail with "file exists"; eth0 is the primary network's and lo the loopback's. Either way the
    pod never starts."""
    parsed = _parsed(subject, NETWORKS_ANNOTATION)
    if parsed is None or not parsed.ok:
        return
    defaults = subject.policy.default_networks
    taken = defaults.taken(subject.namespace)
    first_use: dict[str, int] = {}
    for i, (selection, ifname) in enumerate(
        zip(parsed.selections, interface_names(parsed.selections, defaults.first_index(subject.namespace)),
            strict=True)
    ):
        if ifname in RESERVED_INTERFACES:
            why = "which the pod already has (primary network or loopback): choose another name, e.g. data0"
        elif ifname in taken:
            why = f"which {taken[ifname]}: the attachment would fail and the pod never start; choose another name"
        elif ifname in first_use:
            j = first_use[ifname]
            why = (f"which {parsed.where.label}[{j}] ({parsed.selections[j].describe()}) also gets: the second "
                   "attachment would fail and the pod never start; give each element its own interface")
        else:
            first_use[ifname] = i
            continue
        # Worded only for a finding: this rule sees every pod with networks.
        where = parsed.where.at(f"[{i}]")
        how = "requests interface" if selection.interface else "gets interface (by its position)"
        yield Violation(where.at(".interface").field, f"{where.label} ({selection.describe()}) {how} {ifname}, {why}")


@rule(
    "pod-networks-default-route",
    kinds=POD,
    severity=Severity.DENY,
    title="at most one default-route gateway per IP family across all of a pod's attachments",
    judges=[NETWORKS, DEFAULT_NETWORK],
)
def networks_default_route(subject: Subject) -> Iterator[Violation]:
    """Multus (CheckGatewayConfig) counts the default-route gateways of every attachment, the default
    network's and the networks annotation's together, and fails the pod's network setup with
    "multus does not support ECMP for default-route" when there is more than one IPv4 or more than one
    IPv6 gateway: the pod never starts. Multus counts only when the pod's networks annotation is present
    and not "" (TryLoadPodDelegates checks inside ``if networks != nil``, and GetPodNetwork gives nil for
    an absent or empty annotation): a pod whose gateways are all in its default-network annotation and
    whose networks annotation is absent or "" starts, so it is not refused."""
    networks = _parsed(subject, NETWORKS_ANNOTATION)
    if not checks_default_routes(networks):
        return
    gateways: list[Gateway] = []
    # The default network's delegate comes first in Multus's list, then those of the networks annotation.
    for parsed in (_parsed(subject, DEFAULT_NETWORK_ANNOTATION), networks):
        if parsed is None:
            continue
        if not parsed.ok:
            return  # Multus fails on that annotation before it counts gateways; its syntax rule says why
        gateways += default_route_gateways(parsed)
    for family, found in excess_default_routes(gateways).items():
        yield Violation(
            found[1].where.field,
            f"{excess_default_routes_message(family, found)}, so the pod would never start: keep one IPv{family} "
            "default-route",
        )


@rule(
    "pod-default-network-syntax",
    kinds=POD,
    severity=Severity.DENY,
    title="v1.multus-cni.io/default-network names exactly one network, the way Multus reads it",
    judges=[DEFAULT_NETWORK],
)
def default_network_syntax(subject: Subject) -> Iterator[Violation]:
    """The default-network annotation replaces the pod's primary network. Multus refuses an empty
    value, more than one network, or any value the selection grammar refuses, and the pod then
    never gets even its primary network."""
    value = _string_annotation(subject, DEFAULT_NETWORK_ANNOTATION)
    if isinstance(value, Violation):
        yield value
    parsed = _parsed(subject, DEFAULT_NETWORK_ANNOTATION)
    for problem in parsed.problems if parsed else ():
        yield Violation(problem.field, problem.message)
    # Multus gives the default network the interface its element asks for instead of the runtime's
    # eth0 (getIfname prefers the request), and the runtime, which looks for eth0 in the result, then
    # fails every sandbox of the pod.
    if parsed is None or not parsed.ok:
        return
    for i, selection in enumerate(parsed.selections):
        if selection.interface and selection.interface != PRIMARY_INTERFACE:
            where = parsed.where.at(f"[{i}]")
            yield Violation(where.at(".interface").field,
                            f"{where.label} ({selection.describe()}) requests interface {selection.interface}: the "
                            f"default network is the pod's primary interface, which the runtime expects as "
                            f"{PRIMARY_INTERFACE}, so the pod's sandbox would fail; leave the interface out")


def changed_selection(subject: Subject) -> list[str]:
    """The selection annotations an UPDATE changes (all that it has when the old object is unknown)."""
    # Read as every pod rule reads them, a null value as absent (as a manifest file can have it). The
    # ratchet's Parts tell null from absent on purpose, which here would report a change of networks
    # that changes none.
    old = as_mapping(as_mapping(subject.old_object.get("metadata")).get("annotations")) \
        if subject.old_object is not None else {}
    return [key for key in (NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION)
            if old.get(key) != subject.annotations.get(key)]


@rule(
    "pod-networks-changed-after-start",
    kinds=POD,
    severity=Severity.WARN,
    title="the selection annotations of a pod already on a node are not changed",
)
def networks_changed_after_start(subject: Subject) -> Iterator[Violation]:
    """Multus reads the selection annotations only when the pod's sandbox is created on its node:
    changing them on a pod that is already placed does nothing until the pod is recreated, while the
    object now claims networks the pod does not have."""
    if subject.operation != "UPDATE" or subject.old_object is None:
        return
    old_spec = subject.old_object.get("spec")
    node = old_spec.get("nodeName") if isinstance(old_spec, Mapping) else None
    if not node:
        return
    for key in changed_selection(subject):
        yield Violation(
            annotation_where(key).field,
            f"{key} changed on a pod already running on node {node}: Multus reads it only when the pod "
            "starts, so the pod keeps its old networks; delete and recreate the pod (or change the "
            "workload's pod template) to apply it",
        )
