"""The agent's loop: look at the host every poll, write the MultusNodeState at once when the report
changes and at least every interval (the heartbeat), and leave the node not ready on stop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client

from webhook.agent import nodestate
from webhook.agent.probe import (
    CAPABILITIES,
    DIR_REPLACED,
    REBOOT_RACE,
    REBOOT_RACE_EXPOSED,
    HostLayout,
    Report,
    evaluate,
    read_host,
)
from webhook.kube import MERGE_PATCH, SHORT_TIMEOUT, is_status, request, utcnow

log = logging.getLogger(__name__)

#: How far the host's evidence of readiness may be ahead of the agent's clock before the clock counts
#: as stepped back: file times come from the kernel's coarse clock, a tick behind the fine one.
CLOCK_STEP = timedelta(seconds=1)
#: Conditions the agent logs as a WARNING, and for which of their reasons (Agent._warn).
WARNED = {REBOOT_RACE: REBOOT_RACE_EXPOSED, CAPABILITIES: frozenset({"CapabilitiesMissing"})}


@dataclass(frozen=True, slots=True)
class AgentConfig:
    node: str
    layout: HostLayout
    namespace: str = nodestate.NAMESPACE
    #: Heartbeat: the longest time between two writes. The controller must be told the same value.
    interval: float = 10.0
    #: How often the host is looked at; a change is written at the next look.
    poll_interval: float = 1.0
    #: Written once this run has published the node's state, removed at start and on the way out: the
    #: DaemonSet's readiness probe tests for it, so a rollout waits for each new agent to report.
    ready_file: Path | None = None


class Agent:
    def __init__(self, api: client.ApiClient, config: AgentConfig, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.api = api
        self.collection = (f"/apis/{nodestate.GROUP}/{nodestate.VERSION}/namespaces/{config.namespace}/"
                           f"{nodestate.PLURAL}")
        self.status_path = f"{self.collection}/{config.node}/status"
        self.clock = clock
        #: The status last written, or read at start; nothing is written before it was read (the
        #: status carries when Multus was first ready on this boot, which a restart must not lose).
        self.previous: Mapping[str, Any] | None = None
        self.read = False
        self.written: Report | None = None
        #: (boot id, when this agent first saw Multus ready on that boot).
        self.seen_ready: tuple[str | None, datetime] | None = None
        #: The clock step the last look found was logged (once per step, not per look).
        self.stepped_logged = False
        #: Condition type -> the warning last logged for it (WARNED; once per change, not per look).
        self.warned: dict[str, str] = {}

    def look(self) -> Report:
        """The host as it is now. A ready report's ``ready_since`` is no later than the moment this
        agent first saw Multus ready on the boot: the host's evidence can move later (the daemon
        restarts, its config is written again) while a write of the first readiness is retried."""
        report = evaluate(read_host(self.config.layout), self.config.layout)
        self._warn(report)
        if not report.ready:
            return report
        now, host, boot = self.clock(), report.ready_since, report.boot_id
        if self.seen_ready is None or self.seen_ready[0] != boot:
            self.seen_ready = (boot, now)
        first = self.seen_ready[1]
        stepped = host is not None and host - now > CLOCK_STEP
        if host is not None and stepped and not self.stepped_logged:
            log.warning("node %s: Multus became ready at %s by the host's files, later than the clock now (%s): "
                        "the clock was stepped back since; sandbox times are not compared with it on this boot",
                        self.config.node, host.isoformat(), now.isoformat())
        self.stepped_logged = stepped
        return replace(report, ready_since=min(host or first, first), clock_stepped=stepped)

    def _warn(self, report: Report) -> None:
        """A condition that holds no readiness back but is a fault (WARNED) is logged as a WARNING when
        first seen and when its message changes, while its MultusNodeState condition says the same for
        as long as it lasts: a config that the runtime will use at the next reboot in place of Multus's
        (RebootRaceGuarded), or Multus's config lacking a capability the primary's enables
        (DelegateCapabilitiesCurrent: pods get no hostPort or bandwidth until Multus restarts)."""
        faults = {c.type: c.message for c in report.conditions if c.reason in WARNED.get(c.type, ())}
        for kind, message in faults.items():
            if self.warned.get(kind) != message:
                log.warning("node %s: %s", self.config.node, message)
        self.warned = faults

    def run(self, stop: threading.Event) -> bool:
        """Until ``stop``; False when it stopped because it can no longer see the host as it is (its
        container must be restarted, which the caller's non-zero exit asks the kubelet to do)."""
        cfg = self.config
        last_write = float("-inf")
        marked = False
        seen: Report | None = None
        if cfg.ready_file is not None:  # left by an earlier run of the container, on a volume that outlives it
            cfg.ready_file.unlink(missing_ok=True)
        try:
            report = seen = self.look()
            while not report.restart:
                due = report != self.written or time.monotonic() - last_write >= cfg.interval
                if due and self.write(report):
                    if cfg.ready_file is not None and not marked:
                        marked = self.mark_ready(cfg.ready_file)
                    last_write = time.monotonic()
                if stop.wait(min(cfg.poll_interval, cfg.interval)):
                    break
                report = seen = self.look()
        finally:
            if cfg.ready_file is not None:
                cfg.ready_file.unlink(missing_ok=True)
            # However the loop ends, an exception included: a node left ready would stay ready until
            # its heartbeat goes stale, with nobody looking. Before any look there is nothing to stop.
            if seen is not None and self.write(nodestate.stopped(seen)):
                log.info("marked node %s not ready on the way out", cfg.node)
        if report.restart:
            log.error("%s", "; ".join(c.message for c in report.conditions if c.reason in DIR_REPLACED))
        return not report.restart

    def mark_ready(self, path: Path) -> bool:
        """Whether the ready file is written; one that could not be is tried again at the next write
        (a volume not there yet, full, read-only for a while: the pod would stay unready until restarted)."""
        try:
            path.write_text("published\n")
        except OSError as exc:  # the pod stays unready, which says so; the node's state is still written
            log.warning("could not write the ready file %s: %s", path, exc)
            return False
        return True

    def write(self, report: Report) -> bool:
        """Publish ``report``; False (logged) when the apiserver could not be told, to retry next poll."""
        if not self.read:
            try:
                self.previous = self._read_status()
            except Exception as exc:  # as for a write: the next poll retries
                log.warning("could not read MultusNodeState %s, which must be read before it is written: %s",
                            self.config.node, exc)
                return False
            self.read = True
        status = nodestate.status_body(self.config.node, report, self.previous, self.clock())
        try:
            self._patch_status(status)
        except Exception as exc:  # the next poll retries; a dead apiserver must not kill the agent
            log.warning("could not write MultusNodeState %s: %s", self.config.node, exc)
            return False
        if self.previous and self.previous.get("firstReadyTime") and status["firstReadyTime"] is None \
                and self.previous.get("bootID") == status["bootID"]:
            log.warning("node %s: the clock was stepped back on boot %s (boot time %s, was %s): the first readiness "
                        "is forgotten, sandbox times are not compared with it on this boot", self.config.node,
                        status["bootID"], status["bootTime"], self.previous.get("bootTime"))
        if report != self.written:
            log.info("node %s: multusReady=%s (%s)", self.config.node, report.ready,
                     next((c.message for c in report.conditions if c.type == "Ready"), ""))
        self.previous, self.written = status, report
        return True

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call, its read given up after an interval: the controller takes the node's ready label when
        the heartbeat has not changed for three intervals, and a connection gone silent held the loop
        for the 60s of a read. urllib3 drops the connection of a read that timed out, so the next poll's
        write goes on a new one, well within the three. No shorter: the apiserver cancels a write its
        client gives up on, so an apiserver slower than the read timeout (queued by API Priority and
        Fairness, or a slow admission webhook on status writes) never stored a heartbeat at all with a
        5s read (measured with a 6s webhook)."""
        return request(self.api, method, path, timeout=(SHORT_TIMEOUT[0], self.config.interval), **kwargs)

    def _read_status(self) -> Mapping[str, Any] | None:
        """The status in the apiserver, None when there is none; raises when it cannot be read."""
        try:
            obj = self._call("GET", f"{self.collection}/{self.config.node}")
        except Exception as exc:
            if is_status(exc, 404):
                return None
            raise
        status = obj.get("status") if isinstance(obj, dict) else None
        return status if isinstance(status, dict) else None

    def _patch_status(self, status: dict[str, Any]) -> None:
        try:
            self._call("PATCH", self.status_path, body={"status": status}, content_type=MERGE_PATCH)
            return
        except Exception as exc:
            if not is_status(exc, 404):
                raise
        try:
            self._call("POST", self.collection, body=nodestate.new_object(self.config.node, self.config.namespace))
        except Exception as exc:
            if not is_status(exc, 409):  # another writer created it first: fine, patch it
                raise
        self._call("PATCH", self.status_path, body={"status": status}, content_type=MERGE_PATCH)
