"""The nad-plugin-* rules: one allowed and one refused config (at least) per rule, message checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.cni.addresses import parse_mac
from webhook.cni.plugins import sysctl_key_problem
from webhook.rules import Finding, Policy, Severity, Subject, evaluate

NAD = "NetworkAttachmentDefinition"
STATIC = {"type": "static", "addresses": [{"address": "10.1.0.5/24"}]}


def nad(config: Any, annotations: dict[str, str] | None = None) -> Subject:
    meta = {"name": "net1", "namespace": "default", "annotations": annotations or {}}
    return Subject({"metadata": meta, "spec": {"config": json.dumps(config)}}, NAD)


def findings(subject: Subject, rule: str) -> list[Finding]:
    return [f for f in evaluate(subject, Policy()) if f.rule == rule]


def single(plugin: dict[str, Any]) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", **plugin}


def chain(*plugins: dict[str, Any]) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "n", "plugins": list(plugins)}


MACVLAN = {"type": "macvlan", "master": "eth0", "ipam": STATIC}

REFUSED = [
    # (rule, config, field, text in message)
    ("nad-plugin-sbr-gateways", chain(MACVLAN, {"type": "sbr", "gateways": ["nope"]}),
     "spec.config.plugins[1].gateways[0]", "is the string 'nope', not an IP address: the sbr plugin fails every pod"),
    ("nad-plugin-sbr-gateways", chain(MACVLAN, {"type": "sbr", "gateways": [None]}),
     "spec.config.plugins[1].gateways[0]", "is null, not an IP address"),
    ("nad-plugin-sbr-gateways", chain(MACVLAN, {"type": "sbr", "gateways": ["10.1.0.1", "::ffff:10.1.0.2"]}),
     "spec.config.plugins[1].gateways[1]", "is a second IPv4 gateway, after spec.config.plugins[1].gateways[0]"),
    ("nad-plugin-sbr-gateways", chain(MACVLAN, {"type": "sbr", "gateways": ["10.1.0.1", "fd00::1", "fd00::2"]}),
     "spec.config.plugins[1].gateways", "holds 3 gateways: the sbr plugin takes at most two"),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "markMasqBit": 32}),
     "spec.config.plugins[1].markMasqBit", "is 32: the portmap plugin takes a bit of the 32-bit packet mark, 0 to 31"),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "markMasqBit": 5, "externalSetMarkChain": "KUBE-MARK"}),
     "spec.config.plugins[1].markMasqBit",
     "and spec.config.plugins[1].externalSetMarkChain are both set: the portmap plugin refuses them together"),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "backend": "ebpf"}), "spec.config.plugins[1].backend",
     "is 'ebpf': the portmap plugin knows only iptables and nftables"),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "backend": "nftables", "externalSetMarkChain": "X"}),
     "spec.config.plugins[1].externalSetMarkChain",
     "is an iptables option, but spec.config.plugins[1].backend is 'nftables'"),
    ("nad-plugin-portmap",
     chain(MACVLAN, {"type": "portmap", "backend": "iptables", "conditionsV6": ["ip6 saddr ::1"]}),
     "spec.config.plugins[1].conditionsV6", "is an nftables option, but spec.config.plugins[1].backend is 'iptables'"),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "zz:11"}), "spec.config.mac",
     "is 'zz:11', not a MAC address: the macvlan plugin reads 02:00:5e:00:53:01, 02-00-5e-00-53-01, "
     "0200.5e00.5301 or 02005e005301; it fails every pod that does not request a MAC of its own"),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "01:00:5e:00:00:01"}), "spec.config.mac",
     "a multicast address (the lowest bit of its first byte is set), which a macvlan interface refuses"),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "00-00-00-00-00-00"}), "spec.config.mac", "all zeros"),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "02:00:5e:10:00:00:00:01"}), "spec.config.mac",
     "8 bytes long, but a macvlan interface takes a 6-byte Ethernet address"),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "02:00:00:00:00:01", "runtimeConfig": {"mac": "x"}}),
     "spec.config.runtimeConfig.mac", "is 'x', not a MAC address"),
    # macvlan reads the literal runtimeConfig.mac after the MAC= a pod's mac gives: only a declared capability
    # that gets a value replaces it (test_a_literal_runtime_config_mac_a_capability_may_replace_is_a_warning).
    ("nad-plugin-mac", single({**MACVLAN, "runtimeConfig": {"mac": "x"}}),
     "spec.config.runtimeConfig.mac", "02005e005301; it fails every pod; fix it"),
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "mac": "not-a-mac"}), "spec.config.plugins[1].mac",
     "the tuning plugin reads"),
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "args": {"cni": {"mac": "02:00"}}}),
     "spec.config.plugins[1].args.cni.mac", "; it fails every pod; fix it"),
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "args": {"cni": {"MAC": 5, "mac": "02:00:00:00:00:01"}}}),
     "spec.config.plugins[1].args.cni.MAC", "is the number 5, but the tuning plugin reads args.cni.mac as a string: "
     "it fails to load its config and fails every pod"),
    # bridge sets a non-empty runtimeConfig.mac, else a non-empty args.cni.mac, on its container's veth.
    ("nad-plugin-mac", single({"type": "bridge", "bridge": "br0", "args": {"cni": {"mac": "zz"}}}),
     "spec.config.args.cni.mac", "is 'zz', not a MAC address: the bridge plugin reads 02:00:5e:00:53:01"),
    ("nad-plugin-mac", single({"type": "bridge", "bridge": "br0", "args": {"cni": {"MAC": "zz", "mac": None}}}),
     "spec.config.args.cni.MAC", "is 'zz', not a MAC address"),
    ("nad-plugin-mac", single({"type": "bridge", "bridge": "br0", "runtimeConfig": {"mac": "zz"},
                               "args": {"cni": {"mac": "02:00:00:00:00:01"}}}),
     "spec.config.runtimeConfig.mac", "is 'zz', not a MAC address"),
    ("nad-plugin-mac", single({"type": "bridge", "bridge": "br0", "args": {"cni": {"mac": "03:00:00:00:00:01"}}}),
     "spec.config.args.cni.mac", "a multicast address (the lowest bit of its first byte is set), which the "
     "container's veth the bridge plugin makes refuses"),
    # Every spelling of args is decoded into one struct, in sorted order: "args" adds nothing to "Args".
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "Args": {"cni": {"mac": "02:00"}}, "args": {}}),
     "spec.config.plugins[1].Args.cni.mac", "; it fails every pod; fix it"),
    # tap without an owner and a group sets the address with `ip link set address`.
    ("nad-plugin-mac", single({"type": "tap", "mac": "02-00-00-00-00-01", "ipam": STATIC}), "spec.config.mac",
     "`ip link set address`, which the tap plugin runs, reads six hex bytes"),
    ("nad-plugin-mac", single({"type": "tap", "mac": "01:0:0:0:0:1", "ipam": STATIC}), "spec.config.mac",
     "which a tap interface refuses"),
    ("nad-plugin-mac", single({"type": "tap", "mac": "zz:11", "owner": 0, "group": 0, "ipam": STATIC}),
     "spec.config.mac", "the tap plugin reads 02:00:5e:00:53:01"),
    # bridge's collectVlanTrunk.
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [{"id": 5000}]}), "spec.config.vlanTrunk[0].id",
     "is 5000: a trunk VLAN id must be from 1 to 4094"),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [{"id": 10}, {"id": 0}]}),
     "spec.config.vlanTrunk[1].id", "must be from 1 to 4094"),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [{"minID": 10}]}), "spec.config.vlanTrunk[0].minID",
     "is set but spec.config.vlanTrunk[0].maxID is not"),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [{"minID": None, "MaxID": 10}]}),
     "spec.config.vlanTrunk[0].MaxID", "is set but spec.config.vlanTrunk[0].minID is not"),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [{"minID": 20, "maxID": 10}]}),
     "spec.config.vlanTrunk[0].maxID", "is 10, below spec.config.vlanTrunk[0].minID (20)"),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [None]}), "spec.config.vlanTrunk[0]",
     "the bridge plugin crashes on a null trunk entry"),
    (
        "nad-plugin-bridge-interface-ipam",
        single({"type": "bridge", "disableContainerInterface": True, "ipam": STATIC}),
        "spec.config.disableContainerInterface",
        "is true, but spec.config.ipam.type is 'static': the bridge plugin refuses IPAM",
    ),
    (
        "nad-plugin-ipmasq-backend",
        single({"type": "bridge", "ipMasq": True, "ipMasqBackend": "pf", "ipam": STATIC}),
        "spec.config.ipMasqBackend",
        "is 'pf': the bridge plugin masquerades with iptables or nftables only",
    ),
    (
        "nad-plugin-ipmasq-backend",
        single({"type": "ptp", "ipMasq": True, "ipMasqBackend": "", "ipam": STATIC}),
        "spec.config.ipMasqBackend",
        "is '': the ptp plugin",
    ),
    # Lists are typed element by element, objects field by field.
    (
        "nad-plugin-field-types",
        single({"type": "bridge", "vlanTrunk": [5]}),
        "spec.config.vlanTrunk[0]",
        "the number 5, but the bridge plugin reads it as an object",
    ),
    (
        "nad-plugin-field-types",
        single({"type": "bridge", "vlanTrunk": [{"id": "5"}]}),
        "spec.config.vlanTrunk[0].id",
        "reads it as an integer",
    ),
    (
        "nad-plugin-field-types",
        chain(MACVLAN, {"type": "portmap", "conditionsV4": ["-s", 1]}),
        "spec.config.plugins[1].conditionsV4[1]",
        "the portmap plugin reads it as a string",
    ),
    (
        "nad-plugin-field-types",
        chain(MACVLAN, {"type": "sbr", "gateways": "10.1.0.1"}),
        "spec.config.plugins[1].gateways",
        "reads it as a list",
    ),
    (
        "nad-plugin-field-types",
        single({**MACVLAN, "mtu": "1500"}),
        "spec.config.mtu",
        "reads it as an integer",
    ),
    ("nad-plugin-field-types", single({**MACVLAN, "mtu": 1500.5}), "spec.config.mtu", "the number 1500.5"),
    # tuning's args.cni fields (IPAMArgs), under every spelling Go decodes, a later one not undoing the failure.
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "tuning", "args": {"cni": {"mtu": "x"}}}),
     "spec.config.plugins[1].args.cni.mtu", "is the string 'x', but the tuning plugin reads args.cni.mtu as an "
     "integer: it fails to load its config and fails every pod; write it as an integer"),
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "tuning", "args": {"cni": {"TxQLen": "x", "txQLen": 5}}}),
     "spec.config.plugins[1].args.cni.TxQLen", "the tuning plugin reads args.cni.txQLen as an integer"),
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "tuning", "Args": {"cni": {"promisc": "yes"}}, "args": {}}),
     "spec.config.plugins[1].Args.cni.promisc", "reads args.cni.promisc as true or false"),
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "tuning", "args": {"CNI": {"allmulti": 1}}}),
     "spec.config.plugins[1].args.CNI.allmulti", "reads args.cni.allmulti as true or false"),
    (
        "nad-plugin-field-types",
        single({"type": "vlan", "master": "eth0", "vlanId": 100.5}),
        "spec.config.vlanId",
        "the number 100.5, but the vlan plugin reads it as an integer",
    ),
    (
        "nad-plugin-field-types",
        chain(MACVLAN, {"type": "tuning", "txQLen": 1e21}),
        "spec.config.plugins[1].txQLen",
        "the number 1e+21",
    ),
    (
        "nad-plugin-field-types",
        single({"type": "bridge", "isGateway": "true"}),
        "spec.config.isGateway",
        "true or",
    ),
    (
        "nad-plugin-field-types",
        chain(MACVLAN, {"type": "bandwidth", "ingressRate": -1, "ingressBurst": 1}),
        "spec.config.plugins[1].ingressRate",
        "non-negative integer",
    ),
    # Go matches JSON keys to struct fields case-insensitively.
    ("nad-plugin-field-types", single({**MACVLAN, "MTU": "x"}), "spec.config.MTU", "reads it as an integer"),
    # A wrong type under any spelling fails the decode, even with a good one after it (Go reports the
    # type error once it has decoded the rest).
    (
        "nad-plugin-field-types",
        single({**MACVLAN, "MTU": "x", "mtu": 1400}),
        "spec.config.MTU",
        "reads it as an integer",
    ),
    (
        "nad-plugin-field-types",
        single({"type": "tap", "owner": -1, "ipam": STATIC}),
        "spec.config.owner",
        "non-negative integer below 2^32",
    ),
    # The type is read into a struct field, so "Type" names the plugin as well as "type" does.
    ("nad-plugin-ipam-required", single({"Type": "ptp"}), "spec.config.ipam", "always runs IPAM"),
    # The plugin gets its keys sorted ("MODE" < "mode"): "mode" wins wherever it was written.
    ("nad-plugin-mode", single({**MACVLAN, "mode": "l2", "MODE": "bridge"}), "spec.config.mode", "l2"),
    ("nad-plugin-mtu", single({**MACVLAN, "mtu": -1}), "spec.config.mtu", "refuses an mtu below 0"),
    (
        "nad-plugin-mtu",
        single({"type": "vlan", "master": "eth0", "mtu": -1500}),
        "spec.config.mtu",
        "the vlan plugin refuses an mtu below 0",
    ),
    (
        "nad-plugin-mtu",
        chain(MACVLAN, {"type": "tuning", "mtu": -1}),
        "spec.config.plugins[1].mtu",
        "the kernel, which refuses it, and fails every pod",
    ),
    ("nad-plugin-mtu", single({"type": "tap", "mtu": -1, "ipam": STATIC}), "spec.config.mtu", "`ip link set`"),
    # tuning's args.cni.mtu replaces its own when not nil.
    ("nad-plugin-mtu", chain(MACVLAN, {"type": "tuning", "args": {"CNI": {"mtu": -1}}}),
     "spec.config.plugins[1].args.CNI.mtu", "is -1: the tuning plugin hands it to the kernel"),
    ("nad-plugin-mtu", chain(MACVLAN, {"type": "tuning", "mtu": -1, "args": {"cni": {"MTU": 1400, "mtu": None}}}),
     "spec.config.plugins[1].mtu", "is -1"),
    (
        "nad-plugin-mtu",
        single({"type": "tap", "mtu": -1, "owner": 0, "group": 0, "selinuxContext": "system_u", "ipam": STATIC}),
        "spec.config.mtu",
        "leave mtu out to keep the default",
    ),
    (
        "nad-plugin-vlan-id",
        single({"type": "vlan", "master": "eth0", "vlanId": 4095}),
        "spec.config.vlanId",
        "0 to",
    ),
    (
        "nad-plugin-vlan-id",
        single({"type": "vlan", "master": "eth0", "vlanId": -1}),
        "spec.config.vlanId",
        "4094",
    ),
    (
        "nad-plugin-vlan-id",
        single({"type": "vlan", "master": "eth0", "vlanId": 100.5}),
        "spec.config.vlanId",
        "is the number 100.5: a VLAN id must be an integer",
    ),
    (
        "nad-plugin-vlan-id",
        single({"type": "bridge", "vlan": 5000.0}),
        "spec.config.vlan",
        "is 5000: a VLAN id must be from 0 to 4094",
    ),
    (
        "nad-plugin-vlan-id",
        single({"type": "bridge", "vlan": 5000}),
        "spec.config.vlan",
        "a VLAN id must be from 0",
    ),
    ("nad-plugin-vlan-master", single({"type": "vlan", "vlanId": 5}), "spec.config.master", "is missing"),
    (
        "nad-plugin-vlan-master",
        single({"type": "vlan", "master": ""}),
        "spec.config.master",
        "host interface",
    ),
    (
        "nad-plugin-bridge-hairpin-promisc",
        single({"type": "bridge", "hairpinMode": True, "promiscMode": True}),
        "spec.config.promiscMode",
        "keep only one of them",
    ),
    (
        "nad-plugin-mode",
        single({**MACVLAN, "mode": "l2"}),
        "spec.config.mode",
        "bridge, private, vepa, passthru",
    ),
    (
        "nad-plugin-mode",
        single({"type": "ipvlan", "mode": "bridge", "ipam": STATIC}),
        "spec.config.mode",
        "l3s",
    ),
    (
        "nad-plugin-mode",
        chain(MACVLAN, {"type": "firewall", "ingressPolicy": "closed"}),
        "spec.config.plugins[1].ingressPolicy",
        "is 'closed', not an ingress policy of the firewall plugin: use one of open, same-bridge, isolated",
    ),
    (
        "nad-plugin-field-types",
        chain(MACVLAN, {"type": "firewall", "ingressPolicy": 1}),
        "spec.config.plugins[1].ingressPolicy",
        "the firewall plugin reads it as a string",
    ),
    (
        "nad-plugin-host-device-selector",
        single({"type": "host-device", "ipam": STATIC}),
        "spec.config",
        "k8s.v1.cni.cncf.io/resourceName",
    ),
    ("nad-plugin-ipam-required", single({"type": "ptp"}), "spec.config.ipam", "always runs IPAM"),
    # bridge decodes args into a struct holding BridgeArgs (args.cni.mac, a string); tap into an empty one.
    ("nad-plugin-mac", single({"type": "bridge", "args": {"cni": {"mac": 5}}}), "spec.config.args.cni.mac",
     "the bridge plugin reads args.cni.mac as a string"),
    ("nad-plugin-field-types", single({"type": "bridge", "args": "x"}), "spec.config.args",
     "the bridge plugin reads it as an object"),
    ("nad-plugin-field-types", single({"type": "bridge", "ARGS": {"Cni": 5}}), "spec.config.ARGS.Cni",
     "the bridge plugin reads it as an object"),
    ("nad-plugin-field-types", single({"type": "tap", "args": [], "ipam": {"type": "dhcp"}}), "spec.config.args",
     "the tap plugin reads it as an object"),
    (
        "nad-plugin-ipam-required",
        single({"type": "dummy", "ipam": {}}),
        "spec.config.ipam",
        "add an ipam section",
    ),
    (
        "nad-plugin-ipam-required",
        chain({"type": "ipvlan", "master": "eth0"}),
        "spec.config.plugins[0].ipam",
        "previous plugin's result",
    ),
    (
        "nad-plugin-needs-previous-result",
        chain({"type": "portmap"}, MACVLAN),
        "spec.config.plugins[0].type",
        "first plugin of the list",
    ),
    ("nad-plugin-needs-previous-result", single({"type": "sbr"}), "spec.config.type", "is the whole config"),
    (
        "nad-plugin-vrf-name",
        chain(MACVLAN, {"type": "vrf"}),
        "spec.config.plugins[1].vrfname",
        "name of the VRF",
    ),
    (
        "nad-plugin-bandwidth-pairs",
        chain(MACVLAN, {"type": "bandwidth", "egressRate": 1000}),
        "spec.config.plugins[1].egressBurst",
        "egressRate is set but spec.config.plugins[1].egressBurst is not",
    ),
    (
        "nad-plugin-bandwidth-pairs",
        chain(MACVLAN, {"type": "bandwidth", "ingressBurst": 1000}),
        "spec.config.plugins[1].ingressRate",
        "set both (or neither)",
    ),
    (
        "nad-plugin-bandwidth-pairs",
        chain(MACVLAN, {"type": "bandwidth", "ingressRate": 1, "ingressBurst": 2**40}),
        "spec.config.plugins[1].ingressBurst",
        "more than the bandwidth plugin takes (at most 34359738359 bits",
    ),
    # The plugin refuses burst / 8 >= 2^32 - 1: the first refused burst is 8 * (2^32 - 1) bits.
    (
        "nad-plugin-bandwidth-pairs",
        chain(MACVLAN, {"type": "bandwidth", "egressRate": 1, "egressBurst": 8 * (2**32 - 1)}),
        "spec.config.plugins[1].egressBurst",
        "is 34359738360 bits, more than",
    ),
    (
        "nad-plugin-bandwidth-veth",
        chain(MACVLAN, {"type": "bandwidth", "egressRate": 10, "egressBurst": 10}),
        "spec.config.plugins[1]",
        "spec.config.plugins[0] is macvlan, whose pod interface has no veth peer: every pod fails",
    ),
    (
        "nad-plugin-bandwidth-veth",
        chain({"type": "tap", "ipam": STATIC}, {"type": "bandwidth", "ingressRate": 10, "ingressBurst": 10}),
        "spec.config.plugins[1]",
        "spec.config.plugins[0] is tap, whose pod interface has no veth peer",
    ),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {"kernel.shmmax": "1"}}),
        'spec.config.plugins[1].sysctl["kernel.shmmax"]',
        "outside net.*",
    ),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {"vm/net/x": "1"}}),
        'spec.config.plugins[1].sysctl["vm/net/x"]',
        "outside net.*",
    ),
    # tuning copies args.cni.sysctl into its sysctl map, and checks the keys of both.
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {}, "args": {"cni": {"sysctl": {"kernel.shmmax": "1"}}}}),
        'spec.config.plugins[1].args.cni.sysctl["kernel.shmmax"]',
        "outside net.*",
    ),
    # Without a sysctl of its own the map is nil: tuning panics assigning to it.
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        "spec.config.plugins[1].args.cni.sysctl",
        "spec.config.plugins[1].args.cni.sysctl is set but spec.config.plugins[1] has no sysctl object: the tuning "
        'plugin crashes copying the entries into it and fails every pod; add "sysctl": {} beside it',
    ),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": None, "Args": {"CNI": {"Sysctl": {"net.ipv4.ip_forward": "1"}}}}),
        "spec.config.plugins[1].Args.CNI.Sysctl",
        "has no sysctl object",
    ),
    # Its own sysctl is every spelling decoded in sorted order: the null comes after "SYSCTL" (real tuning).
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": None, "SYSCTL": {},
                        "args": {"cni": {"sysctl": {"net.ipv4.ip_forward": "1"}}}}),
        "spec.config.plugins[1].args.cni.sysctl",
        "has no sysctl object (spec.config.plugins[1].sysctl is null, which empties it: the tuning plugin reads "
        "every spelling of sysctl, in sorted order of the keys): the tuning plugin crashes",
    ),
    # Every spelling of sysctl in args.cni is decoded into one map (libcni sorts the keys; Go matches them
    # case-insensitively): real tuning v1.10.0 applies both objects and refuses the kernel key.
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {}, "args": {"cni": {
            "Sysctl": {"kernel.shmmax": "1"}, "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        'spec.config.plugins[1].args.cni.Sysctl["kernel.shmmax"]',
        "outside net.*",
    ),
    # Its own sysctl too: every spelling is read (real tuning v1.10.0 refuses the kernel key), and a key under
    # two spellings is refused whatever its values.
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "Sysctl": {"kernel.shmmax": "1"},
                        "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
        'spec.config.plugins[1].Sysctl["kernel.shmmax"]',
        "outside net.*",
    ),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "Sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"},
                        "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
        'spec.config.plugins[1].sysctl["net.ipv4.conf.IFNAME.arp_filter"]',
        'is also spec.config.plugins[1].Sysctl["net.ipv4.conf.IFNAME.arp_filter"]: the tuning plugin reads every '
        'spelling of sysctl and refuses a key given twice ("duplicated sysctl keys are not allowed")',
    ),
    # A spelling that is not an object fails tuning's decode ("failed to load netconf"), whatever the others.
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {}, "args": {"cni": {
            "Sysctl": "x", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}}}),
        "spec.config.plugins[1].args.cni.Sysctl",
        "reads args.cni.sysctl as an object whose values are strings: it fails to load its config and fails every pod",
    ),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {},
                        "args": {"cni": {"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": 1}}}}),
        'spec.config.plugins[1].args.cni.sysctl["net.ipv4.conf.IFNAME.arp_filter"]',
        "is the number 1, but the tuning plugin reads args.cni.sysctl as an object whose values are strings",
    ),
]


@pytest.mark.parametrize(("rule", "config", "field", "text"), REFUSED)
def test_refused(rule: str, config: dict[str, Any], field: str, text: str) -> None:
    found = findings(nad(config), rule)
    assert [f.field for f in found] == [field]
    assert found[0].severity is Severity.DENY
    assert found[0].message.startswith(field.split("[")[0])
    assert text in found[0].message


ALLOWED = [
    ("nad-plugin-sbr-gateways", chain(MACVLAN, {"type": "sbr", "gateways": ["10.1.0.1", "fd00::1"]})),
    # With a table sbr never reads the gateways.
    ("nad-plugin-sbr-gateways", chain(MACVLAN, {"type": "sbr", "table": 100, "gateways": ["nope"]})),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "markMasqBit": 0, "backend": "iptables",
                                           "conditionsV4": ["!", "-s", "10.0.0.0/8"], "conditionsV6": [""]})),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "markMasqBit": None, "externalSetMarkChain": "X",
                                           "backend": "iptables"})),
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "conditionsV4": ["ip saddr 10.0.0.1"],
                                           "backend": "nftables"})),
    # Without a backend named the node decides; options of neither backend work on both.
    ("nad-plugin-portmap", chain(MACVLAN, {"type": "portmap", "backend": None, "conditionsV4": [""], "snat": True})),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "02-AB-00-00-00-01"})),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "0200.0000.0001"})),
    ("nad-plugin-mac", single({**MACVLAN, "mac": "020000000001"})),
    ("nad-plugin-mac", single({**MACVLAN, "mac": ""})),
    # A MAC in the config's own runtimeConfig replaces mac; tuning's args.cni.mac replaces both, "" too.
    ("nad-plugin-mac", single({**MACVLAN, "mac": "zz", "runtimeConfig": {"mac": "02:00:00:00:00:01"}})),
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "mac": "zz", "args": {"cni": {"mac": ""}}})),
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "mac": "zz",
                                       "args": {"CNI": {"mac": "02:00:00:00:00:01"}, "cni": {}}})),
    # tuning may set any interface's address: IPoIB takes 20 bytes.
    ("nad-plugin-mac", chain(MACVLAN, {"type": "tuning", "mac": "02:00:5e:10:00:00:00:01"})),
    ("nad-plugin-mac", single({"type": "tap", "mac": "2:0:0:0:0:1", "ipam": STATIC})),
    ("nad-plugin-mac", single({"type": "tap", "mac": "01:00:5e:00:00:01", "owner": 0, "group": 0, "ipam": STATIC})),
    ("nad-plugin-mac", single({"type": "bridge", "mac": "zz"})),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [{"minID": 1, "maxID": 4094}, {"id": 7}, {}]})),
    # A value of the wrong type is nad-plugin-field-types' to say.
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlanTrunk": [5, {"id": "x"}, {"minID": 5, "maxID": "x"}]})),
    ("nad-plugin-bridge-interface-ipam", single({"type": "bridge", "disableContainerInterface": True})),
    ("nad-plugin-bridge-interface-ipam",
     single({"type": "bridge", "disableContainerInterface": True, "ipam": {"type": ""}})),
    ("nad-plugin-bridge-interface-ipam", single({"type": "bridge", "disableContainerInterface": False,
                                                      "ipam": STATIC})),
    ("nad-plugin-ipmasq-backend",
     single({"type": "bridge", "ipMasq": True, "ipMasqBackend": "nftables", "ipam": STATIC})),
    # Not masquerading, or (bridge) no IPAM: the backend is never read.
    ("nad-plugin-ipmasq-backend", single({"type": "bridge", "ipMasqBackend": "pf", "ipam": STATIC})),
    ("nad-plugin-ipmasq-backend", single({"type": "bridge", "ipMasq": True, "ipMasqBackend": "pf"})),
    ("nad-plugin-ipmasq-backend", single({"type": "macvlan", "ipMasq": True, "ipMasqBackend": "pf", "ipam": STATIC})),
    ("nad-plugin-field-types", single({"type": "bridge", "vlanTrunk": [{"minID": 5, "maxID": 10, "x": "y"}, {}]})),
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "portmap", "conditionsV4": None, "conditionsV6": ["a"]})),
    ("nad-plugin-field-types", single({**MACVLAN, "mtu": 1500, "mode": None})),
    ("nad-plugin-field-types", single({"type": "unknown-plugin", "mtu": "whatever"})),
    # libcni hands every plugin its config re-encoded from a map: whole decimals arrive as integers.
    ("nad-plugin-field-types", single({"type": "vlan", "master": "eth0", "vlanId": 100.0, "mtu": 1500.0})),
    (
        "nad-plugin-field-types",
        chain(MACVLAN, {"type": "bandwidth", "ingressRate": 1e6, "ingressBurst": 1000000.0}),
    ),
    ("nad-plugin-vlan-id", single({"type": "vlan", "master": "eth0", "vlanId": 100.0})),
    ("nad-plugin-vlan-id", chain({"type": "bridge", "vlan": 4094.0})),
    ("nad-plugin-bandwidth-pairs", chain(MACVLAN, {"type": "bandwidth", "egressRate": 1e3, "egressBurst": 1e3})),
    ("nad-plugin-vlan-id", single({"type": "vlan", "master": "eth0", "vlanId": 4094})),
    ("nad-plugin-vlan-id", single({"type": "bridge", "vlan": 0})),
    ("nad-plugin-vlan-master", single({"type": "vlan", "master": "bond0"})),
    (
        "nad-plugin-bridge-hairpin-promisc",
        single({"type": "bridge", "hairpinMode": True, "promiscMode": False}),
    ),
    ("nad-plugin-mode", single({**MACVLAN, "mode": "passthru"})),
    ("nad-plugin-mode", single({"type": "ipvlan", "mode": "l3s", "ipam": STATIC})),
    ("nad-plugin-mode", chain(MACVLAN, {"type": "firewall", "ingressPolicy": "same-bridge"})),
    ("nad-plugin-mode", chain(MACVLAN, {"type": "firewall", "ingressPolicy": ""})),
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "firewall", "ingressPolicy": None})),
    ("nad-plugin-host-device-selector", single({"type": "host-device", "pciBusID": "0000:03:00.0"})),
    ("nad-plugin-host-device-selector", single({"type": "host-device", "runtimeConfig": {"deviceID": "x"}})),
    ("nad-plugin-ipam-required", single({"type": "ptp", "ipam": STATIC})),
    # Since plugins v1.x a vlan without IPAM is a plain L2 attachment.
    ("nad-plugin-ipam-required", single({"type": "vlan", "master": "eth0"})),
    ("nad-plugin-ipam-required", chain(MACVLAN, {"type": "ipvlan", "master": "eth0"})),
    ("nad-plugin-needs-previous-result", chain(MACVLAN, {"type": "portmap"}, {"type": "firewall"})),
    ("nad-plugin-vrf-name", chain(MACVLAN, {"type": "vrf", "vrfname": "blue"})),
    (
        "nad-plugin-bandwidth-pairs",
        chain(MACVLAN, {"type": "bandwidth", "egressRate": 10, "egressBurst": 10}),
    ),
    (
        "nad-plugin-bandwidth-pairs",
        chain(MACVLAN, {"type": "bandwidth", "egressRate": 10, "egressBurst": 8 * (2**32 - 1) - 1}),
    ),
    ("nad-plugin-mtu", single({**MACVLAN, "mtu": 0})),
    ("nad-plugin-mtu", chain(MACVLAN, {"type": "tuning", "mtu": -1, "args": {"cni": {"mtu": 1400}}})),
    ("nad-plugin-mtu", chain(MACVLAN, {"type": "tuning", "mtu": -1, "Args": {"cni": {"mtu": 0}}, "args": {}})),
    ("nad-plugin-mtu", single({"type": "vlan", "master": "eth0", "mtu": 9000})),
    # bridge, ptp and ipvlan leave an mtu below 1 unset; so does tap when it creates through netlink.
    ("nad-plugin-mtu", single({"type": "bridge", "mtu": -1})),
    ("nad-plugin-mtu", single({"type": "ptp", "mtu": -1, "ipam": STATIC})),
    ("nad-plugin-mtu", single({"type": "ipvlan", "mtu": -1, "ipam": STATIC})),
    ("nad-plugin-mtu", single({"type": "tap", "mtu": -1, "owner": 0, "group": 0, "ipam": STATIC})),
    ("nad-plugin-field-types", single({**MACVLAN, "MTU": None, "mtu": 1400})),
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "tuning", "args": {"cni": {
        "MTU": None, "mtu": 1400.0, "promisc": True, "allmulti": None, "txQLen": 0, "sysctl": None}}})),
    # Another plugin's args are not tuning's.
    ("nad-plugin-field-types", chain(MACVLAN, {"type": "portmap", "args": {"cni": {"mtu": "x"}}})),
    ("nad-plugin-mode", single({**MACVLAN, "mode": "vepa", "MODE": "l2"})),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}),
    ),
    # Nothing to copy: the nil map is never written to.
    ("nad-plugin-tuning-sysctl", chain(MACVLAN, {"type": "tuning", "args": {"cni": {"sysctl": {}, "mac": None}}})),
    (
        "nad-plugin-tuning-sysctl",
        chain(MACVLAN, {"type": "tuning", "sysctl": {}, "args": {"cni": {"sysctl": {"net.ipv4.ip_forward": "1"}}}}),
    ),
    ("nad-plugin-tuning-sysctl", chain(MACVLAN, {"type": "tuning", "Sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"},
                                                 "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}})),
]


@pytest.mark.parametrize(("rule", "config"), ALLOWED)
def test_allowed(rule: str, config: dict[str, Any]) -> None:
    assert findings(nad(config), rule) == []


@pytest.mark.parametrize(
    ("plugin", "field", "text"),
    [
        ({"conditionsV6": ["ip6 saddr ::1"]}, "conditionsV6", 'fails every pod unless the node lacks iptables and '
         'has nftables; set "backend": "nftables"'),
        ({"externalSetMarkChain": "KUBE-MARK-MASQ"}, "externalSetMarkChain",
         'fails every pod on nodes that lack iptables and have nftables; set "backend": "iptables"'),
        ({"conditionsV4": ["-s", "10.0.0.0/8"], "backend": None}, "conditionsV4", "fails every pod on nodes"),
    ],
)
def test_portmap_options_of_one_backend_without_a_backend_warn(plugin: dict[str, Any], field: str, text: str) -> None:
    # Without a backend portmap takes iptables, unless the node lacks it and has nftables.
    [finding] = findings(nad(chain(MACVLAN, {"type": "portmap", **plugin})), "nad-plugin-portmap")
    assert (finding.field, finding.severity) == (f"spec.config.plugins[1].{field}", Severity.WARN)
    assert f"names no backend: the portmap plugin refuses it and {text}" in finding.message


@pytest.mark.parametrize("capability", ["mac", "ips"])
def test_a_literal_runtime_config_mac_a_capability_may_replace_is_a_warning(capability: str) -> None:
    # libcni replaces the whole literal runtimeConfig when any capability the plugin declares gets a value.
    for plugin in (MACVLAN, {"type": "bridge", "bridge": "br0"}):
        config = single({**plugin, "runtimeConfig": {"mac": "x"}, "capabilities": {capability: True}})
        [finding] = findings(nad(config), "nad-plugin-mac")
        assert (finding.field, finding.severity) == ("spec.config.runtimeConfig.mac", Severity.WARN)
        assert finding.message.endswith(
            f"it fails the ADD; fix it (only when none of the capabilities spec.config declares ({capability}) gets "
            "a value for the pod, which would replace the NAD's literal runtimeConfig)")


def test_the_mac_a_replaced_literal_runtime_config_mac_leaves_is_judged_too() -> None:
    config = single({**MACVLAN, "mac": "zz", "runtimeConfig": {"mac": "02:00:00:00:00:01"},
                     "capabilities": {"ips": True}})
    [finding] = findings(nad(config), "nad-plugin-mac")
    assert (finding.field, finding.severity) == ("spec.config.mac", Severity.WARN)
    assert finding.message.endswith(
        "it fails every pod that does not request a MAC of its own; fix it (only when one of the capabilities "
        "spec.config declares (ips) gets a value for the pod, which replaces the NAD's literal runtimeConfig)")


def test_portmap_options_of_both_backends_without_a_backend_are_refused() -> None:
    config = chain(MACVLAN, {"type": "portmap", "externalSetMarkChain": "X", "conditionsV4": ["ip saddr 10.0.0.1"]})
    [finding] = findings(nad(config), "nad-plugin-portmap")
    assert (finding.field, finding.severity) == ("spec.config.plugins[1].externalSetMarkChain", Severity.DENY)
    assert finding.message == (
        "spec.config.plugins[1].externalSetMarkChain, spec.config.plugins[1].conditionsV4 are options of both "
        "backends: the portmap plugin uses one, iptables or nftables, and refuses the other's options on every pod; "
        "keep the options of one and set backend to it"
    )


def test_bandwidth_capability_behind_macvlan_only_warns() -> None:
    config = chain(MACVLAN, {"type": "bandwidth", "capabilities": {"bandwidth": True}})
    [finding] = findings(nad(config), "nad-plugin-bandwidth-veth")
    assert finding.severity is Severity.WARN
    assert "pods that request bandwidth will fail" in finding.message


def test_host_device_with_the_device_id_capability_takes_the_pods_device_with_a_warning() -> None:
    config = single({"type": "host-device", "capabilities": {"deviceID": True}})
    [finding] = findings(nad(config), "nad-plugin-host-device-selector")
    assert (finding.field, finding.severity) == ("spec.config", Severity.WARN)
    assert finding.message.startswith("spec.config selects no device itself: host-device takes the one a pod names")
    assert "fails for pods that name none" in finding.message
    # A capability set to false passes nothing.
    config = single({"type": "host-device", "capabilities": {"deviceID": False}})
    assert [f.severity for f in findings(nad(config), "nad-plugin-host-device-selector")] == [Severity.DENY]


def test_a_literal_device_id_counts_only_where_the_literal_runtime_config_reaches_host_device() -> None:
    literal = {"type": "host-device", "runtimeConfig": {"deviceID": "0000:03:00.0"}}
    # A pod's mac, with the capability, replaces the literal runtimeConfig and its deviceID with it.
    [finding] = findings(nad(single({**literal, "capabilities": {"mac": True}})), "nad-plugin-host-device-selector")
    assert (finding.field, finding.severity) == ("spec.config", Severity.WARN)
    assert finding.message.endswith("(only when one of the capabilities spec.config declares (mac) gets a value "
                                    "for the pod, which replaces the NAD's literal runtimeConfig)"), finding.message
    # Only a device a pod names (deviceID, CNIDeviceInfoFile beside it) replaces it: host-device has one.
    for caps in ({"deviceID": True}, {"deviceID": True, "CNIDeviceInfoFile": True}):
        assert findings(nad(single({**literal, "capabilities": caps})), "nad-plugin-host-device-selector") == []
    # libcni injects under "runtimeConfig" only: a key spelled otherwise reaches the plugin for every pod.
    misspelled = {"type": "host-device", "RuntimeConfig": {"deviceID": "0000:03:00.0"}, "capabilities": {"mac": True}}
    assert findings(nad(single(misspelled)), "nad-plugin-host-device-selector") == []


def test_a_runtime_config_of_the_wrong_type_is_a_warning_where_a_pods_own_may_replace_it() -> None:
    config = single({"type": "macvlan", "master": "eth0", "runtimeConfig": [], "capabilities": {"ips": True}})
    [finding] = findings(nad(config), "nad-plugin-field-types")
    assert (finding.field, finding.severity) == ("spec.config.runtimeConfig", Severity.WARN)
    assert finding.message == (
        "spec.config.runtimeConfig is a list, but the macvlan plugin reads it as an object: the plugin would fail "
        "to load the config; write it as an object (only when none of the capabilities spec.config declares (ips) "
        "gets a value for the pod, which would replace the NAD's literal runtimeConfig)")
    config = single({"type": "macvlan", "master": "eth0", "RuntimeConfig": [], "capabilities": {"ips": True}})
    assert [f.severity for f in findings(nad(config), "nad-plugin-field-types")] == [Severity.DENY]


def test_host_device_without_selector_is_fine_with_resource_name_annotation() -> None:
    config = single({"type": "host-device", "ipam": STATIC})
    annotations = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"}
    assert findings(nad(config, annotations), "nad-plugin-host-device-selector") == []


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ("net.ipv4.ip_forward", False),
        ("net.ipv6.conf.IFNAME.disable_ipv6", False),
        ("net", True),
        ("net.", True),
        ("kernel.pid_max", True),
        # Dots become slashes before the path is cleaned, so ".." can never climb out of net/.
        ("net..kernel.pid_max", False),
        ("net/../../etc/x", False),
        ("/net/core/somaxconn", False),
        ("/kernel/x", True),
    ],
)
def test_sysctl_keys_as_tuning_cleans_them(key: str, refused: bool) -> None:
    assert (sysctl_key_problem(key) is not None) is refused


def test_unknown_plugin_types_are_not_judged() -> None:
    config = chain({"type": "cilium-cni", "vlanId": 99999, "mode": "x"}, {"type": "my-tuning"})
    plugin_findings = [f for f in evaluate(nad(config), Policy()) if f.rule.startswith("nad-plugin-")]
    assert plugin_findings == []


@pytest.mark.parametrize(
    ("tuning", "dropped"),
    [
        ({"sysctl": {}, "args": {"cni": {"SYSCTL": {"kernel.shmmax": "1"}, "sysctl": None}}},
         'spec.config.plugins[1].args.cni.SYSCTL["kernel.shmmax"]'),
        ({"args": {"cni": {"Sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}, "sysctl": None}}},
         'spec.config.plugins[1].args.cni.Sysctl["net.ipv4.conf.IFNAME.arp_filter"]'),
    ],
)
def test_a_null_spelling_of_args_sysctl_sorting_later_empties_the_map(tuning: dict[str, Any], dropped: str) -> None:
    # libcni sorts args.cni's keys ("SYSCTL" < "Sysctl" < "sysctl") and tuning decodes them all into one
    # map, which null makes nil: real tuning v1.10.0 never sees the kernel key, nor has anything to copy
    # into a missing sysctl. Only a warning that the entry is lost.
    [finding] = findings(nad(chain(MACVLAN, {"type": "tuning", **tuning})), "nad-plugin-tuning-sysctl")
    assert (finding.field, finding.severity) == (dropped, Severity.WARN)
    assert finding.message == (
        f"{dropped} never reaches the tuning plugin: spec.config.plugins[1].args.cni.sysctl is null, which empties "
        "the map (Go reads every spelling of args.cni.sysctl into one map, in sorted order of the keys); keep one "
        "spelling of sysctl")


KERNEL = {"sysctl": {"kernel.shmmax": "1"}}


@pytest.mark.parametrize(
    ("tuning", "field"),
    [
        # Go decodes "Args" and "args" ("CNI" and "cni") into one field, in libcni's sorted order: the
        # entries of each object add up, so real tuning v1.10.0 refuses the kernel key ("invalid net
        # sysctl key") whichever spelling holds it.
        ({"Args": {"cni": KERNEL}, "args": {"cni": {}}}, 'spec.config.plugins[1].Args.cni.sysctl["kernel.shmmax"]'),
        ({"args": {"CNI": KERNEL, "cni": {}}}, 'spec.config.plugins[1].args.CNI.sysctl["kernel.shmmax"]'),
        ({"ARGS": {"cni": KERNEL}}, 'spec.config.plugins[1].ARGS.cni.sysctl["kernel.shmmax"]'),
    ],
)
def test_args_sysctl_under_any_spelling_of_args_and_cni_is_judged(tuning: dict[str, Any], field: str) -> None:
    [finding] = findings(nad(chain(MACVLAN, {"type": "tuning", "sysctl": {}, **tuning})), "nad-plugin-tuning-sysctl")
    assert (finding.field, finding.severity) == (field, Severity.DENY)
    assert finding.message.startswith(f"{field}: the key 'kernel.shmmax' is outside net.*")


@pytest.mark.parametrize(
    ("tuning", "by"),
    [
        ({"Args": {"cni": KERNEL}, "args": None}, "spec.config.plugins[1].args"),
        ({"args": {"CNI": KERNEL, "cni": None}}, "spec.config.plugins[1].args.cni"),
    ],
)
def test_a_later_null_args_or_cni_empties_args_sysctl(tuning: dict[str, Any], by: str) -> None:
    # Null makes the *struct nil again: real tuning never sees the kernel key and the pod starts.
    [finding] = findings(nad(chain(MACVLAN, {"type": "tuning", "sysctl": {}, **tuning})), "nad-plugin-tuning-sysctl")
    assert finding.severity is Severity.WARN
    assert f"never reaches the tuning plugin: {by} is null, which empties the map" in finding.message


@pytest.mark.parametrize(
    ("tuning", "field", "reads"),
    [
        ({"Args": "x", "args": {"cni": {}}}, "spec.config.plugins[1].Args", "args as an object"),
        ({"args": {"cni": 5}}, "spec.config.plugins[1].args.cni", "args.cni as an object"),
    ],
)
def test_args_or_cni_that_tuning_cannot_decode_is_refused(tuning: dict[str, Any], field: str, reads: str) -> None:
    # Real tuning: "failed to load netconf", whatever the other spellings hold.
    [finding] = findings(nad(chain(MACVLAN, {"type": "tuning", "sysctl": {}, **tuning})), "nad-plugin-tuning-sysctl")
    assert (finding.field, finding.severity) == (field, Severity.DENY)
    assert f"but the tuning plugin reads {reads}: it fails to load its config and fails every pod" in finding.message


def tuning_text(sysctl: str) -> Subject:
    """A chain macvlan + tuning whose sysctl object is written as given (JSON text keeps repeated keys)."""
    config = (
        '{"cniVersion": "1.0.0", "name": "n", "plugins": [' + json.dumps(MACVLAN)
        + ', {"type": "tuning", "sysctl": ' + sysctl + "}]}"
    )
    return Subject({"metadata": {"name": "net1", "namespace": "default"}, "spec": {"config": config}}, NAD)


def test_a_sysctl_written_twice_with_another_value_warns_that_only_the_last_counts() -> None:
    # libcni decodes the list into a map before tuning sees it: the repeated key arrives once, with its
    # last value, so tuning's own "duplicated sysctl keys" check never fires through Multus.
    subject = tuning_text('{"net.ipv4.ip_forward": "1", "net.core.somaxconn": "512", "net.ipv4.ip_forward": "0"}')
    [finding] = findings(subject, "nad-plugin-tuning-sysctl")
    assert finding.severity is Severity.WARN
    assert finding.field == 'spec.config.plugins[1].sysctl["net.ipv4.ip_forward"]'
    assert finding.message == (
        'spec.config.plugins[1].sysctl["net.ipv4.ip_forward"] is written more than once: only its last value, '
        "the string '0', reaches the tuning plugin, and the string '1' is dropped; keep one"
    )


def test_two_spellings_of_one_sysctl_with_different_values_warn() -> None:
    # tuning turns dots into slashes and writes its map in Go's (random) order.
    subject = tuning_text('{"net.ipv4.conf.IFNAME.arp_filter": "1", "net/ipv4/conf/IFNAME/arp_filter": "0"}')
    [finding] = findings(subject, "nad-plugin-tuning-sysctl")
    assert finding.severity is Severity.WARN
    assert finding.field == 'spec.config.plugins[1].sysctl["net/ipv4/conf/IFNAME/arp_filter"]'
    assert "sets the same sysctl as spec.config.plugins[1].sysctl[\"net.ipv4.conf.IFNAME.arp_filter\"]" in (
        finding.message
    )
    assert "writes the two in random order, so pods get either; keep one" in finding.message


@pytest.mark.parametrize(
    "sysctl",
    [
        '{"net.ipv4.ip_forward": "1", "net.ipv4.ip_forward": "1"}',
        '{"net.ipv4.ip_forward": "1", "net/ipv4/ip_forward": "1"}',
        '{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}',
    ],
)
def test_a_sysctl_repeated_with_the_same_value_is_harmless(sysctl: str) -> None:
    assert findings(tuning_text(sysctl), "nad-plugin-tuning-sysctl") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The forms Go's net.ParseMAC documents (Go 1.26).
        ("00:00:5e:00:53:01", "00005e005301"),
        ("02:00:5e:10:00:00:00:01", "02005e1000000001"),
        ("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "00000000fe8000000000000002005e1000000001"),
        ("00-00-5E-00-53-01", "00005e005301"),
        ("0000.5e00.5301", "00005e005301"),
        ("0000.0000.fe80.0000.0000.0000.0200.5e10.0000.0001", "00000000fe8000000000000002005e1000000001"),
        ("00005e005301", "00005e005301"),
        ("02005e1000000001", "02005e1000000001"),
        # Refused: other lengths, mixed or missing separators, single digits, other characters.
        ("00:00:5e:00:53", None),
        ("00:00:5e:00:53:01:02", None),
        ("00:00-5e:00:53:01", None),
        ("0:0:5e:0:53:1:00:00", None),
        ("0000.5e00.530", None),
        ("00005e00530", None),
        ("00005e0053010", None),
        ("zz:00:5e:00:53:01", None),
        ("00:00:5e:00:53:0\u0661", None),  # a digit, but not one Go's hex reader takes
        (" 00:00:5e:00:53:01", None),
        (5, None),
    ],
)
def test_parse_mac_reads_what_go_reads(text: object, expected: str | None) -> None:
    parsed = parse_mac(text)
    assert (parsed.hex() if parsed is not None else None) == expected
