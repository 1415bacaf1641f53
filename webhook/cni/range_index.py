"""The cluster-wide index of address ranges: which NADs hand out addresses that overlap a given range.

An interval tree: a treap ordered by start address whose nodes carry the highest end address of
their subtree, so a query only descends where an overlap can still be found. A query costs
O(log n) to reach the first candidate plus O(log n) per overlapping range found; the ranges far from
the query are never compared.

The index is persistent: ``with_ranges`` and ``without`` return a new index that shares all but
O(log n) nodes with the old one, and an index never changes once built. A cache that rebuilds it
on every watch event can therefore publish it with one reference assignment, and readers (the
admission path) need no lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from webhook.cni.addresses import IPAddress
from webhook.cni.ipam import AddressRange

# IPv4 and IPv6 on one number line: IPv6 after the whole IPv4 space, so families never overlap.
_IPV6_BASE = 1 << 32

_MASK64 = (1 << 64) - 1


def _point(addr: IPAddress) -> int:
    return int(addr) if addr.version == 4 else _IPV6_BASE + int(addr)


def _priority(seq: int) -> int:
    # splitmix64: a deterministic, well-spread heap priority, so tree shapes (and the comparison
    # counts the tests check) do not depend on a random seed.
    z = (seq * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


_sequence = itertools.count()


@dataclass(frozen=True, slots=True)
class IndexedRange:
    """One range of one NAD in the index."""

    #: (namespace, name) of the NAD.
    owner: tuple[str, str]
    range: AddressRange
    start: int
    end: int
    #: Tells apart equal ranges (of different NADs, or of one NAD twice).
    seq: int

    @classmethod
    def of(cls, owner: tuple[str, str], rng: AddressRange) -> IndexedRange:
        return cls(owner, rng, _point(rng.first), _point(rng.last), next(_sequence))

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.start, self.end, self.seq)


class _Node:
    __slots__ = ("item", "key", "left", "max_end", "priority", "right")
    max_end: int

    def __init__(self, item: IndexedRange, priority: int, left: _Node | None, right: _Node | None) -> None:
        self.item = item
        self.key = item.key
        self.priority = priority
        self.left = left
        self.right = right
        self.max_end = max(
            item.end, left.max_end if left is not None else -1, right.max_end if right is not None else -1
        )


def _with_children(node: _Node, left: _Node | None, right: _Node | None) -> _Node:
    return _Node(node.item, node.priority, left, right)


def _split(node: _Node | None, key: tuple[int, int, int]) -> tuple[_Node | None, _Node | None]:
    """(keys < key, keys >= key), copying only the nodes on the path."""
    if node is None:
        return None, None
    if node.key < key:
        less, rest = _split(node.right, key)
        return _with_children(node, node.left, less), rest
    less, rest = _split(node.left, key)
    return less, _with_children(node, rest, node.right)


def _merge(low: _Node | None, high: _Node | None) -> _Node | None:
    """Join two treaps whose keys are all ordered low < high."""
    if low is None:
        return high
    if high is None:
        return low
    if low.priority > high.priority:
        return _with_children(low, low.left, _merge(low.right, high))
    return _with_children(high, _merge(low, high.left), high.right)


def _insert(node: _Node | None, new: _Node) -> _Node:
    if node is None or new.priority > node.priority:
        less, rest = _split(node, new.key)
        return _with_children(new, less, rest)
    if new.key < node.key:
        return _with_children(node, _insert(node.left, new), node.right)
    return _with_children(node, node.left, _insert(node.right, new))


def _remove(node: _Node | None, key: tuple[int, int, int]) -> _Node | None:
    if node is None:
        return None
    if key < node.key:
        return _with_children(node, _remove(node.left, key), node.right)
    if key > node.key:
        return _with_children(node, node.left, _remove(node.right, key))
    return _merge(node.left, node.right)


@dataclass
class Probe:
    """Counts the index entries a query compared with the query range (for tests and benchmarks)."""

    compared: int = 0


class RangeIndex:
    """An immutable set of IndexedRange; see the module docstring."""

    __slots__ = ("_root", "_size")

    def __init__(self, _root: _Node | None = None, _size: int = 0) -> None:
        self._root = _root
        self._size = _size

    def __len__(self) -> int:
        return self._size

    @classmethod
    def build(cls, items: Iterable[IndexedRange]) -> RangeIndex:
        return cls().with_ranges(items)

    def with_ranges(self, items: Iterable[IndexedRange]) -> RangeIndex:
        root, size = self._root, self._size
        for item in items:
            root = _insert(root, _Node(item, _priority(item.seq), None, None))
            size += 1
        return RangeIndex(root, size)

    def without(self, items: Iterable[IndexedRange]) -> RangeIndex:
        """The index without these entries (as returned by IndexedRange.of and stored here)."""
        root, size = self._root, self._size
        for item in items:
            root = _remove(root, item.key)
            size -= 1
        return RangeIndex(root, size)

    def __iter__(self) -> Iterator[IndexedRange]:
        stack: list[_Node] = []
        node = self._root
        while stack or node is not None:
            while node is not None:
                stack.append(node)
                node = node.left
            node = stack.pop()
            yield node.item
            node = node.right

    def overlapping(self, first: IPAddress, last: IPAddress, probe: Probe | None = None) -> list[IndexedRange]:
        """Every entry sharing at least one address with first..last (inclusive), by start address."""
        lo, hi = _point(first), _point(last)
        found: list[IndexedRange] = []
        if self._root is not None and self._root.max_end >= lo:
            _collect(self._root, lo, hi, found, probe if probe is not None else Probe())
        return found


def _collect(node: _Node | None, lo: int, hi: int, found: list[IndexedRange], probe: Probe) -> None:
    # Entered only when the subtree holds an end >= lo; left subtrees hold lower starts, right
    # subtrees higher ones, so the walk stops at the first start past hi.
    while node is not None:
        if node.left is not None and node.left.max_end >= lo:
            _collect(node.left, lo, hi, found, probe)
        probe.compared += 1
        if node.key[0] > hi:
            return
        if node.item.end >= lo:
            found.append(node.item)
        node = node.right
        if node is not None and node.max_end < lo:
            return
