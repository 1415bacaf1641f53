"""The nad-ipam-* rules and the allocation ranges the cluster-wide overlap index reads."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import webhook
from webhook.cluster.static import StaticClusterView
from webhook.cni.addresses import IPAddress, parse_cidr, parse_ip, parse_static_cidr, unpadded
from webhook.cni.config import parse_nad_config
from webhook.cni.ipam import HostLocalRange, _overlapping_pairs, nad_allocation_ranges
from webhook.rules import Finding, Policy, Severity, Subject, evaluate

NAD = "NetworkAttachmentDefinition"


def nad(config: Any) -> Subject:
    meta = {"name": "net1", "namespace": "default"}
    return Subject({"metadata": meta, "spec": {"config": json.dumps(config)}}, NAD)


def findings(subject: Subject, rule: str) -> list[Finding]:
    return [f for f in evaluate(subject, Policy()) if f.rule == rule]


def macvlan(ipam: dict[str, Any], version: str = "1.0.0") -> dict[str, Any]:
    return {"cniVersion": version, "type": "macvlan", "master": "eth0", "ipam": ipam}


def hl(**fields: Any) -> dict[str, Any]:
    return macvlan({"type": "host-local", **fields})


def wa(**fields: Any) -> dict[str, Any]:
    return macvlan({"type": "whereabouts", **fields})


def st(*addresses: Any, **fields: Any) -> dict[str, Any]:
    return macvlan({"type": "static", "addresses": list(addresses), **fields})


P = "spec.config.ipam"

REFUSED = [
    # (rule, config, field, text, severity)
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/31"), f"{P}.subnet", "too small for host-local", "deny"),
    ("nad-ipam-host-local", hl(subnet="fd00::/127"), f"{P}.subnet", "use at most a /126", "deny"),
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.1/24"),
        f"{P}.subnet",
        "write the network address, 10.0.0.0/24",
        "deny",
    ),
    ("nad-ipam-host-local", hl(subnet="10.0.0.0"), f"{P}.subnet", "not a CIDR", "deny"),
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/255.255.255.0"), f"{P}.subnet", "not a CIDR", "deny"),
    # Go hands null to types.IPNet's UnmarshalJSON, which refuses it: a null subnet is no absent one.
    (
        "nad-ipam-host-local",
        hl(subnet=None, ranges=[[{"subnet": "10.0.0.0/24"}]]),
        f"{P}.subnet",
        "is null, not a CIDR",
        "deny",
    ),
    ("nad-ipam-host-local", hl(ranges=[[{"subnet": None}]]), f"{P}.ranges[0][0].subnet", "is null, not a CIDR",
     "deny"),
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/24", rangeStart="10.0.1.5"),
        f"{P}.rangeStart",
        "outside the subnet 10.0.0.0/24",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(ranges=[[{"subnet": "fd00::/64", "rangeEnd": "fd01::1"}]]),
        f"{P}.ranges[0][0].rangeEnd",
        "outside the subnet fd00::/64",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/24", rangeStart="10.0.0.200", rangeEnd="10.0.0.100"),
        f"{P}.rangeStart",
        "after its end 10.0.0.100",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/24", rangeStart="10.0.0.x"),
        f"{P}.rangeStart",
        "not an IP",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(ranges=[[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]),
        f"{P}.ranges[0][1]",
        "one range set holds one address family",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(ranges=[[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.128/25"}]]),
        f"{P}.ranges[0][1]",
        "overlaps spec.config.ipam.ranges[0][0]",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/16", ranges=[[{"subnet": "10.0.5.0/24"}]]),
        f"{P}.ranges[0][0]",
        "refuses overlapping range sets",
        "deny",
    ),
    ("nad-ipam-host-local", hl(ranges=[[]]), f"{P}.ranges[0]", "empty range set", "deny"),
    (
        "nad-ipam-host-local",
        hl(ranges=[{"subnet": "10.0.0.0/24"}]),
        f"{P}.ranges[0]",
        "wrap it in [ ]",
        "deny",
    ),
    ("nad-ipam-host-local", hl(), P, "nothing to allocate from", "deny"),
    # containernetworking/plugins v1.10.0 refuses it ("gateway ... not in network").
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/24", gateway="10.0.1.1"),
        f"{P}.gateway",
        "outside the subnet 10.0.0.0/24",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        hl(ranges=[[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]) | {"cniVersion": "0.2.0"},
        P,
        "cniVersion 0.2.0 cannot return",
        "deny",
    ),
    (
        "nad-ipam-host-local",
        {k: v for k, v in hl(ranges=[[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]).items()
         if k != "cniVersion"},
        P,
        "a config without cniVersion (read as 0.1.0) cannot return",
        "deny",
    ),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/33"), f"{P}.range", "not a CIDR", "deny"),
    # configureStatic parses every entry's address, whatever else it holds.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", addresses=[{"address": "10.0.1.5"}]),
        f"{P}.addresses[0].address",
        "is the string '10.0.1.5': whereabouts reads every address as a CIDR",
        "deny",
    ),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", addresses=[{"gateway": "10.0.1.1"}]),
     f"{P}.addresses[0].address", "is missing: whereabouts reads every address as a CIDR", "deny"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", addresses=[None]), f"{P}.addresses[0]", "is null", "deny"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.9/32"), f"{P}.range", "use at most a /30", "deny"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.x-10.0.0.60/24"), f"{P}.range", "write a CIDR", "deny"),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.1.50-10.0.0.60/24"),
        f"{P}.range",
        "not inside 10.0.0.0/24",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_start="10.0.1.5", range_end="10.0.0.20"),
        f"{P}.range_start",
        "would silently ignore it and allocate from 10.0.0.1 on",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="fd00::/120", range_end="fd00::1:5"),
        f"{P}.range_end",
        "outside the range fd00::/120 (fd00::1-fd00::fe): whereabouts would silently ignore it and allocate up to "
        "fd00::fe",
        "deny",
    ),
    # whereabouts ignores the end that comes before the start: the end is the field to fix.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_start="10.0.0.100", range_end="10.0.0.10"),
        f"{P}.range_end",
        "the range starts at 10.0.0.100, after its end 10.0.0.10: whereabouts would ignore the end",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.50-10.0.0.10/24"),
        f"{P}.range",
        "make the start lower than the end",
        "deny",
    ),
    # A start at the broadcast address is ignored: allocation starts at the network's beginning.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_start="10.0.0.255"),
        f"{P}.range_start",
        "would silently ignore it",
        "deny",
    ),
    # whereabouts reads the top-level range fields with k8s.io/utils' ParseIPSloppy: leading zeros are decimal.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_start="10.0.0.010"),
        f"{P}.range_start",
        "whereabouts reads the leading zeros as decimal, '10.0.0.10', where other tools read such a part as "
        "octal or refuse it; write '10.0.0.10'",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="010.0.0.0/024"),
        f"{P}.range",
        "'010.0.0.0/024': whereabouts reads the leading zeros as decimal, '10.0.0.0/024'",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.01-10.0.0.09/24"}]),
        f"{P}.ipRanges[0].range",
        "as decimal, '10.0.0.1-10.0.0.9/24'",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", gateway="10.0.0.001"),
        f"{P}.gateway",
        "as decimal, '10.0.0.1'",
        "warn",
    ),
    # ... but an ipRanges entry's range_start is a plain Go net.IP, which refuses them.
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24", "range_start": "10.0.0.010"}]),
        f"{P}.ipRanges[0].range_start",
        "not an IP address",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_start="10.0.0.0256"),
        f"{P}.range_start",
        "not an IP address",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24"}], range_start="10.0.0.9"),
        f"{P}.range_start",
        "only applies to the top-level range, and there is none (unless the node's whereabouts.conf gives one): "
        "whereabouts ignores it",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", exclude=["10.0.0.0/33"]),
        f"{P}.exclude[0]",
        "CIDR",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", exclude="10.0.0.1"),
        f"{P}.exclude",
        "write a list",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", exclude=["10.9.0.0/28"]),
        f"{P}.exclude[0]",
        "excludes nothing",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24"}, {"range": "fd00::/64", "exclude": ["fd00::1", "x"]}]),
        f"{P}.ipRanges[1].exclude[1]",
        "cannot parse it",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24", "range_end": "10.0.1.0"}]),
        f"{P}.ipRanges[0].range_end",
        "10.0.0.1-10.0.0.254",
        "deny",
    ),
    ("nad-ipam-whereabouts", wa(), f"{P}.range", "there are no ipRanges", "warn"),
    # whereabouts drops a top-level range_start / range_end it cannot parse: that end of the range is the
    # range's own (or the node's whereabouts.conf's), the other still applies.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_end="10.0.0.x"),
        f"{P}.range_end",
        "not an IP address: whereabouts would silently drop it and allocate up to the last usable address of "
        "the range (or use the range_end of the node's whereabouts.conf, if that has one)",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", range_start="10.0.0.x", range_end="10.0.0.20"),
        f"{P}.range_start",
        "whereabouts would silently drop it and allocate from the first usable address of the range on",
        "deny",
    ),
    # A first-last range sets both ends: a range_start or range_end beside it counts for nothing.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.10-10.0.0.20/24", range_start="10.0.0.x"),
        f"{P}.range_start",
        "not an IP address: whereabouts ignores range_start and range_end when spec.config.ipam.range is "
        "written first-last/prefix ('10.0.0.10-10.0.0.20/24'), which sets both ends of the range: drop it",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.10-10.0.0.20/24", range_end="10.0.0.15"),
        f"{P}.range_end",
        "is 10.0.0.15, but whereabouts ignores range_start and range_end when spec.config.ipam.range is written "
        "first-last/prefix ('10.0.0.10-10.0.0.20/24'), which sets both ends of the range (10.0.0.10-10.0.0.20)",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.10-10.0.0.20/24", "range_start": "10.0.0.12"}]),
        f"{P}.ipRanges[0].range_start",
        "when spec.config.ipam.ipRanges[0].range is written first-last/prefix",
        "deny",
    ),
    # node_slice_size: the NodeSlicePool comes from the node-slice controller, or every pod fails.
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", node_slice_size="/28", network_name="blue"),
        f"{P}.node_slice_size",
        "without that controller every pod fails (whereabouts finds no NodeSlicePool, and crashes), and with it "
        "at most 16 "
        "nodes get a /28 slice of 10.0.0.0/24",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", node_slice_size="twenty-eight"),
        f"{P}.node_slice_size",
        "'twenty-eight', not a prefix length",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", node_slice_size=" 28"),
        f"{P}.node_slice_size",
        "not a prefix length",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", node_slice_size="/20"),
        f"{P}.node_slice_size",
        "'/20', larger than the range 10.0.0.0/24 (spec.config.ipam.range)",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(addresses=[{"address": "10.0.0.5/24"}], node_slice_size="-1"),
        f"{P}.node_slice_size",
        "larger than the range",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24"}], node_slice_size="/31"),
        f"{P}.node_slice_size",
        "use at most /30",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="fd00::/64", node_slice_size="/120"),
        f"{P}.node_slice_size",
        "slices IPv4 ranges only",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", node_slice_size=28),
        f"{P}.node_slice_size",
        "reads it as a string",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24"}], exclude=["10.0.0.1"]),
        f"{P}.exclude",
        "whereabouts ignores it",
        "warn",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", gateway="gw"),
        f"{P}.gateway",
        "not an IP address",
        "deny",
    ),
    ("nad-ipam-static", st({"address": "10.0.0.5"}), f"{P}.addresses[0].address", "in CIDR form", "deny"),
    ("nad-ipam-static", st({"gateway": "10.0.0.1"}), f"{P}.addresses[0].address", "is missing", "deny"),
    ("nad-ipam-static", st(), f"{P}.addresses", "passes its addresses in its selection, as \"ips\"", "warn"),
    (
        "nad-ipam-static",
        st({"address": "10.0.0.5/24", "gateway": "fd00::1"}),
        f"{P}.addresses[0].gateway",
        "gateway of its own family",
        "warn",
    ),
    (
        "nad-ipam-static",
        st({"address": "10.0.0.5/24"}, {"address": "10.0.1.5/24"}) | {"cniVersion": "0.1.0"},
        P,
        "cniVersion 0.1.0 cannot return",
        "deny",
    ),
    (
        "nad-ipam-routes",
        hl(subnet="10.0.0.0/24", routes=[{"dst": "default"}]),
        f"{P}.routes[0].dst",
        "destination CIDR",
        "deny",
    ),
    (
        "nad-ipam-routes",
        st({"address": "10.0.0.5/24"}, routes=[{"dst": None}]),
        f"{P}.routes[0].dst",
        "is null: a route needs a destination CIDR",
        "deny",
    ),
    (
        "nad-ipam-routes",
        hl(subnet="10.0.0.0/24", routes=[{"dst": "0.0.0.0/0"}, None]),
        f"{P}.routes[1]",
        "is null: the host-local plugin crashes on a null route",
        "deny",
    ),
    (
        "nad-ipam-routes",
        st({"address": "10.0.0.5/24"}, routes=[{"dst": "0.0.0.0/0", "gw": "router"}]),
        f"{P}.routes[0].gw",
        "not an IP address",
        "deny",
    ),
    ("nad-ipam-dhcp", macvlan({"type": "dhcp"}), f"{P}.type", "daemon answers on /run/cni/dhcp.sock on every node",
     "warn"),
    # The plugin decodes its section at every ADD and DEL before it dials the daemon.
    ("nad-ipam-dhcp", macvlan({"type": "dhcp", "daemonSocketPath": 5}), f"{P}.daemonSocketPath", "a string", "deny"),
    ("nad-ipam-dhcp", macvlan({"type": "dhcp", "priority": "1"}), f"{P}.priority", "the string '1'", "deny"),
    (
        "nad-ipam-dhcp",
        macvlan({"type": "dhcp", "daemonSocketPath": "run/dhcp.sock"}),
        f"{P}.daemonSocketPath",
        "not an absolute path",
        "warn",
    ),
    (
        "nad-ipam-dhcp",
        macvlan({"type": "dhcp", "daemonSocketPath": "/run/other/dhcp.sock"}),
        f"{P}.type",
        "the node agents check only /run/cni/dhcp.sock",
        "warn",
    ),
    # Go matches "Address" exactly to another field, a net.IPNet, which a string does not fit.
    (
        "nad-ipam-static",
        st({"Address": "10.0.0.5/24"}),
        f"{P}.addresses[0].Address",
        'is \'10.0.0.5/24\': Go reads the key "Address" (capital A) into another field than "address", a parsed '
        'network that a string does not fit, so the static plugin fails every pod; write the key as "address"',
        "deny",
    ),
    (
        "nad-ipam-static",
        st({"address": "10.0.0.5/24", "Address": "10.0.0.5/24"}),
        f"{P}.addresses[0].Address",
        'write the key as "address"',
        "deny",
    ),
    # Every field of an ipam section is typed, down to lists and objects (IPAM_FIELDS).
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/24", dataDir=5),
        f"{P}.dataDir",
        "the number 5, but the host-local plugin reads it as a string",
        "deny",
    ),
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/24", resolvConf=True), f"{P}.resolvConf", "as a string", "deny"),
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/24", name=7), f"{P}.name", "as a string", "deny"),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", leader_lease_duration="1500"),
        f"{P}.leader_lease_duration",
        "the whereabouts plugin reads it as an integer",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", kubernetes={"kubeconfig": ["/etc/k"]}),
        f"{P}.kubernetes.kubeconfig",
        "as a string",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", enable_overlapping_ranges="false"),
        f"{P}.enable_overlapping_ranges",
        "reads it as true or false",
        "deny",
    ),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", node_slice_size=24),
        f"{P}.node_slice_size",
        "the number 24, but the whereabouts plugin reads it as a string",
        "deny",
    ),
    # whereabouts takes an IPv4-mapped CIDR as the network Go's IPNet makes of it: a warning says which.
    ("nad-ipam-whereabouts", wa(range="::ffff:10.0.0.0/120"), f"{P}.range",
     "an IPv4-mapped IPv6 CIDR: whereabouts reads it as the IPv4 network 10.0.0.0/24 (the prefix less 96); "
     "write 10.0.0.0/24", "warn"),
    ("nad-ipam-whereabouts", wa(ipRanges=[{"range": "::ffff:10.0.0.0/104"}]), f"{P}.ipRanges[0].range",
     "the IPv4 network 10.0.0.0/8", "warn"),
    ("nad-ipam-whereabouts", wa(range="::ffff:10.0.0.0/96"), f"{P}.range",
     "the IPv4 network 0.0.0.0/0, which holds every IPv4 address", "warn"),
    ("nad-ipam-whereabouts", wa(range="::ffff:10.0.0.0/80", network_name="n"), f"{P}.range",
     "the IPv6 network ::/80, which holds no IPv4 address", "warn"),
    # whereabouts names its IPPool after the range, ':' and '/' made '-': the apiserver refuses a name
    # starting with '-', and whereabouts then fails every pod, unless the node's whereabouts.conf gives a
    # network_name (which fills the NAD's empty one).
    ("nad-ipam-whereabouts", wa(range="::1:0/112"), f"{P}.range",
     "is ::1:0/112: whereabouts keeps its allocations in an IPPool named after it, '--1-0-112', which the "
     "apiserver refuses", "warn"),
    ("nad-ipam-whereabouts", wa(range="::1:0/112"), f"{P}.range",
     "so every pod fails unless the node's whereabouts.conf (or the file configuration_path names) gives a "
     "network_name", "warn"),
    ("nad-ipam-whereabouts", wa(ipRanges=[{"range": "10.0.0.0/24"}, {"range": "0::0/64"}]),
     f"{P}.ipRanges[1].range", "an IPPool named after it, '---64'", "warn"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", network_name="Blue"), f"{P}.network_name",
     "is 'Blue': whereabouts starts the name of each of its IPPools with it ('Blue-10.0.0.0-24' for 10.0.0.0/24)",
     "deny"),
    # ...and each address it gives after the address: the pod given one written from "::" fails.
    ("nad-ipam-whereabouts", wa(range="0:0:0:1::/64"), f"{P}.range",
     "an OverlappingRangeIPReservation named after it, '--1-0-0-0-1' for ::1:0:0:0:1", "warn"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.10-::ffff:10.0.0.20/120"), f"{P}.range",
     "which ends in '::ffff:10.0.0.20/120', an IPv4-mapped IPv6 CIDR: whereabouts reads it as the IPv4 network "
     "10.0.0.0/24 (the prefix less 96); write 10.0.0.20/24", "warn"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", exclude=["::ffff:10.0.0.0/126"]), f"{P}.exclude[0]",
     "the IPv4 network 10.0.0.0/30", "warn"),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", exclude=["::ffff:10.0.0.1"]), f"{P}.exclude[0]",
     "as the IPv6 network ::/32, so it excludes nothing; write '10.0.0.1'", "warn"),
    (
        "nad-ipam-static",
        st({"address": "10.0.0.5/24"}, dns={"nameservers": "10.0.0.53"}),
        f"{P}.dns.nameservers",
        "the static plugin reads it as a list",
        "deny",
    ),
    (
        "nad-ipam-static",
        st({"address": "10.0.0.5/24", "Version": 4}),
        f"{P}.addresses[0].Version",
        "as a string",
        "deny",
    ),
]


@pytest.mark.parametrize(("rule", "config", "field", "text", "severity"), REFUSED)
def test_refused(rule: str, config: dict[str, Any], field: str, text: str, severity: str) -> None:
    found = findings(nad(config), rule)
    assert [f.field for f in found] == [field], found
    assert found[0].severity is Severity(severity)
    assert found[0].message.startswith(field)
    assert text in found[0].message


ALLOWED = [
    # A range_start or range_end that says what a first-last range says anyway changes nothing.
    ("nad-ipam-whereabouts", wa(range="10.0.0.10-10.0.0.20/24", range_start="10.0.0.10", range_end="10.0.0.20")),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", node_slice_size="")),
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/30")),
    (
        "nad-ipam-host-local",
        hl(subnet="10.0.0.0/24", rangeStart="10.0.0.10", rangeEnd="10.0.0.20", gateway="10.0.0.1"),
    ),
    (
        "nad-ipam-host-local",
        hl(
            ranges=[
                [{"subnet": "10.0.0.0/25"}, {"subnet": "10.0.0.128/25"}],
                [{"subnet": "fd00::/64", "rangeStart": "fd00::10", "rangeEnd": "fd00::20"}],
            ]
        ),
    ),
    # An empty string is an unset net.IP for Go.
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/24", rangeStart="", gateway=None)),
    ("nad-ipam-host-local",
     macvlan({"type": "host-local"}) | {"runtimeConfig": {"ipRanges": [[{"subnet": "10.2.0.0/24"}]]}}),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", range_start="10.0.0.10", range_end="10.0.0.20")),
    ("nad-ipam-whereabouts", wa(range="10.0.0.5/24", exclude=["10.0.0.0/28", "10.0.0.200"])),
    ("nad-ipam-whereabouts", wa(range="10.0.0.10-10.0.0.50/24")),
    # addresses without a range: whereabouts allocates nothing and returns them (run for real).
    ("nad-ipam-whereabouts", wa(addresses=[{"address": "10.0.1.5/24"}])),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", addresses=[{"address": "10.0.1.5/24", "Address": None}])),
    # whereabouts ignores a start at the network address and an end at the broadcast address, and allocates
    # from the first and up to the last usable address: what they ask for.
    ("nad-ipam-whereabouts", wa(range="10.0.0.0/24", range_start="10.0.0.0", range_end="10.0.0.255")),
    ("nad-ipam-whereabouts", wa(range="fd00::/120", range_end="fd00::ff")),
    ("nad-ipam-whereabouts", wa(range="10.0.0.0-10.0.0.255/24")),
    ("nad-ipam-whereabouts", wa(ipRanges=[{"range": "10.0.0.0/24", "range_start": "10.0.0.0"}])),
    # Beside a first-last range starting at the network address (or ending at the broadcast address),
    # a range_start at the first usable address (range_end at the last) gives the span the range gives.
    ("nad-ipam-whereabouts", wa(range="10.0.0.0-10.0.0.50/24", range_start="10.0.0.1")),
    ("nad-ipam-whereabouts", wa(range="10.0.0.5-10.0.0.255/24", range_end="10.0.0.254")),
    ("nad-ipam-whereabouts", wa(range="10.0.0.1-10.0.0.50/24", range_start="10.0.0.0")),
    ("nad-ipam-whereabouts", wa(ipRanges=[{"range": "10.0.0.0-10.0.0.50/24", "range_start": "10.0.0.1"}])),
    ("nad-ipam-whereabouts", wa(ipRanges=[{"range": "10.0.0.5-10.0.0.255/24", "range_end": "10.0.0.254"}])),
    (
        "nad-ipam-whereabouts",
        wa(ipRanges=[{"range": "10.0.0.0/24"}, {"range": "fd00::/64", "exclude": ["fd00::1"]}]),
    ),
    # A network_name starts the IPPool's name (and the reservations'), which the apiserver then takes...
    ("nad-ipam-whereabouts", wa(range="::1:0/112", network_name="blue")),
    # ...as it takes reservations of any name when there are none.
    ("nad-ipam-whereabouts", wa(range="0:0:0:1::/64", enable_overlapping_ranges=False)),
    ("nad-ipam-static", st({"address": "10.0.0.5/24", "gateway": "10.0.0.1"}, {"address": "fd00::5/64"})),
    ("nad-ipam-static", macvlan({"type": "static"}) | {"capabilities": {"ips": True}}),
    (
        "nad-ipam-routes",
        hl(subnet="10.0.0.0/24", routes=[{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}, {"dst": "::/0", "gw": None}]),
    ),
    # A null flat gateway or rangeStart is a nil net.IP: unset.
    ("nad-ipam-host-local", hl(ranges=[[{"subnet": "10.0.0.0/24"}]], gateway=None, rangeStart=None)),
    ("nad-ipam-dhcp", macvlan({"type": "whereabouts", "range": "10.0.0.0/24"})),
    # Keys that only fold to "address" are the address; "Address": null sets nothing.
    ("nad-ipam-static", st({"ADDRESS": "10.0.0.5/24", "Address": None})),
    # null is an unset field of any type; unknown keys are ignored.
    ("nad-ipam-host-local", hl(subnet="10.0.0.0/24", dataDir=None, resolvConf="/etc/resolv.conf", x=[1])),
    (
        "nad-ipam-whereabouts",
        wa(range="10.0.0.0/24", kubernetes={"kubeconfig": "/etc/k"}, leader_lease_duration=1500, dns=None),
    ),
    ("nad-ipam-static", st({"address": "10.0.0.5/24"}, dns={"nameservers": ["10.0.0.53"], "domain": None})),
]


@pytest.mark.parametrize(("rule", "config"), ALLOWED)
def test_allowed(rule: str, config: dict[str, Any]) -> None:
    assert findings(nad(config), rule) == []


def test_whereabouts_node_slices_drop_the_first_ranges_exclude() -> None:
    config = wa(range="10.0.0.0/24", exclude=["10.0.0.1"], node_slice_size="/28", network_name="blue")
    found = {(f.field, f.severity) for f in findings(nad(config), "nad-ipam-whereabouts")
             if "ignores exclude when node_slice_size is set" in f.message}
    assert found == {(f"{P}.exclude[0]", Severity.DENY)}


@pytest.mark.parametrize(("config", "first", "further", "fails"), [
    # Run for real (tests/differential/test_whereabouts_real.py): the second range's allocation is the first
    # one's address again, which macvlan refuses to add twice.
    (wa(ipRanges=[{"range": "10.0.0.0/24"}, {"range": "10.0.1.0/24", "exclude": ["10.0.1.0/30"]}],
        node_slice_size="/28"), f"10.0.0.0/24, {P}.ipRanges[0].range",
     [(f"{P}.ipRanges[1].range", "10.0.1.0/24")], True),
    (wa(range="10.0.0.0/24", ipRanges=[{"range": "10.0.1.0-10.0.1.9/24"}, {"range": "fd00::/64"}],
        node_slice_size="/28"), f"10.0.0.0/24, {P}.range",
     [(f"{P}.ipRanges[0].range", "10.0.1.0/24"), (f"{P}.ipRanges[1].range", "fd00::/64")], True),
    # Another mask: the pod gets the first range's address twice (an IPv6 range's mask too), none of its own.
    (wa(ipRanges=[{"range": "10.0.0.0/24"}, {"range": "10.0.0.0/16"}], node_slice_size="/28"),
     f"10.0.0.0/24, {P}.ipRanges[0].range", [(f"{P}.ipRanges[1].range", "10.0.0.0/16")], False),
])
def test_whereabouts_node_slices_give_further_ranges_the_first_slices_address(
        config: dict[str, Any], first: str, further: list[tuple[str, str]], fails: bool) -> None:
    """whereabouts v0.9.4 allocates every range from the IPPool of the node's slice of the first range, where
    the pod's allocation is found again: nothing of a further range is handed out (nor ignored on its own)."""
    found = [f for f in findings(nad(config), "nad-ipam-whereabouts") if f.severity is Severity.DENY]
    assert [(f.field, f.severity) for f in found] == [(field, Severity.DENY) for field, _ in further]
    for f, (_, net) in zip(found, further, strict=True):
        assert f.message.startswith(
            f"{f.field}: with node_slice_size whereabouts allocates from the node's slice of the first range only "
            f"({first}): for {net} it hands the pod the address it got from that slice again, under this range's "
            f"mask, and never one of {net}")
        assert ('adds one address twice and fails every pod ("file exists")' in f.message) is (
            fails and ipaddress.ip_network(net).prefixlen == 24)


