"""The controller: turns MultusNodeStates into labels (on the Nodes and on the agents' pods) and
Events, deletes the MultusNodeStates of nodes that are gone and, when asked to, repairs pods that came
back from a reboot without their secondary networks. Only the Lease holder acts; every replica keeps
its cluster store warm so that a takeover acts at once. It reads Nodes, MultusNodeStates and agent
pods from the same store as the webhook (inside `serve`, one copy of each node)."""

from __future__ import annotations

import heapq
import json
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.agent import nodestate
from webhook.cluster.store import AGENT_POD, NAD, NODE, NODE_STATE, ClusterStore
from webhook.controller import decide
from webhook.controller.lease import LeaderElector, check_timings
from webhook.controller.repair import NOT_EVICTED, Damage, TokenBucket, Unwritten, judge
from webhook.kube import (
    MERGE_PATCH,
    SHORT_TIMEOUT,
    EventRecorder,
    describe,
    is_status,
    request,
    retry_after,
    status_message,
)
from webhook.multus.selection import DEFAULT_MULTUS_NAMESPACE
from webhook.names import READY_LABEL

log = logging.getLogger(__name__)

COMPONENT = "multus-webhook-controller"
#: What the controller reads from its store (`multus-webhook controller` watches these, and NADs with --repair).
KINDS = (NODE, NODE_STATE, AGENT_POD)
#: What the repair reads besides: whether Multus lists a NAD's attachments in network-status at all.
REPAIR_KINDS = (*KINDS, NAD)
#: Where the MultusNodeStates are served.
STATES_API = "/apis/multus-webhook.io/v1alpha1"
#: After a change wakes it, the controller waits this long for more before it looks: with thousands
#: of agents' heartbeats arriving, one look takes in many of them.
BATCH = 0.05
#: A repair that found a pod changed since it was listed, or lost the lease, carries on after this many
#: seconds.
RETRY = 2.0
#: A node whose look failed (the apiserver refused a patch, or did not answer in time) is tried again
#: after BACKOFF_BASE seconds, twice as long after each failure in a row, up to BACKOFF_CAP (as
#: client-go's workqueues do), plus up to BACKOFF_JITTER of that: nodes refused in the same pass (an
#: admission policy that freezes node labels refuses every one) do not all come back at once. An answer
#: asking for a longer wait (Retry-After) is waited for. A heartbeat does not bring the try forward,
#: only a change of what the look would write: a refusal for good (403, 422) costs a request per node
#: every few minutes, not one per node every couple of seconds and heartbeat, and an apiserver that
#: sheds load (429) gets less of it.
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
BACKOFF_JITTER = 0.1
#: After the apiserver refused a repair a deletion (403), seconds before the next try on that node: a
#: missing permission is not granted within seconds, and every try is one more refused request.
FORBIDDEN_RETRY = 600.0
#: How long a repair first waits when every pod left on a node was refused eviction (then twice as
#: long each time, up to FORBIDDEN_RETRY).
DISRUPTION_RETRY = 30.0
#: Refusals other than a PodDisruptionBudget's after which a pod is given up for the boot.
MAX_EVICTION_TRIES = 3
#: How long a node's repair waits for the kubelet to rewrite the pod statuses left from before the
#: boot (repair.Unwritten), listing the node's pods again every agent interval meanwhile. The kubelet
#: rewrites a pod's status when it first syncs the pod after it starts, before it asks for the pod's
#: sandbox, and the repair begins only once the node is Ready with Multus: at the kubelet's default 50
#: requests a second a full node takes seconds, at the 5 of kubelets before 1.27 under a minute. A
#: status still not rewritten after minutes is one the kubelet does not send (it does not sync that
#: pod, or the apiserver refuses the status): those pods are left alone, never evicted.
REWRITE_PATIENCE = 300.0
#: How many pods a log line names.
NAMED_PODS = 10
#: (connect, read) seconds for the repair's list of a node's pods, made in the one loop that labels
#: every node, like the label patches (SHORT_TIMEOUT): the default 60s read would hold every other
#: node's labels up that long. Twice a patch's read timeout: the read timeout bounds each wait for
#: data, not the whole answer, so a large list that keeps coming is not cut; what it must cover is
#: the wait for the first byte, while the apiserver gathers the node's pods (from its watch cache, by
#: the spec.nodeName index: a few hundred pods, within a second on a healthy apiserver) after any wait
#: in API Priority and Fairness, which charges a list more the more objects it may return. A list
#: that takes longer backs the node off and is made again, as a failed patch is.
POD_LIST_TIMEOUT = (SHORT_TIMEOUT[0], 2 * SHORT_TIMEOUT[1])
#: The verdict's reason when the apiserver holds another MultusNodeState than the store (_confirm_stale).
NODE_STATE_BEHIND = "NodeStateBehind"


