"""JSON that users write for Go programs (a pod's selection annotations, a NAD's spec.config), decoded
the way Go's encoding/json decodes it.

Where Python's json module and Go's differ, and what is done about it here:

- An escaped lone UTF-16 surrogate (``"\\ud800"``): Python keeps it, giving a str that has no UTF-8 form
  (every later ``encode`` or ``orjson.dumps`` of a message quoting it fails); Go reads U+FFFD.
- ``NaN``, ``Infinity``: Python accepts them; for Go they are not JSON.
- A number beyond float64's range: Python gives ``inf``, or raises a bare ValueError past 4300 digits;
  Go fails on it in every numeric field (int overflow, float out of range) and in an ``interface{}``,
  which is how Multus first reads a NAD's config. Both are refused as a parse error.
- A key written twice: a Python dict keeps the first one's position with the last value. Go assigns
  struct fields in text order, so the last occurrence counts, also against other spellings of the same
  field: the key is moved to its last position, and ``go_field`` takes the last match. The values it
  replaced are kept aside (``overwritten``): Go drops them without a word, which users rarely mean.
- A value of the wrong type under any spelling of a struct field fails the whole decode, even when a
  later spelling would fill the field correctly: Go reports the type error after decoding the rest
  (``field_spellings`` gives every spelling to check, ``field_values`` also the values a repeated key
  had before, for text that Go decodes straight into a struct).
- Key matching: Go matches a key to a struct field by exact name, else case-insensitively with Unicode
  simple folding (the long s U+017F matches "s", the Kelvin sign U+212A matches "k"); ``fold``,
  ``field_index`` and ``go_field`` do that, and ``struct_fields`` for a struct with two fields whose names
  fold alike, where a key that names one exactly goes to it. Generic maps (capabilities, args, cni-args)
  keep exact keys, as Go maps do.
- What reaches a CNI plugin: libcni decodes every plugin's config into a map[string]interface{} and
  encodes it again before running the plugin (InjectConf, for a single config as for each plugin of a
  list). That round trip changes two things, and ``loads(..., via_libcni=True)`` gives both:
  every object's keys come out sorted, so among keys that fold alike the one that sorts last, not the
  last written, fills the plugin's field; and the plugin reads each number as Go prints a float64:
  ``1500.0`` and ``1e3`` arrive as ``1500`` and ``1000``, integers beyond 2^53 arrive rounded, and from
  1e21 on they arrive in exponent form, which no integer field takes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


class GoJSONError(ValueError):
    """Text that Go's encoding/json refuses; the message says why and where (line and column)."""


class _Refused(Exception):
    """A literal json.loads accepts but Go does not; raised from the parse hooks, which know the
    literal but not its place."""

    def __init__(self, literal: str, why: str) -> None:
        super().__init__(literal)
        self.literal = literal
        self.why = why


# A backslash escape: a valid surrogate pair (kept), a lone surrogate (group 1, replaced), or any other
# escape, consumed whole so that the backslash of an escaped backslash never starts a match.
_ESCAPE = re.compile(
    r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|(u[dD][89a-fA-F][0-9a-fA-F]{2})|.)",
    re.DOTALL,
)
# Only a str built by a lenient decoder (YAML's "\ud800") carries one; Go never sees such text.
_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
# The tokens of JSON text outside strings, and the strings themselves (skipped): to find a literal's place.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"{}\[\],:]+', re.DOTALL)
# float64's largest value has 309 digits: shorter integers always fit.
_LONGEST_SAFE_INT = 308
_BEYOND_FLOAT64 = "is beyond the range of Go's number types, so Go cannot read it"


def _repair_escape(match: re.Match[str]) -> str:
    return "\\ufffd" if match.group(1) else match.group(0)


class RepeatedKeys(dict[str, Any]):
    """A JSON object in which some key was written more than once: the dict holds what Go keeps (the
    last value of each key), ``overwritten`` the values the later occurrences replaced, in text order."""

    __slots__ = ("overwritten",)

    def __init__(self, items: dict[str, Any], overwritten: dict[str, tuple[Any, ...]]) -> None:
        super().__init__(items)
        self.overwritten = overwritten


def overwritten(obj: Mapping[str, Any]) -> Mapping[str, tuple[Any, ...]]:
    """For each key written more than once in ``obj``, the values its last occurrence replaced."""
    return obj.overwritten if isinstance(obj, RepeatedKeys) else {}


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    return _repeated(pairs)


