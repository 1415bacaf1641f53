"""The plugin rule table: what the CNI reference plugins (containernetworking/plugins v1.10.0)
refuse in their configuration, one function per concern.

Every function takes one plugin of a parsed config and returns the problems the plugin would hit
on ADD. Unknown plugin types yield nothing: this table only speaks for the reference plugins.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.cni.addresses import family, parse_ip, parse_mac
from webhook.cni.config import (
    CNI_VERSIONS,
    MULTUS_CAPABILITY_ARGS,
    NEEDS_PREVIOUS_RESULT,
    NEVER_RUNS_IPAM,
    NetConf,
    PluginConf,
    Problem,
    names_a_path,
)
from webhook.cni.fields import (
    FieldType,
    Kind,
    ListOf,
    Struct,
    describe,
    int_in_range,
    is_int,
    type_mismatches,
    type_problems,
)
from webhook.cni.gojson import as_reencoded, fold, go_field, overwritten

# libcni's types.DNS.
_DNS = Struct({"nameservers": ListOf(Kind.STRING), "domain": Kind.STRING, "search": ListOf(Kind.STRING),
               "options": ListOf(Kind.STRING)})

#: Fields every plugin's config is decoded into by libcni (types.PluginConf), whatever its type.
COMMON_FIELDS: Mapping[str, FieldType] = {
    "cniVersion": Kind.STRING,
    "name": Kind.STRING,
    "type": Kind.STRING,
    "capabilities": Kind.BOOL_MAP,
    "ipam": Kind.OBJECT,
    "dns": _DNS,
}

#: The typed fields of each reference plugin's config struct. runtimeConfig is a struct (its capability
#: args) in those that declare one: anything but an object or null fails their decode, when libcni hands
#: the config over as written (no capability the plugin declares is filled).
PLUGIN_FIELDS: Mapping[str, Mapping[str, FieldType]] = {
    "bridge": {
        "runtimeConfig": Kind.OBJECT,
        "bridge": Kind.STRING,
        "isGateway": Kind.BOOL,
        "isDefaultGateway": Kind.BOOL,
        "forceAddress": Kind.BOOL,
        "ipMasq": Kind.BOOL,
        "ipMasqBackend": Kind.STRING,
        "mtu": Kind.INT,
        "hairpinMode": Kind.BOOL,
        "promiscMode": Kind.BOOL,
        "vlan": Kind.INT,
        "vlanTrunk": ListOf(Struct({"minID": Kind.INT, "maxID": Kind.INT, "id": Kind.INT})),
        "preserveDefaultVlan": Kind.BOOL,
        "macspoofchk": Kind.BOOL,
        "enabledad": Kind.BOOL,
        "disableContainerInterface": Kind.BOOL,
        "portIsolation": Kind.BOOL,
    },
    "macvlan": {
        "runtimeConfig": Kind.OBJECT,
        "master": Kind.STRING,
        "mode": Kind.STRING,
        "mtu": Kind.INT,
        "mac": Kind.STRING,
        "linkInContainer": Kind.BOOL,
        "bcqueuelen": Kind.UINT32,
    },
    "ipvlan": {"master": Kind.STRING, "mode": Kind.STRING, "mtu": Kind.INT, "linkInContainer": Kind.BOOL},
    "vlan": {"master": Kind.STRING, "vlanId": Kind.INT, "mtu": Kind.INT, "linkInContainer": Kind.BOOL},
    "host-device": {
        "runtimeConfig": Kind.OBJECT,
        "device": Kind.STRING,
        "hwaddr": Kind.STRING,
        "kernelpath": Kind.STRING,
        "pciBusID": Kind.STRING,
        "useInterfaceNetwork": Kind.BOOL,
    },
    "ptp": {"ipMasq": Kind.BOOL, "ipMasqBackend": Kind.STRING, "mtu": Kind.INT},
    "dummy": {},
    "tuning": {
        "runtimeConfig": Kind.OBJECT,
        "dataDir": Kind.STRING,
        "sysctl": Kind.STRING_MAP,
        "mac": Kind.STRING,
        "promisc": Kind.BOOL,
        "mtu": Kind.INT,
        "txQLen": Kind.INT,
        "allmulti": Kind.BOOL,
    },
    "portmap": {
        "runtimeConfig": Kind.OBJECT,
        "backend": Kind.STRING,
        "snat": Kind.BOOL,
        "conditionsV4": ListOf(Kind.STRING),
        "conditionsV6": ListOf(Kind.STRING),
        "masqAll": Kind.BOOL,
        "markMasqBit": Kind.INT,
        "externalSetMarkChain": Kind.STRING,
    },
    "bandwidth": {
        "runtimeConfig": Kind.OBJECT,
        "ingressRate": Kind.UINT,
        "ingressBurst": Kind.UINT,
        "egressRate": Kind.UINT,
        "egressBurst": Kind.UINT,
    },
    "firewall": {"backend": Kind.STRING, "iptablesAdminChainName": Kind.STRING, "firewalldZone": Kind.STRING,
                 "ingressPolicy": Kind.STRING},
    "sbr": {"table": Kind.INT, "gateways": ListOf(Kind.STRING), "addSourceHints": Kind.BOOL},
    "vrf": {"vrfname": Kind.STRING, "table": Kind.UINT32},
    "tap": {
        "runtimeConfig": Kind.OBJECT,
        "multiQueue": Kind.BOOL,
        "mtu": Kind.INT,
        "mac": Kind.STRING,
        "owner": Kind.UINT32,
        "group": Kind.UINT32,
        "selinuxContext": Kind.STRING,
        "bridge": Kind.STRING,
    },
}

# net.IP, types.IPNet and net.IPNet's IP read text; a plain string field reads text too.
#: static's and whereabouts' address entry: "address" is the text, "Address" (matched exactly) a net.IPNet.
ADDRESS_ENTRY = Struct({"address": Kind.STRING, "gateway": Kind.STRING, "Address": Struct({"IP": Kind.STRING}),
                        "Version": Kind.STRING})
_HOST_LOCAL_RANGE = {"rangeStart": Kind.STRING, "rangeEnd": Kind.STRING, "subnet": Kind.STRING,
                     "gateway": Kind.STRING}

#: The typed fields of each IPAM plugin's ipam section (its IPAMConfig struct), in declaration order
#: (which decides between names that fold alike). Left out: "type" (libcni's, see COMMON_FIELDS) and
#: "routes" (nad-ipam-routes judges them).
IPAM_FIELDS: Mapping[str, Mapping[str, FieldType]] = {
    "host-local": {
        **_HOST_LOCAL_RANGE,  # the embedded *Range: the single-range form
        "Name": Kind.STRING,
        "dataDir": Kind.STRING,
        "resolvConf": Kind.STRING,
        "ranges": ListOf(ListOf(Struct(_HOST_LOCAL_RANGE))),
    },
    "static": {"Name": Kind.STRING, "addresses": ListOf(ADDRESS_ENTRY), "dns": _DNS},
    "dhcp": {
        "daemonSocketPath": Kind.STRING,
        "provide": ListOf(Struct({"option": Kind.STRING, "value": Kind.STRING, "fromArg": Kind.STRING})),
        "request": ListOf(Struct({"skipDefault": Kind.BOOL, "option": Kind.STRING})),
        "priority": Kind.INT,
    },
    # whereabouts decodes the section through its IPAMConfigAlias.
    "whereabouts": {
        "Name": Kind.STRING,
        "datastore": Kind.STRING,
        "addresses": ListOf(ADDRESS_ENTRY),
        "ipRanges": ListOf(Struct({"exclude": ListOf(Kind.STRING), "range": Kind.STRING,
                                   "range_start": Kind.STRING, "range_end": Kind.STRING})),
        "node_slice_size": Kind.STRING,
        "exclude": ListOf(Kind.STRING),
        "dns": _DNS,
        "range": Kind.STRING,
        "range_start": Kind.STRING,
        "range_end": Kind.STRING,
        "gateway": Kind.STRING,
        **{name: Kind.STRING for name in ("etcd_host", "etcd_username", "etcd_password", "etcd_key_file",
                                          "etcd_cert_file", "etcd_ca_cert_file")},
        "leader_lease_duration": Kind.INT,
        "leader_renew_deadline": Kind.INT,
        "leader_retry_period": Kind.INT,
        "log_file": Kind.STRING,
        "log_level": Kind.STRING,
        "reconciler_cron_expression": Kind.STRING,
        "enable_overlapping_ranges": Kind.BOOL,
        "sleep_for_race": Kind.INT,
        "Gateway": Kind.STRING,
        "kubernetes": Struct({"kubeconfig": Kind.STRING, "k8s_api_root": Kind.STRING}),
        "configuration_path": Kind.STRING,
        "PodName": Kind.STRING,
        "PodNamespace": Kind.STRING,
        "network_name": Kind.STRING,
    },
}

#: The oldest cniVersion of the plugins that do not take every version (their main passes
#: version.VersionsStartingFrom); below it they refuse every ADD with "incompatible CNI versions".
MIN_CNI_VERSION: Mapping[str, str] = {"bandwidth": "0.3.0", "vrf": "0.3.1", "firewall": "0.4.0"}

#: Plugins that run IPAM unconditionally: without an IPAM type every ADD fails.
NEEDS_IPAM = frozenset({"ptp", "dummy"})

#: The field each plugin reads a mode from, and the modes it knows; "" (or no field) is its default.
MODES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "macvlan": ("mode", ("bridge", "private", "vepa", "passthru")),
    "ipvlan": ("mode", ("l2", "l3", "l3s")),
    "firewall": ("ingressPolicy", ("open", "same-bridge", "isolated")),
}

HOST_DEVICE_SELECTORS = ("device", "hwaddr", "kernelpath", "pciBusID")

#: Interface plugins whose pod interface is not a veth: bandwidth shapes the host side of a veth
#: pair and fails ("has no veth peer") behind these.
NOT_VETH = frozenset({"macvlan", "ipvlan", "vlan", "host-device", "dummy", "tap"})

#: Multus injects runtimeConfig.deviceID from the device plugin for NADs with this annotation.
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"

_VLAN_RANGE = (0, 4094)
# A trunk entry's id, minID and maxID: collectVlanTrunk refuses 0 too.
_TRUNK_RANGE = (1, 4094)
#: The ipMasqBackend values bridge and ptp take (pkg/ip SetupIPMasqForNetworks), and portmap's backends.
IPMASQ_BACKENDS = PORTMAP_BACKENDS = ("iptables", "nftables")
_MARK_BITS = (0, 31)
# bandwidth refuses a burst (in bits) whose whole bytes reach 2^32 - 1 ("burst cannot be more than 4GB"):
# 8 * (2^32 - 1) bits is already refused.
_BURST_BYTES_LIMIT = 2**32 - 1


def decodes_runtime_config(plugin: PluginConf) -> bool:
    """Whether the plugin itself decodes runtimeConfig into a struct (see PLUGIN_FIELDS), ahead of its IPAM."""
    return "runtimeConfig" in PLUGIN_FIELDS.get(plugin.type or "", {})


def _when_reaching(problems: list[Problem], reaches: bool) -> list[Problem]:
    """``problems`` of the NAD's literal runtimeConfig where it reaches the plugin, none where it does not."""
    return problems if reaches else []


