"""`multus-webhook agent`: the node agent (a DaemonSet) that publishes its node's MultusNodeState."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from webhook.agent import nodestate
from webhook.agent.agent import Agent, AgentConfig
from webhook.agent.probe import HostLayout
from webhook.commands.common import add_primary_cni_config, cluster_client, own_namespace, stop_on_signals


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("agent", help="node agent: publish this node's MultusNodeState (run as a DaemonSet)")
    defaults = HostLayout()
    a.add_argument("--node-name", default=os.environ.get("NODE_NAME"), help="this node's name (default: $NODE_NAME)")
    a.add_argument("--host-root", default=str(defaults.root), help=f"the host's / (default: {defaults.root})")
    a.add_argument("--cni-bin-dir", default=defaults.cni_bin_dir, help="host path (default: %(default)s)")
    a.add_argument("--cni-conf-dir", default=defaults.cni_conf_dir, help="host path (default: %(default)s)")
    a.add_argument("--multus-socket", default=defaults.multus_socket, help="host path (default: %(default)s)")
    a.add_argument("--boot-id-file", default=defaults.boot_id_file, help="host path (default: %(default)s)")
    a.add_argument("--stat-file", default=defaults.stat_file,
                   help="host path of the kernel's stat file, whose btime line is the boot time (default: %(default)s)")
    a.add_argument("--multus-config", default=defaults.multus_config,
                   help="the file name Multus writes into the conf dir (default: %(default)s)")
    a.add_argument("--multus-binary", default=defaults.multus_binary,
                   help="the binary the runtime calls for Multus (default: %(default)s)")
    a.add_argument("--multus-autoconfig-dir", default=defaults.multus_autoconfig_dir,
                   help="not a host path: the conf dir as the Multus daemon's container mounts it, Multus's "
                        "multusAutoconfigDir, which begins the path of the config it delegates to that it writes "
                        "in its own (default: %(default)s, as every Multus manifest has it)")
    add_primary_cni_config(a, "empty (as the manifests leave it): the one Multus names as its delegate in its "
                              "config, else (its config names none) the first config that is not Multus's own; "
                              "none while its config is empty or does not parse")
    a.add_argument("--namespace", default=own_namespace(nodestate.NAMESPACE),
                   help="namespace of the MultusNodeStates, the webhook's (default: $POD_NAMESPACE, else %(default)s)")
    a.add_argument("--interval", type=float, default=10.0,
                   help="seconds between heartbeats (default: %(default)s); give the controller the same value")
    a.add_argument("--poll-interval", type=float, default=1.0,
                   help="seconds between looks at the host; changes are written at once (default: %(default)s)")
    a.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG")
    a.add_argument("--ready-file", metavar="PATH",
                   help="written once this run has published the node's state, for a readiness probe; "
                        "removed at start and on exit")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.node_name:
        print("multus-webhook agent: --node-name or NODE_NAME is required", file=sys.stderr)
        return 2
    if args.interval <= 0 or args.poll_interval <= 0:
        print("multus-webhook agent: --interval and --poll-interval must be positive", file=sys.stderr)
        return 2
    config = AgentConfig(node=args.node_name, layout=layout_from(args), namespace=args.namespace,
                         interval=args.interval, poll_interval=args.poll_interval,
                         ready_file=Path(args.ready_file) if args.ready_file else None)
    api = cluster_client("agent", args.kubeconfig)
    if api is None:
        return 2
    stop = stop_on_signals()
    return 0 if Agent(api, config).run(stop) else 1


def layout_from(args: argparse.Namespace) -> HostLayout:
    """Where the agent looks on the host, from its parsed arguments."""
    return HostLayout(
        root=Path(args.host_root), cni_bin_dir=args.cni_bin_dir, cni_conf_dir=args.cni_conf_dir,
        multus_socket=args.multus_socket, boot_id_file=args.boot_id_file, stat_file=args.stat_file,
        multus_config=args.multus_config, multus_binary=args.multus_binary,
        multus_autoconfig_dir=args.multus_autoconfig_dir,
        primary_config=args.primary_cni_config_file or None,
    )
