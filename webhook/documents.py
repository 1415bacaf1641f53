"""Reading Kubernetes objects from YAML/JSON files: multi-document YAML, ``kind: List`` flattened,
each object with the line it starts on (for CI annotations and error messages)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from webhook.cni.gojson import go_number, lone_surrogates_repaired
from webhook.goyaml import Decodes, Loader, Unreadable, check_aliasing, may_alias
from webhook.heap import no_cyclic_gc

SUFFIXES = (".yaml", ".yml", ".json")
#: The source name of what is read from standard input (PATH "-").
STDIN = "<stdin>"


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


#: (line of the object, the object, lines of its List items when it is a List)
_Found = tuple[int, Any, list[int]]


def _is_list(obj: Any) -> bool:
    # kubectl takes an object with "items", whatever its kind, for a list of objects (apimachinery's
    # unstructured decoding), and refuses it unless they are a list (null too, in its validation):
    # `kubectl get a,b -o yaml` prints a List, typed lists (PodList) the same.
    return isinstance(obj, dict) and "items" in obj


def _list_item(item: Any, source: str, line: int) -> dict[str, Any]:
    """An item of a List as kubectl takes it: an object, and not a list itself (kubectl takes a List's
    items apart once, and fails on a list among them)."""
    if not isinstance(item, dict):
        raise DocumentError(f"{source}:{line}: List item is not an object")
    if isinstance(item.get("items"), list):
        raise DocumentError(f"{source}:{line}: a List inside a List: kubectl cannot read it (it takes only the "
                            "outer List's items apart, and refuses a list among them)")
    return item


# kubectl cuts a YAML stream into pieces before go-yaml reads any (apimachinery's YAMLReader): at every
# line that starts with "---" and holds nothing else but spaces or a comment ("---#c" too); any other
# text after the dashes ("----", "--- a: 1") is an error. A separator met before any line of its piece
# stays in it. go-yaml then reads the first document of each piece and ignores the rest: a "%YAML"
# directive becomes a piece of its own, without its document, and is refused.
_SEPARATOR = re.compile(r"^---([^\n]*)(?:\n|\Z)", re.M)
# What Go's strings.TrimSpace trims (unicode.IsSpace): not a byte order mark.
_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def _pieces(text: str, source: str) -> Iterator[tuple[int, int, int]]:
    """The pieces kubectl cuts ``text`` into: (start, end, 1-based line of start)."""
    start, line, counted = 0, 1, 0
    for separator in _SEPARATOR.finditer(text):
        after = separator.group(1).strip(_GO_SPACE)
        if after and not after.startswith("#"):
            at = line + text.count("\n", counted, separator.start())
            raise DocumentError(f"{source}:{at}: invalid document separator: {after[:40]!r} follows '---' "
                                "(kubectl allows only spaces or a comment there)")
        if separator.start() > start:
            yield start, separator.start(), line
            line += text.count("\n", counted, separator.end())
            start = counted = separator.end()
    if start < len(text):
        yield start, len(text), line


def _yaml_documents(text: str, source: str, first_line: int = 1, decodes: Decodes | None = None) -> list[_Found]:
    """The documents of ``text``, which starts on line ``first_line`` of ``source``, one a piece;
    ``decodes`` counts on for a document ``text`` is part of."""
    found: list[_Found] = []
    for start, end, line in _pieces(text, source):
        piece = text[start:end]
        # Only an alias can make a document expand; most have none and skip the count.
        aliases = decodes is not None or may_alias(piece)
        document = _yaml_document(piece, source, first_line + line - 1, decodes, aliases)
        if document is not None:
            found.append(document)
    return found


def _yaml_document(text: str, source: str, first_line: int, decodes: Decodes | None, aliases: bool) -> _Found | None:
    """The first document of a piece, as go-yaml reads it; what follows it ("..." then more) is not
    read. None when the piece holds none."""
    loader = Loader(text)
    shift = first_line - 1
    node: yaml.Node | None = None
    try:
        if not loader.check_node():
            return None
        node = loader.get_node()
        if node is None:
            return None
        if aliases:
            check_aliasing(node, decodes)
        obj = loader.construct_document(node)
        return (node.start_mark.line + 1 + shift, obj,
                [line + shift for line in _items_lines(node)] if _is_list(obj) else [])
    except Unreadable as exc:
        line = exc.line if exc.line is not None else node.start_mark.line if node is not None else None
        raise DocumentError(f"{source}{'' if line is None else f':{line + 1 + shift}'}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        raise DocumentError(_yaml_error(exc, source, shift)) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: not valid YAML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        # Read, but not representable: an integer past Python's digit limit, nesting past its stack.
        where = f"{source}:{node.start_mark.line + 1 + shift}" if node is not None else source
        raise DocumentError(f"{where}: cannot read the document: {exc}") from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError, source: str, shift: int) -> str:
    """The error as an editor points at it: the line (and column) of the problem, and where the
    construct it broke began (an unclosed bracket is found lines after it was opened)."""
    def at(mark: yaml.Mark) -> str:
        return f"line {mark.line + 1 + shift}, column {mark.column + 1}"

    mark = exc.problem_mark or exc.context_mark
    message = f"{source}:{mark.line + 1 + shift}" if mark else source
    message += f": not valid YAML: {exc.problem or exc.context}"
    if exc.problem_mark:
        message += f" at column {exc.problem_mark.column + 1}"
    if exc.problem and exc.context:
        message += f", {exc.context}" + (f" that starts at {at(exc.context_mark)}" if exc.context_mark else "")
    return message


_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int, over: re.Pattern[str] = _WS) -> int:
    """The position after what ``over`` matches at ``pos`` (by default JSON whitespace)."""
    match = over.match(text, pos)
    return match.end() if match else pos


# The numbers of a JSON file as the apiserver hands them to a webhook: kubectl and the apiserver decode
# a number without a dot that fits an int64 as one, any other as a float64 (refusing what is out of its
# range), and Go prints a float64 back without its fraction when it has none: 1e6 and 1000000.0 arrive
# as 1000000, 1e21 as a float.
def _json_int(text: str) -> int | float:
    # 20 characters hold every int64; the bound also keeps int() from its digit limit.
    return _json_number(int(text) if len(text) <= 20 else float(text), text)


def _json_float(text: str) -> int | float:
    return _json_number(float(text), text)


def _json_number(value: int | float, text: str) -> int | float:
    number = go_number(value)
    if number is None:
        raise Unreadable(f"the number {text[:40]} is out of the range of a float64: kubectl cannot read it")
    return number


def _json_constant(name: str) -> Any:
    # Not JSON to Go: the file is then read as YAML, as kubectl does, where NaN is a string.
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_float=_json_float, parse_int=_json_int, parse_constant=_json_constant)


def _json_object(text: str, pos: int, keep_items: bool) -> tuple[dict[str, Any], int, list[int]]:
    """The object at ``pos``, read member by member so that the offsets of the elements of its
    ``items`` array are known; returns (object, end, offsets). Without ``keep_items`` each element is
    read (so the whole text is known to be JSON) and dropped: a big List is then read twice, one
    element at a time, instead of held whole."""
    obj: dict[str, Any] = {}
    offsets: list[int] = []
    pos = _skip(text, pos + 1)
    if text.startswith("}", pos):
        return obj, pos + 1, offsets
    while True:
        key, pos = _JSON.raw_decode(text, pos)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        pos = _skip(text, pos)
        if not text.startswith(":", pos):
            raise ValueError("expected ':'")
        pos = _skip(text, pos + 1)
        if key == "items" and text.startswith("[", pos):
            items: list[Any] = []
            offsets = []
            pos = _skip(text, pos + 1)
            while not text.startswith("]", pos):
                offsets.append(pos)
                item, pos = _JSON.raw_decode(text, pos)
                if keep_items:
                    items.append(item)
                pos = _skip(text, pos)
                if text.startswith(",", pos):
                    pos = _skip(text, pos + 1)
                elif not text.startswith("]", pos):
                    raise ValueError("expected ',' or ']'")
            obj[key], pos = items, pos + 1
        else:
            obj[key], pos = _JSON.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif text.startswith("}", pos):
            return obj, pos + 1, offsets
        else:
            raise ValueError("expected ',' or '}'")


def _json_documents(text: str, source: str,
                    keep: bool = True) -> tuple[list[_Found], list[int], list[list[int]]] | None:
    """A JSON file read by the json module, with the same objects and lines the YAML reader gives, at
    a fraction of its cost; None when the text is not plain JSON (the YAML reader then decides, and
    words any error). Several objects one after the other are read as kubectl reads them: a stream
    (`jq -c` output, `kubectl get -o json` twice). Returns the objects, the offset each starts at and
    the offsets of each one's List items. Without ``keep`` every value is read (so the whole text is
    known to be JSON) and dropped, but for a List's own keys: a stream or a big List is then read
    twice, one object at a time, instead of held whole."""
    found: list[_Found] = []
    starts: list[int] = []
    offsets_of: list[list[int]] = []
    pos = _skip(text, 0)
    at, line = 0, 1
    try:
        while pos < len(text):
            obj: Any
            if text.startswith("{", pos):
                obj, end, offsets = _json_object(text, pos, keep)
            else:
                obj, end = _JSON.raw_decode(text, pos)
                offsets = []
            # ``line`` is the line of ``at``: counting goes on from the last offset counted to.
            line += text.count("\n", at, pos)
            at, start_line = pos, line
            if not _is_list(obj):
                offsets = []
                if not keep:
                    obj = None
            lines: list[int] = []
            for offset in offsets:
                line += text.count("\n", at, offset)
                at = offset
                lines.append(line)
            found.append((start_line, obj, lines))
            starts.append(pos)
            offsets_of.append(offsets)
            pos = _skip(text, end)
    except Unreadable as exc:
        raise DocumentError(f"{source}:{text.count(chr(10), 0, pos) + 1}: {exc.message}") from None
    except (ValueError, RecursionError, IndexError):
        return None
    return (found, starts, offsets_of) if found else None


def _json_error(text: str) -> tuple[json.JSONDecodeError, int, int] | None:
    """Where a text that starts as JSON stops being JSON: the error, how many objects came before and
    the offset after them. None when it is JSON."""
    pos, read = _skip(text, 0), 0
    try:
        while pos < len(text):
            pos = _skip(text, _JSON.raw_decode(text, pos)[1])
            read += 1
    except json.JSONDecodeError as exc:
        return exc, read, pos
    except ValueError as exc:  # NaN, Infinity: no JSON to Go
        return json.JSONDecodeError(str(exc), text, pos), read, pos
    return None


def _json_stream(text: str, source: str) -> Iterator[Document] | None:
    """The objects of a JSON file one at a time, each read only when asked for (so a big cluster state
    is never held whole); None when the YAML reader has to decide."""
    read = _json_documents(text, source, keep=False)
    if read is None:
        return None
    found, starts, offsets_of = read

    def documents() -> Iterator[Document]:
        index = 0
        for (line, obj, lines), start, offsets in zip(found, starts, offsets_of, strict=True):
            if not offsets:
                whole = _JSON.raw_decode(text, start)[0] if obj is None else obj
                for doc in _documents([(line, whole, lines)], source):
                    yield Document(source, doc.line, index, doc.obj)
                    index += 1
                continue
            for offset, item_line in zip(offsets, lines, strict=True):
                item = _list_item(_JSON.raw_decode(text, offset)[0], source, item_line)
                yield Document(source, item_line, index, item)
                index += 1

    return documents()


# A List as `kubectl get -o yaml` writes it: one document, a mapping at column 0 with an `items:` key
# whose items each start with "-" at one indentation. Lines at column 0 are structure in such a file
# (the content of a block scalar and the rest of a multi-line scalar are indented), so these patterns
# find the items without reading them.
_ITEMS_KEY = re.compile(r"^items:[ \t]*(?:#[^\n]*)?\n", re.M)
_DOCUMENT_MARKER = re.compile(r"^(?:---|\.\.\.)(?:[ \t]|$)", re.M)
_BLANK_OR_COMMENT_LINES = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")
_SPACES = re.compile(" *")


def _yaml_stream(text: str, source: str) -> Iterator[Document] | None:
    """The items of a YAML List file one at a time, each parsed alone; None when the file is not one
    List laid out as kubectl writes it (the whole-file reader then decides). libyaml builds the nodes
    of a whole document before its first object: a `kubectl get -o yaml` of 14 MiB took 600 MiB."""
    keys = list(_ITEMS_KEY.finditer(text))
    markers = list(_DOCUMENT_MARKER.finditer(text))
    if len(keys) != 1 or len(markers) > 1 or (markers and _skip(text, 0, _BLANK_OR_COMMENT_LINES) < markers[0].start()):
        return None
    body = _skip(text, keys[0].end(), _BLANK_OR_COMMENT_LINES)
    indent = _skip(text, body, _SPACES) - body
    if text[body + indent: body + indent + 2] not in ("- ", "-\n"):
        return None
    # The items end at the first line that is neither one of them (an item's "-" or a line indented
    # deeper) nor blank nor a comment: the List's next key.
    after = re.compile(rf"^(?! {{{indent + 1}}}| {{{indent}}}-[ \n]| *#| *$)", re.M).search(text, body)
    end = after.start() if after else len(text)
    starts = [m.start() for m in re.compile(rf"^ {{{indent}}}-[ \n]", re.M).finditer(text, body, end)]
    # The List without its items, as many lines kept, so that an error names the right one.
    header = text[:keys[0].start()] + "items: []" + "\n" * text.count("\n", keys[0].start(), end) + text[end:]
    try:
        found = _yaml_documents(header, source)
    except DocumentError:
        return None
    if len(found) != 1 or not _is_list(found[0][1]) or found[0][1]["items"]:
        return None

    def items() -> Iterator[Document]:
        line = text.count("\n", 0, body) + 1
        # go-yaml counts aliases over the whole List: every item is counted when one may have an alias.
        decodes = Decodes() if may_alias(text) else None
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else end
            # The item alone, its "-" turned into a space: every column stays where it was.
            chunk = text[start:start + indent] + " " + text[start + indent + 1:stop]
            try:
                [(at, obj, _)] = _yaml_documents(chunk, source, line, decodes)
            except (DocumentError, ValueError):
                # Not valid alone (an alias of an anchor in another item, an empty item, a broken
                # file): the whole file decides, and words the error.
                yield from _documents(_yaml_documents(text, source), source)[i:]
                return
            yield Document(source, at, i, _list_item(obj, source, at))
            line += chunk.count("\n")

    return items()


def parse_text(text: str, source: str) -> list[Document]:
    return _documents(_yaml_documents(text, source), source)


def _documents(found: list[_Found], source: str) -> list[Document]:
    documents: list[Document] = []
    for line, obj, lines in found:
        if obj is None:
            continue
        if not isinstance(obj, dict):
            found_type = type(obj).__name__
            raise DocumentError(f"{source}:{line}: expected a Kubernetes object (a mapping), found {found_type}")
        if _is_list(obj):
            items = obj["items"]
            if not isinstance(items, list):
                what = "an object" if isinstance(items, dict) else f"the scalar {json.dumps(items)[:40]}"
                raise DocumentError(f"{source}:{line}: items is {what}, not a list: kubectl cannot read the object")
            for i, item in enumerate(items):
                item_line = lines[i] if i < len(lines) else line
                documents.append(Document(source, item_line, len(documents), _list_item(item, source, item_line)))
        else:
            documents.append(Document(source, line, len(documents), obj))
    return documents


def load_path(path: str) -> list[Document]:
    """Objects from a file, a directory (recursive *.yaml, *.yml, *.json, sorted) or ``-`` (stdin)."""
    if path == "-":
        return _parse(_read_stdin(), STDIN)
    p = Path(path)
    if p.is_dir():
        return [d for f in _manifest_files(p) for d in _load_file(f)]
    return _load_file(p)


def load_manifests(path: str) -> list[Document]:
    """The objects of load_path that kubectl apply would send: one without a kind or an apiVersion is
    refused, as kubectl refuses it before sending anything (a manifest that cannot be applied is an
    unreadable input, not an object of a kind check skips)."""
    documents = load_path(path)
    for doc in documents:
        missing = [key for key in ("apiVersion", "kind") if not doc.obj.get(key) or not isinstance(doc.obj[key], str)]
        if missing:
            raise DocumentError(f"{doc.source}:{doc.line}: {' and '.join(missing)} not set: kubectl cannot apply "
                                "an object without them")
    return documents


def _manifest_files(root: Path) -> list[Path]:
    """The *.yaml, *.yml and *.json files under ``root``, sorted. Hidden directories below it (.git,
    .venv, .github) are not entered: they hold no manifests to apply, but may hold YAML that is not
    one (workflows) or a great many files; one named as ``root`` is read. A directory that cannot be
    listed is an error: its manifests would be left out of the check without a word."""
    def unreadable(exc: OSError) -> None:
        raise DocumentError(f"{exc.filename}: cannot read the directory: {exc.strerror or exc}")

    files: list[Path] = []
    # Symbolic links to directories are not followed, as Path.rglob did before: a link to a parent
    # would never end.
    for directory, subdirectories, names in os.walk(root, onerror=unreadable):
        # A link to a directory is listed with the directories; kubectl tries to read it, as any other
        # entry with a manifest's suffix.
        links = [d for d in subdirectories if Path(directory, d).is_symlink()]
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".") and d not in links]
        for name in (*names, *links):
            if (f := Path(directory, name)).suffix in SUFFIXES:
                files.append(_readable(f))
    return sorted(files)


def _readable(file: Path) -> Path:
    """``file`` when it is a file (through links); kubectl fails on any other entry, and a manifest left
    out without a word would be a check passed that was never made."""
    if file.is_file():
        return file
    what = ("a symbolic link to nothing" if not file.exists() else "a symbolic link to a directory"
            if file.is_dir() else "not a regular file")
    raise DocumentError(f"{file}: cannot read: {what}")


_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def _decode(data: bytes, source: str) -> str:
    """``data`` as UTF-8, whatever the locale: manifests are UTF-8 (kubectl reads them so), and a file must
    read the same on every machine. A UTF-16 byte order mark makes it UTF-16 of that order, as kubectl's
    reader (unicode.BOMOverride) takes it: Windows editors save so."""
    utf16 = _UTF16_BOMS.get(data[:2])
    if utf16 is not None:
        try:
            return data[2:].decode(utf16)
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{source}: not {utf16.upper()} text, though it starts with its byte order mark: "
                                f"{exc.reason} at byte {exc.start + 2}; save it as UTF-8") from None
    try:
        return _go_strings(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        if (json_text := _go_json_text(data)) is not None:
            return json_text
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(f"{source}:{line}: not UTF-8 text: byte 0x{data[exc.start]:02x} at column "
                            f"{exc.start - line_start + 1} ({exc.reason}); save it as UTF-8") from None


def _go_strings(text: str) -> str:
    """A text that starts as JSON with its lone surrogates as Go's JSON decoder reads them (Python's
    keeps them, a string no encoder writes); any other text as it is."""
    return lone_surrogates_repaired(text) if text.startswith("{", _skip(text, 0)) else text


def _go_json_text(data: bytes) -> str | None:
    """A JSON text that is not all UTF-8 as kubectl reads it, what is no UTF-8 in a string U+FFFD;
    None when it is not JSON so read (then it is no text: a binary file, a YAML one go-yaml refuses),
    so that the error says the file is not UTF-8."""
    if not data.lstrip(b" \t\r\n").startswith(b"{"):
        return None
    # A broken sequence is one U+FFFD as for Python's "replace" (the apiserver sends "\xe2\x82" so).
    text = data.decode("utf-8", "replace")
    try:
        # Outside a string a U+FFFD is no JSON: every one is in a string.
        return None if _json_error(text) else _go_strings(text)
    except (ValueError, RecursionError, Unreadable):
        return None


def _read_stdin() -> str:
    # The bytes, decoded as a file is: sys.stdin decodes with the locale's encoding and raises (or
    # smuggles in surrogates) on anything else.
    if sys.stdin is None:
        raise DocumentError(f"{STDIN}: there is no standard input (it is closed)")
    try:
        data = sys.stdin.buffer.read()
    except OSError as exc:
        raise DocumentError(f"{STDIN}: cannot read: {exc.strerror or exc}") from None
    return _decode(data, STDIN)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read: {exc}") from None
    return _decode(data, str(path))


def _load_file(path: Path) -> list[Document]:
    return _parse(_read(path), str(path), is_json=path.suffix == ".json")


def _parse(text: str, source: str, *, is_json: bool = False) -> list[Document]:
    with no_cyclic_gc():
        # What starts with "{" is read as JSON first, whatever its name, as kubectl sniffs it: a stream
        # of JSON objects is JSON only.
        looks_json = text.startswith("{", _skip(text, 0))
        read = _json_documents(text, source) if is_json or looks_json else None
        if read is not None:
            return _documents(read[0], source)
        if not (is_json or looks_json):
            return parse_text(text, source)
        try:
            found = _json_error(text)
        except (RecursionError, Unreadable) as exc:
            raise DocumentError(f"{source}: cannot read the document: {exc}") from None
        # kubectl reads JSON objects one after the other; where one is not JSON after two were, the
        # stream is JSON and that is the error; after none or one, it reads the rest as YAML.
        error, done, stop = found if found is not None else (None, 0, 0)
        json_error = DocumentError(f"{source}:{error.lineno}: not valid JSON: {error.msg}") if error else None
        if json_error and looks_json and done >= 2:
            raise json_error from None
        first: list[_Found] = []
        start = 0
        if looks_json and done == 1:
            start = _skip(text, 0)
            first = [(text.count("\n", 0, start) + 1, _JSON.raw_decode(text, start)[0], [])]
            start = stop
        try:
            return _documents(first + _yaml_documents(text[start:], source, text.count("\n", 0, start) + 1), source)
        except DocumentError:
            # A file named .json, or one whose first object was JSON, is reported as JSON: where it
            # stops being JSON, not why it is not YAML.
            if json_error is None or not (is_json or done):
                raise
            raise json_error from None


def iter_objects(paths: list[str]) -> Iterator[Document]:
    """The objects of load_path for each path in turn. The items of a JSON List file come one at a
    time, so that a consumer keeping little of each (a cluster state of 50,000 pods) never holds
    them all: the server's memory stays near what it keeps."""
    for path in paths:
        file = Path(path)
        if path != "-" and file.suffix == ".json" and file.is_file():
            with no_cyclic_gc():
                stream = _json_stream(_read(file), path)
                if stream is not None:
                    yield from stream
                    continue
        if path != "-" and file.suffix in (".yaml", ".yml") and file.is_file():
            with no_cyclic_gc():
                stream = _yaml_stream(_read(file), path)
                if stream is not None:
                    yield from stream
                    continue
        yield from load_path(path)
