"""The Multus network-selection annotations, read exactly as Multus reads them.

What each part mirrors (k8snetworkplumbingwg/multus-cni):

- ``parsePodNetworkAnnotation`` (pkg/k8sclient): the form is JSON when the value contains ``[``, ``{``
  or ``"`` (then a JSON array of objects, decoded by Go's encoding/json), else comma-separated items;
  a missing namespace becomes the default namespace; MAC, InfiniBand GUID and IP/CIDR requests are
  checked; the legacy ``interfaceRequest`` stands in for a missing ``interface``.
- ``parsePodNetworkObjectName``: one text item is ``[namespace/]name[@interface]`` with at most one
  ``/`` and one ``@``, parts trimmed, namespace and name DNS-1123 labels (the JSON form skips that).
- ``GetPodNetwork``: an empty ``networks`` annotation means "no extra networks";
  ``tryLoadK8sPodDefaultNetwork``: the ``default-network`` annotation is parsed against Multus's own
  namespace, an empty value is an error and more than one network is refused.
- ``getIfname`` (pkg/multus): an element without an interface gets ``net<idx>``, idx being its
  position in the whole delegate list (see ``interface_names``).
- libcni ``ValidateInterfaceName`` (containernetworking/cni pkg/utils): what an interface name may be.
- encoding/json into ``types.NetworkSelectionElement``: every value decoded into a field is type-checked,
  also one that a repeated key (or another spelling of it) replaces, as Go fails on those too
  (``_Decoder.read``), but only for what fails Go's own decode: our further checks (a null port
  mapping) apply to the value Go keeps. A repeated ``cni-args`` (a *map) or ``bandwidth`` (a *struct)
  is decoded into the same map or struct, so their objects merge (``_merged``). Multus v4.3.0's type
  has no ``ipam-claim-reference``: Multus ignores that key.

Unlike Multus, which stops at the first error, every problem is collected.

Field paths: a problem names the annotation as ``metadata.annotations["<key>"]``, then an element by
its 0-based position ``[i]``, then a key of the JSON form as the user spelled it: ``.name``,
``.interface``, ``.default-route[1]``, ``.portMappings[0].hostPort``. Text-form elements use the same
keys for their parts (``.namespace``, ``.name``, ``.interface``). Messages start with the same path
without the ``metadata.annotations`` wrapper, e.g. ``k8s.v1.cni.cncf.io/networks[2].interface``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from webhook.cni.addresses import prefix_length
from webhook.cni.config import Problem
from webhook.cni.fields import Kind, describe, fits
from webhook.cni.gojson import GoJSONError, field_values, fold, from_pairs, go_field, loads, overwritten
from webhook.objects import as_mapping

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"
#: Multus's ``multusNamespace`` default: where a default-network without a namespace is looked up.
DEFAULT_MULTUS_NAMESPACE = "kube-system"
#: The interface the primary (cluster default) network always gets: the kubelet's CNI_IFNAME.
PRIMARY_INTERFACE = "eth0"
#: Set by the kubelet on the API object that mirrors a static pod.
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
#: Names a selection must not request: they exist in every pod already.
RESERVED_INTERFACES = frozenset({PRIMARY_INTERFACE, "lo"})
#: IFNAMSIZ - 1: the kernel's limit, in bytes.
MAX_INTERFACE_BYTES = 15

def judged(pod: Mapping[str, Any]) -> bool:
    """Whether the pod webhooks judge (and mutate) this pod at all, as their matchConditions in
    manifests/base/webhook/webhook-configurations.yaml select it. Not a host-network pod: the runtime
    calls no CNI plugin for its sandbox, so Multus never reads its selection. Not a static pod's mirror:
    refusing it only takes the pod away from Multus, which then finds no pod to read and attaches
    nothing."""
    annotations = as_mapping(as_mapping(pod.get("metadata")).get("annotations"))
    return not (as_mapping(pod.get("spec")).get("hostNetwork") is True or MIRROR_ANNOTATION in annotations)


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_JSON_MARKERS = '[{"'
# Go's unicode.IsSpace, which both strings.TrimSpace and libcni use; Python's str.isspace differs
# (it counts \x1c-\x1f, Go does not).
_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_HEX2 = "[0-9a-fA-F]{2}"
_HEX4 = "[0-9a-fA-F]{4}"
# Go's net.ParseMAC: 6, 8 or 20 octets, as hex pairs joined by ":" or "-", or groups of four joined by ".".
_MAC = re.compile(
    "|".join(
        [f"{_HEX2}(?:{re.escape(sep)}{_HEX2}){{{n - 1}}}" for sep in ":-" for n in (6, 8, 20)]
        + [f"{_HEX4}(?:\\.{_HEX4}){{{n // 2 - 1}}}" for n in (6, 8, 20)]
    )
)


def go_trim(text: str) -> str:
    """strings.TrimSpace."""
    start, end = 0, len(text)
    while start < end and text[start] in _GO_SPACE:
        start += 1
    while end > start and text[end - 1] in _GO_SPACE:
        end -= 1
    return text[start:end]


def is_go_ip(text: str) -> bool:
    """net.ParseIP: no zone (Python's ipaddress would accept ``fe80::1%eth0``)."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_go_cidr(text: str) -> bool:
    """net.ParseCIDR: a decimal prefix length only (Python would also take a netmask); host bits allowed."""
    addr, _, prefix = text.partition("/")
    length = prefix_length(prefix)
    return is_go_ip(addr) and length is not None and length <= ipaddress.ip_address(addr).max_prefixlen


def gateway_family(gateway: str) -> Literal[4, 6]:
    """The IP family Multus's CheckGatewayConfig counts a default-route gateway under: 4 when Go's
    ``To4`` gives an address, which includes IPv4-mapped IPv6 (``::ffff:10.0.0.1``); otherwise 6, which
    includes the nil IP that "" and null decode to."""
    if not is_go_ip(gateway):
        return 6
    address = ipaddress.ip_address(gateway)
    return 4 if address.version == 4 or (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped) else 6


@dataclass(frozen=True, slots=True)
class Gateway:
    """One default-route gateway an element requests, and where it is written."""

    where: Where
    address: str

    @property
    def family(self) -> Literal[4, 6]:
        return gateway_family(self.address)


def default_route_gateways(parsed: ParsedNetworks, indices: Iterable[int] | None = None) -> list[Gateway]:
    """The default-route gateways of the elements of ``parsed`` (those at ``indices``, all by default),
    in order. Paths name the key as the user spelled it."""
    found: list[Gateway] = []
    for i in range(len(parsed.selections)) if indices is None else indices:
        selection, raw = parsed.selections[i], parsed.raw[i]
        spelled = go_field(raw, "default-route") if isinstance(raw, Mapping) else None
        where = parsed.where.at(f"[{i}].{spelled[0] if spelled else 'default-route'}")
        found += (Gateway(where.at(f"[{j}]"), gateway) for j, gateway in enumerate(selection.default_route or ()))
    return found


def checks_default_routes(networks: ParsedNetworks | None) -> bool:
    """Whether Multus counts default-route gateways at all for a pod whose ``networks`` annotation
    parses to ``networks`` (None: absent). TryLoadPodDelegates calls CheckGatewayConfig only inside
    ``if networks != nil``, and GetPodNetwork gives nil for an absent or empty ("") annotation (its
    ``len(netAnnot) == 0``): the default network's gateways alone are then never counted. "[]" is not
    empty there (a non-nil empty list), nor is whitespace (one item with an empty name, whose lookup
    fails the pod before gateways are counted)."""
    return networks is not None and networks.form != "empty"


def excess_default_routes(gateways: Iterable[Gateway]) -> dict[Literal[4, 6], list[Gateway]]:
    """Multus's CheckGatewayConfig (pkg/types/conf.go): the IP families with more than one default-route
    gateway among ``gateways`` (those of all of a pod's attachments), each with all its gateways in
    order. Multus fails the pod's ADD on any ("multus does not support ECMP for default-route")."""
    by_family: dict[Literal[4, 6], list[Gateway]] = {4: [], 6: []}
    for gateway in gateways:
        by_family[gateway.family].append(gateway)
    return {family: found for family, found in by_family.items() if len(found) > 1}


def excess_default_routes_message(family: Literal[4, 6], gateways: Sequence[Gateway]) -> str:
    """What is wrong with ``gateways`` (an entry of excess_default_routes); the caller says what follows."""
    listed = ", ".join(f"{g.where.label} ({g.address})" for g in gateways)
    return (
        f"{listed} set {len(gateways)} IPv{family} default-route gateways, but Multus allows at most one "
        "default-route gateway per IP family across all of a pod's attachments (both selection annotations) "
        'and otherwise fails the pod\'s network setup ("multus does not support ECMP for default-route")'
    )


def is_go_mac(text: str) -> bool:
    """net.ParseMAC, which Multus uses for both ``mac`` and ``infiniband-guid``."""
    return _MAC.fullmatch(text) is not None


def is_text_name(text: str) -> bool:
    """The DNS-1123 label the text form requires of a namespace and a name."""
    return _DNS_LABEL.fullmatch(text) is not None


def interface_problem(ifname: str) -> str | None:
    """Why libcni (or the text-form parser) refuses ``ifname``; None when it is fine. Empty is fine:
    Multus then chooses the name."""
    if not ifname:
        return None
    size = len(ifname.encode())
    if size > MAX_INTERFACE_BYTES:
        return (
            f'"{ifname}" is {size} bytes long, but Linux interface names have at most {MAX_INTERFACE_BYTES}: '
            "choose a shorter name"
        )
    if ifname in (".", ".."):
        return f'"{ifname}" is not a usable interface name: choose a name like net1 or data0'
    if any(c in "/:" or c in _GO_SPACE for c in ifname):
        return f'"{ifname}" contains "/", ":" or whitespace, which interface names may not: remove them'
    return None


@dataclass(frozen=True, slots=True)
class Where:
    """The path of one part of an annotation: ``field`` for findings, ``label`` for messages."""

    field: str
    label: str

    def at(self, suffix: str) -> Where:
        return Where(self.field + suffix, self.label + suffix)

    def problem(self, message: str, *, warning: bool = False) -> Problem:
        return Problem(self.field, f"{self.label} {message}", warning)


def annotation_where(key: str) -> Where:
    return Where(f'metadata.annotations["{key}"]', key)


@dataclass(frozen=True, slots=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = ""
    host_ip: str = ""


@dataclass(frozen=True, slots=True)
class Bandwidth:
    ingress_rate: int = 0
    ingress_burst: int = 0
    egress_rate: int = 0
    egress_burst: int = 0


@dataclass(frozen=True)
class NetworkSelection:
    """One element of a selection annotation, as Multus understands it.

    ``namespace`` is resolved (the pod's namespace, or Multus's for the default network);
    ``namespace_explicit`` says whether the annotation wrote it, so rendering gives back what was
    written. An empty ``interface`` lets Multus choose (``net<N>``). Not hashable when ``cni_args``
    is set."""

    name: str
    namespace: str
    interface: str = ""
    namespace_explicit: bool = True
    ips: tuple[str, ...] = ()
    mac: str = ""
    infiniband_guid: str = ""
    #: None when absent: Multus distinguishes an empty list (no default route here) from none.
    default_route: tuple[str, ...] | None = None
    cni_args: Mapping[str, Any] | None = None
    #: The key the element wrote "cni-args" as (Go matches it case-insensitively: "CNI-Args" too), for
    #: messages; the last spelling, when several were merged.
    cni_args_key: str = field(default="cni-args", compare=False)
    #: None for a null entry, which Go decodes into a nil *PortMapEntry: Multus passes it on as null, and
    #: a plugin declaring the portMappings capability decodes it as an entry of zeros.
    port_mappings: tuple[PortMapping | None, ...] = ()
    bandwidth: Bandwidth | None = None
    device_id: str = ""
    ipam_claim_reference: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two selections the same attachment: namespace, name, interface."""
        return (self.namespace, self.name, self.interface)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def describe(self) -> str:
        return self.ref + (f"@{self.interface}" if self.interface else "")


@dataclass(frozen=True)
class ParsedNetworks:
    """A selection annotation after parsing.

    ``problems`` are what make Multus fail the pod; ``notes`` are read fine but probably not meant
    (unknown keys, legacy spellings). ``selections`` is empty whenever there are problems, as Multus
    then attaches nothing. ``raw`` holds the elements as written: the decoded JSON objects, or the
    trimmed text items."""

    form: Literal["empty", "text", "json"]
    where: Where
    selections: tuple[NetworkSelection, ...] = ()
    problems: tuple[Problem, ...] = ()
    notes: tuple[Problem, ...] = ()
    raw: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# Decoding JSON elements: Go's encoding/json into multus-cni's types.NetworkSelectionElement.

_ELEMENT_KEYS = (
    "name",
    "namespace",
    "interface",
    "interfaceRequest",
    "ips",
    "mac",
    "infiniband-guid",
    "default-route",
    "cni-args",
    "portMappings",
    "bandwidth",
    "deviceID",
    # Not in Multus's own type (which ignores it) but in the NAD client's, read by OVN-Kubernetes.
    "ipam-claim-reference",
)
_PORT_KEYS = ("hostPort", "containerPort", "protocol", "hostIP")
_BANDWIDTH_KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")


@functools.cache
def _known(known: tuple[str, ...]) -> tuple[frozenset[str], dict[str, str]]:
    """The keys as Multus spells them, and each by its fold."""
    by_fold = {fold(k): k for k in known}
    return frozenset(by_fold.values()), by_fold


T = TypeVar("T")

#: Reads one value Go decodes into a field, as Go's json.Unmarshal checks it: appends what makes the
#: decode fail to the first list and notes to the second; returns the value as read (None when null or
#: of the wrong type). Notes None: a value that a later occurrence of the key replaces, of which only
#: what fails Go's own decode counts (no notes, and none of the checks that go beyond Go's, as Go drops
#: the value and Multus never sees it).
_Reader = Callable[[Where, Any, list[Problem], list[Problem] | None], T]


def _earlier(problem: Problem, spelled: str) -> Problem:
    """``problem`` of a value that a later occurrence of the same field replaces."""
    return Problem(
        problem.field,
        f"{problem.message}. This is an earlier \"{spelled}\", a repeated key (Go matches keys "
        "case-insensitively): Go decodes every occurrence into the field in turn, and fails on this one; "
        "remove it",
        problem.warning,
    )


def _merged(values: Sequence[Any]) -> tuple[Any, int]:
    """What Go leaves in a pointer-to-map or pointer-to-struct field (cni-args, bandwidth) after decoding
    ``values`` (every occurrence of the key, the last one an object) into it in turn, and where in
    ``values`` the objects merged into it start. An object is decoded into the map or struct already
    there: its keys are added to the earlier ones, or replace them (those replaced are kept as
    ``overwritten``, which Go type-checks as it decodes them). null resets the field to nil. A value of
    another type fails the decode and leaves the field as it was."""
    start = max((i + 1 for i, value in enumerate(values) if value is None), default=0)
    pairs: list[tuple[str, Any]] = []
    for value in values[start:]:
        if _is_json_object(value):
            pairs += ((key, old) for key, olds in overwritten(value).items() for old in olds)
            pairs += value.items()
    return from_pairs(pairs), start


def _merged_entries(values: Sequence[Any]) -> tuple[list[Any], int]:
    """What Go leaves in a slice of pointers to structs (portMappings, a []*PortMapEntry) after decoding
    ``values`` (every occurrence of the key, the last one a list) into it in turn, and where in ``values``
    the lists merged into it start. Go decodes each element of a list into the entry already at its
    index, one that an earlier list left in the slice's array even past the current length: the
    entry's fields are kept unless the object sets them, as for a merged struct. null makes an entry
    nil, and a later object a new one. The slice ends as long as the last list; null and an empty list
    start a new slice; a value of another type fails the decode and leaves the slice as it was.
    Checked with the real Multus v4.3.0 parser."""
    start = max((i + 1 for i, value in enumerate(values) if value is None or value == []), default=0)
    array: list[Any] = []
    length = 0
    for value in values[start:]:
        if not isinstance(value, list):
            continue
        for i, item in enumerate(value):
            old: Any = array[i] if i < len(array) else None
            new = item
            if _is_json_object(item) and _is_json_object(old):
                pairs = [(key, was) for key, olds in overwritten(old).items() for was in olds] + list(old.items())
                pairs += [(key, was) for key, olds in overwritten(item).items() for was in olds] + list(item.items())
                new = from_pairs(pairs)
            if i < len(array):
                array[i] = new
            else:
                array.append(new)
        length = len(value)
    return array[:length], start


class _Decoder:
    """Decodes one JSON object field by field, collecting problems and notes."""

    def __init__(self, obj: Mapping[str, Any], where: Where, known: tuple[str, ...]) -> None:
        # Indexed once: an element is asked for a dozen fields, and each lookup would fold every key.
        values = field_values(obj)
        self.fields = {name: found[-1] for name, found in values.items()}
        # What Go decodes into a field before the value it keeps (a repeated key, another spelling): Go
        # type-checks these too, and one of the wrong type fails the whole decode.
        self.earlier = {name: found[:-1] for name, found in values.items() if len(found) > 1}
        self.where = where
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        spelled, by_fold = _known(known)
        for key in obj:
            if key in spelled:
                continue  # folded once, by field_values: only a key that gets a note is folded again
            canonical = by_fold.get(fold(key))
            if canonical is None:
                self.notes.append(
                    where.at(f".{key}").problem(
                        "is not a field Multus reads, so it is ignored: remove it or use one of "
                        + ", ".join(known),
                        warning=True,
                    )
                )
            else:
                self.notes.append(
                    where.at(f".{key}").problem(
                        f'is read as "{canonical}" only because Go matches keys case-insensitively: '
                        f'spell it "{canonical}"',
                        warning=True,
                    )
                )

    def field(self, key: str) -> tuple[str, Any] | None:
        """The key as spelled and the value that Go decodes into the field ``key``."""
        return self.fields.get(fold(key))

    def read(self, key: str, reader: _Reader[T], *, merges: bool = False, entries: bool = False,
             scalar: bool = False) -> tuple[Where, T | None]:
        """The field ``key`` read by ``reader`` (None when absent), after every earlier value Go decodes
        into the field has been checked for what fails Go's own decode: Go fails on those as on the last.
        ``merges``: the field is a pointer to a map or struct, into which Go decodes a repeated key's
        objects one after the other (see _merged): the reader reads their merge. ``entries``: the field
        is a slice of pointers to structs, whose entries Go decodes a repeated key's lists into (see
        _merged_entries). ``scalar``: a string or number field, which null leaves as it was: the value
        kept is the last one that is not null."""
        folded = fold(key)
        found = self.fields.get(folded)
        earlier = self.earlier.get(folded, [])
        if scalar and found is not None and found[1] is None:
            kept = [i for i, (_, value) in enumerate(earlier) if value is not None]
            if kept:
                found, earlier = earlier[kept[-1]], earlier[:kept[-1]] + earlier[kept[-1] + 1:]
        if merges and found is not None and earlier and _is_json_object(found[1]):
            values = [value for _, value in earlier]
            merged, start = _merged([*values, found[1]])
            # The objects merged are read (with their replaced keys) as one; the rest stay earlier values.
            earlier = [e for i, e in enumerate(earlier) if i < start or not _is_json_object(e[1])]
            found = (found[0], merged)
        if entries and found is not None and earlier and isinstance(found[1], list):
            merged_list, start = _merged_entries([*(value for _, value in earlier), found[1]])
            earlier = [e for i, e in enumerate(earlier) if i < start or not isinstance(e[1], list)]
            found = (found[0], merged_list)
        for spelled, value in earlier:
            problems: list[Problem] = []
            reader(self.where.at(f".{spelled}"), value, problems, None)
            self.problems += (_earlier(p, spelled) for p in problems)
        if found is None:
            return self.where.at(f".{key}"), None
        spelled, value = found
        where = self.where.at(f".{spelled}")
        return where, reader(where, value, self.problems, self.notes)

    def value(self, key: str, kind: Kind, expected: str) -> tuple[Where, Any]:
        """The value Go would decode into ``key`` (None when absent, null, or of the wrong type)."""
        return self.read(key, _typed(kind, expected), scalar=kind in (Kind.STRING, Kind.INT))

    def text(self, key: str) -> tuple[Where, str]:
        where, value = self.value(key, Kind.STRING, "a string")
        return where, value if isinstance(value, str) else ""

    def string(self, key: str) -> str:
        return self.text(key)[1]

    def integer(self, key: str) -> int:
        value = self.value(key, Kind.INT, "an integer")[1]
        return value if isinstance(value, int) else 0

    def strings(self, key: str) -> tuple[Where, list[str] | None]:
        return self.read(key, _read_strings)


@functools.cache
def _typed(kind: Kind, expected: str) -> _Reader[Any]:
    """The reader of a field of ``kind``; one per kind, made once."""

    def read(where: Where, value: Any, problems: list[Problem], notes: list[Problem] | None) -> Any:
        if fits(value, kind):
            return value
        problems.append(
            where.problem(
                f"is {describe(value)}, but Multus decodes it as {expected}: Multus cannot read the "
                f"annotation and the pod never starts; write it as {expected}"
            )
        )
        return None

    return read


def _read_strings(where: Where, value: Any, problems: list[Problem], notes: list[Problem] | None) -> list[str] | None:
    """A []string."""
    value = _typed(Kind.LIST, "a list of strings")(where, value, problems, notes)
    if value is None:
        return None
    out: list[str] = []
    for i, item in enumerate(value):
        if item is None:
            item = ""  # Go decodes null into a string as ""
        if not isinstance(item, str):
            problems.append(
                where.at(f"[{i}]").problem(
                    f"is {describe(item)}, but Multus decodes it as a string: Multus cannot read the "
                    "annotation and the pod never starts; quote it"
                )
            )
            continue
        out.append(item)
    return out


def _not_a_gateway(where: Where, gateway: str) -> Problem:
    return where.problem(f"{gateway!r} is not an IP address (a gateway, no prefix length): write one like 10.1.2.1")


def _read_gateways(where: Where, value: Any, problems: list[Problem], notes: list[Problem] | None) -> list[str] | None:
    """default-route, a *[]net.IP: net.IP's UnmarshalText refuses, while decoding, any text but an IP
    address or "" (a nil IP; null too), and the decode fails with it."""
    gateways = _read_strings(where, value, problems, notes)
    for i, gateway in enumerate(gateways or ()):
        if gateway and not is_go_ip(gateway):
            problems.append(_not_a_gateway(where.at(f"[{i}]"), gateway))
    return gateways


def _read_port_mappings(
    where: Where, value: Any, problems: list[Problem], notes: list[Problem] | None
) -> list[PortMapping | None] | None:
    """portMappings, a []*PortMapEntry: null entries are kept (None), as Go keeps a nil pointer. What the
    plugin that takes them makes of one is pod-networks-port-mappings's to judge."""
    entries = _typed(Kind.LIST, "a list of objects")(where, value, problems, notes)
    if entries is None:
        return None
    ports: list[PortMapping | None] = []
    for i, entry in enumerate(entries):
        entry_where = where.at(f"[{i}]")
        if entry is None:
            ports.append(None)  # Go decodes null into a nil entry without complaint
            continue
        if not _is_json_object(entry):
            problems.append(
                entry_where.problem(
                    f"is {_describe_object(entry)}: each port mapping must be an object like "
                    '{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}'
                )
            )
            continue
        pd = _Decoder(entry, entry_where, _PORT_KEYS)
        ports.append(PortMapping(pd.integer("hostPort"), pd.integer("containerPort"), pd.string("protocol"),
                                 pd.string("hostIP")))
        problems += pd.problems
        if notes is not None:
            notes += pd.notes
    return ports


def _read_bandwidth(where: Where, value: Any, problems: list[Problem], notes: list[Problem] | None) -> Bandwidth | None:
    """bandwidth, a *BandwidthEntry."""
    raw = _typed(Kind.OBJECT, "an object")(where, value, problems, notes)
    if raw is None:
        return None
    if not _is_json_object(raw):
        problems.append(
            where.problem("has a key that is not a string: use only the keys " + ", ".join(_BANDWIDTH_KEYS))
        )
        return None
    bd = _Decoder(raw, where, _BANDWIDTH_KEYS)
    bandwidth = Bandwidth(*(bd.integer(k) for k in _BANDWIDTH_KEYS))
    problems += bd.problems
    if notes is not None:
        notes += bd.notes
    return bandwidth


def _read_claim_reference(where: Where, value: Any, problems: list[Problem], notes: list[Problem] | None) -> str | None:
    """ipam-claim-reference: not a field of Multus's own NetworkSelectionElement (v4.3.0), so Multus
    ignores the key whatever its value and the pod starts; only a value of the wrong type is worth a
    note, for OVN-Kubernetes, which reads it through the NAD client's type, as a string."""
    if isinstance(value, str):
        return value
    if value is not None and notes is not None:
        notes.append(
            where.problem(
                f"is {describe(value)}: Multus ignores this key, but the NAD client's selection type, through "
                "which OVN-Kubernetes reads it, has it as a string, and such readers cannot read the annotation; "
                "write it as a string, or remove it",
                warning=True,
            )
        )
    return None


def _is_json_object(value: Any) -> bool:
    # YAML (a profile in a manifest file) can give non-string keys, which JSON never does.
    return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)


