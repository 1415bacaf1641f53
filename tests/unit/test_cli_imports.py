"""The CLI imports only the command that runs: each command's dependencies would otherwise sit in the
resident memory of every other (the webhook server among them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
from webhook.cli import parser
parser(sys.argv[1:])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("webhook", "kubernetes", "cryptography"))))
"""


def imported(*argv: str) -> set[str]:
    # A fresh interpreter: the test process has imported everything already.
    out = subprocess.run([sys.executable, "-c", SCRIPT, *argv], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_a_command_does_not_import_the_others() -> None:
    modules = imported("--log-level", "debug", "rules")
    assert "webhook.commands.rules" in modules
    assert not {m for m in modules if m.startswith("webhook.commands.") and m != "webhook.commands.rules"} - {
        "webhook.commands.common"}
    assert not {m for m in modules if m.startswith(("kubernetes", "cryptography"))}


@pytest.mark.parametrize("argv", [(), ("--help",)])
def test_without_a_command_every_command_is_known(argv: tuple[str, ...]) -> None:
    modules = imported(*argv)
    assert {"webhook.commands.serve", "webhook.commands.check", "webhook.commands.agent"} <= modules
