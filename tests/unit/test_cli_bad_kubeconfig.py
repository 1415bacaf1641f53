"""A kubeconfig that does not exist or does not parse is the user's to fix: every command that
reaches the cluster says so and exits 2, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REACH = "multus-webhook {command}: cannot use {kubeconfig} to reach the cluster: "
COMMANDS = [(["serve", "--cert-dir", "{tmp}"], REACH), (["controller"], REACH),
            (["agent", "--node-name", "n1", "--host-root", "{tmp}"], REACH),
            (["check", "{tmp}"], "multus-webhook check: {kubeconfig}: cannot use this kubeconfig: ")]


@pytest.mark.parametrize(("command", "expected"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
@pytest.mark.parametrize("content", [None, "not: [a kubeconfig"], ids=["missing", "broken"])
def test_a_bad_kubeconfig_is_said_and_exits_2(command: list[str], expected: str, content: str | None,
                                              tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    if content is not None:
        kubeconfig.write_text(content)
    argv = [arg.format(tmp=tmp_path) for arg in command] + ["--kubeconfig", str(kubeconfig)]
    done = subprocess.run([sys.executable, "-m", "webhook.cli", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert expected.format(command=command[0], kubeconfig=kubeconfig) in done.stderr


def run_without_cluster_env(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """The command run outside a pod, with no $KUBECONFIG but ``env``'s."""
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    return subprocess.run([sys.executable, "-m", "webhook.cli", *argv], capture_output=True, text=True, timeout=60,
                          env={**base, **env})


CLUSTER_COMMANDS = [(c, e) for c, e in COMMANDS if e == REACH]


@pytest.mark.parametrize(("command", "expected"), CLUSTER_COMMANDS, ids=[c[0][0] for c in CLUSTER_COMMANDS])
def test_a_missing_kubeconfig_is_called_so(command: list[str], expected: str, tmp_path: Path) -> None:
    # The client's own words were "Invalid kube-config file. No configuration found.", as if it were there.
    missing = tmp_path / "nothere"
    argv = [arg.format(tmp=tmp_path) for arg in command]
    done = run_without_cluster_env([*argv, "--kubeconfig", str(missing)])
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == expected.format(command=command[0], kubeconfig=missing) + "no such file"


AGENT_AND_CONTROLLER = [(c, e) for c, e in CLUSTER_COMMANDS if c[0] != "serve"]


@pytest.mark.parametrize(("command", "expected"), AGENT_AND_CONTROLLER, ids=[c[0][0] for c in AGENT_AND_CONTROLLER])
def test_kubeconfig_is_the_default_of_agent_and_controller(command: list[str], expected: str, tmp_path: Path) -> None:
    missing = tmp_path / "nothere"
    done = run_without_cluster_env([arg.format(tmp=tmp_path) for arg in command], KUBECONFIG=str(missing))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        expected.format(command=command[0], kubeconfig=f"$KUBECONFIG ({missing})") + "no such file")


@pytest.mark.parametrize("kubeconfig", [None, "nothere"], ids=["unset", "exported"])
def test_serve_with_no_cluster_warns_what_it_skips(kubeconfig: str | None, tmp_path: Path) -> None:
    """serve never reads $KUBECONFIG: it would join the controller's leader election on whichever cluster
    the shell used last, and label its nodes."""
    env = {} if kubeconfig is None else {"KUBECONFIG": str(tmp_path / kubeconfig)}
    done = run_without_cluster_env(["serve", "--cert-dir", str(tmp_path)], **env)
    assert "cannot use" not in done.stderr
    assert ("WARNING webhook.commands.serve: no cluster (no --kubeconfig, in-cluster service account or "
            "--cluster-state; $KUBECONFIG is not read): the rules that need cluster state are skipped and the "
            "controller is off" in done.stderr)
    # It goes on to the certificates, which are missing here.
    assert done.returncode == 2
    assert f"{tmp_path}/tls.crt is missing" in done.stderr
