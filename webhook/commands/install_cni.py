"""`multus-webhook install-cni`: install the listed CNI plugins on the host (Talos)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.node.installer import InstallError, install, plugin_list_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("install-cni",
                       help="copy CNI plugins into the host's /opt/cni/bin, recording what was installed")
    c.add_argument("--host-root", default="/host", help="where the host's filesystem is mounted (default: /host)")
    c.add_argument("--source", required=True, help="directory holding the plugin binaries")
    c.add_argument("--plugins-file", required=True,
                   help="plugin names, one a line ('<binary>: true' lines are accepted too)")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plugins = plugin_list_from(Path(args.plugins_file))
        install(Path(args.host_root), Path(args.source), plugins)
    except (InstallError, OSError) as exc:
        print(f"multus-webhook install-cni: {exc}", file=sys.stderr)
        return 1
    return 0