def _string(plugin: PluginConf, name: str) -> tuple[str, str] | None:
    found = plugin.field(name)
    if found is None or not isinstance(found[1], str):
        return None
    return found[0], found[1]


def field_type_problems(plugin: PluginConf) -> Iterator[Problem]:
    fields = PLUGIN_FIELDS.get(plugin.type or "")
    if fields is None:
        return
    for name, field_type in fields.items():
        for path, value in plugin.spellings(name):
            if name != "runtimeConfig":
                yield from type_problems(path, value, field_type, plugin.type or "")
                continue
            # A runtimeConfig injected for the pod replaces a literal one of the wrong type under its own
            # key only: the plugin decodes any other spelling too (see PluginConf.runtime_config_member).
            replaced = path.endswith(".runtimeConfig") and plugin.runtime_config_condition() is not None
            wrong = list(type_problems(path, value, field_type, plugin.type or "", when="" if replaced else
                                       " on every pod"))
            yield from plugin.runtime_config_problems(functools.partial(_when_reaching, wrong)) if replaced else wrong
    yield from args_cni_type_problems(plugin, [name for name in TUNING_ARGS_CNI if name not in _OWN_RULE])
    yield from args_object_problems(plugin)


def ipam_field_type_problems(plugin: PluginConf, judged: Collection[str] = ()) -> Iterator[Problem]:
    """The values of the plugin's ipam section that its IPAM plugin cannot decode (IPAM_FIELDS), but in
    the fields at the paths ``judged``."""
    fields = IPAM_FIELDS.get(plugin.ipam_type or "")
    if plugin.ipam is None or fields is None:
        return
    yield from type_problems(plugin.ipam_path, plugin.ipam, Struct(fields), plugin.ipam_type or "", judged)


def common_field_problems(plugin: PluginConf) -> Iterator[Problem]:
    """libcni decodes every plugin into the same common struct, whatever its type."""
    for name, kind in COMMON_FIELDS.items():
        # A single config's name and version are the top-level ones, which nad_config checks.
        if name == "type" or (plugin.index is None and name in ("name", "cniVersion")):
            continue
        for path, value in plugin.spellings(name):
            if name == "ipam" and isinstance(value, Mapping):
                ipam_type = go_field(value, "type")
                if ipam_type is None or ipam_type[1] is None:
                    continue
                type_path = f"{path}.{ipam_type[0]}"
                if not isinstance(ipam_type[1], str):
                    yield Problem(
                        type_path,
                        f"{type_path} is {describe(ipam_type[1])}: it must be the name of an IPAM plugin",
                    )
                elif names_a_path(ipam_type[1]):
                    yield Problem(
                        type_path,
                        f"{type_path} is {ipam_type[1]!r}: an IPAM type is a binary name the plugin looks up in "
                        "the CNI bin directory, never a path; write just the name (e.g. static)",
                    )
            else:
                for wrong_path, wrong, expected in type_mismatches(path, value, kind):
                    yield Problem(
                        wrong_path,
                        f"{wrong_path} is {describe(wrong)}, but libcni reads it as {expected}: no pod could "
                        f"attach this network; write it as {expected}",
                    )


def vlan_id_problems(plugin: PluginConf) -> Iterator[Problem]:
    name = {"bridge": "vlan", "vlan": "vlanId"}.get(plugin.type or "")
    if name is None:
        return
    found = plugin.field(name)
    if found is not None:
        problem = int_in_range(found[0], found[1], *_VLAN_RANGE, what="a VLAN id")
        if problem is not None:
            yield problem
    if plugin.type == "bridge":
        yield from _vlan_trunk_problems(plugin)


def _vlan_trunk_problems(plugin: PluginConf) -> Iterator[Problem]:
    """What bridge's collectVlanTrunk refuses: a trunk id outside 1-4094, a range with one end only or
    its ends reversed; and a null entry, on which the plugin crashes (a nil *VlanTrunk). Values of the
    wrong type are nad-plugin-field-types'."""
    found = plugin.field("vlanTrunk")
    if found is None or not isinstance(found[1], list):
        return
    for i, entry in enumerate(found[1]):
        path = f"{found[0]}[{i}]"
        if entry is None:
            yield Problem(path, f"{path} is null: the bridge plugin crashes on a null trunk entry; remove it")
            continue
        if not isinstance(entry, Mapping):
            continue
        ids: dict[str, tuple[str, Any]] = {}
        for name in ("minID", "maxID", "id"):
            field = go_field(entry, name)
            if field is not None and field[1] is not None:  # null leaves the *int nil
                ids[name] = (f"{path}.{field[0]}", field[1])
        if not all(is_int(value) for _, value in ids.values()):
            continue  # the plugin fails to decode it: nad-plugin-field-types
        minimum, maximum = ids.get("minID"), ids.get("maxID")
        for given, missing in ((minimum, "maxID"), (maximum, "minID")):
            if given is not None and missing not in ids:
                yield Problem(
                    given[0],
                    f"{given[0]} is set but {path}.{missing} is not: the bridge plugin takes a trunk range only "
                    "with both minID and maxID; set both, or use id for a single VLAN",
                )
        bad = [problem for id_path, value in ids.values()
               if (problem := int_in_range(id_path, value, *_TRUNK_RANGE, what="a trunk VLAN id")) is not None]
        yield from bad
        if minimum is not None and maximum is not None and not bad and maximum[1] < minimum[1]:
            yield Problem(
                maximum[0],
                f"{maximum[0]} is {maximum[1]}, below {minimum[0]} ({minimum[1]}): the bridge plugin refuses a "
                "trunk range that ends before it starts; swap them",
            )


