"""Pure decisions about a Node and its MultusNodeState: is Multus ready on it on this boot, which of
our labels it should carry, and what changed. Objects are dicts as the apiserver serves them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webhook.kube import parse_time
from webhook.names import BINARY_LABEL_PREFIX, READY_LABEL, binary_label, is_own_label

#: A heartbeat older than this many agent intervals means nobody vouches for the node any more.
STALE_AFTER_INTERVALS = 3



@dataclass(frozen=True, slots=True)
class Verdict:
    ready: bool
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Transition:
    """One Event to record on the Node."""

    type: str  # Normal | Warning
    reason: str
    message: str


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def node_boot_id(node: Mapping[str, Any]) -> str | None:
    return _get(node, "status", "nodeInfo", "bootID") or None


def node_ready_condition(node: Mapping[str, Any]) -> str | None:
    """The status of the Node's Ready condition ("True", "False", "Unknown"), None when absent."""
    for c in _get(node, "status", "conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == "Ready":
            return str(c.get("status"))
    return None


def state_condition(state: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for c in _get(state, "status", "conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None


def readiness(node: Mapping[str, Any], state: Mapping[str, Any] | None, now: datetime,
              agent_interval: float) -> Verdict:
    """Multus is ready on the node's current boot only when the node is Ready, its agent says so, the
    agent's report is about this very boot, and the agent still reports."""
    if node_ready_condition(node) != "True":
        return Verdict(False, "NodeNotReady", "the node's Ready condition is not True")
    if state is None:
        return Verdict(False, "NoNodeState", "no MultusNodeState reports on this node (is the agent running?)")
    boot = node_boot_id(node)
    if boot is None:
        return Verdict(False, "NodeBootIDUnknown", "the node reports no boot id: the agent's report cannot be matched")
    reported = _get(state, "status", "bootID")
    if reported != boot:
        return Verdict(False, "BootIDChanged",
                       f"the node runs boot {boot} but its MultusNodeState is about boot {reported or 'unknown'}: "
                       "the agent has not reported since the reboot")
    heartbeat = parse_time(_get(state, "status", "heartbeatTime"))
    limit = timedelta(seconds=STALE_AFTER_INTERVALS * agent_interval)
    if heartbeat is None or now - heartbeat >= limit:
        seen = "never" if heartbeat is None else f"{(now - heartbeat).total_seconds():.0f}s ago"
        return Verdict(False, "HeartbeatStale",
                       f"the agent's last heartbeat was {seen} (limit {limit.total_seconds():.0f}s)")
    if _get(state, "status", "multusReady") is not True:
        ready = state_condition(state, "Ready") or {}
        detail = ready.get("message") or "the agent reports Multus not ready"
        return Verdict(False, str(ready.get("reason") or "MultusNotReady"), str(detail))
    return Verdict(True, "MultusReady", f"Multus is ready on boot {boot}")


#: What a node's last look saw: its Node and MultusNodeState objects, and when time alone changes the
#: verdict on them (None: only a change of either object can).
Seen = tuple[Mapping[str, Any], Mapping[str, Any] | None, datetime | None]


def seen(node: Mapping[str, Any], state: Mapping[str, Any] | None, agent_interval: float, now: datetime) -> Seen:
    """A heartbeat already stale at ``now`` stays stale until the state changes: time alone changes
    nothing more."""
    heartbeat = parse_time(_get(state, "status", "heartbeatTime"))
    stale = heartbeat + timedelta(seconds=STALE_AFTER_INTERVALS * agent_interval) if heartbeat else None
    return node, state, stale if stale is not None and stale > now else None


def needs_look(last: Seen | None, node: Mapping[str, Any], state: Mapping[str, Any] | None, now: datetime) -> bool:
    """Whether a node must be decided again: its Node or MultusNodeState was replaced since its last look
    (the store replaces an object whole on every change), or its heartbeat has gone stale since.
    Deciding all of 5,000 nodes every couple of seconds took 75 ms of CPU, which a webhook sharing the
    process felt as latency."""
    if last is None or last[0] is not node or last[1] is not state:
        return True
    return last[2] is not None and now >= last[2]


def desired_labels(node: Mapping[str, Any], state: Mapping[str, Any] | None, verdict: Verdict) -> dict[str, str]:
    """Our labels as they should be. Binary labels come from the inventory of the node's current boot
    (plugins installed before a reboot may be gone after it); a stale heartbeat or a NotReady node
    does not make the last inventory of this boot wrong, so those keep them."""
    labels = {READY_LABEL: "true"} if verdict.ready else {}
    boot = node_boot_id(node)
    if state is not None and boot is not None and _get(state, "status", "bootID") == boot:
        for name in _get(state, "status", "cniBinaries") or []:
            key = binary_label(name) if isinstance(name, str) else None
            if key:
                labels[key] = "true"
    return labels


def label_patch(current: Mapping[str, str], desired: Mapping[str, str]) -> dict[str, str | None]:
    """The merge patch of metadata.labels that makes our labels ``desired``: it names only our own
    keys, so a label anyone else set is never touched (None removes a key)."""
    patch: dict[str, str | None] = {k: v for k, v in desired.items() if is_own_label(k) and current.get(k) != v}
    patch.update({k: None for k in current if is_own_label(k) and k not in desired})
    return patch


def transitions(patch: Mapping[str, str | None], verdict: Verdict) -> list[Transition]:
    """The Events a label patch stands for."""
    events = []
    if READY_LABEL in patch:
        if patch[READY_LABEL] is None:
            events.append(Transition("Warning", "MultusNotReady",
                                     f"{verdict.message}; removed label {READY_LABEL}"))
        else:
            events.append(Transition("Normal", "MultusReady", f"{verdict.message}; set label {READY_LABEL}=true"))
    added = _names(k for k, v in patch.items() if v is not None and k.startswith(BINARY_LABEL_PREFIX))
    removed = _names(k for k, v in patch.items() if v is None and k.startswith(BINARY_LABEL_PREFIX))
    if added or removed:
        parts = [f"labelled for {', '.join(added)}"] if added else []
        parts += [f"unlabelled for {', '.join(removed)}"] if removed else []
        events.append(Transition("Normal", "CNIBinariesChanged", "CNI binaries " + "; ".join(parts)))
    return events


def _names(keys: Iterable[str]) -> list[str]:
    return sorted(k[len(BINARY_LABEL_PREFIX):] for k in keys)
