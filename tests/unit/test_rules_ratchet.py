"""UPDATEs are ratcheted as Kubernetes ratchets its own validation: what a rule would refuse is only a
warning when the update leaves all that the rule judges as it was (the problem was already there: the
object was created while the webhook was away or in audit mode, or the cluster changed since). A
change of what the rule judges is judged in full. Through the admission handler, as the apiserver
asks, and through the engine for the NAD rules that need the cluster."""

from __future__ import annotations

import copy
import json
from typing import Any

from webhook.admission.handlers import AdmissionContext, validate
from webhook.admission.review import AdmissionRequest
from webhook.cluster.static import StaticClusterView
from webhook.names import ALLOW_HOST_LOCAL_ANNOTATION
from webhook.rules import Policy, Severity, Subject, evaluate, registered, verdict

NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
NAD = "NetworkAttachmentDefinition"
ALREADY = "allowed because it was already there"


def running_pod(annotations: dict[str, str]) -> dict[str, Any]:
    """A pod being deleted, held by a finalizer: its owner's controller must be able to remove it."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "annotations": annotations,
                         "finalizers": ["batch.kubernetes.io/job-tracking"],
                         "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}


def changed(obj: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    new["metadata"].update(metadata)
    return new


def update(obj: dict[str, Any], old: dict[str, Any], kind: str = "Pod") -> tuple[bool, str, list[str]]:
    request = AdmissionRequest.model_validate({
        "uid": "u", "kind": {"kind": kind}, "operation": "UPDATE", "namespace": "default",
        "object": obj, "oldObject": old})
    response = validate(request, AdmissionContext())
    return response.allowed, response.message, list(response.warnings)


def test_a_finalizer_is_removed_from_a_pod_whose_annotation_is_now_refused() -> None:
    old = running_pod({NETWORKS: "net-a@eth0"})
    allowed, _, warnings = update(changed(old, finalizers=[]), old)
    assert allowed
    [warning] = warnings
    assert "requests interface eth0" in warning
    assert (f"({ALREADY}: this update leaves annotation {NETWORKS} as it was; rule pod-networks-interface-names "
            "refuses it once it changes) [pod-networks-interface-names]") in warning


def test_a_changed_annotation_is_judged_in_full() -> None:
    old = running_pod({NETWORKS: "net-a@eth0"})
    allowed, message, _ = update(changed(old, annotations={NETWORKS: "net-a@lo"}), old)
    assert not allowed
    assert "requests interface lo" in message
    plain = running_pod({})
    allowed, message, _ = update(changed(plain, annotations={NETWORKS: "net-a@eth0"}), plain)
    assert not allowed
    assert "requests interface eth0" in message
    # Each rule by what it judges: a new default network leaves the networks annotation's rule ratcheted.
    allowed, _, warnings = update(changed(old, annotations={NETWORKS: "net-a@eth0", DEFAULT_NETWORK: "kube-system/x"}),
                                  old)
    assert allowed
    assert any(ALREADY in w and "[pod-networks-interface-names]" in w for w in warnings)


def test_a_rule_judging_two_annotations_ratchets_only_when_both_are_unchanged() -> None:
    policy = Policy(severities={"pod-networks-field-names": Severity.DENY})
    old = running_pod({NETWORKS: '[{"name": "net-a", "interfaces": "x0"}]'})

    def findings(new: dict[str, Any]) -> list[tuple[str, str]]:
        subject = Subject(new, "Pod", operation="UPDATE", old_object=old)
        return [(f.rule, str(f.severity)) for f in evaluate(subject, policy) if f.rule == "pod-networks-field-names"]

    assert findings(changed(old, labels={"a": "b"})) == [("pod-networks-field-names", "warn")]
    with_default = changed(old, annotations={**old["metadata"]["annotations"], DEFAULT_NETWORK: "kube-system/x"})
    assert findings(with_default) == [("pod-networks-field-names", "deny")]


def host_local_nad(**annotations: str) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": "hl", "type": "macvlan", "master": "eth1",
              "ipam": {"type": "host-local", "subnet": "10.60.0.0/24"}}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": NAD,
            "metadata": {"name": "hl", "namespace": "default", "annotations": annotations},
            "spec": {"config": json.dumps(config)}}


def test_a_nad_refused_since_a_node_joined_can_still_have_its_metadata_changed() -> None:
    old = host_local_nad()
    view = StaticClusterView([{"kind": "Node", "metadata": {"name": n}} for n in ("n1", "n2")] + [old])

    def judge(new: dict[str, Any], operation: str = "UPDATE") -> str:
        subject = Subject(new, NAD, operation=operation, old_object=old if operation == "UPDATE" else None,
                          view=view)
        findings = [f for f in evaluate(subject, Policy()) if f.rule == "nad-host-local-multi-node"]
        assert findings
        return verdict(findings)

    labelled = changed(old, labels={"team": "blue"})
    assert judge(labelled) == "warn"
    assert judge(labelled, "CREATE") == "deny"
    config = json.loads(old["spec"]["config"])
    assert judge({**old, "spec": {"config": json.dumps({**config, "master": "eth2"})}}) == "deny"

    # What was allowed by the annotation is judged in full once the annotation goes.
    old = host_local_nad(**{ALLOW_HOST_LOCAL_ANNOTATION: "true"})
    assert judge(changed(old, labels={"team": "blue"})) == "warn"
    assert judge(changed(old, annotations={})) == "deny"


def test_a_nad_config_unchanged_by_an_update_is_not_refused() -> None:
    old = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": NAD, "metadata": {"name": "v", "namespace": "default"},
           "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "vlan", "master": "eth0", "vlanId": 5000})}}
    allowed, _, warnings = update(changed(old, labels={"team": "blue"}), old, NAD)
    assert allowed
    assert any("[nad-plugin-vlan-id]" in w and "leaves spec.config as it was" in w for w in warnings)


def test_every_rule_an_update_runs_says_what_it_judges() -> None:
    """A rule without ``judges`` refuses every UPDATE of an object it finds fault with, whatever the
    update changes. Only the rules on the change itself (which say nothing when it changes nothing) may
    go without."""
    on_the_change = {"pod-networks-changed-after-start", "nad-in-use-changed", "pod-network-profile-changed"}
    without = {r.id for r in registered().values() if "UPDATE" in r.operations and not r.judges}
    assert without == on_the_change
