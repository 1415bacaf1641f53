"""The policy ConfigMap through the live cache's list and watch, against a real kube-apiserver: a
ConfigMap that cannot be applied is skipped, and neither the list nor the watch that brought it stops."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webhook.cluster.live import POLICY_CONFIGMAP, LiveClusterView
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.kube import load_client


def apply_policy(cp: ControlPlane, namespace: str, text: str) -> None:
    cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": POLICY_CONFIGMAP, "namespace": namespace},
        "data": {"policy": text}}))


def test_a_configmap_that_cannot_be_applied_stops_neither_the_list_nor_the_watch(
        controlplane: ControlPlane, namespace: str) -> None:
    """Applying it raised out of the reflector: in the list the kind never synced (the replica never
    ready), in the watch the event was replayed with every watch opened again, and the fix never came."""
    applied: list[str] = []

    def on_policy(configmap: Mapping[str, Any] | None) -> None:
        text = str(((configmap or {}).get("data") or {}).get("policy"))
        if text.startswith("broken"):
            raise RuntimeError("a bug in applying the policy")
        applied.append(text)

    apply_policy(controlplane, namespace, "broken: listed")
    view = LiveClusterView(load_client(str(controlplane.kubeconfig)), state_namespace=namespace, kinds=(),
                           on_policy=on_policy)
    view.start()
    try:
        eventually(lambda: view.known, "the first sync, the ConfigMap listed skipped")
        apply_policy(controlplane, namespace, "broken: watched")
        apply_policy(controlplane, namespace, "audit: true")
        eventually(lambda: applied, "the ConfigMap fixed", until=lambda a: a[-1:] == ["audit: true"])
    finally:
        view.stop()
