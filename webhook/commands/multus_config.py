"""`multus-webhook multus-config`: render the Multus daemon configuration for the primary CNI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.atomicfile import write_atomic
from webhook.commands.common import add_primary_cni_config
from webhook.node.multusconfig import ConfigError, render_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("multus-config",
                       help="write Multus's daemon-config.json, pointing it at the primary CNI config file")
    m.add_argument("--template", required=True, help="daemon-config.json to start from")
    add_primary_cni_config(m, "empty: Multus detects it")
    m.add_argument("--out", required=True, help="where to write the configuration")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        text = render_text(Path(args.template).read_text(), args.primary_cni_config_file)
    except (ConfigError, OSError) as exc:
        print(f"multus-webhook multus-config: {exc}", file=sys.stderr)
        return 2
    # Reported with the option to fix: an OSError's own text would name a temporary file.
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"multus-webhook multus-config: cannot create {out.parent}, the directory of --out {out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        write_atomic(out, text.encode())
    except OSError as exc:
        print(f"multus-webhook multus-config: cannot write --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}" + (f" (primary CNI config {args.primary_cni_config_file})"
                            if args.primary_cni_config_file else " (primary CNI detected by Multus)"),
          file=sys.stderr)
    return 0
