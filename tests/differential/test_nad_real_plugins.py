"""Differential test: our NAD rules (and the pod rules on a selection's mac and ips) against the real
CNI reference plugins (v1.10.0).

Every config of the corpus is judged by the rules (webhook.rules.evaluate) and then run for real:
the plugins' ADD in a pair of network namespaces this test creates (one standing in for the node,
one for the pod), driven by the real libcni as Multus drives it (hack/cniplugins/multus-add). A
config the rules deny must be refused by the plugin, for the reason we name; a config they allow
must be accepted. The same holds for a pod's mac, ips and cni-args (the pod rules against a cluster
holding the NAD): the config goes through the real Multus v4.3.0 first (hack/multus), which reads
the NAD from a real kube-apiserver (the module's ``cluster``) and merges the cni-args into it, and
Multus passes mac and ips both as capability args and in CNI_ARGS. Needs root, `ip netns`, Go to
build the plugins and Multus, and the control plane.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from webhook.cluster.static import StaticClusterView
from webhook.cni.addresses import parse_static_cidr
from webhook.cni.gojson import fold
from webhook.dev.cnisandbox import DEVICE, MASTER, Sandbox, ip, our_findings, run_add, sandbox
from webhook.rules import Policy, Severity, Subject, evaluate

pytestmark = pytest.mark.slow

#: The tests/differential/conftest.py fixture that runs the real Multus v4.3.0 (see there).
RealMultus = Callable[[str, list[dict[str, str]]], dict[str, Any]]

#: What `ip link add` says when the kernel answers EOPNOTSUPP: no driver for the link type (none built
#: in, no module to load) or, for one it has, not the feature asked for (bridge VLAN filtering). A fact
#: of the machine, which no install on it changes.
NOT_IN_KERNEL = {"Error: Unknown device type.", "RTNETLINK answers: Operation not supported"}


@pytest.fixture(scope="session")
def kernel_lacks(cni_bin: Path, require: Callable[[str], NoReturn]) -> dict[str, str]:
    """The link types this kernel cannot create (a sandboxed kernel may lack vlan, ipvlan, dummy...),
    each with what `ip` said. A probe that fails for another reason is a broken tool or setup, not the
    kernel: a failure under CI=true."""
    ns = f"mwprobe{os.getpid()}"
    try:
        ip("netns", "add", ns)
    except subprocess.CalledProcessError as exc:
        require(f"cannot create a network namespace: {exc.stderr.strip()}")
    lacking = {}
    try:
        ip("-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        probes = {
            "dummy": ["type", "dummy"],
            "bridge": ["type", "bridge"],
            "bridge-vlan": ["type", "bridge", "vlan_filtering", "1"],
            "macvlan": ["link", "p0", "type", "macvlan"],
            "ipvlan": ["link", "p0", "type", "ipvlan"],
            "vlan": ["link", "p0", "type", "vlan", "id", "5"],
            "vrf": ["type", "vrf", "table", "10"],
            "ifb": ["type", "ifb"],
        }
        for kind, args in probes.items():
            command = ["ip", "-n", ns, "link", "add", f"x{kind}", *args]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode == 0:
                continue
            said = result.stderr.strip()
            if said not in NOT_IN_KERNEL:
                require(f"`{' '.join(command)}` failed, and not because the kernel lacks it: {said}")
            lacking[kind] = said
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    return lacking


@dataclass(frozen=True)
class Case:
    id: str
    config: dict[str, Any]
    #: None: the rules allow it and the plugin must accept it. Otherwise the rules deny it and the
    #: plugin's error must contain this text (the plugin refuses for the reason we name).
    refused_with: str | None = None
    #: Link types the kernel must offer for the plugin to get as far as the config matters.
    kernel: frozenset[str] = field(default_factory=frozenset)
    #: The rules only warn: the plugin refuses the config as run here, but what a pod passes at
    #: attachment (Multus's cni-args, a capability arg) makes it work; or it accepts it as run here (with
    #: ``cap_args``), but a pod passing other capability args fails.
    warned: bool = False
    #: Capability args, as Multus passes a pod's requests (ips, mac, deviceID...).
    cap_args: dict[str, Any] | None = None
    #: The rule that must deny (or, ``warned``, warn about) a config the plugin refuses, or warn about one
    #: it accepts as run here: the finding is ours for the reason the case names, not by chance from
    #: another rule.
    rule: str | None = None
    #: The outcome holds only where portmap without a backend takes iptables: unless iptables does not
    #: work and nftables does.
    portmap_iptables: bool = False
    #: The netfilter commands the plugin runs before the config's outcome shows (iptables, ip6tables,
    #: nft): a skip where one is missing.
    netfilter: frozenset[str] = field(default_factory=frozenset)
    #: The rules do not even warn (checked where a warning would be false: the plugin works for every pod).
    quiet: bool = False


V = "1.0.0"
STATIC4 = {"type": "static", "addresses": [{"address": "10.10.0.5/24", "gateway": "10.10.0.1"}]}
#: static refuses an address without a prefix, when it parses it.
NO_PREFIX = {"type": "static", "addresses": [{"address": "10.10.0.5"}]}


def one(plugin: dict[str, Any], version: str = V) -> dict[str, Any]:
    return {"cniVersion": version, **plugin}


def chain(*plugins: dict[str, Any], version: str = V) -> dict[str, Any]:
    return {"cniVersion": version, "name": "chain", "plugins": list(plugins)}


def macvlan(ipam: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "macvlan", "master": MASTER, "ipam": ipam or STATIC4, **extra}


def hl(ranges: list[list[dict[str, Any]]] | None = None, **fields: Any) -> dict[str, Any]:
    """macvlan with host-local IPAM: ``ranges``, and ``fields`` in the IPAM section, but args, Args,
    capabilities and runtimeConfig beside it."""
    outside = {k: fields.pop(k) for k in ("args", "Args", "capabilities", "runtimeConfig") if k in fields}
    return macvlan({"type": "host-local", **({"ranges": ranges} if ranges is not None else {}), **fields}, **outside)


HL10 = [[{"subnet": "10.10.0.0/24"}]]
HOST_LOCAL = "nad-ipam-host-local"


def hl_ranges(*sets: list[dict[str, Any]]) -> dict[str, Any]:
    return macvlan({"type": "host-local", "ranges": list(sets)})


def ptp(subnet: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ptp", "ipam": {"type": "host-local", "subnet": subnet}, **extra}


MAC = frozenset({"macvlan"})
#: What the plugins run to write netfilter rules: iptables for bridge's and ptp's ipMasq and portmap (the
#: pods here have IPv4 addresses only), nft for their nftables backends; the firewall plugin's iptables
#: backend opens both iptables and ip6tables, whatever the addresses.
IPTABLES, NFT, FIREWALL = frozenset({"iptables"}), frozenset({"nft"}), frozenset({"iptables", "ip6tables"})


def bridge(name: str, subnet: str, **extra: Any) -> dict[str, Any]:
    return {"type": "bridge", "bridge": name, "ipam": {"type": "host-local", "subnet": subnet}, **extra}


#: The capability arg of a pod requesting its own MAC.
POD_MAC = {"mac": "02:00:00:00:70:01"}


def literal_runtime_config_cases(name: str, plugin: dict[str, Any], refused_with: str, rule: str,
                                 kernel: frozenset[str] = frozenset(), version: str = V) -> list[Case]:
    """``plugin``, whose literal runtimeConfig the plugin refuses (``refused_with``, ``rule``), declaring the
    mac capability: refused unless a pod's mac replaces the literal runtimeConfig (a warning either way),
    and refused even then when the key is spelled "RuntimeConfig", which libcni leaves as it is."""
    declared = one({**plugin, "capabilities": {"mac": True}}, version)
    misspelled = {("RuntimeConfig" if key == "runtimeConfig" else key): value for key, value in declared.items()}
    return [Case(f"{name}-mac-capability", declared, refused_with, kernel, warned=True, rule=rule),
            Case(f"{name}-mac-filled", declared, kernel=kernel, warned=True, rule=rule, cap_args=POD_MAC),
            Case(f"{name}-misspelled-mac-filled", misspelled, refused_with, kernel, rule=rule, cap_args=POD_MAC)]


CASES = [
    # --- accepted -------------------------------------------------------------------------------
    Case("macvlan-static", one(macvlan()), kernel=MAC),
    Case("macvlan-private-mtu", one(macvlan(mode="private", mtu=1400)), kernel=MAC),
    Case(
        "macvlan-host-local-flat",
        one(hl(subnet="10.20.0.0/24", rangeStart="10.20.0.10", gateway="10.20.0.1")),
        kernel=MAC,
    ),
    Case("host-local-slash30", one(hl(subnet="10.21.0.0/30")), kernel=MAC),
    Case(
        "host-local-one-address",
        one(hl(subnet="10.22.0.0/24", rangeStart="10.22.0.9", rangeEnd="10.22.0.9")),
        kernel=MAC,
    ),
    Case("host-local-empty-range-start", one(hl(subnet="10.23.0.0/24", rangeStart="")), kernel=MAC),
    Case(
        "host-local-dual-stack",
        one(
            hl_ranges(
                [{"subnet": "10.24.0.0/25"}, {"subnet": "10.24.0.128/25"}], [{"subnet": "fd00:24::/64"}]
            )
        ),
        kernel=MAC,
    ),
    Case("host-local-ipv6-slash126", one(hl(subnet="fd00:25::/126")), kernel=MAC),
    Case(
        "static-dual-stack",
        one(
            macvlan(
                {
                    "type": "static",
                    "addresses": [
                        {"address": "10.26.0.5/24", "gateway": "10.26.0.1"},
                        {"address": "fd00:26::5/64", "gateway": "fd00:26::1"},
                    ],
                }
            )
        ),
        kernel=MAC,
    ),
    # A gateway of the other family is a warning only: the plugin accepts it.
    Case(
        "static-gateway-other-family",
        one(macvlan({"type": "static", "addresses": [{"address": "10.27.0.5/24", "gateway": "fd00:27::1"}]})),
        kernel=MAC,
    ),
    Case(
        "static-routes",
        one(
            macvlan(
                {
                    "type": "static",
                    "addresses": [{"address": "10.28.0.5/24"}],
                    "routes": [{"dst": "10.99.0.0/16", "gw": "10.28.0.1"}],
                }
            )
        ),
        kernel=MAC,
    ),
    Case("cni-version-0.4.0", one(macvlan(), version="0.4.0"), kernel=MAC),
    Case("cni-version-0.2.0-one-address", one(hl(subnet="10.29.0.0/24"), version="0.2.0"), kernel=MAC),
    Case(
        "bridge-host-local",
        one({"type": "bridge", "bridge": "mwbr0", "ipam": {"type": "host-local", "subnet": "10.30.0.0/24"}}),
    ),
    Case("bridge-l2-only", one({"type": "bridge", "bridge": "mwbr1"})),
    Case(
        "bridge-vlan-4094-hairpin",
        one({"type": "bridge", "bridge": "mwbr2", "vlan": 4094, "hairpinMode": True}),
        kernel=frozenset({"bridge-vlan"}),
    ),
    Case("ptp-host-local", one(ptp("10.31.0.0/24"))),
    Case("host-device-by-name", one({"type": "host-device", "device": DEVICE})),
    Case(
        "vlan-static",
        one({"type": "vlan", "master": MASTER, "vlanId": 100, "ipam": STATIC4}),
        kernel=frozenset({"vlan"}),
    ),
    # REFERENCE.md says vlan needs IPAM; plugins v1.10.0 run it as a plain L2 link without one.
    Case(
        "vlan-without-ipam",
        one({"type": "vlan", "master": MASTER, "vlanId": 101}),
        kernel=frozenset({"vlan"}),
    ),
    Case(
        "ipvlan-l3",
        one({"type": "ipvlan", "master": MASTER, "mode": "l3", "ipam": STATIC4}),
        kernel=frozenset({"ipvlan"}),
    ),
    Case("dummy-static", one({"type": "dummy", "ipam": STATIC4}), kernel=frozenset({"dummy"})),
    Case(
        "chain-tuning-net-sysctl",
        chain(macvlan(), {"type": "tuning", "mtu": 1300, "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
        kernel=MAC,
    ),
    Case(
        "chain-portmap-no-mappings",
        chain(macvlan(), {"type": "portmap", "capabilities": {"portMappings": True}}),
        kernel=MAC,
    ),
    Case("chain-sbr", chain(macvlan(), {"type": "sbr"}), kernel=MAC),
    Case(
        "chain-ptp-bandwidth",
        chain(ptp("10.32.0.0/24"), {"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 1000000}),
    ),
    # Without limits bandwidth passes the result through; only pods asking for bandwidth would fail.
    Case(
        "chain-macvlan-bandwidth-capability",
        chain(macvlan(), {"type": "bandwidth", "capabilities": {"bandwidth": True}}),
        kernel=MAC,
    ),
    Case(
        "chain-vrf",
        chain(macvlan(), {"type": "vrf", "vrfname": "blue"}),
        kernel=frozenset({"macvlan", "vrf"}),
    ),
    # libcni re-encodes each plugin's config from a map before running it: whole decimals arrive as integers.
    Case("macvlan-mtu-whole-decimal", one(macvlan(mtu=1400.0)), kernel=MAC),
    Case(
        "bridge-vlan-whole-decimal",
        one({"type": "bridge", "bridge": "mwbr6", "vlan": 100.0}),
        kernel=frozenset({"bridge-vlan"}),
    ),
    Case(
        "vlan-id-whole-decimal",
        one({"type": "vlan", "master": MASTER, "vlanId": 102.0, "mtu": 1400.0, "ipam": STATIC4}),
        kernel=frozenset({"vlan"}),
    ),
    Case(
        "chain-ptp-bandwidth-whole-decimals",
        chain(ptp("10.33.0.0/24"), {"type": "bandwidth", "ingressRate": 1e6, "ingressBurst": 1000000.0}),
    ),
    # libcni skips the cniVersions it does not implement and runs the list at the highest other one.
    Case(
        "cni-versions-newer-skipped",
        {"cniVersions": ["1.0.0", "2.0.0"], "name": "chain", "plugins": [macvlan()]},
        kernel=MAC,
    ),
    Case(
        "cni-version-newer-beside-versions",
        {"cniVersion": "2.0.0", "cniVersions": ["0.4.0", "1.0.0"], "name": "chain", "plugins": [macvlan()]},
        kernel=MAC,
    ),
    # bridge and ptp leave an mtu below 1 unset, as tap does when it creates its device through netlink.
    Case("bridge-mtu-negative", one({"type": "bridge", "bridge": "mwbr7", "mtu": -1})),
    Case("ptp-mtu-negative", one(ptp("10.37.0.0/24", mtu=-1))),
    Case("tap-static", one({"type": "tap", "ipam": STATIC4})),
    # bridge decodes args into a struct holding its BridgeArgs (args.cni.mac, a string); tap into an empty
    # struct. Other fields of args.cni, and tap's args.cni, are not read.
    Case("bridge-args-cni-mac-number", one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": 5}}}),
         "cannot unmarshal number into Go struct field BridgeArgs.args.cni.mac", rule="nad-plugin-mac"),
    # bridge takes a non-empty runtimeConfig.mac, else a non-empty args.cni.mac, else MAC= (loadNetConf), and
    # hands it to net.ParseMAC for its container veth.
    Case("bridge-args-cni-mac-unparsable",
         one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": "zz"}}}),
         "invalid MAC address", rule="nad-plugin-mac"),
    Case("bridge-runtime-config-mac-unparsable",
         one({"type": "bridge", "bridge": "mwbr10", "runtimeConfig": {"mac": "zz"},
              "args": {"cni": {"mac": "02:00:00:00:00:09"}}}),
         "invalid MAC address", rule="nad-plugin-mac"),
    Case("bridge-args-cni-mac-empty", one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": ""}}})),
    # The kernel refuses them on the container's veth.
    Case("bridge-args-cni-mac-multicast",
         one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": "03:00:00:00:00:01"}}}),
         "cannot assign requested address", rule="nad-plugin-mac"),
    Case("bridge-args-cni-mac-zero",
         one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": "00:00:00:00:00:00"}}}),
         "cannot assign requested address", rule="nad-plugin-mac"),
    Case("bridge-args-cni-mac-eight-bytes",
         one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": "02:00:00:00:00:00:00:01"}}}),
         "failed to make veth pair: invalid argument", rule="nad-plugin-mac"),
    Case("bridge-args-string", one({"type": "bridge", "bridge": "mwbr10", "args": "x"}),
         "cannot unmarshal string", rule="nad-plugin-field-types"),
    Case("bridge-args-cni-list", one({"type": "bridge", "bridge": "mwbr10", "Args": {"CNI": []}}),
         "cannot unmarshal array", rule="nad-plugin-field-types"),
    Case("bridge-args-cni-other-fields",
         one({"type": "bridge", "bridge": "mwbr10", "args": {"cni": {"mac": "02:00:00:00:00:09", "ips": 5}}})),
    Case("tap-args-number", one({"type": "tap", "ipam": STATIC4, "args": 5}), "cannot unmarshal number",
         rule="nad-plugin-field-types"),
    Case("tap-args-cni-number", one({"type": "tap", "ipam": STATIC4, "args": {"cni": {"mac": 5}}})),
    Case("tap-netlink-mtu-negative", one({"type": "tap", "mtu": -1, "owner": 0, "group": 0, "ipam": STATIC4})),
    # One bit-byte below the plugin's 4 GB bound.
    Case(
        "bandwidth-burst-below-limit",
        chain(ptp("10.34.0.0/24"), {"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 8 * (2**32 - 1) - 1}),
    ),
    Case(
        "bandwidth-cni-version-0.3.0",
        chain(ptp("10.35.0.0/24"), {"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 1000000},
              version="0.3.0"),
    ),
    Case(
        "vrf-cni-version-0.3.1",
        chain(ptp("10.36.0.0/24"), {"type": "vrf", "vrfname": "green"}, version="0.3.1"),
        kernel=frozenset({"vrf"}),
    ),
    # libcni and Multus read the type into a struct field: any case names the binary.
    Case("type-other-case", one({"Type": "macvlan", "master": MASTER, "ipam": STATIC4}), kernel=MAC),
    # Two spellings of one sysctl with different values only warn: tuning takes both.
    Case(
        "tuning-sysctl-two-spellings",
        chain(macvlan(), {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1",
                                                       "net/ipv4/conf/IFNAME/arp_filter": "0"}}),
        kernel=MAC,
    ),
    # A null net.IP stays unset: the flat gateway and rangeStart beside ranges, a route's gw.
    Case(
        "host-local-null-addresses",
        one(hl(gateway=None, rangeStart=None, ranges=[[{"subnet": "10.40.0.0/24"}]],
               routes=[{"dst": "0.0.0.0/0", "gw": None}])),
        kernel=MAC,
    ),
    # libcni sorts args.cni's keys: "sysctl": null comes after "SYSCTL" and empties the map again.
    Case(
        "tuning-args-sysctl-emptied-by-null",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {
            "SYSCTL": {"kernel.shmmax": "1"}, "sysctl": None}}}),
        kernel=MAC,
    ),
    Case(
        "tuning-args-sysctl",
        chain(macvlan(), {"type": "tuning", "sysctl": {},
                          "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        kernel=MAC,
    ),
    # "args IP overwrites IP": static never parses the addresses args.cni.ips replace.
    Case(
        "static-args-ips-replace-addresses",
        one(macvlan({"type": "static", "addresses": [{"address": "bogus"}]}, args={"cni": {"ips": ["10.10.0.5/24"]}})),
        kernel=MAC,
    ),
    # --- refused --------------------------------------------------------------------------------
    Case(
        "vlan-no-master",
        one({"type": "vlan", "vlanId": 5, "ipam": STATIC4}),
        '"master" field is required',
        rule="nad-plugin-vlan-master",
    ),
    Case(
        "vlan-id-4095",
        one({"type": "vlan", "master": MASTER, "vlanId": 4095, "ipam": STATIC4}),
        "invalid VLAN ID 4095",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "vlan-id-negative",
        one({"type": "vlan", "master": MASTER, "vlanId": -3}),
        "invalid VLAN ID -3",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "vlan-id-string",
        one({"type": "vlan", "master": MASTER, "vlanId": "10"}),
        "failed to load netconf",
        rule="nad-plugin-field-types",
    ),
    Case(
        "bridge-vlan-5000",
        one({"type": "bridge", "bridge": "mwbr3", "vlan": 5000}),
        "invalid VLAN ID 5000",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "bridge-hairpin-and-promisc",
        one({"type": "bridge", "bridge": "mwbr4", "hairpinMode": True, "promiscMode": True}),
        "cannot set hairpin mode and promiscuous mode at the same time",
        rule="nad-plugin-bridge-hairpin-promisc",
    ),
    Case(
        "bridge-mtu-string",
        one({"type": "bridge", "bridge": "mwbr5", "mtu": "1500"}),
        "failed to load netconf",
        rule="nad-plugin-field-types",
    ),
    Case("macvlan-mode-l2", one(macvlan(mode="l2")), "unknown macvlan mode", kernel=MAC, rule="nad-plugin-mode"),
    Case("macvlan-mtu-float", one(macvlan(mtu=1400.5)), "failed to load netconf", rule="nad-plugin-field-types"),
    Case(
        "vlan-id-fraction",
        one({"type": "vlan", "master": MASTER, "vlanId": 100.5, "ipam": STATIC4}),
        "failed to load netconf",
        rule="nad-plugin-field-types",
    ),
    Case(
        "ipvlan-mode-bridge",
        one({"type": "ipvlan", "master": MASTER, "mode": "bridge", "ipam": STATIC4}),
        "unknown ipvlan mode",
        rule="nad-plugin-mode",
    ),
    Case(
        "host-device-no-selector",
        one({"type": "host-device", "ipam": STATIC4}),
        'specify either "device"',
        rule="nad-plugin-host-device-selector",
    ),
    # With the deviceID capability the device is the one a pod names: without one the plugin has none...
    Case(
        "host-device-device-id-capability",
        one({"type": "host-device", "capabilities": {"deviceID": True}, "ipam": STATIC4}),
        'specify either "device"',
        warned=True,
        rule="nad-plugin-host-device-selector",
    ),
    # ... and the pod's deviceID reaches it (a PCI function .9 exists nowhere, so nothing is moved).
    Case(
        "host-device-device-id-from-pod",
        one({"type": "host-device", "capabilities": {"deviceID": True}, "ipam": STATIC4}),
        "runtime config DeviceID 0000:00:1f.9 not found",
        warned=True,
        cap_args={"deviceID": "0000:00:1f.9"},
        rule="nad-plugin-host-device-selector",
    ),
    Case("ptp-no-ipam", one({"type": "ptp"}), "no plugin name provided", rule="nad-plugin-ipam-required"),
    Case(
        "dummy-no-ipam",
        one({"type": "dummy"}),
        "dummy interface requires an IPAM configuration",
        rule="nad-plugin-ipam-required",
    ),
    Case(
        "ipvlan-alone-no-ipam",
        one({"type": "ipvlan", "master": MASTER}),
        "no plugin name provided",
        kernel=frozenset({"ipvlan"}),
        rule="nad-plugin-ipam-required",
    ),
    Case(
        "tuning-first",
        chain({"type": "tuning", "mtu": 1400}, macvlan()),
        "Required prevResult missing",
        rule="nad-plugin-needs-previous-result",
    ),
    Case(
        "portmap-alone",
        one({"type": "portmap"}),
        "must be called as chained plugin",
        rule="nad-plugin-needs-previous-result",
    ),
    Case(
        "bandwidth-first",
        chain({"type": "bandwidth", "ingressRate": 1, "ingressBurst": 1}, macvlan()),
        "must be called as chained plugin",
        rule="nad-plugin-needs-previous-result",
    ),
    # bandwidth without limits, first: the plugin dereferences the missing result and panics.
    Case(
        "bandwidth-first-capability-only",
        chain({"type": "bandwidth", "capabilities": {"bandwidth": True}}, macvlan()),
        "nil pointer dereference",
        rule="nad-plugin-needs-previous-result",
    ),
    Case(
        "macvlan-then-bandwidth-limits",
        chain(macvlan(), {"type": "bandwidth", "egressRate": 8000, "egressBurst": 8000}),
        "has no veth peer",
        kernel=MAC,
        rule="nad-plugin-bandwidth-veth",
    ),
    Case(
        "firewall-first",
        chain({"type": "firewall"}, macvlan()),
        "missing prevResult from earlier plugin",
        rule="nad-plugin-needs-previous-result",
    ),
    Case(
        "sbr-alone",
        one({"type": "sbr"}),
        "must be called as chained plugin",
        rule="nad-plugin-needs-previous-result",
    ),
    Case(
        "vrf-alone",
        one({"type": "vrf", "vrfname": "red"}),
        "missing prevResult from earlier plugin",
        rule="nad-plugin-needs-previous-result",
    ),
    Case(
        "vrf-no-name",
        chain(macvlan(), {"type": "vrf"}),
        "expected to have a valid vrf name",
        kernel=MAC,
        rule="nad-plugin-vrf-name",
    ),
    Case(
        "bandwidth-rate-without-burst",
        chain(macvlan(), {"type": "bandwidth", "egressRate": 1000}),
        "if rate is set, burst must also be set",
        kernel=MAC,
        rule="nad-plugin-bandwidth-pairs",
    ),
    Case(
        "bandwidth-burst-without-rate",
        chain(macvlan(), {"type": "bandwidth", "ingressBurst": 1000}),
        "if burst is set, rate must also be set",
        kernel=MAC,
        rule="nad-plugin-bandwidth-pairs",
    ),
    Case(
        "tuning-kernel-sysctl",
        chain(macvlan(), {"type": "tuning", "sysctl": {"kernel.pid_max": "65536"}}),
        "invalid net sysctl key",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "host-local-slash31",
        one(hl(subnet="10.40.0.0/31")),
        "too small to allocate from",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-slash128",
        one(hl(subnet="fd00:40::1/128")),
        "too small to allocate from",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-host-bits",
        one(hl(subnet="10.41.0.1/24")),
        "Network has host bits set",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-start-outside",
        one(hl(subnet="10.42.0.0/24", rangeStart="10.43.0.5")),
        "RangeStart 10.43.0.5 not in network",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-end-outside-v6",
        one(hl_ranges([{"subnet": "fd00:42::/64", "rangeEnd": "fd00:43::1"}])),
        "not in network",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-start-after-end",
        one(hl(subnet="10.44.0.0/24", rangeStart="10.44.0.200", rangeEnd="10.44.0.100")),
        "not in network",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-start-after-default-end",
        one(hl(subnet="10.44.1.0/24", rangeStart="10.44.1.255")),
        "is after RangeEnd",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-mixed-families",
        one(hl_ranges([{"subnet": "10.45.0.0/24"}, {"subnet": "fd00:45::/64"}])),
        "mixed address families",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-overlap-in-set",
        one(hl_ranges([{"subnet": "10.46.0.0/24"}, {"subnet": "10.46.0.128/25"}])),
        "overlap",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-overlapping-sets",
        one(hl_ranges([{"subnet": "10.47.0.0/16"}], [{"subnet": "10.47.3.0/24"}])),
        "range set 0 overlaps with 1",
        rule="nad-ipam-host-local",
    ),
    # REFERENCE.md says a gateway outside the subnet is accepted; plugins v1.10.0 refuse it.
    Case(
        "host-local-gateway-outside",
        one(hl(subnet="10.48.0.0/24", gateway="10.49.0.1")),
        "not in network",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-no-ranges",
        one(macvlan({"type": "host-local"})),
        "no IP ranges specified",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-bad-start",
        one(hl(subnet="10.50.0.0/24", rangeStart="10.50.0.300")),
        "invalid IP address",
        rule="nad-ipam-host-local",
    ),
    Case(
        "host-local-two-v4-sets-on-0.2.0",
        one(hl_ranges([{"subnet": "10.51.0.0/24"}], [{"subnet": "10.52.0.0/24"}]), version="0.2.0"),
        "does not support more than 1 address per family",
        rule="nad-ipam-host-local",
    ),
    Case(
        "static-no-prefix",
        one(macvlan({"type": "static", "addresses": [{"address": "10.53.0.5"}]})),
        "CIDR notation",
        rule="nad-ipam-static",
    ),
    Case(
        "static-no-addresses",
        one(macvlan({"type": "static"})),
        "IPAM plugin returned missing IP config",
        kernel=MAC,
        warned=True,
        rule="nad-ipam-static",
    ),
    # static parses a literal runtimeConfig.ips last, when it reaches it (a pod filling a declared
    # capability replaces it: a warning then).
    Case("static-literal-runtime-config-ips-no-prefix", one(macvlan(runtimeConfig={"ips": ["10.10.0.6"]})),
         "NOT in CIDR notation", rule="nad-ipam-static"),
    Case("static-literal-runtime-config-ips-no-prefix-mac-capability",
         one(macvlan(runtimeConfig={"ips": ["10.10.0.6"]}, capabilities={"mac": True})),
         "NOT in CIDR notation", warned=True, rule="nad-ipam-static"),
    Case("static-literal-runtime-config-ips", one(macvlan({"type": "static"}, runtimeConfig={"ips": ["10.10.0.5/24"]})),
         kernel=MAC, quiet=True),
    # A non-empty literal runtimeConfig.ips replaces ipam.addresses, which static then only decodes: neither
    # their form nor how many of a family cniVersion 0.2.0 returns matters, but the literal ips' do. A pod
    # filling a declared capability replaces the literal runtimeConfig, and the addresses count again.
    Case("static-literal-runtime-config-ips-replace-unparsable-address",
         one(macvlan(NO_PREFIX, runtimeConfig={"ips": ["10.10.0.6/24"]})),
         kernel=MAC, quiet=True),
    Case("static-literal-runtime-config-ips-replace-unparsable-address-mac-capability",
         one(macvlan(NO_PREFIX, runtimeConfig={"ips": ["10.10.0.6/24"]},
                     capabilities={"mac": True})), kernel=MAC, warned=True, rule="nad-ipam-static"),
    Case("static-literal-runtime-config-ips-replaced-unparsable-address-mac-filled",
         one(macvlan(NO_PREFIX, runtimeConfig={"ips": ["10.10.0.6/24"]},
                     capabilities={"mac": True})), "CIDR notation", kernel=MAC, warned=True, rule="nad-ipam-static",
         cap_args={"mac": "02:00:00:00:70:01"}),
    Case("static-literal-runtime-config-ips-two-ipv4-v0.2.0",
         one(macvlan({"type": "static"}, runtimeConfig={"ips": ["10.10.0.5/24", "10.10.0.6/24"]}), "0.2.0"),
         "does not support more than 1 address per family", kernel=MAC, rule="nad-ipam-static"),
    Case("static-literal-runtime-config-ips-replace-two-ipv4-v0.2.0",
         one(macvlan({"type": "static", "addresses": [{"address": "10.10.0.5/24"}, {"address": "10.10.0.6/24"}]},
                     runtimeConfig={"ips": ["10.10.0.7/24"]}), "0.2.0"), kernel=MAC, quiet=True),
    Case("static-literal-runtime-config-ips-replaced-two-ipv4-v0.2.0-mac-filled",
         one(macvlan({"type": "static", "addresses": [{"address": "10.10.0.5/24"}, {"address": "10.10.0.6/24"}]},
                     runtimeConfig={"ips": ["10.10.0.7/24"]}, capabilities={"mac": True}), "0.2.0"),
         "does not support more than 1 address per family", kernel=MAC, warned=True, rule="nad-ipam-static",
         cap_args={"mac": "02:00:00:00:70:01"}),
    # A literal runtimeConfig.mac reaches macvlan and bridge only while no capability they declare (any of
    # them, not just mac) gets a value: a warning; a pod filling one gets its mac from what comes before.
    Case("macvlan-literal-runtime-config-mac-unparsable-ips-capability",
         one(macvlan(runtimeConfig={"mac": "zz"}, capabilities={"ips": True})), "invalid args zz for MAC addr",
         kernel=MAC, warned=True, rule="nad-plugin-mac"),
    Case("macvlan-literal-runtime-config-mac-unparsable-ips-filled",
         one(macvlan(runtimeConfig={"mac": "zz"}, capabilities={"ips": True})), kernel=MAC, warned=True,
         rule="nad-plugin-mac", cap_args={"ips": ["10.10.0.6/24"]}),
    Case("macvlan-mac-unparsable-literal-runtime-config-mac-replaced",
         one(macvlan(mac="zz", runtimeConfig={"mac": "02:00:00:00:70:01"}, capabilities={"ips": True})),
         "invalid args zz for MAC addr", kernel=MAC, warned=True, rule="nad-plugin-mac",
         cap_args={"ips": ["10.10.0.6/24"]}),
    Case("bridge-literal-runtime-config-mac-unparsable-ips-capability",
         one({"type": "bridge", "bridge": "mwbr13", "ipam": STATIC4, "runtimeConfig": {"mac": "zz"},
              "capabilities": {"ips": True}}), "invalid MAC address", kernel=frozenset({"bridge"}), warned=True,
         rule="nad-plugin-mac"),
    Case("bridge-literal-runtime-config-mac-unparsable-ips-filled",
         one({"type": "bridge", "bridge": "mwbr13", "ipam": STATIC4, "runtimeConfig": {"mac": "zz"},
              "capabilities": {"ips": True}}), kernel=frozenset({"bridge"}), warned=True, rule="nad-plugin-mac",
         cap_args={"ips": ["10.10.0.6/24"]}),
    # What Multus writes for a pod whose selection has "cni-args": {"ips": [...]}.
    Case("static-args-ips", one(macvlan({"type": "static"}, args={"cni": {"ips": ["10.10.0.5/24"]}})), kernel=MAC),
    # static reads an IPv4-mapped CIDR as IPv4 (test_static_reads_ipv4_mapped_cidrs checks the prefix).
    Case("static-args-ips-mapped", one(macvlan({"type": "static"}, args={"cni": {"ips": ["::ffff:10.10.0.5/120"]}})),
         kernel=MAC),
    Case("static-address-mapped",
         one(macvlan({"type": "static", "addresses": [{"address": "::ffff:10.10.0.5/120", "gateway": "10.10.0.1"}]})),
         kernel=MAC),
    # Chained plugins never run IPAM: nothing of their ipam section is read, args.cni.ips included.
    Case("ipam-on-bandwidth-never-runs",
         chain(hl(subnet="10.10.0.0/24"), {"type": "bandwidth", "ipam": {"type": "static", "addresses": [
             {"address": "bogus"}]}, "args": {"cni": {"ips": ["x"]}}}), kernel=MAC),
    Case("ipam-on-tuning-never-runs",
         chain(hl(subnet="10.10.0.0/24"), {"type": "tuning", "ipam": {"type": "no-such-ipam"}}), kernel=MAC),
    Case(
        "routes-bad-dst",
        one(
            macvlan(
                {"type": "static", "addresses": [{"address": "10.54.0.5/24"}], "routes": [{"dst": "default"}]}
            )
        ),
        "invalid CIDR address",
        rule="nad-ipam-routes",
    ),
    Case(
        "cni-version-unknown",
        one(macvlan(), version="1.0"),
        "incompatible CNI versions",
        rule="nad-config-cni-version",
    ),
    Case(
        "bandwidth-cni-version-0.2.0",
        chain(ptp("10.55.0.0/24"), {"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 1000000},
              version="0.2.0"),
        'incompatible CNI versions; config is "0.2.0"',
        rule="nad-config-cni-version",
    ),
    Case(
        "vrf-cni-version-0.3.0",
        chain(ptp("10.56.0.0/24"), {"type": "vrf", "vrfname": "blue"}, version="0.3.0"),
        'incompatible CNI versions; config is "0.3.0"',
        rule="nad-config-cni-version",
    ),
    Case(
        "firewall-cni-version-0.3.1",
        chain(ptp("10.57.0.0/24"), {"type": "firewall"}, version="0.3.1"),
        'incompatible CNI versions; config is "0.3.1"',
        rule="nad-config-cni-version",
    ),
    Case(
        "bandwidth-list-without-cni-version",
        {"name": "chain", "plugins": [ptp("10.58.0.0/24"),
                                      {"type": "bandwidth", "egressRate": 1000000, "egressBurst": 1000000}]},
        'incompatible CNI versions; config is "0.1.0"',
        rule="nad-config-cni-version",
    ),
    Case(
        "bandwidth-burst-at-limit",
        chain(ptp("10.59.0.0/24"), {"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 8 * (2**32 - 1)}),
        "burst cannot be more than 4GB",
        rule="nad-plugin-bandwidth-pairs",
    ),
    # Multus runs a config with a type alone (LoadDelegateNetConf), whatever its plugins hold: only warned.
    Case("type-and-plugins", one(macvlan(plugins=[{"type": "tuning"}])), kernel=MAC),
    # Lists and objects are typed element by element (PLUGIN_FIELDS), ipam sections field by field (IPAM_FIELDS).
    Case(
        "bridge-trunk-entry-number",
        one({"type": "bridge", "bridge": "mwbr5", "vlanTrunk": [5]}),
        "failed to load netconf",
        rule="nad-plugin-field-types",
    ),
    Case(
        "portmap-condition-number",
        chain(macvlan(), {"type": "portmap", "conditionsV4": [5]}),
        "failed to parse network configuration",
        rule="nad-plugin-field-types",
    ),
    Case(
        "host-local-resolv-conf-number",
        one(hl(subnet="10.34.0.0/24", resolvConf=5)),
        "cannot unmarshal number",
        rule="nad-ipam-host-local",
    ),
    Case(
        "static-dns-nameservers-text",
        one(macvlan({**STATIC4, "dns": {"nameservers": "10.10.0.53"}})),
        "cannot unmarshal string",
        rule="nad-ipam-static",
    ),
    Case(
        "static-dns-and-version",
        one(macvlan({"type": "static", "dns": {"nameservers": ["10.10.0.53"], "domain": None},
                     "addresses": [{"address": "10.35.0.5/24", "Version": "4"}]})),
        kernel=MAC,
    ),
    # bridge's collectVlanTrunk, before any link is made.
    Case(
        "bridge-trunk-id-0",
        one({"type": "bridge", "bridge": "mwbr6", "vlanTrunk": [{"id": 0}]}),
        "incorrect trunk id parameter",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "bridge-trunk-min-only",
        one({"type": "bridge", "bridge": "mwbr6", "vlanTrunk": [{"minID": 10, "maxID": None}]}),
        "maxID is missing",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "bridge-trunk-reversed",
        one({"type": "bridge", "bridge": "mwbr6", "vlanTrunk": [{"minID": 20, "maxID": 10}]}),
        "minID is greater than maxID",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "bridge-trunk-null-entry",
        one({"type": "bridge", "bridge": "mwbr6", "vlanTrunk": [None]}),
        "nil pointer dereference",
        rule="nad-plugin-vlan-id",
    ),
    Case(
        "bridge-trunk",
        one({"type": "bridge", "bridge": "mwbr6", "vlanTrunk": [{"minID": 10, "maxID": 20}, {"id": 4094}]}),
        kernel=frozenset({"bridge-vlan"}),
    ),
    Case(
        "bridge-no-container-interface-with-ipam",
        one({"type": "bridge", "bridge": "mwbr7", "disableContainerInterface": True, "ipam": STATIC4}),
        "cannot use IPAM when DisableContainerInterface flag is set",
        rule="nad-plugin-bridge-interface-ipam",
    ),
    Case(
        "bridge-no-container-interface",
        one({"type": "bridge", "bridge": "mwbr7", "disableContainerInterface": True, "ipam": {"type": ""}}),
    ),
    Case(
        "bridge-ipmasq-backend-unknown",
        one({"type": "bridge", "bridge": "mwbr8", "ipMasq": True, "ipMasqBackend": "pf", "ipam": STATIC4}),
        'unknown ipmasq backend "pf"',
        rule="nad-plugin-ipmasq-backend",
    ),
    Case(
        "ptp-ipmasq-backend-empty",
        one(ptp("10.36.0.0/24", ipMasq=True, ipMasqBackend="")),
        'unknown ipmasq backend ""',
        rule="nad-plugin-ipmasq-backend",
    ),
    Case("bridge-ipmasq-backend-unread", one({"type": "bridge", "bridge": "mwbr8", "ipMasqBackend": "pf",
                                              "ipam": STATIC4})),
    # MAC addresses: net.ParseMAC, `ip link set address` for tap, and what the kernel takes on Ethernet.
    Case("macvlan-mac-unreadable", one(macvlan(mac="zz:11")), "invalid MAC address", rule="nad-plugin-mac"),
    Case("macvlan-mac-multicast", one(macvlan(mac="01:00:5e:00:00:01")), "cannot assign requested address",
         kernel=MAC, rule="nad-plugin-mac"),
    Case("macvlan-mac-eight-bytes", one(macvlan(mac="02:00:5e:10:00:00:00:01")), "invalid argument", kernel=MAC,
         rule="nad-plugin-mac"),
    Case("macvlan-mac-forms", one(macvlan(mac="0200.5e00.5301")), kernel=MAC),
    Case("macvlan-mac-bare-hex", one(macvlan(mac="02005e005301")), kernel=MAC),
    Case("tuning-mac-unreadable", chain(macvlan(), {"type": "tuning", "mac": "not-a-mac"}), "invalid MAC address",
         kernel=MAC, rule="nad-plugin-mac"),
    Case("tuning-mac-replaced-by-args", chain(macvlan(), {"type": "tuning", "mac": "zz", "args": {"cni": {"mac": ""}}}),
         kernel=MAC),
    # tuning decodes every spelling of args (and of cni) into one struct, in sorted order ("Args" < "args"):
    # a later object without a mac leaves the mac of an earlier one, which replaces the config's own.
    Case("tuning-args-mac-kept-under-earlier-spelling",
         chain(macvlan(), {"type": "tuning", "Args": {"cni": {"mac": "zz"}}, "args": {}}),
         "invalid MAC address", kernel=MAC, rule="nad-plugin-mac"),
    Case("tuning-args-mac-number-under-earlier-spelling",
         chain(macvlan(), {"type": "tuning", "args": {"cni": {"MAC": 5, "mac": "02:00:00:00:70:02"}}}),
         "failed to load netconf", kernel=MAC, rule="nad-plugin-mac"),
    Case("tuning-args-mac-under-earlier-spelling-replaces-mac",
         chain(macvlan(), {"type": "tuning", "mac": "zz", "args": {"CNI": {"mac": "02:00:00:00:70:02"}, "cni": {}}}),
         kernel=MAC),
    # tuning decodes args.cni's promisc, mtu, allmulti and txQLen (its IPAMArgs) into typed pointers, every
    # spelling in sorted order ("TxQLen" < "txQLen"): a mistyped one fails the decode even when a later one
    # replaces it.
    Case("tuning-args-fields", chain(macvlan(), {"type": "tuning", "args": {"cni": {
        "mtu": 1400, "promisc": True, "allmulti": False, "txQLen": 500}}}), kernel=MAC),
    Case("tuning-args-mtu-string", chain(macvlan(), {"type": "tuning", "args": {"cni": {"mtu": "x"}}}),
         "failed to load netconf", kernel=MAC, rule="nad-plugin-field-types"),
    Case("tuning-args-txqlen-string-under-earlier-spelling",
         chain(macvlan(), {"type": "tuning", "args": {"cni": {"TxQLen": "x", "txQLen": 500}}}),
         "failed to load netconf", kernel=MAC, rule="nad-plugin-field-types"),
    Case("tuning-args-promisc-string-under-earlier-args-spelling",
         chain(macvlan(), {"type": "tuning", "Args": {"cni": {"promisc": "yes"}}, "args": {}}),
         "failed to load netconf", kernel=MAC, rule="nad-plugin-field-types"),
    # args.cni.mtu, when not nil, replaces tuning's own mtu, which is then never set; 0 sets none.
    Case("tuning-mtu-negative-replaced-by-args", chain(macvlan(), {"type": "tuning", "mtu": -1,
                                                                   "args": {"cni": {"mtu": 1400}}}), kernel=MAC),
    Case("tuning-mtu-negative-replaced-by-args-zero", chain(macvlan(), {"type": "tuning", "mtu": -1,
                                                                        "args": {"cni": {"mtu": 0}}}), kernel=MAC),
    Case("tuning-args-mtu-negative", chain(macvlan(), {"type": "tuning", "args": {"cni": {"mtu": -1}}}),
         "invalid argument", kernel=MAC, rule="nad-plugin-mtu"),
    Case("tuning-mtu-negative-args-mtu-nil-again",
         chain(macvlan(), {"type": "tuning", "mtu": -1, "args": {"cni": {"MTU": 1400, "mtu": None}}}),
         "invalid argument", kernel=MAC, rule="nad-plugin-mtu"),
    Case("tap-mac-dashes", one({"type": "tap", "mac": "02-00-00-00-00-01", "ipam": STATIC4}),
         "Invalid address length 1", rule="nad-plugin-mac"),
    Case("tap-mac-short-bytes", one({"type": "tap", "mac": "2:0:0:0:0:1", "ipam": STATIC4})),
    Case("tap-netlink-mac-unreadable",
         one({"type": "tap", "owner": 0, "group": 0, "mac": "zz:11", "ipam": STATIC4}), "invalid MAC address",
         rule="nad-plugin-mac"),
    # portmap reads its options on every ADD, port mappings or not.
    Case("portmap-mark-bit-32", chain(macvlan(), {"type": "portmap", "markMasqBit": 32}),
         "MasqMarkBit must be between 0 and 31", kernel=MAC, rule="nad-plugin-portmap"),
    Case("portmap-mark-bit-and-chain",
         chain(macvlan(), {"type": "portmap", "markMasqBit": 5, "externalSetMarkChain": "KUBE-MARK-MASQ"}),
         "Cannot specify externalSetMarkChain and markMasqBit", kernel=MAC, rule="nad-plugin-portmap"),
    Case("portmap-backend-unknown", chain(macvlan(), {"type": "portmap", "backend": "ebpf"}),
         'unrecognized backend "ebpf"', kernel=MAC, rule="nad-plugin-portmap"),
    Case("portmap-nftables-with-iptables-option",
         chain(macvlan(), {"type": "portmap", "backend": "nftables", "externalSetMarkChain": "KUBE-MARK-MASQ"}),
         "configuration contains iptables-specific options", kernel=MAC, rule="nad-plugin-portmap"),
    Case("portmap-options", chain(macvlan(), {"type": "portmap", "backend": "iptables", "markMasqBit": 0,
                                              "conditionsV4": ["!", "-s", "10.0.0.0/8"]}), kernel=MAC),
    Case("sbr-gateway-unreadable", chain(macvlan(), {"type": "sbr", "gateways": ["nope"]}),
         "invalid static gateway IP address: nope", kernel=MAC, rule="nad-plugin-sbr-gateways"),
    Case("sbr-gateways-two-ipv4", chain(macvlan(), {"type": "sbr", "gateways": ["10.10.0.1", "10.10.0.2"]}),
         "multiple IPv4 addresses", kernel=MAC, rule="nad-plugin-sbr-gateways"),
    Case("sbr-gateways-three", chain(macvlan(), {"type": "sbr", "gateways": ["10.10.0.1", "fd00::1", "fd00::2"]}),
         "cannot contain more than 2 entries", kernel=MAC, rule="nad-plugin-sbr-gateways"),
    Case("sbr-gateway", chain(macvlan(), {"type": "sbr", "gateways": ["10.10.0.1"]}), kernel=MAC),
    Case("sbr-table-ignores-gateways", chain(macvlan(), {"type": "sbr", "table": 100, "gateways": ["nope"]}),
         kernel=MAC),
    Case("static-capital-address", one(macvlan({"type": "static", "addresses": [{"Address": "10.37.0.5/24"}]})),
         "cannot unmarshal string into Go struct field Address.ipam.addresses.Address of type net.IPNet",
         rule="nad-ipam-static"),
    Case("static-address-folded", one(macvlan({"type": "static", "addresses": [{"ADDRESS": "10.37.0.5/24"}]})),
         kernel=MAC),
    Case("macvlan-mtu-negative", one(macvlan(mtu=-1)), "invalid MTU -1", rule="nad-plugin-mtu"),
    Case(
        "vlan-mtu-negative",
        one({"type": "vlan", "master": MASTER, "vlanId": 102, "mtu": -1}),
        "invalid MTU -1",
        rule="nad-plugin-mtu",
    ),
    Case(
        "tuning-mtu-negative",
        chain(macvlan(), {"type": "tuning", "mtu": -1}),
        "invalid argument",
        kernel=MAC,
        rule="nad-plugin-mtu",
    ),
    Case(
        "tap-mtu-negative",
        one({"type": "tap", "mtu": -1, "ipam": STATIC4}),
        "failed to run command",
        rule="nad-plugin-mtu",
    ),
    Case(
        "tap-then-bandwidth",
        chain({"type": "tap", "ipam": STATIC4}, {"type": "bandwidth", "egressRate": 8000, "egressBurst": 8000}),
        "has no veth peer",
        rule="nad-plugin-bandwidth-veth",
    ),
    # A wrong type under one spelling fails the decode, though another spelling holds a good value.
    Case(
        "macvlan-mtu-spellings",
        one(macvlan(MTU="x", mtu=1400)),
        "failed to load netconf",
        rule="nad-plugin-field-types",
    ),
    # The keys reach the plugin sorted: "mode" comes after "MODE" and wins.
    Case(
        "macvlan-mode-spellings",
        one(macvlan(mode="l2", MODE="bridge")),
        "unknown macvlan mode",
        kernel=MAC,
        rule="nad-plugin-mode",
    ),
    # Multus fills in an absent or empty name only.
    Case(
        "name-null",
        one({**macvlan(), "name": None}),
        "missing network name",
        rule="nad-config-structure",
    ),
    Case(
        "cni-version-unknown-in-list",
        chain(macvlan(), {"type": "tuning"}, version="0.3.2"),
        "incompatible CNI versions",
        rule="nad-config-cni-version",
    ),
    Case(
        "cni-versions-unreadable-entry",
        {"cniVersions": ["1.0.0", "x"], "name": "chain", "plugins": [macvlan()]},
        "invalid cniVersions entry x",
        rule="nad-config-cni-version",
    ),
    Case(
        "cni-versions-picks-a-typo",
        {"cniVersions": ["1.0", "0.4.0"], "name": "chain", "plugins": [macvlan()]},
        "incompatible CNI versions",
        rule="nad-config-cni-version",
    ),
    Case(
        "dns-nameservers-string",
        one(macvlan(dns={"nameservers": "8.8.8.8"})),
        "cannot unmarshal string into Go struct field DNS.dns.nameservers",
        rule="nad-config-structure",
    ),
    Case(
        "ipam-type-path",
        one(macvlan({"type": "/x/static", "addresses": [{"address": "10.10.0.5/24"}]})),
        "invalid plugin name: /x/static",
        kernel=MAC,
        rule="nad-config-structure",
    ),
    # Go hands null to types.IPNet's UnmarshalJSON, which refuses it; a null net.IP stays unset.
    Case(
        "host-local-subnet-null",
        one(hl(subnet=None, ranges=[[{"subnet": "10.38.0.0/24"}]])),
        "invalid CIDR address:",
        kernel=MAC,
        rule="nad-ipam-host-local",
    ),
    Case(
        "static-route-dst-null",
        one(macvlan({**STATIC4, "routes": [{"dst": None}]})),
        "invalid CIDR address:",
        kernel=MAC,
        rule="nad-ipam-routes",
    ),
    Case(
        "static-route-null",
        one(macvlan({**STATIC4, "routes": [None]})),
        "nil pointer dereference",
        kernel=MAC,
        rule="nad-ipam-routes",
    ),
    Case(
        "host-local-route-null",
        one(hl(subnet="10.39.0.0/24", routes=[None])),
        "nil pointer dereference",
        kernel=MAC,
        rule="nad-ipam-routes",
    ),
    # tuning decodes every spelling of its own sysctl in sorted order ("SYSCTL" < "Sysctl" < "sysctl"): a
    # null after the last object leaves the map nil, and copying args.cni.sysctl into it crashes.
    Case(
        "tuning-args-sysctl-own-sysctl-emptied-by-later-null",
        chain(macvlan(), {"type": "tuning", "sysctl": None, "SYSCTL": {},
                          "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        "assignment to entry in nil map",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-args-sysctl-without-sysctl",
        chain(macvlan(), {"type": "tuning", "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        "assignment to entry in nil map",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-args-sysctl-kernel",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {"sysctl": {"kernel.shmmax": "1"}}}}),
        "invalid net sysctl key",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    # Every spelling of sysctl in args.cni goes into one map: the kernel key under "Sysctl" is applied too.
    Case(
        "tuning-args-sysctl-kernel-other-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {
            "Sysctl": {"kernel.shmmax": "1"}, "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        "invalid net sysctl key",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-sysctl-kernel-other-spelling",
        chain(macvlan(), {"type": "tuning", "Sysctl": {"kernel.shmmax": "1"},
                          "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
        "invalid net sysctl key",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-sysctl-key-under-two-spellings",
        chain(macvlan(), {"type": "tuning", "Sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "0"},
                          "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
        "duplicated sysctl keys are not allowed",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-sysctl-two-spellings-other-keys",
        chain(macvlan(), {"type": "tuning", "Sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"},
                          "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
        kernel=MAC,
    ),
    Case(
        "tuning-args-sysctl-string-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {
            "Sysctl": "x", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        "failed to load netconf",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    # Go decodes every spelling of "args" and of "cni" into the one field, in libcni's sorted order
    # ("ARGS" < "Args" < "args"): a later object adds to what an earlier one set, a later null drops it.
    Case(
        "tuning-args-sysctl-kernel-under-other-args-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "Args": {"cni": {"sysctl": {"kernel.shmmax": "1"}}},
                          "args": {"cni": {}}}),
        "invalid net sysctl key",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-args-sysctl-kernel-under-other-cni-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"CNI": {"sysctl": {"kernel.shmmax": "1"}},
                                                                   "cni": {}}}),
        "invalid net sysctl key",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-args-sysctl-kernel-dropped-by-later-args-null",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "Args": {"cni": {"sysctl": {"kernel.shmmax": "1"}}},
                          "args": None}),
        kernel=MAC,
    ),
    Case(
        "tuning-args-sysctl-kernel-dropped-by-later-cni-null",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"CNI": {"sysctl": {"kernel.shmmax": "1"}},
                                                                   "cni": None}}),
        kernel=MAC,
    ),
    Case(
        "tuning-args-string-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "Args": "x", "args": {"cni": {}}}),
        "failed to load netconf",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "tuning-args-cni-string",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": "x"}}),
        "failed to load netconf",
        kernel=MAC,
        rule="nad-plugin-tuning-sysctl",
    ),
    Case(
        "static-args-ips-not-cidr",
        one(macvlan({"type": "static"}, args={"cni": {"ips": ["10.10.0.5"]}})),
        "an entry in the 'ips' field is NOT in CIDR notation",
        kernel=MAC,
        rule="nad-ipam-static",
    ),
    # static decodes every spelling of args, cni and ips (sorted: "Args" < "args", "IPs" < "ips") into one
    # struct: a later object keeps an earlier one's ips, a later list replaces them, null drops them.
    Case("static-args-ips-not-cidr-kept-under-earlier-args-spelling",
         one(macvlan({"type": "static"}, Args={"cni": {"ips": ["10.10.0.5"]}}, args={})),
         "an entry in the 'ips' field is NOT in CIDR notation", kernel=MAC, rule="nad-ipam-static"),
    Case("static-args-ips-not-cidr-kept-under-earlier-cni-spelling",
         one(macvlan({"type": "static"}, args={"CNI": {"ips": ["10.10.0.5"]}, "cni": {}})),
         "an entry in the 'ips' field is NOT in CIDR notation", kernel=MAC, rule="nad-ipam-static"),
    Case("static-args-ips-not-cidr-replaced-by-later-spelling",
         one(macvlan({"type": "static"}, args={"cni": {"IPs": ["10.10.0.5"], "ips": ["10.10.0.6/24"]}})), kernel=MAC),
    # Go decodes a later list into the slice an earlier one made, and null into a string does nothing.
    Case("static-args-ips-null-entry-keeps-earlier-spelling",
         one(macvlan({"type": "static"}, args={"cni": {"IPs": ["10.10.0.5/24"], "ips": [None]}})), kernel=MAC),
    # Go reuses the slice's array: a null entry takes what a longer list of an earlier spelling left there.
    Case("static-args-ips-null-entry-keeps-earlier-longer-spelling",
         one(macvlan({"type": "static"}, args={"cni": {"IPS": ["10.10.0.5/24", "10.10.0.6/24"],
                                                       "IPs": ["10.10.0.7/24"], "ips": ["10.10.0.8/24", None]}})),
         kernel=MAC),
    Case("static-args-ips-null-entry", one(macvlan({"type": "static"}, args={"cni": {"ips": [None]}})),
         "an entry in the 'ips' field is NOT in CIDR notation", kernel=MAC, rule="nad-ipam-static"),
    Case("static-args-ips-not-cidr-dropped-by-later-args-null",
         one(macvlan(STATIC4, Args={"cni": {"ips": ["10.10.0.5"]}}, args=None)), kernel=MAC),
    Case("static-args-ips-string-under-earlier-spelling",
         one(macvlan({"type": "static"}, args={"cni": {"IPs": "10.10.0.5/24", "ips": ["10.10.0.6/24"]}})),
         "cannot unmarshal string", kernel=MAC, rule="nad-ipam-static"),
    # host-local (backend/allocator LoadIPAMConfig) allocates the addresses of args.cni.ips ([]*ip.IP, every
    # spelling, sorted), each from the range set holding it, one per set, never a range's gateway.
    Case("host-local-args-ips", one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.5"]}})), kernel=MAC),
    Case("host-local-args-ips-cidr", one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.5/8"]}})), kernel=MAC),
    Case("host-local-args-ips-mapped", one(hl(ranges=HL10, args={"cni": {"ips": ["::ffff:10.10.0.5"]}})), kernel=MAC),
    Case("host-local-args-ips-one-per-family",
         one(hl(ranges=[*HL10, [{"subnet": "fd00:10::/64"}]], args={"cni": {"ips": ["10.10.0.5", "fd00:10::5"]}})),
         kernel=MAC),
    Case("host-local-args-ips-twice", one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.5", "10.10.0.5/24"]}})),
         kernel=MAC),
    Case("host-local-args-ips-unparsable", one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.05"]}})),
         "invalid IP address 10.10.0.05", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-empty-string", one(hl(ranges=HL10, args={"cni": {"ips": [""]}})),
         "cannot understand ip", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-number", one(hl(ranges=HL10, args={"cni": {"ips": [5]}})),
         "cannot unmarshal number", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-string", one(hl(ranges=HL10, args={"cni": {"ips": "10.10.0.5"}})),
         "cannot unmarshal string", kernel=MAC, rule=HOST_LOCAL),
    # Null into a pointer is nil, whatever an earlier list held there (static keeps the earlier string).
    Case("host-local-args-ips-null-entry", one(hl(ranges=HL10, args={"cni": {"ips": [None]}})),
         "nil pointer dereference", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-null-entry-after-earlier-spelling",
         one(hl(ranges=HL10, args={"cni": {"IPs": ["10.10.0.5"], "ips": [None]}})),
         "nil pointer dereference", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-outside", one(hl(ranges=HL10, args={"cni": {"ips": ["10.11.0.5"]}})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-broadcast", one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.255"]}})),
         "failed to allocate all requested IPs: 10.10.0.255", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-before-range-start",
         one(hl(ranges=[[{"subnet": "10.10.0.0/24", "rangeStart": "10.10.0.10"}]],
                args={"cni": {"ips": ["10.10.0.5"]}})),
         "failed to allocate all requested IPs: 10.10.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-other-family", one(hl(ranges=HL10, args={"cni": {"ips": ["fd00:10::5"]}})),
         "failed to allocate all requested IPs: fd00:10::5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-two-in-one-range-set",
         one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.5", "10.10.0.6"]}})),
         # Which address is left over is Go's map order (cmdAdd's requestedIPs): either.
         "failed to allocate all requested IPs: 10.10.0.", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-default-gateway", one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.1"]}})),
         "requested ip 10.10.0.1 is subnet's gateway", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-ips-gateway",
         one(hl(ranges=[[{"subnet": "10.10.0.0/24", "gateway": "10.10.0.9"}]], args={"cni": {"ips": ["10.10.0.9"]}})),
         "requested ip 10.10.0.9 is subnet's gateway", kernel=MAC, rule=HOST_LOCAL),
    # The NAD's literal runtimeConfig reaches host-local when libcni injects none (no declared capability
    # gets a value): its ipRanges go ahead of the ranges, its ips join args.cni.ips. Multus never passes
    # ipRanges: the capability alone leaves host-local without them.
    Case("host-local-literal-ip-ranges-args-ips",
         one(hl(ranges=HL10, runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]},
                args={"cni": {"ips": ["10.79.0.7"]}})), kernel=MAC),
    Case("host-local-literal-ip-ranges-only", one(hl(runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]})),
         kernel=MAC),
    # host-local checks every pair of range sets, the literal ipRanges among them.
    Case("host-local-literal-ip-ranges-overlap-own",
         one(hl(ranges=HL10, runtimeConfig={"ipRanges": [[{"subnet": "10.10.0.128/25"}]]})),
         "range set 0 overlaps with 1", kernel=MAC, rule=HOST_LOCAL),
    # A runtimeConfig that is no object fails the decode of the plugins that read one into a struct:
    # host-local behind ptp (which reads none itself), macvlan first.
    Case("host-local-runtime-config-not-an-object",
         one({"type": "ptp", "ipam": {"type": "host-local", "ranges": HL10}, "runtimeConfig": "x"}),
         "Net.runtimeConfig", rule=HOST_LOCAL),
    Case("macvlan-runtime-config-not-an-object", one(hl(ranges=HL10, runtimeConfig=[])),
         "runtimeConfig", kernel=MAC, rule="nad-plugin-field-types"),
    Case("host-local-ip-ranges-capability-only", one(hl(capabilities={"ipRanges": True})),
         "no IP ranges specified", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-literal-ips-outside", one(hl(ranges=HL10, runtimeConfig={"ips": ["10.11.0.5"]})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    # A pod filling a capability the plugin declares (its mac here) gets a runtimeConfig of its own in place
    # of the whole literal one (libcni injectRuntimeConfig): what host-local, or the plugin, refuses in the
    # literal one fails only the other pods (a warning), and what it lacks without it fails those pods. A key
    # spelled otherwise ("RuntimeConfig") is not replaced: the plugins still decode it, for every pod.
    *literal_runtime_config_cases("host-local-runtime-config-not-an-object",
                                  {"type": "ptp", "ipam": {"type": "host-local", "ranges": HL10}, "runtimeConfig": "x"},
                                  "Net.runtimeConfig", HOST_LOCAL),
    *literal_runtime_config_cases("macvlan-runtime-config-not-an-object", hl(ranges=HL10, runtimeConfig=[]),
                                  "NetConf.runtimeConfig", "nad-plugin-field-types", MAC),
    *literal_runtime_config_cases("host-local-literal-ips-outside",
                                  hl(ranges=HL10, runtimeConfig={"ips": ["10.11.0.5"]}),
                                  "failed to allocate all requested IPs: 10.11.0.5", HOST_LOCAL, MAC),
    *literal_runtime_config_cases("host-local-literal-ips-unparsable", hl(ranges=HL10, runtimeConfig={"ips": ["zz"]}),
                                  "invalid IP address zz", HOST_LOCAL, MAC),
    *literal_runtime_config_cases("host-local-literal-ip-ranges-overlap-own",
                                  hl(ranges=HL10, runtimeConfig={"ipRanges": [[{"subnet": "10.10.0.128/25"}]]}),
                                  "range set 0 overlaps with 1", HOST_LOCAL, MAC),
    *literal_runtime_config_cases("host-local-literal-ip-ranges-not-a-list",
                                  hl(ranges=HL10, runtimeConfig={"ipRanges": "x"}),
                                  "runtimeConfig.ipRanges", HOST_LOCAL, MAC),
    *literal_runtime_config_cases("host-local-literal-ip-ranges-two-ipv4-v0.2.0",
                                  hl(ranges=HL10, runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]}),
                                  "does not support more than 1 address per family", HOST_LOCAL, MAC, "0.2.0"),
    Case("host-local-literal-ip-ranges-only-mac-capability",
         one(hl(runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]}, capabilities={"mac": True})),
         kernel=MAC, warned=True, rule=HOST_LOCAL),
    Case("host-local-literal-ip-ranges-only-mac-filled",
         one(hl(runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]}, capabilities={"mac": True})),
         "no IP ranges specified", kernel=MAC, warned=True, rule=HOST_LOCAL, cap_args=POD_MAC),
    Case("macvlan-misspelled-runtime-config-mac-unparsable-ips-filled",
         one(macvlan(RuntimeConfig={"mac": "zz"}, capabilities={"ips": True})), "invalid args zz for MAC addr",
         kernel=MAC, rule="nad-plugin-mac", cap_args={"ips": ["10.10.0.6/24"]}),
    # libcni re-marshals the config with its keys sorted, and the plugin decodes every spelling into one
    # struct in that order, member by member: an injected member replaces that of a spelling sorting before
    # "runtimeConfig" ("RuntimeConfig", "RUNTIMECONFIG") and is replaced by that of one sorting after it.
    *(case for key in ("RuntimeConfig", "RUNTIMECONFIG") for case in (
        Case(f"macvlan-{key}-mac-unparsable-mac-filled",
             one(hl(HL10, capabilities={"mac": True}) | {key: {"mac": "zz"}}), kernel=MAC, warned=True,
             rule="nad-plugin-mac", cap_args=POD_MAC),
        Case(f"macvlan-{key}-mac-unparsable-mac-capability",
             one(hl(HL10, capabilities={"mac": True}) | {key: {"mac": "zz"}}), "invalid args zz for MAC addr",
             kernel=MAC, warned=True, rule="nad-plugin-mac"),
        Case(f"host-local-{key}-ips-outside-ips-filled",
             one(hl(HL10, capabilities={"ips": True}) | {key: {"ips": ["10.11.0.5"]}}),
             kernel=MAC, warned=True, rule=HOST_LOCAL, cap_args={"ips": ["10.10.0.7/24"]}),
        Case(f"host-local-{key}-ips-outside-ips-capability",
             one(hl(HL10, capabilities={"ips": True}) | {key: {"ips": ["10.11.0.5"]}}),
             "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, warned=True, rule=HOST_LOCAL))),
    Case("macvlan-runtimeconfig-mac-unparsable-mac-filled",
         one(hl(HL10, capabilities={"mac": True}) | {"runtimeconfig": {"mac": "zz"}}), "invalid args zz for MAC addr",
         kernel=MAC, rule="nad-plugin-mac", cap_args=POD_MAC),
    Case("host-local-runtimeconfig-ips-outside-ips-filled",
         one(hl(HL10, capabilities={"ips": True}) | {"runtimeconfig": {"ips": ["10.11.0.5"]}}),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL,
         cap_args={"ips": ["10.10.0.7/24"]}),
    # A null member of a later spelling sets a slice member (ips, ipRanges) to nil, and leaves a string
    # member (mac) as the earlier spelling set it.
    Case("host-local-RuntimeConfig-ips-outside-nulled-by-runtimeconfig",
         one(hl(HL10) | {"RuntimeConfig": {"ips": ["10.11.0.5"]}, "runtimeconfig": {"ips": None}}), kernel=MAC),
    Case("host-local-RuntimeConfig-ip-ranges-overlap-nulled-by-runtimeconfig",
         one(hl(ranges=HL10) | {"RuntimeConfig": {"ipRanges": [[{"subnet": "10.10.0.128/25"}]]},
                                "runtimeconfig": {"ipRanges": None}}), kernel=MAC),
    Case("macvlan-RuntimeConfig-mac-unparsable-kept-by-null-runtimeconfig",
         one(hl(HL10) | {"RuntimeConfig": {"mac": "zz"}, "runtimeconfig": {"mac": None}}),
         "invalid args zz for MAC addr", kernel=MAC, rule="nad-plugin-mac"),
    # Beside another spelling, the literal runtimeConfig under its own key is still replaced when a pod fills
    # a declared capability.
    *(Case(f"{name}-beside-RuntimeConfig{suffix}", one(plugin | {"RuntimeConfig": {}}), refused, kernel=MAC,
           warned=True, rule=rule, cap_args=cap_args)
      for name, plugin, refused_with, rule in (
          ("host-local-literal-ips-outside",
           hl(HL10, capabilities={"mac": True}, runtimeConfig={"ips": ["10.11.0.5"]}),
           "failed to allocate all requested IPs: 10.11.0.5", HOST_LOCAL),
          ("macvlan-runtime-config-not-an-object", hl(HL10, capabilities={"mac": True}, runtimeConfig=[]),
           "NetConf.runtimeConfig", "nad-plugin-field-types"))
      for suffix, refused, cap_args in (("-mac-filled", None, POD_MAC), ("", refused_with, None))),
    # host-device takes a literal runtimeConfig.deviceID as its device (a PCI function .9 exists nowhere)...
    Case("host-device-literal-device-id-mac-capability",
         one({"type": "host-device", "runtimeConfig": {"deviceID": "0000:00:1f.9"}, "capabilities": {"mac": True},
              "ipam": STATIC4}), "runtime config DeviceID 0000:00:1f.9 not found", warned=True,
         rule="nad-plugin-host-device-selector"),
    # ... and has none once a pod's mac replaced it.
    Case("host-device-literal-device-id-mac-filled",
         one({"type": "host-device", "runtimeConfig": {"deviceID": "0000:00:1f.9"}, "capabilities": {"mac": True},
              "ipam": STATIC4}), 'specify either "device"', warned=True, rule="nad-plugin-host-device-selector",
         cap_args=POD_MAC),
    Case("host-local-args-IPs-outside", one(hl(ranges=HL10, args={"cni": {"IPs": ["10.11.0.5"]}})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-Args-ips-outside", one(hl(ranges=HL10, Args={"cni": {"ips": ["10.11.0.5"]}})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-args-CNI-ips-outside", one(hl(ranges=HL10, args={"CNI": {"ips": ["10.11.0.5"]}})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-Args-ips-outside-kept-by-later-args",
         one(hl(ranges=HL10, Args={"cni": {"ips": ["10.11.0.5"]}}, args={})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("host-local-Args-ips-outside-dropped-by-later-args-null",
         one(hl(ranges=HL10, Args={"cni": {"ips": ["10.11.0.5"]}}, args=None)), kernel=MAC),
    Case("host-local-args-IPs-outside-replaced-by-later-ips",
         one(hl(ranges=HL10, args={"cni": {"IPs": ["10.11.0.5"], "ips": ["10.10.0.5"]}})), kernel=MAC),
    # Multus never passes ipRanges (its RuntimeConfig has no such field): the capability gives
    # host-local no other range, and an address outside the NAD's own fails as without it.
    Case("host-local-args-ips-outside-ip-ranges-capability",
         one(hl(ranges=HL10, capabilities={"ipRanges": True}, args={"cni": {"ips": ["10.11.0.5"]}})),
         "failed to allocate all requested IPs: 10.11.0.5", kernel=MAC, rule=HOST_LOCAL),
    Case("static-args-string", one(macvlan(STATIC4, args="x")), "cannot unmarshal string", kernel=MAC,
         rule="nad-ipam-static"),
    Case("static-args-cni-string-under-earlier-spelling", one(macvlan(STATIC4, args={"CNI": "x", "cni": {}})),
         "cannot unmarshal string", kernel=MAC, rule="nad-ipam-static"),
    # Without a backend portmap takes iptables where it works, and refuses nftables options there.
    Case(
        "portmap-nftables-conditions-without-backend",
        chain(macvlan(), {"type": "portmap", "conditionsV4": ["ip saddr 10.0.0.0/8"]}),
        "iptables backend was requested but configuration contains nftables-specific options",
        kernel=MAC,
        warned=True,
        rule="nad-plugin-portmap",
        portmap_iptables=True,
    ),
    Case(
        "portmap-options-of-both-backends",
        chain(macvlan(), {"type": "portmap", "conditionsV4": ["ip saddr 10.0.0.0/8"],
                          "externalSetMarkChain": "KUBE-MARK-MASQ"}),
        "specific options",
        kernel=MAC,
        rule="nad-plugin-portmap",
    ),
    # firewall decodes before it needs iptables (its unknown ingress policy is refused only after).
    Case(
        "firewall-ingress-policy-number",
        chain(macvlan(), {"type": "firewall", "ingressPolicy": 1}),
        "cannot unmarshal number into Go struct field FirewallNetConf.ingressPolicy",
        kernel=MAC,
        rule="nad-plugin-field-types",
    ),
    # --- netfilter: bridge's and ptp's ipMasq, the firewall plugin --------------------------------
    # SetupIPMasqForNetworks writes the masquerade rules with the backend named, or without one iptables
    # (nftables only where iptables does not work).
    Case("bridge-ipmasq-iptables", one(bridge("mwbr9", "10.60.0.0/24", ipMasq=True, ipMasqBackend="iptables")),
         netfilter=IPTABLES),
    Case("bridge-ipmasq-nftables", one(bridge("mwbr9", "10.60.1.0/24", ipMasq=True, ipMasqBackend="nftables")),
         netfilter=NFT),
    Case("ptp-ipmasq-nftables", one(ptp("10.61.0.0/24", ipMasq=True, ipMasqBackend="nftables")), netfilter=NFT),
    Case("ptp-ipmasq-default-backend", one(ptp("10.62.0.0/24", ipMasq=True)), netfilter=IPTABLES),
    # A null *string stays unset: the default backend.
    Case("ptp-ipmasq-backend-null", one(ptp("10.62.1.0/24", ipMasq=True, ipMasqBackend=None)), netfilter=IPTABLES),
    # The backend's name is compared as it is written.
    Case("ptp-ipmasq-backend-upper-case", one(ptp("10.62.2.0/24", ipMasq=True, ipMasqBackend="IPTABLES")),
         'unknown ipmasq backend "IPTABLES"', rule="nad-plugin-ipmasq-backend"),
    # A bridge without IPAM has no addresses to masquerade: ipMasq and its backend are never read.
    Case("bridge-ipmasq-backend-unknown-without-ipam",
         one({"type": "bridge", "bridge": "mwbr9", "ipMasq": True, "ipMasqBackend": "pf"})),
    # firewall's iptables backend, the one it takes where firewalld does not run.
    Case("chain-ptp-firewall", chain(ptp("10.63.0.0/24"), {"type": "firewall"}), netfilter=FIREWALL),
    Case("firewall-iptables-admin-chain",
         chain(ptp("10.63.1.0/24"), {"type": "firewall", "backend": "iptables", "iptablesAdminChainName": "MW-ADMIN"}),
         netfilter=FIREWALL),
    # firewall has no nftables backend: any backend but iptables and firewalld is the default one.
    Case("firewall-backend-other-is-default", chain(ptp("10.63.2.0/24"), {"type": "firewall", "backend": "nftables"}),
         netfilter=FIREWALL),
    # The ingress policy is set up after the backend's rules: same-bridge and isolated with iptables.
    Case("firewall-ingress-policy-open", chain(bridge("mwbr10", "10.64.0.0/24"),
                                               {"type": "firewall", "ingressPolicy": "open"}), netfilter=FIREWALL),
    Case("firewall-ingress-policy-same-bridge", chain(bridge("mwbr10", "10.64.1.0/24"),
                                                      {"type": "firewall", "ingressPolicy": "same-bridge"}),
         netfilter=FIREWALL),
    Case("firewall-ingress-policy-isolated", chain(bridge("mwbr10", "10.64.2.0/24"),
                                                   {"type": "firewall", "ingressPolicy": "isolated"}),
         netfilter=FIREWALL),
    Case("firewall-ingress-policy-isolated-ipv6", chain(ptp("fd00:65::/64"),
                                                        {"type": "firewall", "ingressPolicy": "isolated"}),
         netfilter=FIREWALL),
    # Not only behind a bridge: the policy isolates whatever interface comes first in the result.
    Case("firewall-ingress-policy-same-bridge-macvlan", chain(macvlan(), {"type": "firewall",
                                                                        "ingressPolicy": "same-bridge"}),
         kernel=MAC, netfilter=FIREWALL),
    Case("firewall-ingress-policy-null", chain(bridge("mwbr10", "10.64.3.0/24"),
                                               {"type": "firewall", "ingressPolicy": None}), netfilter=FIREWALL),
    Case("firewall-ingress-policy-unknown", chain(bridge("mwbr10", "10.64.4.0/24"),
                                                  {"type": "firewall", "ingressPolicy": "closed"}),
         'unknown ingress policy: "closed"', rule="nad-plugin-mode", netfilter=FIREWALL),
    Case("firewall-ingress-policy-upper-case", chain(bridge("mwbr10", "10.64.5.0/24"),
                                                     {"type": "firewall", "ingressPolicy": "Same-Bridge"}),
         'unknown ingress policy: "Same-Bridge"', rule="nad-plugin-mode", netfilter=FIREWALL),
    Case("firewall-ingress-policy-other-spelling", chain(bridge("mwbr10", "10.64.6.0/24"),
                                                         {"type": "firewall", "IngressPolicy": "closed"}),
         'unknown ingress policy: "closed"', rule="nad-plugin-mode", netfilter=FIREWALL),
    # Refused with no address to write rules for, too.
    Case("firewall-ingress-policy-unknown-l2", chain({"type": "bridge", "bridge": "mwbr11"},
                                                     {"type": "firewall", "ingressPolicy": "closed"}),
         'unknown ingress policy: "closed"', rule="nad-plugin-mode", netfilter=FIREWALL),
]


@functools.cache
def _portmap_takes_iptables() -> bool:
    """portmap's ensureBackend: iptables unless utils.SupportsIPTables fails (iptables cannot read the
    filter table) and SupportsNFTables holds, which needs the nft command (knftables runs it)."""
    if shutil.which("nft") is None:
        return True
    command = ["iptables", "-w", "-t", "filter", "-S", "INPUT"]
    return shutil.which("iptables") is not None and subprocess.run(command, capture_output=True).returncode == 0


def skip_unless_netfilter(tools: frozenset[str]) -> None:
    missing = sorted(tool for tool in tools if shutil.which(tool) is None)
    if missing:
        # A skip under CI=true too: the netfilter commands are the machine's (.ci/run installs them).
        pytest.skip(f"{' and '.join(missing)} not installed: the plugin cannot write its netfilter rules here")


def skip_unless_kernel_has(kinds: frozenset[str], kernel_lacks: dict[str, str]) -> None:
    missing = sorted(kinds & kernel_lacks.keys())
    if missing:
        # A skip under CI=true too: no install on the machine adds what its kernel lacks.
        pytest.skip(
            f"the kernel ({os.uname().release}) cannot create the links the plugin needs here: "
            + "; ".join(f"{kind}: `ip link add` says {kernel_lacks[kind]!r}" for kind in missing)
        )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rules_agree_with_the_real_plugin(
    case: Case, cni_bin: Path, kernel_lacks: dict[str, str], sandbox: Sandbox
) -> None:
    denials = our_findings(case.config, "net1")
    if case.refused_with is None or case.warned:
        assert denials == [], f"the rules deny a config the case says the plugin accepts: {denials}"
    else:
        assert denials, "the rules allow a config the case says the plugin refuses"
    if case.warned:
        assert our_findings(case.config, "net1", Severity.WARN), "the rules say nothing of a config the plugin refuses"
    if case.quiet:
        assert our_findings(case.config, "net1", Severity.WARN) == [], "the rules warn of a config that always works"
    if case.refused_with is not None or case.warned:
        said = our_findings(case.config, "net1", Severity.WARN if case.warned else Severity.DENY)
        assert case.rule in {finding.split(":")[0] for finding in said}, f"not from {case.rule}: {said}"
    skip_unless_kernel_has(case.kernel, kernel_lacks)
    if case.portmap_iptables and not _portmap_takes_iptables():
        pytest.skip("portmap takes nftables here (no working iptables, nftables present): the config works")
    skip_unless_netfilter(case.netfilter)
    outcome = run_add(case.config, sandbox, cni_bin, "net1", case.cap_args)
    if case.refused_with is None:
        assert outcome.accepted, f"the plugin refused a config our rules allow: {outcome.error}"
    else:
        assert not outcome.accepted, f"the plugin accepted a config our rules refuse or warn about: {denials}"
        assert case.refused_with in outcome.error, f"refused for another reason: {outcome.error}"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_refused_cases_name_their_rule() -> None:
    assert [c.id for c in CASES if (c.refused_with is None and not c.warned) != (c.rule is None)] == []


MAPPED = ["::ffff:10.10.0.5/120", "::ffff:10.10.0.5/128", "::ffff:10.10.0.5/100", "::ffff:10.10.0.5/96",
          "::ffff:10.10.0.5/64"]


@pytest.mark.parametrize("where", ["args", "addresses"])
@pytest.mark.parametrize("cidr", MAPPED)
def test_static_reads_ipv4_mapped_cidrs(cidr: str, where: str, cni_bin: Path, kernel_lacks: dict[str, str],
                                        sandbox: Sandbox) -> None:
    """The interface gets the address and prefix parse_static_cidr reads; the rules allow it, and warn
    where the prefix ends as /0."""
    config = one(macvlan({"type": "static"}, args={"cni": {"ips": [cidr]}}) if where == "args"
                 else macvlan({"type": "static", "addresses": [{"address": cidr}]}))
    parsed = parse_static_cidr(cidr)
    assert parsed is not None
    assert our_findings(config, "net1") == []
    assert bool(our_findings(config, "net1", Severity.WARN)) == (parsed[1].prefixlen == 0)
    skip_unless_kernel_has(MAC, kernel_lacks)
    outcome = run_add(config, sandbox, cni_bin, "net1", None)
    assert outcome.accepted, outcome.error
    got = {f"{a['local']}/{a['prefixlen']}" for a in _interface(sandbox)["addr_info"] if a.get("family") == "inet"}
    assert got == {f"{parsed[0]}/{parsed[1].prefixlen}"}


def test_host_local_args_ips_fail_the_second_pod_on_a_node(
    cni_bin: Path, kernel_lacks: dict[str, str], tmp_path: Path
) -> None:
    # Every pod of the NAD requests the address: the first on a node takes it (host-local's state is the
    # node's), the next fails while it holds it. Whether two pods meet on a node is the scheduler's: a warning.
    config = one(hl(ranges=HL10, args={"cni": {"ips": ["10.10.0.5"]}}))
    assert our_findings(config, "net1") == []
    [warning] = our_findings(config, "net1", Severity.WARN)
    assert warning.startswith(f"{HOST_LOCAL}: spec.config.args.cni.ips requests 10.10.0.5 for every pod"), warning
    skip_unless_kernel_has(MAC, kernel_lacks)
    # Two pods on one node: their own namespaces, host-local's one data directory (tmp_path's).
    with sandbox(tmp_path) as first, sandbox(tmp_path) as second:
        assert run_add(config, first, cni_bin, "net1").accepted
        outcome = run_add(config, second, cni_bin, "net1")
    assert not outcome.accepted
    assert "requested IP address 10.10.0.5 is not available in range set" in outcome.error, outcome.error


@pytest.mark.parametrize("capabilities", [{}, {"mac": True}], ids=["no-capability", "mac-capability"])
def test_host_local_literal_ip_ranges_collide_with_another_nads_ranges(
    capabilities: dict[str, bool], cni_bin: Path, kernel_lacks: dict[str, str], tmp_path: Path
) -> None:
    # NAD a allocates only from its literal runtimeConfig.ipRanges, NAD b from ranges of its own, both on one
    # master: each host-local keeps its own store (another network name), so both give a pod the same
    # address. Denied when the literal runtimeConfig reaches a's host-local for every pod; a warning when a
    # capability a declares may replace it (the mac a pod requests).
    a = one(hl(runtimeConfig={"ipRanges": [[{"subnet": "10.66.0.0/24"}]]}, capabilities=capabilities))
    b = one(hl(ranges=[[{"subnet": "10.66.0.0/24"}]]))
    view = StaticClusterView([{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}, *(
        {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
         "metadata": {"name": name, "namespace": "default"}, "spec": {"config": json.dumps(config)}}
        for name, config in (("a", a),))])
    obj = {"metadata": {"name": "b", "namespace": "default"}, "spec": {"config": json.dumps(b)}}
    [finding] = [f for f in evaluate(Subject(obj, "NetworkAttachmentDefinition", view=view), Policy())
                 if f.rule == "nad-range-overlap"]
    assert finding.severity == (Severity.WARN if capabilities else Severity.DENY), finding
    assert "NAD default/a spec.config.runtimeConfig.ipRanges[0][0] (addresses 10.66.0.2-10.66.0.254)" \
        in finding.message
    skip_unless_kernel_has(MAC, kernel_lacks)
    got = []
    with sandbox(tmp_path) as first, sandbox(tmp_path) as second:
        for config, box, name in ((a, first, "a"), (b, second, "b")):
            outcome = run_add(config, box, cni_bin, name)
            assert outcome.accepted, outcome.error
            got.append({x["local"] for x in _interface(box)["addr_info"] if x.get("scope") == "global"})
    assert got == [{"10.66.0.2"}, {"10.66.0.2"}], got


# --- a pod's mac and ips, which Multus also passes as MAC= and IP= in CNI_ARGS ------------------


@dataclass(frozen=True)
class PodCase:
    id: str
    config: dict[str, Any]
    #: The pod's selection element (but its name): the config goes through the real Multus with it
    #: (its "cni-args" merged into args.cni of every plugin); multus-add passes its mac and ips as Multus
    #: does, as capability args and as MAC= / IP= in CNI_ARGS.
    request: dict[str, Any]
    #: None: the rules say nothing and the plugin gives the interface what was requested. Otherwise the
    #: rule denies and the plugin's error contains this text.
    refused_with: str | None = None
    #: The capabilities rule warns the request is ignored, and the interface indeed lacks it.
    ignored: bool = False
    kernel: frozenset[str] = MAC
    #: The rule that warns of the request: the plugin then refuses it (``refused_with``) or gives the
    #: interface other addresses than those requested (``addresses``).
    warned_by: str | None = None
    #: The global addresses the interface ends with, when not exactly the requested ones.
    addresses: tuple[str, ...] | None = None
    #: The MAC the interface ends with, when not the requested one (and the request is not ignored).
    mac: str | None = None
    #: The rule that denies a case the plugin refuses.
    denied_by: str = "pod-networks-ips-ipam"
    #: Sysctls of the pod's interface (net.ipv4.conf.net1.<name>) and the values they end with.
    sysctls: dict[str, str] | None = None
    #: The outcome needs portmap to reach its backend (iptables or nftables) with the port mappings: a
    #: skip where neither is installed. portmap's own checks of the ports come before and need neither.
    portmap_backend: bool = False
    #: The outcome holds only where portmap without a backend takes iptables (see Case.portmap_iptables).
    portmap_iptables: bool = False
    #: The netfilter commands portmap runs with this backend (see Case.netfilter).
    netfilter: frozenset[str] = frozenset()
    #: iptables chains of the nat table the node has before the ADD (kube-proxy's KUBE-MARK-MASQ), made
    #: in the namespace standing in for the node.
    nat_chains: tuple[str, ...] = ()


MAC_ADDRESS = "02:00:00:00:70:01"
OTHER_MAC = "02:00:00:00:70:02"
CAPABILITIES = "pod-networks-capabilities"
HOST_LOCAL_IPS = "pod-networks-ips-host-local"
POD_RULES = {"pod-networks-capabilities", "pod-networks-ips-ipam", "pod-networks-static-ip-range", HOST_LOCAL_IPS,
             "pod-networks-ips-extra-addresses", "pod-networks-cni-args-sysctl", "pod-networks-port-mappings",
             "pod-networks-cni-args-nad-args", "pod-networks-cni-args-tuning", "pod-networks-cni-args-ips"}
ARP_FILTER = {"net.ipv4.conf.IFNAME.arp_filter": "1"}
ARP_IGNORE = {"net.ipv4.conf.IFNAME.arp_ignore": "2"}
EXTRA = "pod-networks-ips-extra-addresses"
TUNING_ARGS = "pod-networks-cni-args-tuning"
CNI_ARGS_IPS = "pod-networks-cni-args-ips"
PORTS = "pod-networks-port-mappings"
PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}}
MAPPING = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
#: The plugins giving the interface a MAC that decode runtimeConfig.mac (each into a struct of its own), as
#: configs with the given fields on that plugin.
MAC_PLUGINS: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], frozenset[str]]] = [
    ("macvlan", lambda fields: one(macvlan(**fields)), MAC),
    ("tap", lambda fields: one({"type": "tap", "ipam": STATIC4, **fields}), frozenset()),
    ("bridge", lambda fields: one(bridge("mwbr13", "10.88.0.0/24", **fields)), frozenset({"bridge"})),
    ("tuning", lambda fields: chain(macvlan(), {"type": "tuning", **fields}), MAC)]


POD_CASES = [
    # No capability declared: what the plugins read from CNI_ARGS is what the interface gets.
    PodCase("macvlan-mac", one(hl(subnet="10.70.0.0/24")), {"mac": MAC_ADDRESS}),
    PodCase("host-local-one-ip", one(hl(subnet="10.71.0.0/24")), {"ips": ["10.71.0.7"]}),
    PodCase("static-ip-list", one(macvlan({"type": "static"})), {"ips": ["10.72.0.7/24", "fd00:72::7/64"]}),
    # host-local reads IP= as one address, capability or not.
    PodCase(
        "host-local-two-ips",
        one(hl_ranges([{"subnet": "10.73.0.0/24"}], [{"subnet": "fd00:73::/64"}])),
        {"ips": ["10.73.0.7/24", "fd00:73::7/64"]},
        "invalid IP address 10.73.0.7/24,fd00:73::7/64",
    ),
    PodCase(
        "host-local-two-ips-capability",
        one({**hl_ranges([{"subnet": "10.74.0.0/24"}], [{"subnet": "fd00:74::/64"}]), "capabilities": {"ips": True}}),
        {"ips": ["10.74.0.7/24", "fd00:74::7/64"]},
        "invalid IP address 10.74.0.7/24,fd00:74::7/64",
    ),
    # static reads IP= as CIDRs, capability or not.
    PodCase(
        "static-bare-ip",
        one(macvlan({"type": "static"}, capabilities={"ips": True})),
        {"ips": ["10.75.0.7"]},
        "expected to be in CIDR notation",
    ),
    # ptp reads no MAC=: its veth keeps the address the kernel gave it.
    PodCase("ptp-mac", one(ptp("10.76.0.0/24")), {"mac": MAC_ADDRESS}, ignored=True, kernel=frozenset()),
    # host-local gives a requested address only from its ranges.
    PodCase(
        "host-local-ip-outside",
        one(hl(subnet="10.77.0.0/24")),
        {"ips": ["10.78.0.7"]},
        "failed to allocate all requested IPs: 10.78.0.7",
        denied_by=HOST_LOCAL_IPS,
    ),
    PodCase("host-local-ip-gateway", one(hl(subnet="10.77.0.0/24")), {"ips": ["10.77.0.1"]},
            "requested ip 10.77.0.1 is subnet's gateway", denied_by=HOST_LOCAL_IPS),
    # host-local takes IP= and args.cni.ips together, at most one per range set.
    PodCase("host-local-args-ips-and-ip-one-set", one(hl(ranges=[[{"subnet": "10.77.0.0/24"}]],
                                                         args={"cni": {"ips": ["10.77.0.5"]}})),
            {"ips": ["10.77.0.7"]}, "failed to allocate all requested IPs", denied_by=HOST_LOCAL_IPS),
    PodCase("host-local-args-ips-and-ip-two-sets",
            one(hl(ranges=[[{"subnet": "10.77.0.0/24"}], [{"subnet": "10.78.0.0/24"}]],
                   args={"cni": {"ips": ["10.77.0.5"]}})),
            {"ips": ["10.78.0.7"]}, warned_by=EXTRA, addresses=("10.77.0.5", "10.78.0.7")),
    # host-local gives an address of each range set: the requested one, and one of every other set.
    PodCase("host-local-one-ip-two-sets", one(hl_ranges([{"subnet": "10.73.0.0/24"}], [{"subnet": "10.74.0.0/24"}])),
            {"ips": ["10.73.0.7"]}, warned_by=EXTRA, addresses=("10.73.0.7", "10.74.0.2")),
    # The pod's own "cni-args" ips are no extra: it gets exactly the two addresses it asks for.
    PodCase("host-local-dual-stack-ip-and-cni-args-ip",
            one(hl_ranges([{"subnet": "10.73.0.0/24"}], [{"subnet": "fd00:73::/64"}])),
            {"ips": ["10.73.0.7"], "cni-args": {"ips": ["fd00:73::7"]}}, addresses=("10.73.0.7", "fd00:73::7")),
    PodCase("host-local-args-ips-same-as-ip", one(hl(ranges=[[{"subnet": "10.77.0.0/24"}]],
                                                     args={"cni": {"ips": ["10.77.0.5"]}})),
            {"ips": ["10.77.0.5/24"]}),
    PodCase("host-local-cni-args-ips-and-ip-one-set", one(hl(subnet="10.77.0.0/24")),
            {"ips": ["10.77.0.7"], "cni-args": {"ips": ["10.77.0.8"]}}, "failed to allocate all requested IPs",
            denied_by=HOST_LOCAL_IPS),
    # The NAD's literal runtimeConfig reaches host-local unless a declared capability gets a value.
    PodCase("host-local-literal-ip-ranges",
            one(hl(subnet="10.77.0.0/24", runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]})),
            {"ips": ["10.79.0.7"]}, warned_by=EXTRA, addresses=("10.77.0.2", "10.79.0.7")),  # one of each range set
    # A declared capability the pod fills (its mac) replaces the literal runtimeConfig: one range set left.
    PodCase("host-local-literal-ip-ranges-replaced-by-mac",
            one(hl(subnet="10.77.0.0/24", capabilities={"mac": True},
                   runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]})),
            {"ips": ["10.77.0.7"], "mac": MAC_ADDRESS}),
    # static takes a literal runtimeConfig.ips last, instead of IP=, unless a declared capability is filled.
    PodCase("static-literal-runtime-config-ips",
            one(macvlan({"type": "static"}, runtimeConfig={"ips": ["10.72.0.9/24"]})),
            {"ips": ["10.72.0.7/24"]}, warned_by=EXTRA, addresses=("10.72.0.9",)),
    PodCase("static-literal-runtime-config-ips-replaced-by-ips",
            one(macvlan({"type": "static"}, runtimeConfig={"ips": ["10.72.0.9/24"]}, capabilities={"ips": True})),
            {"ips": ["10.72.0.7/24"]}),
    PodCase("host-local-literal-ip-ranges-cni-args",
            one(hl(subnet="10.77.0.0/24", runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]})),
            {"cni-args": {"ips": ["10.79.0.7"]}}, addresses=("10.77.0.2", "10.79.0.7")),
    PodCase("host-local-literal-ip-ranges-replaced-by-ips",
            one(hl(subnet="10.77.0.0/24", capabilities={"ips": True},
                   runtimeConfig={"ipRanges": [[{"subnet": "10.79.0.0/24"}]]})),
            {"ips": ["10.79.0.7"]}, "failed to allocate all requested IPs: 10.79.0.7", denied_by=HOST_LOCAL_IPS),
    PodCase("host-local-ip-ranges-capability", one(hl(subnet="10.77.0.0/24", capabilities={"ipRanges": True})),
            {"ips": ["10.79.0.7"]}, "failed to allocate all requested IPs: 10.79.0.7", denied_by=HOST_LOCAL_IPS),
    PodCase("host-local-literal-ips-and-ip-one-set",
            one(hl(subnet="10.77.0.0/24", runtimeConfig={"ips": ["10.77.0.5"]})),
            {"ips": ["10.77.0.7"]}, "failed to allocate all requested IPs", denied_by=HOST_LOCAL_IPS),
    # static adds the CIDRs of IP= to its own addresses: the pod gets the NAD's address too.
    PodCase(
        "static-own-address-and-ips",
        one(macvlan({"type": "static", "addresses": [{"address": "10.79.0.5/24"}]})),
        {"ips": ["10.79.0.7/24"]},
        warned_by=EXTRA,
        addresses=("10.79.0.5", "10.79.0.7"),
    ),
    # The NAD's own address requested: static returns it twice, and macvlan fails adding it again.
    PodCase(
        "static-own-address-requested",
        one(macvlan({"type": "static", "addresses": [{"address": "10.79.0.5/24"}]})),
        {"ips": ["10.79.0.5/24"]},
        "file exists",
        warned_by=EXTRA,
    ),
    # runtimeConfig.ips, which the capability brings, replaces them all.
    PodCase(
        "static-own-address-ips-capability",
        one(macvlan({"type": "static", "addresses": [{"address": "10.80.0.5/24"}]}, capabilities={"ips": True})),
        {"ips": ["10.80.0.7/24"]},
    ),
    # A chained plugin never runs IPAM: a pod's cni-args ips go to host-local only, never to tuning's static.
    PodCase("ipam-on-tuning-cni-args-ips",
            chain(hl(subnet="10.82.0.0/24"), {"type": "tuning", "ipam": {"type": "static"}}),
            {"cni-args": {"ips": ["10.82.0.7"]}}),
    # The pod's "ips" (last in Go's order) reuses the array "IPS" filled: its null takes "IPS"' second.
    PodCase("static-cni-args-ips-null-keeps-earlier-longer-spelling",
            one(macvlan({"type": "static"}, args={"cni": {"IPS": ["10.84.0.5/24", "10.84.0.6/24"],
                                                          "IPs": ["10.84.0.7/24"]}})),
            {"cni-args": {"ips": ["10.84.0.8/24", None]}}),
    # bridge decodes args.cni.mac, where Multus merges the pod's cni-args, as a string.
    PodCase("bridge-cni-args-mac-number", one({"type": "bridge", "bridge": "mwbr11"}), {"cni-args": {"mac": 5}},
            "cannot unmarshal number into Go struct field BridgeArgs.args.cni.mac", denied_by=TUNING_ARGS,
            kernel=frozenset()),
    PodCase("bridge-cni-args-mac-unparsable", one({"type": "bridge", "bridge": "mwbr11"}), {"cni-args": {"mac": "zz"}},
            "invalid MAC address", denied_by=TUNING_ARGS, kernel=frozenset()),
    # The NAD's args.cni.mac (the pod's cni-args merged in) comes before the MAC= the pod's mac gives.
    PodCase("bridge-cni-args-mac-over-mac", one({"type": "bridge", "bridge": "mwbr11"}),
            {"mac": MAC_ADDRESS, "cni-args": {"mac": "zz"}}, "invalid MAC address", denied_by=TUNING_ARGS,
            kernel=frozenset()),
    # A mac read after the MAC= Multus passes replaces the pod's: macvlan's literal runtimeConfig.mac (unless a
    # declared capability is filled, replacing the literal runtimeConfig), bridge's args.cni.mac (unless the
    # mac capability puts the pod's last), tuning's args.cni.mac (after the interface plugin, whatever).
    PodCase("macvlan-literal-runtime-config-mac", one(macvlan(runtimeConfig={"mac": OTHER_MAC})),
            {"mac": MAC_ADDRESS}, warned_by=CAPABILITIES, mac=OTHER_MAC),
    PodCase("macvlan-literal-runtime-config-mac-capability",
            one(macvlan(runtimeConfig={"mac": OTHER_MAC}, capabilities={"mac": True})), {"mac": MAC_ADDRESS}),
    PodCase("macvlan-literal-runtime-config-mac-other-capability-filled",
            one(macvlan({"type": "static"}, runtimeConfig={"mac": OTHER_MAC}, capabilities={"ips": True})),
            {"mac": MAC_ADDRESS, "ips": ["10.86.0.7/24"]}),
    PodCase("tap-literal-runtime-config-mac",
            one({"type": "tap", "ipam": STATIC4, "runtimeConfig": {"mac": OTHER_MAC}}), {"mac": MAC_ADDRESS},
            warned_by=CAPABILITIES, mac=OTHER_MAC, kernel=frozenset()),
    PodCase("tap-literal-runtime-config-mac-capability",
            one({"type": "tap", "ipam": STATIC4, "runtimeConfig": {"mac": OTHER_MAC}, "capabilities": {"mac": True}}),
            {"mac": MAC_ADDRESS}, kernel=frozenset()),
    PodCase("macvlan-literal-runtime-config-mac-then-tuning",
            chain(macvlan(runtimeConfig={"mac": OTHER_MAC}), {"type": "tuning"}), {"mac": MAC_ADDRESS}),
    PodCase("macvlan-then-tuning-args-mac", chain(macvlan(), {"type": "tuning", "args": {"cni": {"mac": OTHER_MAC}}}),
            {"mac": MAC_ADDRESS}, warned_by=CAPABILITIES, mac=OTHER_MAC),
    PodCase("bridge-args-mac", one(bridge("mwbr12", "10.87.0.0/24", args={"cni": {"mac": OTHER_MAC}})),
            {"mac": MAC_ADDRESS}, warned_by=CAPABILITIES, mac=OTHER_MAC, kernel=frozenset({"bridge"})),
    PodCase("bridge-cni-args-mac-over-pod-mac", one(bridge("mwbr12", "10.87.0.0/24")),
            {"mac": MAC_ADDRESS, "cni-args": {"mac": OTHER_MAC}}, warned_by=CAPABILITIES, mac=OTHER_MAC,
            kernel=frozenset({"bridge"})),
    # bridge's literal runtimeConfig.mac comes after the pod's cni-args mac, unless a declared capability the
    # pod fills (its ips) replaces the literal runtimeConfig: bridge then reads the cni-args one.
    PodCase("bridge-cni-args-mac-under-literal-runtime-config-mac",
            one(bridge("mwbr12", "10.87.0.0/24", runtimeConfig={"mac": OTHER_MAC}, capabilities={"ips": True})),
            {"cni-args": {"mac": "zz"}}, mac=OTHER_MAC, kernel=frozenset({"bridge"})),
    PodCase("bridge-cni-args-mac-literal-runtime-config-mac-replaced-by-ips",
            one(bridge("mwbr12", "10.87.0.0/24", runtimeConfig={"mac": OTHER_MAC}, capabilities={"ips": True})),
            {"ips": ["10.87.0.7"], "cni-args": {"mac": "zz"}}, "invalid MAC address", denied_by=TUNING_ARGS,
            kernel=frozenset({"bridge"})),
    # A literal runtimeConfig under a key sorting before "runtimeConfig" ("RuntimeConfig") loses the members a
    # pod fills through a declared capability (libcni sorts the keys; each plugin decodes the spellings into
    # one struct, member by member); one sorting after it ("runtimeconfig") wins over them.
    *(case for key in ("RuntimeConfig", "RUNTIMECONFIG") for case in (
        PodCase(f"host-local-{key}-ips-under-ips-capability",
                one(hl(HL10, capabilities={"ips": True}) | {key: {"ips": ["10.10.0.5"]}}), {"ips": ["10.10.0.7/24"]}),
        *(PodCase(f"{name}-{key}-mac-under-mac-capability",
                  config({key: {"mac": OTHER_MAC}, "capabilities": {"mac": True}}), {"mac": MAC_ADDRESS}, kernel=kernel)
          for name, config, kernel in MAC_PLUGINS))),
    PodCase("host-local-runtimeconfig-ips-over-ips-capability",
            one(hl(HL10, capabilities={"ips": True}) | {"runtimeconfig": {"ips": ["10.10.0.5"]}}),
            {"ips": ["10.10.0.7/24"]}, "failed to allocate all requested IPs", denied_by=HOST_LOCAL_IPS),
    *(PodCase(f"{name}-runtimeconfig-mac-over-mac-capability",
              config({"runtimeconfig": {"mac": OTHER_MAC}, "capabilities": {"mac": True}}), {"mac": MAC_ADDRESS},
              warned_by=CAPABILITIES, mac=OTHER_MAC, kernel=kernel) for name, config, kernel in MAC_PLUGINS),
    PodCase("bridge-args-mac-capability",
            one(bridge("mwbr12", "10.87.0.0/24", args={"cni": {"mac": OTHER_MAC}}, capabilities={"mac": True})),
            {"mac": MAC_ADDRESS}, kernel=frozenset({"bridge"})),
    # static reads an IPv4-mapped CIDR as IPv4: ::ffff:10.83.0.7/120 is 10.83.0.7/24.
    PodCase("static-cni-args-ips-mapped", one(macvlan({"type": "static"})),
            {"cni-args": {"ips": ["::ffff:10.83.0.7/120"]}}),
    # args.cni.ips replaces both the NAD's addresses and those of IP=.
    PodCase(
        "static-args-ips-and-ips",
        one(macvlan({"type": "static", "addresses": [{"address": "10.81.0.5/24"}]},
                    args={"cni": {"ips": ["10.81.0.9/24"]}})),
        {"ips": ["10.81.0.7/24"]},
        warned_by=EXTRA,
        addresses=("10.81.0.9",),
    ),
    # static takes args.cni.ips, where Multus merges cni-args, as CIDRs, every spelling ("IPs" < "ips").
    PodCase("static-cni-args-ips-not-cidr", one(macvlan({"type": "static"})), {"cni-args": {"ips": ["10.82.0.7"]}},
            "an entry in the 'ips' field is NOT in CIDR notation", denied_by=CNI_ARGS_IPS),
    PodCase("static-cni-args-ips-string", one(macvlan({"type": "static"})), {"cni-args": {"IPs": "10.82.0.7/24"}},
            "cannot unmarshal string", denied_by=CNI_ARGS_IPS),
    # The NAD's "ips" sorts after the pod's "IPs" and replaces it: static never parses the pod's.
    PodCase("static-cni-args-ips-not-cidr-replaced-by-nad-spelling",
            one(macvlan({"type": "static"}, args={"cni": {"ips": ["10.83.0.9/24"]}})),
            {"cni-args": {"IPs": ["10.83.0.7"]}}),
    # The pod's "IPs" replace the NAD's own address as "ips" would: the pod gets only what it requests.
    PodCase("static-cni-args-ips-other-spelling-replace-own-address",
            one(macvlan({"type": "static", "addresses": [{"address": "10.84.0.5/24"}]})),
            {"ips": ["10.84.0.7/24"], "cni-args": {"IPs": ["10.84.0.7/24"]}}),
    # host-local allocates args.cni.ips, where Multus merges cni-args, from its ranges, every spelling.
    PodCase("host-local-cni-args-ips", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            {"cni-args": {"ips": ["10.85.0.7"]}}),
    PodCase("host-local-cni-args-ips-outside", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            {"cni-args": {"ips": ["10.86.0.7"]}}, "failed to allocate all requested IPs: 10.86.0.7",
            denied_by=CNI_ARGS_IPS),
    PodCase("host-local-cni-args-IPs-other-family", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            {"cni-args": {"IPs": ["fd00:85::7"]}}, "failed to allocate all requested IPs: fd00:85::7",
            denied_by=CNI_ARGS_IPS),
    PodCase("host-local-cni-args-ips-unparsable", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            {"cni-args": {"ips": ["10.85.0.07"]}}, "invalid IP address 10.85.0.07", denied_by=CNI_ARGS_IPS),
    PodCase("host-local-cni-args-ips-null-entry", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            {"cni-args": {"ips": [None]}}, "nil pointer dereference", denied_by=CNI_ARGS_IPS),
    PodCase("host-local-cni-args-ips-gateway", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            {"cni-args": {"ips": ["10.85.0.1"]}}, "requested ip 10.85.0.1 is subnet's gateway", denied_by=CNI_ARGS_IPS),
    PodCase("host-local-cni-args-ips-two-in-one-range-set", one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]])),
            # Which address is left over is Go's map order: either.
            {"cni-args": {"ips": ["10.85.0.7", "10.85.0.8"]}}, "failed to allocate all requested IPs: 10.85.0.",
            denied_by=CNI_ARGS_IPS),
    # The NAD's "ips" sorts after the pod's "IPs" and replaces it: host-local never sees the pod's.
    PodCase("host-local-cni-args-IPs-outside-replaced-by-nad-ips",
            one(hl(ranges=[[{"subnet": "10.85.0.0/24"}]], args={"cni": {"ips": ["10.85.0.9"]}})),
            {"cni-args": {"IPs": ["10.86.0.7"]}}),
    # Multus merges cni-args into args.cni of every plugin; tuning copies args.cni.sysctl into its sysctl.
    PodCase("tuning-cni-args-sysctl", chain(macvlan(), {"type": "tuning", "sysctl": {}}),
            {"cni-args": {"sysctl": ARP_FILTER}}),
    PodCase(
        "tuning-cni-args-sysctl-without-sysctl",
        chain(macvlan(), {"type": "tuning"}),
        {"cni-args": {"sysctl": ARP_FILTER}},
        "assignment to entry in nil map",
        denied_by="pod-networks-cni-args-sysctl",
    ),
    PodCase(
        "tuning-cni-args-kernel-sysctl",
        chain(macvlan(), {"type": "tuning", "sysctl": {}}),
        {"cni-args": {"sysctl": {"kernel.shmmax": "1"}}},
        "invalid net sysctl key",
        denied_by="pod-networks-cni-args-sysctl",
    ),
    # Multus re-encodes args.cni with its keys sorted ("SYSCTL" < "Sysctl" < "sysctl"); tuning decodes every
    # spelling into one map in that order: objects add their entries, null empties it.
    PodCase(
        "tuning-cni-args-sysctl-beside-nad-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {"Sysctl": ARP_FILTER}}}),
        {"cni-args": {"sysctl": ARP_IGNORE}},
        sysctls={"arp_filter": "1", "arp_ignore": "2"},
    ),
    PodCase(
        "tuning-cni-args-kernel-sysctl-beside-nad-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {"sysctl": ARP_FILTER}}}),
        {"cni-args": {"SYSCTL": {"kernel.shmmax": "1"}}},
        "invalid net sysctl key",
        denied_by="pod-networks-cni-args-sysctl",
    ),
    PodCase(
        "tuning-cni-args-sysctl-replaced-by-nad-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {},
                          "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"}}}}),
        {"cni-args": {"Sysctl": ARP_IGNORE}},
        warned_by="pod-networks-cni-args-sysctl",
        sysctls={"arp_ignore": "1"},
    ),
    # The NAD's null sorts after the pod's "Sysctl": nothing to copy into the missing sysctl, no crash.
    PodCase(
        "tuning-cni-args-sysctl-emptied-by-nad-null",
        chain(macvlan(), {"type": "tuning", "args": {"cni": {"sysctl": None}}}),
        {"cni-args": {"Sysctl": ARP_FILTER}},
        warned_by="pod-networks-cni-args-sysctl",
        sysctls={"arp_filter": "0"},
    ),
    PodCase(
        "tuning-cni-args-kernel-sysctl-emptied-by-nad-null",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "args": {"cni": {"sysctl": None}}}),
        {"cni-args": {"Sysctl": {"kernel.shmmax": "1"}}},
        warned_by="pod-networks-cni-args-sysctl",
    ),
    PodCase(
        "tuning-cni-args-sysctl-string",
        chain(macvlan(), {"type": "tuning", "sysctl": {}}),
        {"cni-args": {"sysctl": "x"}},
        "failed to load netconf",
        denied_by="pod-networks-cni-args-sysctl",
    ),
    # Multus sets the cni-args in "args" and its "cni" by exact key, adding them beside a NAD's "Args" or
    # "CNI"; tuning decodes every spelling in sorted order, so the NAD's entries there still count.
    PodCase(
        "tuning-cni-args-sysctl-beside-nad-args-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {},
                          "Args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"}}}}),
        {"cni-args": {"sysctl": ARP_FILTER}},
        sysctls={"arp_filter": "1", "arp_ignore": "1"},
    ),
    PodCase(
        "tuning-cni-args-sysctl-beside-nad-cni-spelling",
        chain(macvlan(), {"type": "tuning", "sysctl": {},
                          "args": {"CNI": {"sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"}}}}),
        {"cni-args": {"sysctl": ARP_FILTER}},
        sysctls={"arp_filter": "1", "arp_ignore": "1"},
    ),
    # The NAD's "Args" gives another spelling of the pod's sysctl: tuning writes the two in random order.
    PodCase(
        "tuning-cni-args-sysctl-other-key-spelling-under-nad-args",
        chain(macvlan(), {"type": "tuning", "sysctl": {},
                          "Args": {"cni": {"sysctl": {"net/ipv4/conf/IFNAME/arp_ignore": "1"}}}}),
        {"cni-args": {"sysctl": ARP_IGNORE}},
        warned_by="pod-networks-cni-args-sysctl",
    ),
    # "arg\u017f" folds to "args" (Go's simple folding) and sorts after it: its null drops the pod's sysctl.
    PodCase(
        "tuning-cni-args-kernel-sysctl-dropped-by-later-nad-args-null",
        chain(macvlan(), {"type": "tuning", "sysctl": {}, "arg\u017f": None}),
        {"cni-args": {"sysctl": {"kernel.shmmax": "1"}}},
        warned_by="pod-networks-cni-args-sysctl",
    ),
    # tuning reads args.cni's mac, promisc, mtu, allmulti and txQLen into typed pointers, every spelling in
    # sorted order: a mistyped one fails the decode of its config, even when a later one replaces it.
    PodCase("tuning-cni-args-fields", chain(macvlan(), {"type": "tuning"}),
            {"cni-args": {"mac": MAC_ADDRESS, "mtu": 1400, "promisc": True, "allmulti": True, "txQLen": 500}}),
    PodCase("tuning-cni-args-mtu-string", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"mtu": "x"}},
            "failed to load netconf", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-promisc-string", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"promisc": "yes"}},
            "failed to load netconf", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-allmulti-number", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"allmulti": 1}},
            "failed to load netconf", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-txqlen-fraction", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"txQLen": 1.5}},
            "failed to load netconf", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-mac-number", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"mac": 5}},
            "failed to load netconf", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-mac-unreadable", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"mac": "zz"}},
            "invalid MAC address", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-mtu-string-under-earlier-spelling", chain(macvlan(), {"type": "tuning"}),
            {"cni-args": {"MTU": "x", "mtu": 1400}}, "failed to load netconf", denied_by=TUNING_ARGS),
    PodCase("tuning-cni-args-mtu-negative", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"mtu": -1}},
            "invalid argument", denied_by=TUNING_ARGS),
    # The pod's args.cni.mtu replaces the NAD's own (which nad-plugin-mtu refuses): no pod is worse off.
    PodCase("tuning-cni-args-mtu-replaces-negative-own", chain(macvlan(), {"type": "tuning", "mtu": -1}),
            {"cni-args": {"mtu": 1400}}),
    # Multus decodes the cni-args into float64s and encodes them again: 1400.0 reaches tuning as 1400.
    PodCase("tuning-cni-args-mtu-integral-float", chain(macvlan(), {"type": "tuning"}), {"cni-args": {"MTU": 1400.0}}),
    # The NAD's "mac" sorts after the pod's "Mac" and replaces it before tuning reads it.
    PodCase("tuning-cni-args-mac-unreadable-replaced-by-nad-spelling",
            chain(macvlan(), {"type": "tuning", "args": {"cni": {"mac": MAC_ADDRESS}}}), {"cni-args": {"Mac": "zz"}}),
    # Multus passes portMappings as runtimeConfig to the plugins declaring the capability, a null entry as
    # null; portmap decodes that as zeros and refuses ports not above 0 before it looks for a backend.
    PodCase("portmap-null-entry", chain(macvlan(), PORTMAP), {"portMappings": [None]},
            "Invalid container port number: 0", denied_by=PORTS),
    PodCase("portmap-empty-entry", chain(macvlan(), PORTMAP), {"portMappings": [{}]},
            "Invalid container port number: 0", denied_by=PORTS),
    PodCase("portmap-host-port-0", chain(macvlan(), PORTMAP),
            {"portMappings": [{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}]},
            "Invalid host port number: 0", denied_by=PORTS),
    PodCase("portmap-negative-container-port", chain(macvlan(), PORTMAP),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                              {"hostPort": 8081, "containerPort": -1, "protocol": "udp"}]},
            "Invalid container port number: -1", denied_by=PORTS),
    # A null entry of an earlier portMappings that a later one replaces never reaches portmap.
    PodCase("portmap-null-entry-replaced", chain(macvlan(), PORTMAP),
            {"portMappings": [None], "PortMappings": []}),
    # No plugin declares the capability: Multus passes the entries to none, and the pod starts.
    PodCase("portmap-null-entry-no-capability", chain(macvlan(), {"type": "portmap"}),
            {"portMappings": [None]}, ignored=True),
    PodCase("portmap-mapping", chain(macvlan(), PORTMAP),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}, portmap_backend=True),
    # Past portmap's own check, the backend refuses the port in its rule (each in its own words).
    PodCase("portmap-host-port-above-65535", chain(macvlan(), PORTMAP),
            {"portMappings": [{"hostPort": 70000, "containerPort": 80, "protocol": "tcp"}]}, "",
            denied_by=PORTS, portmap_backend=True),
    # The protocol goes as it is into the backend's rule: none fails both; nftables has lowercase keywords.
    PodCase("portmap-iptables-no-protocol", chain(macvlan(), {**PORTMAP, "backend": "iptables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80}]}, 'unknown protocol "" specified',
            denied_by=PORTS, portmap_backend=True),
    PodCase("portmap-nftables-no-protocol", chain(macvlan(), {**PORTMAP, "backend": "nftables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80}]}, "No symbol type information",
            denied_by=PORTS, portmap_backend=True),
    PodCase("portmap-nftables-upper-case-protocol", chain(macvlan(), {**PORTMAP, "backend": "nftables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP"}]}, "syntax error",
            denied_by=PORTS, portmap_backend=True),
    PodCase("portmap-iptables-upper-case-protocol", chain(macvlan(), {**PORTMAP, "backend": "iptables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP"}]}, portmap_backend=True),
    PodCase("portmap-iptables-icmp", chain(macvlan(), {**PORTMAP, "backend": "iptables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "icmp"}]}, '"--dport"',
            denied_by=PORTS, portmap_backend=True),
    PodCase("portmap-nftables-udplite", chain(macvlan(), {**PORTMAP, "backend": "nftables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "udplite"}]},
            portmap_backend=True),
    PodCase("portmap-iptables-protocol-number", chain(macvlan(), {**PORTMAP, "backend": "iptables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "6"}]}, portmap_backend=True),
    # Without an address from an IPAM earlier in the chain portmap calls no backend: only its own check
    # of the ports (above 0) applies.
    PodCase("portmap-no-address-reaches-no-backend",
            chain({"type": "macvlan", "master": MASTER}, {**PORTMAP, "backend": "iptables"}),
            {"portMappings": [{"hostPort": 70000, "containerPort": 80, "protocol": "icmp"}]}, portmap_backend=True),
    # iptables skips the containerPort's rule of an entry whose hostIP is of the other family (IPv4 pod).
    PodCase("portmap-iptables-other-family-host-ip", chain(macvlan(), {**PORTMAP, "backend": "iptables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 70000, "protocol": "tcp", "hostIP": "fd00::1"}]},
            warned_by=PORTS, portmap_backend=True),
    # nftables skips an entry whose hostIP is of the other family than the pod's address (IPv4 here).
    PodCase("portmap-nftables-other-family-host-ip", chain(macvlan(), {**PORTMAP, "backend": "nftables"}),
            {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "TCP", "hostIP": "2001:db8::1"}]},
            warned_by=PORTS, portmap_backend=True),
    # Each backend's options with a port to map: the rules are written with them.
    PodCase("portmap-iptables-options", chain(macvlan(), {**PORTMAP, "backend": "iptables", "markMasqBit": 31,
                                                          "conditionsV4": ["!", "-s", "10.99.0.0/16"],
                                                          "masqAll": True}),
            MAPPING, netfilter=IPTABLES),
    PodCase("portmap-iptables-no-snat", chain(macvlan(), {**PORTMAP, "backend": "iptables", "snat": False}),
            MAPPING, netfilter=IPTABLES),
    # The rules jump to externalSetMarkChain: the node must have it (kube-proxy's, in its iptables mode).
    PodCase("portmap-iptables-external-mark-chain",
            chain(macvlan(), {**PORTMAP, "backend": "iptables", "externalSetMarkChain": "KUBE-MARK-MASQ"}),
            MAPPING, netfilter=IPTABLES, nat_chains=("KUBE-MARK-MASQ",)),
    # A null markMasqBit stays unset: not set together with externalSetMarkChain.
    PodCase("portmap-mark-bit-null-and-chain",
            chain(macvlan(), {**PORTMAP, "markMasqBit": None, "externalSetMarkChain": "KUBE-MARK-MASQ"}),
            MAPPING, netfilter=IPTABLES, nat_chains=("KUBE-MARK-MASQ",)),
    # markMasqBit is not an iptables-specific option: nftables takes it (and does not use it).
    PodCase("portmap-nftables-options", chain(macvlan(), {**PORTMAP, "backend": "nftables", "markMasqBit": 5,
                                                          "conditionsV4": ["ip", "saddr", "10.0.0.0/8"],
                                                          "masqAll": True}),
            MAPPING, netfilter=NFT),
    PodCase("portmap-nftables-no-snat", chain(macvlan(), {**PORTMAP, "backend": "nftables", "snat": False}),
            MAPPING, netfilter=NFT),
    # A null externalSetMarkChain stays unset: not an iptables option.
    PodCase("portmap-nftables-mark-chain-null",
            chain(macvlan(), {**PORTMAP, "backend": "nftables", "externalSetMarkChain": None}),
            MAPPING, netfilter=NFT),
    # Without a backend: iptables here, which takes iptables conditions (the NAD rule warns of the nodes
    # that have nftables only).
    PodCase("portmap-default-backend-iptables-conditions",
            chain(macvlan(), {**PORTMAP, "conditionsV4": ["!", "-s", "10.99.0.0/16"]}),
            MAPPING, netfilter=IPTABLES, portmap_iptables=True),
    # An empty condition (null decodes as "") is an argument of its own to iptables, which refuses it;
    # nftables joins the conditions with spaces. Warned only: a pod without an address of that family starts.
    PodCase("portmap-iptables-empty-condition",
            chain(macvlan(), {**PORTMAP, "backend": "iptables", "conditionsV4": ["-s", "10.0.0.0/8", ""]}),
            MAPPING, "Bad argument", warned_by=PORTS, netfilter=IPTABLES),
    PodCase("portmap-default-backend-null-condition", chain(macvlan(), {**PORTMAP, "conditionsV4": [None]}),
            MAPPING, "Bad argument", warned_by=PORTS, netfilter=IPTABLES, portmap_iptables=True),
    PodCase("portmap-iptables-empty-condition-other-family",
            chain(macvlan(), {**PORTMAP, "backend": "iptables", "conditionsV6": [""]}),
            MAPPING, warned_by=PORTS, netfilter=IPTABLES),
    PodCase("portmap-nftables-empty-condition",
            chain(macvlan(), {**PORTMAP, "backend": "nftables", "conditionsV4": ["", "ip saddr 10.0.0.0/8"]}),
            MAPPING, netfilter=NFT),
]


def multus_delegate(real_multus: RealMultus, config: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The delegate the real Multus v4.3.0 makes for a pod whose selection of NAD net1 of its own namespace
    is ``request``, the NAD read from a real apiserver: its config, with the selection's "cni-args" set in
    args.cni of every plugin (injectCNIArgs) and the whole encoded again from Go maps, and the requests it
    passes as runtime config (portMappings as Go decoded them, a null entry kept as null)."""
    annotation = json.dumps([{"name": "net1", **request}])
    real = real_multus(annotation, [{"name": "net1", "config": json.dumps(config)}])
    assert "error" not in real, real
    [delegate] = real["delegates"]
    found: dict[str, Any] = delegate
    return found


