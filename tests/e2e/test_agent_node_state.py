"""`multus-webhook agent` as a real process against a temporary host root and the real apiserver."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from webhook.agent.agent import Agent, AgentConfig
from webhook.agent.nodestate import NAMESPACE
from webhook.agent.probe import BOOT_TIME, CONFIG_FIRST, DAEMON, DHCP, REBOOT_RACE, HostLayout
from webhook.agent.standin import MULTUS_CONFIG, StandInHost, Subcommand
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.kube import MERGE_PATCH, format_time, load_client, request


@pytest.fixture
def host() -> Iterator[StandInHost]:
    h = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    yield h
    h.cleanup()


@pytest.fixture
def node_name(controlplane: ControlPlane) -> str:
    controlplane.kubectl("create", "namespace", NAMESPACE, check=False)
    return f"node-{uuid.uuid4().hex[:8]}"


def agent(cp: ControlPlane, host: StandInHost, node: str, log: Path, wrapper: Sequence[str] = ()) -> Subcommand:
    return Subcommand(["agent", "--kubeconfig", str(cp.kubeconfig), "--node-name", node,
                       "--host-root", str(host.root), "--primary-cni-config", "cilium/05-cilium.conflist",
                       "--interval", "1", "--poll-interval", "0.2"], log, wrapper)


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
        # Only pods on dhcp networks need the dhcp daemon, which this host does not run.
        assert {c["status"] for c in status["conditions"] if c["type"] != DHCP} == {"True"}
        assert (condition(status, DHCP)["status"], status["dhcpDaemon"]) == ("False", False)
        ready_since = condition(status, "Ready")["lastTransitionTime"]

        host.add_binary("ipvlan")
        eventually(lambda: "ipvlan" in state(cp, node_name).get("cniBinaries", []), what="ipvlan listed")
        # A link to where the agent sees nothing: kept apart, through the CRD's schema.
        (host.path(host.layout.cni_bin_dir) / "sriov").symlink_to("/usr/libexec/cni/sriov")
        status = eventually(lambda: state(cp, node_name), until=lambda s: s.get("unverifiedBinaries") == ["sriov"],
                            what="sriov listed as not verified")
        assert "sriov" not in status["cniBinaries"]

        host.remove_config("00-multus.conf")
        status = eventually(lambda: (s := state(cp, node_name)).get("multusReady") is False and s, what="not ready")
        assert condition(status, CONFIG_FIRST)["reason"] == "NoConfig"
        host.write_config("00-multus.conf", MULTUS_CONFIG)
        eventually(lambda: state(cp, node_name).get("multusReady"), what="ready with the config back")
        # Emptied, as Multus leaves it when it cannot read the primary config: the runtime cannot load it.
        host.write_config("00-multus.conf", "")
        status = eventually(lambda: (s := state(cp, node_name)).get("multusReady") is False and s,
                            what="not ready with the config empty")
        assert condition(status, CONFIG_FIRST)["reason"] == "ConfigEmpty"
        assert condition(status, "Ready")["reason"] == "ConfigEmpty"
        host.write_config("00-multus.conf", MULTUS_CONFIG)
        status = eventually(lambda: (s := state(cp, node_name)).get("multusReady") and s, what="ready again")
        assert condition(status, "Ready")["lastTransitionTime"] > ready_since

        # The heartbeat moves while nothing changes.
        beat = status["heartbeatTime"]
        eventually(lambda: state(cp, node_name)["heartbeatTime"] > beat, timeout=5, what="a heartbeat")

        # The boot time, which only the pod repair needs: without it Multus is ready all the same. It is
        # kept as first read while the boot lasts (a clock step moves btime), unread or not.
        first_booted = state(cp, node_name)["bootTime"]
        host.path(host.layout.stat_file).unlink()
        status = eventually(lambda: state(cp, node_name), what="the boot time unreadable",
                            until=lambda s: condition(s, BOOT_TIME)["reason"] == "Unreadable")
        assert status["multusReady"] is True
        assert status["bootTime"] == first_booted
        booted = datetime(2026, 3, 1, 11, 58, 7, tzinfo=UTC)
        host.set_boot_time(booted)

        host.set_boot_id("boot-two")
        eventually(lambda: state(cp, node_name).get("bootTime") == format_time(booted), what="the new boot's time")
        eventually(lambda: state(cp, node_name).get("bootID") == "boot-two", what="the new boot id")
    finally:
        rc = proc.stop()
    assert rc == 0, proc.output()
    status = state(cp, node_name)
    assert status["multusReady"] is False
    assert condition(status, "Ready")["reason"] == "AgentStopped"


def test_the_ready_file_says_this_run_published_the_node_state(controlplane: ControlPlane, host: StandInHost,
                                                              node_name: str, tmp_path: Path) -> None:
    """The agent DaemonSet's readiness probe tests for it: an earlier run's file goes at start, the file
    comes once the MultusNodeState is written, and goes on the way out."""
    ready = tmp_path / "published"
    ready.write_text("")  # an earlier run's, on the volume that outlives the container
    refused = Subcommand(["agent", "--kubeconfig", str(controlplane.kubeconfig), "--node-name", "Not_A_Name",
                          "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2",
                          "--ready-file", str(ready)], tmp_path / "refused.log").start()
    try:
        eventually(lambda: "could not write MultusNodeState" in refused.output(), what="a refused write")
        assert not ready.exists()
    finally:
        assert refused.stop() == 0
    proc = Subcommand(["agent", "--kubeconfig", str(controlplane.kubeconfig), "--node-name", node_name,
                       "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2",
                       "--ready-file", str(ready)], tmp_path / "agent.log").start()
    try:
        eventually(ready.exists, what="the ready file")
        assert state(controlplane, node_name)["nodeName"] == node_name
    finally:
        assert proc.stop() == 0
    assert not ready.exists()


def test_a_ready_file_that_could_not_be_written_is_written_at_a_later_heartbeat(
        controlplane: ControlPlane, host: StandInHost, node_name: str, tmp_path: Path) -> None:
    """Its volume not there yet when the node state is first written: the pod is ready once it is."""
    ready = tmp_path / "volume" / "published"
    proc = Subcommand(["agent", "--kubeconfig", str(controlplane.kubeconfig), "--node-name", node_name,
                       "--host-root", str(host.root), "--interval", "1", "--poll-interval", "0.2",
                       "--ready-file", str(ready)], tmp_path / "agent.log").start()
    try:
        eventually(lambda: "could not write the ready file" in proc.output(), what="the failed write")
        ready.parent.mkdir()
        eventually(ready.exists, what="the ready file")
    finally:
        assert proc.stop() == 0
    assert not ready.exists()


def test_the_agent_survives_an_apiserver_that_refuses_it(controlplane: ControlPlane, host: StandInHost,
                                                        tmp_path: Path) -> None:
    # A node name the apiserver refuses as an object name: every write fails, the agent keeps going.
    proc = agent(controlplane, host, "Not_A_Name", tmp_path / "agent.log").start()
    try:
        eventually(lambda: "could not write MultusNodeState" in proc.output(), what="the warning")
        assert proc.running
    finally:
        assert proc.stop() == 0


def test_the_agent_restarts_when_multus_recreates_its_socket_directory(
        controlplane: ControlPlane, host: StandInHost, node_name: str, tmp_path: Path,
        mounts: Callable[[Sequence[str], Sequence[str]], list[str]]) -> None:
    # The node's real /run/multus lives apart from the agent's view of the host, which mounts it.
    node_run = StandInHost()
    try:
        host.make_ready("boot-one")
        host.stop_daemon()
        node_run.start_daemon()
        mounted = host.path(host.layout.multus_socket).parent
        # The agent's command follows the wrapper, as the kubelet bind-mounts a hostPath volume.
        wrapper = mounts(["--bind", str(node_run.path(node_run.layout.multus_socket).parent), str(mounted)], [])
        first = agent(controlplane, host, node_name, tmp_path / "first.log", wrapper).start()
        try:
            eventually(lambda: state(controlplane, node_name).get("multusReady"), what="ready through the mount")
            node_run.restart_daemon()  # as the Multus daemon does when it starts
            # A look between the daemon's stop and its new directory reports NotAnswering first: the
            # report that matters is the one after the directory was made again.
            status = eventually(lambda: (s := state(controlplane, node_name)).get("multusReady") is False and
                                condition(s, DAEMON)["reason"] == "SocketDirReplaced" and s,
                                what="not ready once the mounted directory is gone")
            assert condition(status, DAEMON)["status"] == "Unknown"  # the agent no longer sees the socket
            assert eventually(lambda: first.proc is not None and first.proc.poll() is not None, what="exit") is True
        finally:
            rc = first.stop()
        assert rc == 1, first.output()
        assert "was removed and created again on the host" in first.output()
        # What the kubelet does next: the container again, mounting the directory as it is now.
        second = agent(controlplane, host, node_name, tmp_path / "second.log", wrapper).start()
        try:
            status = eventually(lambda: (s := state(controlplane, node_name)).get("multusReady") and s,
                                what="ready after the restart")
            assert condition(status, DAEMON)["reason"] == "Connected"
        finally:
            assert second.stop() == 0, second.output()
    finally:
        node_run.cleanup()


@pytest.mark.parametrize(("which", "kind", "reason"), [("cni_bin_dir", "MultusBinaryInstalled", "BinDirReplaced"),
                                                     ("cni_conf_dir", CONFIG_FIRST, "ConfDirReplaced")])
def test_the_agent_restarts_when_its_bin_or_conf_directory_is_replaced_on_the_host(
        controlplane: ControlPlane, host: StandInHost, node_name: str, tmp_path: Path,
        mounts: Callable[[Sequence[str], Sequence[str]], list[str]], which: str, kind: str, reason: str) -> None:
    """The host's directory replaced (rm -rf and made again, or a link put in its place): the agent's
    hostPath mount keeps showing the deleted one, empty, until its container restarts."""
    node = StandInHost(host.layout)  # the node's real directory, apart from the agent's view of it
    try:
        host.make_ready("boot-one")
        node.make_ready("boot-one")
        real, mounted = node.path(getattr(host.layout, which)), host.path(getattr(host.layout, which))
        wrapper = mounts(["--bind", str(real), str(mounted)], [])
        first = agent(controlplane, host, node_name, tmp_path / "first.log", wrapper).start()
        try:
            eventually(lambda: state(controlplane, node_name).get("multusReady"), what="ready through the mount")
            away = real.with_name(real.name + ".old")
            real.rename(away)
            shutil.copytree(away, real, symlinks=True)
            shutil.rmtree(away)
            status = eventually(lambda: (s := state(controlplane, node_name)).get("multusReady") is False and
                                condition(s, kind).get("reason") == reason and s,
                                what="not ready once the mounted directory is gone")
            assert "the agent restarts to see the new one" in condition(status, kind)["message"]
            assert eventually(lambda: first.proc is not None and first.proc.poll() is not None, what="exit") is True
        finally:
            rc = first.stop()
        assert rc == 1, first.output()
        assert f"{getattr(host.layout, which)} was removed and created again on the host (or replaced by a link" \
            in first.output()
        second = agent(controlplane, host, node_name, tmp_path / "second.log", wrapper).start()
        try:
            eventually(lambda: state(controlplane, node_name).get("multusReady"), what="ready after the restart")
        finally:
            assert second.stop() == 0, second.output()
    finally:
        node.cleanup()


def test_an_agent_that_fails_leaves_the_node_not_ready(controlplane: ControlPlane, host: StandInHost,
                                                       node_name: str) -> None:
    """Whatever stops the agent's loop, a failure included, the node is not left ready on the word of an
    agent that no longer looks (it would stay ready until its heartbeat went stale)."""
    cp = controlplane
    host.make_ready("boot-one")
    api = load_client(str(cp.kubeconfig))
    agent = Agent(api, AgentConfig(node=node_name, layout=host.layout, interval=1, poll_interval=0.1))
    looks = agent.look
    failing = threading.Event()

    def look() -> Any:
        if failing.is_set():
            raise RuntimeError("a look that fails")
        return looks()

    agent.look = look  # type: ignore[method-assign]
    failure: list[BaseException] = []

    def run() -> None:
        try:
            agent.run(threading.Event())
        except RuntimeError as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        eventually(lambda: state(cp, node_name).get("multusReady"), what="ready")
        failing.set()
        thread.join(10)
        assert not thread.is_alive()
        assert [str(e) for e in failure] == ["a look that fails"]
        status = state(cp, node_name)
        assert status["multusReady"] is False
        assert condition(status, "Ready")["reason"] == "AgentStopped"
    finally:
        failing.set()
        thread.join(10)
        api.close()


MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
AGENT_SA = "multus-webhook-agent"


def apply_agent_rbac_and_policy(cp: ControlPlane) -> None:
    """The base's agent identity (ServiceAccount, Role, binding) and its own-node policy, as shipped."""
    docs = yaml.safe_load_all(cp.kubectl("kustomize", str(MANIFESTS / "base")).stdout)
    wanted = [d for d in docs if d and d["metadata"]["name"].startswith(AGENT_SA) and d["kind"] in (
        "ServiceAccount", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")]
    assert len(wanted) == 5
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted))


