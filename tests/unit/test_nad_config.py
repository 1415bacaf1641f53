"""nad-config-structure, nad-config-empty, nad-config-cni-version, nad-name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.cni.config import version_number
from webhook.rules import Finding, Policy, Severity, Subject, evaluate

NAD = "NetworkAttachmentDefinition"
MACVLAN = {"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": {"type": "static"}}


def nad(config: Any, *, name: Any = "net1", operation: str = "CREATE", **metadata: Any) -> Subject:
    spec = {} if config is None else {"config": config if isinstance(config, str) else json.dumps(config)}
    meta = {"name": name, "namespace": "default", **metadata}
    obj = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": NAD, "metadata": meta, "spec": spec}
    return Subject(obj, NAD, operation=operation, old_object=obj if operation == "UPDATE" else None)


def findings(subject: Subject, rule: str) -> list[Finding]:
    return [f for f in evaluate(subject, Policy()) if f.rule == rule]


def only(subject: Subject, rule: str) -> Finding:
    found = findings(subject, rule)
    assert len(found) == 1, found
    return found[0]


# --- nad-config-structure ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field", "text"),
    [
        ("{not json", "spec.config", "is not valid JSON"),
        ("[1, 2]", "spec.config", "must be a JSON object, not a list"),
        ({"cniVersion": "1.0.0", "plugins": []}, "spec.config.plugins", "at least one plugin"),
        ({"cniVersion": "1.0.0", "plugins": "macvlan"}, "spec.config.plugins", "must be a list"),
        (
            {"cniVersion": "1.0.0", "plugins": [MACVLAN, 7]},
            "spec.config.plugins[1]",
            "must be a plugin object",
        ),
        (
            {"cniVersion": "1.0.0", "master": "eth0"},
            "spec.config.type",
            "is missing: set it to the CNI plugin",
        ),
        ({"cniVersion": "1.0.0", "type": ""}, "spec.config.type", "non-empty string"),
        ({"cniVersion": "1.0.0", "type": "/opt/cni/bin/macvlan"}, "spec.config.type", "never a path"),
        (
            {"cniVersion": "1.0.0", "plugins": [{"type": "..\\evil"}]},
            "spec.config.plugins[0].type",
            "never a path",
        ),
        ({**MACVLAN, "name": "my net"}, "spec.config.name", "libcni only accepts letters"),
        ({**MACVLAN, "name": 5}, "spec.config.name", "must be a string"),
        ({**MACVLAN, "capabilities": {"ips": "yes"}}, "spec.config.capabilities", "libcni reads it as"),
        ({**MACVLAN, "ipam": "static"}, "spec.config.ipam", "an object"),
        ({**MACVLAN, "ipam": {"type": 4}}, "spec.config.ipam.type", "name of an IPAM plugin"),
        # libcni's invoke.FindInPath refuses a type with a separator, the IPAM plugin's as the plugin's.
        ({**MACVLAN, "ipam": {"type": "/x/static"}}, "spec.config.ipam.type", "never a path"),
        (
            {"cniVersion": "1.0.0", "plugins": [{**MACVLAN, "ipam": {"Type": "bin/static"}}]},
            "spec.config.plugins[0].ipam.Type",
            "an IPAM type is a binary name",
        ),
        # libcni's types.DNS: nameservers, search and options are lists of strings.
        (
            {**MACVLAN, "dns": {"nameservers": "8.8.8.8"}},
            "spec.config.dns.nameservers",
            "libcni reads it as a list",
        ),
        ({**MACVLAN, "dns": {"domain": ["a"]}}, "spec.config.dns.domain", "libcni reads it as a string"),
        ({**MACVLAN, "dns": "8.8.8.8"}, "spec.config.dns", "libcni reads it as an object"),
        (
            {"cniVersion": "1.0.0", "disableCheck": "maybe", "plugins": [MACVLAN]},
            "spec.config.disableCheck",
            "write true or false",
        ),
        # Multus decodes a list into types.NetConfList, whose disableCheck and disableGC are bools:
        # the strings libcni would take fail there first, under any spelling of the key.
        (
            {"cniVersion": "1.0.0", "disableCheck": "true", "plugins": [MACVLAN]},
            "spec.config.disableCheck",
            "Multus reads the list's disableCheck as true or false and fails every pod",
        ),
        (
            {"cniVersion": "1.0.0", "DisableGC": "false", "plugins": [MACVLAN]},
            "spec.config.DisableGC",
            "write true or false (without quotes)",
        ),
        (
            {"cniVersion": "1.0.0", "loadOnlyInlinedPlugins": 1, "plugins": [MACVLAN]},
            "spec.config.loadOnlyInlinedPlugins",
            "write true or false",
        ),
        # libcni reads a list's own keys from a map and asserts their types: null is none of them.
        (
            {"cniVersion": "1.0.0", "disableGC": None, "plugins": [MACVLAN]},
            "spec.config.disableGC",
            "is null: libcni refuses the list",
        ),
        ({"cniVersion": None, "plugins": [MACVLAN]}, "spec.config.cniVersion", "is null: libcni refuses"),
        (
            {"cniVersion": "1.0.0", "cniVersions": None, "plugins": [MACVLAN]},
            "spec.config.cniVersions",
            "is null",
        ),
        # Multus fills in an absent or "" name, not a null one.
        (
            {"cniVersion": "1.0.0", "name": None, "plugins": [MACVLAN]},
            "spec.config.name",
            "is null: Multus fills in only a missing or empty name",
        ),
        ({**MACVLAN, "name": None}, "spec.config.name", "remove the key to use the NAD's name"),
        # The type is a struct field to libcni and Multus: every spelling sets it.
        (
            {"cniVersion": "1.0.0", "type": "macvlan", "Type": "bridge"},
            "spec.config.Type",
            "spec.config.Type and spec.config.type name different plugins",
        ),
        ({**MACVLAN, "TYPE": 5}, "spec.config.TYPE", "non-empty string naming a CNI plugin"),
        ({"cniVersion": "1.0.0", "Type": ""}, "spec.config.Type", "non-empty string"),
    ],
)
def test_structure_refuses(config: Any, field: str, text: str) -> None:
    finding = only(nad(config), "nad-config-structure")
    assert finding.severity is Severity.DENY
    assert finding.field == field
    assert finding.message.startswith(field)
    assert text in finding.message


@pytest.mark.parametrize(
    "config",
    [
        MACVLAN,
        {"cniVersion": "1.0.0", "plugins": [MACVLAN, {"type": "tuning"}]},
        # A missing top-level name is filled by Multus from the NAD's name.
        {"cniVersion": "1.0.0", "disableCheck": True, "disableGC": False, "plugins": [MACVLAN]},
        # Only libcni reads loadOnlyInlinedPlugins, and it takes "true" / "false" in any case.
        {"cniVersion": "1.0.0", "loadOnlyInlinedPlugins": "TRUE", "plugins": [MACVLAN]},
        # Multus ignores a null under another spelling, and libcni reads only the exact key.
        {"cniVersion": "1.0.0", "DisableCheck": None, "plugins": [MACVLAN]},
        {"cniVersion": "1.0.0", "name": "", "plugins": [MACVLAN]},
        {"cniVersion": "1.0.0", "Type": "macvlan", "master": "eth0"},
        {"cniVersion": "1.0.0", "plugins": [{"TYPE": "macvlan", "type": "macvlan", "master": "eth0"}]},
        {**MACVLAN, "name": "lan_1.a-b"},
        {"cniVersion": "1.0.0", "type": "some-vendor-plugin", "whatever": [1, 2]},
        {**MACVLAN, "dns": {"nameservers": ["8.8.8.8"], "domain": "example.com", "search": None, "options": []}},
    ],
)
def test_structure_allows(config: Any) -> None:
    assert findings(nad(config), "nad-config-structure") == []


@pytest.mark.parametrize("plugins", ["x", [], [{"type": "tuning"}], [MACVLAN, 7]])
@pytest.mark.parametrize("type_key", ["type", "Type"])
def test_a_config_with_a_type_runs_alone_and_its_plugins_are_ignored(plugins: Any, type_key: str) -> None:
    # Multus (LoadDelegateNetConf) takes the list path only when the decoded type is empty.
    config = {k: v for k, v in MACVLAN.items() if k != "type"} | {type_key: "macvlan", "plugins": plugins}
    subject = nad(config)
    assert not subject.nad_config.netconf.is_list
    assert [p.type for p in subject.nad_config.netconf.plugins] == ["macvlan"]
    warning = only(subject, "nad-config-structure")
    assert (warning.severity, warning.field) == (Severity.WARN, "spec.config.plugins")
    assert warning.message.startswith(
        f"spec.config.plugins is ignored: the config's {type_key} is 'macvlan', so Multus runs it as a single "
        "macvlan plugin and never reads plugins")
    # Judged as the macvlan config it is: the tuning plugin's place in the ignored list is nobody's business.
    assert [f for f in evaluate(subject, Policy()) if f.severity is Severity.DENY] == []


@pytest.mark.parametrize("type_value", [None, ""])
def test_a_config_with_an_empty_type_is_a_list(type_value: Any) -> None:
    subject = nad({"cniVersion": "1.0.0", "name": "l", "type": type_value, "plugins": [MACVLAN]})
    assert subject.nad_config.netconf.is_list
    assert [p.path for p in subject.nad_config.netconf.plugins] == ["spec.config.plugins[0]"]


# --- nad-config-empty --------------------------------------------------------------------------


@pytest.mark.parametrize("config", [None, ""])
def test_empty_config_warns(config: Any) -> None:
    finding = only(nad(config), "nad-config-empty")
    assert finding.severity is Severity.WARN
    assert finding.field == "spec.config"
    # Multus (the NAD client's GetCNIConfigFromFile) matches the config's "name", not the file's.
    assert 'file in its confDir (/etc/cni/multus/net.d by default) whose "name" is this NAD\'s name' in finding.message
    assert findings(nad(config), "nad-config-structure") == []


def test_a_config_of_blanks_is_not_empty_but_broken_json() -> None:
    # Multus looks for a file only when spec.config is exactly ""; blanks go to json.Unmarshal and fail.
    assert findings(nad("  \n"), "nad-config-empty") == []
    assert [f.severity for f in findings(nad("  \n"), "nad-config-structure")] == [Severity.DENY]


def test_present_config_does_not_warn() -> None:
    assert findings(nad(MACVLAN), "nad-config-empty") == []


# --- nad-config-cni-version --------------------------------------------------------------------


PTP = {"type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5/24"}]}}
BANDWIDTH = {"type": "bandwidth", "ingressRate": 1000, "ingressBurst": 1000}


@pytest.mark.parametrize(
    ("config", "field", "text"),
    [
        ({**MACVLAN, "cniVersion": "1.0"}, "spec.config.cniVersion", "'1.0', not a CNI spec version"),
        ({**MACVLAN, "cniVersion": "0.3.2"}, "spec.config.cniVersion", "use one of 0.1.0"),
        ({**MACVLAN, "cniVersion": 1}, "spec.config.cniVersion", "as a string"),
        ({"cniVersions": "1.0.0", "plugins": [MACVLAN]}, "spec.config.cniVersions", "write a list"),
        # libcni refuses a list whose versions it cannot read, before it picks one.
        (
            {"cniVersions": ["1.0.0", "x"], "plugins": [MACVLAN]},
            "spec.config.cniVersions[1]",
            "'x', which libcni cannot read as a version, so it refuses the list",
        ),
        (
            {"cniVersions": ["1.0.0", 1], "plugins": [MACVLAN]},
            "spec.config.cniVersions[1]",
            "is the number 1: write the version as a string",
        ),
        (
            {"cniVersion": "1.0.0.0", "cniVersions": ["1.0.0"], "plugins": [MACVLAN]},
            "spec.config.cniVersion",
            "which libcni cannot read as a version",
        ),
        # The one libcni picks must be a version the plugins run at.
        (
            {"cniVersions": ["1.0", "0.4.0"], "plugins": [MACVLAN]},
            "spec.config.cniVersions[0]",
            "'1.0', the version libcni picks for the list, but it is not a CNI spec version",
        ),
        (
            {"cniVersion": "2.0.0", "cniVersions": ["3.0.0"], "plugins": [MACVLAN]},
            "spec.config.cniVersion",
            "'2.0.0', the version libcni picks for the list",
        ),
        (
            {"cniVersions": ["1.0.0", "01.0.0"], "plugins": [MACVLAN]},
            "spec.config.cniVersions[1]",
            "the same version as '1.0.0' and may pick instead",
        ),
        # bandwidth, vrf and firewall pass version.VersionsStartingFrom to skel: older versions fail.
        (
            {"cniVersion": "0.2.0", "plugins": [PTP, BANDWIDTH]},
            "spec.config.cniVersion",
            "is '0.2.0', but spec.config.plugins[1] is bandwidth, which takes cniVersion 0.3.0 and later only",
        ),
        (
            {"cniVersion": "0.3.0", "plugins": [PTP, {"type": "vrf", "vrfname": "blue"}]},
            "spec.config.cniVersion",
            "takes cniVersion 0.3.1 and later only",
        ),
        (
            {"cniVersion": "0.3.1", "plugins": [PTP, {"type": "firewall"}]},
            "spec.config.cniVersion",
            '"incompatible CNI versions"; set cniVersion to 0.4.0 or later',
        ),
        (
            {"plugins": [PTP, {"type": "firewall"}]},
            "spec.config.cniVersion",
            "is missing, which libcni and the plugins read as 0.1.0",
        ),
        # libcni runs a list at the highest of its cniVersions (and cniVersion) that it implements.
        (
            {"cniVersions": ["0.1.0", "0.2.0"], "plugins": [PTP, BANDWIDTH]},
            "spec.config.cniVersions[1]",
            "is '0.2.0', the highest of the list's versions, which libcni runs every plugin at, but "
            "spec.config.plugins[1] is bandwidth",
        ),
        (
            {"cniVersions": ["0.2.0", "2.0.0"], "plugins": [PTP, BANDWIDTH]},
            "spec.config.cniVersions[0]",
            "is '0.2.0', the highest of the list's versions",
        ),
    ],
)
def test_cni_version_refuses(config: Any, field: str, text: str) -> None:
    finding = only(nad(config), "nad-config-cni-version")
    assert (finding.field, finding.severity) == (field, Severity.DENY)
    assert finding.message.startswith(field)
    assert text in finding.message


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_cni_version_allows_every_spec_version(version: str) -> None:
    config = {"cniVersion": version, "cniVersions": [version], "plugins": [MACVLAN]}
    assert findings(nad(config), "nad-config-cni-version") == []


@pytest.mark.parametrize(
    "config",
    [
        # libcni skips the versions newer than it implements and picks the highest of the others.
        {"cniVersions": ["1.0.0", "2.0.0"], "plugins": [MACVLAN]},
        {"cniVersions": ["9.9.9", "0.4.0", "1.1.0"], "plugins": [MACVLAN]},
        {"cniVersion": "2.0.0", "cniVersions": ["1.0.0"], "plugins": [MACVLAN]},
        {"cniVersion": "1.0.0", "cniVersions": ["1.1.1", "99"], "plugins": [MACVLAN]},
    ],
)
def test_cni_versions_newer_than_libcni_are_skipped(config: dict[str, Any]) -> None:
    assert findings(nad(config), "nad-config-cni-version") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # As libcni's ParseVersion reads them (strconv.Atoi per part, at most three parts).
        ("", (0, 1, 0)),
        ("1", (1, 0, 0)),
        ("1.0", (1, 0, 0)),
        ("01.1.0", (1, 1, 0)),
        ("+1.-2.3", (1, -2, 3)),
        ("1.0.0.0", None),
        ("1.", None),
        ("1.1.0-rc1", None),
        (" 1", None),
        ("9223372036854775808", None),
        ("1" * 5000, None),
    ],
)
def test_versions_as_libcni_reads_them(text: str, expected: tuple[int, int, int] | None) -> None:
    assert version_number(text) == expected


@pytest.mark.parametrize(
    ("config", "field", "text"),
    [
        (
            {"cniVersions": ["1.0.0", "0.3.2"], "plugins": [MACVLAN]},
            "spec.config.cniVersions[1]",
            "'0.3.2', not a CNI spec version: libcni passes over it only because it picks '1.0.0'",
        ),
        (
            {"cniVersions": ["2.0.0"], "plugins": [MACVLAN]},
            "spec.config.cniVersions",
            "libcni skips them all and runs the list without a version, as 0.1.0",
        ),
        (
            {**MACVLAN, "cniVersions": ["9.9.9"]},
            "spec.config.cniVersions",
            "libcni reads cniVersions only in a list of plugins, and this single config runs at its cniVersion "
            "1.0.0; drop cniVersions",
        ),
    ],
)
def test_cni_version_warns(config: dict[str, Any], field: str, text: str) -> None:
    finding = only(nad(config), "nad-config-cni-version")
    assert (finding.field, finding.severity) == (field, Severity.WARN)
    assert finding.message.startswith(field)
    assert text in finding.message


def test_cni_version_may_be_left_out() -> None:
    assert findings(nad({"type": "macvlan", "master": "eth0"}), "nad-config-cni-version") == []


@pytest.mark.parametrize(
    "config",
    [
        {"cniVersion": "0.3.0", "plugins": [PTP, BANDWIDTH]},
        {"cniVersion": "0.3.1", "plugins": [PTP, {"type": "vrf", "vrfname": "blue"}]},
        {"cniVersion": "0.4.0", "plugins": [PTP, {"type": "firewall"}]},
        {"cniVersion": "0.2.0", "cniVersions": ["1.0.0"], "plugins": [PTP, {"type": "firewall"}]},
        {"cniVersion": "0.1.0", "plugins": [PTP, {"type": "tuning"}, {"type": "portmap"}, {"type": "sbr"}]},
    ],
)
def test_cni_version_allows_what_each_plugin_takes(config: Any) -> None:
    assert findings(nad(config), "nad-config-cni-version") == []


def test_a_null_list_version_runs_no_plugin_and_is_said_once() -> None:
    # libcni refuses the list before any plugin's minimum matters: nad-config-structure says why.
    subject = nad({"cniVersion": None, "plugins": [PTP, BANDWIDTH]})
    assert findings(subject, "nad-config-cni-version") == []
    assert only(subject, "nad-config-structure").field == "spec.config.cniVersion"


# --- nad-name ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Net1", "net_1", "-net", "net-", "a" * 254, "net..a", "ünï"])
def test_name_refuses_invalid_object_names(name: str) -> None:
    finding = only(nad(MACVLAN, name=name), "nad-name")
    assert (finding.field, finding.severity) == ("metadata.name", Severity.DENY)
    assert "is not a valid Kubernetes object name (DNS-1123 subdomain" in finding.message
    assert "rename it" in finding.message


def test_name_missing_is_refused_but_generate_name_is_fine() -> None:
    finding = only(nad(MACVLAN, name=None), "nad-name")
    assert finding.message == "metadata.name is missing: give the NetworkAttachmentDefinition a name"
    assert findings(nad(MACVLAN, name=None, generateName="net-"), "nad-name") == []


def test_name_with_dots_warns_that_only_json_form_selects_it() -> None:
    finding = only(nad(MACVLAN, name="lan.a"), "nad-name")
    assert finding.severity is Severity.WARN
    assert "short form of k8s.v1.cni.cncf.io/networks" in finding.message
    assert "only the JSON form" in finding.message


@pytest.mark.parametrize("name", ["net1", "a", "a-b-c", "1net", "a" * 253])
def test_name_allows_valid_names(name: str) -> None:
    assert findings(nad(MACVLAN, name=name), "nad-name") == []


def test_an_update_of_the_config_runs_the_same_rules_on_the_new_object() -> None:
    bad = {**MACVLAN, "cniVersion": "2.0.0"}
    created = [(f.rule, f.field, f.message) for f in evaluate(nad(bad), Policy())]
    update = Subject(nad(bad).obj, NAD, operation="UPDATE", old_object=nad(MACVLAN).obj)
    updated = [(f.rule, f.field, f.message) for f in evaluate(update, Policy())]
    assert created == updated
    assert ("nad-config-cni-version", "spec.config.cniVersion") in [(r, f) for r, f, _ in updated]


@pytest.mark.parametrize("conf", [
    {"mtu": 1400},
    {"MTU": 1400},
    {"mtu": 1400, "MTU": "x"},  # Go's encoding/json: the last key that matches wins
    {"MTU": "x", "mtu": 1400, "Mtu": None},
    {"master": "eth0"},
])
def test_a_plugin_field_is_the_key_go_would_decode(conf: dict[str, Any]) -> None:
    from webhook.cni.config import PluginConf
    from webhook.cni.gojson import go_field

    plugin = PluginConf("spec.config", conf, None)
    expected = go_field(conf, "mtu")
    assert plugin.field("mtu") == (None if expected is None or expected[1] is None
                                   else (f"spec.config.{expected[0]}", expected[1]))
    assert plugin.field("MTU") == plugin.field("mtu")


# --- spec.config decoded as Go's encoding/json does (answers checked against it, Go 1.26) --------


def test_a_key_written_twice_counts_where_it_was_last_written() -> None:
    from webhook.cni.config import parse_nad_config

    # Go (NetConf.MTU): 3, the last key in the text that matches, which is also the last of the sorted
    # keys libcni passes on ("MTU" < "mtu"); the long s folds to "s".
    text = '{"cniVersion": "1.0.0", "type": "macvlan", "mtu": 1, "MTU": 2, "mtu": 3, "ma\u017fter": "eth1"}'
    netconf = parse_nad_config(text, "spec.config").netconf
    assert netconf is not None
    plugin = netconf.plugins[0]
    assert plugin.field("mtu") == ("spec.config.mtu", 3)
    assert plugin.field("master") == ("spec.config.ma\u017fter", "eth1")


def test_a_plugin_reads_the_spelling_libcni_passes_on_last() -> None:
    from webhook.cni.config import parse_nad_config

    # libcni decodes each plugin's config into a map and encodes it again before running the plugin
    # (InjectConf): the keys arrive sorted, "MODE" before "mode", so "mode" fills the field wherever it
    # was written. Checked with the real macvlan (tests/differential: macvlan-mode-spellings).
    for text in ('{"type": "macvlan", "mode": "vepa", "MODE": "bridge"}',
                 '{"type": "macvlan", "MODE": "bridge", "mode": "vepa"}'):
        netconf = parse_nad_config(text, "spec.config").netconf
        assert netconf is not None
        assert netconf.plugins[0].field("mode") == ("spec.config.mode", "vepa")


@pytest.mark.parametrize("number", ["1" * 4301, "1e400", "NaN"])
def test_a_number_go_cannot_read_is_refused_like_invalid_json(number: str) -> None:
    # Go: cannot unmarshal number ... into Go struct field NetConf.mtu of type int (and into the
    # map[string]interface{} that Multus reads the config into first); NaN: invalid character 'N'.
    config = '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "mtu": ' + number + "}"
    found = only(nad(config), "nad-config-structure")
    assert found.field == "spec.config"
    assert found.message.startswith("spec.config is not valid JSON: ")
    assert "at line 1 column 69" in found.message
    assert all("internal error" not in f.message for f in evaluate(nad(config), Policy()))


def test_a_lone_surrogate_is_read_as_the_replacement_character() -> None:
    # Go: type "\ufffd"; the messages quoting it must still encode to UTF-8.
    subject = nad('{"cniVersion": "1.0.0", "type": "\\ud800", "mode": "\\udc00"}')
    found = evaluate(subject, Policy())
    assert all("internal error" not in f.message for f in found)
    for f in found:
        f.message.encode()
    assert subject.nad_config.netconf is not None
    assert subject.nad_config.netconf.plugins[0].type == "\ufffd"
