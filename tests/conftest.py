"""Shared fixtures: the real control plane (etcd + kube-apiserver, and kube-scheduler where a test asks
for it, built from Go modules) and our webhook server as a real process registered with it.

Outside CI a control plane that cannot be built skips the tests that need it; under CI=true it fails
them: CI must never pass without having talked to a real apiserver.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import pytest

from webhook.dev.controlplane import (
    ControlPlane,
    ControlPlaneError,
    WebhookServer,
    binaries_dir,
    eventually,
    register_webhook,
)

IN_CI = os.environ.get("CI") == "true"


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (timeout(1), a cancelled CI job) and SIGHUP (the terminal closed) end the run the way
    Ctrl-C does, so that fixture teardown stops what the tests started: by default either signal ends
    Python at once, teardown and all. A signal that is ignored (nohup) stays ignored."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, interrupt)


def unavailable(reason: str) -> NoReturn:
    """What a test needs is not on this machine: a failure under CI=true (where it must be), a skip
    elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: what the tests need must be there)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require() -> Callable[[str], NoReturn]:
    """``unavailable`` for test modules in other directories, which cannot import this conftest."""
    return unavailable


@pytest.fixture(scope="session")
def controlplane_bin() -> Path:
    try:
        return binaries_dir()
    except ControlPlaneError as exc:
        unavailable(str(exc))
        raise


def started_controlplane(work_dir: Path, bin_dir: Path, apiserver_args: Sequence[str] = ()) -> ControlPlane:
    cp = ControlPlane(work_dir, bin_dir, apiserver_args)
    try:
        cp.start()
    except ControlPlaneError as exc:
        cp.stop()
        unavailable(f"the control plane did not start: {exc}")
    return cp


@pytest.fixture(scope="session")
def controlplane(controlplane_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = started_controlplane(tmp_path_factory.mktemp("controlplane"), controlplane_bin)
    yield cp
    cp.stop()


@pytest.fixture(scope="session")
def webhook_server(controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """multus-webhook serve, registered with failurePolicy Fail for every webhook."""
    server = WebhookServer(tmp_path_factory.mktemp("webhook"))
    server.start()
    register_webhook(controlplane, server)
    yield server
    server.stop()


@pytest.fixture
def webhook(webhook_server: WebhookServer) -> Iterator[WebhookServer]:
    """The session's webhook, restarted after the test if the test stopped it."""
    yield webhook_server
    if webhook_server.proc is None or webhook_server.proc.poll() is not None:
        webhook_server.start()


@pytest.fixture
def namespace(controlplane: ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    controlplane.kubectl("create", "namespace", name)
    yield name
    controlplane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def apiserver_args() -> Sequence[str]:
    """More flags for the kube-apiserver of ``cluster``: a module that needs an apiserver configured
    otherwise (an admission configuration) overrides this fixture."""
    return ()


@pytest.fixture(scope="module")
def cluster(controlplane_bin: Path, tmp_path_factory: pytest.TempPathFactory,
            apiserver_args: Sequence[str]) -> Iterator[ControlPlane]:
    """A control plane of the test module's own, for tests that create Nodes, restart the apiserver or need
    to know exactly what exists: nothing leaks into the session's cluster."""
    cp = started_controlplane(tmp_path_factory.mktemp("module-cp"), controlplane_bin, apiserver_args)
    cp.kubectl("create", "namespace", "multus-webhook")
    yield cp
    cp.stop()


@pytest.fixture(scope="module")
def scheduler(cluster: ControlPlane) -> Iterator[ControlPlane]:
    """kube-scheduler on the module's control plane (yielded); the module's Nodes need to be schedulable
    (``schedulable_node``) for it to bind anything."""
    if not (cluster.bin_dir / "kube-scheduler").exists():
        unavailable(f"no kube-scheduler in {cluster.bin_dir}")
    try:
        cluster.start_scheduler()
    except ControlPlaneError as exc:
        cluster.stop_scheduler()
        unavailable(f"kube-scheduler did not start: {exc}")
    yield cluster
    cluster.stop_scheduler()


def create_schedulable_node(cp: ControlPlane, name: str, labels: dict[str, str] | None = None,
                            *, cpu: str = "4", memory: str = "8Gi", pods: int = 110) -> None:
    """A Node with no kubelet that the scheduler binds pods to: what a kubelet registers (hostname label,
    capacity, Ready) written by the test."""
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    # A Node's status is kept on create (the kubelet registers its Node that way), so no status patch.
    cp.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "status": {"capacity": resources, "allocatable": resources,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }))
    # The TaintNodesByCondition admission plugin taints every new Node not-ready:NoSchedule; the node
    # lifecycle controller lifts it once the Node is Ready, and there is no controller manager here.
    cp.kubectl("taint", "node", name, "node.kubernetes.io/not-ready:NoSchedule-")


@pytest.fixture(scope="module")
def schedulable_node(cluster: ControlPlane) -> Callable[..., None]:
    """``schedulable_node(name, labels=None)``: ``create_schedulable_node`` on the module's cluster."""
    def create(name: str, labels: dict[str, str] | None = None) -> None:
        create_schedulable_node(cluster, name, labels)

    return create


@pytest.fixture(scope="module")
def live_webhook(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """`multus-webhook serve --kubeconfig` (live cache, controller) registered with the module's apiserver."""
    server = WebhookServer(tmp_path_factory.mktemp("live-webhook"), ["--kubeconfig", str(cluster.kubeconfig)])
    server.start()
    eventually(lambda: server.readyz()[0] == 200, "the live cache's first sync")
    register_webhook(cluster, server)
    yield server
    server.stop()



@pytest.fixture
def parser_bug(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``parser_bug(*names)``: the cluster store's functions ``names`` (its parsers) raise, as a bug in
    them would, on any value that contains the marker it returns. Tests of the store's resilience then
    hold whatever input such a bug is found with next."""
    from webhook.cluster import store

    marker = "parser-bug"

    def failing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(value: Any, *args: Any, **kwargs: Any) -> Any:
            if marker in repr(value):
                raise ValueError("a parser bug")
            return real(value, *args, **kwargs)

        return call

    def break_(*names: str) -> str:
        for name in names:
            monkeypatch.setattr(store, name, failing(getattr(store, name)))
        return marker

    return break_


def in_mount_namespace(mount: Sequence[str], command: Sequence[str]) -> list[str]:
    """``command`` run in a mount namespace of its own after ``mount *mount`` there: what the kubelet
    mounts into a container, or a small disk standing in for a full one, seen by that command only."""
    script = f'mount {" ".join(f"${{{i}}}" for i in range(1, len(mount) + 1))} && shift {len(mount)} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *mount, *command]


@pytest.fixture(scope="session")
def mounts() -> Callable[[Sequence[str], Sequence[str]], list[str]]:
    """``in_mount_namespace`` for tests that need mount namespaces and the right to mount (root with
    unshare(1), as CI runs): without them a failure under CI=true, a skip elsewhere."""
    probe = ["unshare", "--mount", "--", "mount", "-t", "tmpfs", "none", "/mnt"]
    if shutil.which("unshare") is None or subprocess.run(probe, capture_output=True).returncode != 0:
        unavailable("needs unshare(1) and the right to mount a file system (root)")
    return in_mount_namespace