def bridge_container_interface_problems(plugin: PluginConf) -> Iterator[Problem]:
    found = plugin.field("disableContainerInterface")
    if plugin.type != "bridge" or found is None or found[1] is not True or not plugin.ipam_type:
        return
    yield Problem(
        found[0],
        f"{found[0]} is true, but {plugin.ipam_type_path} is {plugin.ipam_type!r}: the bridge plugin refuses "
        "IPAM when it creates no interface in the pod to put the addresses on; drop the ipam section, or "
        "disableContainerInterface",
    )


def ipmasq_backend_problems(plugin: PluginConf) -> Iterator[Problem]:
    """bridge (with IPAM) and ptp masquerade with iptables or nftables; a backend they do not know fails
    every pod when ipMasq is on (SetupIPMasqForNetworks), "" included."""
    found = plugin.field("ipMasqBackend")
    masq = plugin.field("ipMasq")
    if (plugin.type not in ("bridge", "ptp") or found is None or not isinstance(found[1], str)
            or found[1] in IPMASQ_BACKENDS or masq is None or masq[1] is not True):
        return
    if plugin.type == "bridge" and not plugin.ipam_type:
        return  # the bridge plugin masquerades only the addresses its IPAM gave
    path, value = found
    yield Problem(
        path,
        f"{path} is {value!r}: the {plugin.type} plugin masquerades with {' or '.join(IPMASQ_BACKENDS)} only, "
        "and fails every pod on anything else; write one of them, or leave it out (iptables, or nftables "
        "where iptables is missing)",
    )


def _required_problems(plugin: PluginConf, kind: str, key: str, needs: str) -> Iterator[Problem]:
    """``key`` of a plugin of type ``kind`` missing or empty, which ``needs`` says why it may not be."""
    if plugin.type != kind:
        return
    found = plugin.field(key)
    if found is None or found[1] == "":
        path = found[0] if found else f"{plugin.path}.{key}"
        yield Problem(path, f"{path} is missing: {needs}")


def master_problems(plugin: PluginConf) -> Iterator[Problem]:
    return _required_problems(plugin, "vlan", "master", "the vlan plugin needs the host interface to create the "
                                                        'VLAN on; set "master" to it (e.g. "eth0")')


def bridge_mode_problems(plugin: PluginConf) -> Iterator[Problem]:
    if plugin.type != "bridge":
        return
    hairpin = plugin.field("hairpinMode")
    promisc = plugin.field("promiscMode")
    if hairpin is not None and promisc is not None and hairpin[1] is True and promisc[1] is True:
        yield Problem(
            promisc[0],
            f"{promisc[0]} and {hairpin[0]} are both true: the bridge plugin refuses to set hairpin and "
            "promiscuous mode together; keep only one of them",
        )


def mode_problems(plugin: PluginConf) -> Iterator[Problem]:
    if (mode := MODES.get(plugin.type or "")) is None:
        return
    name, modes = mode
    found = _string(plugin, name)
    if found is None or found[1] == "" or found[1] in modes:
        return
    path, value = found
    what = "an ingress policy of the firewall plugin" if name == "ingressPolicy" else f"a {plugin.type} mode"
    yield Problem(
        path,
        f"{path} is {value!r}, not {what}: use one of {', '.join(modes)} (or leave it out)",
    )


def host_device_problems(plugin: PluginConf, has_resource_name: bool) -> Iterator[Problem]:
    if plugin.type != "host-device" or has_resource_name:
        return
    if any((found := _string(plugin, name)) is not None and found[1] for name in HOST_DEVICE_SELECTORS):
        return
    yield from plugin.runtime_config_problems(functools.partial(_host_device_unselected, plugin))


def _host_device_unselected(plugin: PluginConf, runtime_config: bool) -> list[Problem]:
    """What host-device without a device selector of its own lacks, when the NAD's literal runtimeConfig
    (its deviceID a device) does (``runtime_config``) or does not reach it."""
    declared = {name for name in MULTUS_CAPABILITY_ARGS if plugin.has_capability(name)}
    # Multus fills CNIDeviceInfoFile only with deviceID: a runtimeConfig injected for these two brings the
    # device the pod names in place of the literal one.
    device_in_its_place = "deviceID" in declared and declared <= {"deviceID", "CNIDeviceInfoFile"}
    literal = plugin.runtime_config_member("deviceID", injected=not (runtime_config or device_in_its_place))
    if literal is not None and isinstance(literal[1], str) and literal[1]:
        return []
    if plugin.has_capability("deviceID"):
        # libcni then injects the deviceID a pod's selection names (Multus passes it as a capability
        # arg) as runtimeConfig.deviceID, which host-device takes as the device: pods that name one work.
        return [Problem(
            plugin.path,
            f"{plugin.path} selects no device itself: host-device takes the one a pod names in its network "
            'selection ("deviceID", a PCI or auxiliary device, in the JSON form of k8s.v1.cni.cncf.io/networks) '
            f"and fails for pods that name none; set one of {', '.join(HOST_DEVICE_SELECTORS)} for them, or add "
            f"the {RESOURCE_NAME_ANNOTATION} annotation so that Multus passes the device from the device plugin",
            warning=True,
        )]
    return [Problem(
        plugin.path,
        f"{plugin.path} selects no device: the host-device plugin needs one of "
        f"{', '.join(HOST_DEVICE_SELECTORS)}; set one, or add the {RESOURCE_NAME_ANNOTATION} annotation "
        "so that Multus passes the device from the device plugin",
    )]


def ipam_required_problems(plugin: PluginConf) -> Iterator[Problem]:
    kind = plugin.type or ""
    if kind in NEVER_RUNS_IPAM and plugin.written_ipam_type:
        yield Problem(
            plugin.ipam_type_path,
            f"{plugin.ipam_type_path} is {plugin.written_ipam_type!r}, but the {kind} plugin never runs IPAM: "
            "nothing of this ipam section is used (no address, no args.cni.ips); remove it, or move it to the "
            "interface plugin of the chain",
            warning=True,
        )
    if plugin.ipam_type is not None:
        return
    first = not plugin.index  # alone, or first in the list: no previous result to take addresses from
    if kind in NEEDS_IPAM or (kind == "ipvlan" and first):
        why = (
            "ipvlan takes its addresses from IPAM or from a previous plugin's result, and has neither here"
            if kind == "ipvlan"
            else f"the {kind} plugin always runs IPAM"
        )
        yield Problem(
            plugin.ipam_path,
            f"{plugin.ipam_path} has no IPAM type: {why}; add an ipam section such as "
            '{"type": "static", "addresses": [...]} or {"type": "whereabouts", "range": "..."}',
        )


def previous_result_problems(plugin: PluginConf) -> Iterator[Problem]:
    if plugin.type not in NEEDS_PREVIOUS_RESULT or plugin.index:
        return
    where = "is the first plugin of the list" if plugin.index == 0 else "is the whole config"
    path = plugin.type_path
    yield Problem(
        path,
        f"{path} is {plugin.type}, which only adjusts the result of an earlier plugin, but it "
        f"{where}: put an interface plugin (e.g. macvlan, bridge) before it in a plugins list",
    )


def cni_version_problems(netconf: NetConf, path: str) -> Iterator[Problem]:
    """Plugins run with a cniVersion older than they support (``path`` is the config's)."""
    for plugin in netconf.plugins:
        minimum = MIN_CNI_VERSION.get(plugin.type or "")
        if minimum is None:
            continue
        runs_at = netconf.plugin_cni_version(plugin, path)
        if runs_at is None:
            continue
        version, version_path = runs_at
        # A version outside the spec is refused as such by nad-config-cni-version; CNI_VERSIONS is in order.
        if version not in (*CNI_VERSIONS, "") or CNI_VERSIONS.index(version or "0.1.0") >= CNI_VERSIONS.index(minimum):
            continue
        if not version:
            shown = "is missing, which libcni and the plugins read as 0.1.0"
        elif version_path.startswith(f"{path}.cniVersions["):
            shown = f"is {version!r}, the highest of the list's versions, which libcni runs every plugin at"
        else:
            shown = f"is {version!r}"
        yield Problem(
            version_path,
            f"{version_path} {shown}, but {plugin.path} is {plugin.type}, which takes cniVersion {minimum} "
            f'and later only: every pod fails with "incompatible CNI versions"; set cniVersion to {minimum} '
            "or later (1.0.0 is typical)",
        )


