"""Pods whose selection Multus never reads are left alone by both pod webhooks, as their
matchConditions already select: host-network pods (no CNI plugin runs for them) and static pods'
mirrors (refusing one only leaves Multus no pod to read)."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.admission.handlers import AdmissionContext, mutate, validate
from webhook.admission.review import AdmissionRequest
from webhook.cluster.static import StaticClusterView
from webhook.multus.selection import MIRROR_ANNOTATION, judged

READY_NODE = {"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": "n1", "labels": {"multus-webhook.io/multus-ready": "true"}}}


def pod(spec: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "apps",
                         "annotations": {"k8s.v1.cni.cncf.io/networks": "missing", **annotations}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def review(obj: dict[str, Any]) -> AdmissionRequest:
    return AdmissionRequest.model_validate({
        "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "name": "p", "namespace": "apps", "object": obj})


CTX = AdmissionContext(view=StaticClusterView([READY_NODE]))


def test_an_ordinary_pod_naming_a_missing_nad_is_refused_and_given_the_affinity() -> None:
    # The baseline the cases below differ from.
    obj = pod({}, {})
    assert judged(obj)
    assert not validate(review(obj), CTX).allowed
    assert mutate(review(obj), CTX).patch


@pytest.mark.parametrize(("spec", "annotations"), [
    ({"hostNetwork": True}, {}),
    ({"nodeName": "n1"}, {MIRROR_ANNOTATION: "4a7f0c"}),
], ids=["host-network", "mirror"])
def test_a_pod_multus_never_reads_is_allowed_and_left_alone(spec: dict[str, Any], annotations: dict[str, str]) -> None:
    obj = pod(spec, annotations)
    assert not judged(obj)
    response = validate(review(obj), CTX)
    assert response.allowed
    assert not response.warnings
    assert mutate(review(obj), CTX).patch == ()


def test_host_network_false_is_an_ordinary_pod() -> None:
    assert judged(pod({"hostNetwork": False}, {}))
