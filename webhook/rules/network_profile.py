"""Rules on NetworkProfile objects (multus-webhook.io/v1alpha1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from webhook.multus.selection import (
    NETWORKS_ANNOTATION,
    RESERVED_INTERFACES,
    NetworkReference,
    NetworkSelection,
    ParsedNetworks,
    Where,
    default_route_gateways,
    excess_default_routes,
    excess_default_routes_message,
    interface_names,
    parse_elements,
)
from webhook.rules.findings import Severity, Violation
from webhook.rules.pod_cluster import (
    host_local_ips_violations,
    nad_netconf,
    port_mapping_failures,
    port_mapping_violations,
)
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
    and Multus refuses that ("multus does not support ECMP for default-route"). And the portMappings of
    a network: every pod using the profile has them in its networks annotation, so what
    pod-networks-port-mappings would deny there, judged against the NAD the network names (only a
    portmap that declares the portMappings capability gets them), is denied here; where that NAD is not
    known (it does not exist yet, or `multus-webhook check` runs without cluster state), an entry that
    such a portmap would fail with whatever its backend is warned about, saying when it would fail. Its
    ips likewise: what pod-networks-ips-host-local would deny (an address the NAD's host-local IPAM
    cannot give) is denied here, and where the NAD is not known, ips are warned about as unchecked."""
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
        yield from _port_mappings(subject, f"spec.networks[{i}].portMappings", selection)
        yield from _host_local_ips(subject, f"spec.networks[{i}]", selection)


def _host_local_ips(subject: Subject, at: str, selection: NetworkSelection) -> Iterator[Violation]:
    """networkprofile-networks on one network's ips (the element's finding field ``at``): what
    pod-networks-ips-host-local would deny in every pod using the profile."""
    if not selection.ips:
        return
    nad = subject.view.nad(selection.namespace, selection.name) if subject.view.known else None
    if nad is not None:
        netconf = nad_netconf(nad)
        if netconf is not None:
            ref = NetworkReference(NETWORKS_ANNOTATION, selection.namespace, selection.name, "", at, selection)
            yield from host_local_ips_violations(ref, nad, netconf, None, "every pod using this profile")
        return
    unknown = "which does not exist (yet)" if subject.view.known else "which is not known here (no cluster state)"
    yield Violation(f"{at}.ips", f"{at}.ips requests {', '.join(selection.ips)}, not checked against NAD "
                                 f"{selection.ref}, {unknown}: if its IPAM is host-local, an address outside its "
                                 "ranges, a range's gateway or a second address of one range set fails the ADD of "
                                 "every pod using this profile", Severity.WARN)


def _port_mappings(subject: Subject, at: str, selection: NetworkSelection) -> Iterator[Violation]:
    """networkprofile-networks on one network's portMappings (finding field ``at``)."""
    if not selection.port_mappings:
        return
    nad = subject.view.nad(selection.namespace, selection.name) if subject.view.known else None
    if nad is not None:
        netconf = nad_netconf(nad)
        if netconf is not None:  # a NAD that cannot be read fails its pods anyway (nad-config-* say why)
            yield from port_mapping_violations(at, selection.port_mappings, netconf, selection.ref,
                                               NETWORKS_ANNOTATION, "every pod using this profile")
        return
    unknown = "which does not exist (yet)" if subject.view.known else \
        "which is not known here (no cluster state)"
    for j, entry in enumerate(selection.port_mappings):
        for where, failure, needs_address in port_mapping_failures(f"{at}[{j}]", entry):
            after = " after a plugin whose IPAM gives the pod an address" if needs_address else ""
            yield Violation(where, f"{where} {failure} (if NAD {selection.ref}, {unknown}, has a portmap plugin that "
                                   f"declares \"capabilities\": {{\"portMappings\": true}}{after}: it then fails the "
                                   f"ADD of every pod using this profile)", Severity.WARN)


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
