"""A relist is stored page by page: while the next page is read from the apiserver (seconds for 50,000
pods, up to a read timeout when the connection stalls) no other writer waits, and readers find every
object the kind had and those of the pages stored so far: never a kind with objects missing halfway.
tests/faults/test_watch_faults.py shows the same with a real apiserver behind a stalled connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from webhook.cluster.store import NAD, NODE, ClusterStore


def nad(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team"},
            "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0"}'}}


def test_a_relist_waiting_for_its_next_page_holds_up_no_writer_and_hides_nothing() -> None:
    store = ClusterStore()
    store.replace(NAD, [nad("kept"), nad("gone")])
    first_stored, second_sent = threading.Event(), threading.Event()

    def pages() -> Iterator[list[dict[str, Any]]]:
        yield [nad("kept"), nad("new")]
        first_stored.set()
        second_sent.wait(10)  # the apiserver has not sent the next page yet
        yield [nad("last")]

    relist = threading.Thread(target=store.replace_pages, args=(NAD, pages()))
    relist.start()
    try:
        assert first_stored.wait(10)
        # Another kind's watch event, or the controller recording a Node it patched.
        writer = threading.Thread(target=store.upsert, args=(NODE, {"metadata": {"name": "n1"}}))
        writer.start()
        writer.join(5)
        assert not writer.is_alive(), "a writer waited for the relist's next page"
        assert store.node_names() == ["n1"]
        assert [name for name in ("kept", "gone", "new", "last") if store.nad("team", name)] == ["kept", "gone", "new"]
    finally:
        second_sent.set()
        relist.join(10)
    assert [name for name in ("kept", "gone", "new", "last") if store.nad("team", name)] == ["kept", "new", "last"]