def test_whereabouts_reservation_names_end_in_zero_after_a_double_colon() -> None:
    """whereabouts v0.9.4 NormalizeIP adds a '0' to an address Go writes ending in ':' (fd00:1:: gives the
    reservation fd00-1--0, run for real in test_whereabouts_real.py): a name the apiserver takes."""
    for fields in ({}, {"network_name": "blue"}):
        assert findings(nad(wa(range="fd00::/16", range_start="fd00:1::", **fields)), "nad-ipam-whereabouts") == []


def test_whereabouts_node_slices_without_network_name_are_held_against_every_other_nad() -> None:
    """node-controller checkForMultiNadMismatch (run for real in test_whereabouts_real.py): every NAD without
    a network_name shares one, so another's range stops the controller syncing this one."""
    for unnamed in ({}, {"network_name": ""}):
        found = [f for f in findings(nad(wa(range="10.0.0.0/24", node_slice_size="/28", **unnamed)),
                                     "nad-ipam-whereabouts") if "network_name is not" in f.message]
        assert [(f.field, f.severity) for f in found] == [(f"{P}.node_slice_size", Severity.WARN)]
        assert "found IPAM conf mismatch for network-attachment-definitions with same network name" in found[0].message
        assert found[0].message.endswith("give it a network_name of its own")
    named = findings(nad(wa(range="10.0.0.0/24", node_slice_size="/28", network_name="blue")), "nad-ipam-whereabouts")
    assert not [f for f in named if "network_name" in f.message]