def _describe_object(value: Any) -> str:
    return "an object with a key that is not a string" if isinstance(value, Mapping) else describe(value)


def _decode_element(
    item: Any, where: Where, default_namespace: str
) -> tuple[NetworkSelection | None, _Decoder | None]:
    if not _is_json_object(item):
        return None, None
    d = _Decoder(item, where, _ELEMENT_KEYS)
    name = d.string("name")
    # A mistyped name is reported as such, not again as empty.
    checked_name = name if not d.problems else None
    namespace = d.string("namespace")
    interface = d.string("interface")
    interface_key = "interface"
    legacy = d.field("interfaceRequest")
    if legacy is not None:
        d.notes.append(
            where.at(f".{legacy[0]}").problem(
                'is the pre-3.2 spelling of "interface", which Multus reads only while the element has no '
                '"interface" and marks for removal: rename the key to "interface"', warning=True
            )
        )
        legacy_value = d.string("interfaceRequest")
        if not interface and legacy_value:
            interface, interface_key = legacy_value, legacy[0]

    ips_where, ips = d.strings("ips")
    for i, ip in enumerate(ips or []):
        ok = is_go_cidr(ip) if "/" in ip else is_go_ip(ip)
        if not ok:
            d.problems.append(
                ips_where.at(f"[{i}]").problem(
                    f"{ip!r} is not an IP address or CIDR: write one like 10.1.2.3, 10.1.2.3/24 or fd00::3/64"
                )
            )
    mac_where, mac = d.text("mac")
    if mac and not is_go_mac(mac):
        d.problems.append(
            mac_where.problem(f"{mac!r} is not a MAC address: write six hex pairs like 02:00:00:00:00:01")
        )
    guid_where, guid = d.text("infiniband-guid")
    if guid and not is_go_mac(guid):
        d.problems.append(
            guid_where.problem(
                f"{guid!r} is not an InfiniBand GUID: write eight hex pairs like 02:00:00:00:00:00:00:01"
            )
        )
    route_where, routes = d.read("default-route", _read_gateways)
    for i, gw in enumerate(routes or ()):
        # Go would decode "" (and null) as a nil IP without complaint; it can only be a mistake, so refuse it.
        if not gw:
            d.problems.append(_not_a_gateway(route_where.at(f"[{i}]"), gw))
    cni_args_where, cni_args = d.read("cni-args", _typed(Kind.OBJECT, "an object"), merges=True)
    ports = d.read("portMappings", _read_port_mappings, entries=True)[1]
    bandwidth = d.read("bandwidth", _read_bandwidth, merges=True)[1]

    device_id = d.string("deviceID")
    claim = d.read("ipam-claim-reference", _read_claim_reference)[1] or ""
    _check_name_and_interface(d.problems, where, checked_name, interface, interface_key)
    selection = NetworkSelection(
        name=name,
        namespace=namespace or default_namespace,
        interface=interface,
        namespace_explicit=bool(namespace),
        ips=tuple(ips or ()),
        mac=mac,
        infiniband_guid=guid,
        default_route=None if routes is None else tuple(routes),
        cni_args=cni_args,
        cni_args_key=cni_args_where.field.rsplit(".", 1)[-1],
        port_mappings=tuple(ports or ()),
        bandwidth=bandwidth,
        device_id=device_id,
        ipam_claim_reference=claim,
    )
    return selection, d


