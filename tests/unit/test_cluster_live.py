"""The live view's own failures, without an apiserver: an event it fails to apply (a bug) is skipped
and counted, and leaves the store as it was."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from ipaddress import ip_address
from typing import Any

import pytest

from webhook.cluster.live import LiveClusterView
from webhook.cluster.store import NAD
from webhook.cni.range_index import IndexedRange, RangeIndex


def nad(name: str, subnet: str) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": "eth1",
              "ipam": {"type": "host-local", "subnet": subnet}}
    return {"metadata": {"namespace": "team", "name": name}, "spec": {"config": json.dumps(config)}}


def owners(view: LiveClusterView) -> list[tuple[str, str]]:
    return [r.owner for r in view.ranges]


def at(view: LiveClusterView, address: str) -> list[tuple[str, str]]:
    return [r.owner for r in view.ranges.overlapping(ip_address(address), ip_address(address))]


def fail_once(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """RangeIndex.``method`` raises once, as a bug in it would: the last step of applying a NAD."""
    real = getattr(RangeIndex, method)
    calls: list[None] = []

    def flaky(self: RangeIndex, items: Iterable[IndexedRange]) -> RangeIndex:
        calls.append(None)
        if len(calls) == 1:
            raise RuntimeError("a bug in the range index")
        return real(self, items)  # type: ignore[no-any-return]

    monkeypatch.setattr(RangeIndex, method, flaky)


def apply(view: LiveClusterView, event: str, obj: Mapping[str, Any]) -> None:
    """As the watch applies an event."""
    with view._skipped_if_failing(NAD, f"a {event} event"):
        if event == "DELETED":
            view.delete(NAD, obj)
        else:
            view.upsert(NAD, obj)


def test_a_nad_change_that_fails_halfway_leaves_no_range_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old ranges were dropped from the NAD's entries before the index was updated: when that failed,
    the index kept them, which neither the NAD's deletion nor a relist removed (named by nothing), and
    nad-range-overlap refused new NADs for a NAD long gone."""
    view = LiveClusterView(api=None, kinds=(NAD,))
    apply(view, "ADDED", nad("a", "10.1.0.0/24"))
    fail_once(monkeypatch, "with_ranges")
    apply(view, "MODIFIED", nad("a", "10.2.0.0/24"))
    assert view.skipped(NAD) == 1
    assert at(view, "10.1.0.5") == [("team", "a")]  # as before the event
    assert at(view, "10.2.0.5") == []

    apply(view, "DELETED", nad("a", "10.2.0.0/24"))
    assert owners(view) == []
    apply(view, "ADDED", nad("a", "10.1.0.0/24"))
    view.replace(NAD, [])  # a relist that no longer holds it
    assert owners(view) == []


def test_a_nad_deletion_that_fails_halfway_is_left_for_the_relist(monkeypatch: pytest.MonkeyPatch) -> None:
    view = LiveClusterView(api=None, kinds=(NAD,))
    apply(view, "ADDED", nad("a", "10.1.0.0/24"))
    fail_once(monkeypatch, "without")
    apply(view, "DELETED", nad("a", "10.1.0.0/24"))
    assert view.skipped(NAD) == 1
    assert view.nad("team", "a") is not None
    view.replace(NAD, [])
    assert (view.nad("team", "a"), owners(view)) == (None, [])
