"""The live view's own failures, without an apiserver: an event it fails to apply (a bug) is skipped
and counted, and leaves the store as it was; a 410 Gone is an answer, not a loss of contact."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from ipaddress import ip_address
from typing import Any

import pytest

from webhook.cluster import live
from webhook.cluster.live import Gone, LiveClusterView, Resource
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


@pytest.mark.parametrize("opened", [True, False], ids=["an ERROR event", "the HTTP answer"])
def test_a_410_gone_as_a_watch_opens_is_contact(monkeypatch: pytest.MonkeyPatch, opened: bool) -> None:
    """A watch that ends at once does not count as contact, and a routine 410 Gone (its resourceVersion
    compacted) ended it at once too: out of contact since the quiet kind's last event, minutes ago,
    until the relist's first page."""
    view = LiveClusterView(api=None, kinds=(NAD,))
    view._versions[NAD] = "100"
    view._contact[NAD] = time.monotonic() - 600  # the last bookmark, long ago

    def stream(res: Resource, query: list[tuple[str, str]]) -> Iterator[Mapping[str, Any]]:
        if not opened:
            raise Gone(410, "too old resource version")
        view._succeeded(res.kind)
        yield {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}

    monkeypatch.setattr(view, "_stream", stream)
    with pytest.raises(Gone):
        view._watch(view.resources[0], live._Backoff(0.2, 5))
    view._mark_failing(NAD)  # as _reflect does on a Gone, until the relist's first page
    assert view.out_of_contact(NAD) < 300
