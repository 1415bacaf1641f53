"""`multus-webhook controller`: node labels from the MultusNodeStates, and the opt-in pod repair.

`multus-webhook serve` runs the same controller; it can reuse ``add_arguments`` and ``config_from``
so that both commands take the same flags."""

from __future__ import annotations

import argparse
import sys

from webhook.cluster.live import LiveClusterView
from webhook.commands.common import cluster_client, own_namespace, stop_on_signals
from webhook.controller.controller import KINDS, REPAIR_KINDS, Controller, ControllerConfig
from webhook.controller.lease import lease_seconds

#: The defaults of every flag.
DEFAULTS = ControllerConfig(identity="")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("controller", help="label nodes where Multus is ready on this boot; repair pods (opt-in)")
    c.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG")
    # $POD_NAMESPACE first, as for serve and agent: a controller run in a pod moved elsewhere follows it.
    c.add_argument("--node-state-namespace", default=own_namespace(DEFAULTS.namespace),
                   help=f"namespace of the MultusNodeStates (default: $POD_NAMESPACE, else {DEFAULTS.namespace})")
    c.add_argument("--lease-namespace", default=own_namespace(DEFAULTS.lease_namespace),
                   help=f"(default: $POD_NAMESPACE, else {DEFAULTS.lease_namespace})")
    add_arguments(c)
    c.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags `serve` shares; it has one --namespace for the MultusNodeStates and the Lease."""
    d = DEFAULTS
    p.add_argument("--agent-interval", type=float, default=d.agent_interval,
                   help="the agents' --interval; a heartbeat unchanged for three is stale (default: %(default)s)")
    p.add_argument("--lease-name", default=d.lease_name, help="leader election Lease (default: %(default)s)")
    p.add_argument("--identity", help="this replica's name in the Lease (default: $POD_NAME or host name, and pid)")
    p.add_argument("--lease-duration", type=whole_seconds, default=d.lease_duration,
                   help="whole seconds (default: %(default)s)")
    p.add_argument("--renew-deadline", type=float, default=d.renew_deadline, help="seconds (default: %(default)s)")
    p.add_argument("--retry-period", type=float, default=d.retry_period, help="seconds (default: %(default)s)")
    p.add_argument("--repair", action="store_true",
                   help="evict pods a ReplicaSet, ReplicationController, StatefulSet or DaemonSet owns that came "
                        "back from a reboot without their networks")
    p.add_argument("--repair-rate", type=float, default=d.repair_rate,
                   help="pod evictions per second on average (default: %(default)s)")
    p.add_argument("--repair-burst", type=int, default=d.repair_burst,
                   help="pod evictions at once at most (default: %(default)s)")


def whole_seconds(text: str) -> float:
    """--lease-duration: argparse names the option in the error."""
    try:
        return float(lease_seconds(float(text)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def config_from(args: argparse.Namespace, namespace: str | None = None) -> ControllerConfig:
    """``namespace`` (serve's) holds both the MultusNodeStates and the Lease. Raises ValueError for
    settings that cannot work."""
    extra = {"identity": args.identity} if args.identity else {}
    return ControllerConfig(
        namespace=namespace or args.node_state_namespace, agent_interval=args.agent_interval,
        lease_name=args.lease_name, lease_namespace=namespace or args.lease_namespace,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline, retry_period=args.retry_period, repair=args.repair,
        repair_rate=args.repair_rate, repair_burst=args.repair_burst, **extra,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"multus-webhook controller: {exc}", file=sys.stderr)
        return 2
    api = cluster_client("controller", args.kubeconfig)
    if api is None:
        return 2
    stop = stop_on_signals()
    view = LiveClusterView(api, state_namespace=config.namespace, kinds=REPAIR_KINDS if config.repair else KINDS)
    view.start()
    try:
        Controller(api, config, view).run(stop)
    finally:
        view.stop()
    return 0
