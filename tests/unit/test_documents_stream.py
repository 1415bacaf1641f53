"""A YAML List read item by item (iter_objects, for --cluster-state) gives exactly what the whole-file
reader gives (load_path): the same objects, lines and positions, or the same error."""

from __future__ import annotations

import gc
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.documents import Document, DocumentError, _yaml_stream, iter_objects, load_path


class _NoAliases(yaml.SafeDumper):
    """As kubectl writes: every value in full, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _IndentedItems(_NoAliases):
    """Sequence items indented under their key (yq, some editors), unlike kubectl."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def read_both(path: Path) -> tuple[list[Document] | str, list[Document] | str]:
    def read(reader: Any) -> list[Document] | str:
        try:
            return list(reader())
        except DocumentError as exc:
            return f"error: {exc}"

    return read(lambda: load_path(str(path))), read(lambda: iter_objects([str(path)]))


def assert_streamed_as_whole(tmp_path: Path, text: str, *, streams: bool = True) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(text)
    whole, streamed = read_both(path)
    assert streamed == whole
    assert (_yaml_stream(text, str(path)) is not None) is streams


# Strings that look like the structure the item finder looks for, at any place in an object.
tricky = st.sampled_from(["- a", "items:", "---", "...", "-", "# not a comment", "a\n- b\nitems:\n---\n",
                          "  - indented\n", "multi\nline\n\ntext", "", "key: value", "'quoted'", "\t"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12), tricky)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=8), tricky), inner, max_size=3)),
    max_leaves=12)
objects = st.fixed_dictionaries({"apiVersion": st.just("v1"), "kind": st.sampled_from(["Node", "Pod"]),
                                 "metadata": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8)})},
                                optional={"spec": values, "status": values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(objects, max_size=6), dumper=st.sampled_from([_NoAliases, _IndentedItems]),
       after=st.booleans())
def test_any_list_streams_as_the_whole_file_reads_it(tmp_path: Path, items: list[dict[str, Any]],
                                                     dumper: type[yaml.SafeDumper], after: bool) -> None:
    document: dict[str, Any] = {"apiVersion": "v1", "items": items}
    if after:  # kubectl puts kind and metadata after the items (keys in order)
        document |= {"kind": "List", "metadata": {"resourceVersion": ""}}
    else:
        document = {"kind": "List", "metadata": {"resourceVersion": ""}, **document}
    text = yaml.dump(document, Dumper=dumper, default_flow_style=False, sort_keys=False)
    assert_streamed_as_whole(tmp_path, text, streams=bool(items))


KUBECTL_LIST = """\
# kubectl get nodes,pods -o yaml
apiVersion: v1
items:
- kind: Node
  metadata: {name: a}
  apiVersion: v1

# a comment between items
- apiVersion: v1
  kind: Pod
  metadata:
    annotations:
      note: |
        - not an item
        items:
        ---
    name: p
-
  apiVersion: v1
  kind: Pod
  metadata: {name: q}
kind: List
metadata:
  resourceVersion: ""
"""


def test_a_kubectl_list_streams_with_each_items_line(tmp_path: Path) -> None:
    assert_streamed_as_whole(tmp_path, KUBECTL_LIST)
    docs = list(iter_objects([str(tmp_path / "state.yaml")]))
    assert [(d.line, d.index, d.obj["metadata"]["name"]) for d in docs] == [(4, 0, "a"), (9, 1, "p"), (19, 2, "q")]
    assert docs[1].obj["metadata"]["annotations"]["note"] == "- not an item\nitems:\n---\n"


def test_the_items_end_at_the_next_key_of_the_list(tmp_path: Path) -> None:
    assert_streamed_as_whole(tmp_path, "kind: NodeList\nitems:\n- kind: Node\n  metadata: {name: a}\nmore:\n- 1\n")


def test_an_alias_across_items_is_read_by_the_whole_file(tmp_path: Path) -> None:
    shared = {"images": [{"names": ["app:1"]}]}
    text = yaml.dump({"apiVersion": "v1", "kind": "List",
                      "items": [{"kind": "Node", "metadata": {"name": n}, "status": shared} for n in "abc"]},
                     Dumper=yaml.SafeDumper)
    assert "&id001" in text
    assert_streamed_as_whole(tmp_path, text)


