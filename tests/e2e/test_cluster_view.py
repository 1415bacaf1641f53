"""The live cluster view against a real kube-apiserver: `multus-webhook serve --kubeconfig` follows
Nodes, MultusNodeStates, NADs and Pods through its watches, and kubectl gets the verdicts.

These tests run their own control plane: they create Nodes, restart the apiserver and need to know
exactly which nodes exist, none of which may leak into the session's cluster.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from webhook.cluster.live import LiveClusterView
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually
from webhook.kube import METADATA_LIST, load_client
from webhook.rules.view import ObjectRef

T = TypeVar("T")
DENIED = 'admission webhook "nads.multus-webhook.io" denied the request: '
STATES = "multus-webhook"


@pytest.fixture
def cp(cluster: ControlPlane, live_webhook: WebhookServer) -> Iterator[ControlPlane]:
    """The module's control plane; the Nodes and MultusNodeStates a test creates go away after it."""
    yield cluster
    cluster.kubectl("delete", "nodes", "--all", "--wait=false", check=False)
    cluster.kubectl("delete", "multusnodestates", "-n", STATES, "--all", "--wait=false", check=False)


@pytest.fixture
def ns(cluster: ControlPlane) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def apply(cp: ControlPlane, obj: dict[str, Any], *extra: str) -> tuple[bool, str]:
    result = cp.kubectl("apply", *extra, "-f", "-", input=json.dumps(obj), check=False)
    return result.returncode == 0, result.stdout + result.stderr


def dry_run(cp: ControlPlane, obj: dict[str, Any]) -> tuple[bool, str]:
    return apply(cp, obj, "--dry-run=server")


def add_node(cp: ControlPlane, name: str) -> None:
    cp.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))


def report_binaries(cp: ControlPlane, node: str, binaries: list[str]) -> None:
    """What the agent does: a MultusNodeState named after the node, its status written separately."""
    state = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
             "metadata": {"name": node, "namespace": STATES}}
    cp.kubectl("apply", "-f", "-", input=json.dumps(state))
    status = {"status": {"nodeName": node, "cniBinaries": binaries, "multusReady": True,
                         "bootID": "b-1", "heartbeatTime": "2026-01-01T00:00:00Z"}}
    cp.kubectl("patch", "multusnodestate", node, "-n", STATES, "--subresource=status", "--type=merge",
               "-p", json.dumps(status))


def nad(name: str, namespace: str, ipam: dict[str, Any], master: str = "eth1",
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": master, "ipam": ipam}
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": meta,
            "spec": {"config": json.dumps(config)}}


