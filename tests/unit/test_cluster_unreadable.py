"""An object the store cannot read (a bug in the parsers, which the admission rules turned into a mere
warning, or an object created while the webhook was away) is kept without what could not be read from
it: a list or watch that brought it goes on, and the objects after it are stored.

The parsers are made to fail on purpose here, so that the tests hold whatever input they fail on."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from webhook.cluster.store import NAD, POD, ClusterStore
from webhook.rules.view import ObjectRef


def nad(name: str, extra: str = "") -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "type": "macvlan", "master": "eth1", "name": extra,
              "ipam": {"type": "whereabouts", "range": f"10.{len(name)}.0.0/24"}}
    return {"metadata": {"name": name, "namespace": "team"}, "spec": {"config": json.dumps(config)}}


def pod(name: str, networks: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team", "annotations": {"k8s.v1.cni.cncf.io/networks": networks}}}


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_pod_whose_annotation_cannot_be_read_uses_nothing_and_the_list_goes_on(
    parser_bug: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    bug = parser_bug("network_references")
    store = ClusterStore()
    store.replace(POD, [pod("before", "blue"), pod("bad", f"blue,{bug}"), pod("after", "blue")])

    users = store.pods_using("team", "blue", first=5, multus_namespace="kube-system")
    assert users == (2, [ObjectRef("team", "after"), ObjectRef("team", "before")])
    assert store.unreadable(POD) == 1
    [message] = errors(caplog)
    assert "Pod team/bad: could not read the annotations k8s.v1.cni.cncf.io/networks" in message
    assert "ValueError: a parser bug" in message

    # Logged once, not on every event of the pod (a metadata watch sees each status change).
    store.upsert(POD, pod("bad", f"blue,{bug}"))
    store.replace(POD, [pod("before", "blue"), pod("bad", f"blue,{bug}"), pod("after", "blue")])
    assert len(errors(caplog)) == 1

    store.upsert(POD, pod("bad", "blue"))
    assert store.unreadable(POD) == 0
    assert store.pods_using("team", "blue", first=5, multus_namespace="kube-system")[0] == 3
    store.upsert(POD, pod("bad", bug))
    store.delete(POD, pod("bad", bug))
    assert store.unreadable(POD) == 0
    # Gone while the watch was down: the relist that no longer holds it drops it too.
    store.upsert(POD, pod("bad", bug))
    store.replace(POD, [pod("before", "blue")])
    assert store.unreadable(POD) == 0


def test_a_nad_whose_config_cannot_be_read_is_kept_without_ranges_or_binaries(
    parser_bug: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    bug = parser_bug("parse_nad_config")
    store = ClusterStore()
    store.replace(NAD, [nad("bad", bug), nad("good")])

    assert store.nad("team", "bad") is not None  # it exists: pods may name it, it may be in use
    assert store.nad_binaries("team", "bad") == frozenset()
    assert store.nad_binaries("team", "good") == {"macvlan", "whereabouts"}
    assert [r.owner for r in store.ranges.overlapping(*_span("10.4.0.0", "10.4.0.255"))] == [("team", "good")]
    assert store.unreadable(NAD) == 1
    [message] = errors(caplog)
    assert "NetworkAttachmentDefinition team/bad: could not read spec.config (ValueError: a parser bug)" in message
    assert "kept with no address ranges and no CNI binaries" in message

    store.delete(NAD, nad("bad"))
    assert store.unreadable(NAD) == 0


def test_a_nad_whose_ranges_cannot_be_read_keeps_its_binaries(parser_bug: Callable[..., str]) -> None:
    bug = parser_bug("nad_allocation_ranges")
    store = ClusterStore()
    store.upsert_all([(NAD, nad("bad", bug)), (NAD, nad("good"))])

    assert store.nad_binaries("team", "bad") == {"macvlan", "whereabouts"}
    assert store.unreadable(NAD) == 1
    store.upsert(NAD, nad("bad"))  # fixed
    assert store.unreadable(NAD) == 0
    assert {r.owner for r in store.ranges.overlapping(*_span("10.0.0.0", "10.255.255.255"))} == {
        ("team", "bad"), ("team", "good")}


def _span(first: str, last: str) -> tuple[IPv4Address | IPv6Address, IPv4Address | IPv6Address]:
    return ip_address(first), ip_address(last)
