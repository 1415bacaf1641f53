"""IPAM sections (host-local, whereabouts, static, dhcp) parsed into typed address ranges.

Each ``check_*`` function returns the problems its IPAM plugin would hit, with the JSON path of the
field; ``nad_allocation_ranges`` gives the ranges a NAD hands out, for the cluster-wide overlap
index. Nothing here raises on malformed input: a field that cannot be read is a problem, not an
exception.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.cni.addresses import (
    IPAddress,
    IPNetwork,
    between,
    family,
    mapped_prefix,
    parse_cidr,
    parse_ip,
    parse_network_cidr,
    parse_static_cidr,
    prefix_length,
    unpadded,
    within,
)
from webhook.cni.config import NetConf, PluginConf, Problem
from webhook.cni.fields import Kind, ListOf, describe, is_int
from webhook.cni.gojson import go_field, struct_fields
from webhook.cni.plugins import (
    ADDRESS_ENTRY,
    args_cni_mismatches,
    args_cni_spellings,
    decodes_runtime_config,
    ipam_field_type_problems,
)
from webhook.names import DHCP_SOCKET
from webhook.objects import as_text, is_object_name

# CNI 0.1.0 / 0.2.0 results carry one address per family.
_SINGLE_ADDRESS_VERSIONS = frozenset({"0.1.0", "0.2.0"})


@dataclass(frozen=True, slots=True)
class AddressRange:
    """One contiguous block of addresses a NAD hands out (both ends inclusive)."""

    first: IPAddress
    last: IPAddress
    #: JSON path of the range in the NAD (e.g. spec.config.plugins[0].ipam.ranges[0][1]).
    path: str
    ipam_type: str
    plugin_type: str | None
    #: The L2 segment the addresses live on, as far as the config says.
    master: str | None = None
    bridge: str | None = None
    vlan: int | None = None
    #: whereabouts only: pools are keyed by range and network_name.
    network_name: str = ""
    enable_overlapping_ranges: bool = True
    #: The CIDR the range was written as (host-local subnet, whereabouts range); None for static.
    network: IPNetwork | None = None
    #: host-local only: the directory its allocations are kept in on each node (dataDir/network name),
    #: None when the name is unknown. Ranges of one store never give an address twice on a node.
    store: str | None = None
    #: When the plugin allocates from the range for some pods only (a literal runtimeConfig.ipRanges or ips
    #: that a capability filled for a pod replaces, or static's addresses that such ips replace for the
    #: others): the condition, for a message; None for every pod.
    used_when: str | None = None

    @property
    def version(self) -> int:
        return self.first.version

    def overlaps(self, other: AddressRange) -> bool:
        return between(other.first, self.first, self.last) or between(self.first, other.first, other.last)


@dataclass(frozen=True, slots=True)
class _Field:
    path: str
    value: Any


def _given(obj: Mapping[str, Any], base: str, name: str) -> _Field | None:
    """The field, null included: Go hands null to the UnmarshalJSON of a types.IPNet field (a subnet, a
    route's dst), which refuses it as an empty CIDR, where a null net.IP or string stays unset."""
    found = go_field(obj, name)
    return None if found is None else _Field(f"{base}.{found[0]}", found[1])


def _get(obj: Mapping[str, Any], base: str, name: str) -> _Field | None:
    found = _given(obj, base, name)
    return None if found is None or found.value is None else found


def _ip_field(
    obj: Mapping[str, Any], base: str, name: str, problems: list[Problem], *, sloppy: bool = False,
    dropped: str | None = None,
) -> IPAddress | None:
    """A Go net.IP field: absent, null and "" mean unset; anything unparsable fails the plugin. A
    ``sloppy`` field is parsed as k8s.io/utils' ParseIPSloppy parses it (see ``_sloppy``). A string the
    plugin parses itself and drops when it cannot read it (whereabouts' top-level range_start /
    range_end) is refused all the same, with ``dropped``, what the plugin then does, as the message."""
    f = _get(obj, base, name)
    if f is None or f.value == "":
        return None
    addr = parse_ip(_sloppy(f.path, f.value, problems) if sloppy else f.value)
    if addr is None:
        advice = (
            dropped if dropped is not None and isinstance(f.value, str)
            else "write a plain address such as 10.1.2.3"
        )
        problems.append(Problem(f.path, f"{f.path} is {describe(f.value)}, not an IP address: {advice}"))
    return addr


def _sloppy(path: str, value: Any, problems: list[Problem]) -> Any:
    """``value`` (an address, a CIDR, or whereabouts' first-last/prefix) as k8s.io/utils' ParseIPSloppy and
    ParseCIDRSloppy read it: IPv4 parts with leading zeros in decimal. A warning says so when that changes
    a value that then parses, as other tools read such a part as octal, or refuse it."""
    if not isinstance(value, str):
        return value
    parts = [unpadded(part) for part in value.split("-", 1)]
    text = "-".join(parts)
    if text != value and all(parse_ip(part) or parse_cidr(part) for part in parts):
        problems.append(
            Problem(
                path,
                f"{path} is {value!r}: whereabouts reads the leading zeros as decimal, {text!r}, where other "
                f"tools read such a part as octal or refuse it; write {text!r}",
                warning=True,
            )
        )
    return text


def _too_small(net: IPNetwork) -> bool:
    return net.prefixlen > net.max_prefixlen - 2


def _span(first: IPAddress, last: IPAddress) -> str:
    return f"{first}-{last}"


def _with_field_types(plugin: PluginConf, problems: list[Problem]) -> list[Problem]:
    """``problems``, then the values of the ipam section its plugin cannot decode (IPAM_FIELDS), but in
    fields already judged here with more to say (a subnet that is a number is "not a CIDR"; ranges past
    the limit are not read at all)."""
    return problems + list(ipam_field_type_problems(plugin, {problem.field for problem in problems}))


# --- host-local -------------------------------------------------------------------------------


#: The most ranges (over all range sets) one host-local section may hold. host-local itself compares every
#: pair of ranges on each ADD; real configs hold one range set per address family with a few ranges each,
#: and a fragmented pool fits in far fewer ranges of larger subnets with rangeStart/rangeEnd.
MAX_HOST_LOCAL_RANGES = 1024


@dataclass(frozen=True, slots=True)
class HostLocalRange:
    path: str
    subnet: IPNetwork
    start: IPAddress
    end: IPAddress
    gateway: IPAddress | None


def _host_local_range(obj: Any, path: str, problems: list[Problem]) -> HostLocalRange | None:
    if not isinstance(obj, Mapping):
        problems.append(Problem(path, f"{path} is {describe(obj)}: a range must be an object with a subnet"))
        return None
    before = len(problems)
    subnet_f = _given(obj, path, "subnet")
    start = _ip_field(obj, path, "rangeStart", problems)
    end = _ip_field(obj, path, "rangeEnd", problems)
    gateway = _ip_field(obj, path, "gateway", problems)
    if subnet_f is None:
        problems.append(Problem(f"{path}.subnet", f"{path}.subnet is missing: set the CIDR to allocate from"))
        return None
    parsed = parse_cidr(subnet_f.value)
    if parsed is None:
        problems.append(
            Problem(
                subnet_f.path,
                f"{subnet_f.path} is {describe(subnet_f.value)}, not a CIDR: write it as network/prefix, "
                "e.g. 10.1.0.0/24 or fd00:1::/64",
            )
        )
        return None
    addr, subnet = parsed
    sp = subnet_f.path
    if _too_small(subnet):
        problems.append(
            Problem(
                sp,
                f"{sp} is {subnet_f.value}: a /{subnet.prefixlen} is too small for host-local to allocate "
                f"from; use at most a /{subnet.max_prefixlen - 2}",
            )
        )
        return None
    if addr != subnet.network_address:
        problems.append(
            Problem(
                sp,
                f"{sp} is {subnet_f.value}, which has host bits set: host-local refuses it; "
                f"write the network "
                f"address, {subnet}",
            )
        )
        return None
    if len(problems) > before:
        return None
    if gateway is not None and not within(gateway, subnet):
        gp = _get(obj, path, "gateway")
        gpath = gp.path if gp else f"{path}.gateway"
        problems.append(
            Problem(
                gpath,
                f"{gpath} {gateway} is outside the subnet {subnet}: host-local refuses it; use an address "
                f"inside {subnet} or leave the gateway out (it defaults to the first address)",
            )
        )
    default_start = subnet.network_address + 1
    # host-local keeps the IPv4 broadcast address out of the range; IPv6 has none.
    default_end = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address
    bad = False
    for name, value in (("rangeStart", start), ("rangeEnd", end)):
        if value is not None and not within(value, subnet):
            f = _get(obj, path, name)
            fpath = f.path if f else f"{path}.{name}"
            problems.append(
                Problem(
                    fpath, f"{fpath} {value} is outside the subnet {subnet}: use an address inside {subnet}"
                )
            )
            bad = True
    if bad:
        return None
    first = start if start is not None else default_start
    last = end if end is not None else default_end
    if int(first) > int(last):
        f = _get(obj, path, "rangeStart") or _get(obj, path, "rangeEnd")
        fpath = f.path if f else path
        problems.append(
            Problem(
                fpath,
                f"{fpath}: the range starts at {first}, after its end {last}: make rangeStart lower than "
                "rangeEnd (rangeEnd defaults to the last usable address of the subnet)",
            )
        )
        return None
    return HostLocalRange(path, subnet, first, last, gateway)


HostLocalSets = tuple[tuple[tuple[HostLocalRange, ...], ...], tuple[Problem, ...]]


def host_local_ranges(plugin: PluginConf) -> HostLocalSets:
    """The range sets the plugin's host-local section would allocate from, and what host-local would
    refuse; computed once per plugin (nad-ipam-host-local and the overlap index both read them)."""
    ipam = plugin.ipam
    if ipam is None:
        return (), ()
    return plugin.derived("host-local ranges", lambda: _host_local_ranges(ipam, plugin.ipam_path))


def _range_count(entries: list[Any]) -> int:
    return sum(len(entry) if isinstance(entry, list) else 1 for entry in entries)


def _host_local_ranges(ipam: Mapping[str, Any], ipam_path: str) -> HostLocalSets:
    problems: list[Problem] = []
    sets: list[tuple[HostLocalRange, ...]] = []
    ranges_f = _get(ipam, ipam_path, "ranges")
    if ranges_f is not None and isinstance(ranges_f.value, list):
        count = _range_count(ranges_f.value)
        if count > MAX_HOST_LOCAL_RANGES:
            return (), (
                Problem(
                    ranges_f.path,
                    f"{ranges_f.path} holds {count} ranges, more than {MAX_HOST_LOCAL_RANGES}: host-local "
                    "compares every pair of them on each pod's ADD, and no network needs that many; merge "
                    "them into fewer ranges of larger subnets (rangeStart and rangeEnd bound a range)",
                ),
            )
    flat_subnet = _given(ipam, ipam_path, "subnet")
    if flat_subnet is not None:
        r = _host_local_range(ipam, ipam_path, problems)
        if r is not None:
            sets.append((r,))
    else:
        # Without a subnet host-local ignores the flat fields, but still decodes them.
        for name in ("rangeStart", "rangeEnd", "gateway"):
            _ip_field(ipam, ipam_path, name, problems)
    if ranges_f is not None:
        if not isinstance(ranges_f.value, list):
            problems.append(
                Problem(
                    ranges_f.path,
                    f"{ranges_f.path} is {describe(ranges_f.value)}: it must be a list of range sets, "
                    "each a list "
                    'of {"subnet": ...} objects',
                )
            )
        else:
            sets.extend(_range_sets(ranges_f.value, ranges_f.path, problems))
    problems.extend(_cross_set_overlaps(sets))
    return tuple(sets), tuple(problems)


def _range_sets(value: list[Any], path: str, problems: list[Problem]) -> Iterator[tuple[HostLocalRange, ...]]:
    """The range sets of a list of them at ``path`` (ipam.ranges, or a runtimeConfig.ipRanges), each
    whole; what host-local refuses in them goes to ``problems``."""
    for i, entry in enumerate(value):
        spath = f"{path}[{i}]"
        if not isinstance(entry, list):
            problems.append(
                Problem(
                    spath,
                    f"{spath} is {describe(entry)}: a range set is a list of range objects; wrap it "
                    "in [ ]",
                )
            )
            continue
        if not entry:
            problems.append(
                Problem(spath, f"{spath} is an empty range set: add a range or remove it")
            )
            continue
        members = [_host_local_range(obj, f"{spath}[{j}]", problems) for j, obj in enumerate(entry)]
        good = [m for m in members if m is not None]
        problems.extend(_range_set_problems(good))
        if len(good) == len(members):
            yield tuple(good)


def _overlapping_pairs(
    ranges: Sequence[tuple[int, HostLocalRange]],
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Overlaps between ranges of different groups: ``ranges`` holds (group, range), and each pair
    found is ((group, position), (group, position)) of its two ranges, the one earlier in ``ranges``
    first. Each range that overlaps a range of another group starting no later (by first address, then
    position) is in a pair, with one such range: so some pair is found whenever two ranges of different
    groups overlap, and never more pairs than ranges (all overlapping pairs may be quadratically many).

    A sweep in order of the first address: each range is compared with one range only, the one reaching
    furthest among those before it of other groups (kept as the furthest one so far, and the furthest of
    a group other than its group), so the cost is the sort's, O(n log n). Ranges of different families
    never overlap."""
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i][1].start.version, int(ranges[i][1].start), i))
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    # (end, group, position): the furthest-reaching range so far, and the furthest of the other groups.
    best: tuple[int, int, int] | None = None
    other: tuple[int, int, int] | None = None
    version = 0
    for i in order:
        group, r = ranges[i]
        if r.start.version != version:
            version, best, other = r.start.version, None, None
        partner = best if best is not None and best[1] != group else other
        if partner is not None and int(r.start) <= partner[0]:
            a, b = sorted(((partner[1], partner[2]), (group, i)), key=lambda p: p[1])
            pairs.append((a, b))
        end = int(r.end)
        if best is None or group == best[1]:
            if best is None or end > best[0]:
                best = (end, group, i)
        elif end > best[0]:
            best, other = (end, group, i), best
        elif other is None or end > other[0]:
            other = (end, group, i)
    return pairs


def _range_set_problems(members: Sequence[HostLocalRange]) -> Iterator[Problem]:
    if not members:
        return
    first = members[0]
    for other in members[1:]:
        if other.start.version != first.start.version:
            yield Problem(
                other.path,
                f"{other.path} is {family(other.subnet)} but {first.path} is {family(first.subnet)}: "
                "one range set "
                "holds one address family; put the other family in its own range set",
            )
            return
    # Each range is a group of its own: any two that overlap are refused.
    pairs = _overlapping_pairs(list(enumerate(members)))
    for (_, ia), (_, ib) in sorted(pairs, key=lambda pair: (pair[1][1], pair[0][1])):
        a, b = members[ia], members[ib]
        yield Problem(
            b.path,
            f"{b.path} ({_span(b.start, b.end)}) overlaps {a.path} ({_span(a.start, a.end)}) "
            "in the same "
            "range set: make the ranges disjoint",
        )


def _cross_set_overlaps(sets: Sequence[Sequence[HostLocalRange]], first: int | None = None) -> Iterator[Problem]:
    """Overlaps between range sets, which host-local refuses ("range set 0 overlaps with 1"); with
    ``first``, only those involving one of the first ``first`` sets."""
    flat = [(n, r) for n, s in enumerate(sets) for r in s]
    # One finding per pair of range sets, as host-local names the sets.
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for (set_a, ia), (set_b, ib) in sorted(_overlapping_pairs(flat), key=lambda pair: (pair[1], pair[0])):
        if first is None or min(set_a, set_b) < first:
            found.setdefault((set_a, set_b), (ia, ib))
    for ia, ib in sorted(found.values(), key=lambda pair: (flat[pair[1]][0], flat[pair[0]][0])):
        a, b = flat[ia][1], flat[ib][1]
        yield Problem(
            b.path,
            f"{b.path} ({_span(b.start, b.end)}) overlaps {a.path} ({_span(a.start, a.end)}): "
            "host-local "
            "refuses overlapping range sets; make them disjoint",
        )


def check_host_local(plugin: PluginConf, cni_version: str | None) -> list[Problem]:
    """What host-local refuses in the config, judged both ways where the NAD's literal runtimeConfig (its
    ips and ipRanges) reaches it for some pods only (PluginConf.runtime_config_problems)."""
    if plugin.ipam is None:
        return []
    return _with_field_types(plugin, plugin.runtime_config_problems(
        functools.partial(_host_local_problems, plugin, cni_version, _fails(plugin, "ips", "ipRanges"))))


def _fails(plugin: PluginConf, *members: str) -> str:
    """What an IPAM refusing the config does, for a message: every pod, or only some when the NAD's literal
    runtimeConfig, or one of the ``members`` of it that the IPAM reads, does not reach it for every pod (the
    message then says when)."""
    conditional = (plugin.runtime_config_not_objects(injected=True) != plugin.runtime_config_not_objects(injected=False)
                   or any(plugin.member_condition(member) for member in members))
    return "fails the ADD" if conditional else "fails every pod"


def _host_local_problems(plugin: PluginConf, cni_version: str | None, fails: str,
                         runtime_config: bool) -> list[Problem]:
    """check_host_local's findings when the NAD's literal runtimeConfig does (``runtime_config``) or does
    not reach host-local, which then ``fails`` on what it refuses there."""
    path = plugin.ipam_path
    _, found = host_local_ranges(plugin)
    request = host_local_request(plugin, fails=fails, runtime_config=runtime_config)
    problems = [*found, *request.range_problems]
    if not request.sets and not problems:
        problems.append(
            Problem(
                path,
                f"{path} has no subnet and no ranges: host-local has nothing to allocate from"
                + (" (it declares the ipRanges capability, but Multus passes no ipRanges)"
                   if plugin.has_capability("ipRanges") else "")
                + '; add "ranges": [[{"subnet": "10.1.0.0/24"}]]',
            )
        )
    families = [s[0].start.version for s in request.sets]
    problems.extend(_one_per_family(path, families, cni_version, "range sets"))
    problems.extend(host_local_args_ips(plugin, fails=fails, runtime_config=runtime_config))
    return problems


def _one_per_family(
    path: str, versions: Sequence[int], cni_version: str | None, what: str
) -> Iterator[Problem]:
    # No cniVersion reads as 0.1.0 in the plugins (version.ParseVersion of "").
    if (not cni_version or cni_version in _SINGLE_ADDRESS_VERSIONS) and (versions.count(4) > 1
                                                                         or versions.count(6) > 1):
        which = f"cniVersion {cni_version}" if cni_version else "a config without cniVersion (read as 0.1.0)"
        yield Problem(
            path,
            f"{path} has several {what} of one address family, which {which} cannot "
            "return: raise cniVersion to 0.3.1 or later, or keep one per family",
        )


# --- whereabouts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhereaboutsRange:
    path: str
    network: IPNetwork
    first: IPAddress
    last: IPAddress
    #: (JSON path, network) of each parsable exclude entry.
    excludes: tuple[tuple[str, IPNetwork], ...]
    #: (JSON path, what it is) of each field that narrows the range to ``first``-``last`` from the
    #: network's first to last usable address: range_start, range_end, or a first-last range.
    narrowed_by: tuple[tuple[str, str], ...] = ()


def _whereabouts_range(
    obj: Mapping[str, Any], path: str, problems: list[Problem], *, top: bool
) -> WhereaboutsRange | None:
    """One range of whereabouts: the top-level one (``top``) or an ipRanges entry. whereabouts parses
    every range, and the top level's range_start / range_end, sloppily (leading zeros allowed); an
    ipRanges entry's range_start / range_end are plain Go net.IP fields."""
    range_f = _get(obj, path, "range")
    if range_f is None or range_f.value == "":
        problems.append(
            Problem(
                f"{path}.range", f"{path}.range is missing: set the CIDR to allocate from, e.g. 10.1.0.0/24"
            )
        )
        return None
    rp = range_f.path
    written = range_f.value
    first_last = isinstance(written, str) and "-" in written
    start = _ip_field(obj, path, "range_start", problems, sloppy=top,
                      dropped=_dropped("range_start", rp, written, first_last) if top else None)
    end = _ip_field(obj, path, "range_end", problems, sloppy=top,
                    dropped=_dropped("range_end", rp, written, first_last) if top else None)
    excludes = _excludes(obj, path, problems)
    if not isinstance(written, str):
        problems.append(Problem(rp, f"{rp} is {describe(written)}: write the range as a CIDR string"))
        return None
    text = _sloppy(rp, written, problems)
    start_f, end_f = _get(obj, path, "range_start"), _get(obj, path, "range_end")
    start_path, end_path = start_f.path if start_f else rp, end_f.path if end_f else rp
    if first_last:
        # "first-last/prefix": the first address, then the last address written as a CIDR. They replace
        # range_start and range_end (whereabouts' config.LoadIPAMConfig), of the top level and of an
        # ipRanges entry alike.
        head, tail = text.split("-", 1)
        dash_start = parse_ip(head)
        parsed = parse_network_cidr(tail)
        if dash_start is None or parsed is None:
            problems.append(
                Problem(
                    rp,
                    f"{rp} is {written!r}: write a CIDR (10.1.0.0/24) or first-last/prefix "
                    "(10.1.0.10-10.1.0.50/24)",
                )
            )
            return None
        dash_end, net = parsed
        problems.extend(_mapped_read(rp, tail, net, written))
        if not within(dash_start, net):
            problems.append(
                Problem(rp, f"{rp}: {dash_start} is not inside {net}; start the range inside the network")
            )
            return None
        # whereabouts' GetIPRange makes the same span of a start at the network address as of one at the
        # first usable address (and of an end at the broadcast address as of the last usable one): a
        # range_start or range_end is wrong only where it would give another span than the range does.
        span = _whereabouts_span(net, dash_start, dash_end, rp, rp, [])
        asked = _whereabouts_span(net, dash_start if start is None else start, dash_end if end is None else end,
                                  rp, rp, [])
        for f, given, end_of in ((start_f, start, 0), (end_f, end, 1)):
            if f is not None and given is not None and (asked[end_of] != span[end_of] or not within(given, net)):
                problems.append(
                    Problem(
                        f.path,
                        f"{f.path} is {given}, but {_first_last_sets_both(rp, written)} "
                        f"({dash_start}-{dash_end}): drop it, or write {rp} as a CIDR",
                    )
                )
        start, end, start_path, end_path = dash_start, dash_end, rp, rp
    else:
        parsed = parse_network_cidr(text)
        if parsed is None:
            problems.append(
                Problem(rp, f"{rp} is {written!r}, not a CIDR: write it as network/prefix, e.g. 10.1.0.0/24")
            )
            return None
        net = parsed[1]
        problems.extend(_mapped_read(rp, text, net))
    if _too_small(net):
        problems.append(
            Problem(
                rp,
                f"{rp} is a /{net.prefixlen}: whereabouts needs addresses between the network and broadcast "
                f"address; use at most a /{net.max_prefixlen - 2}",
            )
        )
        return None
    first, last = _whereabouts_span(net, start, end, start_path, end_path, problems)
    narrowed_by = [(path, f"the first-last form of {rp} ({written!r})" if path == rp else path.rsplit(".", 1)[1])
                   for path, narrows in ((start_path, first != net.network_address + 1),
                                         (end_path, last != net.broadcast_address - 1)) if narrows]
    return WhereaboutsRange(rp, net, first, last, excludes, tuple(dict.fromkeys(narrowed_by)))


def _mapped_read(path: str, cidr: str, net: IPNetwork, written: str | None = None) -> list[Problem]:
    """A warning when ``cidr`` (all of the field, or the CIDR closing ``written``, a first-last range) is
    IPv4-mapped, saying which network whereabouts makes of it (see parse_network_cidr): whereabouts takes
    it, but hardly as what it looks like."""
    prefix = mapped_prefix(cidr)
    if prefix is None:
        return []
    v4 = parse_ip(cidr.split("/")[0])
    if net.version == 4 and net.prefixlen > 0:
        read = f"the IPv4 network {net} (the prefix less 96); write {v4}/{net.prefixlen}"
    else:
        holds = "every IPv4 address" if net.version == 4 else \
            "no IPv4 address (below /96 the mask drops the ::ffff:)"
        read = (f"the {family(net)} network {net}, which holds {holds}; write the IPv4 form with its prefix, "
                f"e.g. {v4}/24")
    subject = f"{cidr!r}, an IPv4-mapped IPv6 CIDR" if written is None else \
        f"{written!r}, which ends in {cidr!r}, an IPv4-mapped IPv6 CIDR"
    return [Problem(path, f"{path} is {subject}: whereabouts reads it as {read}", warning=True)]


def _first_last_sets_both(range_path: str, written: str) -> str:
    return (f"whereabouts ignores range_start and range_end when {range_path} is written first-last/prefix "
            f"({written!r}), which sets both ends of the range")


def _dropped(name: str, range_path: str, written: Any, first_last: bool) -> str:
    """What whereabouts does with a top-level range_start / range_end it cannot parse: its
    backwardsCompatibleIPAddress leaves the field unset without a word. The node's whereabouts.conf
    then fills it (config.LoadIPAMConfig merges the file into the fields the NAD leaves empty); else a
    first-last range sets both ends anyway, and a CIDR range starts at its first usable address (or ends
    at its last), the other end still applying."""
    if first_last:
        return f"{_first_last_sets_both(range_path, written)}: drop it"
    where = "from the first usable address of the range on" if name == "range_start" else \
        "up to the last usable address of the range"
    return (f"whereabouts would silently drop it and allocate {where} (or use the {name} of the node's "
            "whereabouts.conf, if that has one); write a plain address such as 10.1.2.3")


def _whereabouts_span(
    net: IPNetwork, start: IPAddress | None, end: IPAddress | None, start_path: str, end_path: str,
    problems: list[Problem],
) -> tuple[IPAddress, IPAddress]:
    """The addresses whereabouts hands out from ``net`` (its iphelpers.GetIPRange): a start or an end is
    kept only among the usable addresses (not the network or broadcast address), an end only from the
    start on; any other is silently ignored, for the first / last usable address. A start at the network
    address or an end at the broadcast address thus means what it says; other ignored ones are refused."""
    usable_first, usable_last = net.network_address + 1, net.broadcast_address - 1
    first, last = usable_first, usable_last
    if start is not None and between(start, usable_first, usable_last):
        first = start
    elif start is not None and start != net.network_address:
        problems.append(_outside(start_path, start, net, start=True))
    if end is not None and between(end, first, usable_last):
        last = end
    elif end is not None and between(end, usable_first, usable_last):
        problems.append(
            Problem(
                end_path,
                f"{end_path}: the range starts at {first}, after its end {end}: whereabouts would ignore the "
                "end and allocate up to the last address of the network; make the start lower than the end",
            )
        )
    elif end is not None and end != net.broadcast_address:
        problems.append(_outside(end_path, end, net, start=False))
    return first, last


def _outside(path: str, value: IPAddress, net: IPNetwork, *, start: bool) -> Problem:
    first, last = net.network_address + 1, net.broadcast_address - 1
    instead = f"from {first} on" if start else f"up to {last}"
    return Problem(
        path,
        f"{path} {value} is outside the range {net} ({first}-{last}): whereabouts would silently ignore it "
        f"and allocate {instead}; use an address inside it",
    )


def _excludes(
    obj: Mapping[str, Any], path: str, problems: list[Problem]
) -> tuple[tuple[str, IPNetwork], ...]:
    f = _get(obj, path, "exclude")
    if f is None:
        return ()
    if not isinstance(f.value, list):
        problems.append(
            Problem(f.path, f"{f.path} is {describe(f.value)}: write a list of CIDRs or addresses")
        )
        return ()
    nets: list[tuple[str, IPNetwork]] = []
    for i, entry in enumerate(f.value):
        epath = f"{f.path}[{i}]"
        # allocate.parseExcludedRange: net.ParseCIDR, else an address with /32 (IPv4, mapped ones
        # included) or /128 added, and parsed again.
        parsed = parse_network_cidr(entry)
        if parsed is None:
            addr = parse_ip(entry)
            if addr is not None and ":" in entry and addr.version == 4:
                # The /32 is read against the 128-bit mapped address: ::/32, which holds no IPv4 address.
                problems.append(
                    Problem(
                        epath,
                        f"{epath} is {entry!r}, an IPv4-mapped IPv6 address: whereabouts adds /32 to it and reads "
                        f"{entry + '/32'!r} as the IPv6 network ::/32, so it excludes nothing; write {str(addr)!r}",
                        warning=True,
                    )
                )
                continue
            if addr is not None:
                parsed = (addr, ipaddress.ip_network(addr))
        if parsed is None:
            problems.append(
                Problem(
                    epath,
                    f"{epath} is {describe(entry)}: whereabouts cannot parse it and would fail every pod; "
                    "write "
                    "a CIDR (10.1.0.0/28) or an address (10.1.0.7)",
                )
            )
        else:
            problems.extend(_mapped_read(epath, entry, parsed[1]))
            nets.append((epath, parsed[1]))
    return tuple(nets)


def whereabouts_ranges(
    ipam: Mapping[str, Any], ipam_path: str
) -> tuple[list[WhereaboutsRange], list[Problem]]:
    problems: list[Problem] = []
    ranges: list[WhereaboutsRange] = []
    top = _get(ipam, ipam_path, "range")
    if top is not None and top.value != "":
        r = _whereabouts_range(ipam, ipam_path, problems, top=True)
        if r is not None:
            ranges.append(r)
    else:
        for name in ("range_start", "range_end", "exclude"):
            f = _get(ipam, ipam_path, name)
            if f is None or f.value == "":
                continue
            if name != "exclude" and not isinstance(f.value, str):
                # whereabouts decodes them as strings even when it has no use for them.
                _ip_field(ipam, ipam_path, name, problems)
                continue
            problems.append(
                Problem(
                    f.path,
                    f"{f.path} only applies to the top-level range, and there is none (unless the node's "
                    "whereabouts.conf gives one): whereabouts ignores it; move it into each ipRanges entry",
                    warning=True,
                )
            )
    ip_ranges = _get(ipam, ipam_path, "ipRanges")
    if ip_ranges is not None:
        if not isinstance(ip_ranges.value, list):
            problems.append(
                Problem(
                    ip_ranges.path,
                    f"{ip_ranges.path} is {describe(ip_ranges.value)}: write a list of "
                    '{"range": ...} objects',
                )
            )
        else:
            for i, entry in enumerate(ip_ranges.value):
                epath = f"{ip_ranges.path}[{i}]"
                if not isinstance(entry, Mapping):
                    problems.append(
                        Problem(epath, f'{epath} is {describe(entry)}: write a {{"range": ...}} object')
                    )
                    continue
                r = _whereabouts_range(entry, epath, problems, top=False)
                if r is not None:
                    ranges.append(r)
    for r in ranges:
        problems.extend(_exclude_outside(r))
    return ranges, problems


def _exclude_outside(r: WhereaboutsRange) -> Iterator[Problem]:
    for path, net in r.excludes:
        if net.version != r.network.version or not net.overlaps(r.network):
            yield Problem(
                path,
                f"{path} {net} is outside the range {r.network}, so it excludes nothing: "
                "fix the entry or drop it",
                warning=True,
            )


def check_whereabouts(plugin: PluginConf) -> list[Problem]:
    ipam = plugin.ipam
    if ipam is None:
        return []
    path = plugin.ipam_path
    ranges, problems = whereabouts_ranges(ipam, path)
    _ip_field(ipam, path, "gateway", problems, sloppy=True)
    addresses = _get(ipam, path, "addresses")
    # A range that does not parse has been refused already; a warning (an exclude without a range) does
    # not make up for the missing range. The addresses entries alone are a result of their own. Only a
    # warning: whereabouts merges the node's whereabouts.conf into the config (fields the NAD leaves
    # empty, range included), and adds the ips a pod passes in CNI_ARGS to what it returns; the webhook
    # sees neither.
    if not ranges and all(p.warning for p in problems) and not (addresses and isinstance(addresses.value, list)
                                                                 and addresses.value):
        problems.append(
            Problem(
                f"{path}.range",
                f"{path}.range is missing and there are no ipRanges: whereabouts has nothing to allocate "
                "from unless the node's whereabouts.conf (or the file configuration_path names) gives a range, "
                'or every pod passes its addresses in its selection as "ips"; otherwise every pod fails ('
                '"IPAM plugin returned missing IP config"); add "range": "10.1.0.0/24"',
                warning=True,
            )
        )
    _whereabouts_addresses(ipam, path, problems)
    _node_slice(ipam, path, ranges, problems)
    _object_names(ipam, path, ranges, problems)
    return _with_field_types(plugin, problems)


def _object_names(
    ipam: Mapping[str, Any], ipam_path: str, ranges: Sequence[WhereaboutsRange], problems: list[Problem]
) -> None:
    """whereabouts v0.9.4 keeps each range's allocations in an IPPool it creates on the first pod, named
    after network_name and the range (storage/kubernetes IPPoolName: the network's text with ':' and '/'
    made '-'), and, with enable_overlapping_ranges (the default), each address it gives in an
    OverlappingRangeIPReservation named the same way after the address (NormalizeIP). The apiserver
    refuses a name that is not a DNS-1123 subdomain: an IPv6 network or address written from "::" gives
    one that starts with '-', unless a network_name comes first. A refused IPPool fails every pod, unless
    the NAD has no network_name and the node's whereabouts.conf gives one (config.LoadIPAMConfig fills the
    NAD's empty fields from it; a warning then). A refused reservation fails the pod given that address,
    after whereabouts has kept it in the pool, so the next pod gets the next address (a warning). With
    node_slice_size the pool is named after the node's slice, the node's name first."""
    name_f = _get(ipam, ipam_path, "network_name")
    network_name = name_f.value if name_f is not None and isinstance(name_f.value, str) else ""
    slice_f = _get(ipam, ipam_path, "node_slice_size")
    slicing = slice_f is not None and slice_f.value != ""
    overlapping_f = _get(ipam, ipam_path, "enable_overlapping_ranges")
    overlapping = overlapping_f is None or overlapping_f.value is not False
    refused = "which the apiserver refuses (an object's name is lowercase letters, digits, '-' and '.', " \
              "starting and ending with a letter or digit)"
    for r in ranges:
        pool = _object_name(network_name, r.network)
        if network_name and not is_object_name(pool):
            assert name_f is not None
            problems.append(
                Problem(
                    name_f.path,
                    f"{name_f.path} is {network_name!r}: whereabouts starts the name of each of its IPPools "
                    f"with it ({pool!r} for {r.network}), {refused}, so every pod fails; write a name the "
                    "apiserver takes",
                )
            )
            return
        if not slicing and not is_object_name(pool):
            problems.append(
                Problem(
                    r.path,
                    f"{r.path} is {r.network}: whereabouts keeps its allocations in an IPPool named after it, "
                    f"{pool!r}, {refused}, so every pod fails unless the node's whereabouts.conf (or the file "
                    f"configuration_path names) gives a network_name; give {ipam_path}.network_name, which then "
                    "starts the name",
                    warning=True,
                )
            )
            continue
        reservation = _object_name(network_name, r.first)
        if overlapping and not is_object_name(reservation):
            problems.append(
                Problem(
                    r.path,
                    f"{r.path} is {r.network}: whereabouts reserves each address it gives across the cluster in "
                    f"an OverlappingRangeIPReservation named after it, {reservation!r} for {r.first}, {refused}: "
                    f"the pod given {r.first} fails, and {r.first} stays allocated in the IPPool, as does each "
                    "further address written from '::'; give "
                    f"{ipam_path}.network_name, which then starts the names",
                    warning=True,
                )
            )


def _object_name(network_name: str, value: IPAddress | IPNetwork) -> str:
    """The name whereabouts gives the object it keeps ``value`` in (see _object_names)."""
    if isinstance(value, ipaddress.IPv6Address) and value.ipv4_mapped is not None:
        # Go's net.IP.String writes an IPv4-mapped address as IPv4.
        value = value.ipv4_mapped
    text = str(value)
    # NormalizeIP (and normalizeRange, though a range's text never ends in ':') adds a '0' to an IPv6
    # text ending in '::'.
    text = (f"{text}0" if text.endswith(":") else text).replace(":", "-").replace("/", "-")
    return f"{network_name}-{text}" if network_name else text


#: node_slice_size: a prefix length, "/" in front or not (iphelpers.DivideRangeBySize trims one, then
#: strconv.Atoi).
_SLICE_SIZE = re.compile(r"/?([+-]?[0-9]+)")


def _node_slice(
    ipam: Mapping[str, Any], ipam_path: str, ranges: Sequence[WhereaboutsRange], problems: list[Problem]
) -> None:
    """whereabouts v0.9.4 with node_slice_size allocates each pod from its node's slice of the first range
    (storage/kubernetes IPManagementKubernetesUpdate), read from a NodeSlicePool (named after
    network_name, or the network's name) which only the separate node-slice controller writes: without
    the pool, or without a slice for the node, every ADD fails (newLeaderElector returns no elector, which
    IPManagement then runs: a nil pointer panic). The plugin never reads the size; the
    controller (node-controller syncHandler) slices the range by it, and makes no usable slice from a
    size it cannot read, one shorter than the range's prefix, one that leaves no usable address, or an
    IPv6 range (DivideRangeBySize counts in 32-bit addresses): every pod fails then, controller or not.
    The plugin puts the slice in place of the first range, from its first to its last usable address: the
    range's excludes, range_start and range_end are ignored (and the controller slices the first range's
    network, which is what config.LoadIPAMConfig leaves of a first-last range); further ranges give
    nothing of their own (see _beyond_the_first_slice)."""
    f = _get(ipam, ipam_path, "node_slice_size")
    if f is None or not isinstance(f.value, str) or f.value == "":
        return
    # The range the controller slices: the first, when every range parsed (else one is refused already).
    first = ranges[0] if ranges and all(p.warning for p in problems) else None
    fails = "no usable slice, and every pod fails"
    matched = _SLICE_SIZE.fullmatch(f.value)
    if matched is None:
        problems.append(
            Problem(
                f.path,
                f"{f.path} is {f.value!r}, not a prefix length: whereabouts' node-slice controller cannot slice "
                f"the range by it, so there is {fails} (\"no allocated node slice for node\", and a crash); write the "
                'size of each node\'s slice, e.g. "/28"',
            )
        )
        return
    size = int(matched.group(1))
    if first is not None and first.network.version == 6:
        problems.append(
            Problem(
                f.path,
                f"{f.path} is set, but whereabouts v0.9.4 slices IPv4 ranges only: its node-slice controller "
                f"crashes on {first.network} ({first.path}), and slices no other network while it does, so "
                f"there is {fails}; drop node_slice_size or use an IPv4 range",
            )
        )
        return
    if size < (first.network.prefixlen if first is not None else 0):
        of = "" if first is None else f" {first.network} ({first.path})"
        problems.append(
            Problem(
                f.path,
                f"{f.path} is {f.value!r}, larger than the range{of}: whereabouts' node-slice controller refuses "
                f"to slice it, so there is {fails}; write the prefix length of each node's slice, "
                + (f"at least /{first.network.prefixlen}" if first is not None else 'e.g. "/28"'),
            )
        )
        return
    if size > 30:
        problems.append(
            Problem(
                f.path,
                f"{f.path} is {f.value!r}: a slice that small has no address between its network and broadcast "
                f"address, so there is {fails}; use at most /30",
            )
        )
        return
    count = (
        f", and with it at most {2 ** (size - first.network.prefixlen)} nodes get a /{size} slice of "
        f"{first.network} (a pod on any other node fails: \"no allocated node slice for node\", and a crash)"
        if first is not None else ""
    )
    problems.append(
        Problem(
            f.path,
            f"{f.path} is set: whereabouts then allocates each pod from its node's slice of the range, read "
            "from a NodeSlicePool that only the whereabouts node-slice controller writes (its "
            "doc/crds/node-slice-controller.yaml, apart from the daemonset install); without that controller "
            f"every pod fails (whereabouts finds no NodeSlicePool, and crashes){count}; run the node-slice "
            "controller, or drop node_slice_size",
            warning=True,
        )
    )
    name = _get(ipam, ipam_path, "network_name")
    if name is None or name.value == "":
        # node-controller checkForMultiNadMismatch: every whereabouts NAD of one network_name ("" too), in
        # any namespace, must have this one's first range and node_slice_size, or none of them is synced.
        problems.append(
            Problem(
                f.path,
                f"{f.path} is set and {ipam_path}.network_name is not: the node-slice controller then holds this "
                "NAD against every other whereabouts NAD of the cluster without a network_name (in any namespace, "
                "node_slice_size or not), and while any of them has another first range or node_slice_size it "
                'syncs neither ("found IPAM conf mismatch for network-attachment-definitions with same network '
                'name"): this NAD gets no NodeSlicePool (every pod fails, as without the controller), or keeps an '
                "old one that no new node gets a slice of; give it a network_name of its own",
                warning=True,
            )
        )
    problems.extend(_ignored_with_node_slice(ranges[0]) if ranges else ())
    if first is not None:
        problems.extend(_beyond_the_first_slice(first, r) for r in ranges[1:])


def _beyond_the_first_slice(first: WhereaboutsRange, r: WhereaboutsRange) -> Problem:
    """With node_slice_size whereabouts allocates each range from one IPPool, that of the node's slice of
    the first range (storage/kubernetes IPManagementKubernetesUpdate): for every further range it finds the
    pod's allocation there already and returns that address again under the range's mask. Where the
    mask is the first range's, the interface plugin adds one address twice and fails ("file exists"). An
    IPv6 range's mask on that IPv4 address is its last 32 bits (Go's IPNet.String, as whereabouts prints the
    result): fd00::/120 under 10.87.0.0/24 gives 10.87.0.1/24 twice."""
    prefix = r.network.prefixlen - (96 if (r.network.version, first.network.version) == (6, 4) else 0)
    fails = (': the interface plugin then adds one address twice and fails every pod ("file exists")'
             if prefix == first.network.prefixlen else "")
    return Problem(
        r.path,
        f"{r.path}: with node_slice_size whereabouts allocates from the node's slice of the first range only "
        f"({first.network}, {first.path}): for {r.network} it hands the pod the address it got from that slice "
        f"again, under this range's mask, and never one of {r.network}{fails}; drop node_slice_size, or give "
        f"{r.network} a NAD of its own",
    )


def _ignored_with_node_slice(r: WhereaboutsRange) -> Iterator[Problem]:
    """What of ``r`` whereabouts ignores with node_slice_size: it allocates from the first to the last
    usable address of the node's slice (storage/kubernetes IPManagementKubernetesUpdate replaces the
    range's RangeStart and RangeEnd), so excludes and whatever narrows the range count for nothing."""
    ignored = [*((path, "exclude", "without the range's excludes", "keep the excluded addresses out of the range")
                 for path, _net in r.excludes),
               *((path, what, f"from its first to its last usable address, not only from {r.first}-{r.last}",
                  f"drop {'it' if what.startswith('range_') else 'the first-last form'} and write the range as the "
                  "CIDR of just the addresses to hand out") for path, what in r.narrowed_by)]
    for path, what, how, fix in ignored:
        yield Problem(
            path,
            f"{path}: whereabouts ignores {what} when node_slice_size is set (it allocates from the node's slice "
            f"of the range, {how}); drop node_slice_size, or {fix}",
        )


# --- static -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaticAddress:
    path: str
    address: IPAddress
    network: IPNetwork
    gateway: IPAddress | None


def _entry_address(keys: Mapping[str, list[tuple[str, Any]]], epath: str) -> _Field | None:
    """The text of an address entry's "address" (``keys``: the entry's struct_fields); None when unset."""
    written = keys.get("address")
    return _Field(f"{epath}.{written[-1][0]}", written[-1][1]) if written and written[-1][1] is not None else None


def _whereabouts_addresses(ipam: Mapping[str, Any], ipam_path: str, problems: list[Problem]) -> None:
    """whereabouts' configureStatic parses the address of every addresses entry as a CIDR (sloppily), a
    null entry's empty one included, and fails every pod on one it cannot read. Values of the wrong type
    are nad-ipam-whereabouts' field types."""
    f = _get(ipam, ipam_path, "addresses")
    if f is None or not isinstance(f.value, list):
        return
    for i, entry in enumerate(f.value):
        epath = f"{f.path}[{i}]"
        if entry is not None and not isinstance(entry, Mapping):
            continue
        a = _entry_address(struct_fields(entry, list(ADDRESS_ENTRY.fields)), epath) if entry is not None else None
        if a is not None and not isinstance(a.value, str):
            continue
        path = a.path if a is not None else (epath if entry is None else f"{epath}.address")
        text = _sloppy(a.path, a.value, problems) if a is not None else ""
        if parse_cidr(text) is None:
            shown = describe(a.value) if a is not None else ("null" if entry is None else "missing")
            problems.append(
                Problem(
                    path,
                    f"{path} is {shown}: whereabouts reads every address as a CIDR and fails every pod otherwise "
                    '("invalid CIDR in addresses"); write it as e.g. {"address": "10.1.0.5/24"}',
                )
            )


def static_addresses(
    ipam: Mapping[str, Any], ipam_path: str, *, replaced: bool = False
) -> tuple[list[StaticAddress], list[Problem]]:
    """The addresses of static's ipam section, and what the plugin refuses in them. When ``replaced`` (by
    args.cni.ips), static still decodes them but never parses an address: only decoding can fail."""
    problems: list[Problem] = []
    out: list[StaticAddress] = []
    f = _get(ipam, ipam_path, "addresses")
    if f is None:
        return out, problems
    if not isinstance(f.value, list):
        problems.append(
            Problem(f.path, f'{f.path} is {describe(f.value)}: write a list of {{"address": "10.1.0.5/24"}}')
        )
        return out, problems
    for i, entry in enumerate(f.value):
        epath = f"{f.path}[{i}]"
        if replaced and entry is None:
            continue  # a zero entry, dropped with the others
        if not isinstance(entry, Mapping):
            problems.append(
                Problem(epath, f'{epath} is {describe(entry)}: write an {{"address": ...}} object')
            )
            continue
        gateway = _ip_field(entry, epath, "gateway", problems)
        # "Address" is another field than "address" for Go, which matches it exactly: a parsed network.
        keys = struct_fields(entry, list(ADDRESS_ENTRY.fields))
        network = next((kv for kv in reversed(keys.get("Address", ())) if kv[1] is not None), None)
        if network is not None:
            if isinstance(network[1], str):
                npath = f"{epath}.{network[0]}"
                problems.append(
                    Problem(
                        npath,
                        f'{npath} is {network[1]!r}: Go reads the key "Address" (capital A) into another field '
                        'than "address", a parsed network that a string does not fit, so the static plugin fails '
                        'every pod; write the key as "address"',
                    )
                )
            # An object there is that network, which the plugin takes as it is: not ours to index.
            continue
        if replaced:
            continue
        a = _entry_address(keys, epath)
        apath = a.path if a else f"{epath}.address"
        parsed = parse_static_cidr(a.value) if a is not None else None
        if parsed is not None and a is not None:
            problems.extend(_mapped_to_zero(apath, a.value))
        if parsed is None:
            shown = describe(a.value) if a is not None else "missing"
            problems.append(
                Problem(
                    apath,
                    f"{apath} is {shown}: the static plugin needs an address in CIDR form, e.g. 10.1.0.5/24",
                )
            )
            continue
        addr, net = parsed
        if gateway is not None and gateway.version != addr.version:
            gp = _get(entry, epath, "gateway")
            gpath = gp.path if gp else f"{epath}.gateway"
            problems.append(
                Problem(
                    gpath,
                    f"{gpath} {gateway} is {family(gateway)} but the address {addr} is {family(addr)}: "
                    "routes "
                    "through it cannot work; give each address a gateway of its own family",
                    warning=True,
                )
            )
        out.append(StaticAddress(epath, addr, net, gateway))
    return out, problems


@dataclass(frozen=True, slots=True)
class ArgsIps:
    """args.cni.ips as static decodes it (a []string), where it takes its addresses from, and where Multus
    merges a selection's "cni-args"."""

    #: (JSON path, value) of each entry static ends with; empty when nil or an empty list.
    entries: list[tuple[str, Any]]
    #: The JSON path of the spelling of ips whose list static ends with; None when nil.
    source: str | None
    #: (JSON path, value, what it must be) of each value Go fails to decode, under any spelling: static
    #: then fails to load its config, whatever a later spelling holds.
    mistyped: list[tuple[str, Any, str]]

    @property
    def replaces_addresses(self) -> bool:
        """Whether the entries replace static's addresses: when there are any ("args IP overwrites IP")."""
        return bool(self.entries)


def args_cni_ips(plugin: PluginConf, cni_args: Mapping[str, Any] | None = None, pod_base: str = "",
                 *, pointers: bool = False) -> ArgsIps:
    """args.cni.ips as static (a []string) or, with ``pointers``, host-local (a []*ip.IP) decodes it, from
    every spelling of args, cni and ips (see args_cni_spellings; with ``cni_args``, a pod's "cni-args"
    merged at JSON path ``pod_base``), in the order Go decodes them into one slice: a later list replaces
    an earlier one, null empties it (so does null of args or cni above it). Checked with the real static
    and host-local v1.10.0."""
    entries: list[tuple[str, Any]] = []
    # The slice's backing array: Go decodes a list into the slice already there, reusing its array, so
    # an index past the last list's end still holds what a longer list before it had there.
    backing: list[tuple[str, Any]] = []
    source: str | None = None
    mistyped: list[tuple[str, Any, str]] = []
    for spelling in args_cni_spellings(plugin, "ips", cni_args, pod_base):
        mistyped += args_cni_mismatches(spelling, ListOf(Kind.STRING))
        if spelling.value is None:
            entries, backing, source = [], [], None  # a nil slice (or struct above it): a new array next
        elif spelling.field == "args.cni.ips" and isinstance(spelling.value, list):
            # Null into a string does nothing: a null entry keeps the string the array holds at its index,
            # from any earlier, longer list (else ""). Null into a pointer makes it nil, whatever was there.
            entries = [backing[i] if value is None and i < len(backing) and not pointers
                       else (f"{spelling.path}[{i}]", value) for i, value in enumerate(spelling.value)]
            backing = entries + backing[len(entries):]
            source = spelling.path
    return ArgsIps(entries, source, mistyped)


@dataclass(frozen=True, slots=True)
class _IpsReader:
    """How an IPAM plugin reads the entries of args.cni.ips, for args_cni_ips_addresses."""

    #: The plugin, in a message.
    name: str
    #: The address of an entry, or None when the plugin refuses it.
    parse: Callable[[Any], IPAddress | None]
    #: What an entry must be, in a message ("not <form>").
    form: str
    #: How to write an entry, in a message.
    fix: str
    #: An example of an entry.
    example: str
    #: What the list holds, in a message.
    listed: str


def _cidr_address(value: Any) -> IPAddress | None:
    parsed = parse_static_cidr(value)
    return parsed[0] if parsed is not None else None


def _mapped_to_zero(path: str, value: Any) -> list[Problem]:
    """A warning when the static plugin reads ``value``, an IPv4-mapped CIDR, as a /0 (see
    parse_static_cidr): the interface then gets the address with a prefix that covers every IPv4 address."""
    prefix = mapped_prefix(value)
    if prefix is None or prefix > 96:
        return []
    addr = value.split("/")[0]
    return [Problem(path, f"{path} is {value!r}: the static plugin keeps only the last 32 bits of an IPv4-mapped "
                          f"address's prefix, so the interface gets {parse_ip(addr)}/0, a network of every IPv4 "
                          f"address; write the IPv4 form with its prefix, e.g. {parse_ip(addr)}/24", warning=True)]


def go_ip_or_cidr(value: Any) -> IPAddress | None:
    """The address plugins v1.10.0 pkg/ip ParseIP (<ip>[/<prefix>]) gives ``value``, as ToIP makes it (an
    IPv4-mapped address is IPv4), or None when it refuses it: net.ParseCIDR with a "/", else net.ParseIP."""
    if not isinstance(value, str):
        return None
    if "/" not in value:
        return parse_ip(value)
    text, prefix_text = value.split("/", 1)
    prefix = prefix_length(prefix_text)
    addr = parse_ip(text)
    return addr if addr is not None and prefix is not None and prefix <= (128 if ":" in text else 32) else None


_IPS_READERS = {
    "static": _IpsReader("the static plugin", _cidr_address, "a CIDR",
                         "the static plugin takes these addresses in CIDR form only", "10.1.0.5/24", "CIDRs"),
    # host-local v1.10.0 backend/allocator LoadIPAMConfig: ip.IP's UnmarshalText ("invalid IP address"), or
    # "" read as no address ("cannot understand ip"); a null entry is a nil pointer it crashes on.
    "host-local": _IpsReader("host-local", go_ip_or_cidr, "an IP address",
                             "host-local reads each as an address, with or without a prefix length", "10.1.0.5",
                             "addresses"),
}


def _not_an_ip(reader: _IpsReader, path: str, value: Any, fails: str) -> Problem:
    if value is None and reader.name == "host-local":
        return Problem(path, f"{path} is null: host-local reads it as a nil address, crashes on it and {fails}; "
                             "remove the entry")
    return Problem(path, f"{path} is {describe(value)}, not {reader.form}: {reader.fix}, and {fails}; write it as "
                         f"e.g. {reader.example}")


def args_cni_ips_addresses(found: ArgsIps, problems: list[Problem],
                           fails: str = "fails every pod", ipam: str = "static") -> list[tuple[str, IPAddress]]:
    """The addresses of args.cni.ips (``found``), with their paths, which the ``ipam`` plugin (static,
    host-local) parses on every ADD (static even when a pod's runtimeConfig.ips replaces them next); what it
    refuses goes to ``problems``, saying that it ``fails``."""
    reader = _IPS_READERS[ipam]
    for path, value, expected in found.mistyped:
        if expected == Kind.STRING.value:  # an entry of a list
            problems.append(_not_an_ip(reader, path, value, fails))
        elif expected == ListOf.value:
            problems.append(Problem(path, f"{path} is {describe(value)}: {reader.name} {fails}; write a list of "
                                          f'{reader.listed}, e.g. ["{reader.example}"]'))
        else:
            problems.append(Problem(path, f"{path} is {describe(value)}, but {reader.name} reads it as an object: "
                                          f"it {fails}; make it an object (or remove it)"))
    out: list[tuple[str, IPAddress]] = []
    for path, value in found.entries:
        parsed = reader.parse(value)
        if parsed is not None:
            out.append((path, parsed))
            if ipam == "static":
                problems.extend(_mapped_to_zero(path, value))
        elif value is None or isinstance(value, str):  # anything else is mistyped, said above
            problems.append(_not_an_ip(reader, path, value, fails))
    return out


def _range_text(r: HostLocalRange) -> str:
    return f"{r.path}: {_span(r.start, r.end)}"


@dataclass(frozen=True, slots=True)
class HostLocalRequest:
    """What host-local (plugins v1.10.0 backend/allocator LoadIPAMConfig) allocates from and is asked for
    by the config, before the address a pod requests in CNI_ARGS (IP=)."""

    #: The range sets it allocates from: the literal runtimeConfig.ipRanges first, then its own.
    sets: tuple[tuple[HostLocalRange, ...], ...]
    #: Whether every range is one it takes; when not, what it could allocate is not judged (the ranges
    #: are nad-ipam-host-local's to refuse).
    judged: bool
    #: (JSON path, address) of each address the config requests: args.cni.ips, then the literal
    #: runtimeConfig.ips, as LoadIPAMConfig appends them after IP=.
    requested: list[tuple[str, IPAddress]]
    #: What it cannot decode or parse in those addresses.
    problems: list[Problem]
    #: The JSON path of each list that requests addresses (args.cni.ips, runtimeConfig.ips).
    sources: list[str]
    #: What it refuses in the literal runtimeConfig.ipRanges.
    range_problems: list[Problem]


def _literal_ips(found: tuple[str, Any] | None) -> ArgsIps | None:
    """The ips of a literal runtimeConfig (``found``, the JSON path and value of its member) as host-local
    and static decode them (a list); None when absent or null."""
    if found is None:
        return None
    ipath, ips = found
    if not isinstance(ips, list):
        return ArgsIps([], None, [(ipath, ips, ListOf.value)])
    return ArgsIps([(f"{ipath}[{i}]", v) for i, v in enumerate(ips)], ipath, [])


def literal_runtime_config_ips(plugin: PluginConf, runtime_config: bool = True) -> ArgsIps | None:
    """The ips of the plugin's literal runtimeConfig (see _literal_ips) that reach it, injected a
    runtimeConfig unless ``runtime_config`` (see PluginConf.runtime_config_member)."""
    return _literal_ips(plugin.runtime_config_member("ips", injected=not runtime_config))


def _runtime_config_not_object(plugin: PluginConf, literal: tuple[str, Any], ipam: str,
                               fails: str = "fails every pod") -> Iterator[Problem]:
    """host-local and static decode runtimeConfig into a struct (allocator.Net, static's Net): a literal
    one (``literal``, its JSON path and value) that is not an object fails them ("cannot unmarshal ...
    Net.runtimeConfig"), unless the plugin decoding it first has failed already (a field type's to say)."""
    path, value = literal
    if not isinstance(value, Mapping) and not decodes_runtime_config(plugin):
        yield Problem(path, f"{path} is {describe(value)}, but the {ipam} IPAM decodes it as an object: it {fails}; "
                            "make it an object (or remove it)")


def host_local_request(plugin: PluginConf, cni_args: Mapping[str, Any] | None = None, pod_base: str = "",
                       fails: str = "fails every pod", *, runtime_config: bool = True) -> HostLocalRequest:
    """What host-local reads of the config besides IP= (see HostLocalRequest): args.cni.ips (see
    args_cni_ips; with ``cni_args``, a pod's merged in at ``pod_base``) and the NAD's literal
    runtimeConfig's ips that reach the plugin (injected a runtimeConfig unless ``runtime_config``: see
    PluginConf.runtime_config_member), which LoadIPAMConfig adds to the requested addresses, and its
    ipRanges, which it puts ahead of its own ranges. Multus never fills ipRanges: only a literal one ever
    reaches host-local."""
    problems: list[Problem] = []
    found = args_cni_ips(plugin, cni_args, pod_base, pointers=True)
    requested = args_cni_ips_addresses(found, problems, fails, "host-local")
    sources = [found.source] if found.source is not None and found.entries else []
    sets, refused = host_local_ranges(plugin)
    judged = not refused
    range_problems: list[Problem] = []
    not_objects = plugin.runtime_config_not_objects(injected=not runtime_config)
    if not_objects:
        for literal in not_objects:
            range_problems.extend(_runtime_config_not_object(plugin, literal, "host-local", fails))
        return HostLocalRequest(sets, False, requested, problems, sources, range_problems)
    given = literal_runtime_config_ips(plugin, runtime_config)
    if given is not None:
        requested += args_cni_ips_addresses(given, problems, fails, "host-local")
        sources += [given.source] if given.entries and given.source else []
    ranges = plugin.runtime_config_member("ipRanges", injected=not runtime_config)
    if ranges is not None:
        rpath = ranges[0]
        if not isinstance(ranges[1], list):
            range_problems.append(Problem(rpath, f"{rpath} is {describe(ranges[1])}: it must be a list of range "
                                                 'sets, each a list of {"subnet": ...} objects'))
            judged = False
        else:
            extra = tuple(_range_sets(ranges[1], rpath, range_problems))
            # host-local checks every pair of its range sets, the literal ones among them; those of
            # its own ranges alone are host_local_ranges' to say.
            range_problems.extend(_cross_set_overlaps(extra + sets, len(extra)))
            judged = judged and not range_problems
            sets = extra + sets
    return HostLocalRequest(sets, judged, requested, problems, sources, range_problems)


def host_local_args_ips(plugin: PluginConf, cni_args: Mapping[str, Any] | None = None, pod_base: str = "",
                        fails: str = "fails every pod", *, runtime_config: bool = True) -> list[Problem]:
    """What host-local (plugins v1.10.0 backend/allocator LoadIPAMConfig, main.go cmdAdd) refuses in the
    addresses the config asks it for (see host_local_request: args.cni.ips, with ``cni_args`` a pod's
    merged in, and the literal runtimeConfig.ips when ``runtime_config`` says it reaches the plugin),
    saying that it ``fails``: a value it cannot decode or parse; an address in none of its range sets
    (the literal runtimeConfig.ipRanges among them; "failed to allocate all requested IPs"), the other
    family's ones included; the gateway of the range holding it; two addresses in one range set (it
    gives one address per set; the same address twice counts once). A NAD's addresses, which every pod
    requests, are a warning too: the first pod on a node takes them, the others fail there."""
    request = host_local_request(plugin, cni_args, pod_base, fails, runtime_config=runtime_config)
    problems = list(request.problems)
    if problems or not request.requested:
        return problems
    if request.judged and request.sets:
        problems.extend(host_local_unallocatable(request.requested, request.sets, fails))
    if not problems and cni_args is None and request.sources:
        distinct = sorted({str(addr) for _, addr in request.requested})
        them = "them" if len(distinct) > 1 else "it"
        source = " and ".join(request.sources)
        verb = "request" if len(request.sources) > 1 else "requests"
        problems.append(Problem(request.sources[0],
                                f"{source} {verb} {', '.join(distinct)} for every pod of this "
                                f"NAD: host-local gives {them} to the first pod on a node and fails the "
                                f"ADD of every other pod there while that one holds {them} (\"not "
                                'available in range set"); '
                                "let each pod request its own address in its selection instead",
                                warning=True))
    return problems


def host_local_unallocatable(requested: Sequence[tuple[str, IPAddress]], sets: Sequence[Sequence[HostLocalRange]],
                               fails: str) -> Iterator[Problem]:
    """The ``requested`` addresses host-local's range ``sets`` cannot give, whatever asks for them (CNI_ARGS'
    IP=, args.cni.ips, runtimeConfig.ips: plugins v1.10.0 LoadIPAMConfig puts them in one list, and cmdAdd
    takes from each range set at most one of them), saying that it ``fails`` (see host_local_args_ips)."""
    claimed: dict[int, tuple[str, IPAddress]] = {}
    for path, addr in requested:
        where = next(((n, r) for n, s in enumerate(sets) for r in s
                      if r.start.version == addr.version and between(addr, r.start, r.end)), None)
        if where is None:
            of_family = [r for s in sets for r in s if r.start.version == addr.version]
            why = (f"lies in none of host-local's ranges ({', '.join(_range_text(r) for r in of_family[:4])})"
                   if of_family else f"is {family(addr)}, but every range of host-local is "
                                     f"{family(sets[0][0].subnet)}")
            yield Problem(path, f"{path} {addr} {why}: host-local gives a requested address only from its "
                                          f"ranges and {fails} (\"failed to allocate all requested IPs\"); request "
                                          "an address inside them")
            continue
        n, r = where
        gateway = r.gateway or r.subnet.network_address + 1
        if addr == gateway:
            given = "" if r.gateway is not None else " (the subnet's first address, as no gateway is set)"
            yield Problem(path, f"{path} {addr} is the gateway of {r.path}{given}: host-local never "
                                          f"hands it out and {fails}; request another address")
            continue
        first = claimed.setdefault(n, (path, addr))
        if first[1] != addr:
            yield Problem(path, f"{path} {addr} is in the same range set as {first[0]} {first[1]} "
                                          f"({_range_text(r)}): host-local gives one address per range set and "
                                          f"{fails} (\"failed to allocate all requested IPs\"); request at most one "
                                          "address of each range set")


def check_static(plugin: PluginConf, cni_version: str | None) -> list[Problem]:
    """What static (plugins v1.10.0 plugins/ipam/static LoadIPAMConfig) refuses in the config, judged both
    ways where the NAD's literal runtimeConfig reaches it for some pods only (PluginConf.runtime_config_problems):
    a non-empty runtimeConfig.ips replaces ipam.addresses and args.cni.ips, as a non-empty args.cni.ips
    replaces ipam.addresses, and static then only decodes what they replace."""
    ipam = plugin.ipam
    if ipam is None:
        return []
    return _with_field_types(plugin, plugin.runtime_config_problems(
        functools.partial(_static_problems, plugin, ipam, cni_version, _fails(plugin, "ips"))))


def _static_problems(plugin: PluginConf, ipam: Mapping[str, Any], cni_version: str | None, fails: str,
                     runtime_config: bool) -> list[Problem]:
    """check_static's findings when the NAD's literal runtimeConfig does (``runtime_config``) or does not
    reach static, which then ``fails`` on what it refuses there."""
    path = plugin.ipam_path
    found = args_cni_ips(plugin)
    problems: list[Problem] = []
    args_ips = args_cni_ips_addresses(found, problems)
    for given in plugin.runtime_config_not_objects(injected=not runtime_config):
        problems.extend(_runtime_config_not_object(plugin, given, "static", fails))
    literal_ips = literal_runtime_config_ips(plugin, runtime_config)
    literal = args_cni_ips_addresses(literal_ips, problems, fails) if literal_ips is not None else []
    # What static ends with: the last non-empty list of these (a bad entry of one fails it).
    source, ips = next(((where.source, given) for where, given in ((literal_ips, literal), (found, args_ips))
                        if where is not None and where.replaces_addresses), (None, []))
    addresses, refused = static_addresses(ipam, path, replaced=source is not None)
    problems = refused + problems
    if not addresses and not problems and not plugin.has_capability("ips") and source is None:
        # Not a denial: static also takes the addresses from CNI_ARGS, where Multus puts a pod's "ips",
        # and from args.cni.ips, which it fills from "cni-args": {"ips": [...]}: the NAD works for pods
        # that pass them.
        problems.append(
            Problem(
                f"{path}.addresses",
                f"{path}.addresses is empty: static IPAM then returns no address and the interface "
                'plugin fails, unless every pod passes its addresses in its selection, as "ips" (which Multus '
                'hands static in CNI_ARGS) or "cni-args": {"ips": [...]}; list the '
                'addresses (e.g. [{"address": "10.1.0.5/24"}]) or declare the "ips" capability',
                warning=True,
            )
        )
    versions = [ip.version for _, ip in ips] if source is not None else [a.address.version for a in addresses]
    problems.extend(_one_per_family(source or path, versions, cni_version, "addresses"))
    return problems


# --- dhcp -------------------------------------------------------------------------------------


def dhcp_socket(plugin: PluginConf) -> str | None:
    """The socket a dhcp section's plugin dials its daemon on, normalised: ipam.daemonSocketPath, or
    DHCP_SOCKET when that is missing, null or empty (the plugin's getSocketPath); None when it is not a
    string, which the plugin cannot decode (check_dhcp says so)."""
    found = go_field(plugin.ipam, "daemonSocketPath") if plugin.ipam is not None else None
    value = found[1] if found is not None else None
    if value is None or value == "":
        return DHCP_SOCKET
    return posixpath.normpath(value) if isinstance(value, str) else None


def uses_default_dhcp_daemon(netconf: NetConf | None) -> bool:
    """Whether a plugin of the config needs the dhcp daemon on DHCP_SOCKET, the one socket the node
    agent probes: a daemon on a socket of the NAD's own choosing is not known to anything here."""
    return netconf is not None and any(
        plugin.ipam_type == "dhcp" and dhcp_socket(plugin) == DHCP_SOCKET for plugin in netconf.plugins)


def check_dhcp(plugin: PluginConf) -> list[Problem]:
    """The dhcp plugin decodes its section at every ADD and DEL before it dials the daemon: a field of
    the wrong type fails both. A relative daemonSocketPath is dialled from whatever directory the
    runtime runs the plugin in: warned, not refused, as a runtime started from / (systemd's default
    WorkingDirectory for containerd and CRI-O) reaches the daemon through it."""
    problems: list[Problem] = []
    found = go_field(plugin.ipam, "daemonSocketPath") if plugin.ipam is not None else None
    if found is not None and isinstance(found[1], str) and found[1] and not found[1].startswith("/"):
        path = f"{plugin.ipam_path}.{found[0]}"
        problems.append(Problem(path, f"{path} is {found[1]!r}, not an absolute path: the plugin dials it relative "
                                      "to the directory the container runtime runs it in (usually /, but nothing "
                                      "promises it), and the node agents do not check it; give the socket's absolute "
                                      f"path on the node (the daemon's -socketpath; default {DHCP_SOCKET})",
                                warning=True))
    return _with_field_types(plugin, problems)


# --- routes (shared by host-local, static and whereabouts) ------------------------------------


def check_routes(plugin: PluginConf) -> list[Problem]:
    ipam = plugin.ipam
    if ipam is None:
        return []
    f = _get(ipam, plugin.ipam_path, "routes")
    if f is None:
        return []
    if not isinstance(f.value, list):
        return [Problem(f.path, f'{f.path} is {describe(f.value)}: write a list of {{"dst": "0.0.0.0/0"}}')]
    problems: list[Problem] = []
    for i, entry in enumerate(f.value):
        epath = f"{f.path}[{i}]"
        if entry is None:
            # The route list is of *types.Route: the plugins dereference the nil one.
            problems.append(
                Problem(epath, f"{epath} is null: the {plugin.ipam_type} plugin crashes on a null route and fails "
                               "every pod; remove it")
            )
            continue
        if not isinstance(entry, Mapping):
            problems.append(Problem(epath, f'{epath} is {describe(entry)}: write a {{"dst": ...}} object'))
            continue
        dst = _given(entry, epath, "dst")
        if dst is None or parse_cidr(dst.value) is None:
            dpath = dst.path if dst else f"{epath}.dst"
            shown = describe(dst.value) if dst else "missing"
            problems.append(
                Problem(dpath, f"{dpath} is {shown}: a route needs a destination CIDR, e.g. 0.0.0.0/0")
            )
        _ip_field(entry, epath, "gw", problems)
        for name in ("mtu", "advmss", "priority", "table", "scope"):
            n = _get(entry, epath, name)
            if n is not None and not is_int(n.value):
                problems.append(Problem(n.path, f"{n.path} is {describe(n.value)}: write an integer"))
    return problems


# --- allocation ranges for the cluster-wide overlap index -------------------------------------


def _segment(plugin: PluginConf) -> dict[str, Any]:
    def text(name: str) -> str | None:
        f = plugin.field(name)
        return as_text(f[1]) if f is not None else None

    def number(name: str) -> int | None:
        f = plugin.field(name)
        return f[1] if f is not None and is_int(f[1]) else None

    kind = plugin.type
    if kind == "bridge":
        return {"bridge": text("bridge") or "cni0", "vlan": number("vlan") or None}
    if kind == "vlan":
        return {"master": text("master"), "vlan": number("vlanId")}
    if kind in ("macvlan", "ipvlan", "host-device"):
        return {"master": text("master") or text("device")}
    return {}


def _without(first: IPAddress, last: IPAddress,
             holes: Sequence[tuple[IPAddress, IPAddress]]) -> list[tuple[IPAddress, IPAddress]]:
    """The blocks of first..last outside every hole (all inclusive); holes of the other family count for
    nothing."""
    make = type(first)
    blocks: list[tuple[IPAddress, IPAddress]] = []
    start, stop = int(first), int(last)
    for lo, hi in sorted((int(lo), int(hi)) for lo, hi in holes if lo.version == first.version):
        if hi < start:
            continue
        if lo > stop:
            break
        if lo > start:
            blocks.append((make(start), make(lo - 1)))
        start = hi + 1
    if start <= stop:
        blocks.append((make(start), make(stop)))
    return blocks


#: Where host-local keeps its allocations when the config names no dataDir (disk.New, plugins v1.10.0).
HOST_LOCAL_DATA_DIR = "/var/lib/cni/networks"


def _host_local_store(ipam: Mapping[str, Any], network: str) -> str | None:
    """The directory host-local keeps this config's allocations in: dataDir/<network name>, the name
    being the config's (a list's, which libcni gives each plugin), or the NAD's when the config has none
    (Multus fills it in). None when unknown, or when the plugin would refuse the dataDir."""
    found = go_field(ipam, "dataDir")
    data_dir = found[1] if found is not None else None
    if not network or not (data_dir is None or isinstance(data_dir, str)):
        return None
    return posixpath.normpath(posixpath.join(data_dir or HOST_LOCAL_DATA_DIR, network))


def nad_allocation_ranges(netconf: NetConf | None, nad_name: str = "") -> list[AddressRange]:
    """Every block of addresses the NAD's IPAM hands out (valid ranges only), with the segment and
    pool key (whereabouts pool, host-local store) they belong to. host-local and whereabouts give
    ranges (host-local's literal runtimeConfig.ipRanges too), static gives one address per entry (of a
    literal runtimeConfig.ips instead, when it has one); dhcp and unknown IPAM types give nothing (the
    addresses are not ours to know). A range some pods only get says when (AddressRange.used_when).
    ``nad_name`` is the NAD's metadata.name: Multus names a config without a name after it, which decides
    host-local's store."""
    if netconf is None:
        return []
    network = netconf.name or nad_name
    out: list[AddressRange] = []
    for plugin in netconf.plugins:
        ipam, ipam_type = plugin.ipam, plugin.ipam_type
        if ipam is None or ipam_type is None:
            continue
        seg = _segment(plugin)
        common: dict[str, Any] = {"ipam_type": ipam_type, "plugin_type": plugin.type, **seg}
        if ipam_type == "host-local":
            sets, _ = host_local_ranges(plugin)
            common["store"] = _host_local_store(ipam, network)
            # The literal runtimeConfig.ipRanges, which host-local allocates from ahead of its own ranges
            # when the literal runtimeConfig reaches it (Multus never fills ipRanges), unless it refuses them
            # (then it allocates nothing: nad-ipam-host-local's to say).
            request = host_local_request(plugin)
            literal = request.sets[:len(request.sets) - len(sets)] if not request.range_problems else ()
            used_when = plugin.member_condition("ipRanges")
            # host-local never hands out a range's gateway (its allocator skips it; the subnet's first
            # address when none is given): a router pod may take it statically on the same segment.
            out.extend(
                AddressRange(first, last, r.path, network=r.subnet, used_when=when, **common)
                for group, when in ((literal, used_when), (sets, None))
                for s in group for r in s
                for gateway in [r.gateway or r.subnet.network_address + 1]
                for first, last in _without(r.start, r.end, [(gateway, gateway)])
            )
        elif ipam_type == "whereabouts":
            ranges, _ = whereabouts_ranges(ipam, plugin.ipam_path)
            name = go_field(ipam, "network_name")
            overlapping = go_field(ipam, "enable_overlapping_ranges")
            common["network_name"] = name[1] if name is not None and isinstance(name[1], str) else ""
            common["enable_overlapping_ranges"] = not (overlapping is not None and overlapping[1] is False)
            # Excluded addresses are never handed out: the documented way to keep some for static use.
            out.extend(
                AddressRange(first, last, r.path, network=r.network, **common)
                for r in ranges
                for first, last in _without(r.first, r.last, [(net.network_address, net.broadcast_address)
                                                               for _, net in r.excludes])
            )
        elif ipam_type == "static":
            # A literal runtimeConfig.ips replaces the rest when it reaches static (all of them readable, or
            # static fails); a declared capability Multus may fill makes both sets of addresses conditional.
            literal_ips = literal_runtime_config_ips(plugin)
            refused: list[Problem] = []
            given = args_cni_ips_addresses(literal_ips, refused) if literal_ips is not None else []
            usable = bool(given) and not any(not problem.warning for problem in refused)
            replaced_when = plugin.member_condition("ips", replaced=True) if usable else None
            if usable:
                used_when = plugin.member_condition("ips")
                out.extend(AddressRange(ip, ip, path, used_when=used_when, **common) for path, ip in given)
                if replaced_when is None:
                    continue
            common["used_when"] = replaced_when
            found = args_cni_ips(plugin)
            if found.replaces_addresses:  # the pods get these, never the addresses
                out.extend(AddressRange(ip, ip, path, **common) for path, ip in args_cni_ips_addresses(found, []))
            else:
                addresses, _ = static_addresses(ipam, plugin.ipam_path)
                out.extend(AddressRange(a.address, a.address, a.path, **common) for a in addresses)
    return out