def _check_name_and_interface(
    problems: list[Problem], where: Where, name: str | None, interface: str, interface_key: str = "interface"
) -> None:
    """``name`` None: already reported."""
    if name == "":
        # Multus's parser lets an empty name through; looking up the NAD then fails on every start.
        problems.append(
            where.at(".name").problem(
                "is empty: set it to the name of the NetworkAttachmentDefinition to attach"
            )
        )
    why = interface_problem(interface)
    if why:
        problems.append(where.at(f".{interface_key}").problem(why))


def parse_elements(elements: Any, default_namespace: str, where: Where) -> ParsedNetworks:
    """Decoded JSON-form elements (a list of objects), e.g. from the annotation or a NetworkProfile's
    ``spec.networks``."""
    if not isinstance(elements, list):
        return ParsedNetworks(
            "json",
            where,
            problems=(
                where.problem(
                    f"is {describe(elements)}, but the JSON form must be a list of objects like "
                    '[{"name": "my-net", "interface": "net1"}]: wrap the elements in [ ]'
                ),
            ),
        )
    selections: list[NetworkSelection] = []
    problems: list[Problem] = []
    notes: list[Problem] = []
    for i, item in enumerate(elements):
        selection, decoder = _decode_element(item, where.at(f"[{i}]"), default_namespace)
        if selection is None or decoder is None:
            problems.append(
                where.at(f"[{i}]").problem(
                    f"is {_describe_object(item)}, but each element must be an object like "
                    '{"name": "my-net"}: fix or remove it'
                )
            )
            continue
        selections.append(selection)
        problems += decoder.problems
        notes += decoder.notes
    return ParsedNetworks(
        "json",
        where,
        selections=() if problems else tuple(selections),
        problems=tuple(problems),
        notes=tuple(notes),
        raw=tuple(elements),
    )