def _conditions_backend(conditions: Any) -> str | None:
    """The backend portmap's conditionsV4 / conditionsV6 are written for (detectBackendOfConditions): an
    iptables condition starts with "-" or "!", anything else is nftables; None when there are none."""
    if not isinstance(conditions, list) or not conditions or not isinstance(conditions[0], str) or not conditions[0]:
        return None
    return "iptables" if conditions[0][0] in "-!" else "nftables"


def portmap_empty_conditions(plugin: PluginConf) -> list[tuple[str, str]]:
    """(path, address family) of the empty entries of a portmap's conditionsV4 and conditionsV6 ("" or
    null, which Go decodes as ""), where the iptables backend takes them: it passes each entry to
    iptables as an argument of its own, and iptables refuses an empty one ("Bad argument"), failing the
    ADD of a pod with port mappings and an address of that family. nftables joins the conditions with
    spaces and takes them; conditions written for it, or another backend named, are left out (portmap
    refuses them before, which portmap_problems says)."""
    if plugin.type != "portmap":
        return []
    backend = plugin.field("backend")
    if backend is not None and backend[1] is not None and backend[1] != "iptables":
        return []
    empty: list[tuple[str, str]] = []
    for name, version in (("conditionsV4", "IPv4"), ("conditionsV6", "IPv6")):
        found = plugin.field(name)
        if found is None or not isinstance(found[1], list) or _conditions_backend(found[1]) == "nftables":
            continue
        empty.extend((f"{found[0]}[{i}]", version) for i, entry in enumerate(found[1]) if entry is None or entry == "")
    return empty


def portmap_problems(plugin: PluginConf) -> Iterator[Problem]:
    """What portmap's parseConfig refuses on every ADD, before it looks for port mappings: markMasqBit
    with externalSetMarkChain, a markMasqBit outside 0-31, a backend other than iptables or nftables, and
    options of another backend than the one named (or, with none named, than the node's)."""
    if plugin.type != "portmap":
        return
    bit, chain = plugin.field("markMasqBit"), plugin.field("externalSetMarkChain")
    if bit is not None and chain is not None:
        yield Problem(
            bit[0],
            f"{bit[0]} and {chain[0]} are both set: the portmap plugin refuses them together on every pod "
            "(markMasqBit marks the packets it masquerades itself, externalSetMarkChain hands the marking to "
            "that chain); keep one",
        )
        return  # the plugin stops there, before it picks a backend
    if bit is not None and is_int(bit[1]) and not _MARK_BITS[0] <= bit[1] <= _MARK_BITS[1]:
        yield Problem(
            bit[0],
            f"{bit[0]} is {bit[1]}: the portmap plugin takes a bit of the 32-bit packet mark, 0 to 31, and "
            "fails every pod on another; pick a free one (the default is 13; Kubernetes uses 14 and 15, "
            "Calico 20 to 31)",
        )
        return
    options = [(chain[0], "iptables")] if chain is not None else []
    for name in ("conditionsV4", "conditionsV6"):
        found = plugin.field(name)
        if found is not None and (written_for := _conditions_backend(found[1])) is not None:
            options.append((found[0], written_for))
    if plugin.field("backend") is None:
        yield from _portmap_node_backend_problems(plugin, options)
        return
    backend = _string(plugin, "backend")
    if backend is None:
        return  # not a string: nad-plugin-field-types
    path, value = backend
    if value not in PORTMAP_BACKENDS:
        yield Problem(
            path,
            f"{path} is {value!r}: the portmap plugin knows only {' and '.join(PORTMAP_BACKENDS)} and fails "
            "every pod on anything else; write one of them, or leave it out",
        )
        return
    for option, written_for in options:
        if written_for != value:
            yield Problem(
                option,
                f"{option} is an {written_for} option, but {path} is {value!r}: the portmap plugin refuses "
                f"options of the other backend on every pod; drop it, or use the {written_for} backend",
            )


def _portmap_node_backend_problems(plugin: PluginConf, options: list[tuple[str, str]]) -> Iterator[Problem]:
    """Backend ``options`` (path, backend) of a portmap that names no backend: it then takes iptables,
    or nftables on a node that lacks iptables and has nftables, and refuses the other one's options."""
    if len({written_for for _, written_for in options}) > 1:
        paths = ", ".join(option for option, _ in options)
        yield Problem(
            options[0][0],
            f"{paths} are options of both backends: the portmap plugin uses one, iptables or nftables, and "
            "refuses the other's options on every pod; keep the options of one and set backend to it",
        )
        return
    for option, written_for in options:
        where = ("unless the node lacks iptables and has nftables" if written_for == "nftables"
                 else "on nodes that lack iptables and have nftables")
        yield Problem(
            option,
            f"{option} is an {written_for} option, but {plugin.path} names no backend: the portmap plugin "
            f"refuses it and fails every pod {where}; set \"backend\": \"{written_for}\"",
            warning=True,
        )


def sbr_gateway_problems(plugin: PluginConf) -> Iterator[Problem]:
    """sbr's static gateways (doRoutes, used when no table is set): at most two, each an IP address, one
    per family; anything else fails every pod."""
    found = plugin.field("gateways")
    if plugin.type != "sbr" or plugin.field("table") is not None or found is None or not isinstance(found[1], list):
        return
    path, gateways = found
    if len(gateways) > 2:
        yield Problem(
            path,
            f"{path} holds {len(gateways)} gateways: the sbr plugin takes at most two, one IPv4 and one IPv6, and "
            "fails every pod on more; keep one per family",
        )
        return
    seen: dict[int, str] = {}
    for i, gateway in enumerate(gateways):
        gpath = f"{path}[{i}]"
        if gateway is not None and not isinstance(gateway, str):
            continue  # the plugin fails to decode it: nad-plugin-field-types
        addr = parse_ip(gateway)
        if addr is None:
            yield Problem(gpath, f"{gpath} is {describe(gateway)}, not an IP address: the sbr plugin fails every "
                                 "pod on it; write the gateway's address, e.g. 10.1.0.1")
        elif addr.version in seen:
            yield Problem(gpath, f"{gpath} is a second {family(addr)} gateway, after {seen[addr.version]}: the sbr "
                                 "plugin takes one per family and fails every pod on two; keep one")
        else:
            seen[addr.version] = gpath


def _tap_runs_ip_tool(plugin: PluginConf) -> bool:
    # tap creates its device with `ip tuntap` and `ip link set` unless it has both an owner and a group
    # and no SELinux context; only then does it use netlink, which leaves an mtu below 1 unset.
    context = plugin.field("selinuxContext")
    return bool(context and context[1]) or plugin.field("owner") is None or plugin.field("group") is None


# One byte of an address as `ip link set address` reads it (iproute2's ll_addr_a2n, sscanf "%x").
_IP_TOOL_BYTE = re.compile(r"\s*(?:0[xX])?([0-9a-fA-F]+)")
_MAC_FORMS = "02:00:5e:00:53:01, 02-00-5e-00-53-01, 0200.5e00.5301 or 02005e005301"


