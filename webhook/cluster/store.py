"""The cluster state both ClusterView implementations keep: objects by kind and the indexes the rules
ask for (nodes with their CNI inventory, NADs, NetworkProfiles, the address-range index, the pods
that reference each NAD, the ResourceQuotas that count cross-namespace pod affinity).

Writers (the watch threads of the live view, or the loader of the static one) serialize on a lock.
Readers (the admission path) never lock: every read is a single ``dict.get`` or reads one reference
to an immutable value (a tuple, a frozenset, a persistent RangeIndex) that writers replace whole. One
exception: the users of a NAD that many pods reference are a set changed in place (copying it on every
pod event made a sync quadratic); its one reader copies it with a single C-level call, which holds the
GIL throughout.
"""

from __future__ import annotations

import heapq
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from webhook.cluster.nodes import Listener, NodeTable, frozen
from webhook.cni.config import parse_nad_config
from webhook.cni.ipam import nad_allocation_ranges, uses_default_dhcp_daemon
from webhook.cni.range_index import IndexedRange, RangeIndex
from webhook.multus.profiles import ProfileMerge, merge_profile
from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    NetworkReference,
    Where,
    network_references,
    parse_elements,
)
from webhook.names import DHCP_DAEMON
from webhook.objects import as_mapping
from webhook.rules.view import NodeInfo, ObjectRef

log = logging.getLogger(__name__)

NODE = "Node"
NAD = "NetworkAttachmentDefinition"
NETWORK_PROFILE = "NetworkProfile"
NODE_STATE = "MultusNodeState"
POD = "Pod"
#: The agents' pods, watched apart from the other pods (whole, in the agents' namespace): the
#: controller labels them (webhook.names.AGENT_POD_LABELS). Not a Kubernetes kind.
AGENT_POD = "AgentPod"
RESOURCE_QUOTA = "ResourceQuota"
KINDS = (NODE, NODE_STATE, NAD, NETWORK_PROFILE, POD, AGENT_POD, RESOURCE_QUOTA)

Key = tuple[str, str]


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_mapping(obj.get("metadata"))


#: kubectl apply keeps a copy of the whole object here: for a NAD, its config a second time.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def slim_nad(key: Key, nad: Mapping[str, Any]) -> Mapping[str, Any]:
    """The part of a NAD the rules read (name, namespace, annotations, spec.config): managedFields,
    uids, kubectl's last-applied copy and the like would otherwise make up most of what 10,000 NADs
    hold."""
    meta: dict[str, Any] = {"name": key[1], "namespace": key[0]}
    annotations = metadata(nad).get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        annotations = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    if annotations is not None:
        meta["annotations"] = annotations
    spec = nad.get("spec")
    if not isinstance(spec, Mapping):
        return {"metadata": meta, "spec": spec} if "spec" in nad else {"metadata": meta}
    return {"metadata": meta, "spec": {"config": spec["config"]} if "config" in spec else {}}


#: The quota scope of pods with a pod affinity term that names namespaces or has a namespaceSelector,
#: as the readiness gate's term does (k8s.io/kubernetes pkg/quota/v1/evaluator/core/pods.go).
CROSS_NAMESPACE_AFFINITY = "CrossNamespacePodAffinity"


def scopes_cross_namespace_affinity(quota: Mapping[str, Any]) -> bool:
    """Whether a ResourceQuota counts the pods that have cross-namespace pod affinity: in its ``scopes``
    or its ``scopeSelector`` (whose only valid operator for this scope is Exists). Its hard limits are
    not read: any limit counts the gate against what the namespace's owner set for their own pods, and
    a limit can be changed at any time without the quota leaving the namespace."""
    spec = as_mapping(quota.get("spec"))
    scopes = spec.get("scopes")
    expressions = as_mapping(spec.get("scopeSelector")).get("matchExpressions")
    return (isinstance(scopes, list) and CROSS_NAMESPACE_AFFINITY in scopes) or (isinstance(expressions, list) and any(
        as_mapping(e).get("scopeName") == CROSS_NAMESPACE_AFFINITY for e in expressions))


#: The phases of a pod whose containers have all ended for good: the kubelet has torn its sandbox down.
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