# ---------------------------------------------------------------------------------------------
# The short text form.


def _parse_text_item(
    item: str, where: Where, default_namespace: str
) -> tuple[NetworkSelection, list[Problem]]:
    """One ``[namespace/]name[@interface]`` item, already trimmed (parsePodNetworkObjectName)."""
    problems: list[Problem] = []
    if not item:
        problems.append(
            where.problem(
                'is empty (a stray ","): Multus looks up a network with an empty name and the pod never '
                'starts; remove the extra ","'
            )
        )
    slash = item.split("/")
    if len(slash) > 2:
        problems.append(where.problem(f'"{item}" has more than one "/": write [namespace/]name[@interface]'))
    namespace = go_trim(slash[0]) if len(slash) == 2 else ""
    at = slash[-1].split("@")
    if len(at) > 2:
        problems.append(where.problem(f'"{item}" has more than one "@": write [namespace/]name[@interface]'))
    name = go_trim(at[0])
    interface = go_trim(at[1]) if len(at) == 2 else ""
    for part, value in (("namespace", namespace), ("name", name)):
        if value and not is_text_name(value):
            problems.append(
                where.at(f".{part}").problem(
                    f'"{value}" is not valid in the short form (lower-case letters, digits and "-", starting '
                    "and ending with a letter or digit): fix the name, or use the JSON form "
                    f'[{{"name": "...", "namespace": "..."}}]'
                )
            )
    if item and not problems:
        _check_name_and_interface(problems, where, name, interface)
    selection = NetworkSelection(
        name, namespace or default_namespace, interface, namespace_explicit=bool(namespace)
    )
    return selection, problems


