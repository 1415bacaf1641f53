"""YAML read into the object the apiserver hands to a webhook for it.

kubectl reads YAML with sigs.k8s.io/yaml: go-yaml v2 decodes each document into an interface{}, the
result is encoded as JSON, and that JSON is decoded again (kubectl's object, then the apiserver's) with
integral numbers as int64 and the rest as float64, which Go prints back as JSON for the webhook. PyYAML
reads YAML 1.1 instead: dates, base-60 integers (a MAC such as 10:20:30:40:50:59), ``=`` and floats
without a dot come out differently, and "y", "n" are not booleans. The loader here keeps PyYAML's parser
(libyaml's where built, for the size of a --cluster-state) and replaces what it makes of plain scalars
and keys with go-yaml v2's resolution (go.yaml.in/yaml/v2 resolve.go and decode.go) and
sigs.k8s.io/yaml's conversion to JSON (convertToJSONableObject).
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from webhook.cni.gojson import fits_int64, go_number, parse_float64

_UINT64 = 2**64
_MERGE = "tag:yaml.org,2002:merge"
#: What every plain scalar that go-yaml may read as something other than a string is tagged with.
_PLAIN = "tag:multus-webhook.io,2024:go-yaml-plain"

_WORDS: dict[str, Any] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# go-yaml's float syntax (yamlStyleFloat): no dot needed, an exponent's sign optional.
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# What strconv.ParseFloat takes of a scalar starting with a dot (go-yaml gives it the whole scalar, its
# underscores too): an underscore only between two digits, of the fraction or of the exponent.
_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")
# strconv.ParseInt(s, 0, 64): a base prefix, or a leading 0 for octal.
_GO_INT = re.compile(r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]+)|([1-9][0-9]*|0))")


class Unreadable(Exception):
    """What kubectl refuses in a document: ``line`` is 0-based (None when unknown)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _go_int(plain: str) -> int | None:
    """The integer strconv.ParseInt(plain, 0, 64) or, failing that, ParseUint gives; None when neither."""
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    sign, hexa, octal, binary, old_octal, decimal = match.groups()
    base, digits = ((16, hexa) if hexa else (8, octal) if octal else (2, binary) if binary
                    else (8, old_octal) if old_octal else (10, decimal))
    digits = digits.lstrip("0") or "0"
    # Past 64 binary digits no base can fit 64 bits; the bound also keeps int() from its digit limit.
    if len(digits) > 64:
        return None
    number = int(digits, base)
    if sign == "-":
        number = -number
    # ParseUint takes no sign: "+18446744073709551615" is a float.
    fits = fits_int64(number) or (not sign and number < _UINT64)
    return number if fits else None


def resolve(text: str) -> Any:
    """What go-yaml v2 decodes a plain scalar into an interface{} as: bool, None, int (int64 or uint64),
    float or str. A timestamp stays the string it is (decode.go keeps it so for interface{})."""
    if text in _WORDS:
        return _WORDS[text]
    first = text[:1]
    if first == ".":
        # On ParseFloat's range error the scalar is a string.
        value = parse_float64(text) if _DOT_FLOAT.fullmatch(text) else None
        return text if value is None else value
    if first and first in "+-0123456789":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return number
        value = parse_float64(plain) if _YAML_STYLE_FLOAT.fullmatch(plain) else None
        return text if value is None else value
    return text


def _go_type(value: Any) -> str:
    """The tag go-yaml names a resolved value by in its errors."""
    return {bool: "!!bool", type(None): "!!null", int: "!!int", float: "!!float"}.get(type(value), "!!str")


def _float32_key(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32): how sigs.k8s.io/yaml writes a float key."""
    try:
        single: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isnan(single):
        return ".nan"
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    # The fewest digits that read back as the same float32.
    digits = f"{single:.8e}"
    for precision in range(1, 9):
        if struct.unpack("f", struct.pack("f", float(f"{single:.{precision - 1}e}")))[0] == single:
            digits = f"{single:.{precision - 1}e}"
            break
    mantissa, exponent = digits.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    significant = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exp = int(exponent)
    # 'g' with the shortest digits writes an exponent below 1e-4 and from 1e6 on (Go's %e: two digits at least).
    if exp < -4 or exp >= 6:
        head = significant[0] + (f".{significant[1:]}" if significant[1:] else "")
        return f"{sign}{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{significant}"
    whole, fraction = significant[:exp + 1].ljust(exp + 1, "0"), significant[exp + 1:]
    return sign + whole + (f".{fraction}" if fraction else "")


def _key(key: Any, node: yaml.Node) -> str:
    """A key as sigs.k8s.io/yaml writes it into JSON; the rest are refused as kubectl refuses them."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and fits_int64(key):
        return str(key)
    if isinstance(key, float):
        return _float32_key(key)
    what = ("null" if key is None else "a mapping" if isinstance(key, dict) else "a sequence"
            if isinstance(key, list) else f"the unsigned integer {key}")
    raise Unreadable(f"a key kubectl cannot read: {what} (only strings, booleans, numbers that fit an int64 "
                     "and floats are turned into JSON keys)", node.start_mark.line)


