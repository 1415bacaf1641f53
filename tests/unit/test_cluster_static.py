"""The --cluster-state loader: `kubectl get ... -o yaml` Lists and plain multi-document YAML."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook.cluster.static import StaticClusterView
from webhook.cni.config import _parse_cached, parse_nad_config
from webhook.documents import DocumentError
from webhook.multus.profiles import ProfileMerge
from webhook.names import READY_LABEL
from webhook.rules.view import ObjectRef

KUBECTL_LIST = """\
apiVersion: v1
items:
- apiVersion: v1
  kind: Node
  metadata:
    labels:
      kubernetes.io/hostname: worker-1
    name: worker-1
  status:
    nodeInfo:
      bootID: 1b2c
- apiVersion: v1
  kind: Node
  metadata:
    name: worker-2
- apiVersion: k8s.cni.cncf.io/v1
  kind: NetworkAttachmentDefinition
  metadata:
    name: storage
    namespace: apps
  spec:
    config: '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth1",
      "ipam": {"type": "whereabouts", "range": "192.168.10.0/24"}}'
- apiVersion: v1
  kind: Pod
  metadata:
    annotations:
      k8s.v1.cni.cncf.io/networks: storage@net1
    name: db-0
    namespace: apps
  spec:
    containers:
    - image: postgres
      name: db
- apiVersion: v1
  kind: Service
  metadata:
    name: ignored
    namespace: apps
kind: List
metadata:
  resourceVersion: ""
"""

MULTI_DOCUMENT = """\
apiVersion: multus-webhook.io/v1alpha1
kind: MultusNodeState
metadata: {name: worker-1, namespace: multus-webhook}
status: {nodeName: worker-1, cniBinaries: [macvlan, whereabouts], dhcpDaemon: false, multusReady: true,
         bootID: 1b2c, heartbeatTime: "2026-01-01T00:00:00Z"}