#: Annotations up to this size are parsed once and remembered: every rule and the mutation ask for the
#: same value, and a Deployment's replicas carry identical ones. Larger ones are parsed each time, so
#: the cache stays small.
_CACHED_VALUE_SIZE = 4096


def _parse(value: str, default_namespace: str, where: Where) -> ParsedNetworks:
    if len(value) <= _CACHED_VALUE_SIZE:
        return _parse_cached(value, default_namespace, where)
    return _parse_value(value, default_namespace, where)


@functools.lru_cache(maxsize=2048)
def _parse_cached(value: str, default_namespace: str, where: Where) -> ParsedNetworks:
    return _parse_value(value, default_namespace, where)


def _parse_value(value: str, default_namespace: str, where: Where) -> ParsedNetworks:
    if value == "":
        return ParsedNetworks("empty", where)
    if any(c in value for c in _JSON_MARKERS):
        try:
            decoded = loads(value)
        except GoJSONError as exc:
            return ParsedNetworks(
                "json",
                where,
                problems=(
                    where.problem(
                        f'contains [, {{ or ", so Multus reads it as JSON, but it is not valid JSON '
                        f"({exc}): "
                        'fix the JSON (a list like [{"name": "my-net"}]) or use the short form '
                        "namespace/name@interface"
                    ),
                ),
            )
        return parse_elements(decoded, default_namespace, where)
    if not go_trim(value):
        return ParsedNetworks(
            "text",
            where,
            problems=(
                where.problem(
                    "is only whitespace, which Multus reads as one network with an empty name: remove the "
                    "annotation or name a network"
                ),
            ),
        )
    items = [go_trim(item) for item in value.split(",")]
    selections: list[NetworkSelection] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        selection, item_problems = _parse_text_item(item, where.at(f"[{i}]"), default_namespace)
        selections.append(selection)
        problems += item_problems
    return ParsedNetworks(
        "text",
        where,
        selections=() if problems else tuple(selections),
        problems=tuple(problems),
        raw=tuple(items),
    )