def _config_mac(plugin: PluginConf, cni_args: Mapping[str, Any] | None = None, pod_base: str = "",
                pod_mac: bool = False, runtime_config: bool = True) -> tuple[str, str, bool, bool] | None:
    """(JSON path, value, whether a pod's own MAC replaces it, whether a pod's "cni-args" gave it) of the
    MAC the config gives the plugin: its literal runtimeConfig.mac when not empty and the literal
    runtimeConfig reaches the plugin (``runtime_config``; False: one is injected for the pod, see
    PluginConf.runtime_config_member), else mac;
    for tuning, args.cni.mac before both, even empty, with ``cni_args`` merged into it (see
    args_cni_spellings). A pod that requests a MAC replaces mac (Multus passes it in CNI_ARGS), never the
    literal runtimeConfig.mac, which comes after it, nor tuning's args. ``pod_mac``: the pod requests a MAC
    of its own, on the networks annotation (see mac_problems)."""
    if plugin.type == "tuning":
        decodes, last = _tuning_args_cni_value(plugin, "mac", cni_args, pod_base)
        if not decodes:
            return None  # said by mac_problems, or for args and cni by nad-plugin-tuning-sysctl
        if last is not None:
            return (last.path, last.value, False, last.from_pod) if last.value else None
    if plugin.type == "bridge":
        return _bridge_mac(plugin, cni_args, pod_base, pod_mac, runtime_config)
    for found, replaceable in ((_literal_mac(plugin, runtime_config), False), (plugin.field("mac"), True)):
        if found is not None and isinstance(found[1], str) and found[1]:
            return found[0], found[1], replaceable, False
    return None


def _literal_mac(plugin: PluginConf, runtime_config: bool, filled: bool | None = None) -> tuple[str, Any] | None:
    """(JSON path, value) of the NAD's literal runtimeConfig.mac that reaches the plugin, injected a
    runtimeConfig unless ``runtime_config`` (see PluginConf.runtime_config_member); None when none does."""
    return plugin.runtime_config_member("mac", injected=not runtime_config, filled=filled)


def _bridge_args_mac(plugin: PluginConf, cni_args: Mapping[str, Any] | None, pod_base: str) -> Spelling | None:
    """The spelling of args.cni.mac bridge ends with (BridgeArgs, a string: a null spelling leaves the one
    before), when not empty; None otherwise, and when bridge cannot decode one (said by
    args_cni_type_problems, or for args and cni by args_object_problems)."""
    spellings = args_cni_spellings(plugin, "mac", cni_args, pod_base)
    if any(args_cni_mismatches(spelling, Kind.STRING) for spelling in spellings):
        return None
    last = next((sp for sp in reversed(spellings) if sp.field == "args.cni.mac" and isinstance(sp.value, str)), None)
    return last if last is not None and last.value else None


def _bridge_mac(plugin: PluginConf, cni_args: Mapping[str, Any] | None, pod_base: str, pod_mac: bool = False,
                runtime_config: bool = True) -> tuple[str, str, bool, bool] | None:
    """_config_mac for bridge (plugins v1.10.0 plugins/main/bridge loadNetConf): a non-empty
    runtimeConfig.mac, else a non-empty args.cni.mac, else MAC= in CNI_ARGS. A pod's MAC replaces the
    config's only as runtimeConfig, with the mac capability: with ``pod_mac`` (the pod requests one, on the
    networks annotation) and that capability, bridge reads neither."""
    injected = pod_mac and plugin.has_capability("mac")
    literal = _literal_mac(plugin, runtime_config and not injected, injected)
    if literal is not None and isinstance(literal[1], str) and literal[1]:
        return literal[0], literal[1], False, False
    if injected:
        return None
    last = _bridge_args_mac(plugin, cni_args, pod_base)
    if last is None:
        return None
    return last.path, last.value, plugin.has_capability("mac"), last.from_pod


#: The plugins that give the pod's interface a MAC address: the interface plugins making it, and tuning
#: changing it afterwards. Each of them reads MAC= in CNI_ARGS (MacEnvArgs: main/bridge loadNetConf,
#: main/macvlan loadConf, main/tap loadConf, meta/tuning parseConf).
MAC_SETTERS = frozenset({"bridge", "macvlan", "tap", "tuning"})


def interface_mac(plugin: PluginConf, pod_mac: str, injected: bool, runtime_config: bool,
                  cni_args: Mapping[str, Any] | None = None, pod_base: str = "") -> tuple[str | None, str] | None:
    """(JSON path of where it comes from, None for the pod's own; the address) of the MAC the plugin gives
    the pod's interface, for a pod requesting ``pod_mac`` ("" for none), which Multus passes as MAC= in
    CNI_ARGS and, ``injected`` (the mac capability, networks annotation), as runtimeConfig.mac; the NAD's
    literal runtimeConfig reaches the plugin when ``runtime_config`` (False: one is injected for the pod, see
    PluginConf.runtime_config_member).
    None when it sets none, or cannot decode its config (other rules' to say). In the order plugins v1.10.0
    loadConf reads them, each non-empty one replacing the one before: macvlan and tap take their mac, MAC=,
    runtimeConfig.mac; bridge MAC=, args.cni.mac, runtimeConfig.mac; tuning its mac, MAC=, runtimeConfig.mac,
    then args.cni.mac, a non-null one even when empty."""
    kind = plugin.type
    if kind not in MAC_SETTERS:
        return None
    found: tuple[str | None, str] = (None, "")
    own = plugin.field("mac") if kind != "bridge" else None
    if own is not None and isinstance(own[1], str) and own[1]:
        found = own[0], own[1]
    if pod_mac:
        found = None, pod_mac
    if kind == "bridge":
        args = _bridge_args_mac(plugin, cni_args, pod_base)
        if args is not None:
            found = args.path, args.value
    # A literal mac spelled to sort after "runtimeConfig" comes after the injected one.
    filled = injected and bool(pod_mac)
    literal = _literal_mac(plugin, runtime_config and not filled, filled)
    if literal is not None and isinstance(literal[1], str) and literal[1]:
        found = literal[0], literal[1]
    elif filled:
        found = None, pod_mac
    if kind == "tuning":
        decodes, last = _tuning_args_cni_value(plugin, "mac", cni_args, pod_base)
        if not decodes:
            return None
        if last is not None and isinstance(last.value, str):
            found = last.path, last.value
    return found if found[1] else None


def _ip_tool_mac(value: str) -> bytes | None:
    """The address `ip link set address` gives a tap device for ``value``; None when ip refuses it, or
    when it is not the six bytes a tap device takes."""
    if "." in value:
        return None  # ip reads it as an IPv4 address: four bytes
    parsed = [_IP_TOOL_BYTE.match(part) for part in value.split(":")]
    octets = [int(m.group(1), 16) if m is not None else 256 for m in parsed]
    return bytes(octets) if len(octets) == 6 and max(octets) <= 255 else None


def mac_problems(plugin: PluginConf, cni_args: Mapping[str, Any] | None = None, pod_base: str = "",
                 pod_mac: bool = False, runtime_config: bool | None = None) -> Iterator[Problem]:
    """A MAC address that macvlan, tap, tuning or bridge cannot set: not one Go's net.ParseMAC reads (or,
    for tap through `ip link set`, ip), or, on the Ethernet devices macvlan, tap and bridge (its
    container's veth) make, not six bytes, a multicast address or all zeros, which the kernel refuses.
    With ``cni_args``, only what a pod's "cni-args" give tuning's or bridge's args.cni.mac (at JSON path
    ``pod_base``); ``pod_mac`` says that the pod requests a MAC of its own on the networks annotation,
    which reaches bridge as runtimeConfig.mac when it declares the mac capability and comes first there
    (plugins v1.10.0 bridge loadNetConf): its args.cni.mac is then not used, nor judged.
    ``runtime_config``: whether the NAD's literal runtimeConfig reaches the plugin (False: one is injected
    for the pod, see PluginConf.runtime_config_member); None judges both ways where it reaches it for
    some pods only (see PluginConf.runtime_config_problems)."""
    from_pod = cni_args is not None
    yield from args_cni_type_problems(plugin, ("mac",), cni_args, pod_base, POD_NEVER_STARTS if from_pod else
                                             "fails every pod")
    if plugin.type not in MAC_SETTERS:
        return
    judge = functools.partial(_config_mac_problems, plugin, cni_args, pod_base, pod_mac)
    yield from plugin.runtime_config_problems(judge) if runtime_config is None else judge(runtime_config)


