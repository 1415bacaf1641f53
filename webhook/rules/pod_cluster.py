"""Rules on a pod's Multus networks that need the cluster: profiles, NADs, capabilities, addresses.

They stay silent when the cluster is unknown (the CLI without --cluster-state). Those on the selection
annotations judge a pod's CREATE, and an UPDATE of them while the pod is not on a node yet: Multus
reads them when the pod's sandbox is made, so a pending pod (one the readiness gate holds back, say)
starts with the new value. Once the pod is on a node, pod-networks-changed-after-start says the change
does nothing; before, pod-networks-gate-outgrown says when the new value outgrows the readiness gate the
pod was created with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from webhook.cni.addresses import IPAddress, between, parse_ip, parse_mac, parse_static_cidr
from webhook.cni.config import NetConf, PluginConf, Problem, parse_nad_config
from webhook.cni.fields import describe
from webhook.cni.gojson import fold
from webhook.cni.ipam import (
    HostLocalRequest,
    StaticAddress,
    args_cni_ips,
    args_cni_ips_addresses,
    go_ip_or_cidr,
    host_local_args_ips,
    host_local_request,
    host_local_unallocatable,
    literal_runtime_config_ips,
    nad_allocation_ranges,
    static_addresses,
    whereabouts_ranges,
)
from webhook.cni.plugins import (
    ARGS_CNI,
    IPAM_FIELDS,
    MAC_SETTERS,
    PLUGIN_FIELDS,
    POD_NEVER_STARTS,
    RESOURCE_NAME_ANNOTATION,
    TUNING_ARGS_CNI,
    args_cni_spellings,
    args_cni_type_problems,
    args_sysctl_problems,
    decode_sysctl_spellings,
    host_device_problems,
    interface_mac,
    mac_problems,
    mtu_problems,
    portmap_empty_conditions,
)
from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    NetworkReference,
    PortMapping,
    annotation_where,
    is_go_ip,
)
from webhook.names import APPLIED_PROFILE_ANNOTATION, PROFILE_LABEL, READINESS_GATE_ANNOTATION, binary_label
from webhook.objects import MAX_ANNOTATIONS_SIZE, annotations_size, as_mapping
from webhook.rules.findings import Severity, Violation
from webhook.rules.gate import (
    GATE_MARKS,
    GATE_OFF_BY_POLICY,
    has_readiness_gate,
    needs_text,
    pod_profile_merge,
    profiled_annotations,
    required_binaries,
    required_gate_labels,
    selects_no_node,
    with_profile,
)
from webhook.rules.pod_networks import DEFAULT_NETWORK, NETWORKS, changed_selection
from webhook.rules.registry import rule
from webhook.rules.subject import Subject

POD = {"Pod"}
PROFILE_FIELD = f'metadata.labels["{PROFILE_LABEL}"]'


def _read_by_multus_yet(subject: Subject) -> bool:
    """Whether Multus has yet to read the pod's selection annotations: a new pod, or one not on a node.
    The stored pod says so as well as the new one: an UPDATE keeps spec.nodeName (a pod is bound
    through its own subresource), while check judges a manifest, which seldom carries it, as the
    UPDATE of the stored pod."""
    if subject.operation == "CREATE":
        return True
    return not any(as_mapping(obj.get("spec")).get("nodeName")
                   for obj in (subject.obj, subject.old_object) if obj is not None)


def nad_netconf(nad: Mapping[str, Any]) -> NetConf | None:
    spec = nad.get("spec")
    return parse_nad_config(spec.get("config") if isinstance(spec, Mapping) else None, "spec.config").netconf


@rule("pod-network-profile", kinds=POD, severity=Severity.DENY, operations={"CREATE"},
      title="the NetworkProfile a pod's label names exists and applies")
def network_profile(subject: Subject) -> Iterator[Violation]:
    """A pod labelled with a profile that does not exist (or whose networks clash with the pod's own: an
    interface both use, a second default-route gateway of one IP family; or whose bytes would take the
    pod's annotations past the apiserver's limit) would start without the networks its owner asked for,
    or not at all. The mutating webhook applies the profile; this rule refuses the pod when it could not
    be applied, saying why."""
    name = subject.labels.get(PROFILE_LABEL)
    if name is None or not subject.view.known:
        return
    if not isinstance(name, str) or not name:
        yield Violation(PROFILE_FIELD, f"{PROFILE_FIELD} must name a NetworkProfile in namespace {subject.namespace}")
        return
    merge = pod_profile_merge(subject.annotations, subject.namespace, name, subject.view, subject.policy)
    if merge is None:
        yield Violation(PROFILE_FIELD, f"{PROFILE_FIELD} names NetworkProfile {name!r}, which does not exist in "
                                       f"namespace {subject.namespace}: create it first, or fix the label")
        return
    if merge.error is not None:
        yield Violation(merge.error.field, merge.error.message)
        return
    # What /mutate would write (webhook/rules/gate.py profiled_annotations): past the apiserver's
    # limit it writes nothing, and the pod would otherwise start without the profile's networks.
    own = subject.annotations
    mark = own.get(READINESS_GATE_ANNOTATION)
    if isinstance(mark, str) and mark in GATE_MARKS:
        # /mutate marks the pod after it found the profile too big: not the pod's own bytes.
        own = {key: value for key, value in own.items() if key != READINESS_GATE_ANNOTATION}
    before = annotations_size(own)
    _, after = with_profile(own, before, name, merge.merged)
    if before <= MAX_ANNOTATIONS_SIZE < after:
        yield Violation("metadata.annotations",
                        f"NetworkProfile {name} would bring metadata.annotations to {after} bytes (the pod's own "
                        f"are {before}), over the {MAX_ANNOTATIONS_SIZE} the apiserver accepts, so it was not "
                        f"applied: make the pod's annotations at least {after - MAX_ANNOTATIONS_SIZE} bytes "
                        "shorter")


@rule("pod-network-profile-changed", kinds=POD, severity=Severity.WARN, operations={"UPDATE"},
      title="a pod's profile label changed after creation, when it is no longer applied")
def network_profile_changed(subject: Subject) -> Iterator[Violation]:
    """The mutating webhook applies the NetworkProfile a pod's label names when the pod is created, and
    only then. A label set, changed or removed on an existing pod changes none of its networks (nor its
    readiness gate), and a profile that does not exist is not refused: the label says one thing, the
    pod does another, and nothing told the one who changed it."""
    old = as_mapping(as_mapping((subject.old_object or {}).get("metadata")).get("labels")).get(PROFILE_LABEL)
    new = subject.labels.get(PROFILE_LABEL)
    if subject.old_object is None or old == new:
        return
    change = f"set to {new!r}" if old is None else f"removed (it was {old!r})" if new is None \
        else f"changed from {old!r} to {new!r}"
    yield Violation(PROFILE_FIELD,
                    f"{PROFILE_FIELD} {change} on an existing pod: a NetworkProfile is applied only when a pod is "
                    f"created, so this pod's {NETWORKS_ANNOTATION} annotation and readiness gate stay as they are; "
                    "recreate the pod (for a workload's pods, set the label in its pod template)")


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
# v1.10.0, whereabouts): MAC= the plugins that give the interface a MAC (MAC_SETTERS), and:
#: IPAM types that read IP= (IPAMEnvArgs): ipam/static loadNetConf (a comma list of CIDRs, added to the
#: config's addresses), ipam/host-local LoadIPAMConfig (one ip.IP, prefix optional: a list fails to
#: parse), whereabouts pkg/config handleEnvArgs (a comma list of CIDRs, added next to the address it
#: allocates). dhcp reads neither.
_IP_READERS = frozenset({"static", "host-local", "whereabouts"})
#: Of those, the ones that take IP= as CIDRs only; host-local takes a single address.
_CIDR_IP_READERS = frozenset({"static", "whereabouts"})
_ONE_IP_READERS = frozenset({"host-local"})


#: The requests Multus also passes in CNI_ARGS (MAC=, IP=), which any plugin may read.
_CNI_ARGS_CAPABILITIES = frozenset({"mac", "ips"})


def _unknown_types(netconf: NetConf) -> tuple[str, ...]:
    """The plugin and IPAM types of ``netconf`` the rule tables (PLUGIN_FIELDS, IPAM_FIELDS) do not know
    (sriov, kube-ovn, calico-ipam): what they read from CNI_ARGS is not known here."""
    types = {p.type for p in netconf.plugins if p.type and p.type not in PLUGIN_FIELDS}
    types |= {p.ipam_type for p in netconf.plugins if p.ipam_type and p.ipam_type not in IPAM_FIELDS}
    return tuple(sorted(types))


def _reads_from_cni_args(netconf: NetConf, capability: str) -> bool:
    if capability == "mac":
        return any(p.type in MAC_SETTERS for p in netconf.plugins)
    if capability == "ips":
        return any(p.ipam_type in _IP_READERS for p in netconf.plugins)
    return False


def _gets_runtime_config(ref: NetworkReference, plugin: PluginConf, capability: str) -> bool:
    """Whether a selection's request reaches ``plugin`` as runtimeConfig: libcni injects it only into a
    plugin that declares the capability, and Multus hands the request to libcni only for the networks
    annotation; the default network is Multus's master plugin, for which its mergeCNIRuntimeConfig
    (pkg/types/conf.go) adds nothing of the selection."""
    return _runtime_config_reaches(ref.annotation, plugin, capability)


#: The pod annotations the container runtime reads a pod's bandwidth limits from (containerd's CRI
#: toCNIBandWidth; kubelet's names).
_BANDWIDTH_ANNOTATIONS = ("kubernetes.io/ingress-bandwidth", "kubernetes.io/egress-bandwidth")


@dataclass(frozen=True, slots=True)
class Fills:
    """The capability args libcni gets for a selection (see multus_fills): those it surely gets, and
    those it may or may not get, each with why it is not known here."""

    certain: frozenset[str]
    uncertain: Mapping[str, str]


def _pod_containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    spec = as_mapping(pod.get("spec"))
    for key in ("initContainers", "containers"):
        items = spec.get(key)
        for item in items if isinstance(items, list) else ():
            if isinstance(item, Mapping):
                yield item


def _has_host_port(pod: Mapping[str, Any]) -> bool:
    for container in _pod_containers(pod):
        ports = container.get("ports")
        for port in ports if isinstance(ports, list) else ():
            host_port = as_mapping(port).get("hostPort")
            if isinstance(host_port, int) and not isinstance(host_port, bool) and host_port > 0:
                return True
    return False


def _requests_resource(pod: Mapping[str, Any], resource: str) -> bool:
    """Whether the kubelet may give the pod a device Multus files under ``resource``: a container requests
    that device-plugin resource (requests or limits), or the pod holds a DRA claim. Multus v4.3.0
    (pkg/kubeletclient GetPodResourceMap) files DRA devices under the name of the ResourceClaim the
    kubelet's PodResources API lists, which the pod spec does not tell (a template's claim gets a
    generated name): any claim counts."""
    claims = as_mapping(pod.get("spec")).get("resourceClaims")
    if isinstance(claims, list) and claims:
        return True
    for container in _pod_containers(pod):
        resources = as_mapping(container.get("resources"))
        claims = resources.get("claims")
        if (isinstance(claims, list) and claims) or any(
                resource in as_mapping(resources.get(kind)) for kind in ("requests", "limits")):
            return True
    return False


def multus_fills(ref: NetworkReference, nad: Mapping[str, Any], pod: Mapping[str, Any] | None) -> Fills:
    """The capability args libcni gets for a selection of ``nad`` by ``pod`` (None: any pod, as for a
    profile). Multus v4.3.0 (pkg/types/conf.go mergeCNIRuntimeConfig and newCNIRuntimeConf) starts from
    the container runtime's runtime config, for every network, the default one too: containerd passes
    portMappings when the pod has a hostPort and bandwidth when it has a kubernetes.io/ingress-bandwidth
    or egress-bandwidth annotation (other runtimes may not: these stay uncertain). On the networks
    annotation only (the default network is its master plugin, given none of the selection's), it adds
    each of ips, mac, portMappings and bandwidth the selection requests (non-empty), infinibandGUID, and
    deviceID with CNIDeviceInfoFile when the selection names a device, or (uncertain) when the NAD takes
    one from the device plugin (its resourceName annotation) and the pod requests that resource: Multus
    fills it only when the pod was given a device (pkg/k8sclient getKubernetesDelegate). Never ipRanges:
    Multus's RuntimeConfig has no such field. A plugin declaring none of those filled gets the NAD's
    literal runtimeConfig (see PluginConf.keeps_runtime_config, runtime_config_member and
    runtime_config_cases)."""
    uncertain: dict[str, str] = {}
    if pod is None:
        uncertain["portMappings"] = "a pod with a hostPort gets portMappings from the container runtime"
        uncertain["bandwidth"] = ("a pod with a kubernetes.io/ingress-bandwidth or egress-bandwidth annotation gets "
                                  "bandwidth from the container runtime")
    else:
        if _has_host_port(pod):
            uncertain["portMappings"] = ("the pod has a hostPort, which the container runtime may pass as portMappings "
                                         "(containerd does)")
        pod_annotations = as_mapping(as_mapping(pod.get("metadata")).get("annotations"))
        if any(name in pod_annotations for name in _BANDWIDTH_ANNOTATIONS):
            uncertain["bandwidth"] = ("the pod has a kubernetes.io/ingress-bandwidth or egress-bandwidth annotation, "
                                      "which the container runtime may pass as bandwidth (containerd does)")
    if ref.annotation != NETWORKS_ANNOTATION:
        return Fills(frozenset(), uncertain)
    selection = ref.selection
    filled = {capability for attr, capability in _CAPABILITIES.items() if getattr(selection, attr)}
    if selection.infiniband_guid:
        filled.add("infinibandGUID")
    resource = as_mapping(as_mapping(nad.get("metadata")).get("annotations")).get(RESOURCE_NAME_ANNOTATION)
    if selection.device_id:
        filled |= {"deviceID", "CNIDeviceInfoFile"}
    elif isinstance(resource, str) and resource and (pod is None or _requests_resource(pod, resource)):
        why = (f"Multus fills deviceID only when the device plugin gave the pod a {resource} device (the NAD's "
               "resourceName)")
        uncertain |= {"deviceID": why, "CNIDeviceInfoFile": why}
    return Fills(frozenset(filled), {k: v for k, v in uncertain.items() if k not in filled})


@rule("pod-networks-device-resource", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="a pod on a NAD that takes its device from a device plugin requests that resource")
def device_resource(subject: Subject) -> Iterator[Violation]:
    """A NAD annotated k8s.v1.cni.cncf.io/resourceName takes its device from a device plugin: Multus
    looks the name up among the devices the kubelet gave the pod (its PodResources API) and passes the
    device to the plugin (deviceID; pciBusID for host-device). A pod that requests no such resource
    (no container's requests or limits name it) and holds no DRA resource claim (Multus matches those by
    claim name, through PodResources too) gets none. host-device without a device of its own then fails
    every ADD: denied. Other plugins (sriov-cni, which needs deviceID) are warned about. A pod that names
    deviceID in its selection brings the device itself. network-resources-injector, which adds the
    request from the annotation, is a mutating webhook and runs before this check."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = None if ref.selection.device_id else subject.view.nad(ref.namespace, ref.name)
        resource = as_mapping(as_mapping(nad.get("metadata")).get("annotations")).get(
            RESOURCE_NAME_ANNOTATION) if nad is not None else None
        if not isinstance(resource, str) or not resource or _requests_resource(subject.obj, resource):
            continue
        netconf = nad_netconf(nad) if nad is not None else None
        if netconf is None:
            continue
        # The NAD as Multus hands it to a pod without the device: as if it had no resourceName.
        problems = [p for plugin in netconf.plugins for p in host_device_problems(plugin, False)]
        if problems:
            # A warning among them: whether the NAD's literal runtimeConfig.deviceID reaches it is not known.
            outcome = (f"{problems[0].field} is host-device with no device of its own, which then fails the ADD "
                       '(its error: specify either "device", "hwaddr", "kernelpath" or "pciBusID")')
        elif any(plugin.type == "host-device" for plugin in netconf.plugins):
            continue  # host-device then moves the device its config names
        else:
            outcome = "its plugins get no deviceID (sriov-cni, for one, fails without it)"
        yield Violation(
            ref.field,
            f"{ref.field}: NAD {ref.namespace}/{ref.name} takes its device from a device plugin "
            f"({RESOURCE_NAME_ANNOTATION}: {resource}), but no container of the pod requests {resource} (resources."
            "requests or limits) and the pod holds no DRA resource claim (which Multus matches by claim name "
            f"through the kubelet's PodResources): Multus passes no device, and {outcome}; add "
            f"resources.limits[{resource!r}] to a container (network-resources-injector does so when it runs)",
            None if any(not p.warning for p in problems) else Severity.WARN)


def runtime_config_cases(plugin: PluginConf, fills: Fills) -> tuple[tuple[bool, ...], str]:
    """Whether the NAD's literal runtimeConfig reaches ``plugin`` as written (False: a runtimeConfig is
    injected, see PluginConf.runtime_config_member), in each case to judge, and why there are two when
    there are: (False,) when a capability the plugin declares is surely filled, (True,)
    when none can be, else (True, False), saying which fills are uncertain."""
    if not plugin.keeps_runtime_config(fills.certain):
        return (False,), ""
    uncertain = sorted({why for name, why in fills.uncertain.items() if plugin.has_capability(name)})
    if not uncertain:
        return (True,), ""
    return (True, False), "; ".join(uncertain)


def judged_both_ways(plugin: PluginConf, fills: Fills,
                     judge: Callable[[bool], Iterable[Problem]]) -> Iterator[tuple[Problem, str]]:
    """``judge(runtime_config)`` in each case of runtime_config_cases, each problem with a note for its
    message: a problem found only in some cases (see PluginConf.judged_both_ways) is a warning, its note
    saying on what it depends and why that is not known here; the note is empty otherwise."""
    cases, why = runtime_config_cases(plugin, fills)
    if len(cases) == 1:
        yield from ((problem, "") for problem in judge(cases[0]))
        return
    for problem, condition in plugin.judged_both_ways(judge):
        yield problem, f" (only if {condition}; not known here: {why})" if condition else ""


def _runtime_config_reaches(annotation: str, plugin: PluginConf, capability: str) -> bool:
    """_gets_runtime_config for a selection on ``annotation``."""
    return annotation == NETWORKS_ANNOTATION and plugin.has_capability(capability)


@rule("pod-networks-capabilities", kinds=POD, severity=Severity.WARN, judges=[NETWORKS, DEFAULT_NETWORK],
      title="runtime options a pod requests are supported by the NAD's plugins")
def capabilities(subject: Subject) -> Iterator[Violation]:
    """ips, mac, portMappings and bandwidth in a selection reach a plugin as runtime config only when it
    declares the matching capability, and only on the networks annotation (Multus passes the default
    network none of them); mac and ips also reach, through CNI_ARGS, the plugins that read them there.
    Otherwise nothing takes them and the pod gets a random address or no limit. Which plugins read
    CNI_ARGS is known of the reference plugins alone: with another type in the NAD (sriov, calico-ipam),
    a mac or ips it may read there is said to be possibly ignored. A mac that reaches them may
    still be replaced: macvlan and tap read MAC= before the NAD's literal runtimeConfig.mac, bridge before
    args.cni.mac (the NAD's, or the selection's "cni-args") and that runtimeConfig.mac, tuning (which changes
    the MAC afterwards) before both of its own; only the mac capability puts the pod's mac in runtimeConfig
    (replacing the literal one), where tuning's args.cni.mac still comes after it. The pod then gets
    another MAC than it asked for (judged both ways where whether the literal runtimeConfig reaches the
    plugin is not known here)."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name)
        netconf = nad_netconf(nad) if nad is not None else None
        if nad is None or netconf is None:
            continue
        if ref.selection.mac:
            fills = multus_fills(ref, nad, subject.obj)
            for problem, note in _mac_replaced(ref, netconf, fills):
                yield Violation(problem.field, f"{problem.message}{note}")
        for attr, capability in _CAPABILITIES.items():
            if getattr(ref.selection, attr) \
                    and not any(_gets_runtime_config(ref, p, capability) for p in netconf.plugins) \
                    and not _reads_from_cni_args(netconf, capability):
                nad_ref = f"NAD {ref.namespace}/{ref.name}"
                why = (f"on the default network Multus passes it to no plugin as runtime config, whatever their "
                       f"capabilities, and no plugin of {nad_ref} reads it from CNI_ARGS"
                       if any(p.has_capability(capability) for p in netconf.plugins) else
                       f"no plugin of {nad_ref} declares \"capabilities\": {{\"{capability}\": true}} nor reads it "
                       "from CNI_ARGS")
                unknown = _unknown_types(netconf) if capability in _CNI_ARGS_CAPABILITIES else ()
                outcome = ": it will be ignored" if not unknown else (
                    f", unless its {' or '.join(unknown)} plugin does (not a reference plugin: not known here): "
                    "it may be ignored")
                yield Violation(f"{ref.field}.{capability}", f"{ref.field} requests {capability}, but {why}{outcome}")


def _mac_replaced(ref: NetworkReference, netconf: NetConf, fills: Fills) -> Iterator[tuple[Problem, str]]:
    """Another MAC than the one the selection requests, which the last plugin of the NAD that sets one
    gives the pod's interface (see interface_mac), judged both ways (judged_both_ways, for the first plugin
    whose literal runtimeConfig may or may not reach it)."""
    mac = ref.selection.mac
    setters = [p for p in netconf.plugins if p.type in MAC_SETTERS]
    if not setters or parse_mac(mac) is None:
        return  # a mac Multus cannot parse fails the pod: pod-networks-syntax's
    cases = {id(p): runtime_config_cases(p, fills)[0] for p in setters}
    decider = next((p for p in setters if len(cases[id(p)]) > 1), setters[0])

    def judge(runtime_config: bool) -> list[Problem]:
        last: tuple[PluginConf, str | None, str] | None = None
        for p in setters:
            reaches = runtime_config if len(cases[id(p)]) > 1 else cases[id(p)][0]
            got = interface_mac(p, mac, _runtime_config_reaches(ref.annotation, p, "mac"), reaches,
                                ref.selection.cni_args, _cni_args_at(ref))
            last = (p, *got) if got is not None else last
        # One the plugin cannot read fails the ADD: nad-plugin-mac's or pod-networks-cni-args-tuning's.
        if last is None or last[1] is None or parse_mac(last[2]) in (None, parse_mac(mac)):
            return []
        plugin, path, value = last
        capability = (f', or declare "capabilities": {{"mac": true}} on {plugin.path} so that the requested mac comes '
                      "last" if plugin.type != "tuning" and ref.annotation == NETWORKS_ANNOTATION else "")
        return [Problem(f"{ref.field}.mac",
                        f"{ref.field} requests mac {mac}, but {plugin.path}, the {plugin.type} plugin of NAD "
                        f"{ref.namespace}/{ref.name}, reads {path} ({value}) after the mac Multus passes it, and the "
                        f"interface gets {value}: remove {path}{capability}", warning=True)]

    yield from judged_both_ways(decider, fills, judge)


#: The protocols each portmap backend writes a rule for (plugins v1.10.0 plugins/meta/portmap: it checks
#: no protocol itself but writes it as it is, "-p <protocol> --dport <hostPort>" for iptables, "<protocol>
#: dport <hostPort>" for nftables). Run with iptables v1.8.9 and nft: iptables takes a protocol with ports
#: in any case (TCP, Udp) or by number (6) but not udplite; nft's keywords are lowercase and include
#: udplite, and it takes no number; both refuse none, and one without ports (icmp).
_BACKEND_PROTOCOLS = {"iptables": frozenset({"tcp", "udp", "sctp", "dccp", "6", "17", "132", "33"}),
                      "nftables": frozenset({"tcp", "udp", "sctp", "dccp", "udplite"})}
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp", "33": "dccp"}
_MAX_PORT = 65535


def _port_mapping_problems(at: str, entry: PortMapping | None, backend: str | None,
                           reaches_backend: bool) -> Iterator[tuple[str, str, Severity]]:
    """(field, what is wrong, severity) of one entry of a selection's portMappings as portmap takes it.
    portmap's parseConfig refuses an entry whose containerPort, then hostPort, is not above 0 ("Invalid
    container port number: 0"), on every ADD (and DEL) whatever its backend; a null entry reaches it as
    null, which it decodes as zeros. The rest is its backend's (``backend``: the one the plugin names,
    None when the node picks), which it calls only for a container address the chain gave it
    (``reaches_backend``): a port above 65535, a protocol it writes no rule for fail there (iptables:
    invalid port; nftables: value out of range, a syntax error)."""
    if entry is None:
        yield (at, "is null, which Multus passes on to portmap as it is and portmap reads as an entry of "
                   "zeros: it fails the ADD with \"Invalid container port number: 0\"; remove the entry",
               Severity.DENY)
        return
    for key, value, said in (("containerPort", entry.container_port, "container"),
                             ("hostPort", entry.host_port, "host")):
        if value <= 0:
            shown = "0 (or left out)" if value == 0 else str(value)
            yield (f"{at}.{key}", f"is {shown}: portmap refuses a port number that is not above 0 and fails the "
                                  f"ADD with \"Invalid {said} port number: {value}\"; give a port from 1 to "
                                  f"{_MAX_PORT}", Severity.DENY)
            return  # portmap stops at the first bad port
    if entry.host_ip and not is_go_ip(entry.host_ip):
        yield (f"{at}.hostIP", f"{entry.host_ip!r} is not an IP address: portmap takes an address it cannot parse "
                               "for an IPv6 one, so it skips the mapping on an IPv4 pod and hands the text to its "
                               "backend as the address on an IPv6 one; write an address like 192.0.2.10, or leave "
                               "hostIP out",
               Severity.WARN)
    if not reaches_backend:
        return
    # Both backends skip the rules of an entry whose hostIP is of the other family than the container
    # address (one they cannot parse counts as IPv6): its containerPort, and with nftables the whole
    # entry, are written or not depending on the pod's addresses. iptables writes the hostPort and
    # protocol of every entry into one rule all the same.
    skipped_by = ("containerPort",) if backend == "iptables" else ("containerPort", "hostPort", "protocol")
    found: list[tuple[str, str, Severity]] = []
    for key, value in (("containerPort", entry.container_port), ("hostPort", entry.host_port)):
        if value > _MAX_PORT:
            found.append((f"{at}.{key}", f"is {value}, above {_MAX_PORT}: portmap writes it into the rule of its "
                                         "backend, which iptables and nftables both refuse, failing the ADD; give a "
                                         f"port from 1 to {_MAX_PORT}", Severity.DENY))
    protocol = _protocol_problem(f"{at}.protocol", entry.protocol, backend)
    if protocol is not None:
        found.append(protocol)
    for where, problem, severity in found:
        if entry.host_ip and where.rsplit(".", 1)[1] in skipped_by and severity is Severity.DENY:
            yield (where, f"{problem} (unless the pod has no address of the family of hostIP "
                          f"{entry.host_ip!r}: portmap then skips it)", Severity.WARN)
        else:
            yield (where, problem, severity)


def port_mapping_failures(at: str, entry: PortMapping | None) -> Iterator[tuple[str, str, bool]]:
    """(field, what is wrong, whether it needs an address) of a portMappings entry that fails the ADD of
    a pod when a portmap that takes portMappings gets it, whatever that portmap's backend: what
    pod-networks-port-mappings denies with either backend. The last is True for what only the backend
    refuses, which portmap calls only for an address an IPAM earlier in the chain gave; False for what
    portmap itself refuses (a port not above 0). A hostIP is left out of it: an entry that fails only
    where the pod has an address of hostIP's family maps nothing elsewhere. For a NetworkProfile whose
    NAD is not known (networkprofile-networks), where whether any portmap gets it cannot be told."""
    judged = replace(entry, host_ip="") if entry is not None else None
    own = {where for where, _, severity in _port_mapping_problems(at, judged, None, False)
           if severity is Severity.DENY}
    for where, problem, severity in _port_mapping_problems(at, judged, None, True):
        if severity is Severity.DENY:
            yield where, problem, where not in own


def port_mapping_violations(at: str, entries: Sequence[PortMapping | None], netconf: NetConf, nad_ref: str,
                            annotation: str, pods: str = "") -> Iterator[Violation]:
    """What pod-networks-port-mappings finds in the portMappings ``entries`` of one selection (finding
    field ``at``) of NAD ``nad_ref`` (namespace/name), whose config is ``netconf``: only a portmap that
    declares the portMappings capability gets them, and only as runtime config (a selection on the
    networks ``annotation``); what its backend refuses only when an IPAM earlier in the chain gave an
    address. ``pods`` says which pods get them, when not just the one judged (e.g. a profile's)."""
    for index, plugin in enumerate(netconf.plugins):
        if plugin.type != "portmap" or not _runtime_config_reaches(annotation, plugin, "portMappings"):
            continue
        named = plugin.field("backend")
        backend = named[1] if named is not None and isinstance(named[1], str) else None
        # An address comes from an IPAM earlier in the chain; with none, portmap calls no backend.
        addressed = any(p.ipam_type for p in netconf.plugins[:index])
        for i, entry in enumerate(entries):
            for where, problem, severity in _port_mapping_problems(f"{at}[{i}]", entry, backend, addressed):
                yield Violation(where, f"{where} {problem} (it reaches {plugin.path}, the portmap plugin of NAD "
                                       f"{nad_ref}, as runtimeConfig{f', in {pods}' if pods else ''})", severity)
        which = "its iptables backend" if backend == "iptables" else \
            "the iptables backend it takes with none named (nftables only on a node without iptables)"
        for path, family in portmap_empty_conditions(plugin) if addressed else ():
            yield Violation(at, f"{at} reach {plugin.path}, the portmap plugin of NAD {nad_ref}, whose {path} is "
                                f"empty: {which} passes it to iptables as an argument of its own, which iptables "
                                f"refuses (\"Bad argument\"), failing the ADD of {pods or 'the pod'} if it has an "
                                f"{family} address; remove the empty entry from the NAD", Severity.WARN)


def _protocol_problem(field: str, protocol: str, backend: str | None) -> tuple[str, str, Severity] | None:
    """What the portmap ``backend`` (None: either, the node's choice) makes of a mapping's protocol."""
    backends = [backend] if backend in _BACKEND_PROTOCOLS else list(_BACKEND_PROTOCOLS)
    refuse = [b for b in backends if (protocol.lower() if b == "iptables" else protocol) not in _BACKEND_PROTOCOLS[b]]
    if not refuse:
        return None
    shown = "missing" if not protocol else repr(protocol)
    name = _PROTOCOL_NUMBERS.get(protocol, protocol.lower())
    fix = f"write {name!r}" if name in _BACKEND_PROTOCOLS["nftables"] & _BACKEND_PROTOCOLS["iptables"] else \
        "write one of tcp, udp, sctp"
    if len(refuse) == len(backends):
        whose = f"its {backend} backend refuses" if len(backends) == 1 else \
            "both its backends, iptables and nftables, refuse"
        return (field, f"is {shown}: portmap writes it as it is into the rule of its backend, and {whose} it, "
                       f"failing the ADD; {fix}", Severity.DENY)
    return (field, f"is {shown}: portmap writes it as it is into the rule of its backend, and {refuse[0]} refuses it "
                   "(this portmap names no backend: the node decides, nftables where iptables does not work), "
                   f"failing the ADD there; {fix}, or name the backend", Severity.WARN)


@rule("pod-networks-port-mappings", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the portMappings a pod requests are ones the NAD's portmap plugin takes")
def port_mappings(subject: Subject) -> Iterator[Violation]:
    """Multus passes a selection's portMappings (networks annotation only) as runtime config to the NAD's
    plugins that declare "capabilities": {"portMappings": true}. portmap, the plugin that does, refuses
    on every ADD an entry whose containerPort or hostPort is not above 0 (an entry left out or null is
    all zeros), and hands the rest to its iptables or nftables backend, for a container address an
    earlier plugin's IPAM gave, which fails on a port above 65535: the pod never starts; so does a
    protocol the backend has no rule for (none at all, icmp; nftables also refuses upper case and
    numbers), denied when the backend named, or both, refuse it and warned about when only the one the
    node may pick does, or when nftables may skip the entry (a hostIP of the other family). Every
    portmap of the chain that gets them is judged. A hostIP that is not an address is warned about:
    portmap passes it to its backend unchecked; so is an empty entry of the NAD's conditionsV4 or
    conditionsV6 where iptables takes them: iptables refuses it as an argument, failing the pods of that
    address family. When no plugin declares the capability the entries are ignored, which
    pod-networks-capabilities says."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        entries = ref.selection.port_mappings
        nad = subject.view.nad(ref.namespace, ref.name) if entries else None
        netconf = nad_netconf(nad) if nad is not None else None
        if netconf is not None:
            yield from port_mapping_violations(f"{ref.field}.portMappings", entries, netconf,
                                               f"{ref.namespace}/{ref.name}", ref.annotation)


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
        netconf = nad_netconf(nad) if nad is not None else None
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


def host_local_ips_violations(ref: NetworkReference, nad: Mapping[str, Any], netconf: NetConf,
                              pod: Mapping[str, Any] | None, pods: str = "") -> Iterator[Violation]:
    """What pod-networks-ips-host-local finds in the ips of selection ``ref`` of ``nad`` (whose config is
    ``netconf``) by ``pod`` (None: any pod, as for a profile), for each plugin with the host-local IPAM.
    ``pods`` says which pods request them, when not just the one judged (e.g. a profile's)."""
    fills = multus_fills(ref, nad, pod)
    for plugin in netconf.plugins:
        if plugin.ipam_type == "host-local":
            yield from _host_local_requested(ref, plugin, f"NAD {ref.namespace}/{ref.name}", fills, pods)


def _host_local_asked(ref: NetworkReference, plugin: PluginConf, runtime_config: bool
                      ) -> tuple[HostLocalRequest, list[tuple[str, IPAddress]]] | None:
    """What host-local (``plugin``'s IPAM) reads of the config (see host_local_request; ``runtime_config``
    as there) and every address it is asked for, (JSON path, address), the one the selection requests
    last; None when the selection does not request exactly one address it parses (several are
    pod-networks-ips-ipam's) or the config's own cannot be judged (nad-ipam-host-local's or
    pod-networks-cni-args-ips')."""
    ips = ref.selection.ips
    addr = go_ip_or_cidr(ips[0]) if len(ips) == 1 else None
    if addr is None:
        return None
    request = host_local_request(plugin, ref.selection.cni_args, _cni_args_at(ref), POD_NEVER_STARTS,
                                 runtime_config=runtime_config)
    if request.problems or not request.judged or not request.sets:
        return None
    return request, [*request.requested, (f"{ref.field}.ips[0]", addr)]


def _host_local_requested(ref: NetworkReference, plugin: PluginConf, nad_ref: str,
                          fills: Fills, pods: str = "") -> Iterator[Violation]:
    """What host-local (``plugin``'s IPAM) cannot give of the address a selection requests: it takes it
    from IP= in CNI_ARGS (and runtimeConfig.ips, with the capability) together with args.cni.ips (the
    NAD's, and the selection's "cni-args" merged in) and, when no capability the plugin declares is
    filled (``fills``, see multus_fills; judged both ways when that is not known, see
    judged_both_ways), the NAD's literal runtimeConfig.ips, every one from its ranges (the literal
    runtimeConfig.ipRanges ahead of its own), at most one per range set (see host_local_request and
    host_local_unallocatable)."""
    at = f"{ref.field}.ips[0]"

    def judge(runtime_config: bool) -> Iterator[Problem]:
        asked = _host_local_asked(ref, plugin, runtime_config)
        if asked is None:
            return
        request, addresses = asked
        for problem in host_local_unallocatable(addresses, request.sets, POD_NEVER_STARTS):
            if problem.field == at:
                yield problem

    for problem, note in judged_both_ways(plugin, fills, judge):
        yield Violation(at, f"{problem.message} (Multus passes it in CNI_ARGS to {plugin.path}, the plugin with the "
                            f"host-local IPAM of {nad_ref}{f', in {pods}' if pods else ''}){note}",
                        Severity.WARN if problem.warning else None)


@rule("pod-networks-ips-host-local", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the NAD's host-local IPAM can give the ips a pod requests")
def ips_host_local(subject: Subject) -> Iterator[Violation]:
    """host-local gives a requested address only from its ranges (a literal runtimeConfig.ipRanges of the
    NAD, which reaches it when Multus fills none of its declared capabilities, ahead of its own; Multus
    never passes ipRanges), never a range's gateway, and at most one address of each range set, counting
    those of args.cni.ips (the NAD's, or the selection's "cni-args") and of such a literal
    runtimeConfig.ips; it fails the ADD on any other, so the pod never starts. Where a fill is not known
    here (portMappings from the container runtime for a pod with a hostPort, bandwidth for one with a
    bandwidth annotation, deviceID for one requesting the NAD's resourceName), both cases are judged: what
    only one refuses is a warning."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name) if ref.selection.ips else None
        netconf = nad_netconf(nad) if nad is not None else None
        if nad is not None and netconf is not None:
            yield from host_local_ips_violations(ref, nad, netconf, subject.obj)


@rule("pod-networks-static-ip-range", kinds=POD, severity=Severity.WARN, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the ips a pod requests lie outside whereabouts' pool")
def static_ip_range(subject: Subject) -> Iterator[Violation]:
    """whereabouts returns a requested address as it is, wherever it lies, but keeps no record of it: one
    inside the pool it allocates from (its ranges less their exclude lists) may be handed to another pod
    as well. static has no range: it uses the address it is given. What host-local cannot give is
    pod-networks-ips-host-local's."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name) if ref.selection.ips else None
        netconf = nad_netconf(nad) if nad is not None else None
        if netconf is None:
            continue
        nad_ref = f"NAD {ref.namespace}/{ref.name}"
        pool = [r for r in nad_allocation_ranges(netconf) if r.ipam_type == "whereabouts"]
        for i, text in enumerate(ref.selection.ips):
            addr = parse_ip(text.split("/", 1)[0])
            hit = next((r for r in pool if between(addr, r.first, r.last)), None) if addr is not None else None
            if hit is not None:
                at = f"{ref.field}.ips[{i}]"
                yield Violation(at, f"{at} {text} lies in the pool the whereabouts IPAM of {nad_ref} allocates from "
                                    f"({hit.first}-{hit.last}, {hit.path}), but whereabouts keeps no record of a "
                                    "requested address and may hand it to another pod too: request an address "
                                    "outside the range, or add it to the range's exclude list")


def _cni_args_at(ref: NetworkReference) -> str:
    """The JSON path of a selection's "cni-args", spelled as the pod wrote the key."""
    return f'{ref.field}["{ref.selection.cni_args_key}"]'


def _same_addresses(a: Sequence[str], b: Sequence[str]) -> bool:
    return {parse_static_cidr(x) or x for x in a} == {parse_static_cidr(x) or x for x in b}


def _own(ips: Sequence[str], own: Sequence[StaticAddress]) -> str:
    """The IPAM's own addresses, which every pod on the NAD gets, for a message; and those the pod requests
    as well: the IPAM returns them twice, and the interface plugins (plugins v1.10.0 pkg/ipam
    ConfigureIface) fail the ADD adding one again."""
    requested = {parse_static_cidr(text) for text in ips}
    twice = [f"{a.address}/{a.network.prefixlen}" for a in own if (a.address, a.network) in requested]
    listed = ", ".join(f"{a.address}/{a.network.prefixlen} ({a.path})" for a in own)
    said = f"{listed}, as does every pod on this NAD, so its pods share {'them' if len(own) > 1 else 'it'}"
    if twice:
        said += (f"; the pod requests {', '.join(twice)} as well, which the interface plugin then fails to add a "
                 'second time ("file exists"), so the pod never starts')
    return said


def _static_extra(ref: NetworkReference, plugin: PluginConf, runtime_config: bool) -> str | None:
    """What a static IPAM gives a pod requesting ips besides or instead of them, or None when it gives
    exactly those; ``runtime_config``: whether the NAD's literal runtimeConfig reaches it (see
    judged_both_ways). Per plugins v1.10.0 plugins/ipam/static/main.go LoadIPAMConfig, in this order: the
    CIDRs of IP= in CNI_ARGS (where Multus always puts the ips) are appended to ipam.addresses; then a
    non-empty args.cni.ips replaces the lot; then a non-empty runtimeConfig.ips (the "ips" capability, or
    the NAD's literal one) replaces it again."""
    ips = ref.selection.ips
    if _gets_runtime_config(ref, plugin, "ips"):
        return None
    capability = (f', or declare "capabilities": {{"ips": true}} on {plugin.path} so that the requested ips '
                  "replace them" if ref.annotation == NETWORKS_ANNOTATION else "")
    # Multus merges a selection's cni-args into args.cni key by key, the selection's winning, beside the
    # NAD's other spellings, which static decodes too.
    found = args_cni_ips(plugin, ref.selection.cni_args, _cni_args_at(ref))
    literal = literal_runtime_config_ips(plugin, runtime_config)
    for source, dropped, where in ((literal, "CNI_ARGS and args.cni.ips", "the NAD's literal runtimeConfig"),
                                   (found, "CNI_ARGS", "args.cni")):
        given = [value for _, value in source.entries] if source is not None else []
        if source is not None and (source.mistyped or any(parse_static_cidr(value) is None for value in given)):
            return None  # static fails the ADD: nad-ipam-static's to say, or pod-networks-cni-args-ips'
        if source is not None and source.source is not None and given:
            if _same_addresses(given, ips):
                return None
            return (f"static takes its addresses from {source.source} when there are any, dropping the ones of "
                    f"{dropped}: the pod gets {', '.join(given)} instead; drop ips from {where}{capability}")
    ipam = plugin.ipam
    own, _ = static_addresses(ipam, plugin.ipam_path) if ipam is not None else ([], [])
    if not own:
        return None
    return (f"static adds them to the NAD's own addresses: the pod also gets {_own(ips, own)}; leave "
            f"ipam.addresses out of a NAD whose pods request ips{capability}")


def _whereabouts_extra(ref: NetworkReference, plugin: PluginConf) -> str | None:
    """What whereabouts gives a pod requesting ips besides them, or None. whereabouts reads no runtimeConfig
    and no args.cni; pkg/config/config.go handleEnvArgs appends the CIDRs of IP= to ipam.addresses, and
    cmd/whereabouts.go cmdAdd returns an address allocated from each range and then all of those."""
    ipam = plugin.ipam
    if ipam is None:
        return None
    ranges, _ = whereabouts_ranges(ipam, plugin.ipam_path)
    own, _ = static_addresses(ipam, plugin.ipam_path)
    parts = [f"an address it allocates from each of its ranges ({', '.join(str(r.network) for r in ranges)})"
             ] if ranges else []
    parts += [f"its own ipam.addresses, {_own(ref.selection.ips, own)}"] if own else []
    if not parts:
        return None
    return (f"whereabouts returns them next to the addresses it gives every pod: the pod also gets "
            f"{' and '.join(parts)}; to give a pod only the addresses it requests, use static IPAM")


def _host_local_extra(ref: NetworkReference, plugin: PluginConf, runtime_config: bool) -> str | None:
    """What host-local gives a pod requesting one address besides it, or None; ``runtime_config``: whether the
    NAD's literal runtimeConfig reaches it (see host_local_request). plugins v1.10.0 host-local cmdAdd
    allocates one address from each range set: a requested one from the set holding it, else the next free
    one. Nothing when it fails the ADD (pod-networks-ips-ipam's, pod-networks-ips-host-local's or
    pod-networks-cni-args-ips' to say)."""
    found = _host_local_asked(ref, plugin, runtime_config)
    if found is None:
        return None
    request, asked = found
    if any(True for _ in host_local_unallocatable(asked, request.sets, POD_NEVER_STARTS)):
        return None
    addr = asked[-1][1]  # the selection's
    pod_base = _cni_args_at(ref)
    held = {n for _, a in asked for n, s in enumerate(request.sets) for r in s if between(a, r.start, r.end)}
    # What the pod's own "cni-args" ips request it asked for: only the NAD's requests are extra.
    others = {str(a): path for path, a in request.requested if a != addr and not path.startswith(pod_base)}
    parts = [f"{', '.join(f'{a} ({path})' for a, path in others.items())}, which the NAD requests for every pod"
             ] if others else []
    free = [s[0].path if len(s) == 1 else f"{s[0].path} and the rest of its set" for n, s in enumerate(request.sets)
            if n not in held]
    parts += [f"an address it allocates from each other range set ({', '.join(free)})"] if free else []
    if not parts:
        return None
    return (f"host-local gives one address of each of its range sets: the pod also gets {' and '.join(parts)}; to "
            "give a pod only the address it requests, keep one range set per address family it requests, or use "
            "static IPAM")


def _ipam_extra(ref: NetworkReference, plugin: PluginConf, runtime_config: bool) -> list[Problem]:
    """What the plugin's IPAM gives a pod requesting ips besides or instead of them, as a problem of the
    selection's ips (see ips_extra_addresses); ``runtime_config`` as in judged_both_ways."""
    kind = plugin.ipam_type
    extra = _static_extra(ref, plugin, runtime_config) if kind == "static" else \
        _whereabouts_extra(ref, plugin) if kind == "whereabouts" else \
        _host_local_extra(ref, plugin, runtime_config) if kind == "host-local" else None
    return [Problem(f"{ref.field}.ips", extra, warning=True)] if extra is not None else []


@rule("pod-networks-ips-extra-addresses", kinds=POD, severity=Severity.WARN, judges=[NETWORKS, DEFAULT_NETWORK],
      title="a pod that requests ips gets those addresses and no others")
def ips_extra_addresses(subject: Subject) -> Iterator[Violation]:
    """Multus passes a selection's ips to the NAD's plugins as IP= in CNI_ARGS, and as runtimeConfig to
    those that declare the "ips" capability (on the networks annotation only). static IPAM adds the ips
    of CNI_ARGS to the NAD's own ipam.addresses, so the pod gets those too, as every pod on the NAD does:
    pods sharing an address, and a pod requesting one of them gets it twice, which fails its ADD. Only
    runtimeConfig (the capability) replaces them; args.cni.ips (the NAD's, or a selection's "cni-args")
    replaces the requested ones instead. whereabouts reads only CNI_ARGS, and returns the requested ips
    next to an address it allocates from each of its ranges and next to its own addresses. host-local gives
    an address of each of its range sets (a literal runtimeConfig.ipRanges of the NAD among them), the
    requested one from the set holding it, and those args.cni.ips or a literal runtimeConfig.ips request for
    every pod. A static IPAM also takes the addresses of the NAD's literal runtimeConfig.ips instead. Where
    whether the NAD's literal runtimeConfig reaches the plugin is not known here, both cases are judged
    and the message says on what it depends."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name) if ref.selection.ips else None
        netconf = nad_netconf(nad) if nad is not None else None
        if nad is None or netconf is None:
            continue
        fills = multus_fills(ref, nad, subject.obj)
        at = f"{ref.field}.ips"
        for plugin in netconf.plugins:
            for problem, note in judged_both_ways(plugin, fills, functools.partial(_ipam_extra, ref, plugin)):
                yield Violation(at, f"{at} requests {', '.join(ref.selection.ips)}, which Multus passes to the "
                                    f"{plugin.ipam_type} IPAM of NAD {ref.namespace}/{ref.name} in CNI_ARGS, and "
                                    f"{problem.message}{note}")


#: (the selection, its cni-args, the NAD, a plugin of it, where the cni-args go)
_GivenCniArgs = tuple[NetworkReference, Mapping[str, Any], Mapping[str, Any], PluginConf, str]


def _plugins_given_cni_args(subject: Subject, names: Sequence[str], reader: Callable[[PluginConf], str | None]
                            ) -> Iterator[_GivenCniArgs]:
    """Each plugin of the NAD of a selection whose "cni-args" has a key decoded as one of args.cni.``names``
    by the plugin, or its IPAM, that ``reader`` names (None: the plugin reads none of them), with those
    cni-args, the NAD and the end of a message that says where they go. Multus merges by exact key, but plugins
    decode args.cni as Go does: "SysCtl" is tuning's sysctl too."""
    # Selections with cni-args are rare: the common pod pays for one pass over its references (three rules
    # call this on every pod review, on the admission path).
    given = [ref for ref in subject.network_references if ref.selection.cni_args is not None]
    if not (given and subject.view.known and _read_by_multus_yet(subject)):
        return
    folded = {fold(name) for name in names}
    for ref in given:
        cni_args = ref.selection.cni_args
        if cni_args is None or not any(fold(key) in folded for key in cni_args):
            continue
        nad = subject.view.nad(ref.namespace, ref.name)
        netconf = nad_netconf(nad) if nad is not None else None
        if nad is None or netconf is None:
            continue
        for plugin in netconf.plugins:
            if (what := reader(plugin)) is not None:
                yield ref, cni_args, nad, plugin, (f"(Multus merges it into args.cni of {plugin.path}, the {what} "
                                                   f"of NAD {ref.namespace}/{ref.name})")


def _tuning(plugin: PluginConf) -> str | None:
    return "tuning plugin" if plugin.type == "tuning" else None


def _reads_args_cni(plugin: PluginConf) -> str | None:
    """The plugins that decode typed fields of args.cni (ARGS_CNI: tuning, bridge)."""
    return f"{plugin.type} plugin" if plugin.type in ARGS_CNI else None


@rule("pod-networks-cni-args-sysctl", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the sysctls a pod's cni-args give the NAD's tuning plugin are ones it applies")
def cni_args_sysctl(subject: Subject) -> Iterator[Violation]:
    """Multus merges a selection's "cni-args" into args.cni of every plugin of the NAD (the selection's
    keys winning), on both annotations; the tuning plugin copies args.cni.sysctl into its own sysctl
    object. Without one in the NAD it crashes on the copy, and it refuses keys that do not land below
    /proc/sys/net/: either way the pod never starts. Multus re-encodes args.cni with its keys sorted, and
    tuning decodes every spelling of sysctl ("SYSCTL" < "Sysctl" < "sysctl") into one map in that order:
    the pod's and the NAD's objects add up, a later null empties the map, a later key replaces the
    pod's value (a warning). Multus merges into "args" and "cni" by exact key, adding them beside a
    NAD's "Args" or "CNI", which tuning decodes too, in sorted order: their entries count with the pod's.
    Only what reaches tuning is judged; the NAD's own args.cni.sysctl is nad-plugin-tuning-sysctl's."""
    for ref, cni_args, _nad, plugin, merged_into in _plugins_given_cni_args(subject, ["sysctl"], _tuning):
        base = _cni_args_at(ref)
        spelled = [key for key in cni_args if fold(key) == "sysctl"]
        # injectCNIArgs sets the selection's keys in the plugin's "args" and "cni" (exact keys: Multus
        # reads the config into Go maps), beside any other spelling tuning also decodes.
        merged = decode_sysctl_spellings(args_cni_spellings(plugin, "sysctl", cni_args, base))
        then = (f'and the pod never starts; add "sysctl": {{}} to {plugin.path} of NAD {ref.namespace}/{ref.name}, '
                f'or drop {" and ".join(spelled)} from {base}')
        for problem in args_sysctl_problems(plugin, merged, True, then, "the pod never starts"):
            yield Violation(problem.field, f"{problem.message} {merged_into}",
                            Severity.WARN if problem.warning else None)


#: What pod-networks-cni-args-tuning judges of args.cni (sysctl is pod-networks-cni-args-sysctl's), and of
#: those, what is only type-checked (a mac is read as the plugin reads it).
_TUNING_FIELDS = tuple(name for name in TUNING_ARGS_CNI if name != "sysctl")
_TYPED_FIELDS = tuple(name for name in _TUNING_FIELDS if name != "mac")


@rule("pod-networks-cni-args-tuning", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the mac, mtu, promisc, allmulti and txQLen a pod's cni-args give the NAD's tuning plugin (and the "
            "mac its bridge plugin) are ones it reads")
def cni_args_tuning(subject: Subject) -> Iterator[Violation]:
    """tuning reads mac, promisc, mtu, allmulti and txQLen from args.cni too (its IPAMArgs), where Multus
    merges a selection's "cni-args", every spelling Go matches as with sysctl (pod-networks-cni-args-sysctl),
    each into a typed Go field: "mtu": "1500" or "promisc": "yes" fails the decode of its config, a mac Go's
    net.ParseMAC does not read fails setting it, and the kernel refuses an mtu below 0; either way the pod's
    ADD fails on every try and the pod never starts. Multus passes the numbers as Go encodes a float64
    ("mtu": 1500.0 arrives as 1500). bridge decodes args.cni.mac (its BridgeArgs) as a string: "mac": 5 fails
    it the same way; it sets a non-empty one on the container's veth unless a non-empty runtimeConfig.mac
    comes first (ahead of the pod's own mac, MAC= in CNI_ARGS; the NAD's literal one only while no
    capability bridge declares gets a value), so a mac net.ParseMAC does not read, or one
    the kernel refuses on an Ethernet device (multicast, all zeros, not six bytes), fails the ADD. A pod's
    own mac is such a runtimeConfig.mac when bridge declares the mac capability (networks annotation
    only): its cni-args mac is then not used, nor judged."""
    for ref, cni_args, nad, plugin, merged_into in _plugins_given_cni_args(subject, _TUNING_FIELDS, _reads_args_cni):
        base = _cni_args_at(ref)
        fills = multus_fills(ref, nad, subject.obj)
        pod_mac = _runtime_config_reaches(ref.annotation, plugin, "mac") and bool(ref.selection.mac)
        judge = functools.partial(mac_problems, plugin, cni_args, base, pod_mac)
        for problem, note in chain(
                ((problem, "") for problem in args_cni_type_problems(plugin, _TYPED_FIELDS, cni_args, base,
                                                                     POD_NEVER_STARTS)),
                judged_both_ways(plugin, fills, judge),
                ((problem, "") for problem in mtu_problems(plugin, cni_args, base))):
            yield Violation(problem.field, f"{problem.message} {merged_into}{note}",
                            Severity.WARN if problem.warning else None)


@rule("pod-networks-cni-args-ips", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="the ips a pod's cni-args give the NAD's static or host-local IPAM are ones it takes")
def cni_args_ips(subject: Subject) -> Iterator[Violation]:
    """static and host-local IPAM read args.cni.ips, where Multus merges a selection's "cni-args", every
    spelling Go matches ("IPs" too), decoded in sorted order into one list (a later list replaces an
    earlier one, the NAD's "ips" the pod's "IPs"). static takes them as its addresses, CIDRs only;
    host-local allocates them from its ranges: an address it cannot parse (or a null), one in none of its
    range sets, a range's gateway or two in one range set fail it. Either way the ADD fails on every try:
    the pod never starts."""
    def reads_ips(plugin: PluginConf) -> str | None:
        return f"plugin with the {plugin.ipam_type} IPAM" if plugin.ipam_type in ("static", "host-local") else None

    for ref, cni_args, nad, plugin, merged_into in _plugins_given_cni_args(subject, ["ips"], reads_ips):
        base = _cni_args_at(ref)
        problems: list[tuple[Problem, str]] = []
        if plugin.ipam_type == "host-local":
            fills = multus_fills(ref, nad, subject.obj)

            def judge(runtime_config: bool, plugin: PluginConf = plugin, cni_args: Mapping[str, Any] = cni_args,
                      base: str = base) -> list[Problem]:
                return host_local_args_ips(plugin, cni_args, base, POD_NEVER_STARTS, runtime_config=runtime_config)
            problems = list(judged_both_ways(plugin, fills, judge))
        else:
            found: list[Problem] = []
            args_cni_ips_addresses(args_cni_ips(plugin, cni_args, base), found, POD_NEVER_STARTS)
            problems = [(problem, "") for problem in found]
        for problem, note in problems:
            if problem.field.startswith(base):  # the NAD's own are nad-ipam-static's or nad-ipam-host-local's
                yield Violation(problem.field, f"{problem.message} {merged_into}{note}",
                                Severity.WARN if problem.warning else None)


def _args_multus_cannot_merge_into(plugin: PluginConf) -> tuple[str, Any] | None:
    """(JSON path, value) of the plugin's "args", or its "cni", when it is there but not an object."""
    # Exact keys: Multus reads the config into Go maps, and adds its own "args" or "cni" beside an "Args"
    # or a "CNI" (what tuning then makes of the two is pod-networks-cni-args-sysctl's).
    args = plugin.conf.get("args")
    if "args" in plugin.conf and not isinstance(args, Mapping):
        return f"{plugin.path}.args", args
    if isinstance(args, Mapping) and "cni" in args and not isinstance(args["cni"], Mapping):
        return f"{plugin.path}.args.cni", args["cni"]
    return None


@rule("pod-networks-cni-args-nad-args", kinds=POD, severity=Severity.DENY, judges=[NETWORKS, DEFAULT_NETWORK],
      title="Multus can merge a pod's cni-args into the args of every plugin of the NAD")
def cni_args_nad_args(subject: Subject) -> Iterator[Violation]:
    """Multus merges a selection's "cni-args" (an empty object too; not null) into "args" and its "cni" of
    every plugin of the NAD, on both annotations, asserting that each it finds is an object: one that is
    not, null included, makes Multus panic (v4.3.0 injectCNIArgs, pkg/types/conf.go), so the pod's ADD
    fails on every try and the pod never starts. A NAD without them is fine: Multus adds them."""
    if not (subject.view.known and _read_by_multus_yet(subject)):
        return
    for ref in subject.network_references:
        nad = subject.view.nad(ref.namespace, ref.name) if ref.selection.cni_args is not None else None
        netconf = nad_netconf(nad) if nad is not None else None
        if netconf is None:
            continue
        base, nad_ref = _cni_args_at(ref), f"NAD {ref.namespace}/{ref.name}"
        for plugin in netconf.plugins:
            found = _args_multus_cannot_merge_into(plugin)
            if found is not None:
                path, value = found
                yield Violation(base, f"{base} is merged by Multus into args.cni of every plugin of {nad_ref}, but "
                                      f"its {path} is {describe(value)}, not an object: Multus panics merging "
                                      "them (the pod's ADD fails on every try) and the pod never starts; "
                                      f"make {path} an object (or remove it) in "
                                      f"{nad_ref}, or drop \"cni-args\" from {ref.field}")


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


def _gate(subject: Subject) -> frozenset[str] | None:
    """The labels the pod's readiness gate requires; None when it has none. Read from the stored pod
    and the new one alike: the apiserver keeps a pod's affinity through an UPDATE (at most adding node
    affinity requirements while the pod has scheduling gates), while check judges a manifest, which
    seldom carries the gate the mutation added to the stored pod, as the UPDATE of that pod."""
    gates = [gate for obj in (subject.obj, subject.old_object) if obj is not None and (
        gate := required_gate_labels(as_mapping(obj.get("spec")).get("affinity"), subject.agent_namespace))
        is not None]
    return frozenset().union(*gates) if gates else None


_RECREATE = ("recreate the pod (delete it: a workload's controller makes a new one, a bare pod must be created "
             "again), and the new pod gets a gate for its networks")


@rule("pod-networks-gate-outgrown", kinds=POD, severity=Severity.WARN, operations={"UPDATE"},
      judges=[NETWORKS, DEFAULT_NETWORK],
      title="a pending pod's changed networks need no CNI binary its readiness gate leaves out")
def gate_outgrown(subject: Subject) -> Iterator[Violation]:
    """The mutating webhook gives a pod that asks Multus for networks a readiness gate when it is
    created: a required affinity to a node where Multus is ready and has the CNI binaries those networks
    need. A pod's affinity cannot be changed afterwards. An UPDATE of the selection annotations of a pod
    not on a node yet changes what Multus attaches when the sandbox is made, but not the gate: the
    scheduler may place the pod on a node without a binary the new networks need, where the sandbox
    fails; a pod created without Multus networks has no gate at all, and may start before Multus is
    ready on its node, without its secondary networks. Only a new pod gets a gate for its networks."""
    if not (subject.view.known and subject.policy.readiness_affinity and _read_by_multus_yet(subject)):
        return
    changed = changed_selection(subject)
    needed = required_binaries(subject.annotations, subject.namespace, subject.view, subject.policy) \
        if changed else None
    if needed is None:
        return
    key = changed[0]
    gate = _gate(subject)
    if gate is None:
        yield Violation(annotation_where(key).field,
                        f"{key} changed on a pod that is not on a node yet and has no readiness gate (the webhook "
                        "writes one when a pod that asks Multus for networks is created, and a pod's affinity "
                        "cannot be changed): the pod is not held back until Multus is ready on a node, and may "
                        f"start without its secondary networks; {_RECREATE}")
        return
    missing = sorted(b for b in needed if (label := binary_label(b)) is not None and label not in gate)
    if missing:
        yield Violation(annotation_where(key).field,
                        f"{key} changed on a pod that is not on a node yet to networks that need "
                        f"{needs_text(missing)}, which its readiness gate (spec.affinity, written when the pod was "
                        "created, and which cannot be changed) does not require: the scheduler may place the pod on a "
                        "node without them, "
                        f"where its sandbox fails; {_RECREATE}")


#: The kustomize component that sends every new pod to /mutate (docs/install.md).
MUTATE_EVERY_POD = "manifests/components/mutate-every-pod"


@rule("pod-networks-gate-missing", kinds=POD, severity=Severity.DENY, operations={"CREATE"},
      title="a new pod that asks Multus for networks went through /mutate (its readiness gate, its profile)")
def gate_missing(subject: Subject) -> Iterator[Violation]:
    """The apiserver calls the mutating webhook only for pods created with a selection annotation or the
    profile label (its matchCondition asks-for-multus-networks), and never calls a mutating webhook for
    the first time when it reinvokes them: a selection another mutating webhook adds after ours was
    skipped (network-resources-injector's injections, say) leaves the pod without its readiness gate
    and its profile's networks, and the scheduler may place it on a node where Multus is not ready,
    silently.

    /mutate marks every pod it handles that asks Multus for networks (READINESS_GATE_ANNOTATION): a
    marked pod is never refused, only warned about when it lacks a gate the policy here calls for,
    with the cause its mark tells (a later webhook changed spec.affinity, or /mutate had another
    policy). An unmarked pod that lacks a gate /mutate would have written, or a profile it would have
    applied, never went through /mutate: refused (an older /mutate, during a rolling upgrade, marks
    nothing, but writes the gate and the profile all the same). The cases where /mutate deliberately
    writes no gate (gate off by policy, spec.nodeName set, annotations over the apiserver's limit, a
    required node affinity that matches no node) are left alone, and only the presence of a gate is
    judged, not its terms: a NAD or a profile changed between /mutate and this rule changes what it
    would require."""
    mark = subject.annotations.get(READINESS_GATE_ANNOTATION)
    if isinstance(mark, str) and mark in GATE_MARKS:
        # First, and cheap: every pod /mutate handled ends here.
        if subject.policy.readiness_affinity and not has_readiness_gate(
                subject.spec.get("affinity"), subject.agent_namespace) and _gate_due(subject, subject.annotations):
            yield Violation("spec.affinity", _gate_lost(mark), Severity.WARN)
        return
    if has_readiness_gate(subject.spec.get("affinity"), subject.agent_namespace):
        return
    # /mutate marks a profile it applied: the profile may have changed since, and is not applied again.
    applied = APPLIED_PROFILE_ANNOTATION in subject.annotations
    profiled = subject.annotations if applied else profiled_annotations(
        subject.metadata, subject.namespace, subject.view, [], subject.policy)
    if profiled is None:
        return  # over the apiserver's limit: /mutate leaves it, the apiserver refuses it
    profile = subject.labels.get(PROFILE_LABEL)
    lacks = []
    if _gate_due(subject, profiled):
        lacks.append("the pod has no readiness gate in spec.affinity, and the scheduler could place it on a node "
                     "where Multus is not ready")
    if profiled != subject.annotations:
        lacks.append(f"NetworkProfile {profile} is not applied (no annotation {APPLIED_PROFILE_ANNOTATION}), and the "
                     "pod would start without its networks")
    if not lacks:
        return
    asking = [annotation_where(key).field for key in (NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION)
              if key in subject.annotations] + ([PROFILE_FIELD] if profile is not None else [])
    what = " and ".join(asking) or f"the policy's defaultNetworks ({', '.join(subject.policy.default_networks.names)})"
    yield Violation(asking[0] if asking else "spec.affinity",
                    f"{what} ask{'s' if len(asking) == 1 else ''} Multus for networks, but {'; '.join(lacks)}: the "
                    "mutating webhook (/mutate) never handled the pod (it has no annotation "
                    f"{READINESS_GATE_ANNOTATION}). The apiserver calls /mutate only for pods "
                    "created with a selection annotation or the profile label (matchCondition "
                    "asks-for-multus-networks) and never calls a mutating webhook for the first time when it "
                    "reinvokes them: another mutating webhook that ran after ours was skipped added the selection. "
                    f"Install the component {MUTATE_EVERY_POD}, which has the apiserver call /mutate for every new "
                    "pod (docs/install.md), then create the pod again")


def _gate_due(subject: Subject, annotations: Mapping[str, Any]) -> bool:
    """Whether /mutate, with the policy here, would gate the pod with these annotations."""
    return subject.policy.readiness_affinity and not subject.spec.get("nodeName") and not selects_no_node(
        subject.spec.get("affinity")) and required_binaries(annotations, subject.namespace, subject.view,
                                                            subject.policy) is not None


def _gate_lost(mark: str) -> str:
    """Why a pod /mutate marked with ``mark`` has no gate although the policy here calls for one."""
    said = f"{READINESS_GATE_ANNOTATION} is {mark!r}"
    if mark == GATE_OFF_BY_POLICY:
        return (f"/mutate left the pod without a readiness gate as readinessAffinity was false in its policy ({said}), "
                "but it is true in the policy /validate has: the policy changed between /mutate and /validate, or "
                "the webhook's replicas disagree on the policy (one that kept its last good policy when the policy "
                "ConfigMap stopped parsing, one started since on the policy file or the defaults: see their logs). "
                "The scheduler may place the pod on a node where Multus is not ready; once the replicas agree, "
                "create the pod again to get a gate")
    return (f"/mutate handled the pod ({said}) but spec.affinity has no readiness gate: a mutating webhook that ran "
            "after /mutate rewrote spec.affinity (or spec.nodeName), dropping the gate each time the apiserver "
            "reinvoked /mutate to write it again. The scheduler may place the pod on a node where Multus is not "
            "ready; have that webhook keep the affinity terms it did not write (add its own rather than replace "
            "spec.affinity), then create the pod again")
