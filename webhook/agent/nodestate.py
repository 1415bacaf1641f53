"""The MultusNodeState object: its API coordinates and the status the agent writes (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from webhook import names
from webhook.agent.probe import BIN_DIR_UNREADABLE, BINARIES, READY, Condition, Report
from webhook.kube import format_time, parse_time
from webhook.objects import as_text

GROUP = "multus-webhook.io"
VERSION = "v1alpha1"
PLURAL = "multusnodestates"
KIND = "MultusNodeState"
NAMESPACE = names.NAMESPACE


def new_object(node: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": node, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "multus-webhook-agent"}},
        "spec": {},
    }


#: Ready's reason in the report an agent leaves behind when it exits.
AGENT_STOPPED = "AgentStopped"


def stopped(report: Report, reason: str = AGENT_STOPPED,
            message: str = "the agent stopped; nothing vouches for Multus on this node") -> Report:
    """The report the agent leaves behind when it exits: whatever it saw, the node is not ready."""
    others = tuple(c for c in report.conditions if c.type != READY)
    return Report(report.boot_id, report.binaries, (*others, Condition(READY, False, reason, message)),
                  unverified_binaries=report.unverified_binaries, boot_time=report.boot_time,
                  dhcp_daemon=report.dhcp_daemon)


def status_body(node: str, report: Report, previous: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The status for ``report``. A condition keeps its lastTransitionTime while its status holds on
    the same boot; a new boot starts every condition afresh. Used as a merge patch: a boot id or a boot
    time that cannot be read is written as null, never left over from the previous boot, and so is a
    first readiness that is not known (see ``first_ready``)."""
    same_boot = previous is not None and previous.get("bootID") == report.boot_id
    old = {c.get("type"): c for c in (previous or {}).get("conditions") or [] if isinstance(c, Mapping)}
    stamp = format_time(now)
    conditions = []
    for c in report.conditions:
        status = {True: "True", False: "False", None: "Unknown"}[c.status]
        before = old.get(c.type) if same_boot else None
        since = before.get("lastTransitionTime") if before and before.get("status") == status else None
        conditions.append({"type": c.type, "status": status, "reason": c.reason, "message": c.message,
                           "lastTransitionTime": since or stamp})
    first_boot, first_time = first_ready(report, previous, now)
    # The host's time as it is, never the write's: only a change of it matters (a clock step must not
    # make it move).
    run = format_time(report.run_since.replace(microsecond=0)) if report.ready and report.run_since else None
    # A bin directory that cannot be read tells nothing of the binaries: no inventory (null removes it
    # in the merge patch), not an empty one, which the NAD rules read as a node without any plugin.
    unread = any(c.type == BINARIES and c.reason == BIN_DIR_UNREADABLE for c in report.conditions)
    return {
        "nodeName": node,
        "bootID": report.boot_id,
        "bootTime": boot_time(report, previous),
        "cniBinaries": None if unread else list(report.binaries),
        "binaryCount": None if unread else len(report.binaries),
        # Apart from cniBinaries: no binary label for them, but the NAD rules count them (see probe).
        "unverifiedBinaries": None if unread else list(report.unverified_binaries),
        # The controller labels the node for it (names.DHCP_DAEMON) as for a binary.
        "dhcpDaemon": report.dhcp_daemon,
        "multusReady": report.ready,
        "conditions": conditions,
        "firstReadyBootID": first_boot,
        "firstReadyTime": first_time,
        # A later run than the first on the same boot is a Multus daemon that started again: the repair
        # judges the node's pods again for each (Controller.job).
        "readyTime": run,
        "heartbeatTime": stamp,
    }


