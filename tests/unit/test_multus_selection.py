"""The selection-annotation grammar, case by case against what Multus does.

Each group names the multus-cni (or libcni) function whose behaviour it mirrors.
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    Bandwidth,
    NetworkSelection,
    PortMapping,
    gateway_family,
    interface_names,
    network_references,
    parse_default_network,
    parse_networks,
    to_json_element,
)

NET = f'metadata.annotations["{NETWORKS_ANNOTATION}"]'
DEF = f'metadata.annotations["{DEFAULT_NETWORK_ANNOTATION}"]'


def keys(value: str, namespace: str = "pod-ns") -> list[tuple[str, str, str]]:
    parsed = parse_networks(value, namespace)
    assert parsed.ok, parsed.problems
    return [s.key for s in parsed.selections]


def problem(value: str, namespace: str = "pod-ns") -> tuple[str, str]:
    parsed = parse_networks(value, namespace)
    assert not parsed.ok, f"{value!r} should not parse"
    assert parsed.selections == ()
    return parsed.problems[0].field, parsed.problems[0].message


# --- parsePodNetworkAnnotation: form detection (any of [ { " means JSON) and namespace defaulting ---


def test_text_form_resolves_missing_namespace_to_the_pods() -> None:
    assert keys("a") == [("pod-ns", "a", "")]
    assert keys("other/a,b") == [("other", "a", ""), ("pod-ns", "b", "")]
    parsed = parse_networks("a", "pod-ns")
    assert parsed.form == "text"
    assert parsed.selections[0].namespace_explicit is False


def test_json_form_is_chosen_by_any_bracket_brace_or_quote() -> None:
    assert parse_networks('[{"name": "a"}]', "ns").form == "json"
    # A lone quote makes it JSON, which then fails to decode, exactly as in Multus.
    field, message = problem('a"b')
    assert field == NET
    assert "reads it as JSON, but it is not valid JSON" in message


def test_json_form_resolves_missing_or_empty_namespace_to_the_pods() -> None:
    assert keys('[{"name": "a"}, {"name": "b", "namespace": ""}, {"name": "c", "namespace": "x"}]') == [
        ("pod-ns", "a", ""),
        ("pod-ns", "b", ""),
        ("x", "c", ""),
    ]


def test_json_top_level_must_be_a_list_of_objects() -> None:
    field, message = problem('{"name": "a"}')
    assert field == NET
    assert "must be a list of objects" in message
    field, message = problem('[{"name": "a"}, "b"]')
    assert field == f"{NET}[1]"
    assert "must be an object" in message
    # Multus would dereference a nil element and crash the ADD.
    field, _ = problem("[null]")
    assert field == f"{NET}[0]"


def test_json_rejects_what_go_rejects() -> None:
    for value in ('[{"name": "a"}] x', '[{"name": NaN}]', "[{'name': 'a'}]", '[{"name": "a",}]'):
        assert not parse_networks(value, "ns").ok, value


def test_json_null_top_level_is_text_as_in_multus() -> None:
    # "null" contains none of [ { ", so Multus reads it as a network named "null".
    assert keys("null") == [("pod-ns", "null", "")]


def test_empty_json_list_parses_to_no_selections() -> None:
    parsed = parse_networks("[]", "ns")
    assert parsed.ok
    assert parsed.selections == ()


# --- GetPodNetwork: an empty annotation means "no networks" (not an error) ---


def test_empty_networks_annotation_is_no_networks() -> None:
    parsed = parse_networks("", "ns")
    assert parsed.ok
    assert parsed.form == "empty"
    assert parsed.selections == ()


def test_whitespace_only_networks_annotation_is_an_error() -> None:
    # Only "" is empty for Multus; "  " is one item with an empty name.
    field, message = problem("   ")
    assert field == NET
    assert "only whitespace" in message


# --- parsePodNetworkObjectName: [namespace/]name[@interface] ---


def test_text_items_are_trimmed_around_every_part() -> None:
    assert keys(" ns / a @ net5 ,\tb ") == [("ns", "a", "net5"), ("pod-ns", "b", "")]


def test_text_more_than_one_slash_is_refused() -> None:
    field, message = problem("a,x/y/z")
    assert field == f"{NET}[1]"
    assert 'more than one "/"' in message
    assert "[namespace/]name[@interface]" in message


def test_text_more_than_one_at_is_refused() -> None:
    field, message = problem("a@b@c")
    assert field == f"{NET}[0]"
    assert 'more than one "@"' in message


@pytest.mark.parametrize(
    ("value", "part", "bad"),
    [
        ("My-Net", "name", "My-Net"),
        ("my_net", "name", "my_net"),
        ("-net", "name", "-net"),
        ("net-", "name", "net-"),
        ("Team/net", "namespace", "Team"),
        ("team./net", "namespace", "team."),
    ],
)
def test_text_names_must_be_dns_labels(value: str, part: str, bad: str) -> None:
    field, message = problem(value)
    assert field == f"{NET}[0].{part}"
    assert f'"{bad}" is not valid in the short form' in message
    assert "use the JSON form" in message


def test_json_form_skips_the_name_regex() -> None:
    assert keys('[{"name": "My_Net", "namespace": "Team"}]') == [("Team", "My_Net", "")]


def test_text_empty_namespace_means_the_pods() -> None:
    # The regex check skips empty parts, and the empty namespace is then defaulted.
    assert keys("/a") == [("pod-ns", "a", "")]
    assert keys("a@") == [("pod-ns", "a", "")]


def test_stray_comma_is_an_empty_name() -> None:
    # Multus's parser lets "" through, and the NAD lookup for it then fails on every start.
    for value, index in (("a,,b", 1), ("a,", 1), (",a", 0)):
        field, message = problem(value)
        assert field == f"{NET}[{index}]"
        assert 'stray ","' in message


def test_missing_name_before_interface() -> None:
    field, message = problem("ns/@net1")
    assert field == f"{NET}[0].name"
    assert "is empty" in message


def test_json_empty_name_is_refused() -> None:
    field, _ = problem('[{"namespace": "x"}]')
    assert field == f"{NET}[0].name"


# --- parsePodNetworkObjectName (length, "/", spaces) and libcni ValidateInterfaceName ---


@pytest.mark.parametrize(
    ("ifname", "why"),
    [
        ("a234567890123456", "16 bytes long"),
        ("a:b", 'contains "/", ":" or whitespace'),
        (".", "not a usable interface name"),
        ("..", "not a usable interface name"),
    ],
)
def test_text_interface_names_libcni_refuses(ifname: str, why: str) -> None:
    field, message = problem(f"a@{ifname}")
    assert field == f"{NET}[0].interface"
    assert why in message


def test_interface_length_counts_bytes_not_characters() -> None:
    # 14 characters, 16 bytes: Go's len() and the kernel count bytes.
    _, message = problem("a@éé345678901234")
    assert "16 bytes long" in message
    assert keys("a@a23456789012345") == [("pod-ns", "a", "a23456789012345")]


@pytest.mark.parametrize("ifname", ["a b", "a/b", "a\u00a0b", "a\u3000b", "a:b", "a234567890123456", ".."])
def test_json_interface_names_libcni_refuses(ifname: str) -> None:
    parsed = parse_networks(f'[{{"name": "a", "interface": "{ifname}"}}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].interface"]


def test_go_whitespace_is_not_pythons() -> None:
    # \x1c is whitespace to Python's str.strip but not to Go's TrimSpace or libcni: it stays in the name.
    assert not parse_networks("a\x1c", "ns").ok


# --- parsePodNetworkAnnotation: the legacy interfaceRequest stands in for a missing interface ---


def test_legacy_interface_request() -> None:
    parsed = parse_networks('[{"name": "a", "interfaceRequest": "legacy0"}]', "ns")
    assert parsed.selections[0].interface == "legacy0"
    assert [n.field for n in parsed.notes] == [f"{NET}[0].interfaceRequest"]
    assert 'rename the key to "interface"' in parsed.notes[0].message
    both = parse_networks('[{"name": "a", "interface": "new0", "interfaceRequest": "old0"}]', "ns")
    assert both.selections[0].interface == "new0"
    bad = parse_networks('[{"name": "a", "interfaceRequest": "a:b"}]', "ns")
    assert [p.field for p in bad.problems] == [f"{NET}[0].interfaceRequest"]


# --- parsePodNetworkAnnotation: MAC and InfiniBand GUID go through net.ParseMAC ---


@pytest.mark.parametrize(
    "mac",
    [
        "02:00:00:00:00:01",
        "02-00-5E-10-00-01",
        "0200.5e10.0001",
        "02:00:5e:10:00:00:00:01",
        ":".join(["0a"] * 20),
    ],
)
def test_macs_go_accepts(mac: str) -> None:
    parsed = parse_networks(f'[{{"name": "a", "mac": "{mac}", "infiniband-guid": "{mac}"}}]', "ns")
    assert parsed.ok, parsed.problems
    assert parsed.selections[0].mac == mac


@pytest.mark.parametrize(
    "mac", ["zz:00:00:00:00:01", "02:00:00:00:00", "02:00-00:00:00:01", "0200.5e10.001", "2:0:0:0:0:1"]
)
def test_macs_go_refuses(mac: str) -> None:
    parsed = parse_networks(f'[{{"name": "a", "mac": "{mac}"}}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].mac"]
    assert "is not a MAC address: write six hex pairs" in parsed.problems[0].message


def test_infiniband_guid_refused() -> None:
    parsed = parse_networks('[{"name": "a", "infiniband-guid": "nope"}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].infiniband-guid"]
    assert "is not an InfiniBand GUID" in parsed.problems[0].message


# --- parsePodNetworkAnnotation: ips via net.ParseIP / net.ParseCIDR ---


@pytest.mark.parametrize(
    # Go's net.ParseCIDR takes leading zeros in the prefix length, any number of them.
    "ip", ["10.1.2.3", "10.1.2.3/24", "fd00::3", "fd00::3/64", "::ffff:10.0.0.1", "0.0.0.0/0", "10.1.2.3/00024"]
)
def test_ips_go_accepts(ip: str) -> None:
    assert parse_networks(f'[{{"name": "a", "ips": ["{ip}"]}}]', "ns").ok


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2", "10.1.2.3/33", "10.1.2.3/", "10.1.2.3/255.255.255.0", "fe80::1%eth0", "010.1.2.3", "", "x",
        "10.1.2.3/" + "1" * 4301, "fd00::3/" + "0" * 4301 + "129",
    ],
)
def test_ips_go_refuses(ip: str) -> None:
    parsed = parse_networks(f'[{{"name": "a", "ips": ["10.0.0.1", "{ip}"]}}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].ips[1]"]
    assert "is not an IP address or CIDR" in parsed.problems[0].message


# --- types.NetworkSelectionElement decoded by encoding/json: default-route is []net.IP ---


def test_default_route_takes_ips_only() -> None:
    ok = parse_networks('[{"name": "a", "default-route": ["10.0.0.1", "fd00::1"]}]', "ns")
    assert ok.selections[0].default_route == ("10.0.0.1", "fd00::1")
    assert parse_networks('[{"name": "a"}]', "ns").selections[0].default_route is None
    assert parse_networks('[{"name": "a", "default-route": []}]', "ns").selections[0].default_route == ()
    bad = parse_networks('[{"name": "a", "default-route": ["10.0.0.1/24"]}]', "ns")
    assert [p.field for p in bad.problems] == [f"{NET}[0].default-route[0]"]
    assert "no prefix length" in bad.problems[0].message


# --- encoding/json: a value of the wrong JSON type fails the whole Unmarshal ---


@pytest.mark.parametrize(
    ("element", "path", "expected"),
    [
        ('"name": 5', ".name", "a string"),
        ('"namespace": true', ".namespace", "a string"),
        ('"interface": ["net1"]', ".interface", "a string"),
        ('"ips": "10.0.0.1"', ".ips", "a list of strings"),
        ('"ips": [1]', ".ips[0]", "a string"),
        ('"mac": 1', ".mac", "a string"),
        ('"default-route": "10.0.0.1"', ".default-route", "a list of strings"),
        ('"cni-args": []', ".cni-args", "an object"),
        ('"portMappings": {}', ".portMappings", "a list of objects"),
        (
            '"portMappings": [{"hostPort": "80", "containerPort": 80}]',
            ".portMappings[0].hostPort",
            "an integer",
        ),
        (
            '"portMappings": [{"hostPort": 8.5, "containerPort": 80}]',
            ".portMappings[0].hostPort",
            "an integer",
        ),
        (
            '"portMappings": [{"hostPort": 80, "containerPort": 1e2}]',
            ".portMappings[0].containerPort",
            "an integer",
        ),
        (
            '"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": 6}]',
            ".portMappings[0].protocol",
            "a string",
        ),
        ('"bandwidth": [1]', ".bandwidth", "an object"),
        ('"bandwidth": {"ingressRate": true}', ".bandwidth.ingressRate", "an integer"),
        ('"bandwidth": {"egressBurst": 9223372036854775808}', ".bandwidth.egressBurst", "an integer"),
        ('"deviceID": 3', ".deviceID", "a string"),
    ],
)
def test_wrong_json_types_are_refused(element: str, path: str, expected: str) -> None:
    name = "" if element.startswith('"name"') else '"name": "a", '
    parsed = parse_networks(f"[{{{name}{element}}}]", "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0]{path}"]
    message = parsed.problems[0].message
    assert message.startswith(f"{NETWORKS_ANNOTATION}[0]{path} is ")
    assert f"Multus decodes it as {expected}" in message
    assert f"write it as {expected}" in message or "quote it" in message


# Go answers below from multus-cni v4.3.0's parsePodNetworkAnnotation (Go 1.26): every one fails with
# the type error of the earlier value ("json: cannot unmarshal number into Go struct field
# NetworkSelectionElement.name of type string"), or "invalid IP address: x" for default-route, although
# the last value of the field is right: encoding/json decodes every occurrence of a key, under any
# spelling, and reports the type error after decoding the rest.
@pytest.mark.parametrize(
    ("element", "path"),
    [
        ('"name": 5, "name": "a"', ".name"),
        ('"Name": 5, "name": "a"', ".Name"),
        ('"name": "a", "mac": 5, "mac": "02:00:00:00:00:01"', ".mac"),
        ('"name": "a", "Interface": 5, "interface": "net1"', ".Interface"),
        ('"name": "a", "ips": "10.1.1.1", "ips": ["10.1.1.1"]', ".ips"),
        ('"name": "a", "default-route": ["x"], "default-route": ["10.0.0.1"]', ".default-route[0]"),
        ('"name": "a", "cni-args": 5, "cni-args": {}', ".cni-args"),
        (
            '"name": "a", "portMappings": [{"hostPort": "80", "hostPort": 80, "containerPort": 80}]',
            ".portMappings[0].hostPort",
        ),
        ('"name": "a", "portMappings": [{"hostPort": "x"}], "portMappings": []', ".portMappings[0].hostPort"),
        ('"name": "a", "portMappings": [5], "portMappings": []', ".portMappings[0]"),
        ('"name": "a", "bandwidth": {"ingressRate": "x"}, "bandwidth": {"ingressRate": 1}', ".bandwidth.ingressRate"),
        ('"name": "a", "bandwidth": {"IngressRate": "x", "ingressRate": 1}', ".bandwidth.IngressRate"),
        ('"name": "a", "bandwidth": {"ingressRate": "x"}, "bandwidth": null, "bandwidth": {}',
         ".bandwidth.ingressRate"),
        ('"name": "a", "cni-args": {}, "cni-args": 5, "cni-args": {}', ".cni-args"),
    ],
)
def test_earlier_values_of_a_repeated_key_are_type_checked(element: str, path: str) -> None:
    parsed = parse_networks(f"[{{{element}}}]", "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0]{path}"]
    message = parsed.problems[0].message
    assert message.startswith(f"{NETWORKS_ANNOTATION}[0]{path} ")
    assert "This is an earlier" in message
    assert "a repeated key" in message
    assert parsed.selections == ()


def test_repeated_keys_of_the_right_type_keep_the_last_value() -> None:
    # Go: OK, the last value of each field (an empty earlier gateway decodes as a nil IP without error).
    parsed = parse_networks(
        '[{"name": "b", "name": "a", "default-route": [""], "default-route": ["10.0.0.1"], '
        '"portMappings": [{"hostPort": 1, "hostPort": 2, "containerPort": 3}]}]',
        "ns",
    )
    assert parsed.ok, parsed.problems
    assert parsed.selections[0].name == "a"
    assert parsed.selections[0].default_route == ("10.0.0.1",)
    assert parsed.selections[0].port_mappings == (PortMapping(2, 3),)


# Go answers (encoding/json, Go 1.26; Multus v4.3.0's types): OK for each. Only Go's own decode errors
# count in a value a later occurrence replaces; a null port mapping is no such error.
@pytest.mark.parametrize(
    "element",
    [
        '"name": "a", "portMappings": [null], "portMappings": []',
        '"name": "a", "portMappings": [null, {"hostPort": 1, "containerPort": 2}], "portMappings": []',
    ],
)
def test_earlier_values_report_only_what_go_fails_on(element: str) -> None:
    parsed = parse_networks(f"[{{{element}}}]", "ns")
    assert parsed.ok, parsed.problems
    assert parsed.notes == ()


def test_an_earlier_values_unknown_keys_are_not_noted() -> None:
    # Go drops the earlier value: its unknown keys change nothing.
    parsed = parse_networks('[{"name": "a", "portMappings": [{"hostport": 1, "x": 1}], "portMappings": []}]', "ns")
    assert parsed.ok
    assert parsed.notes == ()


# Go answers (/tmp/rev-today/merge, encoding/json into *map[string]interface{} and *BandwidthEntry): a
# repeated key's objects are decoded into the same map or struct, so they merge; null resets the field.
@pytest.mark.parametrize(
    ("element", "cni_args", "bandwidth"),
    [
        ('"cni-args": {"ips": ["10.0.0.5/24"]}, "cni-args": {"foo": 1}', {"ips": ["10.0.0.5/24"], "foo": 1}, None),
        ('"cni-args": {"ips": ["10.0.0.5/24"]}, "cni-args": null, "cni-args": {"foo": 1}', {"foo": 1}, None),
        ('"cni-args": {"ips": 1, "foo": {"x": 1}}, "cni-args": {"foo": {"y": 2}}', {"ips": 1, "foo": {"y": 2}}, None),
        ('"bandwidth": {"ingressRate": 1, "ingressBurst": 2}, "bandwidth": {"egressRate": 3}', None,
         Bandwidth(1, 2, 3, 0)),
        ('"bandwidth": {"ingressRate": 1, "ingressBurst": 2}, "Bandwidth": {"egressRate": 3, "ingressRate": 4}', None,
         Bandwidth(4, 2, 3, 0)),
        ('"bandwidth": {"ingressRate": 1, "ingressBurst": 2}, "bandwidth": null, "bandwidth": {"egressRate": 3}', None,
         Bandwidth(0, 0, 3, 0)),
    ],
)
def test_repeated_cni_args_and_bandwidth_objects_merge_as_go_decodes_them(
    element: str, cni_args: dict[str, Any] | None, bandwidth: Bandwidth | None
) -> None:
    parsed = parse_networks(f'[{{"name": "a", {element}}}]', "ns")
    assert parsed.ok, parsed.problems
    [selection] = parsed.selections
    assert (selection.cni_args, selection.bandwidth) == (cni_args, bandwidth)


# Real Multus v4.3.0 answers (hack/multus/multus-delegates, k8sclient.GetPodNetwork): null decoded into
# a string or an int leaves it as it was, so a repeated key's null keeps the value before it.
@pytest.mark.parametrize(
    ("element", "selection"),
    [
        ('"name": "a", "name": null', NetworkSelection("a", "ns", namespace_explicit=False)),
        ('"name": "a", "Name": null', NetworkSelection("a", "ns", namespace_explicit=False)),
        ('"name": "a", "namespace": "x", "namespace": null', NetworkSelection("a", "x")),
        ('"name": "a", "interface": "net5", "interface": null',
         NetworkSelection("a", "ns", "net5", namespace_explicit=False)),
        ('"name": "a", "mac": "02:00:00:00:00:01", "mac": null',
         NetworkSelection("a", "ns", mac="02:00:00:00:00:01", namespace_explicit=False)),
        ('"name": "a", "portMappings": [{"hostPort": 80, "containerPort": 8080, "hostPort": null}]',
         NetworkSelection("a", "ns", namespace_explicit=False, port_mappings=(PortMapping(80, 8080),))),
    ],
)
def test_null_after_a_string_or_number_keeps_it(element: str, selection: NetworkSelection) -> None:
    parsed = parse_networks(f"[{{{element}}}]", "ns")
    assert parsed.ok, parsed.problems
    got = parsed.selections[0]
    assert (got.name, got.interface, got.mac, got.port_mappings) == (
        selection.name, selection.interface, selection.mac, selection.port_mappings)
    assert got.namespace == (selection.namespace if '"namespace"' in element else "ns")


def test_null_alone_is_still_an_empty_name() -> None:
    assert problem('[{"name": null}]', "ns") == (f"{NET}[0].name", f"{NETWORKS_ANNOTATION}[0].name is empty: set it "
                                                 "to the name of the NetworkAttachmentDefinition to attach")


# Real Multus v4.3.0 answers: a repeated portMappings (a []*PortMapEntry) is decoded into the entries the
# earlier list left, also past the slice's length; fields the later object leaves out are kept.
@pytest.mark.parametrize(
    ("element", "ports"),
    [
        ('"portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "udp"}], '
         '"portMappings": [{"hostPort": 81}]',
         (PortMapping(81, 8080, "udp"),)),
        ('"portMappings": [{"hostPort": 80, "containerPort": 8080}], '
         '"PortMappings": [{"hostPort": 81}, {"hostPort": 82}]',
         (PortMapping(81, 8080), PortMapping(82, 0))),
        ('"portMappings": [{"hostPort": 80, "containerPort": 8080}, {"hostPort": 90, "containerPort": 9090}], '
         '"portMappings": [{"hostPort": 81}], "portMappings": [{"hostPort": 82}, {"hostPort": 83}]',
         (PortMapping(82, 8080), PortMapping(83, 9090))),
        ('"portMappings": [{"hostPort": 80, "containerPort": 8080}], "portMappings": [null], '
         '"portMappings": [{"hostPort": 81}]',
         (PortMapping(81, 0),)),
        ('"portMappings": [{"hostPort": 80, "containerPort": 8080}], "portMappings": [], '
         '"portMappings": [{"hostPort": 81}]',
         (PortMapping(81, 0),)),
        ('"portMappings": [{"hostPort": 80, "containerPort": 8080}], "portMappings": null', ()),
    ],
)
def test_repeated_port_mappings_merge_entry_by_entry(element: str, ports: tuple[PortMapping, ...]) -> None:
    parsed = parse_networks(f'[{{"name": "a", {element}}}]', "ns")
    assert parsed.ok, parsed.problems
    assert parsed.selections[0].port_mappings == ports


def test_a_merged_port_mapping_field_of_the_wrong_type_is_refused_once() -> None:
    parsed = parse_networks(
        '[{"name": "a", "portMappings": [{"hostPort": "x"}], "portMappings": [{"containerPort": 1}]}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].portMappings[0].hostPort"]


def test_a_merged_bandwidth_field_of_the_wrong_type_is_refused_where_it_is_kept() -> None:
    # Go keeps the earlier object's ingressRate (the later one has none), and fails on its type.
    parsed = parse_networks('[{"name": "a", "bandwidth": {"ingressRate": "x"}, "bandwidth": {"egressRate": 1}}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].bandwidth.ingressRate"]
    assert "This is an earlier" not in parsed.problems[0].message


def test_ipam_claim_reference_is_ignored_by_multus() -> None:
    # Multus v4.3.0's NetworkSelectionElement has no such field: Go: OK. Only readers of the NAD client's
    # type (OVN-Kubernetes) take it, as a string: a warning, not a refusal.
    parsed = parse_networks('[{"name": "a", "ipam-claim-reference": 5}]', "ns")
    assert parsed.ok
    assert parsed.selections[0].ipam_claim_reference == ""
    assert [(n.field, n.warning) for n in parsed.notes] == [(f"{NET}[0].ipam-claim-reference", True)]
    assert "Multus ignores this key" in parsed.notes[0].message
    assert parse_networks('[{"name": "a", "ipam-claim-reference": "c"}]', "ns").notes == ()


@pytest.mark.parametrize(
    ("gateway", "family"),
    [("10.0.0.1", 4), ("fd00::1", 6), ("::ffff:10.0.0.1", 4), ("::ffff:a00:1", 4), ("::a00:1", 6), ("", 6)],
)
def test_gateway_family_is_go_to4(gateway: str, family: int) -> None:
    # Go's CheckGatewayConfig: gw.To4() != nil is IPv4 (IPv4-mapped IPv6 included); the rest, and the nil
    # IP that "" decodes to, IPv6.
    assert gateway_family(gateway) == family


def test_port_mapping_element_must_be_an_object() -> None:
    parsed = parse_networks('[{"name": "a", "portMappings": [5]}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].portMappings[0]"]


def test_a_null_port_mapping_is_kept_as_multus_keeps_it() -> None:
    # Real Multus v4.3.0: GetPodNetwork decodes [null] without complaint into a nil *PortMapEntry and
    # passes it on as null; whether a plugin takes it is pod-networks-port-mappings's to judge.
    parsed = parse_networks('[{"name": "a", "portMappings": [null, {"hostPort": 1, "containerPort": 2}]}]', "ns")
    assert parsed.ok, parsed.problems
    assert parsed.selections[0].port_mappings == (None, PortMapping(1, 2))
    assert to_json_element(parsed.selections[0])["portMappings"] == [None, {"hostPort": 1, "containerPort": 2}]


def test_null_values_decode_to_nothing() -> None:
    parsed = parse_networks(
        '[{"name": "a", "mac": null, "ips": null, "bandwidth": null, "cni-args": null}]', "ns"
    )
    assert parsed.ok
    assert parsed.selections[0] == NetworkSelection("a", "ns", namespace_explicit=False)


def test_all_fields_decode() -> None:
    value = (
        '[{"name": "a", "namespace": "x", "interface": "data0", "ips": ["10.0.0.5/24"], '
        '"mac": "02:00:00:00:00:01", "infiniband-guid": "02:00:00:00:00:00:00:01", '
        '"default-route": ["10.0.0.1"], "cni-args": {"k": [1]}, '
        '"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "1.2.3.4"}], '
        '"bandwidth": {"ingressRate": 1, "ingressBurst": 2, "egressRate": 3, "egressBurst": 4}, '
        '"deviceID": "0000:00:01.0", "ipam-claim-reference": "claim"}]'
    )
    parsed = parse_networks(value, "ns")
    assert parsed.ok
    assert parsed.notes == ()
    assert parsed.selections[0] == NetworkSelection(
        name="a",
        namespace="x",
        interface="data0",
        ips=("10.0.0.5/24",),
        mac="02:00:00:00:00:01",
        infiniband_guid="02:00:00:00:00:00:00:01",
        default_route=("10.0.0.1",),
        cni_args={"k": [1]},
        port_mappings=(PortMapping(8080, 80, "tcp", "1.2.3.4"),),
        bandwidth=Bandwidth(1, 2, 3, 4),
        device_id="0000:00:01.0",
        ipam_claim_reference="claim",
    )


# --- encoding/json: keys match case-insensitively, unknown keys are ignored ---


def test_keys_match_case_insensitively_with_a_note() -> None:
    parsed = parse_networks('[{"Name": "a", "INTERFACE": "data0"}]', "ns")
    assert parsed.ok
    assert parsed.selections[0].key == ("ns", "a", "data0")
    assert [n.field for n in parsed.notes] == [f"{NET}[0].Name", f"{NET}[0].INTERFACE"]
    assert 'spell it "name"' in parsed.notes[0].message
    assert all(n.warning for n in parsed.notes)


def test_unknown_keys_are_ignored_with_a_note() -> None:
    parsed = parse_networks(
        '[{"name": "a", "interfaces": "x", '
        '"portMappings": [{"hostPort": 1, "containerPort": 1, "proto": "tcp"}]}]',
        "ns",
    )
    assert parsed.ok
    assert [n.field for n in parsed.notes] == [f"{NET}[0].interfaces", f"{NET}[0].portMappings[0].proto"]
    assert "is not a field Multus reads, so it is ignored" in parsed.notes[0].message


# Go answers below checked against encoding/json (Go 1.26) decoding into a NetworkSelectionElement.


@pytest.mark.parametrize(
    "value",
    [
        '[{"name": "net-a", "namespace": "x", "NAMESPACE": "team-a", "namespace": "victim"}]',  # Go: victim
        '[{"name": "net-a", "NAMESPACE": "team-a", "namespace": "victim"}]',  # Go: victim
        '[{"name": "net-a", "name\u017fpace": "victim"}]',  # Go: victim (long s folds to s)
        '[{"name": "net-a", "namespace": "team-a", "name\\u017fpace": "victim"}]',  # the key as an escape
    ],
)
def test_the_namespace_is_the_last_key_go_matches(value: str) -> None:
    parsed = parse_networks(value, "team-a")
    assert parsed.ok
    assert parsed.selections[0].key == ("victim", "net-a", "")


def test_lone_surrogates_read_as_the_replacement_character() -> None:
    # Go: interface "\ufffd", which libcni accepts (3 bytes, no "/", ":" or space).
    parsed = parse_networks('[{"name": "net-a", "interface": "\\ud800"}]', "ns")
    assert parsed.ok
    assert parsed.selections[0].interface == "\ufffd"
    # Go ignores the key: a note names it.
    parsed = parse_networks('[{"name": "net-a", "\\ud800": 1}]', "ns")
    assert parsed.ok
    assert [n.field for n in parsed.notes] == [f"{NET}[0].\ufffd"]


def test_a_lone_surrogate_does_not_hide_the_other_problems() -> None:
    parsed = parse_networks(
        '[{"name": "a", "mac": "not-a-mac"}, {"name": "b", "interface": "\\ud800", "default-route": ["\\udc00"]}]',
        "ns",
    )
    assert [p.field for p in parsed.problems] == [f"{NET}[0].mac", f"{NET}[1].default-route[0]"]


@pytest.mark.parametrize("number", ["1" * 4301, "1e400"])
def test_a_number_go_cannot_read_makes_the_annotation_invalid(number: str) -> None:
    # Go: cannot unmarshal number ... into Go struct field NetworkSelectionElement.cni-args of type float64
    parsed = parse_networks(f'[{{"name": "a", "cni-args": {{"x": {number}}}}}]', "ns")
    assert [p.field for p in parsed.problems] == [NET]
    assert "beyond the range of Go's number types" in parsed.problems[0].message
    assert "line 1 column 34" in parsed.problems[0].message


def test_type_problem_names_the_key_as_spelled() -> None:
    parsed = parse_networks('[{"name": "a", "MAC": 1}]', "ns")
    assert [p.field for p in parsed.problems] == [f"{NET}[0].MAC"]


# --- tryLoadK8sPodDefaultNetwork: default-network ---


def test_default_network_resolves_against_multus_namespace() -> None:
    parsed = parse_default_network("primary")
    assert [s.key for s in parsed.selections] == [("kube-system", "primary", "")]
    parsed = parse_default_network("primary", "multus")
    assert [s.key for s in parsed.selections] == [("multus", "primary", "")]
    parsed = parse_default_network('[{"name": "primary", "namespace": "net"}]')
    assert [s.key for s in parsed.selections] == [("net", "primary", "")]


def test_default_network_empty_is_an_error() -> None:
    parsed = parse_default_network("")
    assert [p.field for p in parsed.problems] == [DEF]
    assert "is empty, which Multus refuses" in parsed.problems[0].message
    assert "or remove the annotation" in parsed.problems[0].message


@pytest.mark.parametrize("value", ["a,b", "[]", '[{"name": "a"}, {"name": "b"}]'])
def test_default_network_must_name_exactly_one(value: str) -> None:
    parsed = parse_default_network(value)
    assert [p.field for p in parsed.problems] == [DEF]
    assert "exactly one default network" in parsed.problems[0].message
    assert parsed.selections == ()


def test_default_network_shares_the_grammar() -> None:
    parsed = parse_default_network("a/b/c")
    assert [p.field for p in parsed.problems] == [f"{DEF}[0]"]
    assert parsed.problems[0].message.startswith(f"{DEFAULT_NETWORK_ANNOTATION}[0] ")


# --- pkg/multus getIfname: net<idx>, idx counting every delegate before it ---


def test_unnamed_interfaces_are_numbered_by_position_in_the_delegate_list() -> None:
    selections = parse_networks("a,b@data0,c", "ns").selections
    # The cluster default network is delegate 0, so the first element is net1; named ones count too.
    assert interface_names(selections) == ("net1", "data0", "net3")
    # Two clusterNetwork defaultNetworks in Multus's config push the first element to index 3.
    assert interface_names(selections, first_index=3) == ("net3", "data0", "net5")


def test_network_references() -> None:
    annotations = {
        NETWORKS_ANNOTATION: "a,other/b@data0",
        DEFAULT_NETWORK_ANNOTATION: "primary",
        "unrelated": "x",
    }
    refs = network_references(annotations, "pod-ns")
    assert [(r.annotation, r.namespace, r.name, r.interface, r.field) for r in refs] == [
        (DEFAULT_NETWORK_ANNOTATION, "kube-system", "primary", "eth0", DEF),
        (NETWORKS_ANNOTATION, "pod-ns", "a", "net1", f"{NET}[0]"),
        (NETWORKS_ANNOTATION, "other", "b", "data0", f"{NET}[1]"),
    ]
    assert network_references({NETWORKS_ANNOTATION: "a/b/c", DEFAULT_NETWORK_ANNOTATION: 5}, "ns") == ()
    refs = network_references({DEFAULT_NETWORK_ANNOTATION: "p"}, "ns", multus_namespace="multus")
    assert [(r.namespace, r.name) for r in refs] == [("multus", "p")]