def parse_networks(value: str, pod_namespace: str, *, where: Where | None = None) -> ParsedNetworks:
    """The ``k8s.v1.cni.cncf.io/networks`` annotation of a pod in ``pod_namespace``. An empty value
    parses to no selections (form "empty"), as Multus starts such a pod with the primary network only."""
    return _parse(value, pod_namespace, where or annotation_where(NETWORKS_ANNOTATION))


def parse_default_network(
    value: str, multus_namespace: str = DEFAULT_MULTUS_NAMESPACE, *, where: Where | None = None
) -> ParsedNetworks:
    """The ``v1.multus-cni.io/default-network`` annotation: one selection, its namespace defaulting
    to Multus's own (``multusNamespace``), never the pod's."""
    where = where or annotation_where(DEFAULT_NETWORK_ANNOTATION)
    if value == "":
        return ParsedNetworks(
            "empty",
            where,
            problems=(
                where.problem(
                    "is empty, which Multus refuses, so the pod never starts: name the "
                    "NetworkAttachmentDefinition of the pod's primary network, or remove the annotation"
                ),
            ),
        )
    parsed = _parse(value, multus_namespace, where)
    if parsed.ok and len(parsed.selections) != 1:
        count = len(parsed.selections)
        return ParsedNetworks(
            parsed.form,
            where,
            problems=(
                where.problem(
                    f"names {count} networks, but a pod has exactly one default network and Multus refuses "
                    "the pod otherwise: keep one, and list extra networks in "
                    f"{NETWORKS_ANNOTATION}"
                ),
            ),
            notes=parsed.notes,
            raw=parsed.raw,
        )
    return parsed