def from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object ``loads`` builds from these key-value pairs, in text order: a RepeatedKeys when a key
    is repeated."""
    return _object(pairs)


def _sorted_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Go sorts a map's keys by bytes when it encodes them; code points sort the same.
    obj = _object(pairs)
    ordered = dict(sorted(obj.items()))
    return RepeatedKeys(ordered, obj.overwritten) if isinstance(obj, RepeatedKeys) else ordered


def _repeated(pairs: list[tuple[str, Any]]) -> RepeatedKeys:
    # A repeated key: each key goes to its last occurrence, where Go assigns it for the last time.
    obj: dict[str, Any] = {}
    replaced: dict[str, list[Any]] = {}
    for key, value in pairs:
        if key in obj:
            replaced.setdefault(key, []).append(obj.pop(key))
        obj[key] = value
    return RepeatedKeys(obj, {key: tuple(values) for key, values in replaced.items()})


def fits_int64(number: int) -> bool:
    return -(2**63) <= number < 2**63


def parse_float64(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for a number float() reads too; None on Go's range error (a number
    beyond float64's range, which Python reads as an infinity)."""
    value = float(text)
    return None if math.isinf(value) else value


def go_number(value: int | float) -> int | float | None:
    """A number as Go hands it on once decoded into an interface{} (an integer that fits an int64 as
    one, any other number as a float64) and encoded again (printed_by_go): what the apiserver sends a
    webhook for a number of a manifest. None for what JSON cannot hold: NaN, an infinity, an integer
    beyond float64's range."""
    if isinstance(value, int) and fits_int64(value):
        return value
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return printed_by_go(as_float) if math.isfinite(as_float) else None


def _int(text: str) -> int:
    if len(text) > _LONGEST_SAFE_INT and math.isinf(float(text)):
        raise _Refused(text, _BEYOND_FLOAT64)
    return int(text)


def _float(text: str) -> float:
    value = parse_float64(text)
    if value is None:
        raise _Refused(text, _BEYOND_FLOAT64)
    return value


# Integers up to 2^53 are float64 values that Go prints back unchanged.
_EXACT_IN_FLOAT64 = 2**53
# Go's encoder prints a float64 at or above this magnitude in exponent form.
_GO_EXPONENT_FORM = 1e21


def printed_by_go(value: float) -> int | float:
    """The number Go's encoding/json reads back from its own encoding of the float64 ``value``."""
    if value.is_integer() and abs(value) < _GO_EXPONENT_FORM:
        # Go prints the shortest digits that identify the float64, padded with zeros to the integer (2^63
        # prints as 9223372036854776000), as repr() picks them. -0 reads back as 0 here, though Go prints
        # "-0", which an unsigned field refuses: no config means that.
        return int(Decimal(repr(value)))
    return value


