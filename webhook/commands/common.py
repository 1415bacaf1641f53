"""Helpers shared by several subcommands."""

from __future__ import annotations

from pathlib import Path

from webhook.rules import Policy, registered


def load_policy(path: str | None) -> Policy:
    """The policy file given with --policy, or the defaults."""
    return Policy.from_file(Path(path), set(registered())) if path else Policy()