def agent_kubeconfig(cp: ControlPlane, tmp_path: Path, node: str | None) -> Path:
    """A kubeconfig with the agent's token, bound to an agent pod on ``node`` (None: bound to nothing)."""
    bound: list[str] = []
    if node is not None:
        pod = f"agent-{node}"
        cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                          "metadata": {"name": node}}))
        cp.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": NAMESPACE},
            "spec": {"nodeName": node, "serviceAccountName": AGENT_SA,
                     "containers": [{"name": "agent", "image": "agent"}]}}))
        bound = ["--bound-object-kind", "Pod", "--bound-object-name", pod]
    token = cp.kubectl("create", "token", AGENT_SA, "-n", NAMESPACE, *bound).stdout.strip()
    config = yaml.safe_load(cp.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path = tmp_path / f"agent-{node or 'unbound'}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def write_as(cp: ControlPlane, kubeconfig: Path, node: str) -> str:
    """What the apiserver says to a MultusNodeState for ``node`` created with ``kubeconfig`` (a dry run:
    admission decides, nothing is stored while the policy is not yet in force)."""
    obj = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
           "metadata": {"name": node, "namespace": NAMESPACE}}
    result = cp.kubectl("--kubeconfig", str(kubeconfig), "create", "--dry-run=server", "-f", "-", input=json.dumps(obj),
                        check=False)
    return result.stdout + result.stderr