@pytest.mark.parametrize(("config", "ignored"), [
    (wa(range="10.0.0.0/24", range_start="10.0.0.50", node_slice_size="/28"),
     [(f"{P}.range_start", "range_start", "10.0.0.50-10.0.0.254", "drop it")]),
    (wa(range="10.0.0.0/24", range_end="10.0.0.99", node_slice_size="/28"),
     [(f"{P}.range_end", "range_end", "10.0.0.1-10.0.0.99", "drop it")]),
    (wa(range="10.0.0.10-10.0.0.20/24", node_slice_size="/28"),
     [(f"{P}.range", f"the first-last form of {P}.range ('10.0.0.10-10.0.0.20/24')", "10.0.0.10-10.0.0.20",
       "drop the first-last form")]),
    (wa(ipRanges=[{"range": "10.0.0.0/24", "range_start": "10.0.0.5", "range_end": "10.0.0.9"}],
        node_slice_size="/28"),
     [(f"{P}.ipRanges[0].range_start", "range_start", "10.0.0.5-10.0.0.9", "drop it"),
      (f"{P}.ipRanges[0].range_end", "range_end", "10.0.0.5-10.0.0.9", "drop it")]),
])
def test_whereabouts_node_slices_drop_what_narrows_a_range_as_they_drop_exclude(
        config: dict[str, Any], ignored: list[tuple[str, str, str, str]]) -> None:
    """whereabouts v0.9.4 puts the node slice's first and last usable addresses in place of each range's
    RangeStart and RangeEnd, and the controller slices the range's network: denied as exclude is."""
    found = [(f.field, f.severity, f.message) for f in findings(nad(config), "nad-ipam-whereabouts")
             if "when node_slice_size is set" in f.message]
    assert found == [
        (field, Severity.DENY,
         f"{field}: whereabouts ignores {what} when node_slice_size is set (it allocates from the node's slice of the "
         f"range, from its first to its last usable address, not only from {span}); drop node_slice_size, or "
         f"{drop} and write the range as the CIDR of just the addresses to hand out")
        for field, what, span, drop in ignored]


