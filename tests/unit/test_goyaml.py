"""The reading of manifests as kubectl reads them, where no apiserver is needed to tell (the comparison
with the real kubectl and apiserver is tests/check/test_check_reads_as_kubectl.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from webhook.check.apply import created
from webhook.documents import DocumentError, load_path, parse_text
from webhook.goyaml import may_alias, resolve


def bomb(levels: int) -> str:
    lines = ["kind: Pod", "metadata: {name: bomb}", "x0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once_naming_file_and_line() -> None:
    started = time.monotonic()
    with pytest.raises(DocumentError, match=r"^b.yaml:6: document contains excessive aliasing"):  # x3
        parse_text(bomb(30), "b.yaml")  # 10^30 nodes once expanded
    assert time.monotonic() - started < 1


def test_aliasing_under_go_yamls_limit_is_read() -> None:
    [doc] = parse_text(bomb(2), "b.yaml")
    assert doc.obj["x2"][9][9][9] == "lol"


def test_an_anchor_containing_itself_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"^s.yaml:2: anchor value contains itself"):
        parse_text("kind: Pod\nspec: &s {x: [*s]}\n", "s.yaml")


@pytest.mark.parametrize(("text", "value"), [
    ("2024-01-01", "2024-01-01"), ("y", True), ("Off", False), ("1e6", 1e6), ("08", 8.0), ("0755", 493),
    ("-0b101", -5), ("1_000", 1000), ("10:20:30:40:50:59", "10:20:30:40:50:59"), ("=", "="), ("+.inf", float("inf")),
    ("18446744073709551615", 2**64 - 1), ("+18446744073709551615", 1.8446744073709552e19), ("1e400", "1e400"),
    ("._5", "._5"), ("0x", "0x"),
])
def test_plain_scalars_resolve_as_go_yaml_v2_resolves_them(text: str, value: object) -> None:
    assert resolve(text) == value
    assert type(resolve(text)) is type(value)


@pytest.mark.parametrize(("text", "value"), [
    ("1e6", 1000000), ("1000000.0", 1000000), ("-0.0", 0), ("1.5", 1.5), ("1e21", 1e21),
    # Past int64: a float64, which Go prints with its shortest digits; from 1e21 on in exponent form.
    ("9223372036854775808", 9223372036854776000), ("123456789012345678901234567890", 1.2345678901234568e29),
])
def test_json_numbers_are_what_the_apiserver_hands_on(tmp_path: Path, text: str, value: object) -> None:
    (tmp_path / "n.json").write_text(f'{{"kind": "ConfigMap", "n": {text}}}')
    [doc] = load_path(str(tmp_path / "n.json"))
    assert doc.obj["n"] == value
    assert type(doc.obj["n"]) is type(value)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_its_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    (tmp_path / "u.yaml").write_bytes("\ufeffkind: Pod\nmetadata: {name: é}\n".encode(encoding))
    assert [d.obj for d in load_path(str(tmp_path / "u.yaml"))] == [{"kind": "Pod", "metadata": {"name": "é"}}]


def test_broken_utf16_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "u.yaml").write_bytes(b"\xff\xfek\x00i\x00n")  # an odd number of bytes
    with pytest.raises(DocumentError, match=r"u.yaml: not UTF-16-LE text, though it starts with its byte order "
                                            r"mark: truncated data at byte 6; save it as UTF-8$"):
        load_path(str(tmp_path / "u.yaml"))


@pytest.mark.parametrize(("make", "what"), [
    (lambda p: p.symlink_to(p.parent / "gone.yaml"), "a symbolic link to nothing"),
    (lambda p: p.symlink_to(p.parent / "sub"), "a symbolic link to a directory"),
    (lambda p: os.mkfifo(p), "not a regular file"),
])
def test_an_entry_of_a_directory_that_is_no_file_is_refused(tmp_path: Path, make: object, what: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "ok.yaml").write_text("kind: Pod\n")
    assert callable(make)
    make(tmp_path / "net.yaml")
    with pytest.raises(DocumentError, match=rf"^{tmp_path / 'net.yaml'}: cannot read: {what}$"):
        load_path(str(tmp_path))


def test_created_drops_the_nulls_of_maps_as_kubectl_apply_does() -> None:
    manifest = {"kind": "Pod", "metadata": {"labels": None, "name": "p"}, "spec": {"x": [None, {"a": None, "b": 1}]}}
    assert created(manifest) == {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": [None, {"b": 1}]}}


@pytest.mark.parametrize("text", ["a: *x", "- *x", "[*a, b]", "{a: 1, b: *a}", '{"a":*b}', "<<: *base", "? *k\n: v",
                                  "a:\t*x", "*a : v"])
@pytest.mark.parametrize("anchor", ["a: &x 1", "- &x 1", "[&a b]", "{a: 1, b: &a c}", '{"a":&b 1}', "? &k a\n: v",
                                    "a:\t&x 1", "&a a: v"])
def test_every_place_an_alias_may_stand_has_it_counted(anchor: str, text: str) -> None:
    # The count is skipped for a text where may_alias finds none: it must find every alias, after an
    # anchor wherever one may stand.
    assert may_alias(f"{anchor}\n{text}")


@pytest.mark.parametrize("text", ['a: "*x"', "a: b*c", "a: '*'", "a: '*.example.com'",
                                  # An alias needs an anchor: prose with a "*" costs no count.
                                  "note: see *docs* for details", "a: *x"])
def test_a_star_that_is_no_alias_costs_no_count(text: str) -> None:
    assert not may_alias(text)
