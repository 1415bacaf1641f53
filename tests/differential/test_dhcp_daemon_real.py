"""Differential test: the node agent's dhcp daemon probe against the real CNI dhcp plugin and daemon
(plugins v1.10.0, `dhcp daemon`). The plugin dials its daemon at every ADD and fails without one; the
agent must report the daemon answering exactly when the plugin can reach it on the socket the agent
probes. The agent reads a stand-in host (a temp dir as the node's /); the NAD's daemonSocketPath names
the same file on the real machine, so the plugin dials what the agent looked at. Needs root and `ip
netns`, as the other differential tests."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from webhook.agent.probe import DHCP, evaluate, read_host
from webhook.agent.standin import StandInHost
from webhook.dev.cnisandbox import MASTER, Sandbox, run_add

pytestmark = pytest.mark.slow

#: What the plugin says when nothing answers on the socket (rpcCall in plugins/ipam/dhcp/main.go).
NO_DAEMON = "error dialing DHCP daemon"


@pytest.fixture
def host() -> Iterator[StandInHost]:
    stand_in = StandInHost()
    yield stand_in
    stand_in.cleanup()


def dhcp_config(socket: Path) -> dict[str, object]:
    return {"cniVersion": "1.0.0", "name": "dhcp-net", "type": "macvlan", "master": MASTER,
            "ipam": {"type": "dhcp", "daemonSocketPath": str(socket)}}


def daemon_answers(host: StandInHost) -> bool:
    report = evaluate(read_host(host.layout), host.layout)
    condition = next(c for c in report.conditions if c.type == DHCP)
    assert condition.status is report.dhcp_daemon
    return report.dhcp_daemon


@contextlib.contextmanager
def dhcp_daemon(cni_bin: Path, host: StandInHost, socket: Path, tmp_path: Path) -> Iterator[None]:
    """The real `dhcp daemon` listening on ``socket``, from when the agent sees it answer until the end."""
    daemon = subprocess.Popen([str(cni_bin / "dhcp"), "daemon", "-socketpath", str(socket),
                               "-pidfile", str(tmp_path / "dhcp.pid"), "-timeout", "1s", "-resendtimeout", "2s"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while not daemon_answers(host):
            assert daemon.poll() is None, daemon.communicate()[0]
            assert time.monotonic() < deadline, "the dhcp daemon never answered"
            time.sleep(0.05)
        yield
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_the_agent_reports_the_daemon_the_real_dhcp_plugin_needs(
        cni_bin: Path, sandbox: Sandbox, host: StandInHost, tmp_path: Path) -> None:
    socket = host.path(host.layout.dhcp_socket)
    config = dhcp_config(socket)
    # No daemon: the agent says so, and the plugin fails for that very reason.
    assert not daemon_answers(host)
    assert NO_DAEMON in run_add(config, sandbox, cni_bin, "dhcp-net").error

    # The real daemon makes the socket's directory and listens; the agent sees it answer, and the plugin
    # gets past the dial (to the DHCP exchange, which nothing answers on the sandbox's segment).
    with dhcp_daemon(cni_bin, host, socket, tmp_path):
        outcome = run_add(config, sandbox, cni_bin, "dhcp-net")
        assert not outcome.accepted
        assert NO_DAEMON not in outcome.error, outcome.error

    # Stopped, it may leave its socket file behind: a connect is refused, and so is the plugin's. (The
    # ADD that failed at the DHCP exchange left its link in the pod.)
    assert not daemon_answers(host)
    subprocess.run(["ip", "-n", sandbox.pod, "link", "del", "net1"], check=False, capture_output=True)
    assert NO_DAEMON in run_add(config, sandbox, cni_bin, "dhcp-net").error


def test_a_relative_daemon_socket_path_is_dialled_from_the_runtimes_working_directory(
        cni_bin: Path, sandbox: Sandbox, host: StandInHost, tmp_path: Path) -> None:
    """Why nad-ipam-dhcp only warns about a relative daemonSocketPath: the plugin resolves it from the
    directory it is run in, so from / (a runtime started by systemd) run/cni/dhcp.sock is the default
    socket. Here the stand-in host's root plays /."""
    socket = host.path(host.layout.dhcp_socket)
    config = {**dhcp_config(socket), "ipam": {"type": "dhcp", "daemonSocketPath": str(socket.relative_to(host.root))}}
    with dhcp_daemon(cni_bin, host, socket, tmp_path):
        # From elsewhere the same path leads to no daemon.
        assert NO_DAEMON in run_add(config, sandbox, cni_bin, "dhcp-net", cwd=tmp_path).error
        subprocess.run(["ip", "-n", sandbox.pod, "link", "del", "net1"], check=False, capture_output=True)
        outcome = run_add(config, sandbox, cni_bin, "dhcp-net", cwd=host.root)
        # The daemon took the call (nothing answers DHCP on the sandbox's segment): past the dial.
        assert "error calling DHCP.Allocate" in outcome.error, outcome.error