def through_multus(real_multus: RealMultus, config: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The config as the real Multus v4.3.0 hands it to libcni (see multus_delegate)."""
    merged: dict[str, Any] = json.loads(multus_delegate(real_multus, config, request)["config"])
    return merged


def _portmap_has_backend() -> bool:
    """Whether portmap finds a backend to write its rules with: iptables or nft installed."""
    return shutil.which("iptables") is not None or shutil.which("nft") is not None


def pod_findings(config: dict[str, Any], request: dict[str, Any]) -> dict[tuple[str, Severity], list[str]]:
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "net1", "namespace": "default"}, "spec": {"config": json.dumps(config)}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "annotations": {
        "k8s.v1.cni.cncf.io/networks": json.dumps([{"name": "net1", **request}])}}, "spec": {"containers": []}}
    found: dict[tuple[str, Severity], list[str]] = {}
    for f in evaluate(Subject(pod, "Pod", view=StaticClusterView([nad])), Policy()):
        if f.rule in POD_RULES:
            found.setdefault((f.rule, f.severity), []).append(f.message)
    return found


def _interface(box: Sandbox) -> dict[str, Any]:
    out = subprocess.run(["ip", "-n", box.pod, "-j", "addr", "show", "net1"], check=True, capture_output=True,
                         text=True)
    link: dict[str, Any] = json.loads(out.stdout)[0]
    return link


@pytest.mark.parametrize("case", POD_CASES, ids=[c.id for c in POD_CASES])
def test_pod_requests_reach_the_real_plugin_as_the_rules_say(
    case: PodCase, cni_bin: Path, kernel_lacks: dict[str, str], sandbox: Sandbox, real_multus: RealMultus
) -> None:
    found = pod_findings(case.config, case.request)
    expected: set[tuple[str, Severity]] = set()
    if case.warned_by is not None:
        expected = {(case.warned_by, Severity.WARN)}
    elif case.refused_with is not None:
        expected = {(case.denied_by, Severity.DENY)}
    elif case.ignored:
        expected = {("pod-networks-capabilities", Severity.WARN)}
    assert set(found) == expected, found
    skip_unless_kernel_has(case.kernel, kernel_lacks)
    if case.portmap_backend and not _portmap_has_backend():
        # A skip under CI=true too: iptables and nft are the machine's, not something the tests install.
        pytest.skip("neither iptables nor nft is installed: portmap cannot write the port mappings' rules here")
    skip_unless_netfilter(case.netfilter)
    if case.portmap_iptables and not _portmap_takes_iptables():
        pytest.skip("portmap takes nftables here (no working iptables, nftables present): it refuses the config")
    for name in case.nat_chains:
        ip("netns", "exec", sandbox.host, "iptables", "-w", "-t", "nat", "-N", name)
    delegate = multus_delegate(real_multus, case.config, case.request)
    config = json.loads(delegate["config"])
    cap_args = {k: v for k, v in case.request.items() if k != "cni-args" and fold(k) != "portmappings"}
    if delegate["portMappings"]:
        cap_args["portMappings"] = delegate["portMappings"]  # as Multus passes them (CreateCNIRuntimeConf)
    outcome = run_add(config, sandbox, cni_bin, "net1", cap_args)
    if case.refused_with is not None:
        assert not outcome.accepted, f"the plugin accepted what the rules refuse: {found}"
        assert case.refused_with in outcome.error, f"refused for another reason: {outcome.error}"
        return
    assert outcome.accepted, f"the plugin refused what the rules allow: {outcome.error}"
    link = _interface(sandbox)
    addresses = {a["local"] for a in link["addr_info"] if a.get("scope") == "global"}
    if case.mac is not None:
        assert link["address"] == case.mac, link["address"]
    elif "mac" in case.request:
        assert (link["address"] == case.request["mac"]) != case.ignored, link["address"]
    if "ips" in case.request:
        requested = {ip.split("/")[0] for ip in case.request["ips"]}
        assert addresses == set(case.addresses if case.addresses is not None else requested), addresses
    for name, value in (case.sysctls or {}).items():
        out = subprocess.run(["ip", "netns", "exec", sandbox.pod, "cat", f"/proc/sys/net/ipv4/conf/net1/{name}"],
                             check=True, capture_output=True, text=True)
        assert out.stdout.strip() == value, f"{name} is {out.stdout.strip()}, not {value}"


# --- a pod's cni-args and the NAD's args, which Multus merges them into -------------------------------

CNI_ARGS_RULE = "pod-networks-cni-args-nad-args"
#: What a plugin of the NAD has as "args": Multus v4.3.0's injectCNIArgs reads "args" and its "cni" by
#: exact key and asserts each it finds is an object, panicking otherwise; it adds them when missing and
#: leaves other spellings alone.
NAD_ARGS = {
    "args-string": {"args": "x"},
    "args-null": {"args": None},
    "args-list": {"args": []},
    "args-cni-number": {"args": {"cni": 5}},
    "args-cni-null": {"args": {"cni": None}},
    "args-empty": {"args": {}},
    "args-cni-empty": {"args": {"cni": {}}},
    "args-cni-object": {"args": {"cni": {"a": "b"}}},
    "other-spelling-Args-string": {"Args": "x"},
    "other-spelling-CNI-number": {"args": {"CNI": 5}},
}
#: Merged into a plugin that reads no args (Multus merges into every plugin), alone or second in a list.
NAD_SHAPES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "single": lambda args: one({**macvlan(), **args}),
    "list": lambda args: chain(macvlan(), {"type": "bandwidth", **args}),
}
#: A selection's "cni-args": Multus merges an empty object too, and nothing for null.
SELECTION_CNI_ARGS = {"object": {"cni-args": {"k": "v"}}, "empty": {"cni-args": {}}, "null": {"cni-args": None}}


@pytest.mark.parametrize("cni_args", SELECTION_CNI_ARGS)
@pytest.mark.parametrize("shape", NAD_SHAPES)
@pytest.mark.parametrize("nad_args", NAD_ARGS)
def test_pod_cni_args_merge_into_the_nad_args_as_the_rule_says(
    nad_args: str, shape: str, cni_args: str, real_multus: RealMultus
) -> None:
    config, request = NAD_SHAPES[shape](NAD_ARGS[nad_args]), SELECTION_CNI_ARGS[cni_args]
    denied = pod_findings(config, request).get((CNI_ARGS_RULE, Severity.DENY), [])
    real = real_multus(json.dumps([{"name": "net1", **request}]), [{"name": "net1", "config": json.dumps(config)}])
    panicked = real.get("stage") == "delegates" and real.get("error", "").startswith("panic: ")
    assert bool(denied) == panicked, (denied, real)
    if not panicked:
        assert "error" not in real, real
