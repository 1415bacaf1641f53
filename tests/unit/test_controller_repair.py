"""Which pods lost their networks on a reboot, who may delete them, and how fast."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhook.controller.repair import (
    Damage,
    TokenBucket,
    Unwritten,
    damage,
    judge,
    missing_networks,
    recreating_owner,
    sandbox_time,
)
from webhook.kube import format_time

READY_SINCE = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
AFTER = READY_SINCE + timedelta(seconds=5)
BEFORE = READY_SINCE - timedelta(seconds=5)


def pod(networks: str | None = "macvlan-net, other/bridge-net@br1", status: list[dict[str, Any]] | None = None,
        owner: str | None = "ReplicaSet", sandbox: datetime | None = AFTER, **extra: Any) -> dict[str, Any]:
    annotations = {}
    if networks is not None:
        annotations["k8s.v1.cni.cncf.io/networks"] = networks
    if status is not None:
        annotations["k8s.v1.cni.cncf.io/network-status"] = json.dumps(status)
    meta: dict[str, Any] = {"name": "p", "namespace": "app", "uid": "u1", "resourceVersion": "7",
                            "annotations": annotations}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": "web", "uid": "o",
                                    "controller": True}]
    pod_status: dict[str, Any] = {"phase": "Running"}
    if sandbox:
        pod_status["conditions"] = [{"type": "PodReadyToStartContainers", "status": "True",
                                     "lastTransitionTime": format_time(sandbox)}]
    result = {"metadata": meta, "spec": {"nodeName": "n"}, "status": pod_status}
    for path, value in extra.items():
        section, key = path.split("__")
        result[section][key] = value
    return result


FULL = [{"name": "cilium", "interface": "eth0", "default": True},
        {"name": "app/macvlan-net", "interface": "net1"}, {"name": "other/bridge-net", "interface": "br1"}]


def test_a_pod_with_every_network_and_a_fresh_sandbox_is_fine() -> None:
    assert damage(pod(status=FULL), READY_SINCE) is None


def test_a_missing_network_is_damage() -> None:
    d = damage(pod(status=FULL[:2]), READY_SINCE)
    assert d is not None
    assert (d.namespace, d.name, d.uid, d.resource_version, d.owner) == ("app", "p", "u1", "7", "ReplicaSet/web")
    assert d.reason == "its network-status lacks other/bridge-net@br1"


def test_no_network_status_at_all_lacks_every_network() -> None:
    d = damage(pod(), READY_SINCE)
    assert d is not None
    assert d.reason == "its network-status lacks other/bridge-net@br1, app/macvlan-net"


def test_an_unreadable_network_status_lacks_every_network() -> None:
    p = pod()
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = "{not json"
    assert missing_networks(p) == ["other/bridge-net@br1", "app/macvlan-net"]
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = '{"name": "x"}'
    assert len(missing_networks(p)) == 2


def test_the_interface_must_match_too() -> None:
    status = [{"name": "app/macvlan-net", "interface": "net1"}, {"name": "other/bridge-net", "interface": "net2"}]
    assert missing_networks(pod(status=status)) == ["other/bridge-net@br1"]


def test_an_entry_without_interface_matches_by_name() -> None:
    assert missing_networks(pod(status=[{"name": "app/macvlan-net"}, {"name": "other/bridge-net"}])) == []


def test_the_default_network_annotation_counts() -> None:
    p = pod(networks=None, status=[{"name": "kube-system/sriov", "interface": "eth0"}])
    p["metadata"]["annotations"]["v1.multus-cni.io/default-network"] = "sriov"
    assert damage(p, READY_SINCE) is None
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = "[]"
    assert missing_networks(p) == ["kube-system/sriov@eth0"]


def test_an_unqualified_default_network_is_in_the_policys_multus_namespace() -> None:
    """Multus resolves it against its own namespace and reports it so: with another multusNamespace,
    a pod with every network was judged to lack its default one, and evicted at every reboot."""
    p = pod(networks=None, status=[{"name": "multus/sriov", "interface": "eth0"}])
    p["metadata"]["annotations"]["v1.multus-cni.io/default-network"] = "sriov"
    assert damage(p, READY_SINCE, "multus") is None
    assert missing_networks(p, "multus") == []
    assert missing_networks(p) == ["kube-system/sriov@eth0"]


def test_an_element_without_an_interface_is_found_by_its_network_wherever_its_position_put_it() -> None:
    """Multus names it net<N> after its defaultNetworks (net2 behind one default network), which may
    have changed since the pod was wired: looked for under net1, every healthy pod outside Multus's
    systemNamespaces was judged to lack a network and evicted at every reboot and Multus restart."""
    behind_a_default = [{"name": "kube-system/mgmt", "interface": "net1"},
                        {"name": "app/macvlan-net", "interface": "net2"},
                        {"name": "other/bridge-net", "interface": "br1"}]
    p = pod(status=behind_a_default)
    assert missing_networks(p) == []
    assert damage(p, READY_SINCE) is None
    # Asked for twice, found once: one is missing.
    twice = pod(networks="macvlan-net, macvlan-net, other/bridge-net@br1", status=behind_a_default)
    assert missing_networks(twice) == ["app/macvlan-net"]
    # The entry of an element that names its interface answers for that element alone.
    named = pod(networks="macvlan-net@data0, macvlan-net", status=[{"name": "app/macvlan-net", "interface": "data0"}])
    assert missing_networks(named) == ["app/macvlan-net"]


def test_entries_are_counted_as_often_as_they_are_there_and_odd_ones_ignored() -> None:
    """Entries without an interface (older Multus; the NAD client when a result names no sandbox)
    are as many as the elements; one whose name or interface is not a string (anyone who may write
    the annotation may write that) must not stop the repair of the node's other pods; the pod's
    primary network's entry answers for no secondary element of the same network."""
    bare = [{"name": "app/macvlan-net"}, {"name": "app/macvlan-net"}]
    assert missing_networks(pod(networks="macvlan-net, macvlan-net", status=bare)) == []
    assert missing_networks(pod(networks="macvlan-net@data0, macvlan-net", status=bare)) == []
    odd = pod(networks="macvlan-net", status=[{"name": "app/macvlan-net", "interface": {"x": 1}}, {"name": ["x"]},
                                              "text", {"name": "app/macvlan-net", "interface": "net1"}])
    assert missing_networks(odd) == []
    assert judge([odd, pod(status=[])], READY_SINCE, None)[0][0].reason.startswith("its network-status lacks")
    primary = pod(networks="kube-system/mgmt", status=[{"name": "kube-system/mgmt", "interface": "eth0",
                                                        "default": True}])
    assert missing_networks(primary) == ["kube-system/mgmt"]


