"""A kubeconfig that does not exist or does not parse is the user's to fix: every command that
reaches the cluster says so and exits 2, without a traceback."""

from __future__ import annotations

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
