"""Rules on individual CNI plugins of a NAD (the reference plugins; see webhook.cni.plugins)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from webhook.cni import plugins as table
from webhook.cni.config import PluginConf, Problem
from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import SPEC_CONFIG, annotation, rule
from webhook.rules.subject import Subject

NAD = {"NetworkAttachmentDefinition"}


def _each_plugin(subject: Subject, check: Callable[[PluginConf], Iterable[Problem]]) -> Iterator[Violation]:
    netconf = subject.nad_config.netconf
    if netconf is None:
        return
    for plugin in netconf.plugins:
        for problem in check(plugin):
            yield Violation(problem.field, problem.message, Severity.WARN if problem.warning else None)


@rule(
    "nad-plugin-field-types",
    kinds=NAD,
    severity=Severity.DENY,
    title="plugin fields have the types the plugin reads",
    judges=[SPEC_CONFIG],
)
def field_types(subject: Subject) -> Iterator[Violation]:
    """The reference plugins decode their config into typed Go structs: "mtu": "1500" or
    "vlanId": 10.5 makes the plugin fail with "failed to load netconf" on every pod. ("vlanId": 10.0 is
    fine: libcni passes the config through a map first, and the plugin reads 10.) Lists and objects are
    typed down to their elements and fields: bridge's vlanTrunk entries, portmap's conditions, sbr's
    gateways. A literal runtimeConfig that is no object fails only the pods it reaches (a warning when a
    capability the plugin declares may replace it)."""
    yield from _each_plugin(subject, table.field_type_problems)


@rule("nad-plugin-vlan-id", kinds=NAD, severity=Severity.DENY, title="VLAN ids are 0-4094, trunk ids 1-4094",
      judges=[SPEC_CONFIG])
def vlan_id(subject: Subject) -> Iterator[Violation]:
    """bridge's ``vlan`` and vlan's ``vlanId`` outside 0-4094 are refused by the plugin when the
    first pod attaches. So are bridge's ``vlanTrunk`` entries with an id, minID or maxID outside 1-4094,
    a minID without a maxID (or the reverse), a maxID below the minID, and a null entry, on which the
    bridge plugin crashes."""
    yield from _each_plugin(subject, table.vlan_id_problems)


@rule(
    "nad-plugin-bridge-interface-ipam",
    kinds=NAD,
    severity=Severity.DENY,
    title="a bridge without a container interface has no IPAM",
    judges=[SPEC_CONFIG],
)
def bridge_container_interface(subject: Subject) -> Iterator[Violation]:
    """With ``disableContainerInterface`` the bridge plugin creates no interface in the pod, and it
    refuses an IPAM type on every pod ("cannot use IPAM when DisableContainerInterface flag is set")."""
    yield from _each_plugin(subject, table.bridge_container_interface_problems)


@rule("nad-plugin-ipmasq-backend", kinds=NAD, severity=Severity.DENY,
      title="ipMasqBackend is iptables or nftables", judges=[SPEC_CONFIG])
def ipmasq_backend(subject: Subject) -> Iterator[Violation]:
    """bridge and ptp masquerade through iptables or nftables: with ``ipMasq`` on (and, for bridge, an
    IPAM type), any other ``ipMasqBackend``, "" included, fails every pod ("unknown ipmasq backend")."""
    yield from _each_plugin(subject, table.ipmasq_backend_problems)


@rule("nad-plugin-mtu", kinds=NAD, severity=Severity.DENY, title="mtu is not negative where the plugin refuses it",
      judges=[SPEC_CONFIG])
def plugin_mtu(subject: Subject) -> Iterator[Violation]:
    """A negative ``mtu`` fails every ADD of macvlan and vlan (which check it against the master),
    tuning (the kernel refuses it; its args.cni.mtu, when not null, replaces it) and tap (``ip link set``
    refuses it, unless tap creates the device through netlink because it has both an owner and a group).
    bridge, ptp and ipvlan ignore it."""
    yield from _each_plugin(subject, table.mtu_problems)


@rule("nad-plugin-mac", kinds=NAD, severity=Severity.DENY, title="MAC addresses are ones the plugin can set",
      judges=[SPEC_CONFIG])
def plugin_mac(subject: Subject) -> Iterator[Violation]:
    """macvlan, tap and tuning parse their ``mac`` (or a runtimeConfig.mac in the config, or tuning's
    args.cni.mac), bridge its runtimeConfig.mac or else args.cni.mac, with Go's net.ParseMAC, and tap
    without an owner and a group hands it to `ip link set address`: an address they cannot read fails
    every pod that does not request a MAC of its own, or, in the literal runtimeConfig, every pod for
    which it reaches the plugin (a warning when a capability the plugin declares may replace it). The
    kernel refuses, on the Ethernet devices
    macvlan, tap and bridge (its container's veth) make, a multicast or all-zero address, and on macvlan
    and bridge's veth one that is not six bytes long."""
    yield from _each_plugin(subject, table.mac_problems)


@rule("nad-plugin-portmap", kinds=NAD, severity=Severity.DENY, title="portmap's mark and backend options agree",
      judges=[SPEC_CONFIG])
def portmap(subject: Subject) -> Iterator[Violation]:
    """portmap reads its options on every ADD, port mappings or not, and refuses: markMasqBit together
    with externalSetMarkChain, a markMasqBit outside 0-31, a backend other than iptables or nftables, and
    with a backend named, options of the other one (externalSetMarkChain is iptables'; conditions
    starting with "-" or "!" are iptables', others nftables'). Without a backend it takes iptables,
    unless the node lacks iptables and has nftables: options of one backend then fail on the nodes of
    the other kind (a warning), options of both on every node."""
    yield from _each_plugin(subject, table.portmap_problems)


@rule("nad-plugin-sbr-gateways", kinds=NAD, severity=Severity.DENY, title="sbr's gateways are one address per family",
      judges=[SPEC_CONFIG])
def sbr_gateways(subject: Subject) -> Iterator[Violation]:
    """sbr without a ``table`` routes through the ``gateways`` it is given, and fails every pod on more
    than two, on an entry that is not an IP address, or on two of one family."""
    yield from _each_plugin(subject, table.sbr_gateway_problems)


@rule("nad-plugin-vlan-master", kinds=NAD, severity=Severity.DENY, title="the vlan plugin names its master",
      judges=[SPEC_CONFIG])
def vlan_master(subject: Subject) -> Iterator[Violation]:
    """The vlan plugin has no default parent interface: without ``master`` every ADD fails."""
    yield from _each_plugin(subject, table.master_problems)


@rule(
    "nad-plugin-bridge-hairpin-promisc",
    kinds=NAD,
    severity=Severity.DENY,
    title="bridge hairpinMode and promiscMode are exclusive",
    judges=[SPEC_CONFIG],
)
def bridge_hairpin_promisc(subject: Subject) -> Iterator[Violation]:
    """The bridge plugin refuses hairpinMode and promiscMode together, on every pod."""
    yield from _each_plugin(subject, table.bridge_mode_problems)


@rule("nad-plugin-mode", kinds=NAD, severity=Severity.DENY,
      title="macvlan and ipvlan modes and firewall's ingressPolicy are known", judges=[SPEC_CONFIG])
def plugin_mode(subject: Subject) -> Iterator[Violation]:
    """macvlan (bridge, private, vepa, passthru) and ipvlan (l2, l3, l3s) refuse any other mode when
    creating the interface, and firewall any other ingressPolicy than open, same-bridge or isolated
    ("unknown ingress policy"), so every pod selecting the network fails."""
    yield from _each_plugin(subject, table.mode_problems)


@rule(
    "nad-plugin-host-device-selector",
    kinds=NAD,
    severity=Severity.DENY,
    title="host-device selects a device",
    judges=[SPEC_CONFIG, annotation(table.RESOURCE_NAME_ANNOTATION)],
)
def host_device_selector(subject: Subject) -> Iterator[Violation]:
    """host-device moves a host interface into the pod and must be told which: device, hwaddr,
    kernelpath or pciBusID, unless the NAD carries the resourceName annotation (Multus then passes
    the device the device plugin allocated). With the deviceID capability each pod may name the
    device in its selection instead: a warning, as pods that name none fail. So does a literal
    runtimeConfig.deviceID, for the pods it reaches (a warning when a capability the plugin declares other
    than deviceID may replace it)."""
    has_resource = bool(subject.annotations.get(table.RESOURCE_NAME_ANNOTATION))
    yield from _each_plugin(subject, lambda plugin: table.host_device_problems(plugin, has_resource))


@rule("nad-plugin-ipam-required", kinds=NAD, severity=Severity.DENY, title="ptp, dummy and ipvlan have IPAM",
      judges=[SPEC_CONFIG])
def ipam_required(subject: Subject) -> Iterator[Violation]:
    """ptp and dummy always run IPAM, and ipvlan needs addresses from IPAM or a previous plugin:
    without them every ADD fails. An ipam section on a plugin that never runs IPAM (tuning, portmap,
    bandwidth, firewall, sbr, vrf, loopback) is a warning: nothing of it is used, and no IPAM rule judges
    it."""
    yield from _each_plugin(subject, table.ipam_required_problems)


@rule(
    "nad-plugin-needs-previous-result",
    kinds=NAD,
    severity=Severity.DENY,
    title="chained plugins are never first",
    judges=[SPEC_CONFIG],
)
def needs_previous_result(subject: Subject) -> Iterator[Violation]:
    """tuning, portmap, bandwidth, firewall, sbr and vrf only modify the result of an earlier plugin;
    alone or first in a list they fail every ADD ("missing prevResult")."""
    yield from _each_plugin(subject, table.previous_result_problems)


@rule("nad-plugin-vrf-name", kinds=NAD, severity=Severity.DENY, title="the vrf plugin names its VRF",
      judges=[SPEC_CONFIG])
def vrf_name(subject: Subject) -> Iterator[Violation]:
    """The vrf plugin refuses a config without ``vrfname``."""
    yield from _each_plugin(subject, table.vrf_problems)


@rule(
    "nad-plugin-bandwidth-pairs",
    kinds=NAD,
    severity=Severity.DENY,
    title="bandwidth rates and bursts in pairs",
    judges=[SPEC_CONFIG],
)
def bandwidth_pairs(subject: Subject) -> Iterator[Violation]:
    """The bandwidth plugin refuses a rate without its burst (and the reverse), and bursts of 4 GB
    (8 * (2^32 - 1) bits) and more, for ingress and egress alike."""
    yield from _each_plugin(subject, table.bandwidth_problems)


@rule(
    "nad-plugin-bandwidth-veth",
    kinds=NAD,
    severity=Severity.DENY,
    title="bandwidth follows a veth interface plugin",
    judges=[SPEC_CONFIG],
)
def bandwidth_veth(subject: Subject) -> Iterator[Violation]:
    """The bandwidth plugin limits a pod through the host end of its veth pair; behind macvlan,
    ipvlan, vlan, host-device, dummy or tap there is none and every shaped ADD fails ("has no veth
    peer"). Static limits deny; the bandwidth capability alone only warns (unshaped pods work)."""
    netconf = subject.nad_config.netconf
    if netconf is None:
        return
    for problem in table.bandwidth_interface_problems(netconf):
        yield Violation(problem.field, problem.message, Severity.WARN if problem.warning else None)


@rule("nad-plugin-tuning-sysctl", kinds=NAD, severity=Severity.DENY, title="tuning only sets net.* sysctls",
      judges=[SPEC_CONFIG])
def tuning_sysctl(subject: Subject) -> Iterator[Violation]:
    """The tuning plugin refuses, on every pod, sysctl keys that do not land below /proc/sys/net/
    ("invalid net sysctl key"): kernel.*, vm.*, a bare "net", in sysctl or in args.cni.sysctl. Such
    settings belong to the pod's securityContext, where the kubelet's sysctl policy applies. It crashes
    on args.cni.sysctl entries without a sysctl object to copy them into, and refuses a key under two
    spellings of its sysctl ("Sysctl", "sysctl": Go matches both, and tuning reads every one, in libcni's
    sorted order, into one map; so it does args.cni's, from every spelling of "args" and of "cni" too,
    where a null empties the map and any other value but an object fails to load). Warns, too, of a
    sysctl set twice to different values: a key written twice keeps only its last value (libcni reads
    the config into a map before tuning sees it), and two spellings of one sysctl (net.a.b, net/a/b)
    are written in random order."""
    yield from _each_plugin(subject, table.sysctl_problems)
