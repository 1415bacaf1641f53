"""JSON values as the Go plugins decode them.

A plugin unmarshals its config into a typed Go struct: a value of the wrong JSON type (a string
for an int, 1.5 for an int, -1 for an unsigned) fails the whole ADD with "failed to load netconf".
These helpers say, for one value, whether Go would accept it, and describe it for messages. A NAD's
config reaches them already as the plugin reads it (``loads(..., via_libcni=True)``), where 1500.0 is
1500; a pod's selection annotation, which Multus decodes directly, does not.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from webhook.cni.config import Problem
from webhook.cni.gojson import struct_fields


class Kind(Enum):
    STRING = "a string"
    BOOL = "true or false"
    INT = "an integer"
    UINT = "a non-negative integer"
    UINT32 = "a non-negative integer below 2^32"
    OBJECT = "an object"
    LIST = "a list"
    STRING_MAP = "an object whose values are strings"
    BOOL_MAP = "an object whose values are true or false"


_INT64 = (-(2**63), 2**63 - 1)
_RANGES = {Kind.INT: _INT64, Kind.UINT: (0, 2**64 - 1), Kind.UINT32: (0, 2**32 - 1)}


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def is_int(value: Any) -> bool:
    # A float here is one that Go refuses for an integer field: 1.5, 1e21, or 1.0 in text that Go decodes
    # directly (in a NAD's config, libcni has already turned 1.0 into 1).
    return isinstance(value, int) and not isinstance(value, bool)


def fits(value: Any, kind: Kind) -> bool:
    """Whether Go's encoding/json decodes ``value`` into a field of ``kind`` (null always does)."""
    if value is None:
        return True
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.BOOL:
        return isinstance(value, bool)
    if kind in _RANGES:
        low, high = _RANGES[kind]
        return is_int(value) and low <= value <= high
    if kind is Kind.OBJECT:
        return isinstance(value, Mapping)
    if kind is Kind.LIST:
        return isinstance(value, list)
    if kind is Kind.STRING_MAP:
        return isinstance(value, Mapping) and all(v is None or isinstance(v, str) for v in value.values())
    if kind is Kind.BOOL_MAP:
        return isinstance(value, Mapping) and all(v is None or isinstance(v, bool) for v in value.values())
    raise AssertionError(kind)


@dataclass(frozen=True, slots=True)
class ListOf:
    """A Go slice: a JSON list (or null) each element of which decodes as ``element``."""

    element: FieldType
    value = "a list"


@dataclass(frozen=True, slots=True)
class Struct:
    """A Go struct: a JSON object (or null) whose keys decode into ``fields``, by JSON name in declaration
    order (see gojson.struct_fields); keys of no field are ignored, as Go ignores them."""

    fields: Mapping[str, FieldType]
    value = "an object"


#: What a field of a plugin's config struct decodes as.
FieldType = Kind | ListOf | Struct


def _wrong_type(path: str, value: Any, expected: str, plugin: str, when: str) -> Problem:
    return Problem(
        path,
        f"{path} is {describe(value)}, but the {plugin} plugin reads it as {expected}: the plugin "
        f"would fail to load the config{when}; write it as {expected}",
    )


def type_mismatches(
    path: str, value: Any, field_type: FieldType, judged: Collection[str] = ()
) -> Iterator[tuple[str, Any, str]]:
    """What Go refuses when it decodes ``value`` into a field of ``field_type``, down to the elements of
    lists and the fields of objects: (path, value, what it must be) of each value of the wrong type. The
    paths in ``judged`` are passed over with all they hold (their findings have more to say)."""
    if path in judged:
        return
    if isinstance(field_type, Kind):
        if not fits(value, field_type):
            yield path, value, field_type.value
    elif value is None:
        return
    elif isinstance(field_type, ListOf):
        if not isinstance(value, list):
            yield path, value, field_type.value
            return
        for i, element in enumerate(value):
            yield from type_mismatches(f"{path}[{i}]", element, field_type.element, judged)
    elif not isinstance(value, Mapping):
        yield path, value, field_type.value
    else:
        for name, keys in struct_fields(value, list(field_type.fields)).items():
            for key, found in keys:
                yield from type_mismatches(f"{path}.{key}", found, field_type.fields[name], judged)


def type_problems(
    path: str, value: Any, field_type: FieldType, plugin: str, judged: Collection[str] = (),
    when: str = " on every pod",
) -> Iterator[Problem]:
    """type_mismatches, as problems of the ``plugin`` that decodes the value, which fails ``when``."""
    for wrong_path, wrong, expected in type_mismatches(path, value, field_type, judged):
        yield _wrong_type(wrong_path, wrong, expected, plugin, when)


def int_in_range(path: str, value: Any, low: int, high: int, what: str) -> Problem | None:
    """An integer field with a fixed range, e.g. a VLAN id. None when ``value`` is fine or null."""
    if value is None:
        return None
    if not is_int(value):
        return Problem(path, f"{path} is {describe(value)}: {what} must be an integer from {low} to {high}")
    if not low <= value <= high:
        return Problem(
            path, f"{path} is {value}: {what} must be from {low} to {high}; pick one in that range"
        )
    return None
