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
from webhook.multus.selection import NETWORKS_ANNOTATION
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
#: Plugins (or IPAM types) that take the request from CNI_ARGS as well: Multus's DelegateAdd always adds
#: MAC= and IP= (the ips joined by ",") to the runtime args, whatever the capabilities. Reference plugins
#: v1.10.0: MacEnvArgs in bridge, macvlan and tap, tuning's MAC; static's IP list, host-local's single
#: IP (IPAMEnvArgs, one address).
_CNI_ARGS_READERS = {"mac": frozenset({"bridge", "macvlan", "tap", "tuning"}), "ips": frozenset({"static"})}
_ONE_IP_READERS = frozenset({"host-local"})


def _reads_from_cni_args(netconf: NetConf, capability: str, values: int) -> bool:
    readers = _CNI_ARGS_READERS.get(capability, frozenset())
    if capability == "ips" and values == 1:
        readers = readers | _ONE_IP_READERS
    return any(p.type in readers or p.ipam_type in readers for p in netconf.plugins)


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
            requested = getattr(ref.selection, attr)
            if requested and not any(p.has_capability(capability) for p in netconf.plugins) and not (
                    _reads_from_cni_args(netconf, capability, len(requested) if isinstance(requested, tuple) else 1)):
                yield Violation(f"{ref.field}.{capability}",
                                f"{ref.field} requests {capability}, but no plugin of NAD {ref.namespace}/{ref.name} "
                                f"declares \"capabilities\": {{\"{capability}\": true}} nor reads it from CNI_ARGS: "
                                "it will be ignored")


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
