"""Rules on NetworkProfile objects (multus-webhook.io/v1alpha1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from webhook.multus.selection import (
    RESERVED_INTERFACES,
    ParsedNetworks,
    Where,
    default_route_gateways,
    excess_default_routes,
    excess_default_routes_message,
    interface_names,
    parse_elements,
)
from webhook.rules.findings import Severity, Violation
from webhook.rules.pod_cluster import port_mapping_failures
from webhook.rules.registry import field, rule
from webhook.rules.subject import Subject

PROFILE = {"NetworkProfile"}
SPEC_NETWORKS = field("spec", "networks")


def _parsed(subject: Subject) -> ParsedNetworks:
    return parse_elements(subject.spec.get("networks"), subject.namespace,
                          Where("spec.networks", f"NetworkProfile {subject.name} spec.networks"))


@rule("networkprofile-networks", kinds=PROFILE, severity=Severity.DENY,
      title="a NetworkProfile's networks are valid Multus selections with unique interfaces and at most one "
            "default-route gateway per IP family", judges=[SPEC_NETWORKS])
def networks(subject: Subject) -> Iterator[Violation]:
    """Every pod labelled with a broken profile would be refused (or hang); refusing the profile itself
    puts the error where it was made. That includes more than one default-route gateway of one IP
    family among the profile's networks: every pod using it gets them all in its networks annotation,
    and Multus refuses that ("multus does not support ECMP for default-route"). And a portMappings entry
    that portmap fails every ADD with, whatever its backend (a port left out, not above 0 or above 65535,
    a protocol neither iptables nor nftables takes), which pod-networks-port-mappings would deny on every
    such pod: the CRD's schema refuses the same in the cluster, and this says it to `multus-webhook check`."""
    parsed = _parsed(subject)
    for problem in parsed.problems:
        yield Violation(problem.field, problem.message)
    if not parsed.ok:
        return
    # The pods that use a profile are in its namespace: their names count after Multus's defaultNetworks.
    defaults = subject.policy.default_networks
    taken = defaults.taken(subject.namespace)
    names = interface_names(parsed.selections, defaults.first_index(subject.namespace))
    for ifname, count in Counter(names).items():
        if count > 1:
            yield Violation("spec.networks", f"spec.networks gives interface {ifname!r} to {count} networks: "
                                             "each needs a name of its own (set 'interface')")
        if ifname in RESERVED_INTERFACES:
            yield Violation("spec.networks", f"spec.networks uses interface {ifname!r}, which the pod's primary "
                                             "network or loopback already has")
        elif ifname in taken:
            yield Violation("spec.networks", f"spec.networks uses interface {ifname!r}, which {taken[ifname]}")
    for family, found in excess_default_routes(default_route_gateways(parsed)).items():
        yield Violation(found[1].where.field,
                        f"{excess_default_routes_message(family, found)}, so no pod using this profile would start: "
                        f"keep one IPv{family} default-route in the profile")
    for i, selection in enumerate(parsed.selections):
        for j, entry in enumerate(selection.port_mappings):
            for where, failure in port_mapping_failures(f"spec.networks[{i}].portMappings[{j}]", entry):
                yield Violation(where, f"{where} {failure} (in every pod that gets it from this profile, through any "
                                       "NAD whose portmap takes portMappings)")


@rule("networkprofile-nad-exists", kinds=PROFILE, severity=Severity.WARN,
      title="the NADs a NetworkProfile names exist", judges=[SPEC_NETWORKS])
def nad_exists(subject: Subject) -> Iterator[Violation]:
    """A profile naming a missing NAD makes every pod that uses it be refused. Only a warning: the NAD
    may be applied right after the profile (kubectl apply -f of a directory)."""
    if not subject.view.known:
        return
    parsed = _parsed(subject)
    for i, selection in enumerate(parsed.selections):
        if subject.view.nad(selection.namespace, selection.name) is None:
            yield Violation(f"spec.networks[{i}].name", f"spec.networks[{i}] names NetworkAttachmentDefinition "
                                                        f"{selection.ref}, which does not exist (yet)")
