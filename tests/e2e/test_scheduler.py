"""What the real kube-scheduler does with a pod whose required podAffinity names the node's agent pod and
its multus-ready label: the behaviour a design that holds pods off nodes until Multus is ready there
would rely on, proved against kube-scheduler itself rather than assumed from its documentation.

No kubelet runs: a bound pod stays in phase Pending with spec.nodeName set, which is all these tests
look at. They run their own control plane (the ``cluster`` fixture): they create Nodes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webhook.dev.controlplane import ControlPlane, eventually

AGENTS = "multus-webhook"
READY = "multus-webhook.io/multus-ready"
AGENT_LABELS = {"app.kubernetes.io/component": "agent"}
NODES = ("node-a", "node-b")
# Never pulled: no kubelet runs.
IMAGE = "registry.invalid/none:never-pulled"
NEEDS_A_READY_AGENT = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
    "labelSelector": {"matchLabels": {**AGENT_LABELS, READY: "true"}},
    "namespaces": [AGENTS],
    "topologyKey": "kubernetes.io/hostname",
}]}}


@pytest.fixture(scope="module")
def cp(scheduler: ControlPlane, schedulable_node: Callable[..., None]) -> ControlPlane:
    for name in NODES:
        schedulable_node(name)
    return scheduler


def force_delete_pods(cp: ControlPlane, namespace: str, *names: str) -> None:
    # A bound pod's graceful deletion waits for a kubelet, and there is none.
    cp.kubectl("delete", "pods", "-n", namespace, *(names or ("--all",)), "--grace-period=0", "--force",
               "--wait=false", check=False)


@pytest.fixture
def ns(cp: ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cp.kubectl("create", "namespace", name)
    yield name
    # Pods left Pending would be scheduled during a later test; the namespace itself is never removed
    # (no namespace controller here).
    force_delete_pods(cp, name)


@pytest.fixture
def agent(cp: ControlPlane) -> Iterator[Callable[..., str]]:
    """``agent(node, ready=False)``: an agent pod in multus-webhook placed on ``node`` the way a DaemonSet
    places it (spec.nodeName, no scheduler); removed after the test so no later test sees a ready agent."""
    created: list[str] = []

    def create(node: str, *, ready: bool = False) -> str:
        name = f"agent-{uuid.uuid4().hex[:8]}"
        labels = {**AGENT_LABELS, **({READY: "true"} if ready else {})}
        create_pod(cp, AGENTS, name, labels=labels, node=node)
        created.append(name)
        return name

    yield create
    if created:
        force_delete_pods(cp, AGENTS, *created)


def create_pod(cp: ControlPlane, namespace: str, name: str, *, labels: dict[str, str] | None = None,
               node: str | None = None, affinity: dict[str, Any] | None = None) -> None:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": IMAGE}]}
    if node:
        spec["nodeName"] = node
    if affinity:
        spec["affinity"] = affinity
    cp.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec,
    }))


def get_pod(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = json.loads(cp.kubectl("get", "pod", "-n", namespace, name, "-o", "json").stdout)
    return pod


def scheduled_condition(pod: dict[str, Any]) -> dict[str, Any]:
    for condition in pod.get("status", {}).get("conditions", []):
        if condition["type"] == "PodScheduled":
            return dict(condition)
    return {}


def is_bound(pod: dict[str, Any]) -> bool:
    return bool(pod["spec"].get("nodeName"))


def is_unschedulable(pod: dict[str, Any]) -> bool:
    condition = scheduled_condition(pod)
    return condition.get("status") == "False" and condition.get("reason") == "Unschedulable"


def bound(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return eventually(lambda: get_pod(cp, namespace, name), f"pod {name} to be bound", until=is_bound)


def unschedulable(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return eventually(lambda: get_pod(cp, namespace, name), f"the scheduler to find pod {name} unschedulable",
                      until=is_unschedulable)


def event_reasons(cp: ControlPlane, namespace: str, name: str) -> list[str]:
    out = cp.kubectl("get", "events", "-n", namespace, "--field-selector",
                     f"involvedObject.kind=Pod,involvedObject.name={name}", "-o", "json").stdout
    return [e["reason"] for e in json.loads(out)["items"]]


def set_ready_label(cp: ControlPlane, agent: str, ready: bool) -> None:
    cp.kubectl("label", "pod", "-n", AGENTS, agent, f"{READY}=true" if ready else f"{READY}-")


def test_a_plain_pod_is_bound_to_one_of_the_nodes(cp: ControlPlane, ns: str) -> None:
    create_pod(cp, ns, "plain")

    pod = bound(cp, ns, "plain")

    assert pod["spec"]["nodeName"] in NODES
    assert scheduled_condition(pod)["status"] == "True"
    eventually(lambda: event_reasons(cp, ns, "plain"), "the Scheduled event", until=lambda r: "Scheduled" in r)


def test_a_pod_needing_a_ready_agent_waits_for_the_label_then_lands_on_the_agents_node(
        cp: ControlPlane, ns: str, agent: Callable[..., str]) -> None:
    agent_name = agent("node-a")
    create_pod(cp, ns, "workload", affinity=NEEDS_A_READY_AGENT)

    # The scheduler has tried and given up for now: proof that it is held, not merely not reached yet.
    waiting = unschedulable(cp, ns, "workload")
    assert not is_bound(waiting)
    assert "didn't match pod affinity rules" in scheduled_condition(waiting)["message"]
    eventually(lambda: event_reasons(cp, ns, "workload"), "the FailedScheduling event",
               until=lambda r: "FailedScheduling" in r)

    set_ready_label(cp, agent_name, True)
    labelled = time.monotonic()
    pod = bound(cp, ns, "workload")
    print(f"bound {time.monotonic() - labelled:.2f}s after the agent pod was labelled ready")

    assert pod["spec"]["nodeName"] == "node-a"
    assert scheduled_condition(pod)["status"] == "True"


def test_removing_the_label_unbinds_nothing_and_holds_new_pods(
        cp: ControlPlane, ns: str, agent: Callable[..., str]) -> None:
    # node-b here, node-a in the test before: the pod follows the ready agent, whichever node it is on.
    agent_name = agent("node-b", ready=True)
    create_pod(cp, ns, "first", affinity=NEEDS_A_READY_AGENT)
    assert bound(cp, ns, "first")["spec"]["nodeName"] == "node-b"

    set_ready_label(cp, agent_name, False)
    create_pod(cp, ns, "second", affinity=NEEDS_A_READY_AGENT)

    # The second pod found unschedulable means the scheduler has seen the label go; the first pod is
    # still where it was (spec.nodeName cannot be changed, and nothing evicts it).
    assert not is_bound(unschedulable(cp, ns, "second"))
    first = get_pod(cp, ns, "first")
    assert first["spec"]["nodeName"] == "node-b"
    assert scheduled_condition(first)["status"] == "True"
    assert "deletionTimestamp" not in first["metadata"]
    assert set(event_reasons(cp, ns, "first")) <= {"Scheduled"}
