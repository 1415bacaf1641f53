"""`multus-webhook multus-config`: render the Multus daemon configuration for the primary CNI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.atomicfile import write_atomic
from webhook.commands.common import add_primary_cni_config
from webhook.node.multusconfig import ConfigError, render_text, tidy_top_level


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("multus-config",
                       help="write Multus's daemon-config.json, pointing it at the primary CNI config file")
    m.add_argument("--template", required=True, help="daemon-config.json to start from")
    add_primary_cni_config(m, "empty: Multus detects it")
    m.add_argument("--out", required=True, help="where to write the configuration")
    m.add_argument("--host-conf-dir", metavar="DIR",
                   help="the host's CNI config dir (/etc/cni/net.d as mounted): with the primary CNI config in a "
                        "subdirectory, remove a top-level copy of it (same name, same bytes) and report any other "
                        "top-level config, which the runtime uses whenever Multus's own is absent")
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
    if args.host_conf_dir:
        tidy(Path(args.host_conf_dir), args.primary_cni_config_file)
    return 0


def tidy(conf_dir: Path, primary: str) -> None:
    """Remove a stale top-level copy of the primary config, report the rest; never a failure: the
    daemon's config is written, and Multus must start whatever is found here (the node agent reports a
    config left there as long as it stays, in RebootRaceGuarded)."""
    try:
        found = tidy_top_level(conf_dir, primary)
    except OSError as exc:
        print(f"could not tidy the top level of {conf_dir}: {exc.strerror or exc} ({exc.filename or conf_dir})",
              file=sys.stderr)
        return
    for name in found.removed:
        print(f"removed {conf_dir / name}: byte for byte {conf_dir / primary}, a copy left from before the primary "
              "CNI wrote its config into the subdirectory", file=sys.stderr)
    if found.left:
        banner = "!" * 78
        lines = [f"{conf_dir / name} is a CNI config at the top level beside Multus's: {why}; not removed" for
                 name, why in found.left]
        print("\n".join([banner, *lines,
                         "The runtime uses it whenever 00-multus.conf is absent (after every reboot until the Multus "
                         "daemon writes it, while the Multus pod is replaced): new pods then start without their "
                         "Multus networks. Remove it from the node unless it must be there (docs/install.md, "
                         "step 2).", banner]), file=sys.stderr)
