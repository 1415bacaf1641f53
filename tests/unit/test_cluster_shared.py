"""The store shares one copy of equal values among the objects it keeps, and what it shares is bounded
however many distinct values come and go."""

from __future__ import annotations

import json
from typing import Any

from webhook.cluster.store import NAD, SHARED_KEPT, ClusterStore


def nad(name: str, plugin: str) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": name, "type": plugin, "ipam": {"type": "static"}}
    return {"metadata": {"namespace": "ci", "name": name}, "spec": {"config": json.dumps(config)}}


def test_values_that_came_and_went_do_not_pile_up() -> None:
    """NADs of ever new plugin types, created and deleted: the table of shared values grew for ever."""
    store = ClusterStore()
    for i in range(2 * SHARED_KEPT):
        store.upsert(NAD, nad(f"n{i}", f"plugin-{i}"))
        store.delete(NAD, nad(f"n{i}", f"plugin-{i}"))
    assert len(store._shared) <= SHARED_KEPT


def test_equal_values_are_one_copy() -> None:
    store = ClusterStore()
    store.upsert_all([(NAD, nad("a", "macvlan")), (NAD, nad("b", "macvlan"))])
    assert store.nad_binaries("ci", "a") is store.nad_binaries("ci", "b")
