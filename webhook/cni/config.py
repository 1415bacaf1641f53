"""A NAD's ``spec.config``: the CNI network configuration, single or list, parsed leniently.

Parsing never raises: structural problems are collected with the JSON path of the field, and every
plugin that is at least an object is kept so that the other rules can still look at it.

The config is kept as the plugins get it: libcni decodes each plugin's config into a map and encodes it
again before running the plugin, which sorts the keys of every object and prints whole numbers as
integers (see gojson.loads).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from webhook.cni.gojson import GoJSONError, field_spellings, fits_int64, fold, go_field, loads
from webhook.objects import as_text

#: The versions the CNI specification defines; the plugins refuse to run at any other.
CNI_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
#: The newest version that the libcni Multus is built with implements (cni v1.3.0, version.Current()):
#: it skips newer entries of a list's cniVersions.
LIBCNI_NEWEST = (1, 1, 0)
# One part of a version as strconv.Atoi reads it: a sign, then decimal digits (a long run of digits is
# out of int64's range, and never reaches int()'s digit limit).
_VERSION_PART = re.compile(r"[+-]?0*([0-9]{1,19})")


_T = TypeVar("_T")


def _atoi(text: str) -> int | None:
    match = _VERSION_PART.fullmatch(text)
    if match is None:
        return None
    number = int(text)
    return number if fits_int64(number) else None


def names_a_path(binary: str) -> bool:
    """Whether a plugin or IPAM type holds a path separator: libcni looks the type up as a file name in
    the CNI bin directories, and refuses one with a separator ("invalid plugin name")."""
    return "/" in binary or "\\" in binary


def version_number(text: str) -> tuple[int, int, int] | None:
    """The version libcni reads in ``text`` (pkg/version ParseVersion), None when it refuses it: "" is
    0.1.0; up to three dot-separated integers, the missing ones 0 ("1" is 1.0.0)."""
    if text == "":
        return (0, 1, 0)
    parts = text.split(".")
    numbers = [number for part in parts if (number := _atoi(part)) is not None]
    if len(parts) > 3 or len(numbers) < len(parts):
        return None
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def list_version(raw: Mapping[str, Any], base: str) -> tuple[str, str] | None:
    """(version, JSON path of the field it comes from) that libcni gives every plugin of a list: with
    ``cniVersions``, the highest of them and ``cniVersion`` that libcni implements, else ``cniVersion``
    as written ("" when the list names none, which the plugins read as 0.1.0). None when libcni refuses
    these fields (null, a non-string, a version it cannot read): nad-config-cni-version says why."""
    version = raw.get("cniVersion", "")
    if not isinstance(version, str):
        return None
    chosen = (version, f"{base}.cniVersion")
    if "cniVersions" not in raw:
        return chosen
    versions = raw["cniVersions"]
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        return None
    candidates = [(v, f"{base}.cniVersions[{i}]") for i, v in enumerate(versions)]
    if version:
        candidates.append(chosen)
    numbered = [(number, v, path) for v, path in candidates if (number := version_number(v)) is not None]
    if len(numbered) < len(candidates):
        return None
    usable = [(number, v, path) for number, v, path in numbered if number <= LIBCNI_NEWEST]
    if not usable:
        return chosen
    _, best, path = max(usable, key=lambda item: item[0])
    return best, path


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str
    #: True for findings that only deserve a warning (the plugin accepts the config).
    warning: bool = False


#: Plugins that only act on the result of an earlier plugin: first in a list (or alone) they fail.
NEEDS_PREVIOUS_RESULT = frozenset({"tuning", "portmap", "bandwidth", "firewall", "sbr", "vrf"})

#: Plugins that never run an IPAM plugin, whatever their ipam section says (plugins v1.10.0: only the
#: interface plugins of plugins/main other than loopback call ipam.ExecAdd); their config decodes the
#: section's "type" and nothing else of it.
NEVER_RUNS_IPAM = NEEDS_PREVIOUS_RESULT | {"loopback"}

#: The capability args Multus v4.3.0 can hand libcni for a delegate (the fields of its types.RuntimeConfig,
#: newCNIRuntimeConf): the container runtime's portMappings and bandwidth, a selection's requests, the
#: device plugin's device. Never ipRanges, nor any other.
MULTUS_CAPABILITY_ARGS = frozenset({"portMappings", "bandwidth", "ips", "mac", "infinibandGUID", "deviceID",
                                    "CNIDeviceInfoFile"})

#: The members of runtimeConfig the plugins decode into a Go string, which a JSON null leaves as it was
#: (folded); the others the rules read (ips, ipRanges) are slices, which a null sets to nil.
_NULL_KEPT = frozenset({fold("mac"), fold("deviceID")})
#: The key runtimeConfig as every spelling of it folds.
_RUNTIME_CONFIG = fold("runtimeConfig")


@dataclass(frozen=True, slots=True)
class PluginConf:
    """One plugin of the configuration (the whole config when it is not a list)."""

    path: str
    conf: Mapping[str, Any]
    #: Position in ``plugins`` (None for a single config).
    index: int | None
    # field_spellings and field_index of the plugin, and go_field of "ipam" and of its "type": the rules
    # ask for fields about twenty times per NAD, and each go_field folds every key.
    _spellings: dict[str, list[tuple[str, Any]]] = field(init=False, repr=False, compare=False)
    _fields: dict[str, tuple[str, Any]] = field(init=False, repr=False, compare=False)
    _ipam: tuple[str, Any] | None = field(init=False, repr=False, compare=False)
    _ipam_type: tuple[str, Any] | None = field(init=False, repr=False, compare=False)
    _derived: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_derived", {})
        spellings = field_spellings(self.conf)
        object.__setattr__(self, "_spellings", spellings)
        object.__setattr__(self, "_fields", {name: keys[-1] for name, keys in spellings.items()})
        found = self._fields.get("ipam")
        object.__setattr__(self, "_ipam", found)
        ipam = found[1] if found is not None and isinstance(found[1], Mapping) else None
        object.__setattr__(self, "_ipam_type", go_field(ipam, "type") if ipam is not None else None)

    @property
    def type(self) -> str | None:
        # libcni reads the type into a struct field, so any spelling of the key names the binary.
        found = self._fields.get("type")
        return found[1] if found is not None and isinstance(found[1], str) else None

    @property
    def type_path(self) -> str:
        found = self._fields.get("type")
        return f"{self.path}.{found[0] if found else 'type'}"

    @property
    def ipam(self) -> Mapping[str, Any] | None:
        found = self._ipam
        return found[1] if found is not None and isinstance(found[1], Mapping) else None

    @property
    def ipam_path(self) -> str:
        found = self._ipam
        return f"{self.path}.{found[0] if found else 'ipam'}"

    @property
    def ipam_type_path(self) -> str:
        found = self._ipam_type
        return f"{self.ipam_path}.{found[0] if found else 'type'}"

    @property
    def written_ipam_type(self) -> str | None:
        """The IPAM type the ipam section names, whether or not the plugin runs it (see ipam_type)."""
        found = self._ipam_type
        return as_text(found[1]) if found is not None else None

    @property
    def ipam_type(self) -> str | None:
        """The IPAM plugin the plugin runs; None when there is none (an empty type runs nothing), and for
        a plugin that never runs IPAM (NEVER_RUNS_IPAM), whose ipam section nothing reads: every judgement
        of an IPAM, its binary, its ranges and what it is passed, goes by this."""
        return None if self.type in NEVER_RUNS_IPAM else self.written_ipam_type

    def has_capability(self, name: str) -> bool:
        """Whether the plugin declares a runtime capability (ips, mac, portMappings, bandwidth...): Multus
        passes the matching runtimeConfig only to plugins that do."""
        caps = self.field("capabilities")
        return caps is not None and isinstance(caps[1], Mapping) and caps[1].get(name) is True

    def keeps_runtime_config(self, filled: Collection[str]) -> bool:
        """Whether the plugin's own literal runtimeConfig (under the key "runtimeConfig") reaches it, given
        the capability args Multus fills for a pod (``filled``, see pod_cluster.multus_fills): libcni v1.3.0
        injectRuntimeConfig replaces it only when a capability the plugin declares gets a value."""
        return not any(self.has_capability(name) for name in filled)

    def runtime_config_member(self, name: str, *, injected: bool, filled: bool | None = None
                              ) -> tuple[str, Any] | None:
        """(JSON path, value) of the member ``name`` of the NAD's literal runtimeConfig that the plugin ends
        with; None when none reaches it. Every plugin decodes runtimeConfig into a struct, where Go's
        encoding/json leaves a string member (mac, deviceID) as it is on a null but sets a list member (ips,
        ipRanges) to nil: a null list member clears what a spelling decoded before it (or an injected
        runtimeConfig) set. ``injected``: libcni injects a runtimeConfig for the pod, replacing the one
        under the key "runtimeConfig"; ``filled``: the injected one sets ``name`` (by default, when
        the plugin declares it as a capability Multus may fill). libcni re-marshals every config with its
        keys sorted (buildOneConfig's InjectConf), and Go's encoding/json decodes each spelling of the key
        into the same struct in that order, member by member: an injected member replaces those of the
        spellings sorting before "runtimeConfig" ("RuntimeConfig") and not those after ("runtimeconfig")
        (plugins v1.10.0, run through libcni in test_nad_real_plugins.py)."""
        spelled = self._spellings.get(_RUNTIME_CONFIG)
        if not spelled:
            return None  # most NADs: no literal runtimeConfig at all, and the rules ask on every review
        if filled is None:
            filled = injected and any(fold(cap) == fold(name) and self.has_capability(cap)
                                      for cap in MULTUS_CAPABILITY_ARGS)
        found: tuple[str, Any] | None = None
        for key, value in sorted(spelled):
            if not isinstance(value, Mapping) or (injected and key == "runtimeConfig") \
                    or (filled and key < "runtimeConfig"):
                continue
            members = sorted((k, v) for k, v in value.items()
                             if fold(k) == fold(name) and (v is not None or fold(name) not in _NULL_KEPT))
            if members:
                member, member_value = members[-1]
                found = None if member_value is None else (f"{self.path}.{key}.{member}", member_value)
        return found

    def runtime_config_not_objects(self, *, injected: bool) -> list[tuple[str, Any]]:
        """(JSON path, value) of each literal runtimeConfig that is no object and reaches the plugin (see
        runtime_config_member), which fails its decode."""
        return [(f"{self.path}.{key}", value) for key, value in self._spellings.get(_RUNTIME_CONFIG, ())
                if value is not None and not isinstance(value, Mapping) and not (injected and key == "runtimeConfig")]

    def runtime_config_condition(self, *, replaced: bool = False) -> str | None:
        """When a capability Multus may fill for one pod and not for another replaces the NAD's literal
        runtimeConfig or members of it (it declares one, see MULTUS_CAPABILITY_ARGS): the condition of the
        literal reaching the plugin, for a message, or with ``replaced`` the opposite one; None when it
        declares none."""
        declared = sorted(name for name in MULTUS_CAPABILITY_ARGS if self.has_capability(name))
        if not declared:
            return None
        which = "one" if replaced else "none"
        return (f"{which} of the capabilities {self.path} declares ({', '.join(declared)}) gets a value for the pod, "
                f"which {'replaces' if replaced else 'would replace'} the NAD's literal runtimeConfig")

    def member_condition(self, name: str, *, replaced: bool = False) -> str | None:
        """runtime_config_condition for the member ``name`` of the literal runtimeConfig: None when the same
        one reaches the plugin whether or not a runtimeConfig is injected (see runtime_config_member)."""
        if self.runtime_config_member(name, injected=True) == self.runtime_config_member(name, injected=False):
            return None
        return self.runtime_config_condition(replaced=replaced)

    def judged_both_ways(self, judge: Callable[[bool], Iterable[Problem]]) -> Iterator[tuple[Problem, str | None]]:
        """``judge(runtime_config)`` with the plugin's literal runtimeConfig as written, and with a
        runtimeConfig injected for the declared capabilities in its place (False: what of the literal one
        is left then, see runtime_config_member), for a plugin it reaches for some pods only (see
        runtime_config_condition): each problem with the condition under which alone it arises (a warning
        then), or None for one found both ways (by field), as it is found with the literal runtimeConfig."""
        with_literal, without = list(judge(True)), list(judge(False))
        fields = {p.field for p in with_literal}, {p.field for p in without}
        for problems, others, replaced in ((with_literal, fields[1], False), (without, fields[0], True)):
            for problem in problems:
                if problem.field not in others:
                    yield replace(problem, warning=True), self.runtime_config_condition(replaced=replaced)
                elif not replaced:
                    yield problem, None

    def runtime_config_problems(self, judge: Callable[[bool], Iterable[Problem]]) -> list[Problem]:
        """What ``judge(runtime_config)`` finds in a NAD: with the literal runtimeConfig when it reaches the
        plugin for every pod; else both ways (judged_both_ways), one found one way only a warning that
        says when."""
        # Without a literal runtimeConfig both ways judge the same config: once is enough.
        if _RUNTIME_CONFIG not in self._spellings or self.runtime_config_condition() is None:
            return list(judge(True))
        return [replace(problem, message=f"{problem.message} (only when {when})") if when else problem
                for problem, when in self.judged_both_ways(judge)]

    def derived(self, key: str, compute: Callable[[], _T]) -> _T:
        """``compute()``, computed once for this plugin and kept under ``key``: several rules read the
        same derived value (host-local's ranges), and a parsed config is shared by every review of the
        same NAD text. The value is shared too, never to be modified."""
        if key not in self._derived:
            self._derived[key] = compute()
        return cast(_T, self._derived[key])

    def field(self, name: str) -> tuple[str, Any] | None:
        """(JSON path, value) of the field the plugin reads as ``name``; None when absent or null."""
        found = self._fields.get(fold(name))
        if found is None or found[1] is None:
            return None
        return f"{self.path}.{found[0]}", found[1]

    def spellings(self, name: str) -> list[tuple[str, Any]]:
        """(JSON path, value) of every key the plugin decodes into its field ``name``, null ones too: a
        value of the wrong type under any of them fails the decode (see gojson)."""
        return [(f"{self.path}.{key}", value) for key, value in self._spellings.get(fold(name), ())]


@dataclass(frozen=True, slots=True)
class NetConf:
    raw: Mapping[str, Any]
    is_list: bool
    plugins: tuple[PluginConf, ...]

    @property
    def name(self) -> str | None:
        value = self.raw.get("name")
        return value if isinstance(value, str) else None

    def plugin_cni_version(self, plugin: PluginConf, path: str) -> tuple[str, str] | None:
        """The cniVersion ``plugin`` is run with ("" when none, which reads as 0.1.0), and the JSON path
        of the field that decides it (``path`` is the config's); None when libcni refuses the list's
        version fields (nad-config-cni-version says why). A single config runs at its own cniVersion
        (libcni reads cniVersions only in a list); every plugin of a list at the list's version (see
        ``list_version``)."""
        if not self.is_list:
            found = plugin.field("cniVersion")
            if found is not None and isinstance(found[1], str):
                return found[1], found[0]
            return "", f"{path}.cniVersion"
        return list_version(self.raw, path)

    def binary_fields(self) -> Iterator[tuple[str, str]]:
        """(binary, JSON path of the field naming it) for every CNI binary a node must have to run this
        config: each plugin type and IPAM type, at its first mention."""
        seen: set[str] = set()
        for plugin in self.plugins:
            wanted: list[tuple[str | None, str]] = [(plugin.type, plugin.type_path)]
            if plugin.ipam is not None:
                wanted.append((plugin.ipam_type, plugin.ipam_type_path))
            for binary, path in wanted:
                # A type with a path separator is refused by nad-config-structure; no file is named so.
                if binary and not names_a_path(binary) and binary not in seen:
                    seen.add(binary)
                    yield binary, path

    @property
    def binaries(self) -> frozenset[str]:
        return frozenset(binary for binary, _ in self.binary_fields())


@dataclass(frozen=True, slots=True)
class ParsedConfig:
    #: None when the config is absent, empty, or not a JSON object.
    netconf: NetConf | None
    problems: tuple[Problem, ...] = field(default=())
    #: True when spec.config is missing or empty: Multus then reads the config from the node.
    empty: bool = False


def _describe(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


#: NAD configs up to this size are parsed once and remembered: a pod's validation and mutation look at
#: the same NADs, request after request.
_CACHED_CONFIG_SIZE = 16 * 1024


def parse_nad_config(config: Any, path: str, *, remember: bool = True) -> ParsedConfig:
    """``config`` (a NAD's spec.config) parsed; the result is shared, never to be modified. Without
    ``remember`` the parse is not kept for the next call (a config read once, as the cluster cache
    reads each stored NAD, would only push out those that reviews come back to)."""
    if remember and isinstance(config, str) and len(config) <= _CACHED_CONFIG_SIZE:
        return _parse_cached(config, path)
    return _parse_nad_config(config, path)


@functools.lru_cache(maxsize=2048)
def _parse_cached(config: str, path: str) -> ParsedConfig:
    return _parse_nad_config(config, path)


def _parse_nad_config(config: Any, path: str) -> ParsedConfig:
    # Only "" makes Multus look for a config file; any other text goes to json.Unmarshal, blanks too.
    if config is None or config == "":
        return ParsedConfig(None, empty=True)
    if not isinstance(config, str):
        return ParsedConfig(None, (Problem(path, f"must be a string of CNI JSON, not {_describe(config)}"),))
    try:
        # Every plugin reads its config after libcni's round trip through a map: 1500.0 arrives as 1500,
        # and of "Mtu" and "mtu" the one that sorts last fills the field. Multus and libcni read the other
        # fields (name, versions, types) as strings, lists and objects, where a number is refused however
        # it is written.
        raw = loads(config, via_libcni=True)
    except GoJSONError as exc:
        return ParsedConfig(None, (Problem(path, f"is not valid JSON: {exc}"),))
    if not isinstance(raw, dict):
        return ParsedConfig(None, (Problem(path, f"must be a JSON object, not {_describe(raw)}"),))

    problems: list[Problem] = []
    plugins: list[PluginConf] = []
    # Multus decodes the config into a struct first (types.NetConf, so any spelling of "type") and runs
    # it as a list only when that gives no type; a typed config runs alone, its plugins never read.
    found = go_field(raw, "type")
    if "plugins" in raw and found is not None and found[1] is not None and found[1] != "":
        # A type that is no string fails Multus's decode: nad-config-structure refuses it.
        if isinstance(found[1], str):
            problems.append(
                Problem(
                    f"{path}.plugins",
                    f"is ignored: the config's {found[0]} is {found[1]!r}, so Multus runs it as a single "
                    f"{found[1]} plugin and never reads plugins; drop plugins, or drop the top-level type "
                    "and plugin fields to run the list",
                    warning=True,
                )
            )
    elif "plugins" in raw:
        entries = raw["plugins"]
        if not isinstance(entries, list):
            problems.append(
                Problem(f"{path}.plugins", f"must be a list of plugin objects, not {_describe(entries)}")
            )
        elif not entries:
            problems.append(
                Problem(f"{path}.plugins", "is empty: a configuration list needs at least one plugin")
            )
        else:
            for i, entry in enumerate(entries):
                ppath = f"{path}.plugins[{i}]"
                if isinstance(entry, dict):
                    plugins.append(PluginConf(ppath, entry, i))
                else:
                    problems.append(Problem(ppath, f"must be a plugin object, not {_describe(entry)}"))
        return ParsedConfig(NetConf(raw, True, tuple(plugins)), tuple(problems))
    return ParsedConfig(NetConf(raw, False, (PluginConf(path, raw, None),)), tuple(problems))