# ---------------------------------------------------------------------------------------------
# Interface names, references, rendering.


def interface_names(selections: Sequence[NetworkSelection], first_index: int = 1) -> tuple[str, ...]:
    """The interface each selection of the ``networks`` annotation gets in the pod.

    Multus names an element without an interface ``net<idx>`` where idx is its position in the whole
    delegate list: the cluster default network is 0, then come the ``defaultNetworks`` of Multus's
    config (skipped for pods in its ``systemNamespaces``), then the annotation's elements, named or
    not. ``first_index`` is therefore 1 + the number of those defaultNetworks (1 by default)."""
    return tuple(s.interface or f"net{first_index + i}" for i, s in enumerate(selections))


@dataclass(frozen=True, slots=True)
class DefaultNetworks:
    """Multus's ``defaultNetworks`` and ``systemNamespaces`` (its config, which the policy repeats):
    every pod outside the system namespaces is attached to the default networks right after its
    primary network, as net1..netK, and the elements of its own annotation are numbered after them."""

    names: tuple[str, ...] = ()
    system_namespaces: tuple[str, ...] = ("kube-system",)

    def first_index(self, pod_namespace: str) -> int:
        """The ``first_index`` of interface_names for a pod in ``pod_namespace``."""
        return 1 if pod_namespace in self.system_namespaces else 1 + len(self.names)

    def attached(self, pod_namespace: str) -> tuple[str, ...]:
        """The default networks Multus attaches to a pod in ``pod_namespace`` (at every ADD: they are in
        no annotation of the pod)."""
        return () if pod_namespace in self.system_namespaces else self.names

    def taken(self, pod_namespace: str) -> dict[str, str]:
        """The interfaces the default networks take in such a pod -> what takes it, in words for a
        finding ("Multus gives default network ...")."""
        return {f"net{1 + i}": f"Multus gives default network {name} (defaultNetworks in its config and in the "
                               "policy)" for i, name in enumerate(self.attached(pod_namespace))}


def default_network_is_nad(name: str) -> bool:
    """Whether Multus looks a ``defaultNetworks`` entry up as a NAD (in its multusNamespace, then as the
    name of a CNI config in its confDir): a name with a "/" in it is a path on the node, never a NAD."""
    return "/" not in name


#: Multus's own default: no defaultNetworks.
NO_DEFAULT_NETWORKS = DefaultNetworks()


