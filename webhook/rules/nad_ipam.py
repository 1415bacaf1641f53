"""Rules on the IPAM section of each plugin of a NAD (see webhook.cni.ipam)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from webhook.cni import ipam
from webhook.cni.config import PluginConf, Problem
from webhook.names import DHCP_DAEMON, DHCP_SOCKET, binary_label
from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import SPEC_CONFIG, rule
from webhook.rules.subject import Subject

NAD = {"NetworkAttachmentDefinition"}


def _each_ipam(
    subject: Subject, ipam_type: str | None, check: Callable[[PluginConf, str | None], Iterable[Problem]]
) -> Iterator[Violation]:
    netconf = subject.nad_config.netconf
    if netconf is None:
        return
    for plugin in netconf.plugins:
        if plugin.ipam_type is None or (ipam_type is not None and plugin.ipam_type != ipam_type):
            continue
        runs_at = netconf.plugin_cni_version(plugin, "spec.config")
        version = runs_at[0] if runs_at is not None else None
        for problem in check(plugin, version or None):
            yield Violation(problem.field, problem.message, Severity.WARN if problem.warning else None)


@rule("nad-ipam-host-local", kinds=NAD, severity=Severity.DENY, title="host-local ranges are allocatable",
      judges=[SPEC_CONFIG])
def host_local(subject: Subject) -> Iterator[Violation]:
    """host-local refuses, on every pod: a subnet too small to allocate from (/31, /32, /127, /128),
    a subnet written with host bits, rangeStart / rangeEnd / gateway outside the subnet, a start
    after the end, mixed families in one range set and overlapping ranges. More than 1024 ranges in one
    section are refused too: host-local compares every pair of them on each ADD, and no network needs
    that many (larger subnets bounded by rangeStart / rangeEnd hold any pool in fewer). As in every IPAM
    rule here, a field of the section that the plugin cannot decode (a dataDir that is a number) fails
    every pod and is refused. host-local also allocates the addresses args.cni.ips asks for (every
    spelling Go matches: "Args", "CNI", "IPs"), and fails every pod on one it cannot parse, one in none
    of its range sets (of the other family, say), a range's gateway, or two in one range set; the pods
    of a NAD that asks for an address all get it, so one pod per node only (a warning). So are the ips and
    ipRanges of a literal runtimeConfig, which host-local reads when it reaches it: for every pod when the
    plugin declares no capability Multus may fill; otherwise what it refuses there, or lacks without it,
    is a warning that says when."""
    yield from _each_ipam(subject, "host-local", ipam.check_host_local)


@rule("nad-ipam-whereabouts", kinds=NAD, severity=Severity.DENY, title="whereabouts ranges are usable",
      judges=[SPEC_CONFIG])
def whereabouts(subject: Subject) -> Iterator[Violation]:
    """whereabouts fails every pod on an unparsable range, exclude entry or addresses entry's address,
    and silently ignores a range_start / range_end outside the usable addresses, an end before the
    start, a top-level one it cannot parse, and any beside a range written first-last that asks for
    another span than the range gives (allocating from the start, or up to the end, of the range: not
    what was asked); a start at the network address or an end at the broadcast address means the
    first / last usable one, and is fine. An exclude entry outside the range excludes nothing, and IPv4
    parts with leading zeros (read in decimal where whereabouts parses sloppily) are ambiguous, as is
    an IPv4-mapped CIDR (::ffff:10.1.0.0/120, read as the network Go makes of it: 10.1.0.0/24):
    warnings. node_slice_size needs the node-slice controller (a warning), and fails every pod with a
    size it cannot slice the range by; with it whereabouts allocates from the first to the last usable
    address of the node's slice of the first range, ignoring the range's excludes and whatever narrows
    it (range_start, range_end, a first-last range), and gives each further range that same address
    again, never one of its own. Without a network_name, the controller stops syncing the NAD while any
    other whereabouts NAD without one has another first range or node_slice_size (a warning).
    A field of the wrong type (enable_overlapping_ranges written "false", a leader_lease_duration in
    quotes) fails every pod, as does a range or network_name that names the range's IPPool something
    the apiserver refuses (an IPv6 range written from "::", without a network_name: "--1-0-112"); an
    address written so names its reservation so, and fails the pod given it (a warning)."""
    yield from _each_ipam(subject, "whereabouts", lambda plugin, _version: ipam.check_whereabouts(plugin))


@rule("nad-ipam-static", kinds=NAD, severity=Severity.DENY, title="static addresses are CIDRs",
      judges=[SPEC_CONFIG])
def static(subject: Subject) -> Iterator[Violation]:
    """static IPAM needs each address in CIDR form (10.1.0.5/24) and fails every pod otherwise; a
    gateway of the other address family is accepted but cannot route, so it is a warning. A field of
    the wrong type (dns.nameservers written as one string) fails every pod; so does an entry's
    "Address" with a capital A, which Go reads into another field than "address", a parsed network.
    The addresses of args.cni.ips must be CIDRs too; when there are any, they replace ipam.addresses,
    which static then decodes but never parses. So must those of a literal runtimeConfig.ips, which static
    parses last when the literal runtimeConfig reaches it (a warning when the plugin declares a capability
    Multus may fill for a pod, which replaces it)."""
    yield from _each_ipam(subject, "static", ipam.check_static)


@rule("nad-ipam-routes", kinds=NAD, severity=Severity.DENY, title="IPAM routes have a CIDR destination",
      judges=[SPEC_CONFIG])
def routes(subject: Subject) -> Iterator[Violation]:
    """host-local, static and whereabouts decode ipam.routes into typed routes: a destination that
    is not a CIDR (null included) or a gateway that is not an address fails every pod, and a null
    route crashes the plugin."""
    for ipam_type in ("host-local", "static", "whereabouts"):
        yield from _each_ipam(subject, ipam_type, lambda plugin, _version: ipam.check_routes(plugin))


@rule("nad-ipam-dhcp", kinds=NAD, severity=Severity.DENY, title="dhcp IPAM has its daemon",
      judges=[SPEC_CONFIG])
def dhcp(subject: Subject) -> Iterator[Violation]:
    """The dhcp IPAM plugin does nothing itself: at every ADD and DEL it dials the CNI dhcp daemon
    (``dhcp daemon``) on ipam.daemonSocketPath (default /run/cni/dhcp.sock) and fails without it, so pods
    never start and their sandboxes are never torn down. A section the plugin cannot decode (a
    daemonSocketPath that is not a string) fails every pod. A relative socket path is warned: the plugin
    dials it from the runtime's working directory, usually / but not promised. The node agents
    report whether a daemon answers on the default socket: with none answering on any node that reports,
    a warning (the readiness gate then keeps the pods Pending); with the gate off, a warning names the
    nodes without it. A socket of the NAD's own choosing is not probed: a warning says so."""
    netconf = subject.nad_config.netconf
    if netconf is None:
        return
    view, policy = subject.view, subject.policy
    for plugin in netconf.plugins:
        if plugin.ipam_type != "dhcp":
            continue
        problems = ipam.check_dhcp(plugin)
        yield from (Violation(p.field, p.message, Severity.WARN if p.warning else None) for p in problems)
        socket = ipam.dhcp_socket(plugin)
        if problems or socket is None:
            continue  # every pod fails on the section itself, daemon or not
        path = f"{plugin.ipam_path}.type"
        if socket != DHCP_SOCKET:
            yield Violation(path, f"{path} is dhcp with its daemon on {socket}: the node agents check only "
                                  f"{DHCP_SOCKET}, so nothing tells whether a daemon listens there and the readiness "
                                  "gate does not wait for one; make sure it runs on every node that can run these "
                                  "pods, or the pods fail (\"error dialing DHCP daemon\")", Severity.WARN)
            continue
        reporting = view.reporting_nodes
        running = view.binary_holders(DHCP_DAEMON)
        if not reporting:
            yield Violation(path, f"{path} is dhcp: make sure the CNI dhcp daemon answers on {DHCP_SOCKET} on every "
                                  "node that can run these pods and that a DHCP server answers on the segment (no "
                                  "node reports whether its daemon runs)", Severity.WARN)
        elif not running:
            held = (f"pods on this network stay Pending (their readiness gate requires the label "
                    f"{binary_label(DHCP_DAEMON)})" if policy.readiness_affinity
                    else "pods on this network fail to start (\"error dialing DHCP daemon\")")
            yield Violation(path, f"{path} is dhcp, but none of the {len(reporting)} node(s) that report has the CNI "
                                  f"dhcp daemon answering on {DHCP_SOCKET}: {held}; run the daemon (dhcp daemon) on "
                                  "the nodes, or use another IPAM", Severity.WARN)
        elif not policy.readiness_affinity and len(running) < len(reporting):
            yield Violation(path, f"{path} is dhcp, but the CNI dhcp daemon does not answer on {DHCP_SOCKET} on "
                                  f"{len(reporting) - len(running)} of the {len(reporting)} node(s) that report: pods "
                                  "on this network fail there, and with the readiness gate off nothing keeps them "
                                  "off those nodes", Severity.WARN)