@pytest.mark.parametrize(("text", "error"), [
    (KUBECTL_LIST.replace("    name: p\n", "    name: [p\n"), r"state.yaml:19: not valid YAML"),
    (KUBECTL_LIST.replace("- kind: Node\n  metadata: {name: a}\n  apiVersion: v1\n", "- just text\n"),
     r"state.yaml:4: List item is not an object"),
    (KUBECTL_LIST.replace("-\n  apiVersion: v1\n  kind: Pod\n  metadata: {name: q}\n", "-\n"),
     r"state.yaml:18: List item is not an object"),
])
def test_a_broken_item_is_named_by_its_line(tmp_path: Path, text: str, error: str) -> None:
    assert_streamed_as_whole(tmp_path, text)
    with pytest.raises(DocumentError, match=error):
        list(iter_objects([str(tmp_path / "state.yaml")]))


@pytest.mark.parametrize("text", [
    "kind: Node\nmetadata: {name: a}\n---\nkind: Node\nmetadata: {name: b}\n",  # several documents
    "apiVersion: v1\nkind: List\nitems: []\n",
    "apiVersion: v1\nkind: List\nitems: [{kind: Node, metadata: {name: a}}]\n",
    "kind: List\nitems:\n  a: 1\n",  # items that are not a sequence
    "kind: Node\nmetadata: {name: a}\nspec:\n  items:\n  - 1\n",  # an items key, not at the top
])
def test_other_layouts_are_left_to_the_whole_file_reader(tmp_path: Path, text: str) -> None:
    assert_streamed_as_whole(tmp_path, text, streams=False)


CONCATENATED = (
    '{"kind": "Pod", "metadata": {"name": "a"}}\n'
    '{"kind": "Pod", "metadata": {"name": "b"}}{"kind": "List", "items": [\n'
    '  {"kind": "Pod", "metadata": {"name": "c"}},\n'
    '  {"kind": "Pod", "metadata": {"name": "d"}}]}\n'
)


@pytest.mark.parametrize("name", ["in.json", "in.yaml"])
def test_concatenated_json_objects_are_a_stream_as_for_kubectl(tmp_path: Path, name: str) -> None:
    # jq -c output, or two `kubectl get -o json` one after the other: kubectl applies every object.
    path = tmp_path / name
    path.write_text(CONCATENATED)
    whole, streamed = read_both(path)
    assert whole == streamed
    assert isinstance(whole, list)
    assert [(d.obj["metadata"]["name"], d.line, d.index) for d in whole] == [
        ("a", 1, 0), ("b", 2, 1), ("c", 3, 2), ("d", 4, 3)]


def test_concatenated_json_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(CONCATENATED.encode())))
    assert [d.obj["metadata"]["name"] for d in load_path("-")] == ["a", "b", "c", "d"]


def test_json_followed_by_yaml_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    path.write_text('{"kind": "Pod", "metadata": {"name": "a"}}\n---\nkind: Pod\nmetadata: {name: b}\n')
    assert [d.obj["metadata"]["name"] for d in load_path(str(path))] == ["a", "b"]


def test_a_json_stream_is_read_one_object_at_a_time(tmp_path: Path) -> None:
    """A `jq -c '.items[]'` file as --cluster-state: no more of it is held than of a List."""
    path = tmp_path / "state.json"
    path.write_text("".join(f'{{"kind": "Marker", "metadata": {{"name": "n{i}"}}}}\n' for i in range(1000)))

    def alive() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, dict) and o.get("kind") == "Marker")

    stream = iter_objects([str(path)])
    first = next(stream)
    assert first.obj["metadata"]["name"] == "n0"
    assert alive() <= 2, "the stream holds objects it has not yielded yet"
    assert [d.obj["metadata"]["name"] for d in stream][-1] == "n999"


def test_an_error_after_json_objects_is_named_where_it_is(tmp_path: Path) -> None:
    text = ('{\n "kind": "Pod",\n "metadata": {"name": "a"}\n}\n{"kind": "Pod"}\n'
            '{"kind": "Pod",\n "metadata": {"name": "b",}}\n')
    for name in ("in.json", "in.yaml"):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DocumentError, match=rf"^{re.escape(str(path))}:7: not valid JSON: Expecting property name"):
            load_path(str(path))
    # A YAML flow mapping that is no JSON at all keeps its YAML error.
    path = tmp_path / "flow.yaml"
    path.write_text("{a: [1,}\n")
    with pytest.raises(DocumentError, match="not valid YAML"):
        load_path(str(path))
