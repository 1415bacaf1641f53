"""`multus-webhook check`: the webhook's rules on manifests, in CI (contract: DESIGN.md)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.check.output import FAILURES, FORMATS, text
from webhook.check.run import check, updated_pods
from webhook.cluster.live import POLICY_CONFIGMAP
from webhook.cluster.snapshot import SnapshotError, context_namespace, list_objects, policy_text
from webhook.commands.common import load_policy
from webhook.documents import DocumentError, iter_objects, load_manifests
from webhook.names import NAMESPACE
from webhook.rules import Policy, PolicyError, registered
from webhook.text import printable

#: Exit status when an input, the cluster state or the policy cannot be read.
UNREADABLE = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("check", help="check manifests with the webhook's rules (for CI)",
                       description="Check NADs, NetworkProfiles, Pods and the pod templates of workloads with "
                                   "the rules the webhook applies. Exit status: 0 nothing denied, 1 something "
                                   "denied (or warned, with --strict), 2 an input could not be read.")
    c.add_argument("paths", nargs="+", metavar="PATH",
                   help="file, directory (recursive *.yaml, *.yml, *.json) or - for stdin")
    state = c.add_mutually_exclusive_group()
    state.add_argument("--cluster-state", action="append", metavar="FILE",
                       help="objects standing for the cluster the inputs would be applied to, e.g. "
                            "`kubectl get nodes,net-attach-def,networkprofiles,multusnodestates,pods -A -o yaml` "
                            "(repeatable)")
    state.add_argument("--kubeconfig", metavar="FILE", help="take a read-only snapshot of this cluster instead")
    c.add_argument("--context", metavar="NAME", help="kubeconfig context (with --kubeconfig)")
    c.add_argument("--namespace", "-n", metavar="NS",
                   help="namespace of objects that name none (default: with --kubeconfig, the context's "
                        "namespace as kubectl takes it; else default)")
    # Not -n, which names the inputs' namespace as for kubectl: this one is where the webhook runs.
    c.add_argument("--webhook-namespace", metavar="NS", default=NAMESPACE,
                   help="namespace the webhook was installed in: with --kubeconfig its policy ConfigMap "
                        f"{POLICY_CONFIGMAP} is read there, and pods in it are not judged, as the pod "
                        f"webhooks skip it (default: {NAMESPACE}, where the manifests install it)")
    c.add_argument("--policy", metavar="FILE",
                   help="rule severities and audit switch, as for the server (default: with --kubeconfig, the "
                        f"cluster's ConfigMap {POLICY_CONFIGMAP} in --webhook-namespace; else the defaults)")
    c.add_argument("--output", "-o", choices=list(FORMATS), default="text", help="output format (default: text)")
    c.add_argument("--strict", action="store_true", help="fail on warnings too")
    c.set_defaults(func=run, check_parser=c)


def run(args: argparse.Namespace) -> int:
    if args.context and not args.kubeconfig:
        args.check_parser.error("--context needs --kubeconfig")
    if [*args.paths, *(args.cluster_state or [])].count("-") > 1:
        # The second reader would find stdin empty: a state read so would stand for an empty cluster.
        args.check_parser.error("- (stdin) can be given once, as a PATH or as --cluster-state")
    try:
        if not args.namespace:  # unset, or empty as kubectl reads -n "" (a CI variable left empty)
            args.namespace = (args.kubeconfig and context_namespace(args.kubeconfig, args.context)) or "default"
        if args.kubeconfig and not args.policy:
            # The policy the cluster's webhook serves, as under kubectl apply --dry-run=server.
            served = policy_text(args.kubeconfig, args.context, args.webhook_namespace)
            where = f"ConfigMap {args.webhook_namespace}/{POLICY_CONFIGMAP}"
            policy = Policy() if served is None else Policy.from_text(served, set(registered()), where)
        else:
            policy = load_policy(args.policy)
        documents = [doc for path in args.paths for doc in load_manifests(path)]
        state: Iterable[Mapping[str, Any]] | None = None
        if args.cluster_state:
            state = (doc.obj for doc in iter_objects(args.cluster_state))
        elif args.kubeconfig:
            state = list_objects(args.kubeconfig, args.context, namespace=args.webhook_namespace,
                                 whole_pods=updated_pods(documents, args.namespace))
        # The state is read as check() stores it, object by object: its errors surface here.
        report = check(documents, policy, state=state, default_namespace=args.namespace,
                       webhook_namespace=args.webhook_namespace, strict=args.strict)
    except (PolicyError, DocumentError, SnapshotError) as exc:
        # The message may quote a file name or an input's text: one line, as the report's text lines.
        print(f"multus-webhook check: {printable(str(exc))}", file=sys.stderr)
        if args.output in FAILURES:
            sys.stdout.write(FAILURES[args.output](str(exc)))
        return UNREADABLE
    if args.output in ("text", "json", "junit"):
        # github and sarif carry the notes in the report; json and junit have them only as a field a
        # reader must know to look for: stderr, which the CI log shows, says them to a person too.
        for note in report.notes:
            print(f"multus-webhook check: note: {note}", file=sys.stderr)
    if args.output == "text":
        # Color only for a person at a terminal (and not for one who asked for none: no-color.org).
        sys.stdout.write(text(report, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    else:
        sys.stdout.write(FORMATS[args.output](report))
    return report.exit_status
