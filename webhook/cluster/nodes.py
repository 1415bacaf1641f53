"""The nodes as the cluster store keeps them: each Node, MultusNodeState and agent pod reduced to what
the rules and the controller read, and what the rules see of the nodes (NodeInfo, binary holders,
ready nodes), published again only for the nodes an event touched and only when what the rules see
changed.

Agents write a heartbeat into their MultusNodeState every few seconds: on 5,000 nodes that is
hundreds of events a second. Rebuilding the whole node list for each took 22 ms (5,000 nodes); a
heartbeat changes nothing a rule reads, so it now costs the reduction of one object.

Writers call the ``put``/``remove`` methods and ``publish`` under the store's lock; readers never
lock (single ``dict.get`` calls, or one reference to a tuple or dict replaced or updated one key at a
time).
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

from webhook.agent.probe import BIN_DIR_UNREADABLE, BINARIES, REBOOT_RACE
from webhook.names import DHCP_DAEMON, READY_LABEL, is_own_label
from webhook.objects import as_mapping
from webhook.rules.view import NodeInfo

Key = tuple[str, str]
#: Told the names of the nodes whose Node or MultusNodeState changed (under the store's lock: be quick).
Listener = Callable[[Collection[str]], None]

_EMPTY: Mapping[str, str] = {}


def _intern(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def _kept_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = as_mapping(obj.get("metadata"))
    return {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta}


def _conditions(conditions: Any, kind: str, keep: tuple[str, ...], status: str | None = None,
                share: Callable[[Any], Any] = lambda value: value) -> list[Mapping[str, Any]]:
    """The ``keep`` fields of the conditions of type ``kind`` (and ``status``, when given), each message
    as ``share`` returns it."""
    return [{k: share(v) if k == "message" else v for k, v in c.items() if k in keep}
            for c in conditions if isinstance(c, Mapping) and c.get("type") == kind
            and (status is None or c.get("status") == status)] if isinstance(conditions, list) else []


#: Taints the node lifecycle controller and the kubelet put on a node while it is not ready or under
#: pressure, the cloud provider until it has initialised it, and Cilium until its agent runs on the
#: node (the talos-cilium stack's, at every boot): they come and go, and the node takes pods again when
#: they go. The lifecycle controller's taint of a cordoned node too: the cordon is read from
#: spec.unschedulable (cordoned), and with the taint counted as lasting every real cordon read as one.
PASSING_TAINTS = frozenset({
    "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/network-unavailable",
    "node.cloudprovider.kubernetes.io/uninitialized", "node.cilium.io/agent-not-ready",
    "node.kubernetes.io/unschedulable",
})
_REPELLING = ("NoSchedule", "NoExecute")


def _repelling_taints(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The taints that keep pods without a toleration off the node for good (see PASSING_TAINTS)."""
    return [{"key": taint["key"], "effect": taint["effect"]} for taint in spec.get("taints") or ()
            if isinstance(taint, Mapping) and taint.get("effect") in _REPELLING and isinstance(taint.get("key"), str)
            and taint["key"] not in PASSING_TAINTS]


def slim_node(node: Mapping[str, Any], share: Callable[[Any], Any] = lambda value: value) -> dict[str, Any]:
    """What is read of a Node: name, uid, version, our own labels (the mutation reads the ready label, the
    controller patches only its own), boot id and the Ready condition's status (controller), and whether
    pods can land there (cordoned; taints other than PASSING_TAINTS that repel pods; rules). A real
    node's status (images, volumes, addresses) is tens of KiB. ``share`` may return one copy of equal
    values: most nodes carry the same labels of ours and the same Ready status."""
    meta = _kept_metadata(node)
    labels = as_mapping(as_mapping(node.get("metadata")).get("labels"))
    meta["labels"] = share({_intern(k): _intern(v) for k, v in labels.items()
                            if isinstance(k, str) and isinstance(v, str) and is_own_label(k)})
    status = as_mapping(node.get("status"))
    boot = as_mapping(status.get("nodeInfo")).get("bootID")
    spec = as_mapping(node.get("spec"))
    kept_spec: dict[str, Any] = {"unschedulable": True} if spec.get("unschedulable") is True else {}
    if taints := _repelling_taints(spec):
        kept_spec["taints"] = taints
    return {
        "apiVersion": node.get("apiVersion", "v1"), "kind": node.get("kind", "Node"), "metadata": meta,
        "spec": share(kept_spec),
        "status": {"nodeInfo": {"bootID": boot} if isinstance(boot, str) and boot else {},
                   "conditions": share(_conditions(status.get("conditions"), "Ready", ("type", "status")))},
    }