def pod(name: str, namespace: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                            "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}


def denied_with(text: str) -> Callable[[tuple[bool, str]], bool]:
    return lambda result: not result[0] and DENIED in result[1] and text in result[1]


def test_a_second_node_makes_a_host_local_nad_refused(cp: ControlPlane, ns: str) -> None:
    host_local = nad("hl", ns, {"type": "host-local", "subnet": "10.60.0.0/24"})
    add_node(cp, "node-a")
    ok, out = dry_run(cp, host_local)
    assert ok, out

    add_node(cp, "node-b")
    ok, out = eventually(lambda: dry_run(cp, host_local), "the second node to reach the cache",
                         until=denied_with("host-local"))
    assert "spec.config.ipam.type is host-local on a cluster of 2 nodes" in out
    assert "use whereabouts" in out
    assert "[nad-host-local-multi-node]" in out

    on_purpose = nad("hl", ns, {"type": "host-local", "subnet": "10.60.0.0/24"},
                     annotations={"multus-webhook.io/allow-host-local": "true"})
    ok, out = apply(cp, on_purpose)
    assert ok, out
    assert "Warning: spec.config.ipam.type is host-local on a cluster of 2 nodes, allowed by" in out

    cp.kubectl("delete", "node", "node-b")
    eventually(lambda: dry_run(cp, host_local)[0], "the node's deletion to reach the cache")


def test_nodes_pods_cannot_land_on_do_not_make_a_host_local_nad_refused(cp: ControlPlane, ns: str) -> None:
    """kubeadm and kind: a control plane tainted NoSchedule and one worker is no multi-node cluster for
    host-local; the taint and cordoning reach the cache through the Node watch."""
    host_local = nad("hl", ns, {"type": "host-local", "subnet": "10.68.0.0/24"})
    add_node(cp, "node-cp")
    add_node(cp, "node-w")
    eventually(lambda: denied_with("host-local on a cluster of 2 nodes")(dry_run(cp, host_local)),
               "the two nodes to reach the cache")

    cp.kubectl("taint", "nodes", "node-cp", "node-role.kubernetes.io/control-plane:NoSchedule")
    _, out = eventually(lambda: dry_run(cp, host_local), "the taint to reach the cache", until=lambda r: r[0])
    assert "host-local" not in out

    # A node that is only not ready yet takes pods again: it counts.
    cp.kubectl("taint", "nodes", "node-cp", "node-role.kubernetes.io/control-plane:NoSchedule-",
               "node.kubernetes.io/not-ready:NoExecute")
    eventually(lambda: dry_run(cp, host_local), "the lifted taint to reach the cache",
               until=denied_with("host-local on a cluster of 2 nodes"))

    # Cilium's taint until its agent runs on the node (the talos-cilium stack, at every boot) passes too.
    cp.kubectl("taint", "nodes", "node-cp", "node.kubernetes.io/not-ready:NoExecute-",
               "node.cilium.io/agent-not-ready:NoSchedule")
    eventually(lambda: dry_run(cp, host_local), "Cilium's taint to reach the cache",
               until=denied_with("host-local on a cluster of 2 nodes: "))

    # A cordon (kubectl drain, talosctl upgrade) is lifted again: the node counts, said so.
    cp.kubectl("cordon", "node-w")
    eventually(lambda: dry_run(cp, host_local), "the cordon to reach the cache",
               until=denied_with("host-local on a cluster of 2 nodes (1 of them cordoned, which pods land on again "
                                 "once uncordoned)"))
    cp.kubectl("taint", "nodes", "node-cp", "node-role.kubernetes.io/control-plane:NoSchedule")
    eventually(lambda: dry_run(cp, host_local), "the taint to reach the cache", until=lambda r: r[0])
    add_node(cp, "node-x")
    eventually(lambda: dry_run(cp, host_local), "the third node to reach the cache",
               until=denied_with("host-local on a cluster of 2 nodes (1 of them cordoned, which pods land on again "
                                 "once uncordoned; not counting 1 tainted for good, which pods without a toleration "
                                 "never land on)"))


def test_a_host_local_nad_from_before_a_second_node_joined_can_still_be_labelled(cp: ControlPlane, ns: str) -> None:
    """Ratcheting: an UPDATE that leaves spec.config as it was is not refused for what was already there."""
    host_local = nad("hl", ns, {"type": "host-local", "subnet": "10.67.0.0/24"})
    ok, out = apply(cp, host_local)  # one node at most in the cache: allowed
    assert ok, out
    add_node(cp, "node-d")
    add_node(cp, "node-e")
    labelled = {**host_local, "metadata": {**host_local["metadata"], "labels": {"team": "blue"}}}
    ok, out = eventually(lambda: dry_run(cp, labelled), "the nodes to reach the cache",
                         until=lambda r: "host-local on a cluster of 2 nodes" in r[1])
    assert ok, out
    warning = " ".join(out.replace("Warning:", "").split())  # kubectl's lines joined again
    assert ("allowed because it was already there: this update leaves spec.config and annotation "
            "multus-webhook.io/allow-host-local as they were; rule nad-host-local-multi-node refuses it once one "
            "of them changes) [nad-host-local-multi-node]") in warning
    ok, out = apply(cp, labelled)
    assert ok, out

    grown = nad("hl", ns, {"type": "host-local", "subnet": "10.67.0.0/23"})
    ok, out = apply(cp, grown)
    assert not ok
    assert DENIED in out
    assert "[nad-host-local-multi-node]" in out


def test_a_node_state_gaining_a_binary_turns_a_deny_into_an_allow(cp: ControlPlane, ns: str) -> None:
    wants_whereabouts = nad("wa", ns, {"type": "whereabouts", "range": "10.61.0.0/24"})
    add_node(cp, "node-c")
    ok, out = dry_run(cp, wants_whereabouts)
    assert ok, out  # no node reports its binaries yet: nothing is known, nothing is said

    report_binaries(cp, "node-c", ["bridge", "macvlan", "host-local"])
    ok, out = eventually(lambda: dry_run(cp, wants_whereabouts), "the MultusNodeState to reach the cache",
                         until=denied_with("whereabouts"))
    assert "spec.config.ipam.type is whereabouts, but no node has the CNI binary 'whereabouts'" in out
    assert "[nad-cni-binaries]" in out

    report_binaries(cp, "node-c", ["bridge", "macvlan", "host-local", "whereabouts"])
    eventually(lambda: dry_run(cp, wants_whereabouts)[0], "the new binary to reach the cache")


def test_an_overlapping_nad_is_refused_by_kubectl_apply(cp: ControlPlane) -> None:
    team_a, team_b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    for name in (team_a, team_b):
        cp.kubectl("create", "namespace", name)
    first = nad("storage", team_a, {"type": "host-local", "subnet": "10.62.0.0/24",
                                    "rangeStart": "10.62.0.10", "rangeEnd": "10.62.0.100"})
    ok, out = apply(cp, first)
    assert ok, out

    second = nad("storage", team_b, {"type": "whereabouts", "range": "10.62.0.64/26"})
    eventually(lambda: denied_with("overlaps")(dry_run(cp, second)), "the first NAD to reach the cache")
    ok, out = apply(cp, second)
    assert not ok
    assert DENIED in out
    assert (f"spec.config.ipam.range (10.62.0.65-10.62.0.126) overlaps NAD {team_a}/storage "
            "spec.config.ipam (addresses 10.62.0.65-10.62.0.100) on the same segment (master eth1)") in out
    assert "[nad-range-overlap]" in out
    assert "NotFound" in cp.kubectl("get", "nad", "-n", team_b, "storage", check=False).stderr

    # On another master it is only a warning; an UPDATE is not compared with its own old version.
    elsewhere = nad("storage", team_b, {"type": "whereabouts", "range": "10.62.0.64/26"}, master="eth2")
    ok, out = apply(cp, elsewhere)
    assert ok, out
    assert "Warning: spec.config.ipam.range (10.62.0.65-10.62.0.126) overlaps NAD" in out
    grown = nad("storage", team_a, {"type": "host-local", "subnet": "10.62.0.0/24", "rangeStart": "10.62.0.10",
                                    "rangeEnd": "10.62.0.20"})
    ok, out = apply(cp, grown)
    assert ok, out
    assert "overlaps" not in out


def test_deleting_a_nad_that_a_pod_uses_is_refused(cp: ControlPlane, ns: str) -> None:
    used = nad("used", ns, {"type": "whereabouts", "range": "10.63.0.0/24"})
    default_net = nad(f"default-{ns}", "kube-system", {"type": "whereabouts", "range": "10.64.0.0/24"},
                      master="eth3")
    for obj in (used, default_net):
        ok, out = apply(cp, obj)
        assert ok, out
    app = pod("app", ns, {"k8s.v1.cni.cncf.io/networks": "used@net1",
                          "v1.multus-cni.io/default-network": f"default-{ns}"})
    # The pod webhook wants to see the NADs in the cache first.
    eventually(lambda: apply(cp, app)[0], "the pod to be admitted")

    result = eventually(lambda: cp.kubectl("delete", "nad", "-n", ns, "used", "--dry-run=server", check=False),
                        "the pod to reach the cache", until=lambda r: r.returncode != 0)
    result = cp.kubectl("delete", "nad", "-n", ns, "used", check=False)
    assert result.returncode == 1
    assert DENIED in result.stderr
    assert f"NAD {ns}/used is still used by 1 pod(s) ({ns}/app)" in result.stderr
    assert "delete those pods first" in result.stderr
    assert "[nad-in-use]" in result.stderr
    # A default-network reference without a namespace points into kube-system.
    result = cp.kubectl("delete", "nad", "-n", "kube-system", f"default-{ns}", check=False)
    assert f"NAD kube-system/default-{ns} is still used by 1 pod(s) ({ns}/app)" in result.stderr

    changed = nad("used", ns, {"type": "whereabouts", "range": "10.63.0.0/23"})
    ok, out = apply(cp, changed)
    assert ok, out
    assert f"Warning: spec.config changed while 1 pod(s) ({ns}/app) use this NAD" in out

    cp.kubectl("delete", "pod", "-n", ns, "app")  # never scheduled: gone at once
    eventually(lambda: cp.kubectl("delete", "nad", "-n", ns, "used", check=False).returncode == 0,
               "the pod's deletion to reach the cache")
    eventually(lambda: cp.kubectl("delete", "nad", "-n", "kube-system", f"default-{ns}", check=False).returncode == 0,
               "the pod's deletion to reach the cache")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_pod_does_not_keep_its_nad_from_being_deleted(cp: ControlPlane, ns: str, phase: str) -> None:
    """A Job's pod, an evicted one, one a graceful node shutdown failed: the kubelet tore its sandbox
    down (CNI DEL). Its status write reaches the watch as DELETED (the pods are watched with a
    field selector on the phase), and a new list leaves it out."""
    used = nad("done", ns, {"type": "whereabouts", "range": "10.70.0.0/24"})
    ok, out = apply(cp, used)
    assert ok, out
    eventually(lambda: apply(cp, pod("job", ns, {"k8s.v1.cni.cncf.io/networks": "done"}))[0], "the pod admitted")
    eventually(lambda: cp.kubectl("delete", "nad", "-n", ns, "done", "--dry-run=server", check=False),
               "the pod to reach the cache", until=lambda r: r.returncode != 0 and "[nad-in-use]" in r.stderr)

    # What the kubelet writes when the pod's containers have ended for good.
    cp.kubectl("patch", "pod", "job", "-n", ns, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"phase": phase}}))
    result = eventually(lambda: cp.kubectl("delete", "nad", "-n", ns, "done", "--dry-run=server", check=False),
                        "the pod's end to reach the cache", until=lambda r: r.returncode == 0)
    assert "Warning" not in result.stderr, result.stderr

    view = LiveClusterView(load_client(str(cp.kubeconfig)))
    view.list_once()  # a relist, and check --kubeconfig, read the same
    assert view.pods_using(ns, "done", first=5, multus_namespace="kube-system") == (0, [])
    assert cp.kubectl("get", "pod", "job", "-n", ns, "-o", "jsonpath={.status.phase}").stdout == phase


