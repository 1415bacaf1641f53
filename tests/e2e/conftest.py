"""Fixtures shared by the e2e modules."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from webhook.agent.standin import StandInHost
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually, register_webhook
from webhook.names import AGENT_POD_LABELS, NAMESPACE

IMAGE = "registry.invalid/none:never-pulled"  # no kubelet: never pulled


@pytest.fixture
def host() -> Iterator[StandInHost]:
    """A temporary directory standing for a node's root file system."""
    h = StandInHost()
    yield h
    h.cleanup()


def _boot(cp: ControlPlane, node: str, boot_id: str) -> None:
    cp.kubectl("patch", "node", node, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"nodeInfo": {"bootID": boot_id}}}))


@pytest.fixture(scope="module")
def boot() -> Callable[[ControlPlane, str, str], None]:
    """``boot(cp, node, boot_id)``: what a kubelet reports of a (new) boot."""
    return _boot


@pytest.fixture(scope="module")
def gate_cp(scheduler: ControlPlane, schedulable_node: Callable[..., None]) -> ControlPlane:
    """The scheduler's cluster with node-a and node-b schedulable, on boot-1, each with an agent pod
    (which no kubelet runs): what the readiness gate's pod affinity is to find."""
    for name in ("node-a", "node-b"):
        schedulable_node(name)
        _boot(scheduler, name, "boot-1")
        scheduler.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"agent-{name}", "namespace": NAMESPACE, "labels": AGENT_POD_LABELS},
            "spec": {"nodeName": name, "containers": [{"name": "agent", "image": IMAGE}]}}))
    return scheduler


@pytest.fixture(scope="module")
def gate_server(gate_cp: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """serve, registered, with the controller deciding at a 1 s agent interval (a 3 s grace period, not 30 s)."""
    s = WebhookServer(tmp_path_factory.mktemp("gate-webhook"), [
        "--kubeconfig", str(gate_cp.kubeconfig), "--agent-interval", "1", "--lease-duration", "3",
        "--renew-deadline", "2", "--retry-period", "0.5"])
    s.start()
    eventually(lambda: s.readyz()[0] == 200, "the live cache's first sync")
    register_webhook(gate_cp, s)
    yield s
    s.stop()
