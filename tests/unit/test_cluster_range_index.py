"""The address-range index: correct against a brute-force scan, persistent, and an overlap query
compares only the entries near the query (counted, not timed)."""

from __future__ import annotations

import ipaddress
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.cluster.static import StaticClusterView
from webhook.cni.addresses import IPAddress
from webhook.cni.ipam import AddressRange
from webhook.cni.range_index import IndexedRange, Probe, RangeIndex
from webhook.rules import Policy, Subject, evaluate


def v4(n: int) -> IPAddress:
    return ipaddress.IPv4Address(n)


def entry(i: int, first: IPAddress, last: IPAddress) -> IndexedRange:
    return IndexedRange.of(("ns", f"nad{i}"), AddressRange(first, last, "spec.config.ipam", "host-local", "macvlan"))


spans = st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 300)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(spans, st.integers(0, 2300), st.integers(0, 400), st.integers(0, 60))
def test_queries_match_a_brute_force_scan_after_adds_and_removals(
    items: list[tuple[int, int]], start: int, length: int, removed: int
) -> None:
    entries = [entry(i, v4(a), v4(a + n)) for i, (a, n) in enumerate(items)]
    full = RangeIndex.build(entries)
    index = full.without(entries[:removed])
    kept = entries[removed:]
    assert len(index) == len(kept)
    assert [e.key for e in index] == sorted(e.key for e in kept)
    got = index.overlapping(v4(start), v4(start + length))
    assert got == sorted((e for e in kept if e.start <= start + length and e.end >= start), key=lambda e: e.key)
    # Persistent: the index the removal started from is unchanged.
    assert len(list(full)) == len(entries)


def test_families_never_overlap() -> None:
    index = RangeIndex.build([
        entry(0, ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::ffff:ffff")),
        entry(1, v4(0), v4(2**32 - 1)),
    ])
    assert [e.owner[1] for e in index.overlapping(v4(5), v4(6))] == ["nad1"]
    six = index.overlapping(ipaddress.IPv6Address("::5"), ipaddress.IPv6Address("::6"))
    assert [e.owner[1] for e in six] == ["nad0"]


def test_equal_ranges_of_different_nads_are_all_kept() -> None:
    same = [entry(i, v4(10), v4(20)) for i in range(3)]
    index = RangeIndex.build(same).without(same[1:2])
    assert [e.owner[1] for e in index.overlapping(v4(15), v4(15))] == ["nad0", "nad2"]


N = 10_000


def nad(i: int, ipam: dict[str, object]) -> dict[str, object]:
    config = {"cniVersion": "1.0.0", "name": f"net{i}", "type": "macvlan", "master": "eth0", "ipam": ipam}
    return {"kind": "NetworkAttachmentDefinition", "metadata": {"name": f"net{i}", "namespace": "big"},
            "spec": {"config": json.dumps(config)}}


def ten_thousand_nads() -> StaticClusterView:
    # 10.(i // 256).(i % 256).0/24 for each i: 10,000 disjoint /24s, half whereabouts, half host-local.
    objects = []
    for i in range(N):
        subnet = f"10.{i // 256}.{i % 256}.0/24"
        ipam: dict[str, object] = ({"type": "whereabouts", "range": subnet} if i % 2
                                   else {"type": "host-local", "subnet": subnet})
        objects.append(nad(i, ipam))
    return StaticClusterView(objects)


def test_ten_thousand_nads_overlap_queries_touch_only_nearby_entries() -> None:
    view = ten_thousand_nads()
    index = view.ranges
    assert len(index) == N
    bound = 4 * math.ceil(math.log2(N))  # a few root-to-leaf paths of a balanced tree

    # One /24 in the middle: exactly one NAD overlaps it.
    probe = Probe()
    found = index.overlapping(ipaddress.IPv4Address("10.20.7.5"), ipaddress.IPv4Address("10.20.7.9"), probe)
    assert [e.owner for e in found] == [("big", f"net{20 * 256 + 7}")]
    print(f"one match among {N}: {probe.compared} comparisons")
    assert probe.compared <= bound

    # The gap between two ranges (broadcast and network address), and below all of them: nothing
    # found, still only a path's worth of comparisons.
    for first, last in (("10.20.6.255", "10.20.7.0"), ("9.0.0.0", "9.255.255.255")):
        probe = Probe()
        assert index.overlapping(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last), probe) == []
        print(f"no match ({first}-{last}) among {N}: {probe.compared} comparisons")
        assert 0 < probe.compared <= bound

    # A /16 covers 256 of them: the cost grows with the answer, not with the index.
    probe = Probe()
    wide = index.overlapping(ipaddress.IPv4Address("10.3.0.0"), ipaddress.IPv4Address("10.3.255.255"), probe)
    assert len(wide) == 256
    print(f"256 matches among {N}: {probe.compared} comparisons")
    assert probe.compared <= 2 * len(wide) + bound


def test_the_overlap_rule_works_on_ten_thousand_nads() -> None:
    view = ten_thousand_nads()
    new = nad(N, {"type": "whereabouts", "range": "10.20.7.0/28", "enable_overlapping_ranges": False})
    new["metadata"] = {"name": "newcomer", "namespace": "big"}
    findings = [f for f in evaluate(Subject(new, "NetworkAttachmentDefinition", view=view), Policy())
                if f.rule == "nad-range-overlap"]
    assert len(findings) == 1
    assert "overlaps NAD big/net5127 spec.config.ipam.range (addresses 10.20.7.1-10.20.7.14)" in findings[0].message
    # Replacing one NAD moves its range in the index without touching the others.
    view.put(nad(5127, {"type": "whereabouts", "range": "172.16.0.0/24"}))
    assert len(view.ranges) == N
    assert [f for f in evaluate(Subject(new, "NetworkAttachmentDefinition", view=view), Policy())
            if f.rule == "nad-range-overlap"] == []