def test_check_kubeconfig_reads_a_finished_pod_an_input_updates(cp: ControlPlane, ns: str) -> None:
    """Finished pods are not listed, but one that an input names exists: the input is an UPDATE of it
    (here one that leaves its networks as they were, which the apiserver does not even send), not the
    CREATE of a pod naming a NAD that is gone."""
    ok, out = apply(cp, nad("gone", ns, {"type": "whereabouts", "range": "10.73.0.0/24"}))
    assert ok, out
    job = pod("job", ns, {"k8s.v1.cni.cncf.io/networks": "gone"})
    eventually(lambda: apply(cp, job)[0], "the pod admitted")
    cp.kubectl("patch", "pod", "job", "-n", ns, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"phase": "Succeeded"}}))
    eventually(lambda: cp.kubectl("delete", "nad", "-n", ns, "gone", check=False).returncode == 0,
               "the pod's end to reach the cache")
    checked = check_kubeconfig(cp, job)
    assert checked["verdict"] == "allow", checked
    fresh = check_kubeconfig(cp, pod("another", ns, {"k8s.v1.cni.cncf.io/networks": "gone"}))
    assert fresh["verdict"] == "deny", fresh


def test_deleting_a_default_network_or_a_profiles_nad(cp: ControlPlane, ns: str) -> None:
    """A NAD in the policy's defaultNetworks (in multusNamespace) is refused: Multus fails every new pod
    outside systemNamespaces without it. One a NetworkProfile names is deleted with a warning naming it."""
    multus = f"m-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "namespace", multus)
    policy = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "multus-webhook-policy", "namespace": STATES},
              "data": {"policy": f"multusNamespace: {multus}\ndefaultNetworks: [everyone]\n"}}
    profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
               "metadata": {"name": "storage", "namespace": ns},
               "spec": {"networks": [{"name": "stor", "interface": "stor0"}]}}
    try:
        for obj in (nad("everyone", multus, {"type": "whereabouts", "range": "10.71.0.0/24"}, master="eth5"),
                    nad("stor", ns, {"type": "whereabouts", "range": "10.72.0.0/24"}, master="eth6"), policy, profile):
            ok, out = apply(cp, obj)
            assert ok, out
        result = eventually(lambda: cp.kubectl("delete", "nad", "-n", multus, "everyone", "--dry-run=server",
                                               check=False),
                            "the policy to reach the webhook", until=lambda r: r.returncode != 0)
        assert DENIED in result.stderr
        assert (f"NAD {multus}/everyone is in defaultNetworks (the policy's, which repeat Multus's config)"
                in result.stderr)
        assert "every new pod outside systemNamespaces (kube-system) would fail to start" in result.stderr
        assert "[nad-in-use]" in result.stderr

        eventually(lambda: cp.kubectl("delete", "nad", "-n", ns, "stor", "--dry-run=server", check=False),
                   "the profile to reach the cache", until=lambda r: "Warning" in r.stderr)
        result = cp.kubectl("delete", "nad", "-n", ns, "stor", check=False)
        assert result.returncode == 0, result.stderr
        assert f"NAD {ns}/stor is named by NetworkProfile(s) {ns}/storage: pods created with them" in result.stderr
    finally:
        cp.kubectl("delete", "configmap", "multus-webhook-policy", "-n", STATES, check=False)


