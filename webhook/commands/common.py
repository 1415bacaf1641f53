"""Helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from webhook.rules import Policy, registered


def load_policy(path: str | None) -> Policy:
    """The policy file given with --policy, or the defaults."""
    return Policy.from_file(Path(path), set(registered())) if path else Policy()


def own_namespace(default: str) -> str:
    """The namespace of this command's pod ($POD_NAMESPACE, from the downward API in the manifests),
    else ``default``: a kustomization that moves the manifests elsewhere (`namespace:`) moves the pods,
    and their commands must follow without a flag of their own."""
    return os.environ.get("POD_NAMESPACE") or default


def add_primary_cni_config(parser: argparse.ArgumentParser, purpose: str) -> None:
    """--primary-cni-config-file (also spelled --primary-cni-config), Multus's primaryCniConfigFile:
    the commands that read it take it from PRIMARY_CNI_CONFIG_FILE, which the manifests set from the
    ConfigMap multus-primary-cni where they run in its namespace (Multus's config, the cleanup)."""
    parser.add_argument("--primary-cni-config-file", "--primary-cni-config", dest="primary_cni_config_file",
                        metavar="PATH", type=str.strip, default=os.environ.get("PRIMARY_CNI_CONFIG_FILE", ""),
                        help="the primary CNI config, relative to the CNI config dir, e.g. "
                             f"cilium/05-cilium.conflist; {purpose} (default: $PRIMARY_CNI_CONFIG_FILE)")


def cluster_client(command: str, kubeconfig: str | None) -> Any | None:
    """The API client (webhook.kube.load_client), or None once stderr says why there is none: a
    kubeconfig that is missing or broken is the user's to fix, not a traceback."""
    # Imported here: the commands that never reach a cluster do not carry the kubernetes package.
    import yaml
    from kubernetes.config import ConfigException

    from webhook.kube import load_client

    try:
        return load_client(kubeconfig)
    except (ConfigException, OSError, yaml.YAMLError) as exc:
        print(f"multus-webhook {command}: cannot use {kubeconfig_source(kubeconfig)} to reach the cluster: {exc}",
              file=sys.stderr)
        return None


def kubeconfig_source(kubeconfig: str | None) -> str:
    """What webhook.kube.load_client reads for ``kubeconfig`` (--kubeconfig), in words: the file the
    user has to fix is not always the one they named."""
    if kubeconfig:
        return kubeconfig
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "the in-cluster service account"
    return f"$KUBECONFIG ({os.environ['KUBECONFIG']})" if os.environ.get("KUBECONFIG") else "~/.kube/config"


def stop_on_signals(*, hangup: bool = False) -> threading.Event:
    """An Event that SIGTERM or SIGINT sets, and with ``hangup`` SIGHUP (the terminal was closed) unless
    it is ignored (nohup: the user asked to outlive the terminal). The handler sets it from a thread of
    its own: Event.set takes a lock, and a second signal arriving while the first handler holds that
    lock would deadlock the main thread."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop.set, name="signal", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    if hangup and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, on_signal)
    return stop