def _value(value: Any, node: yaml.Node) -> Any:
    """A value as the apiserver sends it on: a float64 printed by Go and read back (1e6 and 1000000.0
    arrive as 1000000), an integer beyond int64 as the float64 it becomes."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    number = go_number(value)
    if number is None:
        raise Unreadable(f"the value {node.value} cannot be written as JSON: kubectl refuses it "
                         "(json: unsupported value)", node.start_mark.line)
    return number


_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[misc, valid-type]
    """PyYAML's parser (libyaml's when built with it) with go-yaml v2's reading of scalars and keys, and
    sigs.k8s.io/yaml's of keys."""

    # Its own tables: add_* below must not change SafeLoader's.
    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}
    yaml_constructors: ClassVar[dict[Any, Any]] = {}

    def construct_go_plain(self, node: yaml.ScalarNode) -> Any:
        return resolve(node.value)

    def construct_go_str(self, node: yaml.ScalarNode) -> Any:
        return node.value

    def construct_go_binary(self, node: yaml.ScalarNode) -> Any:
        try:
            data = base64.b64decode(node.value)
        except ValueError:  # binascii.Error, or a character past ASCII
            raise Unreadable("!!binary value contains invalid base64 data", node.start_mark.line) from None
        # Go's JSON encoder writes each invalid byte of a string as U+FFFD.
        return data.decode("utf-8", "replace")

    def construct_go_tagged(self, node: yaml.ScalarNode) -> Any:
        """An explicit !!bool, !!int, !!float, !!null or !!timestamp: the value go-yaml resolves must be
        of that type (an integer is taken as a float), or kubectl refuses the document."""
        wanted = "!!" + node.tag.rpartition(":")[2]
        if wanted == "!!timestamp":
            return node.value  # kept a string in an interface{}, as an implicit one
        value = resolve(node.value)
        if wanted == "!!float" and _go_type(value) == "!!int":
            return float(value)
        if _go_type(value) != wanted:
            raise Unreadable(f"cannot decode {_go_type(value)} `{node.value}` as a {wanted}", node.start_mark.line)
        return value

    def construct_go_undefined(self, node: yaml.Node) -> Any:
        # go-yaml reads a collection by its kind whatever its tag (!!set, !!omap, a local tag), and a
        # scalar of a tag it does not resolve as its text.
        if isinstance(node, yaml.MappingNode):
            return self.construct_go_map(node)
        if isinstance(node, yaml.SequenceNode):
            return self.construct_go_seq(node)
        return node.value

    def construct_go_seq(self, node: yaml.SequenceNode) -> Iterator[list[Any]]:
        data: list[Any] = []
        yield data
        data.extend(_value(self.construct_object(child), child) for child in node.value)

    def construct_go_map(self, node: yaml.MappingNode) -> Iterator[dict[str, Any]]:
        data: dict[str, Any] = {}
        yield data
        for key_node, value_node in _pairs(node):
            key = self.construct_object(key_node)
            data[_key(key, key_node)] = _value(self.construct_object(value_node), value_node)


def _pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """The pairs go-yaml sets, in its order: a merge ("<<") sets its mapping's pairs where it stands, so
    a later key wins over a merged one and a merged one over an earlier key; of a merged sequence the
    first mapping wins."""
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE:
            yield key_node, value_node
        elif isinstance(value_node, yaml.MappingNode):
            yield from _pairs(value_node)
        elif isinstance(value_node, yaml.SequenceNode) and all(isinstance(n, yaml.MappingNode)
                                                                for n in value_node.value):
            for merged in reversed(value_node.value):
                yield from _pairs(merged)
        else:
            raise Unreadable("map merge requires map or sequence of maps as the value", value_node.start_mark.line)


