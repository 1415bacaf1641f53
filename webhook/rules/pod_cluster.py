"""Rules on a pod's Multus networks that need the cluster: profiles, NADs, capabilities, addresses.

They stay silent when the cluster is unknown (the CLI without --cluster-state). Those on the selection
annotations judge a pod's CREATE, and an UPDATE of them while the pod is not on a node yet: Multus
reads them when the pod's sandbox is made, so a pending pod (one the readiness gate holds back, say)
starts with the new value. Once the pod is on a node, pod-networks-changed-after-start says the change
does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.cni.addresses import between, parse_ip
from webhook.cni.config import NetConf, parse_nad_config
from webhook.cni.ipam import nad_allocation_ranges
from webhook.multus.selection import NETWORKS_ANNOTATION, is_go_ip
from webhook.names import PROFILE_LABEL
from webhook.rules.findings import Severity, Violation
from webhook.rules.pod_networks import DEFAULT_NETWORK, NETWORKS
from webhook.rules.registry import rule
from webhook.rules.subject import Subject

POD = {"Pod"}
PROFILE_FIELD = f'metadata.labels["{PROFILE_LABEL}"]'


def _read_by_multus_yet(subject: Subject) -> bool:
    """Whether Multus has yet to read the pod's selection annotations: a new pod, or one not on a node."""
    spec = subject.obj.get("spec")
    return subject.operation == "CREATE" or not (isinstance(spec, Mapping) and spec.get("nodeName"))


def _netconf(nad: Mapping[str, Any]) -> NetConf | None:
    spec = nad.get("spec")
    return parse_nad_config(spec.get("config") if isinstance(spec, Mapping) else None, "spec.config").netconf


@rule("pod-network-profile", kinds=POD, severity=Severity.DENY, operations={"CREATE"},
      title="the NetworkProfile a pod's label names exists and applies")
def network_profile(subject: Subject) -> Iterator[Violation]:
    """A pod labelled with a profile that does not exist (or whose networks clash with the pod's own)
    would start without the networks its owner asked for. The mutating webhook applies the profile;
    this rule refuses the pod when it could not be applied, saying why."""
    name = subject.labels.get(PROFILE_LABEL)
    if name is None or not subject.view.known:
        return
    if not isinstance(name, str) or not name:
        yield Violation(PROFILE_FIELD, f"{PROFILE_FIELD} must name a NetworkProfile in namespace {subject.namespace}")
        return
    existing = subject.annotations.get(NETWORKS_ANNOTATION)
    merge = subject.view.profile_merge(subject.namespace, name, existing if isinstance(existing, str) else None)
    if merge is None:
        yield Violation(PROFILE_FIELD, f"{PROFILE_FIELD} names NetworkProfile {name!r}, which does not exist in "
                                       f"namespace {subject.namespace}: create it first, or fix the label")
        return
    if merge.error is not None:
        yield Violation(merge.error.field, merge.error.message)


@rule("pod-networks-nad-exists", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="every NAD a pod selects exists")
def nad_exists(subject: Subject) -> Iterator[Violation]:
    """Multus cannot attach a network whose NetworkAttachmentDefinition is missing: the pod hangs in
    ContainerCreating with a CNI error. Refusing it at creation names the missing NAD instead."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        if subject.view.nad(ref.namespace, ref.name) is None:
            hint = "" if ref.selection.namespace_explicit else f" (no namespace given, so {ref.namespace} is meant)"
            yield Violation(ref.field, f"{ref.field} selects NetworkAttachmentDefinition {ref.namespace}/{ref.name}"
                                       f"{hint}, which does not exist: create it, or fix the name or namespace")


_CAPABILITIES = {"ips": "ips", "mac": "mac", "port_mappings": "portMappings", "bandwidth": "bandwidth"}
# Multus's DelegateAdd (pkg/multus/multus.go, "Deprecated in ver 3.5") adds MAC=<mac> and IP=<the ips
# joined by ","> to the runtime args of every delegate, whatever its capabilities, and libcni hands
# them as CNI_ARGS to every plugin of a list and to its IPAM. Who reads them there (CNI plugins
# v1.10.0, whereabouts):
#: Plugin types that read MAC= (MacEnvArgs) and give the interface that address: main/bridge
#: loadNetConf, main/macvlan loadConf, main/tap loadConf, meta/tuning parseConf.
_MAC_READERS = frozenset({"bridge", "macvlan", "tap", "tuning"})
#: IPAM types that read IP= (IPAMEnvArgs): ipam/static loadNetConf (a comma list of CIDRs, added to the
#: config's addresses), ipam/host-local LoadIPAMConfig (one ip.IP, prefix optional: a list fails to
#: parse), whereabouts pkg/config handleEnvArgs (a comma list of CIDRs, added next to the address it
#: allocates). dhcp reads neither.
_IP_READERS = frozenset({"static", "host-local", "whereabouts"})
#: Of those, the ones that take IP= as CIDRs only; host-local takes a single address.
_CIDR_IP_READERS = frozenset({"static", "whereabouts"})
_ONE_IP_READERS = frozenset({"host-local"})


def _reads_from_cni_args(netconf: NetConf, capability: str) -> bool:
    if capability == "mac":
        return any(p.type in _MAC_READERS for p in netconf.plugins)
    if capability == "ips":
        return any(p.ipam_type in _IP_READERS for p in netconf.plugins)
    return False


@rule("pod-networks-capabilities", kinds=POD, severity=Severity.WARN, judges=[NETWORKS, DEFAULT_NETWORK],
      title="runtime options a pod requests are supported by the NAD's plugins")
def capabilities(subject: Subject) -> Iterator[Violation]:
    """ips, mac, portMappings and bandwidth in a selection reach a plugin as runtime config only when it
    declares the matching capability; mac and ips also reach, through CNI_ARGS, the plugins that read
    them there. Otherwise nothing takes them and the pod gets a random address or no limit."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name)
        netconf = _netconf(nad) if nad is not None else None
        if netconf is None:
            continue
        for attr, capability in _CAPABILITIES.items():
            if getattr(ref.selection, attr) and not any(p.has_capability(capability) for p in netconf.plugins) \
                    and not _reads_from_cni_args(netconf, capability):
                yield Violation(f"{ref.field}.{capability}",
                                f"{ref.field} requests {capability}, but no plugin of NAD {ref.namespace}/{ref.name} "
                                f"declares \"capabilities\": {{\"{capability}\": true}} nor reads it from CNI_ARGS: "
                                "it will be ignored")


