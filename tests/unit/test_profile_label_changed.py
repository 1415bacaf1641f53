"""Rule pod-network-profile-changed: a profile is applied at CREATE only, so a changed label is said."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.rules import Policy, Subject, evaluate

RULE = "pod-network-profile-changed"
LABEL = "multus-webhook.io/network-profile"


def pod(profile: str | None) -> dict[str, Any]:
    labels = {"app": "web"} if profile is None else {"app": "web", LABEL: profile}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "apps", "labels": labels,
                         "annotations": {"k8s.v1.cni.cncf.io/networks": "data"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def said(new: str | None, old: str | None) -> list[str]:
    subject = Subject(pod(new), "Pod", operation="UPDATE", old_object=pod(old), default_namespace="apps")
    return [f.message for f in evaluate(subject, Policy()) if f.rule == RULE]


@pytest.mark.parametrize(("new", "old", "change"), [
    ("storage", None, "set to 'storage'"),
    ("other", "storage", "changed from 'storage' to 'other'"),
    (None, "storage", "removed (it was 'storage')"),
])
def test_a_changed_profile_label_is_a_warning_saying_the_pod_keeps_its_networks(
        new: str | None, old: str | None, change: str) -> None:
    [message] = said(new, old)
    assert message == (f'metadata.labels["{LABEL}"] {change} on an existing pod: a NetworkProfile is applied only '
                       "when a pod is created, so this pod's k8s.v1.cni.cncf.io/networks annotation and readiness "
                       "gate stay as they are; recreate the pod (for a workload's pods, set the label in its pod "
                       "template)")


@pytest.mark.parametrize("profile", [None, "storage"])
def test_a_label_left_as_it_was_says_nothing(profile: str | None) -> None:
    assert said(profile, profile) == []


def test_create_is_left_to_the_mutation() -> None:
    subject = Subject(pod("storage"), "Pod", operation="CREATE", default_namespace="apps")
    assert [f for f in evaluate(subject, Policy()) if f.rule == RULE] == []