def test_the_policy_configmaps_multus_namespace_is_where_an_unqualified_default_network_points(
    cp: ControlPlane, ns: str
) -> None:
    """The deployed webhook takes its policy from the ConfigMap, which may move multusNamespace after
    the cache has stored the pods: a DELETE of the NAD they use through it is refused all the same."""
    multus = f"m-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "namespace", multus)
    policy = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "multus-webhook-policy", "namespace": STATES},
              "data": {"policy": f"multusNamespace: {multus}\n"}}
    try:
        ok, out = apply(cp, nad("prim", multus, {"type": "whereabouts", "range": "10.68.0.0/24"}, master="eth4"))
        assert ok, out
        ok, out = apply(cp, policy)
        assert ok, out
        # Admitted once the policy is in force (pod-networks-nad-exists looks for the NAD in {multus}).
        eventually(lambda: apply(cp, pod("app", ns, {"v1.multus-cni.io/default-network": "prim"}))[0],
                   "the policy ConfigMap and the NAD to reach the webhook")
        eventually(lambda: cp.kubectl("delete", "nad", "-n", multus, "prim", "--dry-run=server", check=False),
                   "the pod to reach the cache", until=lambda r: r.returncode != 0)
        result = cp.kubectl("delete", "nad", "-n", multus, "prim", check=False)
        assert result.returncode == 1
        assert f"NAD {multus}/prim is still used by 1 pod(s) ({ns}/app)" in result.stderr
        assert "[nad-in-use]" in result.stderr
    finally:
        cp.kubectl("delete", "configmap", "multus-webhook-policy", "-n", STATES, check=False)
        cp.kubectl("delete", "pod", "-n", ns, "app", "--wait=false", check=False)


