"""The live cache against a real kube-apiserver, given objects it cannot read: created while no webhook
was there to refuse them (or let through when a rule crashed, which admission turns into a warning).
The cache must still sync, report ready and keep the objects listed after them.

No webhook is registered with this module's apiserver. The cache's parsers are made to fail on the
objects that carry the parser_bug fixture's marker, so the test holds whatever input a parser bug is found with next."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webhook.cluster.live import LiveClusterView
from webhook.cluster.store import NAD, POD
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.kube import load_client
from webhook.rules.view import ObjectRef


def nad(name: str, namespace: str, subnet: str, note: str = "") -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": note or name, "type": "macvlan", "master": "eth1",
              "ipam": {"type": "whereabouts", "range": subnet}}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": json.dumps(config)}}


def pod(name: str, namespace: str, networks: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, "annotations": {"k8s.v1.cni.cncf.io/networks": networks}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}


def create(cp: ControlPlane, *objects: dict[str, Any]) -> None:
    cp.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


@pytest.fixture
def view(cluster: ControlPlane, parser_bug: Callable[..., str]) -> Iterator[LiveClusterView]:
    parser_bug("parse_nad_config", "network_references")
    # Pages of two: the unreadable objects sit in the middle of a paged list.
    live = LiveClusterView(load_client(str(cluster.kubeconfig)), page_size=2)
    yield live
    live.stop()


def test_the_cache_syncs_past_objects_it_cannot_read(cluster: ControlPlane, view: LiveClusterView,
                                                     parser_bug: Callable[..., str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    bug = parser_bug()
    ns = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", ns)
    create(cluster,
           nad("a-good", ns, "10.70.0.0/24"), nad("b-bad", ns, "10.71.0.0/24", note=bug),
           nad("c-good", ns, "10.72.0.0/24"),
           pod("a-before", ns, "a-good"), pod("b-bad", ns, f"a-good,{bug}"), pod("c-after", ns, "c-good"),
           pod("d-after", ns, "a-good"))

    view.start()
    # Synced and in contact: a CRD the module's control plane has just installed may answer a first watch
    # with 429 "storage is (re)initializing" (CI saw it), which readiness reports until a watch opens.
    eventually(view.readiness, "the cache's first sync, in contact", until=lambda r: r == (True, "ok"))
    assert view.nad(ns, "c-good") is not None
    assert view.nad(ns, "b-bad") is not None  # it exists: kept, without ranges or binaries
    assert view.nad_binaries(ns, "b-bad") == frozenset()
    users = view.pods_using(ns, "a-good", first=5, multus_namespace="kube-system")
    assert users == (2, [ObjectRef(ns, "a-before"), ObjectRef(ns, "d-after")])
    assert view.pods_using(ns, "c-good", first=5, multus_namespace="kube-system") == (1, [ObjectRef(ns, "c-after")])
    assert (view.unreadable(NAD), view.unreadable(POD)) == (1, 1)
    assert f"Pod {ns}/b-bad: could not read the annotations" in caplog.text

    # The watches go on past such objects too.
    create(cluster, pod("e-bad", ns, bug), pod("f-after", ns, "c-good"))
    eventually(lambda: view.pods_using(ns, "c-good", first=5,
                                       multus_namespace="kube-system")[0] == 2, "the pod after the unreadable one")
    assert view.unreadable(POD) == 2
    eventually(view.readiness, "the cache in contact", until=lambda r: r == (True, "ok"))
    # A fresh apiserver may answer 429 to a first list; no list or watch failed on these objects.
    assert "failed: a parser bug" not in caplog.text