@pytest.mark.parametrize("config", [
    wa(range="10.0.0.0/24", range_start="10.0.0.1", range_end="10.0.0.255", node_slice_size="/28",
       network_name="blue"),
    wa(range="10.0.0.0-10.0.0.255/24", node_slice_size="/28", network_name="blue"),
])
def test_whereabouts_node_slices_ignore_nothing_of_a_range_nothing_narrows(config: dict[str, Any]) -> None:
    """Only the warning that the node-slice controller must run."""
    assert [(f.field, f.severity) for f in findings(nad(config), "nad-ipam-whereabouts")] == \
        [(f"{P}.node_slice_size", Severity.WARN)]


def test_whereabouts_exclude_without_a_range_still_lacks_a_range() -> None:
    """Run for real (tests/differential/test_whereabouts_real.py): an exclude without a range, a warning
    of its own, gives whereabouts nothing to allocate from, and macvlan fails with no address, unless the
    node's whereabouts.conf gives a range or the pod passes its ips (both work): a warning."""
    found = findings(nad(wa(exclude=["10.0.0.0/30"])), "nad-ipam-whereabouts")
    assert [(f.field, f.severity) for f in found] == [(f"{P}.exclude", Severity.WARN), (f"{P}.range", Severity.WARN)]
    assert "there are no ipRanges: whereabouts has nothing to allocate from unless the node's whereabouts.conf" \
        in found[1].message


def test_ipam_rules_read_every_plugin_of_a_list() -> None:
    config = {
        "cniVersion": "1.0.0",
        "plugins": [
            {"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}},
            {"type": "tuning"},
            {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.1.0.1/24"}},
        ],
    }
    [finding] = findings(nad(config), "nad-ipam-host-local")
    assert finding.field == "spec.config.plugins[2].ipam.subnet"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("fd00::1", "fd00::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("fe80::1%eth0", None),
        ("010.0.0.1", None),
        ("10.0.0.1/24", None),
        (" 10.0.0.1", None),
        (7, None),
    ],
)
def test_parse_ip_reads_like_go(text: Any, expected: str | None) -> None:
    parsed = parse_ip(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1/24", ("10.0.0.1", "10.0.0.0/24")),
        ("fd00::1/64", ("fd00::1", "fd00::/64")),
        ("10.0.0.0/33", None),
        ("10.0.0.0", None),
        ("10.0.0.0/+8", None),
        ("::ffff:10.0.0.0/104", None),
        # Go: net.ParseCIDR takes leading zeros in the prefix length, refuses a huge one.
        ("10.0.0.1/0024", ("10.0.0.1", "10.0.0.0/24")),
        ("10.0.0.1/" + "1" * 4301, None),
    ],
)
def test_parse_cidr_reads_like_go(text: str, expected: tuple[str, str] | None) -> None:
    parsed = parse_cidr(text)
    assert ((str(parsed[0]), str(parsed[1])) if parsed else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # As k8s.io/utils' ParseIPSloppy (Go 1.16's parser) reads them: each IPv4 part in decimal.
        ("10.0.0.010", "10.0.0.10"),
        ("010.000.000.000/024", "10.0.0.0/024"),
        ("::ffff:10.0.0.001", "::ffff:10.0.0.1"),
        ("10.0.0." + "0" * 5000 + "7", "10.0.0.7"),
        ("10.0.0.0256", "10.0.0.256"),  # above 255: still refused by the parser
        ("fd00::010", "fd00::010"),  # hexadecimal groups are not IPv4 parts
        ("1.02.3.4.5", "1.02.3.4.5"),
    ],
)
def test_unpadded_reads_ipv4_parts_in_decimal(text: str, expected: str) -> None:
    assert unpadded(text) == expected


def test_allocation_ranges_for_the_overlap_index() -> None:
    config = {
        "cniVersion": "1.0.0",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "br-lan",
                "vlan": 20,
                "ipam": {
                    "type": "host-local",
                    "ranges": [
                        [{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10"}],
                        [{"subnet": "fd00::/120"}],
                    ],
                },
            },
            {
                "type": "macvlan",
                "master": "eth1",
                "ipam": {
                    "type": "whereabouts",
                    "range": "10.2.0.0/24",
                    "range_end": "10.2.0.99",
                    "network_name": "blue",
                    "enable_overlapping_ranges": False,
                },
            },
            {
                "type": "vlan",
                "master": "eth2",
                "vlanId": 7,
                "ipam": {"type": "static", "addresses": [{"address": "10.3.0.5/24"}]},
            },
            {"type": "macvlan", "ipam": {"type": "host-local", "subnet": "10.4.0.1/24"}},  # invalid: left out
            {"type": "macvlan", "ipam": {"type": "dhcp"}},
        ],
    }
    ranges = nad_allocation_ranges(parse_nad_config(json.dumps(config), "spec.config").netconf)
    got = [
        (
            str(r.first),
            str(r.last),
            r.ipam_type,
            r.bridge,
            r.master,
            r.vlan,
            r.network_name,
            r.enable_overlapping_ranges,
        )
        for r in ranges
    ]
    assert got == [
        # The gateway host-local skips (fd00::1 by default) is not handed out.
        ("10.0.0.10", "10.0.0.254", "host-local", "br-lan", None, 20, "", True),
        ("fd00::2", "fd00::ff", "host-local", "br-lan", None, 20, "", True),
        ("10.2.0.1", "10.2.0.99", "whereabouts", None, "eth1", None, "blue", False),
        ("10.3.0.5", "10.3.0.5", "static", None, "eth2", 7, "", True),
    ]
    assert ranges[0].path == "spec.config.plugins[0].ipam.ranges[0][0]"
    assert ranges[2].network == ipaddress.ip_network("10.2.0.0/24")
    assert ranges[0].overlaps(ranges[0])
    assert not ranges[0].overlaps(ranges[1])


