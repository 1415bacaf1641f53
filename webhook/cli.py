"""The `multus-webhook` command. Each subcommand lives in webhook/commands/<name>.py."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from webhook import __version__
from webhook.commands import agent, certs, check, controller, install_cni, multus_config, rules, serve, uninstall

COMMANDS = [serve, check, certs, rules, install_cni, uninstall, multus_config, agent, controller]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multus-webhook", description="Admission webhook that makes Multus safe to use")
    p.add_argument("--version", action="version", version=f"multus-webhook {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
