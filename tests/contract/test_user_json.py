"""User-written JSON inside objects (a pod's networks annotation, a NAD's spec.config) that Python's json
module reads differently from Go's encoding/json, through the real server: never a 500, and the
answer Multus's own reading calls for, naming the field."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from webhook.dev.controlplane import WebhookServer
from webhook.names import READY_LABEL

NETWORKS = "k8s.v1.cni.cncf.io/networks"
MACVLAN = json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth1",
                      "ipam": {"type": "whereabouts", "range": "10.9.0.0/24"}})


def nad(name: str, namespace: str, config: str = MACVLAN) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": config}}


def pod(networks: str, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": namespace, "annotations": {NETWORKS: networks}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


CLUSTER = [
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {READY_LABEL: "true"}}},
    {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
     "metadata": {"name": "n1", "namespace": "multus-webhook"},
     "status": {"nodeName": "n1", "cniBinaries": ["macvlan", "whereabouts"], "multusReady": True}},
    nad("net-a", "default"), nad("net-a", "team-a"), nad("net-a", "victim"), nad("secret", "victim"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    work: Path = tmp_path_factory.mktemp("user-json")
    (work / "cluster.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": CLUSTER}))
    (work / "policy.yaml").write_text("rules:\n  pod-networks-namespace-isolation: deny\n")
    with WebhookServer(work, ["--cluster-state", str(work / "cluster.json"),
                              "--policy", str(work / "policy.yaml")]) as srv:
        yield srv


def answer(server: WebhookServer, obj: dict[str, Any], path: str = "/validate") -> dict[str, Any]:
    """The response of a CREATE review of ``obj``; fails on anything but a 200 AdmissionReview. A pod
    reaches /validate as /mutate leaves it, as the apiserver sends it (its readiness gate, its mark)."""
    if path == "/validate" and obj["kind"] == "Pod":
        mutation = _post(server, obj, "/mutate")
        if "patch" in mutation:
            obj = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(mutation["patch"])))
    return _post(server, obj, path)


def _post(server: WebhookServer, obj: dict[str, Any], path: str) -> dict[str, Any]:
    kind = obj["kind"]
    body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "", "version": "v1", "kind": kind}, "operation": "CREATE",
        "namespace": obj["metadata"]["namespace"], "object": obj}}).encode()
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=30,
                                       context=ssl.create_default_context(cafile=str(server.ca_file)))
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        status, text = resp.status, resp.read()
    finally:
        conn.close()
    assert status == 200, text
    response: dict[str, Any] = json.loads(text)["response"]
    assert response["uid"] == "u1"
    return response


def denial(response: dict[str, Any]) -> str:
    assert response["allowed"] is False, response
    assert response["status"]["code"] == 403, response
    message: str = response["status"]["message"]
    assert "internal error" not in message
    return message


# Answers checked against encoding/json (Go 1.26): a lone surrogate escape reads as U+FFFD.


def test_a_lone_surrogate_key_is_ignored_as_multus_ignores_it(server: WebhookServer) -> None:
    networks = '[{"name":"net-a","\\ud800":1}]'
    response = answer(server, pod(networks))
    assert response["allowed"] is True
    assert any(f"{NETWORKS}[0].\ufffd is not a field Multus reads" in w for w in response["warnings"])
    assert answer(server, pod(networks), "/mutate")["allowed"] is True


def test_a_lone_surrogate_interface_is_answered(server: WebhookServer) -> None:
    # Multus names the interface U+FFFD, which libcni and the kernel accept.
    networks = '[{"name":"net-a","interface":"\\ud800"}]'
    assert answer(server, pod(networks))["allowed"] is True
    assert answer(server, pod(networks), "/mutate")["allowed"] is True


def test_a_lone_surrogate_does_not_let_another_problem_through(server: WebhookServer) -> None:
    networks = '[{"name":"net-a","mac":"not-a-mac"},{"name":"net-a","interface":"\\ud800"}]'
    assert f"{NETWORKS}[0].mac 'not-a-mac' is not a MAC address" in denial(answer(server, pod(networks)))


def test_a_nad_type_with_a_lone_surrogate_is_a_missing_binary(server: WebhookServer) -> None:
    message = denial(answer(server, nad("odd", "default", '{"cniVersion":"1.0.0","type":"\\ud800"}')))
    assert "spec.config.type is \ufffd, but no node has the CNI binary" in message


def test_a_nad_number_go_cannot_read_is_denied_as_invalid_json(server: WebhookServer) -> None:
    config = '{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","mtu":' + "1" * 4301 + "}"
    message = denial(answer(server, nad("big", "default", config)))
    assert "spec.config is not valid JSON: 1111111111111111... (4301 characters) is beyond the range" in message
    assert "at line 1 column 62" in message


def test_an_ips_prefix_of_thousands_of_digits_is_denied(server: WebhookServer) -> None:
    networks = json.dumps([{"name": "net-a", "ips": ["10.9.0.5/" + "1" * 4301]}])
    assert f"{NETWORKS}[0].ips[0] '10.9.0.5/1111" in denial(answer(server, pod(networks)))


@pytest.mark.parametrize("networks", [
    '[{"name":"net-a","namespace":"team-a"}]',
    '[{"name":"net-a","NAMESPACE":"victim","namespace":"team-a"}]',
])
def test_namespace_isolation_allows_the_namespace_multus_reads(server: WebhookServer, networks: str) -> None:
    assert answer(server, pod(networks, "team-a"))["allowed"] is True


@pytest.mark.parametrize("networks", [
    # Go: namespace "victim" in each (the last matching key in text order; the long s folds to s).
    '[{"name":"net-a","namespace":"x","NAMESPACE":"team-a","namespace":"victim"}]',
    '[{"name":"net-a","name\u017fpace":"victim"}]',
    '[{"name":"net-a","namespace":"team-a","name\\u017fpace":"victim"}]',
])
def test_namespace_isolation_sees_the_namespace_multus_reads(server: WebhookServer, networks: str) -> None:
    message = denial(answer(server, pod(networks, "team-a")))
    assert f'metadata.annotations["{NETWORKS}"][0] selects victim/net-a from another namespace' in message