def test_a_full_network_status_from_before_multus_was_ready_is_damage() -> None:
    d = damage(pod(status=FULL, sandbox=BEFORE), READY_SINCE)
    assert d is not None
    assert d.reason.startswith("its sandbox dates from 2026-03-01T11:59:55+00:00, before Multus became ready")


def test_sandbox_age_is_judged_by_the_second_as_the_kubelet_writes_it() -> None:
    """The kubelet's condition times have no fraction: a sandbox made in the second Multus became ready
    is not judged to predate it (kept rather than deleted), whatever fraction firstReadyTime has."""
    since = READY_SINCE + timedelta(microseconds=700_000)
    assert damage(pod(status=FULL, sandbox=READY_SINCE), since) is None
    assert damage(pod(status=FULL, sandbox=READY_SINCE - timedelta(seconds=1)), since) is not None


def test_without_the_first_readiness_on_this_boot_sandbox_age_does_not_count() -> None:
    assert damage(pod(status=FULL, sandbox=BEFORE), None) is None
    assert damage(pod(status=FULL[:2], sandbox=BEFORE), None) is not None


def waiting(phase: str = "Pending", since: datetime = BEFORE, **extra: Any) -> dict[str, Any]:
    """A pod the kubelet took up that has no sandbox (yet)."""
    p = pod(sandbox=None, **extra)
    p["status"] = {"phase": phase, "startTime": format_time(since), "conditions": [
        {"type": "PodReadyToStartContainers", "status": "False", "lastTransitionTime": format_time(since)},
        {"type": "ContainersReady", "status": "False", "lastTransitionTime": format_time(since)}]}
    return p


@pytest.mark.parametrize("p", [
    pod(sandbox=None, status__phase="Pending"),  # not even taken up by a kubelet: a replacement just created
    waiting(),
    waiting(status=FULL[:1]),
    waiting(phase="Running"),  # its sandbox is gone (the node rebooted) and not made again yet
])
def test_a_pod_without_a_sandbox_lacks_nothing(p: dict[str, Any]) -> None:
    assert sandbox_time(p) is None
    assert damage(p, READY_SINCE) is None


@pytest.mark.parametrize(
    "p",
    [
        pod(networks=None),
        pod(networks=""),
        pod(metadata__deletionTimestamp="2026-03-01T12:00:00Z"),
        pod(spec__hostNetwork=True),
        pod(status__phase="Succeeded"),
        pod(status__phase="Failed"),
    ],
)
def test_pods_that_are_never_repaired(p: dict[str, Any]) -> None:
    assert damage(p, READY_SINCE) is None