def test_an_agent_writes_the_state_of_its_own_node_only(controlplane: ControlPlane, host: StandInHost,
                                                         node_name: str, tmp_path: Path) -> None:
    cp = controlplane
    apply_agent_rbac_and_policy(cp)
    own = agent_kubeconfig(cp, tmp_path, node_name)
    other = f"{node_name}-other"
    # The policy takes a moment to be in force after it is created.
    denied = eventually(lambda: write_as(cp, own, other), until=lambda out: "denied" in out, what="the policy")
    assert f"the agent on node {node_name} may only write MultusNodeState {node_name}" in denied
    unbound = agent_kubeconfig(cp, tmp_path, None)
    assert "the agent's token names no node" in write_as(cp, unbound, node_name)

    # What the real agent does with its own node's token (read, create, patch the status) goes through.
    host.make_ready("boot-one")
    proc = Subcommand(["agent", "--kubeconfig", str(own), "--node-name", node_name, "--host-root", str(host.root),
                       "--primary-cni-config", "cilium/05-cilium.conflist", "--interval", "1",
                       "--poll-interval", "0.2"], tmp_path / "agent.log").start()
    try:
        eventually(lambda: state(cp, node_name).get("multusReady"), what="its own state written")
    finally:
        assert proc.stop() == 0, proc.output()
    assert "could not write" not in proc.output()
    # Its status, patched for another node's object, is refused as well.
    cp.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "multus-webhook.io/v1alpha1",
                                                       "kind": "MultusNodeState",
                                                       "metadata": {"name": other, "namespace": NAMESPACE}}))
    # (by path, as the agent does: kubectl would GET the object first, which the agent may not).
    with pytest.raises(ApiException) as refused:
        request(load_client(str(own)), "PATCH", f"/apis/multus-webhook.io/v1alpha1/namespaces/{NAMESPACE}/"
                f"multusnodestates/{other}/status", body={"status": {"multusReady": True}}, content_type=MERGE_PATCH)
    assert refused.value.status == 403
    assert f"may only write MultusNodeState {node_name}" in str(refused.value.body)


