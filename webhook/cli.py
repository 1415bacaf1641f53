"""The `multus-webhook` command. Each subcommand lives in webhook/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from webhook import __version__
from webhook.heap import limit_malloc_arenas

#: Command name -> its module in webhook.commands, imported only when it may run: each pulls in its own
#: dependencies (the kubernetes client, cryptography...), which `serve --cluster-state` would otherwise
#: carry in its resident memory without using them.
COMMANDS = {"serve": "serve", "check": "check", "certs": "certs", "rules": "rules", "install-cni": "install_cni",
            "uninstall": "uninstall", "multus-config": "multus_config", "agent": "agent", "controller": "controller"}


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``argv`` names only (its first command name: the
    top-level options take no value that is one)."""
    p = argparse.ArgumentParser(prog="multus-webhook", description="Admission webhook that makes Multus safe to use")
    p.add_argument("--version", action="version", version=f"multus-webhook {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    named = next((arg for arg in argv or () if arg in COMMANDS), None)
    for name, module in COMMANDS.items():
        if named in (None, name):
            importlib.import_module(f"webhook.commands.{module}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    limit_malloc_arenas()
    args = parser(argv).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # `multus-webhook rules | head`: the reader left; say nothing more, as other CLIs do.
        sys.stderr.close()
        return 141
    return result


if __name__ == "__main__":
    sys.exit(main())