@pytest.mark.parametrize(("kind", "controller", "owner"), [
    ("ReplicaSet", True, "ReplicaSet/web"), ("StatefulSet", True, "StatefulSet/web"),
    ("DaemonSet", True, "DaemonSet/web"), ("Job", True, "Job/web"),
    ("ReplicationController", True, "ReplicationController/web"),
    ("ReplicaSet", False, None), ("Deployment", True, None), ("CronJob", True, None), ("Node", True, None),
])
def test_who_recreates_a_pod(kind: str, controller: bool, owner: str | None) -> None:
    p = pod(owner=kind)
    p["metadata"]["ownerReferences"][0]["controller"] = controller
    assert recreating_owner(p) == owner


def test_a_bare_pod_is_damaged_without_an_owner() -> None:
    d = damage(pod(owner=None), READY_SINCE)
    assert d is not None
    assert d.owner is None


def test_sandbox_time_prefers_pod_ready_to_start_containers() -> None:
    p = pod(sandbox=None)  # a kubelet that does not set PodReadyToStartContainers
    p["status"]["startTime"] = format_time(BEFORE - timedelta(hours=1))
    assert sandbox_time(p) == BEFORE - timedelta(hours=1)  # Running: some sandbox exists
    p["status"]["conditions"] = [{"type": "ContainersReady", "status": "False",
                                  "lastTransitionTime": format_time(AFTER)}]
    assert sandbox_time(p) == BEFORE - timedelta(hours=1)
    p["status"]["phase"] = "Pending"
    assert sandbox_time(p) is None
    p["status"]["conditions"] = [{"type": "ContainersReady", "status": "True",
                                  "lastTransitionTime": format_time(BEFORE)}]
    assert sandbox_time(p) == BEFORE
    p["status"]["conditions"].append({"type": "PodReadyToStartContainers", "status": "True",
                                      "lastTransitionTime": format_time(AFTER)})
    assert sandbox_time(p) == AFTER


#: When the node booted: a minute before Multus became ready on that boot.
BOOTED = READY_SINCE - timedelta(seconds=60)
#: A sandbox condition's time from the boot before.
PREVIOUS_BOOT = BOOTED - timedelta(hours=3)


@pytest.mark.parametrize("networks", [FULL, FULL[:2], None])
def test_a_status_from_before_the_boot_tells_nothing_yet(networks: list[dict[str, Any]] | None) -> None:
    """The kubelet has not rewritten it since the reboot: the sandbox it reports is gone, and the
    network-status Multus wrote for that sandbox says nothing of what this boot's will get. Without the
    boot time, the pod was deleted for its old sandbox's age (or for the networks that sandbox lacked),
    though the kubelet would give it a new one through Multus."""
    p = pod(status=networks, sandbox=PREVIOUS_BOOT)
    assert damage(p, READY_SINCE, booted=BOOTED) == Unwritten("app", "p")
    assert isinstance(damage(p, READY_SINCE), Damage)  # no boot time (an older agent): as before


def test_once_rewritten_the_pod_is_judged_as_any() -> None:
    made_without_multus = pod(status=FULL, sandbox=BOOTED + timedelta(seconds=10))
    d = damage(made_without_multus, READY_SINCE, booted=BOOTED)
    assert isinstance(d, Damage)
    assert "before Multus became ready on this boot" in d.reason
    assert damage(pod(status=FULL, sandbox=AFTER), READY_SINCE, booted=BOOTED) is None
    short = damage(pod(status=FULL[:2], sandbox=AFTER), READY_SINCE, booted=BOOTED)
    assert isinstance(short, Damage)
    assert short.reason == "its network-status lacks other/bridge-net@br1"
    # Without the first readiness on this boot, a rewritten status is judged by its networks alone.
    assert damage(made_without_multus, None, booted=BOOTED) is None


def test_the_boot_is_compared_by_the_second() -> None:
    """btime is the boot's second rounded down, and so are the kubelet's times: a status written in
    the boot's second was written on this boot."""
    booted = BOOTED.replace(microsecond=0)
    for made in (booted, booted + timedelta(microseconds=900_000)):  # rewritten: judged (made before Multus)
        assert isinstance(damage(pod(status=FULL, sandbox=made), READY_SINCE, booted=booted), Damage)
    earlier = booted - timedelta(seconds=1)
    assert damage(pod(status=FULL, sandbox=earlier), READY_SINCE, booted=booted) == Unwritten("app", "p")


