"""`multus-webhook serve`: the admission webhook server (HTTPS only)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from kubernetes.config import ConfigException

from webhook.admission.handlers import AdmissionContext
from webhook.cluster.live import LiveClusterView, api_client
from webhook.cluster.static import StaticClusterView
from webhook.commands.common import load_policy
from webhook.documents import DocumentError
from webhook.rules import PolicyError
from webhook.server import BODY_TIMEOUT, IDLE_TIMEOUT, ServerState, serve_forever


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="run the admission webhook server (HTTPS only)")
    s.add_argument("--port", type=int, default=8443)
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--cert-dir", default="certs", help="directory holding tls.crt and tls.key (reloaded on change)")
    s.add_argument("--client-ca", help="verify the apiserver's client certificate against this CA bundle")
    s.add_argument("--cluster-state", action="append", metavar="FILE",
                   help="standalone mode: YAML/JSON objects standing for the cluster (repeatable)")
    s.add_argument("--kubeconfig", metavar="FILE",
                   help="watch the cluster through this kubeconfig (default inside a pod: its service account)")
    s.add_argument("--policy", metavar="FILE", help="rule severities and audit switch")
    s.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT, metavar="SECONDS",
                   help="close a connection that sends no complete request head for this long")
    s.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT, metavar="SECONDS",
                   help="answer 408 when a request body takes longer than this to arrive")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.cluster_state and args.kubeconfig:
        print("multus-webhook serve: give --cluster-state or --kubeconfig, not both", file=sys.stderr)
        return 2
    live: LiveClusterView | None = None
    try:
        policy = load_policy(args.policy)
        context = AdmissionContext(policy=policy)
        if args.cluster_state:
            context.view = StaticClusterView.from_files(args.cluster_state)
        elif args.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST"):
            live = LiveClusterView(api_client(args.kubeconfig))
            context.view = live
    except (PolicyError, DocumentError) as exc:
        print(f"multus-webhook serve: {exc}", file=sys.stderr)
        return 2
    except (ConfigException, OSError) as exc:
        source = args.kubeconfig or "the in-cluster service account"
        print(f"multus-webhook serve: cannot use {source} to reach the cluster: {exc}", file=sys.stderr)
        return 2
    for name in ("tls.crt", "tls.key"):
        if not (Path(args.cert_dir) / name).is_file():
            print(f"multus-webhook serve: {Path(args.cert_dir) / name} is missing "
                  "(create one with 'multus-webhook certs --out DIR')", file=sys.stderr)
            return 2
    state = ServerState(context=context, body_timeout=args.body_timeout)
    if live is not None:
        # The watches run in threads; handlers only read the cache, and /readyz waits for its first sync.
        state.readiness = live.readiness
        live.start()
    try:
        asyncio.run(serve_forever(state, cert_dir=Path(args.cert_dir), host=args.host, port=args.port,
                                  idle_timeout=args.idle_timeout,
                                  client_ca=Path(args.client_ca) if args.client_ca else None))
    finally:
        if live is not None:
            live.stop()
    return 0