@pytest.mark.parametrize(
    ("ipam", "expected"),
    [
        ({"range": "10.0.0.0/24", "range_start": "10.0.0.0", "range_end": "10.0.0.255"}, ("10.0.0.1", "10.0.0.254")),
        ({"range": "10.0.0.0/24", "range_start": "10.0.0.010", "range_end": "10.0.0.0020"}, ("10.0.0.10", "10.0.0.20")),
        ({"range": "10.0.0.0/24", "range_start": "10.0.0.100", "range_end": "10.0.0.10"}, ("10.0.0.100", "10.0.0.254")),
        ({"range": "10.0.0.0-10.0.0.255/24"}, ("10.0.0.1", "10.0.0.254")),
        # An IPv4-mapped range is the IPv4 network with the prefix less 96 (what the real whereabouts gives
        # in tests/differential/test_whereabouts_real.py), its exclude entries likewise.
        ({"range": "::ffff:10.0.0.0/120"}, ("10.0.0.1", "10.0.0.254")),
        ({"range": "::ffff:10.0.0.0/120", "exclude": ["::ffff:10.0.0.0/126"]}, ("10.0.0.4", "10.0.0.254")),
        ({"range": "10.0.0.10-::ffff:10.0.0.20/120"}, ("10.0.0.10", "10.0.0.20")),
        # A mapped address in exclude is made a /32 of the 128-bit address, ::/32: it excludes nothing.
        ({"range": "10.0.0.0/24", "exclude": ["::ffff:10.0.0.1"]}, ("10.0.0.1", "10.0.0.254")),
    ],
)
def test_whereabouts_allocates_as_its_get_ip_range_does(ipam: dict[str, str], expected: tuple[str, str]) -> None:
    config = json.dumps(wa(**ipam))
    [got] = nad_allocation_ranges(parse_nad_config(config, "spec.config").netconf)
    assert (str(got.first), str(got.last)) == expected


def test_allocation_ranges_of_nothing() -> None:
    assert nad_allocation_ranges(None) == []
    assert nad_allocation_ranges(parse_nad_config('{"type": "macvlan"}', "spec.config").netconf) == []


def test_static_without_addresses_takes_them_from_args_cni_ips() -> None:
    # static reads args.cni.ips too (as Multus writes a pod's cni-args): nothing to say.
    config = {**st(), "args": {"cni": {"ips": ["10.1.0.5/24"]}}}
    assert findings(nad(config), "nad-ipam-static") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # static (plugins v1.10.0) makes a mapped address 4 bytes long under its 128-bit mask, of which the
        # interface gets the last 32 bits (checked with the real plugin: tests/differential).
        ("::ffff:10.0.0.7/120", ("10.0.0.7", "10.0.0.0/24")),
        ("::ffff:10.0.0.7/128", ("10.0.0.7", "10.0.0.7/32")),
        ("::ffff:10.0.0.7/100", ("10.0.0.7", "0.0.0.0/4")),
        ("::ffff:10.0.0.7/96", ("10.0.0.7", "0.0.0.0/0")),
        ("::ffff:10.0.0.7/64", ("10.0.0.7", "0.0.0.0/0")),
        ("::ffff:a00:7/120", ("10.0.0.7", "10.0.0.0/24")),
        ("::ffff:10.0.0.7/129", None),
        ("::ffff:10.0.0.7", None),
        ("10.0.0.7/24", ("10.0.0.7", "10.0.0.0/24")),
        ("fd00::7/64", ("fd00::7", "fd00::/64")),
    ],
)
def test_parse_static_cidr_reads_mapped_addresses_as_static_does(text: str, expected: tuple[str, str] | None) -> None:
    parsed = parse_static_cidr(text)
    assert ((str(parsed[0]), str(parsed[1])) if parsed else None) == expected


@pytest.mark.parametrize("where", ["args", "addresses"])
def test_static_takes_ipv4_mapped_cidrs(where: str) -> None:
    def config(cidr: str) -> dict[str, Any]:
        return {**st(), "args": {"cni": {"ips": [cidr]}}} if where == "args" else st({"address": cidr})

    field = "spec.config.args.cni.ips[0]" if where == "args" else f"{P}.addresses[0].address"
    for cidr in ("::ffff:10.1.0.5/120", "::ffff:10.1.0.5/128"):
        assert findings(nad(config(cidr)), "nad-ipam-static") == [], cidr
    # /96 or less leaves no bit of the IPv4 prefix: the interface gets 10.1.0.5/0, a warning.
    [zero] = findings(nad(config("::ffff:10.1.0.5/96")), "nad-ipam-static")
    assert (zero.field, zero.severity) == (field, Severity.WARN)
    assert "the interface gets 10.1.0.5/0" in zero.message
    # Mapped addresses count as IPv4 where a cniVersion returns one per family.
    two = {**st(), "cniVersion": "0.2.0", "args": {"cni": {"ips": ["::ffff:10.1.0.5/120", "10.2.0.5/24"]}}}
    assert any("cannot return" in f.message for f in findings(nad(two), "nad-ipam-static"))


def test_ipam_of_a_plugin_that_never_runs_it_is_not_judged() -> None:
    # tuning, bandwidth and the other chained plugins (and loopback) never call IPAM: what their ipam section
    # says is never read, only a warning that it is ignored.
    bandwidth = {"type": "bandwidth", "ipam": {"type": "static", "addresses": [{"address": "bogus"}]},
                 "args": {"cni": {"ips": ["x"]}}}
    config = {"cniVersion": "1.0.0", "name": "c", "plugins": [hl(subnet="10.1.0.0/24"), bandwidth]}
    assert findings(nad(config), "nad-ipam-static") == []
    ignored = [f for f in evaluate(nad(config), Policy()) if f.field == "spec.config.plugins[1].ipam.type"]
    assert [(f.rule, f.severity) for f in ignored] == [("nad-plugin-ipam-required", Severity.WARN)]
    assert "the bandwidth plugin never runs IPAM" in ignored[0].message
    # Nor is the binary it names needed, nor host-local's ranges taken.
    tuning = {"type": "tuning", "ipam": {"type": "host-local", "subnet": "10.1.0.0/31"}}
    config = {"cniVersion": "1.0.0", "name": "c", "plugins": [hl(subnet="10.1.0.0/24"), tuning]}
    assert findings(nad(config), "nad-ipam-host-local") == []
    netconf = parse_nad_config(json.dumps(config), "spec.config").netconf
    assert netconf is not None
    assert [r.plugin_type for r in nad_allocation_ranges(netconf)] == ["macvlan"]
    named = {**config, "plugins": [hl(subnet="10.1.0.0/24"), {"type": "tuning", "ipam": {"type": "no-such-ipam"}}]}
    netconf = parse_nad_config(json.dumps(named), "spec.config").netconf
    assert netconf is not None
    assert "no-such-ipam" not in netconf.binaries


@pytest.mark.parametrize(
    ("ips", "field", "text"),
    [
        (["10.1.0.5"], "spec.config.args.cni.ips[0]", "is the string '10.1.0.5', not a CIDR"),
        (["10.1.0.5/24", 7], "spec.config.args.cni.ips[1]", "is the number 7, not a CIDR"),
        ("10.1.0.5/24", "spec.config.args.cni.ips", "write a list of CIDRs"),
    ],
)
def test_static_refuses_args_cni_ips_that_are_not_cidrs(ips: Any, field: str, text: str) -> None:
    # static parses them on every ADD, even where a pod's runtimeConfig.ips would replace them next.
    config = {**st(), "capabilities": {"ips": True}, "args": {"cni": {"ips": ips}}}
    [finding] = findings(nad(config), "nad-ipam-static")
    assert (finding.field, finding.severity) == (field, Severity.DENY)
    assert text in finding.message


def test_args_cni_ips_replace_the_addresses_which_are_then_only_decoded() -> None:
    # "args IP overwrites IP": static never parses the addresses, but still decodes them.
    replaced = {"args": {"cni": {"ips": ["10.1.0.5/24"]}}}
    assert findings(nad({**st({"address": "bogus", "gateway": "fd00::1"}, None), **replaced}), "nad-ipam-static") == []
    [bad_gateway] = findings(nad({**st({"address": "bogus", "gateway": "router"}), **replaced}), "nad-ipam-static")
    assert bad_gateway.field == f"{P}.addresses[0].gateway"
    [bad_type] = findings(nad({**st({"address": 5}), **replaced}), "nad-ipam-static")
    assert bad_type.field == f"{P}.addresses[0].address"
    # An empty list replaces nothing.
    [bogus] = findings(nad({**st({"address": "bogus"}), "args": {"cni": {"ips": []}}}), "nad-ipam-static")
    assert bogus.field == f"{P}.addresses[0].address"
    # The replacing addresses are what a cniVersion returning one per family must fit.
    two = {"args": {"cni": {"ips": ["10.1.0.5/24", "10.2.0.5/24"]}}}
    [families] = findings(nad({**st({"address": "10.1.0.5/24"}), **two, "cniVersion": "0.2.0"}), "nad-ipam-static")
    assert "cannot return" in families.message
    # Named where they are written.
    assert families.field == "spec.config.args.cni.ips"
    assert families.message.startswith("spec.config.args.cni.ips has several addresses of one address family")