def _config_mac_problems(plugin: PluginConf, cni_args: Mapping[str, Any] | None, pod_base: str, pod_mac: bool,
                         runtime_config: bool) -> list[Problem]:
    """What mac_problems finds in the MAC the config gives the plugin (see _config_mac)."""
    from_pod = cni_args is not None
    found = _config_mac(plugin, cni_args, pod_base, pod_mac, runtime_config)
    if found is None or found[3] is not from_pod:
        return []
    path, value, replaceable, _ = found
    literal = _literal_mac(plugin, True)
    fails = POD_NEVER_STARTS if from_pod else \
        "fails every pod that does not request a MAC of its own" if replaceable else \
        "fails the ADD" if literal is not None and literal[0] == path and plugin.member_condition("mac") else \
        "fails every pod"
    ip_tool = plugin.type == "tap" and _tap_runs_ip_tool(plugin)
    address = _ip_tool_mac(value) if ip_tool else parse_mac(value)
    if address is None:
        reader = ("`ip link set address`, which the tap plugin runs, reads six hex bytes joined by \":\""
                  if ip_tool else f"the {plugin.type} plugin reads {_MAC_FORMS}")
        return [Problem(path, f"{path} is {value!r}, not a MAC address: {reader}; it {fails}; fix it")]
    if plugin.type == "tuning" or (plugin.type == "tap" and not ip_tool):
        # tuning's interface may be of any type; a tap device made through netlink takes any address.
        return []
    device = "the container's veth the bridge plugin makes" if plugin.type == "bridge" else \
        f"a {plugin.type} interface"
    if len(address) != 6:
        why = f"{len(address)} bytes long, but {device} takes a 6-byte Ethernet address"
    elif address[0] & 1:
        why = f"a multicast address (the lowest bit of its first byte is set), which {device} refuses"
    elif not any(address):
        why = f"all zeros, which {device} refuses"
    else:
        return []
    return [Problem(path, f"{path} is {value!r}, {why}; it {fails}; use a unicast address such as "
                          "02:00:00:00:00:01 (02: locally administered)")]


def mtu_problems(plugin: PluginConf, cni_args: Mapping[str, Any] | None = None,
                 pod_base: str = "") -> Iterator[Problem]:
    """An mtu below 0 where the plugin refuses it: for tuning, args.cni.mtu when not nil, else its own (with
    ``cni_args``, only what a pod's "cni-args" give args.cni.mtu, at JSON path ``pod_base``)."""
    found, from_pod = plugin.field("mtu"), False
    if plugin.type == "tuning":
        decodes, last = _tuning_args_cni_value(plugin, "mtu", cni_args, pod_base)
        if not decodes:
            return  # said by nad-plugin-field-types or pod-networks-cni-args-tuning
        if last is not None:
            found, from_pod = (last.path, last.value), last.from_pod
    if found is None or from_pod is not (cni_args is not None) or not is_int(found[1]) or found[1] >= 0:
        return
    path, value = found
    kind = plugin.type
    if kind in ("macvlan", "vlan"):
        why = f"the {kind} plugin refuses an mtu below 0 (it must lie between 0 and the master's MTU)"
    elif kind == "tuning":
        why = "the tuning plugin hands it to the kernel, which refuses it"
    elif kind == "tap" and _tap_runs_ip_tool(plugin):
        why = "the tap plugin passes it to `ip link set`, which refuses it"
    else:
        # bridge, ptp and ipvlan (and tap through netlink) leave an mtu below 1 unset.
        return
    fails = POD_NEVER_STARTS if from_pod else "fails every pod"
    yield Problem(path, f"{path} is {value}: {why}, and {fails}; give a positive MTU, or leave mtu out to keep "
                        "the default")


def vrf_problems(plugin: PluginConf) -> Iterator[Problem]:
    return _required_problems(plugin, "vrf", "vrfname", "the vrf plugin needs the name of the VRF to create or join")


def bandwidth_problems(plugin: PluginConf) -> Iterator[Problem]:
    if plugin.type != "bandwidth":
        return
    for direction in ("ingress", "egress"):
        rate = plugin.field(f"{direction}Rate")
        burst = plugin.field(f"{direction}Burst")
        rate_v = rate[1] if rate is not None and is_int(rate[1]) else 0
        burst_v = burst[1] if burst is not None and is_int(burst[1]) else 0
        rate_path = rate[0] if rate else f"{plugin.path}.{direction}Rate"
        burst_path = burst[0] if burst else f"{plugin.path}.{direction}Burst"
        if rate_v and not burst_v:
            yield Problem(burst_path, f"{rate_path} is set but {burst_path} is not: set both (or neither)")
        elif burst_v and not rate_v:
            yield Problem(rate_path, f"{burst_path} is set but {rate_path} is not: set both (or neither)")
        if burst_v // 8 >= _BURST_BYTES_LIMIT:
            yield Problem(
                burst_path,
                f"{burst_path} is {burst_v} bits, more than the bandwidth plugin takes (at most "
                f"{8 * _BURST_BYTES_LIMIT - 1} bits, just under 4 GB): lower it",
            )


def bandwidth_interface_problems(netconf: NetConf) -> Iterator[Problem]:
    if not netconf.is_list or not netconf.plugins or netconf.plugins[0].type not in NOT_VETH:
        return
    first = netconf.plugins[0]
    for plugin in netconf.plugins[1:]:
        if plugin.type != "bandwidth":
            continue
        limits = [
            f
            for name in ("ingressRate", "ingressBurst", "egressRate", "egressBurst")
            if (f := plugin.field(name))
        ]
        static = any(is_int(value) and value > 0 for _, value in limits)
        caps = plugin.field("capabilities")
        asks = caps is not None and isinstance(caps[1], Mapping) and caps[1].get("bandwidth") is True
        if not static and not asks:
            continue
        why = (
            f"{plugin.path} shapes traffic on the host end of a veth pair, but {first.path} is {first.type}, "
            "whose pod interface has no veth peer"
        )
        if static:
            yield Problem(plugin.path, f"{why}: every pod fails; use bridge or ptp, or drop the limits")
        else:
            yield Problem(
                plugin.path,
                f"{why}: pods that request bandwidth will fail; use bridge or ptp for shaped pods",
                warning=True,
            )


def _sysctl_file(key: str) -> str:
    """The file tuning writes for the sysctl ``key``: dots become slashes, the first IFNAME the pod's
    interface (kept as IFNAME here: it is the same for every key), joined under /proc/sys and cleaned."""
    return posixpath.normpath("/proc/sys/" + key.replace(".", "/"))


def sysctl_key_problem(key: str) -> str | None:
    """Why tuning refuses the sysctl ``key`` (None when it accepts it): whatever does not end up below
    /proc/sys/net/ is refused."""
    if not _sysctl_file(key).startswith("/proc/sys/net/"):
        return "is outside net.* (the tuning plugin only writes network sysctls)"
    return None


def sysctl_problems(plugin: PluginConf) -> Iterator[Problem]:
    """tuning's sysctl, and args.cni.sysctl, whose entries it copies into the first."""
    if plugin.type != "tuning":
        return
    own = own_sysctl(plugin)
    if not own.mistyped:  # a spelling of the wrong type is nad-plugin-field-types'
        yield from _duplicated_sysctl_problems(own)
        yield from _sysctl_entry_problems(own.entries, set(own.entries), own.repeated)
    merged = decode_sysctl_spellings(args_cni_spellings(plugin, "sysctl"))
    yield from args_sysctl_problems(plugin, merged, False, 'and fails every pod; add "sysctl": {} beside it',
                                    "fails every pod")


def _duplicated_sysctl_problems(own: DecodedSysctl) -> Iterator[Problem]:
    """tuning's validateSysctlConflictingKeys decodes every spelling of its own sysctl with one record of
    the keys seen, and refuses a key seen twice: the same key under two spellings, whatever its values
    (libcni has already kept one value of a key repeated in one object)."""
    seen: dict[str, str] = {}
    for spelling in own.objects:
        for name in spelling.value:
            where = f'{spelling.path}["{name}"]'
            if name in seen:
                yield Problem(
                    where,
                    f"{where} is also {seen[name]}: the tuning plugin reads every spelling of sysctl and refuses a "
                    'key given twice ("duplicated sysctl keys are not allowed"), which fails every pod; keep one',
                )
            else:
                seen[name] = where


