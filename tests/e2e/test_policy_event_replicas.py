"""The Deployment's replicas (2) each read the policy ConfigMap and each runs the controller: the
PolicyRejected Event comes from the one holding the controller's Lease, and again from the next
holder (the ConfigMap is not read again when the lease moves)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from test_serve_metrics_documented import apply_policy, rejections, samples

from webhook.controller.controller import ControllerConfig
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually

LEASE = ["--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "1"]


def holder(cp: ControlPlane) -> str:
    config = ControllerConfig()
    out = cp.kubectl("get", "lease", config.lease_name, "-n", config.lease_namespace, "-o", "json",
                     "--ignore-not-found").stdout
    return str(json.loads(out)["spec"].get("holderIdentity") or "") if out.strip() else ""


def test_one_policy_rejected_event_from_the_lease_holder_then_from_the_next(cluster: ControlPlane,
                                                                            tmp_path: Path) -> None:
    servers = {name: WebhookServer(tmp_path / name, ["--kubeconfig", str(cluster.kubeconfig), "--identity", name,
                                                     *LEASE]) for name in ("r0", "r1")}
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            eventually(lambda s=server: s.readyz()[0] == 200, "the cache synced")
        leader = eventually(lambda: holder(cluster), "a lease holder", until=lambda h: h in servers)
        apply_policy(cluster, "audit: false\nrules:\n  nad-config-structure: denny\n")
        for server in servers.values():
            eventually(lambda s=server: samples(s).get("multus_webhook_policy_load_success"), "the typo refused",
                       until=lambda loaded: loaded == {(): 0.0})
        eventually(lambda: rejections(cluster), "the PolicyRejected Event")
        time.sleep(3)  # three of the follower's retry periods: it sends none
        assert [e["reportingInstance"] for e in rejections(cluster)] == [leader]

        servers.pop(leader).stop()  # releases the lease
        [follower] = servers
        eventually(lambda: holder(cluster), "the other replica holds the lease", until=lambda h: h == follower)
        events = eventually(lambda: rejections(cluster), "the new holder's Event", until=lambda e: len(e) == 2)
        assert sorted(e["reportingInstance"] for e in events) == sorted([leader, follower])
    finally:
        for server in servers.values():
            server.stop()