def default_identity() -> str:
    """Unique per process: two replicas on one host (or a restart) must not share a lease identity."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    namespace: str = nodestate.NAMESPACE
    #: The agents' --interval: a heartbeat that stays the same for three of them (as this controller
    #: observes it, on its own clock) is stale. A repair waiting for the kubelet to rewrite pod statuses
    #: from before the boot lists the node's pods again after one.
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
    #: The policy's multusNamespace: where an unqualified default-network is (serve keeps it current).
    multus_namespace: str = DEFAULT_MULTUS_NAMESPACE

    def __post_init__(self) -> None:
        check_timings(self.lease_duration, self.renew_deadline, self.retry_period)
        if self.agent_interval <= 0 or self.repair_rate <= 0 or self.repair_burst < 1:
            raise ValueError("the agent interval and the repair rate must be positive, the repair burst at least 1")


#: What a node's look would write: the merge patch of metadata.labels for the Node, then for each agent
#: pod by uid (decide.label_patch; empty when nothing changes).
Writes = tuple[frozenset[tuple[str, str | None]], tuple[tuple[str | None, frozenset[tuple[str, str | None]]], ...]]


@dataclass(frozen=True, slots=True)
class Look:
    """One node's look as decided from the store, before anything is sent."""

    node: Mapping[str, Any]
    state: Mapping[str, Any] | None
    agents: tuple[Mapping[str, Any], ...]
    heartbeat: decide.Heartbeat
    now: float
    verdict: decide.Verdict
    desired: dict[str, str]
    writes: Writes

    @property
    def name(self) -> str:
        return str(self.node["metadata"]["name"])

    @property
    def sends(self) -> bool:
        """Whether it patches the labels of the node or of one of its agent pods."""
        return bool(self.writes[0]) or any(patch for _, patch in self.writes[1])

    @property
    def unreadies(self) -> bool:
        """Whether it takes the ready label off the node or one of its agent pods."""
        return any((READY_LABEL, None) in patch for patch in (self.writes[0], *(p for _, p in self.writes[1])))


@dataclass(frozen=True, slots=True)
class Backoff:
    """A node whose last look failed."""

    #: What that look would have written: a look that would write anything else is not held back.
    writes: Writes | None
    failures: int
    not_before: float


def backoff_delay(failures: int, asked: float | None) -> float:
    """Seconds before the next try after ``failures`` in a row (BACKOFF_BASE); ``asked``: the wait the
    last answer asked for (Retry-After), itself at most BACKOFF_CAP."""
    wait = min(BACKOFF_BASE * 2.0 ** min(failures - 1, 32), BACKOFF_CAP)
    if asked is not None:
        wait = max(wait, min(asked, BACKOFF_CAP))
    return wait * (1.0 + random.uniform(0.0, BACKOFF_JITTER))