#: Profile merges remembered (all profiles together), and the longest annotation value remembered:
#: a bound on the memory, whatever values pods send.
MERGES_KEPT = 4096
MERGE_KEY_CHARS = 2048
#: Distinct values shared at most (see ClusterStore._share): live ones are few, whatever the cluster's size.
SHARED_KEPT = 4096
#: The users of a NAD are kept as a tuple up to this many, as a set beyond.
FEW_USERS = 64
#: The namespace under which a default-network reference that names none is kept: it points into the
#: policy's multusNamespace, which the ConfigMap policy may change at any time, so it is resolved when
#: asked (pods_using), not when stored (the store keeps no annotation to read again). No namespace is
#: called "".
UNQUALIFIED = ""


def _profile_references(profile: Key, obj: Mapping[str, Any]) -> tuple[Key, ...]:
    """The NADs a NetworkProfile's spec.networks name, as the pods in its namespace get them (none when
    they cannot be read: such a profile fails every pod anyway)."""
    try:
        parsed = parse_elements(as_mapping(obj.get("spec")).get("networks"), profile[0],
                                Where("spec.networks", "spec.networks"))
    except Exception:  # a bug in reading one profile must not stop the list or watch it came in
        log.exception("NetworkProfile %s/%s: could not read spec.networks; kept as naming no NAD", *profile)
        return ()
    return tuple(sorted({(s.namespace, s.name) for s in parsed.selections}))


