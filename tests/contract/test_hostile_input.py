"""Hostile input against the running server: arbitrary bytes and arbitrary AdmissionReviews never
produce a 500 or an unhandled exception; every answer is a 4xx with a reason or a well-formed
AdmissionReview."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.dev.controlplane import WebhookServer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
KINDS = ["NetworkAttachmentDefinition", "Pod", "NetworkProfile", "ConfigMap", ""]
OPERATIONS = ["CREATE", "UPDATE", "DELETE", "CONNECT"]
ANNOTATIONS = ["k8s.v1.cni.cncf.io/networks", "v1.multus-cni.io/default-network", "k8s.cni.cncf.io/resourceName"]
LABELS = ["multus-webhook.io/network-profile"]


def metadata() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional={
        "name": st.text(max_size=20) | json_values,
        "namespace": st.sampled_from(["default", "kube-system", ""]) | json_values,
        "annotations": st.dictionaries(st.sampled_from(ANNOTATIONS) | st.text(max_size=10),
                                       st.text(max_size=60) | json_values, max_size=3) | json_values,
        "labels": st.dictionaries(st.sampled_from(LABELS) | st.text(max_size=10), st.text(max_size=20), max_size=2)
        | json_values,
    })


objects = st.fixed_dictionaries({}, optional={
    "apiVersion": st.text(max_size=20),
    "kind": st.sampled_from(KINDS) | json_values,
    "metadata": metadata() | json_values,
    "spec": st.fixed_dictionaries({}, optional={
        "config": st.text(max_size=80) | json_values.map(json.dumps) | json_values,
        "networks": json_values,
        "containers": json_values,
        "affinity": json_values,
        "nodeName": json_values,
    }) | json_values,
})

reviews = st.fixed_dictionaries(
    {"apiVersion": st.just("admission.k8s.io/v1") | st.text(max_size=10),
     "kind": st.just("AdmissionReview") | json_values},
    optional={"request": st.fixed_dictionaries(
        {"uid": st.uuids().map(str) | json_values,
         "kind": st.fixed_dictionaries({"group": st.text(max_size=5), "version": st.just("v1"),
                                        "kind": st.sampled_from(KINDS)}) | json_values,
         "operation": st.sampled_from(OPERATIONS) | json_values},
        optional={"object": objects | json_values, "oldObject": objects | json_values,
                  "namespace": st.text(max_size=10) | json_values, "name": json_values,
                  "dryRun": json_values, "userInfo": json_values})},
)


GROUPS = {"NetworkAttachmentDefinition": "k8s.cni.cncf.io", "Pod": "", "NetworkProfile": "multus-webhook.io"}


@st.composite
def well_formed_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """Reviews the model accepts, of the kinds served: hostile values only inside the object, so that
    they reach the rules and the mutation (arbitrary reviews are nearly all refused with a 400 first)."""
    kind = draw(st.sampled_from(sorted(GROUPS)))
    operation = draw(st.sampled_from(["CREATE", "UPDATE", "DELETE"]))
    obj = {"apiVersion": "v1", "kind": kind, "metadata": draw(metadata()),
           "spec": draw(objects.map(lambda o: o.get("spec", {})))}
    request: dict[str, Any] = {"uid": str(draw(st.uuids())), "operation": operation,
                               "kind": {"group": GROUPS[kind], "version": "v1", "kind": kind},
                               "namespace": draw(st.sampled_from(["default", "team-a"]))}
    request["oldObject" if operation == "DELETE" else "object"] = obj
    if operation == "UPDATE":
        request["oldObject"] = {**obj, "metadata": draw(metadata())}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class Conn:
    def __init__(self, server: WebhookServer) -> None:
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))
        self.port = server.port
        self.conn = self._new()

    def _new(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()
            self.conn = self._new()
            raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    with WebhookServer(tmp_path_factory.mktemp("fuzz")) as srv:
        yield srv


@pytest.fixture(scope="module")
def conn(server: WebhookServer) -> Conn:
    return Conn(server)


def check_answer(status: int, body: bytes, uid: Any = None) -> None:
    assert status != 500, body
    assert b"Traceback" not in body
    if status == 200:
        answer = json.loads(body)
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        response = answer["response"]
        assert isinstance(response["allowed"], bool)
        if uid is not None:
            assert response["uid"] == uid
        if not response["allowed"]:
            assert response["status"]["code"] >= 400
            assert response["status"]["message"]
            # A handler that raised is answered as a review too (code 500, InternalError): still a bug.
            assert response["status"]["code"] != 500, answer
            assert response["status"].get("reason") != "InternalError", answer
    else:
        assert 400 <= status < 500, (status, body)
        assert json.loads(body)["message"]


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FUZZ
@given(body=st.binary(max_size=300), path=st.sampled_from(["/validate", "/mutate"]))
def test_arbitrary_bytes(conn: Conn, body: bytes, path: str) -> None:
    check_answer(*conn.post(path, body))


@FUZZ
@given(payload=reviews, path=st.sampled_from(["/validate", "/mutate"]))
def test_arbitrary_admission_reviews(conn: Conn, payload: dict[str, Any], path: str) -> None:
    request = payload.get("request")
    uid = request.get("uid") if isinstance(request, dict) and isinstance(request.get("uid"), str) else None
    check_answer(*conn.post(path, json.dumps(payload).encode()), uid=uid)


@FUZZ
@given(payload=well_formed_reviews(), path=st.sampled_from(["/validate", "/mutate"]))
def test_hostile_objects_in_well_formed_reviews(conn: Conn, payload: dict[str, Any], path: str) -> None:
    status, body = conn.post(path, json.dumps(payload).encode())
    assert status == 200, body
    check_answer(status, body, uid=payload["request"]["uid"])


def nad_review(obj: dict[str, Any]) -> bytes:
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "k8s.cni.cncf.io", "version": "v1", "kind": obj["kind"]},
        "operation": "CREATE", "namespace": "default", "object": obj}}).encode()


def test_deeply_nested_config_and_huge_annotations_are_answered(conn: Conn) -> None:
    nested_config = "[" * 50_000 + "]" * 50_000
    nad = {"kind": "NetworkAttachmentDefinition", "metadata": {"name": "deep"}, "spec": {"config": nested_config}}
    status, body = conn.post("/validate", nad_review(nad))
    check_answer(status, body)
    assert json.loads(body)["response"]["allowed"] is False

    huge = ",".join(f"net-{i}" for i in range(200_000))  # ~2 MiB networks annotation
    pod = {"kind": "Pod", "metadata": {"name": "p", "annotations": {"k8s.v1.cni.cncf.io/networks": huge}},
           "spec": {}}
    status, body = conn.post("/validate", nad_review(pod))
    check_answer(status, body)