def test_args_cni_ips_are_found_as_go_matches_keys() -> None:
    # Go's decoder matches "IPs" (and "CNI", "Args") to static's ips: they replace the addresses, and are
    # parsed as CIDRs, as written.
    assert findings(nad({**st({"address": "bogus"}), "Args": {"CNI": {"IPs": ["10.1.0.5/24"]}}}),
                    "nad-ipam-static") == []
    [bare] = findings(nad({**st(), "args": {"cni": {"IPs": ["10.1.0.5"]}}}), "nad-ipam-static")
    assert bare.field == "spec.config.args.cni.IPs[0]"


@pytest.mark.parametrize(
    ("config", "field", "text"),
    [
        # static decodes every spelling of args, cni and ips, in sorted order, into one struct: a later
        # object keeps an earlier one's ips, a mistyped one fails the decode whatever comes later.
        ({"Args": {"cni": {"ips": ["10.1.0.5"]}}, "args": {}}, "spec.config.Args.cni.ips[0]", "not a CIDR"),
        ({"args": {"CNI": {"ips": ["10.1.0.5"]}, "cni": {}}}, "spec.config.args.CNI.ips[0]", "not a CIDR"),
        ({"args": {"cni": {"IPs": "10.1.0.5/24", "ips": ["10.1.0.6/24"]}}}, "spec.config.args.cni.IPs",
         "write a list of CIDRs"),
        ({"args": {"cni": {"IPs": [5], "ips": ["10.1.0.6/24"]}}}, "spec.config.args.cni.IPs[0]",
         "is the number 5, not a CIDR"),
        ({"args": "x"}, "spec.config.args", "is the string 'x', but the static plugin reads it as an object"),
        ({"args": {"CNI": "x", "cni": {}}}, "spec.config.args.CNI", "reads it as an object"),
        # A null entry beyond what an earlier list had is "".
        ({"args": {"cni": {"IPs": ["10.1.0.5/24"], "ips": [None, None]}}}, "spec.config.args.cni.ips[1]",
         "is null, not a CIDR"),
    ],
)
def test_args_cni_ips_under_every_spelling_are_judged(config: dict[str, Any], field: str, text: str) -> None:
    [finding] = findings(nad({**st(), **config}), "nad-ipam-static")
    assert (finding.field, finding.severity) == (field, Severity.DENY)
    assert text in finding.message


def test_args_cni_ips_replaced_or_dropped_by_a_later_spelling_are_not_parsed() -> None:
    for args in ({"cni": {"IPs": ["10.1.0.5"], "ips": ["10.1.0.6/24"]}},
                 # A null entry keeps the string an earlier list had at its index.
                 {"cni": {"IPs": ["10.1.0.5/24"], "ips": [None]}}):
        assert findings(nad({**st(), "args": args}), "nad-ipam-static") == []
    assert findings(nad({**st({"address": "10.1.0.9/24"}), "Args": {"cni": {"ips": ["10.1.0.5"]}}, "args": None}),
                    "nad-ipam-static") == []
    # The later spelling is what replaces the addresses, as the earlier one's entry it kept.
    netconf = parse_nad_config(json.dumps({**st({"address": "10.2.0.5/24"}), "args": {"cni": {
        "IPs": ["10.1.0.5/24"], "ips": [None]}}}), "spec.config").netconf
    assert [(r.path, str(r.first)) for r in nad_allocation_ranges(netconf)] == [
        ("spec.config.args.cni.IPs[0]", "10.1.0.5")]


def test_a_null_args_cni_ips_entry_takes_what_any_earlier_longer_list_left_in_the_array() -> None:
    # Go reuses the slice's array: "IPS" leaves 2 entries, "IPs" overwrites the first, "ips"' null at [1]
    # finds "IPS"' second still there (checked with the real static: the interface gets .8 and .6).
    args = {"cni": {"IPS": ["10.1.0.5/24", "10.1.0.6/24"], "IPs": ["10.1.0.7/24"], "ips": ["10.1.0.8/24", None]}}
    assert findings(nad({**st(), "args": args}), "nad-ipam-static") == []
    netconf = parse_nad_config(json.dumps({**st(), "args": args}), "spec.config").netconf
    assert netconf is not None
    assert [(r.path, str(r.first)) for r in nad_allocation_ranges(netconf)] == [
        ("spec.config.args.cni.ips[0]", "10.1.0.8"), ("spec.config.args.cni.IPS[1]", "10.1.0.6")]
    # A null list (or args, or cni, above it) makes the slice nil: a new array, nothing kept.
    for dropped in ({"cni": {"IPS": ["10.1.0.5/24", "10.1.0.6/24"], "IPs": None, "ips": ["10.1.0.8/24", None]}},
                    # Sorted by bytes: "CNI", "Cni", "cni".
                    {"CNI": {"ips": ["10.1.0.5/24", "10.1.0.6/24"]}, "Cni": None, "cni": {"ips": ["10.1.0.8/24",
                                                                                               None]}}):
        [null] = findings(nad({**st(), "args": dropped}), "nad-ipam-static")
        assert "is null, not a CIDR" in null.message, dropped


HL = {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]]}
HL_BOTH = {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00:1::/64"}]]}


@pytest.mark.parametrize(
    ("ipam", "args", "field", "text"),
    [
        (HL, {"cni": {"ips": ["bogus"]}}, "args.cni.ips[0]", "is the string 'bogus', not an IP address"),
        (HL, {"cni": {"ips": [""]}}, "args.cni.ips[0]", "is the string '', not an IP address"),
        (HL, {"cni": {"ips": ["10.1.0.5/33"]}}, "args.cni.ips[0]", "not an IP address"),
        (HL, {"cni": {"ips": [7]}}, "args.cni.ips[0]", "is the number 7, not an IP address"),
        (HL, {"cni": {"ips": "10.1.0.5"}}, "args.cni.ips", 'host-local fails every pod; write a list of addresses'),
        (HL, "x", "args", "but host-local reads it as an object"),
        # Null into host-local's *ip.IP is nil, whatever an earlier spelling had there (static keeps it).
        (HL, {"cni": {"IPs": ["10.1.0.5"], "ips": [None]}}, "args.cni.ips[0]", "is null: host-local reads it as a "
                                                                              "nil address, crashes on it"),
        (HL, {"cni": {"ips": ["10.2.0.5"]}}, "args.cni.ips[0]",
         "10.2.0.5 lies in none of host-local's ranges (spec.config.ipam.ranges[0][0]: 10.1.0.1-10.1.0.254)"),
        (HL, {"cni": {"ips": ["10.1.0.255"]}}, "args.cni.ips[0]", "lies in none of host-local's ranges"),
        ({"type": "host-local", "subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10"}, {"cni": {"ips": ["10.1.0.5"]}},
         "args.cni.ips[0]", "(spec.config.ipam: 10.1.0.10-10.1.0.254)"),
        (HL, {"cni": {"ips": ["fd00:1::5"]}}, "args.cni.ips[0]", "is IPv6, but every range of host-local is IPv4"),
        (HL_BOTH, {"cni": {"ips": ["10.1.0.5", "10.1.0.6"]}}, "args.cni.ips[1]",
         "10.1.0.6 is in the same range set as spec.config.args.cni.ips[0] 10.1.0.5"),
        (HL, {"cni": {"ips": ["10.1.0.1"]}}, "args.cni.ips[0]",
         "is the gateway of spec.config.ipam.ranges[0][0] (the subnet's first address, as no gateway is set)"),
        ({"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24", "gateway": "10.1.0.9"}]]},
         {"cni": {"ips": ["10.1.0.9"]}}, "args.cni.ips[0]", "is the gateway of spec.config.ipam.ranges[0][0]: "),
        # Every spelling Go matches, in sorted order: a later empty object keeps an earlier one's list.
        (HL, {"cni": {"IPs": ["10.2.0.5"]}}, "args.cni.IPs[0]", "lies in none"),
        (HL, {"CNI": {"ips": ["10.2.0.5"]}, "cni": {}}, "args.CNI.ips[0]", "lies in none"),
    ],
)
def test_host_local_refuses_args_cni_ips_it_cannot_allocate(ipam: dict[str, Any], args: Any, field: str,
                                                             text: str) -> None:
    [finding] = [f for f in findings(nad({**macvlan(ipam), "args": args}), "nad-ipam-host-local")
                 if f.severity is Severity.DENY]
    assert finding.field == f"spec.config.{field}"
    assert finding.message.startswith(f"spec.config.{field} ")
    assert text in finding.message


