"""`multus-webhook agent` as a real process against a temporary host root and the real apiserver."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhook.agent.nodestate import NAMESPACE
from webhook.agent.probe import CONFIG_FIRST, DAEMON, HostLayout
from webhook.agent.standin import MULTUS_CONFIG, StandInHost, Subcommand
from webhook.dev.controlplane import ControlPlane, eventually


@pytest.fixture
def host() -> Iterator[StandInHost]:
    h = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    yield h
    h.cleanup()


@pytest.fixture
def node_name(controlplane: ControlPlane) -> str:
    controlplane.kubectl("create", "namespace", NAMESPACE, check=False)
    return f"node-{uuid.uuid4().hex[:8]}"


def agent(cp: ControlPlane, host: StandInHost, node: str, log: Path) -> Subcommand:
    return Subcommand(["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node,
                       "--host-root", str(host.root), "--primary-cni-config", "cilium/05-cilium.conflist",
                       "--interval", "1", "--poll-interval", "0.2"], log)


def state(cp: ControlPlane, node: str) -> dict[str, Any]:
    result = cp.kubectl("get", "-n", NAMESPACE, "multusnodestates", node, "-o", "json", check=False)
    return json.loads(result.stdout).get("status", {}) if result.returncode == 0 else {}


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def test_the_node_state_follows_the_host(controlplane: ControlPlane, host: StandInHost, node_name: str,
                                         tmp_path: Path) -> None:
    cp = controlplane
    host.set_boot_id("boot-one")
    proc = agent(cp, host, node_name, tmp_path / "agent.log").start()
    try:
        status = eventually(lambda: state(cp, node_name), what="the MultusNodeState")
        assert status["nodeName"] == node_name
        assert status["bootID"] == "boot-one"
        assert status["multusReady"] is False
        assert condition(status, DAEMON)["reason"] == "NotAnswering"

        host.make_ready("boot-one")
        status = eventually(lambda: (s := state(cp, node_name)).get("multusReady") and s, what="ready")
        assert status["cniBinaries"] == ["bridge", "macvlan", "multus-shim"]
        assert status["binaryCount"] == 3
        assert {c["status"] for c in status["conditions"]} == {"True"}
        ready_since = condition(status, "Ready")["lastTransitionTime"]

        host.add_binary("ipvlan")
        eventually(lambda: "ipvlan" in state(cp, node_name).get("cniBinaries", []), what="ipvlan listed")

        host.remove_config("00-multus.conf")
        status = eventually(lambda: (s := state(cp, node_name)).get("multusReady") is False and s, what="not ready")
        assert condition(status, CONFIG_FIRST)["reason"] == "NoConfig"
        host.write_config("00-multus.conf", MULTUS_CONFIG)
        status = eventually(lambda: (s := state(cp, node_name)).get("multusReady") and s, what="ready again")
        assert condition(status, "Ready")["lastTransitionTime"] > ready_since

        # The heartbeat moves while nothing changes.
        beat = status["heartbeatTime"]
        eventually(lambda: state(cp, node_name)["heartbeatTime"] > beat, timeout=5, what="a heartbeat")

        host.set_boot_id("boot-two")
        eventually(lambda: state(cp, node_name).get("bootID") == "boot-two", what="the new boot id")
    finally:
        rc = proc.stop()
    assert rc == 0, proc.output()
    status = state(cp, node_name)
    assert status["multusReady"] is False
    assert condition(status, "Ready")["reason"] == "AgentStopped"


def test_the_agent_survives_an_apiserver_that_refuses_it(controlplane: ControlPlane, host: StandInHost,
                                                        tmp_path: Path) -> None:
    # A node name the apiserver refuses as an object name: every write fails, the agent keeps going.
    proc = agent(controlplane, host, "Not_A_Name", tmp_path / "agent.log").start()
    try:
        eventually(lambda: "could not write MultusNodeState" in proc.output(), what="the warning")
        assert proc.running
    finally:
        assert proc.stop() == 0