def _resolvers() -> None:
    """Plain scalars go-yaml may read as other than a string go to construct_go_plain; the patterns are
    loose (resolve decides), but leave the common strings (names, images, a MAC) out."""
    words = re.compile("|".join(re.escape(w) for w in _WORDS if w and w[0] not in ".+-"))
    Loader.add_implicit_resolver(_PLAIN, re.compile(rf"(?:{words.pattern})\Z"), list("yYnNtTfFoO~"))
    Loader.add_implicit_resolver(_PLAIN, re.compile(r"\Z"), [""])
    Loader.add_implicit_resolver(_PLAIN, re.compile(r"[-+.0-9][-+._0-9a-zA-Z]*\Z"), list("-+.0123456789"))
    Loader.add_implicit_resolver(_MERGE, re.compile(r"<<\Z"), ["<"])
    Loader.add_constructor(_PLAIN, Loader.construct_go_plain)
    Loader.add_constructor("tag:yaml.org,2002:str", Loader.construct_go_str)
    for tag in ("bool", "int", "float", "null", "timestamp"):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", Loader.construct_go_tagged)
    Loader.add_constructor("tag:yaml.org,2002:binary", Loader.construct_go_binary)
    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_go_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", Loader.construct_go_seq)
    Loader.add_constructor(None, Loader.construct_go_undefined)


_resolvers()


# go-yaml's limit on alias expansion (decode.go, allowedAliasRatio): past 100 decodes through aliases
# and 1,000 in all, at most 99% of them may come through aliases up to 400,000 decodes, then a share
# falling to 10% at 4,000,000.
def _allowed_alias_ratio(decodes: int) -> float:
    if decodes <= 400_000:
        return 0.99
    if decodes >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decodes - 400_000) / 3_600_000


def _excessive(decodes: int, aliased: int) -> bool:
    return aliased > 100 and decodes > 1000 and aliased / decodes > _allowed_alias_ratio(decodes)


# An alias ("*name") or an anchor ("&name") where a node may start: after a space, "[", "{", "," or the
# ":" of a quoted key; a "*" or "&" inside a word or a quoted string is none. A document can only hold
# an alias when it also holds an anchor (go-yaml and PyYAML refuse an unknown one), so a file with
# neither skips the count; a false match (" *word" in prose next to an anchor) only costs the count.
_ALIAS = re.compile(r"(?:^|[ \t\[{,:])\*[^ \t\r\n,\[\]{}]", re.M)
_ANCHOR = re.compile(r"(?:^|[ \t\[{,:])&[^ \t\r\n,\[\]{}]", re.M)


def may_alias(text: str) -> bool:
    return _ANCHOR.search(text) is not None and _ALIAS.search(text) is not None


@dataclass
class Decodes:
    """go-yaml's counts in one document: its decodes, and those through an alias."""

    total: int = 1  # the document node
    aliased: int = 0


def check_aliasing(root: yaml.Node, count: Decodes | None = None) -> None:
    """Refuses a document go-yaml refuses for its aliases: one that contains itself, or one that
    expands past go-yaml's limit (an "alias bomb": a few lines that expand into billions of nodes).
    go-yaml counts one decode per node as it walks the document, every alias decoding its anchor's
    node again; the counts are computed here in one walk of PyYAML's graph, where an alias is a node
    met again, without expanding anything: a node's expansion is the decodes counted between entering
    and leaving it, and an alias to it adds as many. ``count`` goes on from the nodes before ``root`` in
    its document (the items of a List read one by one)."""
    count = Decodes() if count is None else count
    decodes, aliased = count.total, count.aliased
    entered: set[int] = set()
    on_path: set[int] = set()
    sizes: dict[int, int] = {}  # collection node -> its decodes; a scalar's is 1
    # (node, its parent, decodes before it when leaving it else -1)
    stack: list[tuple[yaml.Node, yaml.Node | None, int]] = [(root, None, -1)]
    while stack:
        node, parent, before = stack.pop()
        key = id(node)
        if before >= 0:
            on_path.discard(key)
            sizes[key] = decodes - before
            continue
        if key in entered:
            # The alias itself is not in the graph: its line is the one of the node it is in.
            line = node.start_mark.line if parent is None else parent.start_mark.line
            if key in on_path:
                raise Unreadable("anchor value contains itself", line)
            size = sizes.get(key, 1)
            decodes += 1 + size
            aliased += size
        else:
            entered.add(key)
            line = node.start_mark.line
            decodes += 1
            if not isinstance(node, yaml.ScalarNode):
                on_path.add(key)
                stack.append((node, parent, decodes - 1))
                stack.extend((child, node, -1) for child in reversed(_children(node)))
        # The allowed share never falls below 10%: most decodes need no closer look.
        if aliased * 10 > decodes and _excessive(decodes, aliased):
            raise Unreadable("document contains excessive aliasing (kubectl refuses it, as go-yaml limits "
                             "what aliases may expand to)", line)
    count.total, count.aliased = decodes, aliased


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        # A merge's key is not decoded, its value is.
        return [n for key, value in node.value for n in ((value,) if key.tag == _MERGE else (key, value))]
    return []