@dataclass(frozen=True, slots=True)
class Spelling:
    """A key whose value tuning decodes on the way to one of its fields (a sysctl map, args.cni.mac), in
    the order it decodes them: a spelling of the field itself (for sysctl, an object adds its entries;
    null empties the map, or makes the pointer nil), or of "args" or "cni" above it that is not an object
    (null drops what came before too)."""

    #: The key's JSON path (in the NAD, or in the pod's "cni-args").
    path: str
    value: Any
    #: Whether a pod's "cni-args" gave it.
    from_pod: bool
    #: The field of the config it is a spelling of: "sysctl", "args", "args.cni", or "args.cni." and the
    #: name of a field of args.cni ("args.cni.sysctl", "args.cni.mac", "args.cni.ips").
    field: str


@dataclass(frozen=True, slots=True)
class SysctlEntry:
    """A key of a sysctl object, as tuning decodes it into its map."""

    #: Its JSON path.
    path: str
    value: Any
    #: Whether a pod's "cni-args" gave it.
    from_pod: bool
    #: The JSON path of the spelling of sysctl whose object holds it.
    source: str


@dataclass(frozen=True, slots=True)
class DroppedEntry:
    """An entry of a sysctl object that never reaches tuning: ``by``, a later entry of the same key with
    another value, replaced it, or ``by`` was null (``emptied``) and made the map nil again."""

    entry: SysctlEntry
    by: str
    emptied: bool


@dataclass(frozen=True, slots=True)
class DecodedSysctl:
    """A sysctl map of tuning (its own, or args.cni's) as ``decode_sysctl_spellings`` decodes it."""

    #: Each sysctl key and the entry that sets it, as tuning has them in the end; empty when the map is
    #: nil or empty.
    entries: dict[str, SysctlEntry]
    #: The spellings of "sysctl" whose value is an object: the entries' sources.
    objects: list[Spelling]
    #: The spellings whose value is neither an object nor null: tuning fails to decode its config.
    mistyped: list[Spelling]
    #: The entries, of any object, whose value is neither a string nor null: tuning fails to decode too.
    mistyped_entries: list[SysctlEntry]
    #: Entries that a later spelling replaced or dropped.
    dropped: list[DroppedEntry]
    #: For each key of ``entries`` repeated in the object that gave it, the values it had before.
    repeated: dict[str, tuple[Any, ...]]
    #: Whether the map is nil in the end: no spelling was an object, or a null came after the last one.
    nil: bool
    #: The null that made it nil again after an object, if one did.
    emptied_by: str | None

    @property
    def decodes(self) -> bool:
        """Whether tuning decodes the config at all: no spelling nor entry of the wrong type."""
        return not self.mistyped and not self.mistyped_entries


def _sorted_spellings(obj: Mapping[str, Any], name: str, *added: str) -> list[str]:
    """The keys of ``obj`` (and ``added`` ones) that Go decodes into the struct field ``name``, in the
    order tuning receives them: libcni and Multus encode the config again from Go maps, keys sorted (by
    bytes; code points sort the same)."""
    return sorted({key for key in (*obj, *added) if fold(key) == name})


def own_sysctl(plugin: PluginConf) -> DecodedSysctl:
    """tuning's own sysctl map, decoded as args.cni.sysctl is: every spelling into one map, in sorted
    order, so whether it is nil (where tuning copies args.cni.sysctl) depends on all of them."""
    return plugin.derived("tuning-own-sysctl", lambda: decode_sysctl_spellings(
        Spelling(f"{plugin.path}.{key}", plugin.conf[key], False, "sysctl")
        for key in _sorted_spellings(plugin.conf, "sysctl")))


def args_cni_spellings(plugin: PluginConf, name: str, cni_args: Mapping[str, Any] | None = None,
                       pod_base: str = "") -> list[Spelling]:
    """The spellings a plugin decodes into args.cni.``name`` (tuning's sysctl, mac, mtu..., static's ips),
    in order. Go matches "args", "cni" and ``name`` case-insensitively, and decodes every spelling of each
    into its one field: a later object into the struct or map an earlier one made (a later list replaces
    an earlier one), null making it nil again, so any null above args.cni.``name`` drops it like a null of
    its own. With ``cni_args``, a pod's "cni-args" (at JSON path ``pod_base``) merged as Multus v4.3.0
    injectCNIArgs does: by exact key, into "args" and its "cni" (added when missing, beside any other
    spelling), the pod's keys replacing the NAD's, its numbers as Go encodes them again (as_reencoded)."""
    spellings: list[Spelling] = []
    injected = ("args",) if cni_args is not None else ()
    for key in _sorted_spellings(plugin.conf, "args", *injected):
        path, args = f"{plugin.path}.{key}", plugin.conf.get(key)
        into_args = cni_args is not None and key == "args"
        if into_args and not isinstance(args, Mapping):
            # Multus adds it when the NAD has none (its type assertion panics on a value not an object:
            # pod-networks-cni-args-nad-args; judged here as if it were absent).
            args = {}
        if not isinstance(args, Mapping):
            spellings.append(Spelling(path, args, False, "args"))
            continue
        for cni_key in _sorted_spellings(args, "cni", *(("cni",) if into_args else ())):
            cni_path, cni = f"{path}.{cni_key}", args.get(cni_key)
            keys = {k: Spelling(f"{cni_path}.{k}", value, False, f"args.cni.{name}")
                    for k, value in (cni.items() if isinstance(cni, Mapping) else ())}
            if cni_args is not None and into_args and cni_key == "cni":
                keys.update((k, Spelling(f"{pod_base}.{k}", as_reencoded(value), True, f"args.cni.{name}"))
                            for k, value in cni_args.items())
            elif not isinstance(cni, Mapping):
                spellings.append(Spelling(cni_path, cni, False, "args.cni"))
                continue
            spellings += (keys[k] for k in _sorted_spellings(keys, fold(name)))
    return spellings


#: What fails when a plugin cannot use what a pod's "cni-args" give it.
POD_NEVER_STARTS = "fails the pod's ADD on every try, so the pod never starts"
#: The fields tuning reads from args.cni, its IPAMArgs: each a pointer, which replaces the field of its own
#: config when not nil. Multus merges a pod's "cni-args" there.
TUNING_ARGS_CNI: Mapping[str, FieldType] = {"sysctl": Kind.STRING_MAP, "mac": Kind.STRING, "promisc": Kind.BOOL,
                                            "mtu": Kind.INT, "allmulti": Kind.BOOL, "txQLen": Kind.INT}
#: The fields each plugin decodes from args.cni (plugins v1.10.0: tuning's IPAMArgs, bridge's BridgeArgs),
#: where Multus merges a pod's "cni-args"; static's and host-local's ips are their IPAM rules'.
ARGS_CNI: Mapping[str, Mapping[str, FieldType]] = {"tuning": TUNING_ARGS_CNI, "bridge": {"mac": Kind.STRING}}
#: The plugins (other than tuning, whose are args_sysctl_problems') that decode "args" into a struct, and
#: the depth to which they read it as objects: tap's is an empty struct, bridge's holds the struct "cni".
ARGS_OBJECTS: Mapping[str, tuple[str, ...]] = {"bridge": ("args", "args.cni"), "tap": ("args",)}
#: The fields of args.cni whose wrong types a rule of their own reports, with the rest of what it says of
#: them (nad-plugin-tuning-sysctl, nad-plugin-mac); the others' are nad-plugin-field-types'.
_OWN_RULE = frozenset({"sysctl", "mac"})
_ARGS_CNI_FIX = {"mac": "write a MAC address, e.g. 02:00:00:00:00:01"}


def args_cni_mismatches(spelling: Spelling, field_type: FieldType) -> list[tuple[str, Any, str]]:
    """What Go fails to decode in ``spelling``, one of those of a field of args.cni of ``field_type`` (or
    of "args" or "cni" above it, which are structs), as (JSON path, value, what it must be). Any of them
    fails the decode of the whole config, even when a later spelling replaces it."""
    if spelling.value is None:
        return []
    if not spelling.field.startswith("args.cni."):
        return [(spelling.path, spelling.value, "an object")]
    return list(type_mismatches(spelling.path, spelling.value, field_type))


def _tuning_args_cni_value(plugin: PluginConf, name: str, cni_args: Mapping[str, Any] | None = None,
                           pod_base: str = "") -> tuple[bool, Spelling | None]:
    """Whether tuning decodes every spelling of args.cni.``name`` (with ``cni_args`` merged, see
    args_cni_spellings), and the spelling whose value the pointer ends with: the last one, unless it is a
    null (of it, or of args or cni above it), which leaves it nil, so that its own field counts."""
    spellings = args_cni_spellings(plugin, name, cni_args, pod_base)
    if any(args_cni_mismatches(spelling, TUNING_ARGS_CNI[name]) for spelling in spellings):
        return False, None
    return True, spellings[-1] if spellings and spellings[-1].value is not None else None


