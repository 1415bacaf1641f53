"""The controller: turns MultusNodeStates into Node labels and Events and, when asked to, repairs pods
that came back from a reboot without their secondary networks. Only the Lease holder acts; every
replica keeps its cluster store warm so that a takeover acts at once. It reads Nodes and
MultusNodeStates from the same store as the webhook (inside `serve`, one copy of each node)."""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client

from webhook.agent import nodestate
from webhook.cluster.store import NODE, ClusterStore
from webhook.controller import decide
from webhook.controller.lease import LeaderElector, check_timings
from webhook.controller.repair import Damage, TokenBucket, damaged
from webhook.kube import MERGE_PATCH, emit_event, is_status, parse_time, request, utcnow

log = logging.getLogger(__name__)

COMPONENT = "multus-webhook-controller"
#: After a change wakes it, the controller waits this long for more before it looks: with thousands
#: of agents' heartbeats arriving, one look takes in many of them.
BATCH = 0.05
#: A node whose look failed (the apiserver refused a patch) or left work (repairs waiting for the
#: rate limit) is looked at again after this long, changed or not.
RETRY = timedelta(seconds=2)


def default_identity() -> str:
    """Unique per process: two replicas on one host (or a restart) must not share a lease identity."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    namespace: str = nodestate.NAMESPACE
    #: The agents' --interval: a heartbeat older than three of them is stale.
    agent_interval: float = 10.0
    lease_name: str = "multus-webhook-controller"
    lease_namespace: str = nodestate.NAMESPACE
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    repair: bool = False
    #: Pod deletions per second on average, and at most this many at once.
    repair_rate: float = 0.2
    repair_burst: int = 5

    def __post_init__(self) -> None:
        check_timings(self.lease_duration, self.renew_deadline, self.retry_period)
        if self.agent_interval <= 0 or self.repair_rate <= 0 or self.repair_burst < 1:
            raise ValueError("the agent interval and the repair rate must be positive, the repair burst at least 1")


class Controller:
    def __init__(self, api: client.ApiClient, config: ControllerConfig, view: ClusterStore) -> None:
        """``view`` is a store kept up to date by someone else (a started LiveClusterView) that holds
        the Nodes and the MultusNodeStates of ``config.namespace``; ``view.known`` says it has them."""
        self.config = config
        self.view = view
        self.api = api
        self.wake = threading.Event()
        self._changed: set[str] = set()
        self._changed_lock = threading.Lock()
        view.on_nodes_changed(self._heard)
        self.elector = LeaderElector(api, name=config.lease_name, namespace=config.lease_namespace,
                                     identity=config.identity, duration=config.lease_duration,
                                     renew_deadline=config.renew_deadline, retry_period=config.retry_period,
                                     on_change=lambda leading: self.wake.set())
        self.bucket = TokenBucket(config.repair_rate, config.repair_burst)
        #: (node, boot id) whose pods were all checked since Multus became ready on that boot.
        self.repaired: set[tuple[str, str]] = set()
        #: Pods (by uid) already reported as damaged but left alone.
        self.reported: set[str] = set()
        #: Node name -> what its last look saw (decide.needs_look).
        self.looked: dict[str, decide.Seen] = {}
        #: (when, node): a heartbeat goes stale, or a look is due again (a heap; stale entries are
        #: harmless, needs_look turns them away).
        self._deadlines: list[tuple[datetime, str]] = []

    def _heard(self, names: Collection[str]) -> None:
        with self._changed_lock:
            self._changed.update(names)
        self.wake.set()

    def run(self, stop: threading.Event) -> None:
        elector = threading.Thread(target=self.elector.run, args=(stop,), name=f"{COMPONENT}-lease", daemon=True)
        elector.start()
        try:
            while not stop.is_set():
                if self.wake.wait(self._until_due()):
                    stop.wait(BATCH)
                self.wake.clear()
                if stop.is_set():
                    break
                with self._changed_lock:
                    changed, self._changed = self._changed, set()
                if not (self.elector.is_leader() and self.view.known):
                    self.looked.clear()  # a new leader term looks at every node again
                    self._deadlines.clear()
                elif not self.looked:
                    self.reconcile()
                else:
                    self.reconcile(changed.union(self._due(utcnow())))
        finally:
            stop.set()
            elector.join(self.config.retry_period + 5)  # the elector releases the lease on its way out

    def _until_due(self) -> float:
        """Seconds to the next deadline, at most a retry period (leadership and the first sync are
        checked that often)."""
        if not self._deadlines:
            return self.config.retry_period
        left = (self._deadlines[0][0] - utcnow()).total_seconds()
        return min(max(0.0, left), self.config.retry_period)

    def _due(self, now: datetime) -> list[str]:
        due = []
        while self._deadlines and self._deadlines[0][0] <= now:
            due.append(heapq.heappop(self._deadlines)[1])
        return due

    def _again_at(self, moment: datetime, name: str) -> None:
        heapq.heappush(self._deadlines, (moment, name))

    def reconcile(self, names: Iterable[str] | None = None) -> None:
        """Look at the nodes ``names`` (all of them when None: at the start of a leader term) that need
        it (decide.needs_look). Between changes, time alone matters when a heartbeat goes stale: each
        look leaves that moment as a deadline, so that no pass over every node is needed to find them
        (2.8 ms at 5,000 nodes every couple of seconds, in a process that serves admission requests)."""
        now = utcnow()
        everyone = names is None
        if names is None:
            names = self.view.node_names()
        for name in names:
            if not self.elector.is_leader():
                return
            node = self.view.node_object(name)
            if node is None:
                self.looked.pop(name, None)
                continue
            state = self.view.node_state(name)
            if not decide.needs_look(self.looked.get(name), node, state, now):
                continue
            try:
                done = self.reconcile_node(node, state, now)
            except Exception as exc:  # one node's trouble (e.g. deleted meanwhile) must not hold up the others
                log.warning("node %s: %s; retrying", name, exc)
                done = False
            if not done:
                self.looked.pop(name, None)
                self._again_at(now + RETRY, name)
                continue
            self.looked[name] = last = decide.seen(node, state, self.config.agent_interval, now)
            if last[2] is not None:
                self._again_at(last[2], name)
        if everyone:
            for gone in [n for n in self.looked if self.view.node_object(n) is None]:
                del self.looked[gone]

    def reconcile_node(self, node: Mapping[str, Any], state: Mapping[str, Any] | None, now: datetime) -> bool:
        """Labels, Events and repair for one node; False when it must be looked at again regardless
        (a repair still waiting for the rate limit)."""
        name = node["metadata"]["name"]
        verdict = decide.readiness(node, state, now, self.config.agent_interval)
        current = node["metadata"].get("labels") or {}
        patch = decide.label_patch(current, decide.desired_labels(node, state, verdict))
        if patch:
            updated = request(self.api, "PATCH", f"/api/v1/nodes/{name}", body={"metadata": {"labels": patch}},
                              content_type=MERGE_PATCH)
            self.view.upsert(NODE, updated)  # ahead of its watch event: the next look sees our labels
            log.info("node %s: %s (%s)", name, patch, verdict.message)
            for t in decide.transitions(patch, verdict):
                self._event(updated, "Node", t.type, t.reason, t.message)
        boot = decide.node_boot_id(node)
        if self.config.repair and verdict.ready and boot and (name, boot) not in self.repaired:
            ready = decide.state_condition(state, "Ready") or {}
            if not self.repair(node, parse_time(ready.get("lastTransitionTime"))):
                return False
            self.repaired.add((name, boot))
        return True

    def repair(self, node: Mapping[str, Any], multus_ready_since: datetime | None) -> bool:
        """Delete the damaged pods a controller will recreate; report the others. False while deletions
        wait for the rate limit, so that the next reconcile carries on."""
        name = node["metadata"]["name"]
        pods = request(self.api, "GET", "/api/v1/pods", query=[("fieldSelector", f"spec.nodeName={name}")])["items"]
        by_uid = {p["metadata"].get("uid"): p for p in pods}
        complete = True
        for d in damaged(pods, multus_ready_since):
            pod = by_uid[d.uid]
            if d.owner is None:
                if d.uid not in self.reported:
                    self._event(pod, "Pod", "Warning", "MultusNetworksMissing",
                                f"{d.reason}; not deleted because no controller would recreate it: "
                                "delete it to get its networks back")
                    self.reported.add(d.uid)
                continue
            if not self.elector.is_leader() or not self.bucket.take():
                complete = False
                continue
            self._delete(pod, d)
        return complete

    def _delete(self, pod: Mapping[str, Any], d: Damage) -> None:
        try:
            request(self.api, "DELETE", f"/api/v1/namespaces/{d.namespace}/pods/{d.name}",
                    body={"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": d.uid}})
        except Exception as exc:
            if is_status(exc, 404, 409):  # gone already, or a new pod of that name: nothing to repair
                return
            raise
        log.info("deleted pod %s/%s of %s: %s", d.namespace, d.name, d.owner, d.reason)
        self._event(pod, "Pod", "Warning", "MultusNetworksRepaired",
                    f"{d.reason}; deleted so that {d.owner} recreates it with its networks")

    def _event(self, obj: Mapping[str, Any], kind: str, event_type: str, reason: str, message: str) -> None:
        emit_event(self.api, obj, kind=kind, event_type=event_type, reason=reason, message=message,
                   component=COMPONENT, instance=self.config.identity)