def test_the_cache_recovers_after_an_apiserver_restart(
    cp: ControlPlane, live_webhook: WebhookServer, ns: str, tmp_path: Path
) -> None:
    host_local = nad("hl", ns, {"type": "host-local", "subnet": "10.65.0.0/24"})
    add_node(cp, "node-x")
    ok, out = dry_run(cp, host_local)
    assert ok, out

    cp.stop_apiserver()
    # A webhook that starts now cannot sync: it is alive but not ready. The running one stays ready
    # on the cache it has.
    late = WebhookServer(tmp_path, ["--kubeconfig", str(cp.kubeconfig)])
    late.start()
    try:
        status, reason = late.readyz()
        assert status == 503
        assert "cluster cache not synced" in reason
        assert live_webhook.readyz()[0] == 200

        cp.start_apiserver()
        eventually(lambda: late.readyz()[0] == 200, "the late webhook's first sync")
    finally:
        late.stop()

    # Changes made after the restart reach the running webhook's cache: its watches came back.
    add_node(cp, "node-y")
    eventually(lambda: denied_with("host-local on a cluster of 2 nodes")(dry_run(cp, host_local)),
               "the node created after the restart to reach the cache")
    report_binaries(cp, "node-x", ["macvlan"])
    report_binaries(cp, "node-y", ["macvlan", "host-local"])
    ok, out = eventually(lambda: dry_run(cp, host_local), "the node states made after the restart to reach the cache",
                         until=lambda r: "missing on node(s) node-x" in r[1])
    assert "Warning: spec.config.ipam.type: the CNI binary 'host-local' is missing on node(s) node-x" in out
    # Only node-y can run the NAD now: host-local on one node is no longer refused.
    assert ok, out
    assert "[nad-host-local-multi-node]" not in out
    # The new apiserver's watch cache starts after the versions the watches had reached: they were
    # told 410 Gone and listed again.
    assert "resourceVersion expired (410 Gone); listing again" in (live_webhook.dir / "webhook.log").read_text()