def slim_agent_pod(pod: Mapping[str, Any], share: Callable[[Any], Any] = lambda value: value) -> dict[str, Any]:
    """What the controller reads of an agent's pod: name, namespace, uid, version, our own labels (it
    patches only those) and its node."""
    meta = _kept_metadata(pod)
    labels = as_mapping(as_mapping(pod.get("metadata")).get("labels"))
    meta["labels"] = share({_intern(k): _intern(v) for k, v in labels.items()
                            if isinstance(k, str) and isinstance(v, str) and is_own_label(k)})
    node = as_mapping(pod.get("spec")).get("nodeName")
    return {"metadata": meta, "spec": {"nodeName": node} if isinstance(node, str) and node else {}}


def frozen(value: Any) -> Any:
    """A hashable stand-in for a JSON value (or a frozenset), equal only for equal values of one type."""
    if isinstance(value, Mapping):
        return ("object", frozenset((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(frozen(v) for v in value))
    return value


#: What is kept of a MultusNodeState's status besides its Ready condition.
_STATE_STATUS = ("nodeName", "cniBinaries", "unverifiedBinaries", "dhcpDaemon", "multusReady", "bootID", "bootTime",
                 "heartbeatTime", "firstReadyBootID", "firstReadyTime", "readyTime")
#: What the controller reads of that condition: why the agent finds Multus not ready. Its
#: lastTransitionTime moves on every agent restart and is not kept (firstReadyTime says what repair needs).
_STATE_READY = ("type", "reason", "message")


def _bin_dir_unread(conditions: Any) -> bool:
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == BINARIES and c.get("reason") == BIN_DIR_UNREADABLE
        for c in conditions)


#: The agent's condition on the reboot race, kept while False with its transition time: the controller
#: sends a Warning Event once per transition to False (webhook.controller.decide.reboot_race_warning).
#: The message is shared: nodes laid out alike report the same one.
_STATE_REBOOT_RACE = ("type", "status", "reason", "message", "lastTransitionTime")


def slim_state(state: Mapping[str, Any], share: Callable[[Any], Any] = lambda value: value) -> dict[str, Any]:
    """What is read of a MultusNodeState; its inventory as a frozenset, of which ``share`` may return
    one copy of equal ones (nodes mostly report the same binaries)."""
    status = as_mapping(state.get("status"))
    kept = {f: status[f] for f in _STATE_STATUS if f in status}
    if _bin_dir_unread(status.get("conditions")):
        # An agent that could not read the bin directory wrote an empty inventory (those before it
        # published none): not known, rather than a node without a single plugin.
        kept.pop("cniBinaries", None)
        kept.pop("unverifiedBinaries", None)
    for f in ("cniBinaries", "unverifiedBinaries"):
        binaries = kept.get(f)
        if isinstance(binaries, list):
            kept[f] = share(frozenset(_intern(b) for b in binaries if isinstance(b, str)))
    conditions = status.get("conditions")
    kept["conditions"] = [*_conditions(conditions, "Ready", _STATE_READY),
                          *_conditions(conditions, REBOOT_RACE, _STATE_REBOOT_RACE, "False", share)]
    return {"metadata": _kept_metadata(state), "status": kept}


def _version(obj: Mapping[str, Any]) -> int | None:
    value = as_mapping(obj.get("metadata")).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def newer_or_same(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether ``new`` may replace ``old``. Resource versions are opaque by contract but etcd revisions
    in practice; comparing them keeps a late watch event from undoing a write the controller already
    recorded."""
    if old is None:
        return True
    a, b = _version(new), _version(old)
    return a is None or b is None or a >= b


class NodeTable:
    def __init__(self, share: Callable[[Any], Any]) -> None:
        """``share`` returns one copy of equal values (see ClusterStore._share)."""
        self._share = share
        self._objects: dict[str, Mapping[str, Any]] = {}
        self._states: dict[Key, Mapping[str, Any]] = {}
        self._state_node: dict[Key, str] = {}  # the node each state reports on
        self._node_state: dict[str, Mapping[str, Any]] = {}
        self._agents: dict[Key, Mapping[str, Any]] = {}
        self._agent_node: dict[Key, str] = {}  # the node each agent pod is bound to
        # Node -> its agent pods (one; two during a rollout), each tuple replaced whole.
        self._node_agents: dict[str, tuple[Mapping[str, Any], ...]] = {}
        self._infos: dict[str, NodeInfo] = {}
        self._names: list[str] = []  # of self._infos, sorted
        self._dirty: set[str] = set()
        self._all_dirty = False
        self._listeners: list[Listener] = []
        # Published.
        self.nodes: tuple[NodeInfo, ...] = ()
        self.untainted = 0  # how many of self.nodes are not NodeInfo.tainted
        self.cordoned = 0  # how many of those are NodeInfo.cordoned
        self.reporting: tuple[str, ...] = ()
        self.closed_reporting: tuple[str, ...] = ()  # of self.reporting, those not NodeInfo.schedulable
        self.ready: tuple[str, ...] = ()
        self.holders: dict[str, frozenset[str]] = {}

    # --- reads -----------------------------------------------------------------------------------

    def node(self, name: str) -> Mapping[str, Any] | None:
        """The kept Node object (see slim_node)."""
        return self._objects.get(name)

    def state(self, node: str) -> Mapping[str, Any] | None:
        """The kept MultusNodeState reporting on ``node`` (see slim_state)."""
        return self._node_state.get(node)

    def agent_pods(self, node: str) -> tuple[Mapping[str, Any], ...]:
        """The kept agent pods bound to ``node`` (see slim_agent_pod)."""
        return self._node_agents.get(node, ())

    def agent_keys(self) -> list[Key]:
        return list(self._agents)

    def node_names(self) -> list[str]:
        """Names of the Node objects; the caller holds the store's lock."""
        return list(self._objects)

    def state_keys(self) -> list[Key]:
        return list(self._states)

    def reported_names(self) -> list[str]:
        """Names of the nodes MultusNodeStates report on, whether or not a Node of that name exists."""
        return list(self._node_state)

    def states(self) -> list[Mapping[str, Any]]:
        return list(self._states.values())

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- writes (under the store's lock) ---------------------------------------------------------

    def put_node(self, name: str, obj: Mapping[str, Any]) -> None:
        kept = slim_node(obj, self._share)
        kept["metadata"]["name"] = name
        if not newer_or_same(kept, self._objects.get(name)):
            return
        if not self._objects:
            self._all_dirty = True  # Node objects now decide which nodes exist, no longer the states
        self._objects[name] = kept
        self._dirty.add(name)

    def remove_node(self, name: str) -> None:
        if self._objects.pop(name, None) is not None:
            self._dirty.add(name)
            self._all_dirty |= not self._objects

    def put_state(self, key: Key, obj: Mapping[str, Any]) -> None:
        # An older version (a watch event applied again, or one behind what the controller read) would
        # take a heartbeat or a boot id back in time.
        if not newer_or_same(obj, self._states.get(key)):
            return
        kept = slim_state(obj, self._share)
        node = kept["status"].get("nodeName")
        node = node if isinstance(node, str) and node else key[1]
        before = self._state_node.get(key)
        if before is not None and before != node:
            self._unlink(key, before)
        self._states[key] = kept
        self._state_node[key] = node
        self._node_state[node] = kept
        self._dirty.add(node)

    def remove_state(self, key: Key) -> None:
        self._states.pop(key, None)
        node = self._state_node.pop(key, None)
        if node is not None:
            self._unlink(key, node)

    def put_agent(self, key: Key, obj: Mapping[str, Any]) -> None:
        """An agent pod; one not bound to a node yet is kept but stands for no node."""
        kept = slim_agent_pod(obj, self._share)
        if not newer_or_same(kept, self._agents.get(key)):
            return
        self._unbind_agent(key)
        self._agents[key] = kept
        node = kept["spec"].get("nodeName")
        if node is not None:
            self._agent_node[key] = node
            self._node_agents[node] = (*self._node_agents.get(node, ()), kept)
            self._dirty.add(node)

    def remove_agent(self, key: Key) -> None:
        self._unbind_agent(key)
        self._agents.pop(key, None)

    def _unbind_agent(self, key: Key) -> None:
        node = self._agent_node.pop(key, None)
        if node is None:
            return
        old = self._agents[key]
        left = tuple(p for p in self._node_agents.get(node, ()) if p is not old)
        if left:
            self._node_agents[node] = left
        else:
            self._node_agents.pop(node, None)
        self._dirty.add(node)

    def _unlink(self, key: Key, node: str) -> None:
        """``key`` no longer reports on ``node``: another state naming that node stands for it, if any."""
        self._node_state.pop(node, None)
        for other, named in self._state_node.items():
            if named == node and other != key:
                self._node_state[node] = self._states[other]
                break
        self._dirty.add(node)

    def publish(self) -> None:
        dirty = self._dirty
        try:
            if self._all_dirty or len(dirty) > 64 + len(self._infos) // 16:
                self._rebuild()
            else:
                self._update(dirty)
        except BaseException:
            # The changes stay pending. A failed _update may have recorded some nodes it did not publish,
            # which it would then pass over as unchanged: the next publish rebuilds everything.
            self._all_dirty = True
            raise
        self._dirty, self._all_dirty = set(), False
        if dirty:
            for listener in self._listeners:
                listener(dirty)

    def _info(self, name: str) -> NodeInfo | None:
        """What the rules see of a node; None when it is not one. A state whose Node is gone is stale (the
        node left); without any Node objects (a --cluster-state file of states only) each state stands
        for its node."""
        node = self._objects.get(name)
        if node is None and (self._objects or name not in self._node_state):
            return None
        status = as_mapping(self._node_state.get(name, _EMPTY).get("status"))
        binaries, unverified = status.get("cniBinaries"), status.get("unverifiedBinaries")
        if isinstance(binaries, frozenset) and isinstance(unverified, frozenset) and unverified:
            # The rules count links the agent cannot follow as present, as the node's labels do: a NAD
            # a working node needs is not refused for want of a mount in the agent's pod.
            binaries = self._share(binaries | unverified)
        # As the controller labels it (decide.desired_labels): unreported is not a daemon that is down.
        if isinstance(binaries, frozenset) and status.get("dhcpDaemon") is not False:
            binaries = self._share(binaries | {DHCP_DAEMON})
        labels = as_mapping(node.get("metadata")).get("labels") if node is not None else None
        # Without a Node object nothing keeps pods off it.
        spec = node["spec"] if node is not None else _EMPTY
        return NodeInfo(name, cni_binaries=binaries if isinstance(binaries, frozenset) else None,
                        labels=labels if isinstance(labels, Mapping) else _EMPTY,
                        cordoned=spec.get("unschedulable") is True, tainted=bool(spec.get("taints")))

    def _rebuild(self) -> None:
        infos = {name: info for name in sorted(self._objects or self._node_state)
                 if (info := self._info(name)) is not None}
        holders: dict[str, set[str]] = {}
        for info in infos.values():
            for binary in info.cni_binaries or ():
                holders.setdefault(binary, set()).add(info.name)
        self._infos, self._names = infos, list(infos)
        # Each published whole, so a reader never sees a half-built inventory.
        self.holders = _one_copy_each({binary: frozenset(names) for binary, names in holders.items()})
        self.nodes = tuple(infos.values())
        self.untainted = sum(1 for n in self.nodes if not n.tainted)
        self.cordoned = sum(1 for n in self.nodes if _cordoned_only(n))
        self.reporting = tuple(n.name for n in self.nodes if n.cni_binaries is not None)
        self.closed_reporting = tuple(n.name for n in self.nodes if _closed_reporting(n))
        self.ready = tuple(n.name for n in self.nodes if _ready(n))

    def _update(self, dirty: set[str]) -> None:
        listed = reporting = ready = held = closed = False
        untainted, cordoned = self.untainted, self.cordoned
        for name in dirty:
            new, old = self._info(name), self._infos.get(name)
            if new == old:
                continue
            listed = True
            untainted += (new is not None and not new.tainted) - (old is not None and not old.tainted)
            cordoned += (new is not None and _cordoned_only(new)) - (old is not None and _cordoned_only(old))
            closed |= (old is not None and _closed_reporting(old)) != (new is not None and _closed_reporting(new))
            ready |= (old is not None and _ready(old)) != (new is not None and _ready(new))
            if new is None:
                del self._infos[name]
                del self._names[bisect.bisect_left(self._names, name)]
            else:
                if old is None:
                    bisect.insort(self._names, name)
                self._infos[name] = new
            had = old.cni_binaries if old is not None else None
            has = new.cni_binaries if new is not None else None
            if had == has:
                continue
            reporting |= (had is None) != (has is None)
            held = True
            # One binary's holder set replaced at a time: a reader sees each set whole.
            for binary in (had or frozenset()) - (has or frozenset()):
                left = self.holders.get(binary, frozenset()) - {name}
                if left:
                    self.holders[binary] = left
                else:
                    self.holders.pop(binary, None)
            for binary in (has or frozenset()) - (had or frozenset()):
                self.holders[binary] = self.holders.get(binary, frozenset()) | {name}
        if held:
            self.holders.update(_one_copy_each(self.holders))
        if listed:
            self.nodes = tuple(self._infos[n] for n in self._names)
            self.untainted, self.cordoned = untainted, cordoned
        if reporting:
            self.reporting = tuple(n.name for n in self.nodes if n.cni_binaries is not None)
        if closed:
            self.closed_reporting = tuple(n.name for n in self.nodes if _closed_reporting(n))
        if ready:
            self.ready = tuple(n.name for n in self.nodes if _ready(n))


def _cordoned_only(node: NodeInfo) -> bool:
    return node.cordoned and not node.tainted


def _closed_reporting(node: NodeInfo) -> bool:
    return node.cni_binaries is not None and not node.schedulable


def _ready(node: NodeInfo) -> bool:
    return node.labels.get(READY_LABEL) == "true"


def _one_copy_each(holders: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Binaries held by the same nodes share one set: most binaries are on every node (a plugins
    package), and a set of 5,000 names is 256 KiB."""
    seen: dict[frozenset[str], frozenset[str]] = {}
    return {binary: seen.setdefault(names, names) for binary, names in holders.items()}
