"""`multus-webhook install-cni`: install the listed CNI plugins on the host (Talos)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path, PurePosixPath

from webhook.node.hostfs import loudly
from webhook.node.installer import InstallError, available, install, log, plugin_list_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("install-cni",
                       help="copy CNI plugins into the host's /opt/cni/bin, recording what was installed")
    c.add_argument("--host-root", default="/host", help="where the host's filesystem is mounted (default: /host)")
    c.add_argument("--source", required=True, help="directory holding the plugin binaries")
    c.add_argument("--plugins-file", required=True,
                   help="plugin names, one a line ('<binary>: true' lines are accepted too)")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """1 when a file could not be read or written (the node's files stay whole; a rerun may succeed),
    0 otherwise, even when some listed plugins could not be installed. This runs as the first init
    container of the Multus pod: a failure keeps Multus off the node, after the pod it replaces
    removed 00-multus.conf, and on every node that joins. A misspelt name or a plugin the image
    lacks is the same on every node and no rerun fixes it: one plugin missing, which the agent
    reports and the NAD rules warn about or refuse, is the lesser harm than no Multus anywhere."""
    source = Path(args.source)
    try:
        plugins = plugin_list_from(Path(args.plugins_file))
        changes = install(Path(args.host_root), source, plugins.names)
        unavailable = [PurePosixPath(c.path).name for c in changes if c.action == "unavailable"]
        problems = list(plugins.refused)
        if unavailable:
            problems.append(f"not in {source}: {', '.join(unavailable)} "
                            f"(available: {', '.join(available(source)) or 'nothing'})")
    except (InstallError, OSError) as exc:
        print(f"multus-webhook install-cni: {exc}", file=sys.stderr)
        return 1
    if problems:
        loudly(log, logging.ERROR, f"Not installed, from the plugin list {args.plugins_file}:\n" + "\n".join(problems)
               + "\nEvery other listed plugin is installed and Multus starts. Pods on a network that needs a "
               "plugin not installed stay in ContainerCreating: the node agent reports the node's CNI binaries, "
               "and the webhook warns about or refuses a NetworkAttachmentDefinition that needs one no node has. "
               "Fix the list (docs/install.md, Install step 3).")
    return 0
