"""`multus-webhook uninstall`: remove from the host what Multus and install-cni put there."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from webhook.commands.common import add_primary_cni_config
from webhook.node.cleanup import uninstall


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("uninstall", help="remove Multus and the recorded CNI plugins from the host")
    u.add_argument("--host-root", default="/host", help="where the host's filesystem is mounted (default: /host)")
    add_primary_cni_config(u, "read to warn when it is in a subdirectory")
    u.add_argument("--idle", action="store_true",
                   help="after cleaning up, wait for SIGTERM so that a DaemonSet pod stays up "
                        "and its logs stay readable")
    u.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = uninstall(Path(args.host_root), args.primary_cni_config_file)
    if args.idle:
        wait_for_termination()
    return 1 if report.errors else 0


def wait_for_termination() -> None:
    # sigwait rather than a handler: as PID 1 in a container, a signal without a handler is ignored.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    signal.sigwait(signals)