def test_host_local_args_cni_ips_every_pod_requests_warn() -> None:
    # The first pod on a node takes the address, every other one there fails while it holds it.
    for ips in (["10.1.0.5"], ["10.1.0.5/8", "10.1.0.5"], ["::ffff:10.1.0.5"]):
        [finding] = findings(nad({**macvlan(HL), "args": {"cni": {"ips": ips}}}), "nad-ipam-host-local")
        assert (finding.field, finding.severity) == ("spec.config.args.cni.ips", Severity.WARN)
        assert finding.message.startswith("spec.config.args.cni.ips requests 10.1.0.5 for every pod of this NAD")
    [both] = findings(nad({**macvlan(HL_BOTH), "Args": {"cni": {"ips": ["10.1.0.5", "fd00:1::5"]}}}),
                      "nad-ipam-host-local")
    assert (both.field, both.severity) == ("spec.config.Args.cni.ips", Severity.WARN)
    # Nothing requested: an empty list, null, or a later null args.
    for config in ({"args": {"cni": {"ips": []}}}, {"args": {"cni": {"ips": None}}},
                   {"Args": {"cni": {"ips": ["10.2.0.5"]}}, "args": None}):
        assert findings(nad({**macvlan(HL), **config}), "nad-ipam-host-local") == [], config
    # A literal runtimeConfig.ipRanges reaches host-local (no capability of the plugin is filled) ahead of
    # its ranges and may hold the address: only the warning.
    runtime_ranges = {"runtimeConfig": {"ipRanges": [[{"subnet": "10.2.0.0/24"}]]},
                      "args": {"cni": {"ips": ["10.2.0.5"]}}}
    [runtime] = findings(nad({**macvlan(HL), **runtime_ranges}), "nad-ipam-host-local")
    assert runtime.severity is Severity.WARN
    # Multus never passes ipRanges: the capability alone gives host-local no other range.
    declared = {"capabilities": {"ipRanges": True}, "args": {"cni": {"ips": ["10.2.0.5"]}}}
    [refused] = findings(nad({**macvlan(HL), **declared}), "nad-ipam-host-local")
    assert refused.severity is Severity.DENY
    # A literal runtimeConfig.ips is requested by every pod too.
    [literal] = findings(nad({**macvlan(HL), "runtimeConfig": {"ips": ["10.1.0.5"]}}), "nad-ipam-host-local")
    assert (literal.field, literal.severity) == ("spec.config.runtimeConfig.ips", Severity.WARN)
    [outside] = findings(nad({**macvlan(HL), "runtimeConfig": {"ips": ["10.9.0.5"]}}), "nad-ipam-host-local")
    assert (outside.field, outside.severity) == ("spec.config.runtimeConfig.ips[0]", Severity.DENY)


def test_host_local_with_only_the_ip_ranges_capability_has_nothing_to_allocate_from() -> None:
    # Multus's RuntimeConfig has no ipRanges: host-local fails "no IP ranges specified" on every pod;
    # a literal runtimeConfig.ipRanges is what it then allocates from.
    [finding] = findings(nad(macvlan({"type": "host-local"}) | {"capabilities": {"ipRanges": True}}),
                         "nad-ipam-host-local")
    assert finding.severity is Severity.DENY
    assert "but Multus passes no ipRanges" in finding.message
    literal = {"runtimeConfig": {"ipRanges": [[{"subnet": "10.2.0.0/24"}]]}}
    assert findings(nad(macvlan({"type": "host-local"}) | literal), "nad-ipam-host-local") == []
    [bad] = findings(nad(macvlan({"type": "host-local"}) | {"runtimeConfig": {"ipRanges": [[{"subnet": "x"}]]}}),
                     "nad-ipam-host-local")
    assert bad.field.startswith("spec.config.runtimeConfig.ipRanges[0][0]")


def test_a_list_with_only_cni_versions_takes_its_highest() -> None:
    # libcni picks the version from cniVersions: no "no cniVersion, read as 0.1.0" for such a list.
    plugin = {k: v for k, v in hl(ranges=[[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]).items()
              if k != "cniVersion"}
    assert findings(nad({"cniVersions": ["0.2.0", "1.0.0"], "name": "x", "plugins": [plugin]}),
                    "nad-ipam-host-local") == []
    refused = findings(nad({"cniVersions": ["0.2.0"], "name": "x", "plugins": [plugin]}), "nad-ipam-host-local")
    assert ["cniVersion 0.2.0 cannot return" in f.message for f in refused] == [True]
    # ... the highest that libcni implements, cniVersion included: 2.0.0 is skipped, 1.0.0 beats 0.2.0.
    skipped = findings(nad({"cniVersions": ["0.2.0", "2.0.0"], "name": "x", "plugins": [plugin]}),
                       "nad-ipam-host-local")
    assert ["cniVersion 0.2.0 cannot return" in f.message for f in skipped] == [True]
    assert findings(nad({"cniVersion": "0.2.0", "cniVersions": ["1.0.0"], "name": "x", "plugins": [plugin]}),
                    "nad-ipam-host-local") == []


# --- host-local range checks cost O(n log n) (counted, never timed) -------------------------------

WEBHOOK_DIR = str(Path(webhook.__file__).parent)


def webhook_lines(run: Callable[[], object]) -> Counter[str]:
    """What ``run`` executes of the webhook's own code: lines (all, and "lines in <file>" by module), and
    calls by function name. The same count on every machine, unlike a time; code in C (a sort) and
    outside webhook/ is not counted."""
    counts: Counter[str] = Counter()

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            counts["lines"] += 1
            counts[f"lines in {Path(frame.f_code.co_filename).name}"] += 1
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if not frame.f_code.co_filename.startswith(WEBHOOK_DIR):
            return None
        counts[frame.f_code.co_name] += 1
        return local

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return counts


def disjoint_slash30s(n: int) -> list[dict[str, str]]:
    return [{"subnet": f"10.{i // 64}.{i % 64 * 4}.0/30"} for i in range(n)]


def judge_everywhere(config: dict[str, Any]) -> Callable[[], object]:
    """The three ways a NAD's host-local ranges are read: the rules on an admission review (the
    nad-ipam-host-local rule and, in a known cluster, nad-range-overlap), and the cluster cache
    storing the NAD (its overlap index entries)."""
    obj = {"kind": NAD, "metadata": {"name": "net1", "namespace": "default"}, "spec": {"config": json.dumps(config)}}

    def run() -> None:
        view = StaticClusterView([obj])
        evaluate(Subject({**obj, "metadata": {"name": "net2", "namespace": "default"}}, NAD, view=view), Policy())

    return run


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda ranges: [ranges], id="one range set"),
        pytest.param(lambda ranges: [[r] for r in ranges], id="one range set per range"),
    ],
)
def test_host_local_range_checks_grow_no_faster_than_the_ranges(
    shape: Callable[[list[dict[str, str]]], list[list[dict[str, str]]]],
) -> None:
    # Four times the ranges: about four times the work when it is linear (the sort aside, counted as
    # nothing), sixteen times when every pair is compared, as it was (950 ranges took 0.8 s).
    small, large = (webhook_lines(judge_everywhere(hl(ranges=shape(disjoint_slash30s(n)))))["lines"]
                    for n in (200, 800))
    print(f"lines executed: {small} for 200 ranges, {large} for 800")
    assert large < 5 * small


def test_host_local_ranges_are_read_once_per_plugin() -> None:
    counts = webhook_lines(judge_everywhere(hl(ranges=[disjoint_slash30s(4)])))
    # Each of the 4 ranges parsed once for the cache storing the NAD, once for the admission review
    # (where two rules read them).
    assert counts["_host_local_range"] == 2 * 4


def test_a_host_local_section_with_more_than_1024_ranges_is_refused_once() -> None:
    assert findings(nad(hl(ranges=[disjoint_slash30s(1024)])), "nad-ipam-host-local") == []
    [f] = findings(nad(hl(ranges=[disjoint_slash30s(1000), disjoint_slash30s(25)])), "nad-ipam-host-local")
    assert f.field == f"{P}.ranges"
    assert f.message.startswith(f"{P}.ranges holds 1025 ranges, more than 1024: host-local compares every pair")
    # Nothing of it reaches the overlap index either.
    config = json.dumps(hl(ranges=[disjoint_slash30s(1025)]))
    assert nad_allocation_ranges(parse_nad_config(config, "spec.config").netconf) == []


def test_ranges_past_the_limit_are_not_read_at_all() -> None:
    # Not parsed, not typed: a config near etcd's limit costs what decoding its JSON costs (gojson's
    # hook runs for each object).
    small, large = (counts["lines"] - counts["lines in gojson.py"]
                    for n in (2000, 8000)
                    for counts in [webhook_lines(judge_everywhere(hl(ranges=[disjoint_slash30s(n)])))])
    print(f"lines executed besides decoding: {small} for 2000 ranges, {large} for 8000")
    assert large == small


@settings(max_examples=300, deadline=None)
@given(
    hst.lists(
        hst.tuples(hst.integers(0, 3), hst.sampled_from([4, 6]), hst.integers(0, 60), hst.integers(0, 20)),
        max_size=25,
    )
)
def test_the_overlap_sweep_finds_each_range_that_overlaps_one_of_another_group_before_it(
    items: list[tuple[int, int, int, int]],
) -> None:
    def addr(version: int, n: int) -> IPAddress:
        return ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n)

    net = ipaddress.ip_network("0.0.0.0/0")  # not read by the sweep
    ranges = [(group, HostLocalRange(f"r{i}", net, addr(v, a), addr(v, a + n), None))
              for i, (group, v, a, n) in enumerate(items)]

    def overlap(i: int, j: int) -> bool:
        (gi, a), (gj, b) = ranges[i], ranges[j]
        return gi != gj and a.start.version == b.start.version and a.start <= b.end and b.start <= a.end

    pairs = _overlapping_pairs(ranges)
    assert all(overlap(ia, ib) and ia < ib and (ga, gb) == (ranges[ia][0], ranges[ib][0])
               for (ga, ia), (gb, ib) in pairs)
    def before(j: int, i: int) -> bool:
        return (ranges[j][1].start, j) < (ranges[i][1].start, i)

    # Each range that overlaps a range of another group starting before it (or at its address, earlier
    # in the list) is in a pair: so an overlap is never missed, and at most one pair per range.
    involved = {i for (_, ia), (_, ib) in pairs for i in (ia, ib)}
    late = {i for i in range(len(ranges)) if any(overlap(i, j) and before(j, i) for j in range(len(ranges)))}
    assert late <= involved
    assert len(pairs) == len(late)


