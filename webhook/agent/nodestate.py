"""The MultusNodeState object: its API coordinates and the status the agent writes (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from webhook.agent.probe import READY, Condition, Report
from webhook.kube import format_time

GROUP = "multus-webhook.io"
VERSION = "v1alpha1"
PLURAL = "multusnodestates"
KIND = "MultusNodeState"
NAMESPACE = "multus-webhook"


def new_object(node: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": node, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "multus-webhook-agent"}},
        "spec": {},
    }


def stopped(report: Report, reason: str = "AgentStopped",
            message: str = "the agent stopped; nothing vouches for Multus on this node") -> Report:
    """The report the agent leaves behind when it exits: whatever it saw, the node is not ready."""
    others = tuple(c for c in report.conditions if c.type != READY)
    return Report(report.boot_id, report.binaries, (*others, Condition(READY, False, reason, message)))


def status_body(node: str, report: Report, previous: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The status for ``report``. A condition keeps its lastTransitionTime while its status holds on
    the same boot; a new boot starts every condition afresh, so the Ready condition's
    lastTransitionTime is always the moment Multus became ready on this boot (the repair relies on it).
    Used as a merge patch: a boot id that cannot be read is written as null, never left over from
    the previous boot."""
    same_boot = previous is not None and previous.get("bootID") == report.boot_id
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or [] if isinstance(c, Mapping)}
    stamp = format_time(now)
    conditions = []
    for c in report.conditions:
        status = "True" if c.status else "False"
        before = old.get(c.type) if same_boot else None
        since = before.get("lastTransitionTime") if before and before.get("status") == status else None
        conditions.append({"type": c.type, "status": status, "reason": c.reason, "message": c.message,
                           "lastTransitionTime": since or stamp})
    return {
        "nodeName": node,
        "bootID": report.boot_id,
        "cniBinaries": list(report.binaries),
        "binaryCount": len(report.binaries),
        "multusReady": report.ready,
        "conditions": conditions,
        "heartbeatTime": stamp,
    }