def test_a_stale_top_level_primary_is_shown_without_taking_readiness(controlplane: ControlPlane,
                                                                     host: StandInHost, node_name: str,
                                                                     tmp_path: Path) -> None:
    """Cilium's old 05-cilium.conflist left at the top level: the node stays ready (00-multus.conf comes
    first while Multus runs), and `kubectl get multusnodestates` says what the next reboot brings."""
    cp = controlplane
    host.make_ready("boot-one")
    host.write_config("05-cilium.conflist")
    proc = agent(cp, host, node_name, tmp_path / "agent.log").start()
    try:
        status = eventually(lambda: state(cp, node_name), until=lambda s: bool(condition(s, REBOOT_RACE)),
                            what="the MultusNodeState")
        assert status["multusReady"] is True
        race = condition(status, REBOOT_RACE)
        assert (race["status"], race["reason"]) == ("False", "OtherTopLevelConfig")
        assert "/etc/cni/net.d/05-cilium.conflist" in race["message"]
        table = cp.kubectl("get", "-n", NAMESPACE, "multusnodestates", node_name).stdout
        assert table.split()[:4] == ["NAME", "NODE", "READY", "REBOOTRACE"]
        assert table.splitlines()[1].split()[1:4] == [node_name, "true", "OtherTopLevelConfig"]
        host.remove_config("05-cilium.conflist")
        eventually(lambda: condition(state(cp, node_name), REBOOT_RACE).get("reason"),
                   until=lambda r: r == "OnlyMultusAtTopLevel", what="guarded once the file is gone")
    finally:
        proc.stop()
    assert "at the next reboot" in proc.output()


