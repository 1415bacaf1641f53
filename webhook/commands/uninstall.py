"""`multus-webhook uninstall`: remove from the host what Multus and install-cni put there."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from webhook.commands.common import add_primary_cni_config
from webhook.node.cleanup import DISCARD_ENV, MULTUS_CACHE_DIR, log, uninstall


def yes_or_no(text: str) -> bool:
    if text.strip().lower() in ("true", "yes", "1"):
        return True
    if text.strip().lower() in ("false", "no", "0", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is neither true nor false (also read from ${DISCARD_ENV})")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("uninstall", help="remove Multus and the recorded CNI plugins from the host")
    u.add_argument("--host-root", default="/host", help="where the host's filesystem is mounted (default: /host)")
    add_primary_cni_config(u, "read to warn when it is in a subdirectory")
    u.add_argument("--idle", action="store_true",
                   help="after a cleanup that leaves the node able to start pods, wait for SIGTERM so that a "
                        "DaemonSet pod stays up and its logs stay readable; after one that does not, exit 1 "
                        "at once (the kubelet runs it again; `kubectl describe pod` shows the end of its log)")
    u.add_argument("--ready-file", metavar="PATH",
                   help="removed first, and written once the cleanup leaves the node clean and able to start "
                        "pods: the cleanup DaemonSet's readiness probe, so that its rollout goes on to the "
                        "next node only from such a node")
    u.add_argument("--discard-multus-attachments", metavar="true|false", nargs="?", const=True, type=yes_or_no,
                   default=os.environ.get(DISCARD_ENV, "false"),
                   help=f"remove the records in /{MULTUS_CACHE_DIR} of sandboxes whose secondary networks Multus "
                        "never tore down (their IPAM addresses stay allocated); without it the cleanup removes "
                        f"nothing on such a node and fails (default: ${DISCARD_ENV}, else false)")
    u.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """0 when the node is clean and can still start pods, else 1. A container that is up is not yet
    Ready: the DaemonSet's probe waits for ``--ready-file``, so that a run that fails (and exits soon
    after) is never seen Ready, nor one after an earlier run in the same pod succeeded (the file is on
    a volume that outlives the container). The kubelet runs the cleanup again with a growing
    back-off; it is idempotent, and goes on once the node is fixed."""
    ready_file = Path(args.ready_file) if args.ready_file else None
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
    report = uninstall(Path(args.host_root), args.primary_cni_config_file,
                       discard_attachments=args.discard_multus_attachments)
    if report.node_left_working:
        if ready_file is not None:
            ready_file.write_text("cleanup finished\n")
        if args.idle:
            wait_for_termination()
        return 0
    if args.idle:
        log.error("this pod exits with status 1 and is not Ready: the cleanup goes to no other node "
                  "until this one is fixed (docs/install.md, Uninstall); the kubelet runs it here again")
    return 1


def wait_for_termination() -> None:
    # sigwait rather than a handler: as PID 1 in a container, a signal without a handler is ignored.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    signal.sigwait(signals)