def args_cni_type_problems(plugin: PluginConf, names: Iterable[str], cni_args: Mapping[str, Any] | None = None,
                           pod_base: str = "", fails: str = "fails every pod") -> Iterator[Problem]:
    """The plugin's args.cni.``names`` (those of them its ARGS_CNI has; tuning's sysctl aside) under any
    spelling, of a type it cannot decode: the NAD's, or with ``cni_args`` only the pod's (merged as
    args_cni_spellings says). ``fails`` says what fails then. A spelling of "args" or "cni" that is not an
    object is args_sysctl_problems' (tuning) or args_object_problems'."""
    fields = ARGS_CNI.get(plugin.type or "", {})
    for name in (name for name in names if name in fields):
        for spelling in args_cni_spellings(plugin, name, cni_args, pod_base):
            if spelling.field != f"args.cni.{name}" or spelling.from_pod is not (cni_args is not None):
                continue
            for path, value, expected in args_cni_mismatches(spelling, fields[name]):
                fix = _ARGS_CNI_FIX.get(name, f"write it as {expected}")
                yield Problem(path, f"{path} is {describe(value)}, but the {plugin.type} plugin reads args.cni.{name} "
                                    f"as {expected}: it fails to load its config and {fails}; {fix}")


def args_object_problems(plugin: PluginConf) -> Iterator[Problem]:
    """A spelling of "args" (or of its "cni") that is not an object, where the plugin (ARGS_OBJECTS)
    decodes it into a struct: it fails to load its config on every ADD ("cannot unmarshal"). Checked with
    the real bridge and tap."""
    depth = ARGS_OBJECTS.get(plugin.type or "", ())
    for spelling in args_cni_spellings(plugin, "") if depth else ():
        if spelling.field not in depth:
            continue
        for path, value, _ in args_cni_mismatches(spelling, Kind.OBJECT):
            yield Problem(path, f"{path} is {describe(value)}, but the {plugin.type} plugin reads it as an object: it "
                                "fails to load its config and fails every pod; make it an object (or remove it)")


def decode_sysctl_spellings(spellings: Iterable[Spelling]) -> DecodedSysctl:
    """What tuning decodes into one of its sysctl maps (map[string]string, or args.cni's
    *map[string]string) from ``spellings``, in order: an object is decoded into the map already there,
    adding its entries to the earlier ones or replacing them; null makes the map nil again; anything
    else fails the decode. Checked with the real Multus v4.3.0 merge and tuning v1.10.0."""
    entries: dict[str, SysctlEntry] = {}
    objects: list[Spelling] = []
    mistyped: list[Spelling] = []
    mistyped_entries: list[SysctlEntry] = []
    dropped: list[DroppedEntry] = []
    repeated: dict[str, tuple[Any, ...]] = {}
    nil, emptied_by = True, None
    for spelling in spellings:
        if spelling.value is None:
            dropped += (DroppedEntry(entry, spelling.path, True) for entry in entries.values())
            entries, repeated = {}, {}
            if not nil:
                nil, emptied_by = True, spelling.path
        elif isinstance(spelling.value, Mapping):
            nil, emptied_by = False, None
            objects.append(spelling)
            for name, setting in spelling.value.items():
                entry = SysctlEntry(f'{spelling.path}["{name}"]', setting, spelling.from_pod, spelling.path)
                if setting is not None and not isinstance(setting, str):
                    mistyped_entries.append(entry)
                old = entries.get(name)
                if old is not None and old.value != setting:
                    dropped.append(DroppedEntry(old, entry.path, False))
                entries[name] = entry
                repeated[name] = overwritten(spelling.value).get(name, ())
        else:
            mistyped.append(spelling)
    return DecodedSysctl(entries, objects, mistyped, mistyped_entries, dropped, repeated, nil, emptied_by)


def args_sysctl_problems(plugin: PluginConf, merged: DecodedSysctl, from_pod: bool, then: str,
                         fails: str) -> Iterator[Problem]:
    """What tuning ``plugin`` refuses in ``merged``, the args.cni.sysctl it reads: the NAD's own, or
    merged with a pod's "cni-args", which Multus sets in args.cni of every plugin of the NAD. Only what
    comes from the pod (``from_pod``), or only what the NAD has. ``then`` ends the message of a plugin
    without a sysctl object: what fails, and the fix; ``fails``, what fails when tuning cannot decode
    its config."""
    if plugin.type != "tuning":
        return
    ours = [entry for entry in merged.entries.values() if entry.from_pod is from_pod]
    for path, value, field in [(s.path, s.value, s.field) for s in merged.mistyped if s.from_pod is from_pod] + [
            (e.path, e.value, "args.cni.sysctl") for e in merged.mistyped_entries if e.from_pod is from_pod]:
        reads = f"{field} as an object whose values are strings" if field.endswith("sysctl") else \
            f"{field} as an object"
        yield Problem(
            path,
            f"{path} is {describe(value)}, but the tuning plugin reads {reads}: it fails to load its config and "
            f"{fails}; write it as such an object",
        )
    own = own_sysctl(plugin)
    if merged.decodes and ours and own.decodes and own.nil:
        # tuning.go parseConf copies the entries into conf.SysCtl, a nil map without a sysctl of its own.
        sources = {entry.source for entry in ours}
        where = next(spelling.path for spelling in merged.objects if spelling.path in sources)
        emptied = "" if own.emptied_by is None else (
            f" ({own.emptied_by} is null, which empties it: the tuning plugin reads every spelling of sysctl, "
            "in sorted order of the keys)")
        yield Problem(
            where,
            f"{where} is set but {plugin.path} has no sysctl object{emptied}: the tuning plugin crashes copying "
            f"the entries into it {then}",
        )
    for dropped in merged.dropped:
        if dropped.entry.from_pod is from_pod:
            path = dropped.entry.path
            why = f"{dropped.by} is null, which empties the map" if dropped.emptied else f"{dropped.by} replaces it"
            yield Problem(
                path,
                f"{path} never reaches the tuning plugin: {why} (Go reads every spelling of args.cni.sysctl "
                "into one map, in sorted order of the keys); keep one spelling of sysctl",
                warning=True,
            )
    if merged.decodes:
        yield from _sysctl_entry_problems(
            merged.entries, {name for name, entry in merged.entries.items() if entry.from_pod is from_pod},
            merged.repeated)


def _sysctl_entry_problems(sysctls: Mapping[str, SysctlEntry], judged: Collection[str],
                           repeated: Mapping[str, tuple[Any, ...]]) -> Iterator[Problem]:
    """What tuning refuses in ``sysctls`` (each key with its JSON path and value), and what it writes
    other than meant, for the keys ``judged``; ``repeated``, the values a repeated key had before."""
    written: dict[str, str] = {}
    for key, entry in sysctls.items():
        path, value = entry.path, entry.value
        why = sysctl_key_problem(key)
        if why is not None:
            if key in judged:
                yield Problem(
                    path, f"{path}: the key {key!r} {why}; set it through the pod's securityContext instead"
                )
            continue
        lost = [v for v in repeated.get(key, ()) if v != value]
        if lost and key in judged:
            # libcni reads the config into a map before tuning sees it: only the last value arrives.
            yield Problem(
                path,
                f"{path} is written more than once: only its last value, {describe(value)}, reaches the "
                f"tuning plugin, and {', '.join(describe(v) for v in lost)} is dropped; keep one",
                warning=True,
            )
        other = written.setdefault(_sysctl_file(key), key)
        other_path, other_value = sysctls[other].path, sysctls[other].value
        if other != key and other_value != value and (key in judged or other in judged):
            # Two keys for one file: tuning writes them in Go's map order, which changes from pod to pod.
            yield Problem(
                path,
                f"{path} sets the same sysctl as {other_path}, to another value ({describe(value)}, not "
                f"{describe(other_value)}): the tuning plugin writes the two in random order, so pods "
                "get either; keep one",
                warning=True,
            )