def test_pods_are_read_as_metadata_and_only_annotated_ones_are_kept(cp: ControlPlane, ns: str) -> None:
    ok, out = apply(cp, nad("meta", ns, {"type": "whereabouts", "range": "10.66.0.0/24"}))
    assert ok, out
    eventually(lambda: apply(cp, pod("with", ns, {"k8s.v1.cni.cncf.io/networks": "meta"}))[0], "the pod admitted")
    ok, out = apply(cp, pod("without", ns, {"unrelated": "x"}))
    assert ok, out

    view = LiveClusterView(load_client(str(cp.kubeconfig)))
    pods = next(r for r in view.resources if r.kind == "Pod")
    listed = view._get_json(pods.path, [("fieldSelector", f"metadata.namespace={ns}")], METADATA_LIST)
    assert listed["kind"] == "PartialObjectMetadataList"
    assert {i["metadata"]["name"] for i in listed["items"]} == {"with", "without"}
    assert all("spec" not in i for i in listed["items"])

    view.list_once()  # the one-shot snapshot a CLI takes
    assert view.known
    # What the first sync stored is frozen: full collections do not walk the cache (webhook/heap.py).
    stored = view.nad(ns, "meta")
    assert stored is not None
    assert all(o is not stored for o in gc.get_objects())
    assert view.pods_using(ns, "meta", first=5, multus_namespace="kube-system") == (1, [ObjectRef(ns, "with")])
    assert all(key[0] != ns or key[1] == "with" for key in view._pod_refs)



def check_kubeconfig(cp: ControlPlane, obj: dict[str, Any]) -> dict[str, Any]:
    """`check --kubeconfig` of ``obj``: its one result (json output)."""
    result = subprocess.run([sys.executable, "-m", "webhook.cli", "check", "-", "--kubeconfig", str(cp.kubeconfig),
                             "--output", "json"], input=json.dumps(obj), capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    checked: dict[str, Any] = json.loads(result.stdout)["results"][0]
    return checked


def test_check_kubeconfig_reads_the_cluster_the_webhook_does(cp: ControlPlane, ns: str) -> None:
    """check listed Nodes as metadata only (every node schedulable, taints and cordons lost), no
    ResourceQuotas, and MultusNodeStates of every namespace where the webhook reads its own only."""
    host_local = nad("hl", ns, {"type": "host-local", "subnet": "10.69.0.0/24"})
    add_node(cp, "node-cp")
    add_node(cp, "node-w")
    cp.kubectl("taint", "nodes", "node-cp", "node-role.kubernetes.io/control-plane:NoSchedule")
    elsewhere = f"other-{uuid.uuid4().hex[:8]}"  # another install's, or one left behind
    cp.kubectl("create", "namespace", elsewhere)
    cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
        "metadata": {"name": "node-w", "namespace": elsewhere}}))
    cp.kubectl("patch", "multusnodestate", "node-w", "-n", elsewhere, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"nodeName": "node-w", "cniBinaries": ["static"], "multusReady": True}}))
    cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "affinity", "namespace": ns},
        "spec": {"hard": {"pods": "10"}, "scopes": ["CrossNamespacePodAffinity"]}}))
    try:
        # The webhook: the tainted node does not count, and the other namespace's state is not read.
        _, out = eventually(lambda: dry_run(cp, host_local), "the taint to reach the cache", until=lambda r: r[0])
        assert "host-local" not in out, out
        assert "nad-cni-binaries" not in out, out
        checked = check_kubeconfig(cp, host_local)
        assert checked["verdict"] == "allow", checked
        ok, out = apply(cp, host_local)
        assert ok, out
        gated = check_kubeconfig(cp, pod("app", ns, {"k8s.v1.cni.cncf.io/networks": "hl"}))
        assert "has ResourceQuota affinity with the scope CrossNamespacePodAffinity" in json.dumps(gated), gated
    finally:
        cp.kubectl("delete", "namespace", elsewhere, "--wait=false")