def test_a_bin_dir_the_agent_cannot_read_is_published_as_no_inventory(
        controlplane: ControlPlane, host: StandInHost, node_name: str, tmp_path: Path) -> None:
    """Not as an empty one, which the NAD rules took for a node without any plugin: the fields go (the
    merge patch's null), and come back once the directory can be read again."""
    cp = controlplane
    host.make_ready("boot-one")
    proc = agent(cp, host, node_name, tmp_path / "agent.log").start()
    bin_dir = host.path(host.layout.cni_bin_dir)
    away = bin_dir.with_name("bin.away")
    try:
        eventually(lambda: state(cp, node_name).get("multusReady"), what="ready")
        bin_dir.rename(away)
        status = eventually(lambda: state(cp, node_name), what="the bin dir unreadable",
                            until=lambda s: condition(s, "MultusBinaryInstalled").get("reason") == "BinDirUnreadable")
        assert not {"cniBinaries", "unverifiedBinaries", "binaryCount"} & status.keys(), status
        # Whether Multus's binary is there is not known, as Kubernetes' conventions write it; the node is
        # not ready all the same. The apiserver takes the status (the CRD's enum).
        assert condition(status, "MultusBinaryInstalled")["status"] == "Unknown"
        assert (condition(status, "Ready")["status"], status["multusReady"]) == ("False", False)
        away.rename(bin_dir)
        status = eventually(lambda: state(cp, node_name), what="the inventory back",
                            until=lambda s: s.get("cniBinaries"))
        assert status["cniBinaries"] == ["bridge", "macvlan", "multus-shim"]
    finally:
        if away.exists():
            away.rename(bin_dir)
        proc.stop()