@dataclass(slots=True)
class NodeRepair:
    """The repair of one node on one boot, for one run of Multus readiness on it."""

    boot: str
    #: When that run began (the MultusNodeState's readyTime); None when the agent does not say.
    run: datetime | None = None
    #: A run after the first on the boot (the Multus daemon started again): its pods are listed once
    #: more, an agent interval after the first list. A sandbox wired without Multus just before it came
    #: back may not be in its pod's status yet when the run begins, and the status of a pod wired on
    #: the same boot says nothing of when (unlike after a reboot, see _unwritten).
    recheck: bool = False
    #: The damage the node's pods showed, still to be dealt with; None until they are listed (again,
    #: after a deletion found a pod changed since, or while pod statuses from before the boot are
    #: waited for). Kept between looks, so that a repair waiting for the rate limit lists the node's
    #: pods once, not at every look.
    todo: deque[Damage] | None = None
    #: Pods (by uid) reported as damaged but left alone: one Event each, also when listed again.
    reported: set[str] = field(default_factory=set)
    #: No eviction is tried before this monotonic time (after one was forbidden, or every pod left
    #: was refused by its PodDisruptionBudget).
    not_before: float = 0.0
    #: Evictions refused in a row (see Controller._not_evicted), waits after such a row, and refusals
    #: that were not a budget's by pod uid.
    refused: int = 0
    waits: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    #: When the pods were last listed (monotonic), and which of them carried a status the kubelet had
    #: not rewritten since the boot; when such pods were first seen (None: not yet).
    listed: float = 0.0
    unwritten: list[Unwritten] = field(default_factory=list)
    unwritten_since: float | None = None

    @property
    def done(self) -> bool:
        return self.todo is not None and not self.todo


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
        #: Node name -> the repair on its current boot (a new boot replaces it; a gone node drops it; a
        #: new leader term starts it over, see _resume).
        self.repairs: dict[str, NodeRepair] = {}
        #: Node name -> its agent's heartbeat as observed in this leader term (kept through a lapse in
        #: which no other replica held the lease, see _resume).
        self.heartbeats: dict[str, decide.Heartbeat] = {}
        #: The elector's term (LeaderElector.term) that what this replica knows belongs to; the moment
        #: (monotonic) its last pass as leader ended; while it does not act, when it stopped acting.
        self._term: tuple[str, int] | None = None
        self._acted_at: float | None = None
        self._lapsed_at: float | None = None
        #: Node name -> what its last look saw (decide.needs_look).
        self.looked: dict[str, decide.Seen] = {}
        #: (when, node), monotonic: a heartbeat goes stale, or a look is due again (a heap; stale
        #: entries are harmless, needs_look turns them away).
        self._deadlines: list[tuple[float, str]] = []
        #: Whether the refusal to delete pods was logged since the last deletion that worked.
        self._forbidden_logged = False
        #: The monotonic time before which no agent pod is labelled, after the apiserver refused it.
        self._agents_not_before = 0.0
        #: Node name -> its last look's failure, while nothing has worked since (in this leader term).
        self.backoffs: dict[str, Backoff] = {}
        self.events = EventRecorder(api, component=COMPONENT, instance=config.identity)
        #: Node name -> the RebootRaceGuarded transition its last such Event was about
        #: (decide.reboot_race_warning): one Event per transition, not one per look (every heartbeat
        #: brings one). Kept through new leader terms: this process sent it already.
        self.race_warned: dict[str, str] = {}
        #: Node name -> its last verdict (ready, reason), for the metrics (webhook.controller.metrics).
        self.verdicts: dict[str, tuple[bool | None, str]] = {}
        #: Nodes told of with a Warning that no agent reports on them (_warn_unreported), while it stays so.
        self.unreported_warned: set[str] = set()
        #: Pod repair's evictions by result (webhook.controller.metrics).
        self.repaired: dict[str, int] = {}
        #: The same for deleting the MultusNodeStates of nodes that are gone, after a deletion failed: one
        #: try per wait, not one per state (thousands after a scale-down, while the apiserver is down).
        self._states_not_before = 0.0

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
                    self._lapse()
                    continue
                self._resume(self.elector.term, time.monotonic())
                if not self.looked:
                    self.reconcile()
                else:
                    self.reconcile(changed.union(self._due(time.monotonic())))
                self._acted_at = time.monotonic()
        finally:
            stop.set()
            elector.join(self.config.retry_period + 5)  # the elector releases the lease on its way out
            self.events.close(SHORT_TIMEOUT[1])

    def _lapse(self) -> None:
        """Not acting (not the leader, or the store not synced yet). When it acts again, it looks at every
        node again: it looked at none meanwhile (the changes heard are dropped), and in a new term another
        leader may have changed labels. What it knows besides (heartbeats, repairs, back-offs, waits
        after refusals) is kept until it is known whether another replica held the lease meanwhile
        (_resume)."""
        if self._lapsed_at is None and self._acted_at is not None:
            # From when it stopped leading, not from its last pass: leadership windows shorter than the
            # time between two passes (renewals that take most of the renew deadline) counted as no more
            # than a pass each, and a dead agent's heartbeat never went stale.
            self._lapsed_at = max(self._acted_at, min(self.elector.leads_until(), time.monotonic()))
        self._forget_looks()

    def _resume(self, term: tuple[str, int] | None, now: float) -> None:
        """Acting at ``now`` in leader term ``term``. A new term (another replica may have held the lease
        meanwhile, changed labels and repaired) starts everything over: every heartbeat is observed anew
        (a value merely found proves nothing until it is seen to change, decide.Heartbeat.fresh, so every
        agent has a whole grace period), every repair and back-off starts again.

        In the same term after a lapse (renewals failed for a while, and no other replica held the
        lease, so none acted), what it knew still holds and is kept: each node's repair on its boot (its
        pods are not listed again, a pod reported gets no second Event, one given up stays given up),
        each node's back-off after a refused patch, and the waits after a refusal for good (agent pod
        labels, state deletions, the eviction refusal logged once). Started over at every lapse, renewals
        failing now and then made the repair list every node's pods and send its Events again, and a
        patch refused for good tried again at once. Each heartbeat observed still says when its value
        was first seen, but the lapse does not count as silence: the trouble that kept the lease from
        being renewed may have kept the agents from writing too. It counted as a whole new grace period,
        so that renewals failing more often than a heartbeat goes stale kept a dead agent's node ready
        for good. Nor does it count as patience with pod statuses the kubelet has not rewritten since
        the boot (NodeRepair.unwritten_since), for the same reason."""
        if term != self._term:
            self._term = term
            self._forget_looks()
            self._start_over()
        elif self._lapsed_at is not None:
            gap = now - self._lapsed_at
            self.heartbeats = {name: decide.Heartbeat(h.value, h.since + gap, h.fresh)
                               for name, h in self.heartbeats.items()}
            for job in self.repairs.values():
                if job.unwritten_since is not None:
                    job.unwritten_since += gap
        self._lapsed_at = None

    def _forget_looks(self) -> None:
        """What the nodes' last looks saw, and when they are due again: the next pass looks at every node."""
        self.looked.clear()
        self._deadlines.clear()

    def _start_over(self) -> None:
        """Everything known from acting in a leader term but the looks (_forget_looks)."""
        self.heartbeats.clear()
        self.repairs.clear()
        self.backoffs.clear()
        self._forbidden_logged = False
        self._agents_not_before = 0.0
        self._states_not_before = 0.0

    def _until_due(self) -> float:
        """Seconds to the next deadline, at most a retry period (leadership and the first sync are
        checked that often)."""
        if not self._deadlines:
            return self.config.retry_period
        left = self._deadlines[0][0] - time.monotonic()
        return min(max(0.0, left), self.config.retry_period)

    def _due(self, now: float) -> list[str]:
        due = []
        while self._deadlines and self._deadlines[0][0] <= now:
            due.append(heapq.heappop(self._deadlines)[1])
        return due

    def reconcile(self, names: Iterable[str] | None = None) -> None:
        """Look at the nodes ``names`` (all of them when None: at the start of a leader term) that need
        it (decide.needs_look). Between changes, time alone matters when a heartbeat goes stale or
        work left waits: each look leaves that moment as a deadline, so that no pass over every node
        is needed to find them (2.8 ms at 5,000 nodes every couple of seconds, in a process that
        serves admission requests)."""
        everyone = names is None
        if names is None:
            names = self.view.node_names()
        looks: list[Look] = []
        for name in names:
            if not self.elector.is_leader():
                return
            node = self.view.node_object(name)
            if node is None:
                self._forget(name)
                self._delete_state(name)
                continue
            # Each node's own moment, at which its objects are read: acting on the looks of a pass can
            # take long, and a heartbeat read late must not count as seen at the pass's start.
            now = time.monotonic()
            state = self.view.node_state(name)
            agents = self.view.agent_pods(name)
            heartbeat = self.heartbeats[name] = decide.observe(self.heartbeats.get(name), state, now)
            if not decide.needs_look(self.looked.get(name), node, state, agents, now):
                continue
            try:
                look = self.plan(node, state, agents, heartbeat, now)
            except Exception as exc:  # a bug in deciding one node must not hold up the others
                self._settle(name, (node, state, agents), heartbeat, now, self._failed(name, None, exc, now))
                continue
            if look.sends or (self.config.repair and look.verdict.ready):
                looks.append(look)
            else:
                # Nothing to send, so no order to keep: carried out and dropped at once. Held with the
                # others, the looks of a first pass over 5,000 settled nodes took ~5 MiB that the heap
                # kept after the pass (measured with serve --kubeconfig in the bench's cluster).
                self._settle(name, (node, state, agents), heartbeat, now, self.act(look))
        # A node losing its ready label first, before any is given one: new pods must stop going to a
        # node that rebooted or lost its agent at once, whatever else the pass has to send.
        looks.sort(key=lambda look: not look.unreadies)
        for look in looks:
            if not self.elector.is_leader():
                return
            wait = self.act(look)
            self._settle(look.name, (look.node, look.state, look.agents), look.heartbeat, look.now, wait)
        if everyone:
            # What is kept across terms holds nodes deleted while another replica led (the changes heard
            # meanwhile were dropped): the Warnings said, and the verdicts the nodes gauge counts.
            known = {*self.looked, *self.heartbeats, *self.repairs, *self.race_warned, *self.verdicts,
                     *self.unreported_warned, *self.view.reported_node_names()}
            for gone in [n for n in known if self.view.node_object(n) is None]:
                if not self.elector.is_leader():
                    return
                self._forget(gone)
                self._delete_state(gone)

    def _settle(self, name: str, seen: tuple[Mapping[str, Any], Mapping[str, Any] | None,
                                             tuple[Mapping[str, Any], ...]],
                heartbeat: decide.Heartbeat, now: float, wait: float | None) -> None:
        """Remember what a node's look saw and when it is due again."""
        moments = [t for t in (decide.stale_at(heartbeat, self.config.agent_interval, now),
                               None if wait is None else now + wait) if t is not None]
        again = min(moments, default=None)
        self.looked[name] = (*seen, again)
        if again is not None:
            heapq.heappush(self._deadlines, (again, name))

    def _forget(self, name: str) -> None:
        """A node that is gone: nothing about it is kept."""
        self.looked.pop(name, None)
        self.heartbeats.pop(name, None)
        self.repairs.pop(name, None)
        self.backoffs.pop(name, None)
        self.race_warned.pop(name, None)
        self.verdicts.pop(name, None)
        self.unreported_warned.discard(name)

    def _delete_state(self, name: str) -> None:
        """Delete the MultusNodeState of node ``name``, which the synced store holds no Node for. The
        agents create them and nothing else would remove them: with nodes coming and going (an
        autoscaler) they would pile up in etcd and in every replica's cache. The store may lack a Node
        the apiserver has (one created while the Node watch is behind or out of contact), so the
        apiserver is asked first; the deletion names the state's uid, so that one made since (the node
        came back, its agent wrote again) is not deleted for the one seen gone. Both calls with the
        label patches' short timeout, for the same reason (an admission webhook may hold the deletion):
        this loop labels every node."""
        state = self.view.node_state(name)
        if state is None:
            return
        now = time.monotonic()
        if now < self._states_not_before:
            heapq.heappush(self._deadlines, (self._states_not_before, name))  # its turn after the wait
            return
        meta = state["metadata"]
        path = f"{STATES_API}/namespaces/{meta.get('namespace')}/multusnodestates/{meta.get('name')}"
        try:
            request(self.api, "GET", f"/api/v1/nodes/{name}", timeout=SHORT_TIMEOUT)
        except Exception as exc:
            if not is_status(exc, 404):
                log.warning("node %s is not in the cache; could not ask the apiserver whether it is gone: %s; "
                            "retrying", name, describe(exc))
                self._states_wait(name, now + RETRY)
                return
        else:
            return  # the cache is behind: the Node's event brings a look at it
        try:
            request(self.api, "DELETE", path, body={"apiVersion": "v1", "kind": "DeleteOptions",
                                                    "preconditions": {"uid": meta.get("uid")}},
                    timeout=SHORT_TIMEOUT)
        except Exception as exc:
            if is_status(exc, 404, 409):  # gone already, or another state since: its own event tells
                return
            if is_status(exc, 403):
                log.error("the apiserver refused to delete MultusNodeState %s/%s of node %s, which is gone (%s): "
                          "the webhook's Role needs the verb delete on multusnodestates in its namespace "
                          "(manifests/base/webhook/rbac.yaml); trying again in %.0fs", meta.get("namespace"),
                          meta.get("name"), name, describe(exc), FORBIDDEN_RETRY)
                self._states_wait(name, now + FORBIDDEN_RETRY)
                return
            log.warning("could not delete MultusNodeState %s/%s of node %s, which is gone: %s; retrying",
                        meta.get("namespace"), meta.get("name"), name, describe(exc))
            self._states_wait(name, now + RETRY)
            return
        log.info("deleted MultusNodeState %s/%s: node %s is gone", meta.get("namespace"), meta.get("name"), name)

    def _states_wait(self, name: str, until: float) -> None:
        """No state is deleted before ``until`` (monotonic); node ``name`` is looked at again then."""
        self._states_not_before = until
        heapq.heappush(self._deadlines, (until, name))

    def reconcile_node(self, node: Mapping[str, Any], state: Mapping[str, Any] | None,
                       agents: Iterable[Mapping[str, Any]], heartbeat: decide.Heartbeat, now: float) -> float | None:
        """Labels (of the Node and of its agent pods), Events and repair for one node at ``now``
        (monotonic); the seconds after which it must be looked at again regardless (a repair still
        waiting, a failure backing off), None when nothing is left."""
        return self.act(self.plan(node, state, agents, heartbeat, now))

    def plan(self, node: Mapping[str, Any], state: Mapping[str, Any] | None, agents: Iterable[Mapping[str, Any]],
             heartbeat: decide.Heartbeat, now: float) -> Look:
        """What a look at one node decides from the store at ``now`` (monotonic)."""
        agents = tuple(agents)
        unfed = self.view.out_of_contact(NODE_STATE)
        verdict = decide.readiness(node, state, heartbeat, now, self.config.agent_interval, states_unfed=unfed)
        desired = decide.desired_labels(node, state, verdict)
        return Look(node, state, agents, heartbeat, now, verdict, desired, writes_of(node, agents, desired))

    def act(self, look: Look) -> float | None:
        """Carries a look out (reconcile_node) unless an earlier failure of the same writes still backs off."""
        self.verdicts[look.name] = (look.verdict.ready, look.verdict.reason)
        if self._warn_of_reboot_race(look) and self._warn_unreported(look):
            return self._act(look)
        wait = self._act(look)
        again = self.config.agent_interval
        return again if wait is None else min(wait, again)

    def _act(self, look: Look) -> float | None:
        held = self.backoffs.get(look.name)
        if held is not None and covered(look.writes, held.writes) and look.now < held.not_before:
            return held.not_before - look.now
        try:
            wait = self._carry_out(look)
        except Exception as exc:  # one node's trouble (e.g. deleted meanwhile) must not hold up the others
            return self._failed(look.name, look.writes, exc, look.now)
        self.backoffs.pop(look.name, None)
        return wait

    def _warn_of_reboot_race(self, look: Look) -> bool:
        """Whether the node's RebootRaceNotGuarded Event (if it needs one) is queued; when not, the look
        comes back for it after an agent interval (its next heartbeat brings one as early). Apart from the
        labels, whose patches may fail and back off. At a start or a lease takeover every node still
        exposed gets one, thousands at once in a cluster set up so: they leave half the Event queue free,
        so that they never crowd out the Events of a change (MultusNotReady, pod repairs), and the rest
        follow in later looks, spread as the heartbeats are, instead of being dropped for good (a node
        counted as warned before its Event was queued never got one in this process). Looked at again
        every couple of seconds instead, thousands of nodes cost a pass each time while the queue
        stayed full (the apiserver refusing Events)."""
        warning = decide.reboot_race_warning(look.state)
        if warning is None or self.race_warned.get(look.name) == warning[0]:
            return True
        key, t = warning
        if not self.events.emit(look.node, kind="Node", event_type=t.type, reason=t.reason, message=t.message,
                                leave=self.events.capacity // 2, find=True):
            return False
        self.race_warned[look.name] = key
        return True

    def _warn_unreported(self, look: Look) -> bool:
        """Whether the node's Warning that no agent reports on it (if it needs one) is queued, as
        _warn_of_reboot_race. A node whose agent never reported has no ready label to take off, so no
        label change, the only other Event, says why pods that need Multus are not scheduled on it."""
        name, verdict = look.name, look.verdict
        if not (verdict.ready is False and verdict.reason == decide.NO_NODE_STATE):
            self.unreported_warned.discard(name)
            return True
        if name in self.unreported_warned:
            return True
        if READY_LABEL in (look.node["metadata"].get("labels") or {}):
            self.unreported_warned.add(name)  # the Event of the label's removal says it (decide.transitions)
            return True
        if not self.events.emit(look.node, kind="Node", event_type="Warning", reason=decide.MULTUS_NOT_READY,
                                message=f"{verdict.message}; pods that need Multus are not scheduled on this node "
                                        f"until its agent reports it ready (label {READY_LABEL})",
                                leave=self.events.capacity // 2, find=True):
            return False
        self.unreported_warned.add(name)
        return True

    def _failed(self, name: str, writes: Writes | None, exc: Exception, now: float) -> float:
        """Backs the node off after its look failed; the seconds to wait."""
        held = self.backoffs.get(name)
        failures = 1 if held is None or not covered(writes, held.writes) else held.failures + 1
        wait = backoff_delay(failures, retry_after(exc))
        self.backoffs[name] = Backoff(writes, failures, now + wait)
        log.warning("node %s: %s; trying again in %.0fs (%d failed in a row)", name, describe(exc), wait, failures)
        return wait

    def _carry_out(self, look: Look) -> float | None:
        node, state, agents, now, name = look.node, look.state, look.agents, look.now, look.name
        verdict, desired = look.verdict, look.desired
        if verdict.reason == decide.HEARTBEAT_STALE and state is not None and any(
                (o["metadata"].get("labels") or {}).get(READY_LABEL) for o in (node, *agents)):
            verdict = self._confirm_stale(state, verdict)
            desired = decide.desired_labels(node, state, verdict)
            self.verdicts[name] = (verdict.ready, verdict.reason)
        # The agent pods first: they are the readiness gate, and a node that loses readiness must stop
        # taking new pods before anything else is said about it.
        again, failed = self._label_agents(agents, desired, now)
        if verdict.reason in (decide.NODE_STATES_NOT_FED, NODE_STATE_BEHIND):
            # Nothing may change while the states are not fed, or this one is behind the apiserver's
            # (which the store may refuse as older, after an etcd restore): looked at again once they
            # may be, with nothing else to bring the look back.
            again = self.config.agent_interval if again is None else min(again, self.config.agent_interval)
        patch = decide.label_patch(node["metadata"].get("labels") or {}, desired)
        if patch:
            updated = request(self.api, "PATCH", f"/api/v1/nodes/{name}", body={"metadata": {"labels": patch}},
                              content_type=MERGE_PATCH, timeout=SHORT_TIMEOUT)
            self.view.upsert(NODE, updated)  # ahead of its watch event: the next look sees our labels
            log.info("node %s: %s (%s)", name, patch, verdict.message)
            for t in decide.transitions(patch, verdict):
                self._event(updated, "Node", t.type, t.reason, t.message)
        if failed is not None:
            raise failed  # once the node is labelled: the look backs off (act)
        boot = decide.node_boot_id(node)
        if not (self.config.repair and verdict.ready and boot):
            return again
        job = self.job(name, boot, decide.first_ready_time(node, state), decide.ready_time(node, state))
        wait = self.repair(node, job, decide.first_ready_time(node, state), decide.boot_time(node, state), now)
        return min((t for t in (again, wait) if t is not None), default=None)

    def job(self, name: str, boot: str, first: datetime | None, run: datetime | None) -> NodeRepair:
        """The repair of node ``name`` for its current run of readiness: a new one on another boot, and
        on the same boot when the Multus daemon started again (sandboxes made meanwhile went without
        it). Pods given up on the boot stay given up, and pods reported get no second Event."""
        job = self.repairs.get(name)
        if job is not None and job.boot == boot and job.run == run:
            return job
        again = job is not None and job.boot == boot
        if again:
            log.info("node %s: Multus is ready again on boot %s since %s; its pods are judged again", name, boot,
                     run.isoformat() if run else "an unknown time")
        later = run is not None and (first is None or run > first)
        new = self.repairs[name] = NodeRepair(boot, run, recheck=later)
        if job is not None and again:
            new.failures, new.reported = job.failures, job.reported
        return new

    def _confirm_stale(self, state: Mapping[str, Any], verdict: decide.Verdict) -> decide.Verdict:
        """``verdict`` (a stale heartbeat) if the apiserver holds the very MultusNodeState the store does.
        The store learns of every heartbeat through one watch, which can stall without an error for
        longer than a heartbeat takes to go stale (until TCP keepalive or WATCH_SILENCE finds it dead):
        taken at its word, every node would lose its ready label at once. When the apiserver holds a
        newer state, it goes into the store (as a Node this controller patched does), the look this
        causes judges its heartbeat, and the watch is opened again (until it is fed, no heartbeat is
        judged stale: decide.readiness); the verdict meanwhile is not known."""
        meta = state["metadata"]
        listed = request(self.api, "GET", f"{STATES_API}/namespaces/{meta['namespace']}/multusnodestates",
                         query=[("fieldSelector", f"metadata.name={meta['name']}")],  # list: RBAC has no get
                         timeout=SHORT_TIMEOUT)
        current = next((i for i in listed.get("items") or () if isinstance(i, Mapping)), None)
        if current is None or current["metadata"].get("resourceVersion") == meta.get("resourceVersion"):
            return verdict
        self.view.upsert(NODE_STATE, current)
        self.view.reopen(NODE_STATE)
        return decide.Verdict(None, NODE_STATE_BEHIND,
                              f"the cache held version {meta.get('resourceVersion')} of the MultusNodeState, the "
                              f"apiserver {current['metadata'].get('resourceVersion')}")

    def _label_agents(self, agents: Iterable[Mapping[str, Any]], desired: Mapping[str, str],
                      now: float) -> tuple[float | None, Exception | None]:
        """Our labels on a node's agent pods; the seconds after which to try again when the apiserver
        refused a label for good, and an error to raise once the node itself is labelled (which does
        not wait for its agent pods: the node-affinity gate reads the node's labels)."""
        if now < self._agents_not_before:
            return self._agents_not_before - now, None
        again: float | None = None
        failed: Exception | None = None
        for pod in agents:
            try:
                self._label_agent(pod, desired)
            except ApiException as exc:
                if exc.status != 403:
                    failed = exc
                elif "cannot patch resource" in status_message(exc):
                    # RBAC (manifests older than the pod-affinity gate): no node tries again before the
                    # permission may have been granted.
                    self._agent_forbidden(exc)
                    self._agents_not_before = now + FORBIDDEN_RETRY
                    return FORBIDDEN_RETRY, None
                else:  # an admission policy or webhook refused this pod: nothing a retry soon would change
                    log.warning("the apiserver refused to label agent pod %s/%s: %s; trying again in %.0fs",
                                pod["metadata"]["namespace"], pod["metadata"]["name"], status_message(exc),
                                FORBIDDEN_RETRY)
                    again = FORBIDDEN_RETRY
            except Exception as exc:  # e.g. a timeout: transient
                failed = exc
        return again, failed

    def _label_agent(self, pod: Mapping[str, Any], desired: Mapping[str, str]) -> None:
        meta = pod["metadata"]
        patch = decide.label_patch(meta.get("labels") or {}, desired)
        if not patch:
            return
        # The uid makes the patch fail (422, an immutable field) on another pod of the same name.
        body = {"metadata": {"labels": patch, **({"uid": meta["uid"]} if meta.get("uid") else {})}}
        try:
            request(self.api, "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    body=body, content_type=MERGE_PATCH, timeout=SHORT_TIMEOUT)
        except Exception as exc:
            if is_status(exc, 404) or (is_status(exc, 422) and _uid_refused(exc)):
                # Gone or replaced: its watch event will tell.
                log.debug("agent pod %s/%s not labelled: %s", meta["namespace"], meta["name"], exc)
                return
            raise
        # Not recorded in the store ahead of its watch event, unlike a Node: a deletion seen in between
        # would bring the pod back there. Until the event comes, a look sends the same patch again.
        log.info("agent pod %s/%s on node %s: %s", meta["namespace"], meta["name"], pod["spec"].get("nodeName"), patch)

    @staticmethod
    def _agent_forbidden(exc: ApiException) -> None:
        """Logged at each refusal, which is tried once per FORBIDDEN_RETRY (the fix is a permission)."""
        log.error("the apiserver refused to label the agent pods (%s): the readiness gate of pods that need "
                  "Multus selects those labels, so such pods are not scheduled. The webhook's Role needs the verb "
                  "patch on pods in its namespace (manifests/base/webhook/rbac.yaml); trying again every %.0fs, "
                  "node labels are kept meanwhile", status_message(exc), FORBIDDEN_RETRY)

    def repair(self, node: Mapping[str, Any], job: NodeRepair, multus_ready_since: datetime | None,
               booted: datetime | None, now: float) -> float | None:
        """Evict the damaged pods a controller will recreate; report the others. The seconds after
        which to carry on while deletions wait (for the rate limit, or after a refusal) or pods whose
        status the kubelet has not rewritten since the node ``booted`` wait (_unwritten), None when the
        node is done on this boot."""
        if job.done:
            return None
        if now < job.not_before:
            return job.not_before - now
        name = node["metadata"]["name"]
        if job.todo is None:
            pods = request(self.api, "GET", "/api/v1/pods", query=[("fieldSelector", f"spec.nodeName={name}")],
                           timeout=POD_LIST_TIMEOUT)["items"]
            job.reported &= {p["metadata"].get("uid") for p in pods}  # pods gone need no memory
            damaged, job.unwritten = judge(pods, multus_ready_since, booted, self.config.multus_namespace,
                                           self.view.nad)
            # A pod given up on this boot stays given up (its Event said so) when the pods are listed again.
            job.todo = deque(d for d in damaged if job.failures.get(d.uid, 0) < MAX_EVICTION_TRIES)
            job.listed = now
            if job.unwritten and job.unwritten_since is None:
                job.unwritten_since = now
                log.info("node %s: the kubelet has not rewritten the status of %s since the node booted; they "
                         "are judged once it has (for up to %.0fs)", name, _named(job.unwritten), REWRITE_PATIENCE)
        while job.todo:
            d = job.todo[0]
            kept = "no controller would recreate it" if d.owner is None else NOT_EVICTED.get(d.owner.split("/")[0])
            if kept is not None:
                if d.uid not in job.reported:
                    self._event(_pod(d), "Pod", "Warning", "MultusNetworksMissing",
                                f"{d.reason}; not evicted because {kept}: delete it to get its networks back")
                    job.reported.add(d.uid)
                job.todo.popleft()
                continue
            if not self.elector.is_leader():
                return RETRY
            if not self.bucket.take():
                return self.bucket.delay()
            try:
                self._evict(d)
            except ApiException as exc:
                if exc.status == 409:  # it changed since it was listed (or is a new pod): judge it again
                    job.todo, job.refused = None, 0
                    return RETRY
                if exc.status == 403 and "cannot create resource" in status_message(exc):
                    self._count_repair("forbidden")
                    self._forbidden(d, exc)
                    job.not_before = now + FORBIDDEN_RETRY
                    return FORBIDDEN_RETRY
                wait = self._not_evicted(job, d, exc, now)
                if wait is not None:
                    return wait
                continue
            job.todo.popleft()
            job.refused = 0
        if job.unwritten:
            wait = self._unwritten(name, job, now)
            if wait is not None:
                return wait
        if job.recheck:
            job.recheck, job.todo = False, None
            job.not_before = job.listed + self.config.agent_interval
            return max(0.0, job.not_before - now)
        return None  # done: this run lists no pods again (what was reported is kept for the next run's list)

    def _unwritten(self, name: str, job: NodeRepair, now: float) -> float | None:
        """When some of the node's pods carried a status from before the boot at the last list: the
        seconds until the pods are listed again, an agent interval after that list (heartbeats bring a
        look at the node that often anyway), so that those pods are judged once the kubelet has
        rewritten their status; at most one list per node and interval. None once REWRITE_PATIENCE has
        passed since such pods were first seen: they are given up for the boot, never evicted."""
        waited = now - (now if job.unwritten_since is None else job.unwritten_since)
        if waited < REWRITE_PATIENCE:
            job.todo = None
            job.not_before = job.listed + self.config.agent_interval
            return max(0.0, job.not_before - now)
        log.warning("node %s: the kubelet has not rewritten the status of %s since the node booted, %.0fs after "
                    "the repair first found it so; they are not judged on this boot (one that lacks its networks "
                    "gets them back when deleted)", name, _named(job.unwritten), waited)
        job.unwritten = []
        return None

    def _not_evicted(self, job: NodeRepair, d: Damage, exc: ApiException, now: float) -> float | None:
        """An eviction refused for this pod alone: a PodDisruptionBudget allowing no disruption now
        (429), an admission policy or a terminating namespace (403), or an error of the apiserver's
        (500 for a pod two budgets select, which lasts). No disruption happened, so the token is given
        back; the pod goes behind the node's others, and is given up after MAX_EVICTION_TRIES errors
        that are not a budget's. The seconds to wait when every pod left was refused in a row (longer
        each time), else None."""
        self.bucket.give_back()
        todo = job.todo
        assert todo is not None  # the caller is working through it
        message = status_message(exc)
        if exc.status != 429:
            tries = job.failures[d.uid] = job.failures.get(d.uid, 0) + 1
            if tries >= MAX_EVICTION_TRIES:
                self._count_repair("given_up")
                log.warning("giving up on evicting pod %s/%s on this boot: %s", d.namespace, d.name, message)
                self._event(_pod(d), "Pod", "Warning", "MultusNetworksMissing",
                            f"{d.reason}; the eviction was refused {tries} times ({message}): delete it to get "
                            "its networks back")
                todo.popleft()
                return None
        self._count_repair("refused")
        log.info("pod %s/%s of %s not evicted yet: %s", d.namespace, d.name, d.owner, message)
        todo.rotate(-1)
        job.refused += 1
        if job.refused < len(todo):
            return None
        job.refused = 0
        wait: float = min(DISRUPTION_RETRY * 2.0 ** job.waits, FORBIDDEN_RETRY)
        job.waits += 1
        job.not_before = now + wait
        return wait

    def _evict(self, d: Damage) -> None:
        """An eviction, not a plain delete: the apiserver keeps it within the pods' PodDisruptionBudgets
        (429 otherwise), and the pod gets the DisruptionTarget condition that owners' failure
        policies can tell from a crash.

        With the label patches' short timeout: the admission webhooks of the cluster's own that it
        passes through may hold it for their timeoutSeconds (up to 30s), and every other node waits
        meanwhile. A timed-out eviction raises (the node backs off, act) and may still happen: its
        token stays spent, and the pod stays first in the node's line: the next try finds it gone
        (404), or changed, by that eviction too (409, against the preconditions: the node's pods are
        listed again, and a pod being deleted is no damage)."""
        try:
            request(self.api, "POST", f"/api/v1/namespaces/{d.namespace}/pods/{d.name}/eviction",
                    body={"apiVersion": "policy/v1", "kind": "Eviction",
                          "metadata": {"name": d.name, "namespace": d.namespace},
                          "deleteOptions": {"preconditions": {"uid": d.uid, "resourceVersion": d.resource_version}}},
                    timeout=SHORT_TIMEOUT)
        except Exception as exc:
            if is_status(exc, 404):  # gone already: nothing to repair
                return
            raise
        self._forbidden_logged = False
        self._count_repair("evicted")
        log.info("evicted pod %s/%s of %s: %s", d.namespace, d.name, d.owner, d.reason)
        self._event(_pod(d), "Pod", "Warning", "MultusNetworksRepaired",
                    f"{d.reason}; evicted so that {d.owner} recreates it with its networks")

    def _forbidden(self, d: Damage, exc: ApiException) -> None:
        """Once as an error until an eviction works again: the fix is a permission, not a retry."""
        if self._forbidden_logged:
            log.debug("still not allowed to evict pod %s/%s", d.namespace, d.name)
            return
        self._forbidden_logged = True
        log.error("the repair may not evict pods: the apiserver refused to evict pod %s/%s (%s). It needs the "
                  "verb create on pods/eviction in the core API group, which the ClusterRole "
                  "multus-webhook-pod-repair of the pod-repair component grants; trying again every %.0fs",
                  d.namespace, d.name, status_message(exc), FORBIDDEN_RETRY)

    def _count_repair(self, result: str) -> None:
        self.repaired[result] = self.repaired.get(result, 0) + 1

    def _event(self, obj: Mapping[str, Any], kind: str, event_type: str, reason: str, message: str) -> None:
        self.events.emit(obj, kind=kind, event_type=event_type, reason=reason, message=message)


def writes_of(node: Mapping[str, Any], agents: Iterable[Mapping[str, Any]], desired: Mapping[str, str]) -> Writes:
    def patch(obj: Mapping[str, Any]) -> frozenset[tuple[str, str | None]]:
        return frozenset(decide.label_patch(obj["metadata"].get("labels") or {}, desired).items())

    return patch(node), tuple((a["metadata"].get("uid"), patch(a)) for a in agents)


def covered(writes: Writes | None, failed: Writes | None) -> bool:
    """Whether ``writes`` holds nothing that ``failed`` did not: the same patches, or part of them (an
    agent pod's labels landed, the node's did not). Only something new to write brings a try forward."""
    if writes is None or failed is None:
        return False
    node, agents = writes
    failed_agents = dict(failed[1])
    return node <= failed[0] and all(patch <= failed_agents.get(uid, frozenset()) for uid, patch in agents)


def _uid_refused(exc: Exception) -> bool:
    """Whether a 422 is the apiserver refusing the uid a patch carried (the pod is another one now)."""
    try:
        causes = json.loads(getattr(exc, "body", None) or "")["details"]["causes"]
        return any(isinstance(c, dict) and c.get("field") == "metadata.uid" for c in causes)
    except (TypeError, ValueError, KeyError):
        return False


def _named(pods: list[Unwritten]) -> str:
    """The pods, as a log line names them: the first NAMED_PODS, and how many more."""
    names = ", ".join(f"{p.namespace}/{p.name}" for p in pods[:NAMED_PODS])
    more = len(pods) - NAMED_PODS
    return f"pod {names}" if len(pods) == 1 else f"pods {names}" + (f" and {more} more" if more > 0 else "")


def _pod(d: Damage) -> dict[str, Any]:
    """The pod an Event is about, as far as the Event names it."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": d.namespace, "name": d.name, "uid": d.uid}}
