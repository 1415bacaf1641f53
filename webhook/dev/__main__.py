"""`make run`: a local control plane with multus-webhook registered, in the foreground.

Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops every process it started and removes its
temporary data; running it again starts afresh. When it ends with an error it keeps that data (the
logs of every process) and says where.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from webhook.commands.common import stop_on_signals
from webhook.dev.controlplane import REPO, ControlPlaneError, local_stack


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m webhook.dev", description=__doc__)
    p.add_argument("--kubeconfig-out", default=str(REPO / ".local" / "kubeconfig"))
    args = p.parse_args()

    stop = stop_on_signals(hangup=True)

    work = Path(tempfile.mkdtemp(prefix="multus-webhook-run-"))
    kubeconfig = Path(args.kubeconfig_out)
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
  kubectl apply --dry-run=server -f examples/        # the same checks, nothing stored

Webhook log: {work / 'webhook.log'}
Ctrl-C stops everything.""", flush=True)
            while not stop.wait(0.2):
                if server.proc is not None and server.proc.poll() is not None:
                    print(f"multus-webhook exited with {server.proc.returncode}; see {work / 'webhook.log'}",
                          file=sys.stderr)
                    return 1
        stopped = True
    except ControlPlaneError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
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