def test_a_static_address_under_a_capital_a_is_not_indexed() -> None:
    def indexed(entry: dict[str, Any]) -> list[str]:
        netconf = parse_nad_config(json.dumps(st(entry)), "spec.config").netconf
        return [str(r.first) for r in nad_allocation_ranges(netconf)]

    assert indexed({"Address": "10.0.0.5/24"}) == []
    # The net.IPNet form the plugin takes as it is: not read here.
    assert indexed({"Address": {"IP": "10.0.0.6", "Mask": "////AA=="}}) == []
    assert indexed({"ADDRESS": "10.0.0.7/24"}) == ["10.0.0.7"]


def test_static_addresses_replaced_by_args_cni_ips_are_not_indexed_but_the_args_are() -> None:
    # "args IP overwrites IP": pods get args.cni.ips, so those are what other NADs may collide with.
    def indexed(config: dict[str, Any]) -> list[tuple[str, str]]:
        netconf = parse_nad_config(json.dumps(config), "spec.config").netconf
        return [(str(r.first), r.path) for r in nad_allocation_ranges(netconf)]

    assert indexed({**st({"address": "10.0.0.5/24"}), "args": {"cni": {"ips": ["10.0.1.5/24", "bogus"]}}}) == [
        ("10.0.1.5", "spec.config.args.cni.ips[0]")]
    # An empty list replaces nothing.
    assert indexed({**st({"address": "10.0.0.5/24"}), "args": {"cni": {"ips": []}}}) == [
        ("10.0.0.5", "spec.config.ipam.addresses[0]")]


def test_a_literal_runtime_config_ip_range_overlapping_host_locals_own_fails_every_pod() -> None:
    # host-local puts the literal runtimeConfig.ipRanges ahead of its ranges and refuses any two range sets
    # that overlap ("range set 0 overlaps with 1"), on every ADD the literal runtimeConfig reaches.
    overlapping = {"runtimeConfig": {"ipRanges": [[{"subnet": "10.1.0.128/25"}]]}}
    [finding] = findings(nad({**macvlan(HL), **overlapping}), "nad-ipam-host-local")
    assert (finding.field, finding.severity) == ("spec.config.ipam.ranges[0][0]", Severity.DENY)
    assert "overlaps spec.config.runtimeConfig.ipRanges[0][0]" in finding.message
    # Two literal sets overlapping each other count too; disjoint ones do not.
    twice = {"runtimeConfig": {"ipRanges": [[{"subnet": "10.2.0.0/24"}], [{"subnet": "10.2.0.0/25"}]]}}
    [finding] = findings(nad({**macvlan(HL), **twice}), "nad-ipam-host-local")
    assert finding.field == "spec.config.runtimeConfig.ipRanges[1][0]"
    disjoint = {"runtimeConfig": {"ipRanges": [[{"subnet": "10.2.0.0/24"}]]}}
    assert findings(nad({**macvlan(HL), **disjoint}), "nad-ipam-host-local") == []


def test_a_runtime_config_that_is_not_an_object_fails_every_pod_of_host_local_and_static() -> None:
    # host-local and static decode runtimeConfig into a struct: "x", 5 or [] fail them ("cannot unmarshal
    # ... Net.runtimeConfig"); null is nothing. ipvlan decodes no runtimeConfig of its own.
    for ipam, rule in ((HL, "nad-ipam-host-local"),
                       ({"type": "static", "addresses": [{"address": "10.1.0.5/24"}]}, "nad-ipam-static")):
        for value in ("x", 5, []):
            config = {**macvlan(ipam), "type": "ipvlan", "runtimeConfig": value}
            [finding] = findings(nad(config), rule)
            assert (finding.field, finding.severity) == ("spec.config.runtimeConfig", Severity.DENY), value
            assert f"the {ipam['type']} IPAM decodes it as an object" in finding.message
        assert findings(nad({**macvlan(ipam), "type": "ipvlan", "runtimeConfig": None}), rule) == []


def test_a_runtime_config_that_is_not_an_object_fails_the_plugins_that_decode_one() -> None:
    # bridge, macvlan, host-device, tuning, portmap, bandwidth and tap decode it too, first: theirs to say.
    [finding] = findings(nad({**macvlan(HL), "runtimeConfig": "x"}), "nad-plugin-field-types")
    assert (finding.field, finding.severity) == ("spec.config.runtimeConfig", Severity.DENY)
    assert "the macvlan plugin reads it as an object" in finding.message
    assert findings(nad({**macvlan(HL), "runtimeConfig": "x"}), "nad-ipam-host-local") == []


def test_a_literal_runtime_config_host_local_may_or_may_not_get_is_judged_both_ways() -> None:
    # What host-local refuses in the literal runtimeConfig fails only the pods it reaches; what host-local
    # lacks without it, only the others.
    literal = ("(only when none of the capabilities spec.config declares (mac) gets a value for the pod, which "
               "would replace the NAD's literal runtimeConfig)")
    config = {**macvlan(HL), "capabilities": {"mac": True},
              "runtimeConfig": {"ips": ["10.9.0.5"], "ipRanges": [[{"subnet": "10.2.0.0/24"}]]}}
    [finding] = findings(nad(config), "nad-ipam-host-local")
    assert (finding.field, finding.severity) == ("spec.config.runtimeConfig.ips[0]", Severity.WARN)
    assert "lies in none of host-local's ranges (spec.config.runtimeConfig.ipRanges[0][0]: 10.2.0.1-10.2.0.254, " \
           "spec.config.ipam.ranges[0][0]: 10.1.0.1-10.1.0.254)" in finding.message
    assert "and fails the ADD (" in finding.message
    assert finding.message.endswith(literal), finding.message
    config["runtimeConfig"] = {"ipRanges": [[{"subnet": "10.1.0.128/25"}]]}
    [finding] = findings(nad(config), "nad-ipam-host-local")
    assert (finding.field, finding.severity) == ("spec.config.ipam.ranges[0][0]", Severity.WARN)
    assert "host-local refuses overlapping range sets" in finding.message
    assert finding.message.endswith(literal), finding.message
    only = {**macvlan({"type": "host-local"}), "capabilities": {"mac": True},
            "runtimeConfig": {"ipRanges": [[{"subnet": "10.1.0.0/24"}]]}}
    [finding] = findings(nad(only), "nad-ipam-host-local")
    assert (finding.field, finding.severity) == ("spec.config.ipam", Severity.WARN)
    assert finding.message.startswith("spec.config.ipam has no subnet and no ranges")
    assert finding.message.endswith("(only when one of the capabilities spec.config declares (mac) gets a value for "
                                    "the pod, which replaces the NAD's literal runtimeConfig)")
    # Without a capability Multus fills, or under a key libcni does not replace, it reaches every pod.
    for key, caps in (("runtimeConfig", {"ipRanges": True}), ("RuntimeConfig", {"mac": True})):
        config = {**macvlan(HL), "capabilities": caps, key: {"ips": ["10.9.0.5"]}}
        [finding] = findings(nad(config), "nad-ipam-host-local")
        assert finding.severity is Severity.DENY
        assert "and fails every pod (" in finding.message


def test_a_literal_runtime_config_ips_static_may_or_may_not_get_is_judged_both_ways() -> None:
    # libcni replaces the whole literal runtimeConfig when a capability the plugin declares gets a value:
    # the literal ips replace the addresses only for the other pods, and each is refused for its pods alone.
    config = {**st({"address": "10.1.0.5"}), "cniVersion": "0.2.0", "capabilities": {"mac": True},
              "runtimeConfig": {"ips": ["10.1.0.6/24", "10.1.0.7/24", "x"]}}
    found = {(f.field, f.severity): f.message for f in findings(nad(config), "nad-ipam-static")}
    replaced = ("(only when one of the capabilities spec.config declares (mac) gets a value for the pod, which "
                "replaces the NAD's literal runtimeConfig)")
    literal = ("(only when none of the capabilities spec.config declares (mac) gets a value for the pod, which "
               "would replace the NAD's literal runtimeConfig)")
    assert set(found) == {("spec.config.ipam.addresses[0].address", Severity.WARN),
                          ("spec.config.runtimeConfig.ips[2]", Severity.WARN),
                          ("spec.config.runtimeConfig.ips", Severity.WARN)}, found
    assert found["spec.config.ipam.addresses[0].address", Severity.WARN].endswith(replaced)
    assert "and fails the ADD; write it as e.g. 10.1.0.5/24 " + literal in found["spec.config.runtimeConfig.ips[2]",
                                                                                  Severity.WARN]
    assert found["spec.config.runtimeConfig.ips", Severity.WARN].endswith(literal)