---
apiVersion: multus-webhook.io/v1alpha1
kind: NetworkProfile
metadata: {name: storage, namespace: apps}
spec: {networks: [{name: storage}]}
"""


def test_a_kubectl_list_and_a_multi_document_file_make_one_cluster(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(KUBECTL_LIST)
    (tmp_path / "states.yaml").write_text(MULTI_DOCUMENT)
    view = StaticClusterView.from_files([str(tmp_path / "cluster.yaml"), str(tmp_path / "states.yaml")])
    assert view.known
    assert [(n.name, n.cni_binaries) for n in view.nodes()] == [
        ("worker-1", frozenset({"macvlan", "whereabouts"})),
        ("worker-2", None),
    ]
    assert view.nodes()[0].labels == {}  # kubernetes.io/hostname is not one of ours
    # What the controller reads of the pair (boot ids, heartbeat) is kept with them.
    state = view.node_state("worker-1")
    assert state is not None
    assert state["status"]["heartbeatTime"] == "2026-01-01T00:00:00Z"
    assert state["status"]["bootID"] == view.node_object("worker-1")["status"]["nodeInfo"]["bootID"] == "1b2c"
    assert view.cni_inventory_known
    nad = view.nad("apps", "storage")
    assert nad is not None
    assert nad["spec"]["config"].startswith('{"cniVersion"')
    assert view.nad("default", "storage") is None
    assert view.network_profile("apps", "storage") is not None
    assert [str(e.range.first) for e in view.ranges] == ["192.168.10.1"]
    assert view.pods_using("apps", "storage", first=5,
                           multus_namespace="kube-system") == (1, [ObjectRef("apps", "db-0")])
    assert [o["metadata"]["name"] for o in view.objects("Node")] == ["worker-1", "worker-2"]


class _Tracked(dict[str, Any]):
    """A dict a weak reference can follow."""


def test_the_loader_holds_no_object_it_was_given() -> None:
    # A state of thousands of Nodes comes one object at a time: a loader keeping them until the end
    # holds every Node's status and managedFields at once, though only names and labels are kept.
    given: list[weakref.ref[_Tracked]] = []
    held: list[int] = []

    def objects() -> Iterator[dict[str, Any]]:
        for i in range(10):
            name = f"worker-{i}"
            for obj in ({"kind": "Node", "metadata": {"name": name, "labels": {READY_LABEL: "true"}},
                         "status": {"images": [{"names": ["x"]}]}},
                        {"kind": "MultusNodeState", "metadata": {"name": name, "namespace": "multus-webhook"},
                         "status": {"nodeName": name, "cniBinaries": ["macvlan"], "dhcpDaemon": False,
                                    "conditions": [{}]}}):
                tracked = _Tracked(obj)
                given.append(weakref.ref(tracked))
                yield tracked
        held.append(sum(ref() is not None for ref in given))

    view = StaticClusterView(objects())
    assert held[0] <= 1  # at most the last one, still bound while the next is asked for
    assert [(n.name, n.cni_binaries, n.labels) for n in view.nodes()] == [
        (f"worker-{i}", frozenset({"macvlan"}), {READY_LABEL: "true"}) for i in range(10)]


def test_objects_without_namespace_are_in_the_default_namespace(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        # "net", not "n": kubectl reads an unquoted n as false.
        "kind: NetworkAttachmentDefinition\nmetadata: {name: net}\nspec: {config: ''}\n---\n"
        "kind: Pod\nmetadata: {name: p, annotations: {k8s.v1.cni.cncf.io/networks: net}}\n"
    )
    view = StaticClusterView.from_files([str(tmp_path / "s.yaml")], default_namespace="team")
    assert view.nad("team", "net") is not None
    assert view.pods_using("team", "net", first=5, multus_namespace="kube-system") == (1, [ObjectRef("team", "p")])


def test_an_unreadable_state_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: Node\nmetadata: {name: a}\n---\nkind: [\n")
    with pytest.raises(DocumentError, match=r"bad.yaml:5: not valid YAML"):
        StaticClusterView.from_files([str(tmp_path / "bad.yaml")])


def _profile(networks: list[dict[str, str]]) -> dict[str, object]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": "std", "namespace": "team"}, "spec": {"networks": networks}}


def test_profile_merges_follow_the_profile_object() -> None:
    view = StaticClusterView([_profile([{"name": "a"}])])
    assert view.profile_merge("team", "std", None) == view.profile_merge("team", "std", None)
    assert view.profile_merge("team", "std", "b") == ProfileMerge("b,a")
    view.put(_profile([{"name": "c"}]))  # replaced: nothing remembered of the old object may be used
    assert view.profile_merge("team", "std", "b") == ProfileMerge("b,c")
    view.remove(_profile([]))
    assert view.profile_merge("team", "std", "b") is None


def test_nad_binaries_are_those_of_the_stored_config() -> None:
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "n", "namespace": "team", "uid": "u", "managedFields": [{}]},
           "spec": {"config": '{"cniVersion": "0.3.1", "type": "macvlan", "ipam": {"type": "whereabouts"}}'}}
    view = StaticClusterView([nad])
    assert view.nad_binaries("team", "n") == {"macvlan", "whereabouts"}
    assert view.nad("team", "n") == {"metadata": {"name": "n", "namespace": "team"}, "spec": nad["spec"]}
    view.remove(nad)
    assert view.nad_binaries("team", "n") is None


def test_storing_nads_leaves_the_parse_cache_to_the_reviews() -> None:
    # 10,000 stored NADs parsed once each would push out of the cache the configs reviews come back to.
    config = '{"cniVersion": "1.0.0", "type": "macvlan", "name": "test-storing-nads-leaves-the-parse-cache"}'
    StaticClusterView([{"kind": "NetworkAttachmentDefinition", "metadata": {"name": "n", "namespace": "team"},
                        "spec": {"config": config}}])
    misses = _parse_cached.cache_info().misses
    first = parse_nad_config(config, "spec.config")
    assert _parse_cached.cache_info().misses == misses + 1
    assert parse_nad_config(config, "spec.config") is first


def test_a_stored_nad_drops_kubectls_last_applied_copy_and_keeps_the_other_annotations() -> None:
    config = '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0"}'
    last_applied = ('{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", '
                    f'"spec": {{"config": {config!r}}}}}')
    view = StaticClusterView([{
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "n", "namespace": "apps", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": last_applied, "team": "blue"}},
        "spec": {"config": config}}])
    stored = view.nad("apps", "n")
    assert stored is not None
    assert stored["metadata"]["annotations"] == {"team": "blue"}
    assert stored["spec"] == {"config": config}


QUOTAS = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ResourceQuota
  metadata: {name: no-cross-ns, namespace: apps}
  spec:
    hard: {pods: "0"}
    scopeSelector:
      matchExpressions: [{scopeName: CrossNamespacePodAffinity, operator: Exists}]
- apiVersion: v1
  kind: ResourceQuota
  metadata: {name: counted, namespace: apps}
  spec: {hard: {pods: "10"}, scopes: [NotBestEffort, CrossNamespacePodAffinity]}
- apiVersion: v1
  kind: ResourceQuota
  metadata: {name: compute, namespace: apps}
  spec: {hard: {requests.cpu: "4"}, scopes: [NotBestEffort]}
- apiVersion: v1
  kind: ResourceQuota
  metadata: {name: no-cross-ns}
  spec: {hard: {pods: "0"}, scopes: [CrossNamespacePodAffinity]}
"""


def test_the_quotas_that_count_cross_namespace_affinity_are_kept_by_namespace_as_names(tmp_path: Path) -> None:
    (tmp_path / "quotas.yaml").write_text(QUOTAS)
    view = StaticClusterView.from_files([str(tmp_path / "quotas.yaml")])
    assert view.cross_namespace_affinity_quotas("apps") == ("counted", "no-cross-ns")
    assert view.cross_namespace_affinity_quotas("default") == ("no-cross-ns",)
    assert view.cross_namespace_affinity_quotas("other") == ()
    view.put({"kind": "ResourceQuota", "metadata": {"name": "counted", "namespace": "apps"},
              "spec": {"hard": {"pods": "10"}, "scopes": ["NotBestEffort"]}})
    view.remove({"kind": "ResourceQuota", "metadata": {"name": "no-cross-ns", "namespace": "default"}})
    assert view.cross_namespace_affinity_quotas("apps") == ("no-cross-ns",)
    assert view.cross_namespace_affinity_quotas("default") == ()
    # A relist drops those it no longer holds, and a namespace left with none is not kept.
    view.replace("ResourceQuota", [])
    assert view.cross_namespace_affinity_quotas("apps") == ()
    assert view._affinity_quotas == {}
