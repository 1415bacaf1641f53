"""The shared decoder of user-written JSON against Go's encoding/json.

The expected values marked "Go:" were checked against encoding/json (Go 1.26, Unicode 15.0) with a
small program that unmarshals the same text into a struct, a map and an interface{}. Python's fold
was also compared with Go's unicode.SimpleFold orbits over every code point: no difference.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.cni.gojson import (
    GoJSONError,
    field_spellings,
    field_values,
    fold,
    go_field,
    loads,
    overwritten,
    struct_fields,
)

# --- lone surrogates: Go replaces each with U+FFFD, a valid pair stays one character ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Go: interface="\ufffd"
        (r'"\ud800"', "\ufffd"),
        # Go: "\ufffdx\ufffd"
        (r'"\udc00x\ud800"', "\ufffdx\ufffd"),
        # Go: a high surrogate followed by a pair is U+FFFD then U+10000
        (r'"\ud800\ud800\udc00"', "\ufffd\U00010000"),
        # Go: U+1F600
        (r'"\ud83d\ude00"', "\U0001f600"),
        (r'"\uD83D\uDE00"', "\U0001f600"),
        # An escaped backslash followed by "ud800" is text, not an escape.
        (r'"\\ud800"', "\\ud800"),
        (r'"\\\ud800"', "\\\ufffd"),
        (r'"a\u00e9\n"', "a\u00e9\n"),
    ],
)
def test_lone_surrogates_become_the_replacement_character(text: str, expected: str) -> None:
    assert loads(text) == expected


def test_surrogates_in_keys_and_nested_values() -> None:
    # Go: cni-args = map{"\ufffd": "\ufffd", "k": map{"K": "\ufffd"}}
    decoded = loads(r'[{"name":"net-a","cni-args":{"\ud800":"\udfff","k":{"K":["\ud800"]}}}]')
    assert decoded == [{"name": "net-a", "cni-args": {"\ufffd": "\ufffd", "k": {"K": ["\ufffd"]}}}]
    json.dumps(decoded, ensure_ascii=False).encode()  # has a UTF-8 form: no lone surrogate left


def test_a_raw_lone_surrogate_from_a_lenient_decoder_is_replaced_too() -> None:
    # YAML's "\ud800" escape gives such a str; nothing encodes it to UTF-8 afterwards.
    assert loads('["a\ud800"]') == ["a\ufffd"]


def test_error_positions_are_those_of_the_text_as_written() -> None:
    with pytest.raises(GoJSONError, match="line 1 column 17"):
        loads(r'{"a": "\ud800", }')


# --- numbers: Go refuses anything beyond float64 in every numeric field and in an interface{} ---


@pytest.mark.parametrize(
    "number",
    [
        "1" * 4301,  # Go: cannot unmarshal number ... into Go value of type float64 (and into int)
        "-" + "1" * 4301,
        "9" * 309,  # Go: refused (1e309)
        "17976931348623159" + "0" * 292,  # Go: refused (above float64's largest, rounded)
        "1e309",  # Go: refused
        "-1e309",
        "1" * 5000 + ".5",
    ],
)
def test_numbers_beyond_float64_are_a_parse_error_with_a_place(number: str) -> None:
    with pytest.raises(GoJSONError) as exc:
        loads('{"cniVersion": "1.0.0",\n "mtu": ' + number + "}")
    assert "beyond the range of Go's number types" in str(exc.value)
    assert "line 2 column 9" in str(exc.value)


def test_the_refused_number_is_placed_past_the_same_digits_in_a_string() -> None:
    big = "1" * 4301
    with pytest.raises(GoJSONError, match=f"line 1 column {2 + len(big) + 3 + 1}"):
        loads(f'["{big}", {big}]')


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("9" * 308, int("9" * 308)),  # Go: 1e+308
        ("17976931348623157" + "0" * 292, int("17976931348623157" + "0" * 292)),  # Go: float64's largest
        ("1e308", 1e308),
        ("1e-400", 0.0),  # Go: 0, no error
        ("-0", 0),
    ],
)
def test_numbers_go_reads(number: str, expected: Any) -> None:
    assert loads(number) == expected


# --- numbers after libcni's round trip of a plugin config through a map (InjectConf) ---


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        # Go: libcni.InjectConf (cni v1.3.1) printed each of these as written after the "->".
        ("100.0", 100),  # -> 100
        ("1500.000", 1500),  # -> 1500
        ("1e3", 1000),  # -> 1000
        ("100.5", 100.5),  # -> 100.5: still no integer
        ("9223372036854775807", 9223372036854776000),  # -> 9223372036854776000, past int64
        ("1e20", 10**20),  # -> 100000000000000000000
        ("1e21", 1e21),  # -> 1e+21: no integer field takes it
        ("1000000000000000000000", 1e21),  # -> 1e+21
        ("-3", -3),
    ],
)
def test_numbers_a_plugin_reads_after_libcni(number: str, expected: Any) -> None:
    got = loads('{"ipam": {"routes": [{"mtu": ' + number + "}]}}", via_libcni=True)
    value = got["ipam"]["routes"][0]["mtu"]
    assert (value, type(value)) == (expected, type(expected))


def test_numbers_stay_as_written_without_libcni() -> None:
    assert isinstance(loads("100.0"), float)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_whole_numbers_below_1e21_reach_a_plugin_as_the_same_integer(number: float) -> None:
    value = loads(json.dumps(number), via_libcni=True)
    whole = number.is_integer() and abs(number) < 1e21
    assert isinstance(value, int) is whole
    assert float(value) == number


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    # Go: invalid character 'N' looking for beginning of value
    with pytest.raises(GoJSONError, match=f"{constant} is not JSON.*line 1 column 9"):
        loads(f'{{"mtu": {constant}}}')


@pytest.mark.parametrize(("text", "message"), [("[1,", "Expecting value"), ("[" * 100_000, "nested too deeply")])
def test_invalid_json_is_a_go_json_error(text: str, message: str) -> None:
    with pytest.raises(GoJSONError, match=message):
        loads(text)


# --- keys: folded like encoding/json's foldName; the last match in text order wins ---


@pytest.mark.parametrize(
    ("key", "field"),
    [
        # Go: each key below fills the struct field named on its right.
        ("K", "k"),
        ("\u212a", "k"),  # KELVIN SIGN
        ("\u017f", "s"),  # LATIN SMALL LETTER LONG S
        ("\u017f\u017f", "ss"),
        ("\u1e9e", "\u00df"),  # capital sharp s: simple fold only, not "ss"
        ("\u212b", "\u00e5"),  # ANGSTROM SIGN
        ("\u039c", "\u00b5"),  # Greek capital mu and the micro sign
        ("\u03bc", "\u00b5"),
        ("DEVICEid", "deviceID"),
        ("nAmE", "name"),
    ],
)
def test_keys_go_folds_together(key: str, field: str) -> None:
    assert fold(key) == fold(field)
    assert go_field({key: 1}, field) == (key, 1)


@pytest.mark.parametrize(
    ("key", "field"),
    [
        # Go: none of these keys fills the field on its right.
        ("\u00df", "ss"),  # full folding is not used
        ("\u0130", "i"),  # dotted capital I: Turkic folding is not used
        ("\u0131", "i"),
        ("device\u0131d", "deviceID"),
        ("na\u200bme", "name"),
        ("\uff2e\uff21\uff2d\uff25", "name"),  # fullwidth
    ],
)
def test_keys_go_keeps_apart(key: str, field: str) -> None:
    assert fold(key) != fold(field)
    assert go_field({key: 1}, field) is None


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        # Go (multus NetworkSelectionElement): ns="victim"
        ('{"name":"net-a","namespace":"x","NAMESPACE":"team-a","namespace":"victim"}', "namespace", "victim"),
        # Go: ns="b", then ns="a"
        ('{"NAMESPACE":"a","namespace":"b"}', "namespace", "b"),
        ('{"namespace":"b","NAMESPACE":"a"}', "namespace", "a"),
        # Go: deviceID="d3"
        ('{"deviceid":"d1","deviceID":"d2","DEVICEID":"d3"}', "deviceID", "d3"),
        # Go: ns="victim"; ns="y"
        ('{"name":"net-a","name\u017fpace":"victim"}', "namespace", "victim"),
        ('{"namespace":"x","name\u017fpace":"y"}', "namespace", "y"),
        # Go (NetConf): type="ipvlan"
        ('{"type":"macvlan","Type":"bridge","type":"ipvlan"}', "type", "ipvlan"),
    ],
)
def test_the_last_key_in_text_order_fills_the_field(text: str, field: str, expected: str) -> None:
    found = go_field(loads(text), field)
    assert found is not None
    assert found[1] == expected


def test_generic_maps_keep_exact_keys_with_the_last_value() -> None:
    # Go (cni-args, a map[string]interface{}): map{"A": 2, "a": 3}
    assert loads('{"a":1,"A":2,"a":3}') == {"a": 3, "A": 2}
    # Go (capabilities, a map[string]bool): map{"IPS": false, "ips": false}
    assert loads('{"ips":true,"IPS":false,"ips":false}') == {"ips": False, "IPS": False}


def test_the_values_a_repeated_key_overwrote_are_kept_aside() -> None:
    decoded = loads('{"a": 1, "b": {"x": 1, "x": 2, "x": 3}, "a": 4}')
    assert decoded == {"b": {"x": 3}, "a": 4}
    assert overwritten(decoded) == {"a": (1,)}
    assert overwritten(decoded["b"]) == {"x": (1, 2)}
    assert overwritten(loads('{"a": 1, "A": 2}')) == {}


def test_via_libcni_sorts_keys_at_every_level_as_go_encodes_a_map() -> None:
    # Go: json.Marshal of the map[string]interface{} decoded from this text (what libcni's InjectConf
    # does to a plugin's config) gives {"Type":"x","a":{"Z":2,"z":1},"b":3,"type":"y"}.
    text = '{"b": 1, "Type": "x", "type": "y", "a": {"z": 1, "Z": 2}, "b": 3}'
    decoded = loads(text, via_libcni=True)
    assert json.dumps(decoded, separators=(",", ":")) == '{"Type":"x","a":{"Z":2,"z":1},"b":3,"type":"y"}'
    assert go_field(decoded, "type") == ("type", "y")
    assert go_field(loads(text), "type") == ("type", "y")
    assert go_field(loads('{"type": "y", "Type": "x"}', via_libcni=True), "type") == ("type", "y")
    assert go_field(loads('{"type": "y", "Type": "x"}'), "type") == ("Type", "x")
    assert loads('[{"b": 1, "a": [{"d": 1, "c": 2}]}]', via_libcni=True) == [{"a": [{"c": 2, "d": 1}], "b": 1}]
    assert list(loads('{"b": 1, "a": 2}', via_libcni=True)) == ["a", "b"]
    assert overwritten(loads('{"b": 1, "a": 2, "b": 3}', via_libcni=True)) == {"b": (1,)}


# Integers up to 2^53 come back from libcni's round trip unchanged (larger ones rounded: see above).
@given(st.dictionaries(st.sampled_from(["a", "A", "b", "\u017f", "S", "s"]), st.integers(-(2**53), 2**53), max_size=6))
def test_via_libcni_is_the_same_object_in_sorted_order(value: dict[str, int]) -> None:
    text = json.dumps(value)
    assert loads(text, via_libcni=True) == loads(text)
    assert list(loads(text, via_libcni=True)) == sorted(value)


def test_via_libcni_is_one_round_trip_for_keys_and_numbers() -> None:
    # Go: json.Marshal of the map decoded from this text gives {"MTU":1e+21,"Mtu":1400.5,"mtu":1400}:
    # the plugin's mtu field gets 1400 from the key that sorts last, the other two fail its decode.
    decoded = loads('{"mtu": 1400.0, "MTU": 1e21, "Mtu": 1400.5}', via_libcni=True)
    assert json.dumps(decoded, separators=(",", ":")) == '{"MTU":1e+21,"Mtu":1400.5,"mtu":1400}'
    assert go_field(decoded, "mtu") == ("mtu", 1400)


def test_field_values_adds_what_a_repeated_key_held_before() -> None:
    # Go: {"name":5,"Name":"x","name":"a"} into a struct with name string fails on the 5, though the field
    # ends up "a": every value of every spelling is decoded.
    assert field_values(loads('{"name": 5, "Name": "x", "name": "a", "mac": "m"}')) == {
        "name": [("Name", "x"), ("name", 5), ("name", "a")],
        "mac": [("mac", "m")],
    }


def test_field_spellings_lists_every_key_go_decodes_into_a_field() -> None:
    # Go: {"MTU":"x","mtu":1400} into a struct with mtu int fails ("cannot unmarshal string into Go
    # struct field .mtu of type int") although the last key would fill it: every spelling counts.
    assert field_spellings({"MTU": "x", "mode": "l2", "mtu": 1400}) == {
        "mtu": [("MTU", "x"), ("mtu", 1400)],
        "mode": [("mode", "l2")],
    }


def test_struct_fields_prefers_the_field_a_key_names_exactly() -> None:
    # static's address entry: AddressStr `json:"address"`, then Address net.IPNet, untagged. Go decodes
    # "Address" into the IPNet, and a key that only folds to both into the first of them, AddressStr.
    names = ["address", "gateway", "Address", "Version"]
    obj = {"ADDRESS": "a", "Address": "b", "address": "c", "GateWay": "d", "other": "e"}
    assert struct_fields(obj, names) == {
        "address": [("ADDRESS", "a"), ("address", "c")],
        "Address": [("Address", "b")],
        "gateway": [("GateWay", "d")],
    }


# --- properties ---

# Text with lone surrogates, and pairs when a high one happens to precede a low one.
texts = st.lists(
    st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\U0001f600", "a", "\u00e9"]) | st.characters(),
    max_size=10,
).map("".join)


def utf16_model(text: str) -> str:
    """What Go reads from ``json.dumps(text)``: adjacent surrogates form a pair, the others become U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@given(st.dictionaries(texts, st.lists(texts, max_size=3), max_size=4))
def test_escaped_strings_decode_as_utf16_does(value: dict[str, list[str]]) -> None:
    decoded = loads(json.dumps(value))
    expected: dict[str, list[str]] = {}
    for key, items in value.items():
        expected[utf16_model(key)] = [utf16_model(item) for item in items]
    assert decoded == expected
    json.dumps(decoded, ensure_ascii=False).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@given(json_values)
def test_plain_json_decodes_as_json_loads_does(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)


@given(st.lists(st.tuples(st.sampled_from(["ns", "NS", "Ns", "n\u017f", "x", "X"]), st.integers()), max_size=8))
def test_go_field_is_the_last_matching_pair_in_text_order(pairs: list[tuple[str, int]]) -> None:
    text = "{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in pairs) + "}"
    decoded = loads(text)
    assert decoded == dict(pairs)
    matching = [(k, v) for k, v in pairs if fold(k) == "ns"]
    assert go_field(decoded, "ns") == (matching[-1] if matching else None)