def as_reencoded(value: Any) -> Any:
    """``value``, one of a selection's "cni-args", as a plugin reads it once Multus has decoded it into
    an interface{} (a number becomes a float64) and encoded it again into the plugin's config: 1500.0
    arrives as 1500. Only a number itself changes; one inside a list or an object is of the wrong type
    wherever a plugin reads args.cni."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return value if isinstance(value, int) and abs(value) <= _EXACT_IN_FLOAT64 else printed_by_go(float(value))


def _int_via_libcni(text: str) -> int | float:
    number = _int(text)
    return number if abs(number) <= _EXACT_IN_FLOAT64 else printed_by_go(float(text))


def _float_via_libcni(text: str) -> int | float:
    return printed_by_go(_float(text))


def _constant(name: str) -> Any:
    raise _Refused(name, "is not JSON (Go reads only finite numbers written in digits)")


# Built once: json.loads with hooks would build a decoder on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant)
_LIBCNI_DECODER = json.JSONDecoder(
    object_pairs_hook=_sorted_object, parse_int=_int_via_libcni, parse_float=_float_via_libcni,
    parse_constant=_constant,
)


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return f"line {line} column {column}"


def _refused_message(text: str, refused: _Refused) -> str:
    literal = refused.literal
    shown = literal if len(literal) <= 24 else f"{literal[:16]}... ({len(literal)} characters)"
    # Everything before the refused literal parsed, so its first occurrence outside strings is the one.
    place = next(
        (f" at {_where(text, m.start())}" for m in _TOKEN.finditer(text) if m.group() == literal), ""
    )
    return f"{shown} {refused.why}{place}"


def loads(text: str, *, via_libcni: bool = False) -> Any:
    """``text`` decoded as Go's encoding/json would (see the module's docstring); GoJSONError when Go
    refuses it. Text that is ASCII without ``\\u`` escapes, the common case, goes straight to the decoder.

    ``via_libcni``: as a CNI plugin reads it after libcni's round trip of its config through a
    map[string]interface{} (decoded, then encoded again): every object's keys sorted, so among keys
    that fold alike the greatest, not the last written, fills the field; and whole numbers below 1e21
    as ints, whatever way they were written."""
    text = lone_surrogates_repaired(text)
    try:
        return (_LIBCNI_DECODER if via_libcni else _DECODER).decode(text)
    except json.JSONDecodeError as exc:
        raise GoJSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except _Refused as exc:
        raise GoJSONError(_refused_message(text, exc)) from None
    except RecursionError:
        raise GoJSONError("nested too deeply") from None


def lone_surrogates_repaired(text: str) -> str:
    """JSON ``text`` with each lone surrogate, escaped or not, written U+FFFD as Go reads it. Same length
    in, same length out: the positions in error messages stay right."""
    if "\\u" in text:
        text = _ESCAPE.sub(_repair_escape, text)
    if not text.isascii():
        text = _RAW_SURROGATE.sub("\ufffd", text)
    return text


def _fold_char(char: str) -> str:
    # Simple case folding: casefold() where it gives one character; where it gives several (full
    # folding: "ß" -> "ss"), the simple folding is lower() when that is one character, else none.
    # Checked over every code point against Go's unicode.SimpleFold orbits (Go 1.26, Unicode 15).
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


def fold(key: str) -> str:
    """A key such that ``fold(a) == fold(b)`` exactly when Go's encoding/json matches ``a`` to a field
    named ``b`` without an exact match (its foldName)."""
    return key.lower() if key.isascii() else "".join(map(_fold_char, key))


def field_spellings(obj: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """For each struct field name (folded), every key of ``obj`` that Go's encoding/json decodes into that
    field, with its value, in the order of ``obj``."""
    spellings: dict[str, list[tuple[str, Any]]] = {}
    for key, value in obj.items():
        spellings.setdefault(fold(key), []).append((key, value))
    return spellings


def field_values(obj: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """For each struct field name (folded), every key and value that Go's encoding/json decodes into that
    field when it decodes ``obj`` (as ``loads`` gives it) straight into a struct: per spelling, in the
    order of ``obj``, the values a repeated key had before (``overwritten``), then the one it kept. The
    last entry is the one the field keeps (``field_index``'s); Go type-checks all of them, so any of the
    wrong type fails the decode. Across spellings the order is that of each key's last occurrence, which
    is not always text order, but the last entry is always the last in the text."""
    replaced = overwritten(obj)
    values: dict[str, list[tuple[str, Any]]] = {}
    for key, value in obj.items():
        found = values.setdefault(fold(key), [])
        found += [(key, old) for old in replaced.get(key, ())]
        found.append((key, value))
    return values


def field_index(obj: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """For each struct field name (folded) that a key of ``obj`` matches, the key and value Go's
    encoding/json decodes into that field: the last key in the order of ``obj`` that folds to it (text
    order as ``loads`` keeps it, or sorted order ``via_libcni``).

    The fold alone decides, which is right for a struct without two fields whose names fold alike: Go
    prefers an exact match only to tell such fields apart. Most structs read here have none; those that
    do (static's and whereabouts' address entries, "address" and "Address"; whereabouts' ipam section,
    "gateway" and "Gateway") are read with ``struct_fields``."""
    return {fold(key): (key, value) for key, value in obj.items()}


def struct_fields(obj: Mapping[str, Any], names: Sequence[str]) -> dict[str, list[tuple[str, Any]]]:
    """For each field of a Go struct whose JSON names are ``names`` (in declaration order), every key of
    ``obj`` that encoding/json decodes into it, with its value, in the order of ``obj``; keys that match
    no field are left out. A key goes to the field it names exactly, else to the first field whose name
    it folds to: this tells apart fields whose names fold alike (static's "address" and "Address")."""
    exact = set(names)
    by_fold: dict[str, str] = {}
    for name in names:
        by_fold.setdefault(fold(name), name)
    found: dict[str, list[tuple[str, Any]]] = {}
    for key, value in obj.items():
        field = key if key in exact else by_fold.get(fold(key))
        if field is not None:
            found.setdefault(field, []).append((key, value))
    return found


def go_field(obj: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    """The key and value that Go's encoding/json decodes into the struct field ``name`` (see
    ``field_index``); None when no key matches."""
    folded = fold(name)
    found: tuple[str, Any] | None = None
    for key, value in obj.items():
        # Simple folding maps each character to one character: other lengths never match, and
        # skipping them saves folding most keys (the rules make a dozen lookups per NAD).
        if len(key) == len(name) and fold(key) == folded:
            found = (key, value)
    return found
