"""Bindings through /validate: the apiserver copies a Binding's annotations onto the pod unjudged."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.admission.handlers import AdmissionContext, validate
from webhook.admission.review import AdmissionRequest
from webhook.rules import Policy, Severity, registered


def binding(annotations: dict[str, str] | None) -> AdmissionRequest:
    metadata: dict[str, Any] = {"name": "web-7d9f-x2k4q", "namespace": "apps"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return AdmissionRequest.model_validate({
        "uid": "u", "kind": {"version": "v1", "kind": "Binding"}, "subResource": "binding", "name": "web-7d9f-x2k4q",
        "namespace": "apps", "operation": "CREATE",
        "object": {"apiVersion": "v1", "kind": "Binding", "metadata": metadata,
                   "target": {"kind": "Node", "name": "n1"}}})


@pytest.mark.parametrize("annotations", [None, {}, {"team": "blue"}])
def test_a_binding_without_a_selection_is_allowed(annotations: dict[str, str] | None) -> None:
    assert validate(binding(annotations), AdmissionContext()).allowed


def test_a_binding_that_sets_a_selection_is_refused_naming_the_pod_and_the_fields() -> None:
    response = validate(binding({"k8s.v1.cni.cncf.io/networks": "data@lo", "v1.multus-cni.io/default-network": "x"}),
                        AdmissionContext())
    assert not response.allowed
    assert response.code == 403
    assert response.message.startswith(
        "the Binding of pod apps/web-7d9f-x2k4q sets metadata.annotations['k8s.v1.cni.cncf.io/networks'] and "
        "metadata.annotations['v1.multus-cni.io/default-network'], which the apiserver copies onto the pod")


def test_audit_mode_warns_about_such_a_binding() -> None:
    response = validate(binding({"k8s.v1.cni.cncf.io/networks": "data"}), AdmissionContext(policy=Policy(audit=True)))
    assert response.allowed
    assert response.warnings[0].startswith("the Binding of pod apps/web-7d9f-x2k4q sets")


def test_the_refusal_is_a_rule_of_its_own() -> None:
    rule = registered()["pod-binding-selection"]
    assert (rule.kinds, rule.severity) == (frozenset({"Binding"}), Severity.DENY)
    assert "host-network pod" in rule.doc
    response = validate(binding({"k8s.v1.cni.cncf.io/networks": "data"}), AdmissionContext())
    assert response.message.endswith("bind it without that annotation [pod-binding-selection]")


@pytest.mark.parametrize(("setting", "warned"), [("warn", True), ("off", False)])
def test_a_policy_sets_the_binding_rule(setting: str, warned: bool) -> None:
    policy = Policy.from_text(f"rules:\n  pod-binding-selection: {setting}\n", set(registered()), "policy")
    response = validate(binding({"k8s.v1.cni.cncf.io/networks": "data"}), AdmissionContext(policy=policy))
    assert response.allowed
    assert [w.startswith("the Binding of pod apps/web-7d9f-x2k4q sets") for w in response.warnings] == \
        ([True] if warned else [])
