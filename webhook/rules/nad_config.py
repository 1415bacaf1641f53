"""Rules on the shape of a NAD's CNI configuration and on the NAD's own name."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from webhook.cni.config import (
    CNI_VERSIONS,
    LIBCNI_NEWEST,
    NetConf,
    PluginConf,
    list_version,
    names_a_path,
    version_number,
)
from webhook.cni.fields import Kind, describe, fits
from webhook.cni.gojson import field_spellings, fold
from webhook.cni.plugins import cni_version_problems, common_field_problems
from webhook.objects import is_object_name
from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import SPEC_CONFIG, field, rule
from webhook.rules.subject import Subject

NAD = {"NetworkAttachmentDefinition"}

# libcni's rule for network names (pkg/utils): it refuses every ADD on a name outside it.
_CNI_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")
# A list's own keys are read twice before any plugin runs. Multus decodes the list into a struct
# (types.NetConfList): every spelling of these keys must have the field's type, null is ignored.
_MULTUS_LIST_FIELDS = {"cniVersion": Kind.STRING, "name": Kind.STRING, "disableCheck": Kind.BOOL,
                       "disableGC": Kind.BOOL}
# Then libcni reads the exact keys from a map and asserts their type: null is refused for each of these
# (and for name, which _name_field judges in single configs too).
_LIBCNI_LIST_KEYS = ("cniVersion", "cniVersions", "disableCheck", "disableGC", "loadOnlyInlinedPlugins")


def _versions_text() -> str:
    return ", ".join(CNI_VERSIONS)


@rule("nad-config-structure", kinds=NAD, severity=Severity.DENY, title="spec.config is a CNI config object",
      judges=[SPEC_CONFIG])
def config_structure(subject: Subject) -> Iterator[Violation]:
    """A config that is not a JSON object, whose ``plugins`` is not a non-empty list of objects, or
    whose plugins lack a string ``type`` is refused by libcni when the first pod is created: the pod
    then hangs in ContainerCreating. Refusing it at apply time names the field instead. A config with
    both a ``type`` and ``plugins`` runs as that one plugin (Multus reads a list only when the type is
    empty): a warning says that ``plugins`` is ignored."""
    parsed = subject.nad_config
    for problem in parsed.problems:
        yield Violation(problem.field, f"{problem.field} {problem.message}", Severity.WARN if problem.warning else None)
    netconf = parsed.netconf
    if netconf is None:
        return
    if netconf.is_list:
        yield from _list_fields(netconf.raw, "spec.config")
    else:
        yield from _name_field(netconf.raw, "spec.config")
    for plugin in netconf.plugins:
        yield from _plugin_type(plugin)
        for problem in common_field_problems(plugin):
            yield Violation(problem.field, problem.message)


def _plugin_type(plugin: PluginConf) -> Iterator[Violation]:
    # libcni and Multus read the type into a struct field: any spelling of the key ("Type") counts.
    given = [(path, value) for path, value in plugin.spellings("type") if value is not None]
    if not given:
        path = plugin.type_path
        yield Violation(
            path,
            f"{path} is missing: set it to the CNI plugin binary to run (e.g. macvlan, bridge)",
        )
        return
    wrong = next((path for path, value in given if not isinstance(value, str)), None)
    if wrong is not None:
        yield Violation(wrong, f"{wrong} must be a non-empty string naming a CNI plugin")
        return
    if len({value for _, value in given}) > 1:
        # A list's plugins reach libcni re-encoded with sorted keys, a single config often as written.
        paths = " and ".join(path for path, _ in given)
        yield Violation(
            given[0][0],
            f"{paths} name different plugins: Go matches keys case-insensitively, so each sets the type, "
            'and which one runs depends on how Multus passes the config on; keep only "type"',
        )
        return
    path, value = given[-1]
    if not value:
        yield Violation(path, f"{path} must be a non-empty string naming a CNI plugin")
    elif names_a_path(value):
        yield Violation(
            path,
            f"{path} is {value!r}: a plugin type is a binary name looked up in the CNI bin directory, "
            "never a path; write just the name (e.g. macvlan)",
        )


def _name_field(raw: Mapping[str, object], base: str) -> Iterator[Violation]:
    name = raw.get("name")
    path = f"{base}.name"
    if name is None and "name" in raw:
        # Multus puts the NAD's name in for an absent or empty one only: libcni then reads no name.
        yield Violation(
            path,
            f"{path} is null: Multus fills in only a missing or empty name, so libcni gets none and refuses "
            "the config on every pod; remove the key to use the NAD's name, or write a name",
        )
        return
    if name is None or name == "":
        return  # Multus fills a missing name from the NAD's metadata.name.
    if not isinstance(name, str):
        yield Violation(path, f"{path} is {describe(name)}: the network name must be a string (or left out)")
    elif not _CNI_NAME.fullmatch(name):
        yield Violation(
            path,
            f"{path} is {name!r}: libcni only accepts letters, digits, '_', '.' and '-' (starting with a "
            "letter or digit); rename it, or leave it out to use the NAD's name",
        )


def _list_fields(raw: Mapping[str, object], base: str) -> Iterator[Violation]:
    yield from _name_field(raw, base)
    for key in _LIBCNI_LIST_KEYS:
        if key in raw and raw[key] is None:
            path = f"{base}.{key}"
            yield Violation(
                path, f"{path} is null: libcni refuses the list on every pod; remove the key or give it a value"
            )
    spellings = field_spellings(raw)
    for name, kind in _MULTUS_LIST_FIELDS.items():
        for key, value in spellings.get(fold(name), ()):
            # The exact name and cniVersion keys are judged with more to say by _name_field and
            # nad-config-cni-version.
            if fits(value, kind) or (key == name and name in ("name", "cniVersion")):
                continue
            path = f"{base}.{key}"
            quoted = " (without quotes)" if kind is Kind.BOOL and isinstance(value, str) else ""
            yield Violation(
                path,
                f"{path} is {describe(value)}, but Multus reads the list's {name} as {kind.value} and fails "
                f"every pod on anything else; write {kind.value}{quoted}",
            )
    # Not in Multus's struct: only libcni reads it, as a boolean or the string "true" or "false".
    inlined = raw.get("loadOnlyInlinedPlugins")
    if not (inlined is None or isinstance(inlined, bool)
            or (isinstance(inlined, str) and inlined.lower() in ("true", "false"))):
        path = f"{base}.loadOnlyInlinedPlugins"
        yield Violation(path, f"{path} is {describe(inlined)}: write true or false")


@rule("nad-config-empty", kinds=NAD, severity=Severity.WARN, title="spec.config is present",
      judges=[SPEC_CONFIG])
def config_empty(subject: Subject) -> Iterator[Violation]:
    """A NAD without spec.config makes Multus read the configuration from each node's disk: the first
    .conf, .json or .conflist file of its confDir (/etc/cni/multus/net.d by default) whose JSON "name"
    is the NAD's name, whatever the file is called. Nothing can check that file, and a node without it
    fails every pod that selects the network, so the NAD is admitted with a warning."""
    if subject.nad_config.empty:
        yield Violation(
            "spec.config",
            "spec.config is empty: on every node Multus will read the CNI config from the first .conf, .json "
            "or .conflist file in its confDir (/etc/cni/multus/net.d by default) whose \"name\" is this NAD's "
            "name, whatever the file is called, which nothing here can check; put the CNI JSON in spec.config "
            "unless you ship such a file",
        )


@rule("nad-config-cni-version", kinds=NAD, severity=Severity.DENY, title="cniVersion is a CNI spec version",
      judges=[SPEC_CONFIG])
def config_cni_version(subject: Subject) -> Iterator[Violation]:
    """An unknown cniVersion makes libcni or the plugin refuse the config ("incompatible CNI
    versions") on every pod. Catches typos such as "1.0" or "0.3.2" before any pod depends on it, and
    versions older than a plugin of the config takes (bandwidth 0.3.0, vrf 0.3.1, firewall 0.4.0; no
    cniVersion reads as 0.1.0). A list's cniVersions is read as libcni reads it: versions newer than
    libcni implements are skipped, and the list runs at the highest of the others (and of cniVersion)."""
    netconf = subject.nad_config.netconf
    if netconf is None:
        return
    yield from _version_fields(netconf)
    for problem in cni_version_problems(netconf, "spec.config"):
        yield Violation(problem.field, problem.message)


def _version_fields(netconf: NetConf) -> Iterator[Violation]:
    """cniVersion and cniVersions themselves, as libcni and the plugins read them."""
    version = netconf.raw.get("cniVersion")
    versions = netconf.raw.get("cniVersions")
    if versions is None or not netconf.is_list:
        yield from _version(version, "spec.config.cniVersion")
        if versions is not None:
            runs_at = (f"its cniVersion {version}; drop cniVersions" if version and isinstance(version, str)
                       else "0.1.0, as it has no cniVersion; set cniVersion instead")
            yield Violation(
                "spec.config.cniVersions",
                "spec.config.cniVersions is ignored: libcni reads cniVersions only in a list of plugins, and "
                f"this single config runs at {runs_at}",
                Severity.WARN,
            )
        return
    if not isinstance(versions, list):
        yield Violation(
            "spec.config.cniVersions",
            f"spec.config.cniVersions is {describe(versions)}: write a list of versions, e.g. "
            '["0.3.1", "1.0.0"]',
        )
        return
    entries = [(value, f"spec.config.cniVersions[{i}]") for i, value in enumerate(versions)]
    if version is not None and version != "":
        entries.append((version, "spec.config.cniVersion"))
    unreadable = [violation for value, path in entries for violation in _unreadable_version(value, path)]
    if unreadable:
        yield from unreadable
        return
    chosen = list_version(netconf.raw, "spec.config")
    if chosen is None:
        return  # a null cniVersion, which libcni refuses: nad-config-structure says so
    picked, picked_path = chosen
    if not picked:
        yield Violation(
            "spec.config.cniVersions",
            "spec.config.cniVersions names no version that libcni implements (the newest is "
            f"{'.'.join(map(str, LIBCNI_NEWEST))}), and there is no cniVersion: libcni skips them all and runs "
            'the list without a version, as 0.1.0; add one of the versions you mean, e.g. "1.0.0"',
            Severity.WARN,
        )
        return
    if picked not in CNI_VERSIONS:
        yield Violation(
            picked_path,
            f"{picked_path} is {picked!r}, the version libcni picks for the list, but it is not a CNI spec "
            f"version, so no plugin runs at it: use one of {_versions_text()}",
        )
        return
    picked_number = version_number(picked)
    for value, path in entries:
        number = version_number(value)
        if path == picked_path or value in CNI_VERSIONS or value == "" or number is None:
            continue
        if number == picked_number:
            yield Violation(
                path,
                f"{path} is {value!r}, which libcni reads as the same version as {picked!r} and may pick instead; "
                f"no plugin runs at {value!r}: write it as {picked!r} or drop it",
            )
        elif number <= LIBCNI_NEWEST:
            yield Violation(
                path,
                f"{path} is {value!r}, not a CNI spec version: libcni passes over it only because it picks "
                f"{picked!r}; fix it (one of {_versions_text()}) or drop it",
                Severity.WARN,
            )


def _unreadable_version(value: object, path: str) -> Iterator[Violation]:
    """What libcni refuses in a list's versions before it picks one: a non-string, or a version it cannot
    read (it refuses the whole list then)."""
    if not isinstance(value, str):
        yield Violation(path, f'{path} is {describe(value)}: write the version as a string, e.g. "1.0.0"')
    elif version_number(value) is None:
        yield Violation(
            path,
            f"{path} is {value!r}, which libcni cannot read as a version, so it refuses the list on every pod: "
            f"use one of {_versions_text()}",
        )


def _version(value: object, path: str) -> Iterator[Violation]:
    if value is None or value == "":
        return
    if not isinstance(value, str):
        yield Violation(path, f'{path} is {describe(value)}: write the version as a string, e.g. "1.0.0"')
    elif value not in CNI_VERSIONS:
        yield Violation(
            path,
            f"{path} is {value!r}, not a CNI spec version: use one of {_versions_text()} (1.0.0 is typical)",
        )


@rule("nad-name", kinds=NAD, severity=Severity.DENY, title="the NAD's name is a valid object name",
      judges=[field("metadata", "name")])
def nad_name(subject: Subject) -> Iterator[Violation]:
    """The apiserver refuses a NAD whose name is not a DNS-1123 subdomain, but a file checked by the
    CLI never meets an apiserver: this says so first. A name with dots is valid, yet the short
    form of the networks annotation (namespace/name@interface) cannot reference it: only the JSON
    form can, which users rarely expect, so that is a warning."""
    name = subject.metadata.get("name")
    if name is None or name == "":
        if not subject.metadata.get("generateName") and subject.operation != "DELETE":
            yield Violation(
                "metadata.name", "metadata.name is missing: give the NetworkAttachmentDefinition a name"
            )
        return
    if not isinstance(name, str):
        yield Violation("metadata.name", f"metadata.name is {describe(name)}: a name is a string")
        return
    if not is_object_name(name):
        yield Violation(
            "metadata.name",
            f"metadata.name {name!r} is not a valid Kubernetes object name (DNS-1123 subdomain: lowercase "
            "letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 "
            "characters); rename it",
        )
    elif "." in name:
        yield Violation(
            "metadata.name",
            f"metadata.name {name!r} contains dots: the short form of k8s.v1.cni.cncf.io/networks "
            '(ns/name@if) cannot select it, only the JSON form ([{"name": "..."}]) can; consider a name '
            "without dots",
            Severity.WARN,
        )