def first_ready(report: Report, previous: Mapping[str, Any] | None, now: datetime) -> tuple[str | None, str | None]:
    """(firstReadyBootID, firstReadyTime): the boot that agents have watched since it began, and when
    Multus was first ready on it (None until then). The repair judges pods by it: a sandbox made
    before that moment was wired without Multus.

    The moment is the host's evidence (``report.ready_since``), never later than ``now``: an agent
    that first sees Multus ready some time after it became ready (its container waited out a restart
    back-off meanwhile: the daemon re-creates the socket directory the agent had mounted) must not
    date the readiness to its own look, or the sandboxes made in between through Multus would be
    judged stale. It is rounded down to the second, as the kubelet writes a pod's condition times:
    a sandbox made in the same second counts as made after it.

    The Ready condition's lastTransitionTime cannot serve: the agent leaves Ready=False behind when it
    stops, and a Multus daemon restart flips it too, so after an agent rollout it is the moment the
    new agent started, and every healthy pod's sandbox looks older than that. The first readiness is
    therefore carried over from the previous status while the boot lasts, whatever Ready did since.

    A boot is watched from its start only when the previous status is about another boot: then no
    agent has written on this one, and this report is the first word about it. With no previous
    status (a new node, a fresh install) or one of this boot that watched nothing (written by an agent
    that did not know these fields), nobody can tell when Multus first became ready: None, and the
    repair does not judge by sandbox age on this boot rather than judge by a guess.

    A clock stepped on the boot (chrony's makestep once the network is up, on a node that booted with a
    wrong hardware clock) ends the watch the same way: the step shows as a boot time other than the
    one written, or as host evidence later than the clock now."""
    before = previous or {}
    watched, since = as_text(before.get("firstReadyBootID")), as_text(before.get("firstReadyTime"))
    boot = report.boot_id
    if boot is None:  # which boot this is cannot be read: what was known stays
        return watched, since
    if report.clock_stepped or boot_time_moved(report, before):
        # Sandboxes made after the step carry earlier times than the readiness recorded before it:
        # compared, healthy pods would look wired before Multus. The boot stays unwatched (below).
        return None, None
    ready = _second(report.ready_since, now) if report.ready else None
    if watched == boot:
        return boot, since or ready
    other = as_text(before.get("bootID"))
    if other is not None and other != boot:
        return boot, ready
    return None, None


#: How far back the host's boot time may move between two writes before the clock counts as stepped:
#: btime is whole seconds of the clock minus the uptime, so it moves only when the clock is set (a leap
#: second moves it by one), not when the clock is slewed.
BOOT_TIME_JITTER = timedelta(seconds=1)


def boot_time_moved(report: Report, previous: Mapping[str, Any]) -> bool:
    """Whether the node's clock was stepped since the boot time in ``previous`` was read on the same
    boot: the boot time (the clock now minus the uptime) is not what it was. Back, sandboxes made
    after the step look older than the first readiness; forward, the boot time written (kept as first
    read, see boot_time) is older than the clock the kubelet writes pod statuses with, and a status of
    the previous boot looks as if it were of this one."""
    if report.boot_time is None or previous.get("bootID") != report.boot_id:
        return False
    before = parse_time(previous.get("bootTime"))
    return before is not None and abs(before - report.boot_time) > BOOT_TIME_JITTER


def boot_time(report: Report, previous: Mapping[str, Any] | None) -> str | None:
    """The boot time to write: as first read on the boot, while the boot lasts. btime is the clock now
    less the uptime, so a clock stepped forward after the boot would move it later than the pod
    statuses written on the boot before the step, and the repair would take them for statuses of the
    previous boot and give them up. Whole seconds, as /proc/stat has it: the repair compares it with
    the kubelet's condition times."""
    if previous is not None and previous.get("bootID") == report.boot_id and report.boot_id is not None:
        kept = as_text(previous.get("bootTime"))
        if parse_time(kept) is not None:
            return kept
    return None if report.boot_time is None else format_time(report.boot_time)


def _second(moment: datetime | None, now: datetime) -> str:
    """``moment`` (``now`` when not known), never later than ``now``, rounded down to the second as the
    kubelet writes a pod's condition times: a sandbox made in the same second counts as made after it."""
    return format_time(min(moment or now, now).replace(microsecond=0))