def test_containers_ready_from_before_the_boot_tells_nothing_either() -> None:
    p = pod(status=FULL, sandbox=None)  # a kubelet that does not set PodReadyToStartContainers
    p["status"]["conditions"] = [{"type": "ContainersReady", "status": "True",
                                  "lastTransitionTime": format_time(PREVIOUS_BOOT)}]
    assert isinstance(damage(p, READY_SINCE, booted=BOOTED), Unwritten)


def test_a_sandbox_dated_by_the_start_time_is_judged_as_before() -> None:
    """status.startTime stays across reboots: it cannot tell a rewritten status from an old one, and a
    Running pod with no sandbox condition True is repaired as it was."""
    p = pod(status=FULL, sandbox=None)
    p["status"]["startTime"] = format_time(PREVIOUS_BOOT)
    assert isinstance(damage(p, READY_SINCE, booted=BOOTED), Damage)


@pytest.mark.parametrize("p", [
    pod(networks=None, sandbox=PREVIOUS_BOOT),
    pod(spec__hostNetwork=True, sandbox=PREVIOUS_BOOT),
    pod(metadata__deletionTimestamp="2026-03-01T12:00:00Z", sandbox=PREVIOUS_BOOT),
    pod(status__phase="Succeeded", sandbox=PREVIOUS_BOOT),
])
def test_pods_never_repaired_are_not_waited_for(p: dict[str, Any]) -> None:
    assert damage(p, READY_SINCE, booted=BOOTED) is None


def test_judge_keeps_damage_and_the_pods_to_judge_again() -> None:
    good, bad, old = pod(status=FULL), pod(), pod(status=FULL, sandbox=PREVIOUS_BOOT)
    bad["metadata"]["uid"] = "u2"
    old["metadata"]["name"] = "old"
    damaged, unwritten = judge([good, bad, old], READY_SINCE, BOOTED)
    assert [d.uid for d in damaged] == ["u2"]
    assert unwritten == [Unwritten("app", "old")]
    damaged, unwritten = judge([good, bad, old], READY_SINCE, None)
    assert ([d.uid for d in damaged], unwritten) == (["u2", "u1"], [])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0.5, burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now = 1.0
    assert not bucket.take()
    clock.now = 2.0
    assert bucket.take()
    assert not bucket.take()
    clock.now = 100.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_a_token_given_back_is_there_again_up_to_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=0.001, burst=2, clock=lambda: now[0])
    assert bucket.take()
    assert bucket.take()
    assert not bucket.take()
    bucket.give_back()
    assert bucket.take()
    bucket.give_back()
    bucket.give_back()
    bucket.give_back()
    assert bucket.take()
    assert bucket.take()
    assert not bucket.take()


def test_the_token_bucket_says_when_the_next_token_comes() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0.2, burst=1, clock=clock)
    assert bucket.delay() == 0
    assert bucket.take()
    assert bucket.delay() == pytest.approx(5.0)
    clock.now = 4.0
    assert not bucket.take()
    assert bucket.delay() == pytest.approx(1.0)
    clock.now = 5.0
    assert bucket.delay() == pytest.approx(0.0)
    assert bucket.take()


def legacy_nad(config: object) -> dict[str, Any]:
    return {"metadata": {"name": "macvlan-net", "namespace": "app"},
            "spec": {"config": config if isinstance(config, str) else json.dumps(config)}}


@pytest.mark.parametrize(("config", "missing"), [
    # A result of 0.1.0/0.2.0 lists no interfaces: Multus writes no entry, however well the network is wired.
    ({"cniVersion": "0.2.0", "name": "n", "type": "macvlan"}, []),
    ({"name": "n", "type": "macvlan"}, []),  # no cniVersion reads as 0.1.0
    ({"cniVersion": "0.2.0", "name": "n", "plugins": [{"type": "macvlan"}, {"type": "tuning"}]}, []),
    ("{not json", []),  # unreadable: left alone rather than evicted on every reboot
    ({"cniVersion": "0.3.1", "name": "n", "type": "macvlan"}, ["app/macvlan-net"]),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "macvlan"}]}, ["app/macvlan-net"]),
])
def test_networks_multus_never_lists_are_not_missing(config: object, missing: list[str]) -> None:
    p = pod(networks="macvlan-net", status=FULL[:1])
    nads = {("app", "macvlan-net"): legacy_nad(config)}
    assert missing_networks(p, nads=lambda ns, name: nads.get((ns, name))) == missing
    verdict = damage(p, READY_SINCE, nads=lambda ns, name: nads.get((ns, name)))
    assert (verdict is None) == (not missing)


def test_a_network_whose_nad_is_gone_is_still_missing() -> None:
    assert missing_networks(pod(networks="macvlan-net", status=FULL[:1]), nads=lambda ns, name: None) == [
        "app/macvlan-net"]