@dataclass(frozen=True, slots=True)
class NetworkReference:
    """A NetworkAttachmentDefinition a pod refers to, for the cluster-aware rules."""

    annotation: str
    namespace: str
    name: str
    #: The interface it gets in the pod (net<N> filled in; eth0 for the default network).
    interface: str
    #: The finding field of the element, e.g. metadata.annotations["k8s.v1.cni.cncf.io/networks"][1].
    field: str
    selection: NetworkSelection


def network_references(
    annotations: Mapping[str, Any],
    pod_namespace: str,
    *,
    multus_namespace: str = DEFAULT_MULTUS_NAMESPACE,
    first_index: int = 1,
) -> tuple[NetworkReference, ...]:
    """The NADs the pod's two selection annotations refer to, namespaces resolved. Annotations that are
    absent, not strings or unparsable contribute nothing (the syntax rules report those)."""
    default = annotations.get(DEFAULT_NETWORK_ANNOTATION)
    networks = annotations.get(NETWORKS_ANNOTATION)
    default = default if isinstance(default, str) else None
    networks = networks if isinstance(networks, str) else None
    if len(default or "") + len(networks or "") <= _CACHED_VALUE_SIZE:
        # The mutation, the rules and the cache resolve the same values (a Deployment's pods share them).
        return _references_cached(default, networks, pod_namespace, multus_namespace, first_index)
    return _references(default, networks, pod_namespace, multus_namespace, first_index)


@functools.lru_cache(maxsize=2048)
def _references_cached(default: str | None, networks: str | None, pod_namespace: str, multus_namespace: str,
                       first_index: int) -> tuple[NetworkReference, ...]:
    return _references(default, networks, pod_namespace, multus_namespace, first_index)


def _references(default: str | None, networks: str | None, pod_namespace: str, multus_namespace: str,
                first_index: int) -> tuple[NetworkReference, ...]:
    refs: list[NetworkReference] = []
    if default is not None:
        parsed = parse_default_network(default, multus_namespace)
        for s in parsed.selections:
            refs.append(
                NetworkReference(
                    DEFAULT_NETWORK_ANNOTATION,
                    s.namespace,
                    s.name,
                    s.interface or PRIMARY_INTERFACE,
                    parsed.where.field,
                    s,
                )
            )
    if networks is not None:
        parsed = parse_networks(networks, pod_namespace)
        names = interface_names(parsed.selections, first_index)
        for i, (s, ifname) in enumerate(zip(parsed.selections, names, strict=True)):
            refs.append(
                NetworkReference(
                    NETWORKS_ANNOTATION, s.namespace, s.name, ifname, parsed.where.at(f"[{i}]").field, s
                )
            )
    return tuple(refs)


def fits_text_form(selection: NetworkSelection) -> bool:
    """Whether the short ``[namespace/]name[@interface]`` form can say all of ``selection``."""
    only_names = selection == NetworkSelection(
        selection.name, selection.namespace, selection.interface, selection.namespace_explicit
    )
    interface_ok = not selection.interface or (
        interface_problem(selection.interface) is None
        and not any(c in "@," + _JSON_MARKERS for c in selection.interface)
    )
    return (
        only_names
        and is_text_name(selection.name)
        and (not selection.namespace_explicit or is_text_name(selection.namespace))
        and interface_ok
    )


def to_text_item(selection: NetworkSelection) -> str:
    prefix = f"{selection.namespace}/" if selection.namespace_explicit else ""
    suffix = f"@{selection.interface}" if selection.interface else ""
    return prefix + selection.name + suffix


def to_json_element(selection: NetworkSelection) -> dict[str, Any]:
    """The JSON-form object for ``selection``, with only the keys that are set."""
    out: dict[str, Any] = {"name": selection.name}
    if selection.namespace_explicit:
        out["namespace"] = selection.namespace
    if selection.interface:
        out["interface"] = selection.interface
    if selection.ips:
        out["ips"] = list(selection.ips)
    if selection.mac:
        out["mac"] = selection.mac
    if selection.infiniband_guid:
        out["infiniband-guid"] = selection.infiniband_guid
    if selection.default_route is not None:
        out["default-route"] = list(selection.default_route)
    if selection.cni_args is not None:
        out["cni-args"] = dict(selection.cni_args)
    if selection.port_mappings:
        out["portMappings"] = [_port_json(p) for p in selection.port_mappings]
    if selection.bandwidth is not None:
        b = selection.bandwidth
        out["bandwidth"] = {
            "ingressRate": b.ingress_rate,
            "ingressBurst": b.ingress_burst,
            "egressRate": b.egress_rate,
            "egressBurst": b.egress_burst,
        }
    if selection.device_id:
        out["deviceID"] = selection.device_id
    if selection.ipam_claim_reference:
        out["ipam-claim-reference"] = selection.ipam_claim_reference
    return out


def _port_json(p: PortMapping | None) -> dict[str, Any] | None:
    if p is None:
        return None
    out: dict[str, Any] = {"hostPort": p.host_port, "containerPort": p.container_port}
    if p.protocol:
        out["protocol"] = p.protocol
    if p.host_ip:
        out["hostIP"] = p.host_ip
    return out


def dump_json_form(elements: Sequence[Any]) -> str:
    """The JSON form of already-built elements (compact, key order kept, non-ASCII kept)."""
    return json.dumps(list(elements), separators=(",", ":"), ensure_ascii=False)


def render_networks(selections: Sequence[NetworkSelection]) -> str:
    """The ``networks`` annotation value for ``selections``: the short form when every element fits
    it, the JSON form otherwise. ``parse_networks`` of the result gives ``selections`` back."""
    if all(fits_text_form(s) for s in selections):
        return ",".join(to_text_item(s) for s in selections)
    return dump_json_form([to_json_element(s) for s in selections])
