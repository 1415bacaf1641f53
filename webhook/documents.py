"""Reading Kubernetes objects from YAML/JSON files: multi-document YAML, ``kind: List`` flattened,
each object with the line it starts on (for CI annotations and error messages)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml", ".json")


class DocumentError(ValueError):
    """An input that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Document:
    source: str
    #: 1-based line of the object's first line in its file.
    line: int
    #: Position among the objects of the file (after List flattening).
    index: int
    obj: dict[str, Any]


def _items_lines(node: yaml.Node) -> list[int]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def parse_text(text: str, source: str) -> list[Document]:
    loader = yaml.SafeLoader(text)
    found: list[tuple[int, Any, yaml.Node]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            found.append((node.start_mark.line + 1, loader.construct_document(node), node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise DocumentError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()

    documents: list[Document] = []
    for line, obj, node in found:
        if obj is None:
            continue
        if not isinstance(obj, dict):
            found_type = type(obj).__name__
            raise DocumentError(f"{source}:{line}: expected a Kubernetes object (a mapping), found {found_type}")
        # `kubectl get a,b -o yaml` prints a List; typed lists (PodList, ...) hold items the same way.
        kind = obj.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
            items = obj.get("items") or []
            lines = _items_lines(node)
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise DocumentError(f"{source}:{lines[i] if i < len(lines) else line}: List item is not an object")
                documents.append(Document(source, lines[i] if i < len(lines) else line, len(documents), item))
        else:
            documents.append(Document(source, line, len(documents), obj))
    return documents


def load_path(path: str) -> list[Document]:
    """Objects from a file, a directory (recursive *.yaml, *.yml, *.json, sorted) or ``-`` (stdin)."""
    if path == "-":
        return parse_text(sys.stdin.read(), "<stdin>")
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
        return [d for f in files for d in _load_file(f)]
    return _load_file(p)


def _load_file(path: Path) -> list[Document]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: cannot read: {exc}") from None
    try:
        return parse_text(text, str(path))
    except DocumentError:
        if path.suffix != ".json":
            raise
        # JSON indented with tabs is valid JSON but not valid YAML.
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        return parse_text(json.dumps(obj, indent=1), str(path))


def iter_objects(paths: list[str]) -> Iterator[Document]:
    for path in paths:
        yield from load_path(path)