@rule("pod-networks-ips-ipam", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the NAD's IPAM can parse the ips a pod requests")
def ips_ipam(subject: Subject) -> Iterator[Violation]:
    """Multus passes a selection's ips to the NAD's plugins as IP=<the ips joined by ","> in CNI_ARGS,
    whatever their capabilities, and an IPAM plugin that reads it fails the ADD on a value it cannot
    parse: host-local takes one address, so two or more fail it; static and whereabouts take CIDRs, so
    an address without a prefix length fails them. The pod then never starts."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name) if ref.selection.ips else None
        netconf = _netconf(nad) if nad is not None else None
        if netconf is None:
            continue
        ipams = [p.ipam_type for p in netconf.plugins if p.ipam_type in _IP_READERS]
        ips = ref.selection.ips
        one = next((t for t in ipams if t in _ONE_IP_READERS), None)
        if len(ips) > 1 and one:
            yield Violation(f"{ref.field}.ips",
                            f"{ref.field} requests {len(ips)} addresses, which Multus passes in CNI_ARGS as "
                            f"IP={','.join(ips)}, but the {one} IPAM of NAD {ref.namespace}/{ref.name} reads one "
                            "address there and fails every ADD on a list, so the pod never starts: request one "
                            "address, or give the NAD static IPAM")
        cidr = next((t for t in ipams if t in _CIDR_IP_READERS), None)
        for i, text in enumerate(ips if cidr else ()):
            # A value that is no address at all is pod-networks-syntax's.
            if is_go_ip(text):
                yield Violation(f"{ref.field}.ips[{i}]",
                                f"{ref.field}.ips[{i}] {text} has no prefix length, but the {cidr} IPAM of NAD "
                                f"{ref.namespace}/{ref.name} reads the ips Multus passes in CNI_ARGS as CIDRs and "
                                "fails every ADD on a bare address, so the pod never starts: write it with the "
                                "network's prefix length, e.g. 10.1.0.5/24")


@rule("pod-networks-static-ip-range", kinds=POD, severity=Severity.WARN, judges=[NETWORKS, DEFAULT_NETWORK],
      title="static IPs a pod requests lie in the NAD's ranges")
def static_ip_range(subject: Subject) -> Iterator[Violation]:
    """An address requested outside every range of the NAD is either refused by the IPAM plugin at
    pod start or collides with addresses other networks hand out."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name) if ref.selection.ips else None
        ranges = nad_allocation_ranges(_netconf(nad)) if nad is not None else []
        if not ranges:
            continue
        for i, text in enumerate(ref.selection.ips):
            addr = parse_ip(text.split("/", 1)[0])
            if addr is not None and not any(between(addr, r.first, r.last) for r in ranges):
                spans = ", ".join(f"{r.first}-{r.last}" for r in ranges[:4])
                yield Violation(f"{ref.field}.ips[{i}]", f"{ref.field}.ips[{i}] {text} is outside the ranges of "
                                                         f"NAD {ref.namespace}/{ref.name} ({spans})")


@rule("pod-networks-namespace-isolation", kinds=POD, severity=Severity.OFF, judges=[NETWORKS, DEFAULT_NETWORK],
      title="pods select NADs only from their own and the global namespaces")
def namespace_isolation(subject: Subject) -> Iterator[Violation]:
    """Multus's namespaceIsolation: a pod may only use NADs of its own namespace and of the policy's
    globalNamespaces, so one team cannot attach to another team's network. Off by default, as in
    Multus; set it to deny in the policy to enforce it before Multus does at pod start."""
    if not _read_by_multus_yet(subject):
        return
    allowed = {subject.namespace, *subject.policy.global_namespaces}
    for ref in subject.network_references:
        if ref.annotation == NETWORKS_ANNOTATION and ref.namespace not in allowed:
            yield Violation(ref.field, f"{ref.field} selects {ref.namespace}/{ref.name} from another namespace; only "
                                       f"{', '.join(sorted(allowed))} are allowed with namespace isolation")
