"""Pure decisions about a Node and its MultusNodeState: is Multus ready on it on this boot, which of
our labels it should carry, and what changed. Objects are dicts as the apiserver serves them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webhook.agent.probe import REBOOT_RACE, REBOOT_RACE_EXPOSED
from webhook.kube import parse_time
from webhook.names import BINARY_LABEL_PREFIX, DHCP_DAEMON, READY_LABEL, binary_label, is_own_label
from webhook.objects import as_text

#: A heartbeat that has not changed for this many agent intervals means nobody vouches for the node any
#: more.
STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    #: None: not known yet (see Heartbeat.fresh); the node's ready label then stays as it is.
    ready: bool | None
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


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """An agent's heartbeat as this controller observed it. Staleness is judged, as Kubernetes' node
    lifecycle controller judges kubelets, by how long the value has stayed the same on this
    controller's monotonic clock, never by comparing the time the node wrote with this controller's
    clock: a node clock 45s behind would be stale forever, one 10 minutes ahead would hide a dead
    agent for 10 minutes."""

    #: heartbeatTime as the agent wrote it; None when there is no MultusNodeState or no heartbeat.
    value: str | None
    #: When this controller first saw that value (time.monotonic()), later by as long as it did not act
    #: since (a lapse of its leadership that no other replica filled: the lapse is no silence).
    since: float
    #: Whether this controller saw the value change. A value merely found when it started looking (a
    #: new leader term starts every observation at its start) proves nothing about the agent now: a
    #: dead agent's last heartbeat looks just like a live one's for a whole grace period.
    fresh: bool


def observe(last: Heartbeat | None, state: Mapping[str, Any] | None, now: float) -> Heartbeat:
    """The heartbeat after looking at ``state`` at ``now`` (monotonic), ``last`` the previous look."""
    value = as_text(_get(state, "status", "heartbeatTime"))
    if last is None:
        return Heartbeat(value, now, False)
    if value == last.value:
        return last
    return Heartbeat(value, now, True)


#: The verdict's reason when a heartbeat has stayed the same too long (the controller checks it with the
#: apiserver before it acts on it).
HEARTBEAT_STALE = "HeartbeatStale"
#: The verdict's reason when what decides it depends on MultusNodeStates the cache is not being fed.
NODE_STATES_NOT_FED = "NodeStatesNotFed"
#: The verdict's reason when no agent reports on the node.
NO_NODE_STATE = "NoNodeState"
#: The verdict's reason when the agent says Multus is not ready and not why.
MULTUS_NOT_READY = "MultusNotReady"


def readiness(node: Mapping[str, Any], state: Mapping[str, Any] | None, heartbeat: Heartbeat, now: float,
              agent_interval: float, states_unfed: float = 0.0) -> Verdict:
    """Multus is ready on the node's current boot only when the node is Ready, its agent says so, the
    agent's report is about this very boot, and the agent still reports. ``heartbeat`` is what this
    controller observed of ``state``'s heartbeat, ``now`` its monotonic clock. ``states_unfed``: for how
    many seconds the cache's MultusNodeStates have not been fed by the apiserver (0 while they are):
    meanwhile a missing state or a heartbeat that stays the same says nothing about the agent, and the
    verdict is not known (the ready label stays as it is), as in a new leader's first grace period. One
    watch brings every node's state: taking its silence for the agents' would unlabel every node."""
    if node_ready_condition(node) != "True":
        return Verdict(False, "NodeNotReady", "the node's Ready condition is not True")
    limit = STALE_AFTER_INTERVALS * agent_interval
    if state is None:
        if states_unfed:
            return _not_fed(states_unfed)
        if not heartbeat.fresh and now - heartbeat.since < limit:
            # A leader that has just taken over (or a cache that has just listed) may not have seen it yet.
            return Verdict(None, NO_NODE_STATE, f"no MultusNodeState reports on this node yet (for up to {limit:.0f}s)")
        return Verdict(False, NO_NODE_STATE, "no MultusNodeState reports on this node (is the agent running?)")
    boot = node_boot_id(node)
    if boot is None:
        return Verdict(False, "NodeBootIDUnknown", "the node reports no boot id: the agent's report cannot be matched")
    reported = _get(state, "status", "bootID")
    if reported != boot:
        return Verdict(False, "BootIDChanged",
                       f"the node runs boot {boot} but its MultusNodeState is about boot {reported or 'unknown'}: "
                       "the agent has not reported since the reboot")
    silent = now - heartbeat.since
    if heartbeat.value is None or silent >= limit:
        if states_unfed:
            return _not_fed(states_unfed)
        return Verdict(False, HEARTBEAT_STALE, "the agent has written no heartbeat" if heartbeat.value is None else
                       f"the agent's heartbeat has not changed for {silent:.0f}s (limit {limit:.0f}s)")
    if _get(state, "status", "multusReady") is not True:
        ready = state_condition(state, "Ready") or {}
        detail = ready.get("message") or "the agent reports Multus not ready"
        return Verdict(False, str(ready.get("reason") or MULTUS_NOT_READY), str(detail))
    if not heartbeat.fresh:
        return Verdict(None, "HeartbeatUnconfirmed",
                       f"the agent reports Multus ready on boot {boot}; its heartbeat has not been seen to change "
                       f"yet (for up to {limit:.0f}s)")
    return Verdict(True, "MultusReady", f"Multus is ready on boot {boot}")


#: The reasons of the verdicts readiness decides itself (the others are the agent's Ready reasons).
OWN_REASONS = frozenset({"NodeNotReady", NO_NODE_STATE, "NodeBootIDUnknown", "BootIDChanged", HEARTBEAT_STALE,
                         NODE_STATES_NOT_FED, MULTUS_NOT_READY, "HeartbeatUnconfirmed", "MultusReady"})


def _not_fed(states_unfed: float) -> Verdict:
    return Verdict(None, NODE_STATES_NOT_FED, f"the apiserver has not fed the cache's MultusNodeStates for "
                   f"{states_unfed:.0f}s: whether the agent still reports is not known")


def first_ready_time(node: Mapping[str, Any], state: Mapping[str, Any] | None) -> datetime | None:
    """When Multus was first ready on the node's current boot, as its agent recorded it (the node's
    clock, as the pods' sandbox times); None when no agent watched this boot from its start, e.g. its
    status was written by an agent that did not record it: nobody knows then, and the repair must not
    guess (see webhook.agent.nodestate.first_ready)."""
    boot = node_boot_id(node)
    if boot is None or _get(state, "status", "firstReadyBootID") != boot:
        return None
    return parse_time(_get(state, "status", "firstReadyTime"))


def boot_time(node: Mapping[str, Any], state: Mapping[str, Any] | None) -> datetime | None:
    """When the node's current boot began, as its agent read it with the boot id (the node's clock, as
    the pods' condition times); None when the status is about another boot or carries no boot time (an
    agent that could not read it, or did not report it): the repair then cannot tell a pod status the
    kubelet has not rewritten since the boot (see webhook.controller.repair)."""
    return _of_this_boot(node, state, "bootTime")


def ready_time(node: Mapping[str, Any], state: Mapping[str, Any] | None) -> datetime | None:
    """When the current run of Multus readiness began on the node's current boot, as its agent
    recorded it; None when the status is about another boot or does not say (Multus not ready, an
    older agent). A later run than the first on the same boot is a Multus daemon that started again:
    sandboxes may have been wired without it in between (see webhook.agent.agent.Agent.look)."""
    return _of_this_boot(node, state, "readyTime")


def _of_this_boot(node: Mapping[str, Any], state: Mapping[str, Any] | None, key: str) -> datetime | None:
    boot = node_boot_id(node)
    if boot is None or _get(state, "status", "bootID") != boot:
        return None
    return parse_time(_get(state, "status", key))


#: What a node's last look saw: its Node and MultusNodeState objects, its agent pods, and when it
#: must be looked at again though none of them changes (a monotonic time: its heartbeat goes stale,
#: or work left waits for it; None: only a change of one of them matters).
Seen = tuple[Mapping[str, Any], Mapping[str, Any] | None, tuple[Mapping[str, Any], ...], float | None]


def stale_at(heartbeat: Heartbeat, agent_interval: float, now: float) -> float | None:
    """When time alone makes ``heartbeat`` stale (or, with no heartbeat, ends a new leader's grace
    period); None when that moment is past or there is nothing to wait for: it stays so until the state
    changes."""
    if heartbeat.value is None and heartbeat.fresh:
        return None
    moment = heartbeat.since + STALE_AFTER_INTERVALS * agent_interval
    return moment if moment > now else None


def needs_look(last: Seen | None, node: Mapping[str, Any], state: Mapping[str, Any] | None,
               agents: tuple[Mapping[str, Any], ...], now: float) -> bool:
    """Whether a node must be decided again: its Node, MultusNodeState or agent pods were replaced since
    its last look (the store replaces them whole on every change), or the time its last look left has come.
    Deciding all of 5,000 nodes every couple of seconds took 75 ms of CPU, which a webhook sharing the
    process felt as latency."""
    if last is None or last[0] is not node or last[1] is not state or last[2] is not agents:
        return True
    return last[3] is not None and now >= last[3]


def desired_labels(node: Mapping[str, Any], state: Mapping[str, Any] | None, verdict: Verdict) -> dict[str, str]:
    """Our labels as they should be, on the Node and on its agent pods alike. Binary labels follow the
    inventory the agent reported for the node's current boot; a stale heartbeat or a NotReady node does
    not make it wrong. Until the agent reports on the current boot (after a reboot; with no
    MultusNodeState or no boot id) they stay as they are: the binaries on the node's disk survive a
    reboot, so taking their labels off would hold pods back for nothing (and fail, when the kubelet
    starts, any pod whose own node selector names them: kubernetes/kubernetes#76322, #124586). Keeping
    new pods off a node that is not ready is the ready label's job. While the verdict is not known the
    ready label stays as it is: a new leader neither hands it to a node whose agent died under its
    predecessor nor takes it from a live one in its first grace period."""
    current = _get(node, "metadata", "labels") or {}
    kept = verdict.ready is None and current.get(READY_LABEL) == "true"
    labels = {READY_LABEL: "true"} if verdict.ready or kept else {}
    boot = node_boot_id(node)
    # An inventory not known on this boot (the agent cannot read the bin directory: it publishes none)
    # leaves the labels as they are, as a boot not reported on yet does.
    if (state is not None and boot is not None and _get(state, "status", "bootID") == boot
            and isinstance(_get(state, "status", "cniBinaries"), (list, frozenset))):
        # A link the agent cannot follow too: the mutation's gate requires a label for every binary the
        # rules count as there, and without it every pod needing a distribution-packaged plugin (a link
        # to /usr/libexec/cni) would stay Pending, or fail at a kubelet restart under a node affinity gate.
        status = state.get("status") or {}
        for name in [*(status.get("cniBinaries") or []), *(status.get("unverifiedBinaries") or [])]:
            key = binary_label(name) if isinstance(name, str) else None
            if key:
                labels[key] = "true"
        # Only an agent that says the daemon does not answer withholds the label. One that does not say
        # (an agent older than the probe during a rolling upgrade, or a CRD not re-applied whose schema
        # prunes the field) leaves the node as it was before the gate required the daemon, rather than
        # keeping every dhcp pod off it.
        if status.get("dhcpDaemon") is not False:
            labels[BINARY_LABEL_PREFIX + DHCP_DAEMON] = "true"
    else:
        labels.update({k: v for k, v in current.items() if k.startswith(BINARY_LABEL_PREFIX)})
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


#: The Event's reason when a node's RebootRaceGuarded condition turns False (reboot_race_warning).
REBOOT_RACE_EXPOSED_EVENT = "RebootRaceNotGuarded"


def reboot_race_warning(state: Mapping[str, Any] | None) -> tuple[str, Transition] | None:
    """The Warning Event a MultusNodeState's RebootRaceGuarded condition stands for while it is False
    because a config at the top level of the conf dir would be the runtime's whenever Multus's is absent
    (probe.REBOOT_RACE_EXPOSED; the node stays ready, so no label change tells), and what tells that
    transition from another: the condition's boot, reason and lastTransitionTime, which the agent keeps
    while the status holds on a boot. None otherwise."""
    race = state_condition(state, REBOOT_RACE)
    if race is None or race.get("status") != "False" or race.get("reason") not in REBOOT_RACE_EXPOSED:
        return None
    key = f"{_get(state, 'status', 'bootID')}/{race.get('reason')}/{race.get('lastTransitionTime')}"
    return key, Transition("Warning", REBOOT_RACE_EXPOSED_EVENT,
                           f"{REBOOT_RACE} is False ({race.get('reason')}): {race.get('message')}")


def _names(keys: Iterable[str]) -> list[str]:
    return sorted(k[len(BINARY_LABEL_PREFIX):] for k in keys)
