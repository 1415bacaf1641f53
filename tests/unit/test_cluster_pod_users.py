"""The store's record of which pods (and NetworkProfiles) use each NAD: right after any sequence of pod
events, through the switch between the small (tuple) and the large (set) form, and without copying a busy
NAD's users on every event (that made a sync of 50,000 pods on one NAD quadratic: 6 s, and 10 ms per pod deletion)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.cluster import store as store_module
from webhook.cluster.store import NAD, NETWORK_PROFILE, POD, ClusterStore
from webhook.rules.view import ObjectRef

NADS = ["blue", "green"]
PODS = [f"p{i}" for i in range(8)]


def nad(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team"},
            "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0"}'}}


def pod(name: str, networks: list[str]) -> dict[str, Any]:
    annotations = {"k8s.v1.cni.cncf.io/networks": ", ".join(networks)} if networks else {}
    return {"metadata": {"name": name, "namespace": "team", "annotations": annotations}}


def profile(name: str, networks: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team"}, "spec": {"networks": [{"name": n} for n in networks]}}


events = st.lists(st.tuples(st.sampled_from(PODS), st.none() | st.lists(st.sampled_from(NADS), unique=True)),
                  max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_pods_using_matches_the_pods_after_any_events(sequence: list[tuple[str, list[str] | None]]) -> None:
    # Two users fit the small form, a third switches to the set, one left switches back.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "FEW_USERS", 2)
        check_events(sequence)


def check_events(sequence: list[tuple[str, list[str] | None]]) -> None:
    """Each event for a pod and for a NetworkProfile of its name: the store keeps both records alike."""
    store = ClusterStore()
    for name in NADS:
        store.upsert(NAD, nad(name))
    uses: dict[str, list[str]] = {}
    for name, networks in sequence:
        if networks is None:
            store.delete(POD, pod(name, []))
            store.delete(NETWORK_PROFILE, profile(name, []))
            uses.pop(name, None)
        else:
            store.upsert(POD, pod(name, networks))
            store.upsert(NETWORK_PROFILE, profile(name, networks))
            uses[name] = networks
        for net in NADS:
            expected = sorted(ObjectRef("team", p) for p, nets in uses.items() if net in nets)
            assert store.pods_using("team", net, first=len(PODS),
                                    multus_namespace="kube-system") == (len(expected), expected), (name, networks, net)
            assert store.pods_using("team", net, first=2,
                                    multus_namespace="kube-system") == (len(expected), expected[:2])
            assert store.profiles_using("team", net) == expected, (name, networks, net)
        assert set(store._profile_users) == {("team", net) for nets in uses.values() for net in nets}


def test_a_busy_nads_users_are_changed_in_place_and_shrink_back() -> None:
    store = ClusterStore()
    store.upsert(NAD, nad("blue"))
    many = store_module.FEW_USERS * 4
    store.replace(POD, [pod(f"p{i:03d}", ["blue"]) for i in range(many)])
    users = store._users[("team", "blue")]
    store.delete(POD, pod("p000", []))
    store.upsert(POD, pod("extra", ["blue"]))
    # The same container: an event costs O(1), not a copy of every other user.
    assert store._users[("team", "blue")] is users
    users_now = store.pods_using("team", "blue", first=2, multus_namespace="kube-system")
    assert users_now == (many, [ObjectRef("team", "extra"), ObjectRef("team", "p001")])
    for i in range(1, many):
        store.delete(POD, pod(f"p{i:03d}", []))
    assert store.pods_using("team", "blue", first=5,
                            multus_namespace="kube-system") == (1, [ObjectRef("team", "extra")])
    # A set keeps the table of its largest size: once few users are left, the small form again.
    assert isinstance(store._users[("team", "blue")], tuple)
    store.delete(POD, pod("extra", []))
    assert ("team", "blue") not in store._users
    assert ("team", "blue") not in store._interned


@pytest.mark.parametrize(
    "networks",
    ['[{"name": "blue", "interface": "\\ud800"}]', '[{"name": "blue", "ips": ["10.0.0.1/' + "1" * 4301 + '"]}]'],
)
def test_a_listed_pod_with_json_python_misreads_does_not_stop_the_others(networks: str) -> None:
    store = ClusterStore()
    store.upsert(NAD, nad("blue"))
    odd = {"metadata": {"name": "odd", "namespace": "team", "annotations": {"k8s.v1.cni.cncf.io/networks": networks}}}
    store.replace(POD, [odd, pod("p0", ["blue"])])
    assert ObjectRef("team", "p0") in store.pods_using("team", "blue", first=5, multus_namespace="kube-system")[1]


def test_a_nad_with_a_number_go_cannot_read_is_stored() -> None:
    store = ClusterStore()
    store.upsert(NAD, {"metadata": {"name": "big", "namespace": "team"},
                       "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "mtu": ' + "1" * 4301 + "}"}})
    assert store.nad("team", "big") is not None