class ClusterStore:
    """See the module docstring. ``known`` is False until the store stands for a cluster."""

    def __init__(self, *, default_namespace: str = "default") -> None:
        self.default_namespace = default_namespace
        self._known = False
        self._lock = threading.Lock()
        # Written under the lock, read by readers only through dict.get.
        self._nads: dict[Key, Mapping[str, Any]] = {}
        self._profiles: dict[Key, Mapping[str, Any]] = {}
        self._nad_binaries: dict[Key, frozenset[str]] = {}
        # Namespace -> the names (sorted) of its ResourceQuotas scoped to CROSS_NAMESPACE_AFFINITY, the
        # one thing the admission path asks of quotas; other quotas are not kept.
        self._affinity_quotas: dict[str, tuple[str, ...]] = {}
        # The pods using each NAD: a tuple (a third of a set's size) replaced whole while they are few,
        # a set changed in place once they are many (see _add_user).
        self._users: dict[Key, tuple[Key, ...] | set[Key]] = {}
        # Written by readers too (each write a single dict operation); the profile object kept with
        # each result, so that a result is used only for the very object it was computed from. A
        # write to any profile starts a new dict.
        self._merges: dict[tuple[str, str, str | None, int, str | None], tuple[Mapping[str, Any], ProfileMerge]] = {}
        # NAD -> the NetworkProfiles (sorted) whose spec.networks name it; few, each tuple replaced whole.
        self._profile_users: dict[Key, tuple[Key, ...]] = {}
        # Writer-only bookkeeping.
        self._profile_refs: dict[Key, tuple[Key, ...]] = {}
        self._nad_entries: dict[Key, tuple[IndexedRange, ...]] = {}
        self._pod_refs: dict[Key, tuple[Key, ...]] = {}
        # One tuple per referenced NAD, shared by every pod that references it (50,000 pods name few
        # NADs); dropped with the NAD's last user so that references to gone names do not pile up.
        self._interned: dict[Key, Key] = {}
        self._shared: dict[Any, Any] = {}  # see _share
        self._node_table = NodeTable(self._share)
        # Published whole.
        self._ranges = RangeIndex()
        # By kind, the objects kept without what could not be read from them, with the error: counted
        # for /metrics, and each logged when it first fails rather than on every event.
        self._unreadable: dict[str, dict[Key, str]] = {NAD: {}, POD: {}}

    # --- ClusterView ---------------------------------------------------------------------------

    @property
    def known(self) -> bool:
        return self._known

    def nodes(self) -> Sequence[NodeInfo]:
        return self._node_table.nodes

    @property
    def untainted_node_count(self) -> int:
        return self._node_table.untainted

    @property
    def cni_inventory_known(self) -> bool:
        return bool(self._node_table.reporting)

    @property
    def reporting_nodes(self) -> Sequence[str]:
        return self._node_table.reporting

    @property
    def cordoned_node_count(self) -> int:
        return self._node_table.cordoned

    @property
    def closed_reporting_nodes(self) -> Sequence[str]:
        return self._node_table.closed_reporting

    def binary_holders(self, binary: str) -> frozenset[str]:
        return self._node_table.holders.get(binary, frozenset())

    @property
    def ready_nodes(self) -> Sequence[str]:
        return self._node_table.ready

    def nad(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._nads.get((namespace, name))

    def nad_binaries(self, namespace: str, name: str) -> frozenset[str] | None:
        return self._nad_binaries.get((namespace, name))

    def network_profile(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._profiles.get((namespace, name))

    def profile_merge(self, namespace: str, name: str, existing: str | None,
                      first_index: int = 1, default_network: str | None = None) -> ProfileMerge | None:
        profile = self._profiles.get((namespace, name))
        if profile is None:
            return None
        # Long values are not kept as keys (bounded memory, whatever pods send).
        if len(existing or "") + len(default_network or "") > MERGE_KEY_CHARS:
            return merge_profile(existing, profile, namespace, name, first_index, default_network)
        merges = self._merges
        key = (namespace, name, existing, first_index, default_network)
        cached = merges.get(key)
        if cached is not None and cached[0] is profile:
            return cached[1]
        result = merge_profile(existing, profile, namespace, name, first_index, default_network)
        if len(merges) >= MERGES_KEPT:
            merges.clear()
        merges[key] = (profile, result)
        return result

    @property
    def ranges(self) -> RangeIndex:
        return self._ranges

    def cross_namespace_affinity_quotas(self, namespace: str) -> Sequence[str]:
        return self._affinity_quotas.get(namespace, ())

    def pods_using(self, namespace: str, name: str, *, first: int,
                   multus_namespace: str) -> tuple[int, Sequence[ObjectRef]]:
        # tuple() copies a set in C without releasing the GIL: a writer cannot change it meanwhile.
        # Sorting them all and building a reference to each took 80 ms for 50,000 pods.
        users = tuple(self._users.get((namespace, name), ()))
        if namespace == multus_namespace:
            unqualified = tuple(self._users.get((UNQUALIFIED, name), ()))
            if unqualified:
                # A pod may name this NAD both ways (networks: kube-system/x, default-network: x).
                users = tuple(set(users).union(unqualified))
        return len(users), [ObjectRef(*pod) for pod in heapq.nsmallest(first, users)]

    def profiles_using(self, namespace: str, name: str) -> Sequence[ObjectRef]:
        return [ObjectRef(*profile) for profile in self._profile_users.get((namespace, name), ())]

    def unreadable(self, kind: str) -> int:
        """How many objects of ``kind`` (NADs, Pods) are kept without what could not be read from them."""
        return len(self._unreadable.get(kind, ()))

    # --- for the controller -----------------------------------------------------------------------

    def node_object(self, name: str) -> Mapping[str, Any] | None:
        """The Node as kept (webhook.cluster.nodes.slim_node), replaced whole on every change."""
        return self._node_table.node(name)

    def node_state(self, name: str) -> Mapping[str, Any] | None:
        """The MultusNodeState reporting on node ``name`` as kept (slim_state), replaced whole on every change."""
        return self._node_table.state(name)

    def agent_pods(self, node: str) -> tuple[Mapping[str, Any], ...]:
        """The agent pods bound to ``node`` as kept (slim_agent_pod); the tuple is replaced whole."""
        return self._node_table.agent_pods(node)

    def node_names(self) -> list[str]:
        with self._lock:
            return self._node_table.node_names()

    def reported_node_names(self) -> list[str]:
        """Names of the nodes the MultusNodeStates report on (node_state finds each), Node or not."""
        with self._lock:
            return self._node_table.reported_names()

    def out_of_contact(self, kind: str | None = None) -> float:
        """Seconds for which what is stored of ``kind`` (of any kind, when None) has not been kept up to
        date; a store that nothing feeds from a cluster is as up to date as it will be."""
        return 0.0

    def reopen(self, kind: str) -> None:
        """Told that what is stored of ``kind`` was found behind the cluster (see LiveClusterView)."""

    def on_nodes_changed(self, listener: Listener) -> None:
        """Call ``listener`` with the names of the nodes whose Node, MultusNodeState or agent pod changed."""
        with self._lock:
            self._node_table.listen(listener)

    # --- writes ----------------------------------------------------------------------------------

    def key(self, kind: str, obj: Mapping[str, Any]) -> Key:
        meta = metadata(obj)
        name = str(meta.get("name") or "")
        if kind == NODE:
            return ("", name)
        return (str(meta.get("namespace") or self.default_namespace), name)

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> None:
        with self._lock:
            self._upsert(kind, self.key(kind, obj), obj)
            self._publish(kind)

    def delete(self, kind: str, obj: Mapping[str, Any]) -> None:
        with self._lock:
            self._delete(kind, self.key(kind, obj))
            self._publish(kind)

    def upsert_all(self, objects: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """upsert of each (kind, object), each kind published once at the end: publishing nodes rebuilds
        the whole node list (minutes for thousands of nodes put one at a time). Each object is reduced
        to what is kept as it comes, so that a stream of objects is never held whole."""
        kinds: set[str] = set()
        with self._lock:
            for kind, obj in objects:
                self._upsert(kind, self.key(kind, obj), obj)
                kinds.add(kind)
            for kind in kinds:
                self._publish(kind)

    def replace(self, kind: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """Make the objects of ``kind`` exactly these (replace_pages of one page)."""
        self.replace_pages(kind, (objects,))

    def replace_pages(self, kind: str, pages: Iterable[Iterable[Mapping[str, Any]]]) -> None:
        """Make the objects of ``kind`` exactly those of ``pages`` (a relist, page after page). Each page
        is stored under the lock, which is let go between pages: reading the next one from the apiserver
        (seconds for 50,000 pods, up to a read timeout when it stalls) holds up no other writer (the
        watches of other kinds, the controller). Until the last page is in, readers find every object
        the kind had before and those of the pages stored so far, as when the lock was held throughout
        (nothing of the kind goes missing halfway); what the list no longer holds goes at the end."""
        seen: set[Key] = set()
        for page in pages:
            with self._lock:
                for obj in page:
                    key = self.key(kind, obj)
                    seen.add(key)
                    self._upsert(kind, key, obj)
        with self._lock:
            for key in set(self._keys(kind)) - seen:
                self._delete(kind, key)
            self._publish(kind)

    def _keys(self, kind: str) -> Iterable[Key]:
        if kind == NODE:
            return [("", name) for name in self._node_table.node_names()]
        if kind == NODE_STATE:
            return self._node_table.state_keys()
        if kind == AGENT_POD:
            return self._node_table.agent_keys()
        if kind == RESOURCE_QUOTA:
            return [(namespace, name) for namespace, names in self._affinity_quotas.items() for name in names]
        if kind == POD:
            # An unreadable pod has no references, only its entry there, which a relist without it drops.
            return [*self._pod_refs, *self._unreadable[POD]]
        tables: dict[str, Mapping[Key, object]] = {NAD: self._nads, NETWORK_PROFILE: self._profiles}
        return list(tables.get(kind, {}))

    def _share(self, value: Any) -> Any:
        """One copy of each distinct value, never written to: few distinct ones among thousands of NADs
        and nodes (binary sets, label sets of ours, Ready conditions). What nothing holds any more is
        not told from the rest, so the table starts again once it holds SHARED_KEPT values (NADs of
        20,000 plugin types created and deleted had left 20,000, 7 MB): holders keep the copies they
        have, and the values stored next share new ones."""
        key = frozen(value)
        found = self._shared.get(key)
        if found is None:
            if len(self._shared) >= SHARED_KEPT:
                self._shared.clear()
            found = self._shared[key] = value
        return found

    def _upsert(self, kind: str, key: Key, obj: Mapping[str, Any]) -> None:
        if kind == NODE:
            self._node_table.put_node(key[1], obj)
        elif kind == NODE_STATE:
            self._node_table.put_state(key, obj)
        elif kind == AGENT_POD:
            self._node_table.put_agent(key, obj)
        elif kind == NAD:
            previous = self._nads.get(key)
            obj = slim_nad(key, obj)
            if previous is None or as_mapping(previous.get("spec")) != as_mapping(obj.get("spec")):
                new, binaries = self._nad_derived(key, obj)
                # All computed before anything is stored: a failure (a bug) leaves the NAD as it was,
                # rather than an index that keeps ranges which _nad_entries no longer names (and so
                # which no later event or relist removes).
                ranges = self._ranges.without(self._nad_entries.get(key, ())).with_ranges(new)
                binaries = self._share(binaries)
                # Before the NAD itself: a reader that finds the NAD finds its binaries.
                self._nad_binaries[key] = binaries
                if new:
                    self._nad_entries[key] = new
                else:
                    self._nad_entries.pop(key, None)
                self._ranges = ranges
            self._nads[key] = obj
        elif kind == NETWORK_PROFILE:
            self._set_profile_refs(key, _profile_references(key, obj))
            self._profiles[key] = obj
            self._merges = {}
        elif kind == POD:
            key = (sys.intern(key[0]), key[1])
            self._set_pod_refs(key, self._references(key, obj))
        elif kind == RESOURCE_QUOTA:
            self._set_affinity_quota(key, scopes_cross_namespace_affinity(obj))

    def _delete(self, kind: str, key: Key) -> None:
        if kind == NODE:
            self._node_table.remove_node(key[1])
        elif kind == NODE_STATE:
            self._node_table.remove_state(key)
        elif kind == AGENT_POD:
            self._node_table.remove_agent(key)
        elif kind == NAD:
            # First, as in _upsert: should it fail, the NAD is still stored whole, to be deleted again.
            ranges = self._ranges.without(self._nad_entries.get(key, ()))
            self._unreadable[NAD].pop(key, None)
            self._nads.pop(key, None)
            self._nad_binaries.pop(key, None)
            self._nad_entries.pop(key, None)
            self._ranges = ranges
        elif kind == NETWORK_PROFILE:
            self._set_profile_refs(key, ())
            self._profiles.pop(key, None)
            self._merges = {}
        elif kind == POD:
            self._unreadable[POD].pop(key, None)
            self._set_pod_refs(key, ())
        elif kind == RESOURCE_QUOTA:
            self._set_affinity_quota(key, False)

    def _set_affinity_quota(self, key: Key, scoped: bool) -> None:
        namespace, name = key
        names = self._affinity_quotas.get(namespace, ())
        if (name in names) == scoped:
            return
        kept = tuple(sorted((*names, name))) if scoped else tuple(n for n in names if n != name)
        if kept:
            self._affinity_quotas[sys.intern(namespace)] = kept
        else:
            self._affinity_quotas.pop(namespace, None)

    def _intern(self, key: Key) -> Key:
        found = self._interned.get(key)
        if found is None:
            found = self._interned[key] = (sys.intern(key[0]), sys.intern(key[1]))
        return found

    def _nad_derived(self, key: Key, nad: Mapping[str, Any]) -> tuple[tuple[IndexedRange, ...], frozenset[str]]:
        """What the admission path needs of one NAD's config, parsed once when it is stored: the index
        entries (its valid allocation ranges) and the CNI binaries it runs. What cannot be read is left
        out: the NAD is kept all the same, since it exists."""
        try:
            netconf = parse_nad_config(as_mapping(nad.get("spec")).get("config"), "spec.config", remember=False).netconf
        except Exception as exc:
            self._could_not_read(NAD, key, "spec.config", "with no address ranges and no CNI binaries", exc)
            return (), frozenset()
        binaries = netconf.binaries if netconf is not None else frozenset()
        if uses_default_dhcp_daemon(netconf):
            binaries |= {DHCP_DAEMON}  # the gate requires the daemon's label as it does the binaries'
        try:
            ranges = tuple(IndexedRange.of(key, r) for r in nad_allocation_ranges(netconf, key[1]))
        except Exception as exc:
            self._could_not_read(NAD, key, "the address ranges in spec.config", "with no address ranges", exc)
            return (), binaries
        self._unreadable[NAD].pop(key, None)
        return ranges, binaries

    def _references(self, pod: Key, obj: Mapping[str, Any]) -> tuple[Key, ...]:
        if as_mapping(obj.get("status")).get("phase") in FINISHED_PHASES:
            # Its sandbox is gone, torn down through the NADs when it finished: it uses none any more.
            # The live view lists no such pod (webhook.cluster.live.RUNNING_PODS); a state file may hold some.
            self._unreadable[POD].pop(pod, None)
            return ()
        annotations = as_mapping(metadata(obj).get("annotations"))
        if NETWORKS_ANNOTATION not in annotations and DEFAULT_NETWORK_ANNOTATION not in annotations:
            refs: tuple[NetworkReference, ...] = ()
        else:
            try:
                # An unqualified default-network reference is kept under UNQUALIFIED (see there).
                refs = network_references(annotations, pod[0], multus_namespace=UNQUALIFIED)
            except Exception as exc:
                self._could_not_read(POD, pod, f"the annotations {NETWORKS_ANNOTATION} and "
                                               f"{DEFAULT_NETWORK_ANNOTATION}", "as using no NAD", exc)
                return ()
        self._unreadable[POD].pop(pod, None)
        return tuple(sorted({self._intern((r.namespace, r.name)) for r in refs}))

    def _could_not_read(self, kind: str, key: Key, what: str, kept: str, exc: Exception) -> None:
        # A bug in reading one object must not stop the list or watch it came in: the objects after it
        # in the list would be lost and the first sync (readiness) never finish.
        problem = f"{type(exc).__name__}: {exc}"
        unreadable = self._unreadable[kind]
        if unreadable.get(key) != problem:
            log.error("%s %s/%s: could not read %s (%s); kept %s, please report it", kind, *key, what,
                      problem[:500], kept, exc_info=exc)
        unreadable[key] = problem

    @staticmethod
    def _set_refs(refs_of: dict[Key, tuple[Key, ...]], user: Key, refs: tuple[Key, ...],
                  add: Callable[[Key, Key], None], remove: Callable[[Key, Key], None]) -> None:
        """Make ``refs`` the NADs ``user`` references in ``refs_of``, telling ``add`` and ``remove`` of
        each (nad, user) it gains or loses."""
        old = refs_of.get(user, ())
        if refs == old:
            return
        if refs:
            refs_of[user] = refs
        else:
            refs_of.pop(user, None)
        for nad in set(old).difference(refs):
            remove(nad, user)
        for nad in set(refs).difference(old):
            add(nad, user)

    def _set_pod_refs(self, pod: Key, refs: tuple[Key, ...]) -> None:
        self._set_refs(self._pod_refs, pod, refs, self._add_user, self._remove_user)

    def _set_profile_refs(self, profile: Key, refs: tuple[Key, ...]) -> None:
        self._set_refs(self._profile_refs, profile, refs, self._add_profile_user, self._remove_profile_user)

    def _add_profile_user(self, nad: Key, profile: Key) -> None:
        self._profile_users[nad] = tuple(sorted((*self._profile_users.get(nad, ()), profile)))

    def _remove_profile_user(self, nad: Key, profile: Key) -> None:
        left = tuple(p for p in self._profile_users.get(nad, ()) if p != profile)
        if left:
            self._profile_users[nad] = left
        else:
            self._profile_users.pop(nad, None)

    def _add_user(self, nad: Key, pod: Key) -> None:
        # A tuple copied on every change costs O(users) per pod event: with 50,000 pods on one NAD, a
        # sync took 6.1 s and each pod deletion 9.7 ms (make bench, pod_events). Past FEW_USERS, a set.
        users = self._users.get(nad, ())
        if isinstance(users, set):
            users.add(pod)
        elif len(users) < FEW_USERS:
            self._users[nad] = (*users, pod)
        else:
            self._users[nad] = {*users, pod}

    def _remove_user(self, nad: Key, pod: Key) -> None:
        users = self._users.get(nad, ())
        if isinstance(users, set):
            users.discard(pod)
            # A set never shrinks its table: back to a tuple well under the switch, so that a NAD once
            # used by thousands does not keep their table for ever (and no flapping at the boundary).
            if len(users) <= FEW_USERS // 2:
                self._users[nad] = tuple(users)
            return
        remaining = tuple(user for user in users if user != pod)
        if remaining:
            self._users[nad] = remaining
        else:
            self._users.pop(nad, None)
            self._interned.pop(nad, None)

    def _publish(self, kind: str) -> None:
        if kind in (NODE, NODE_STATE, AGENT_POD):
            self._node_table.publish()

    def objects(self, kind: str) -> list[Mapping[str, Any]]:
        """The stored objects of a kind (Pods are kept only as references). Not for the admission
        path: it copies under the writers' lock."""
        with self._lock:
            if kind == NODE:
                return [n for name in self._node_table.node_names() if (n := self._node_table.node(name))]
            if kind == NODE_STATE:
                return self._node_table.states()
            tables: dict[str, Mapping[Any, Mapping[str, Any]]] = {NAD: self._nads, NETWORK_PROFILE: self._profiles}
            return list(tables.get(kind, {}).values())
