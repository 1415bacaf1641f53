"""`make run`: a local control plane with multus-webhook registered, in the foreground.

Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops every process it started and removes its
temporary data; running it again starts afresh. When it ends with an error it keeps that data (the
logs of every process) and says where. One at a time per checkout: a second one exits at once.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sys
import tempfile
from pathlib import Path

from webhook.commands.common import stop_on_signals
from webhook.dev.controlplane import REPO, ControlPlaneError, local_stack


def lock(path: Path) -> str | None:
    """Takes the lock on ``path`` for as long as this process lives (the descriptor is never closed;
    the kernel releases an flock when its holder ends, however it ends) and returns None; or, when
    another process holds it, that process's pid as it wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        return holder or "unknown"
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return None


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m webhook.dev", description=__doc__)
    p.add_argument("--kubeconfig-out", default=str(REPO / ".local" / "kubeconfig"))
    args = p.parse_args()
    kubeconfig = Path(args.kubeconfig_out)

    # A second run would overwrite the first one's kubeconfig and delete it on exit while the first
    # goes on: the lock is kept next to it (.local/run.lock).
    holder = lock(kubeconfig.parent / "run.lock")
    if holder is not None:
        print(f"make run is already running in this checkout (pid {holder})", file=sys.stderr)
        return 1

    stop = stop_on_signals(hangup=True)

    work = Path(tempfile.mkdtemp(prefix="multus-webhook-run-"))
    # Until it has stopped as asked: any other end keeps the logs, which the message points at.
    stopped = False
    try:
        with local_stack(work) as (cp, server):
            cp.write_kubeconfig(kubeconfig)
            shown_kubeconfig = f"$PWD/{kubeconfig.relative_to(REPO)}" if kubeconfig.is_relative_to(REPO) else kubeconfig
            # The kubectl built with the apiserver first on the PATH: a fresh machine may have none.
            home = Path.home()
            bin_dir = f"~/{cp.bin_dir.relative_to(home)}" if cp.bin_dir.is_relative_to(home) else str(cp.bin_dir)
            print(f"""
kube-apiserver {cp.url} (etcd, no nodes, no kubelet) with multus-webhook at {server.url}

Try, in another shell here:
  export KUBECONFIG={shown_kubeconfig} PATH={bin_dir}:$PATH
  kubectl apply -f examples/macvlan-network.yaml     # accepted
  kubectl apply -f examples/broken-network.yaml      # refused by the webhook
  kubectl apply -f examples/network-profile.yaml     # the label becomes the annotation
  kubectl get pod profiled-pod -o yaml
  kubectl apply --dry-run=server -f examples/broken-network.yaml   # refused the same way, nothing stored

Webhook log: {work / 'webhook.log'}
Ctrl-C stops everything.""", flush=True)
            while not stop.wait(0.2):
                if server.proc is not None and server.proc.poll() is not None:
                    print(f"multus-webhook exited with {server.proc.returncode}; see {work / 'webhook.log'}",
                          file=sys.stderr)
                    return 1
        stopped = True
    except ControlPlaneError as exc:
        # Asked to stop while starting? A Ctrl-C also kills the kubectl that is running, and that is the
        # error then, not a failure to report. A moment's wait: the handler sets the event from a thread.
        if not stop.wait(1):
            print(f"make run: {exc}", file=sys.stderr)
            return 1
        print(f"make run: interrupted while starting ({exc})", file=sys.stderr)
        stopped = True
    finally:
        kubeconfig.unlink(missing_ok=True)
        if stopped:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"make run: logs kept in {work}", file=sys.stderr)
    print("stopped; temporary data removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
