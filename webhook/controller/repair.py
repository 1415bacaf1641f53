"""Which pods on a node that is ready again after a reboot lost their secondary networks (pure), and
the rate limit on deleting them.

Only a pod whose sandbox exists can lack networks: a pod waiting for its sandbox (Pending, or a
replacement the repair itself caused) has no network-status yet because nothing was wired yet.

When a pod's sandbox was wired is not in the API; the closest sign is when the kubelet last made the
pod ready to start containers. The time to compare it with is when Multus FIRST became ready on this
boot: the MultusNodeState's firstReadyTime, which the agent keeps while the boot lasts (not the Ready
condition's lastTransitionTime, which every agent or Multus daemon restart moves). Both are written
from the node's clock, so clock skew between the node and the controller does not enter. A sandbox
made before that moment was wired without Multus, whatever its network-status says (that annotation
is then left over from the previous boot). Without a firstReadyTime for this boot (a status written
by an older agent) sandbox age is not judged at all.

The kubelet writes condition times in whole seconds, so the two are compared by the second: a
sandbox made in the second Multus became ready counts as made after it (it is not deleted: a pod
wrongly kept lacks networks, a pod wrongly deleted is an outage of a healthy pod).

After a reboot the kubelet rewrites each pod's status when it first syncs the pod (it records
PodReadyToStartContainers False before it asks for a new sandbox), but with many pods, or a kubelet
slow to send statuses, that can come after Multus is ready. Until then the status is the previous
boot's: its sandbox condition is True for a sandbox that is gone. So is the network-status, which
Multus writes when it wires a sandbox: it describes that old sandbox (or a new one whose status has
not been sent yet); either way it says nothing about the pod on this boot, neither that networks
are missing nor that they are there. A pod whose sandbox condition dates from before the node's
boot (the MultusNodeState's bootTime, the host's btime) is therefore neither damaged nor fine: it
is judged again once its status has been rewritten (see Controller.repair). By the second again:
btime is rounded down, as the kubelet's times are, so no time written on this boot falls in an
earlier second. status.startTime, which the kubelet keeps across reboots, cannot tell: a pod judged
by it is judged as before, and so is every pod when no boot time is known (an older agent)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webhook.cni.config import parse_nad_config, version_number
from webhook.kube import parse_time
from webhook.multus.selection import DEFAULT_MULTUS_NAMESPACE, NETWORKS_ANNOTATION, network_references

#: The NAD namespace/name -> the NAD as stored (None when there is none): how the repair learns whether
#: Multus can report a network at all (see reported_by_multus).
NadLookup = Callable[[str, str], Mapping[str, Any] | None]
#: The first result version whose result lists interfaces (CNI spec 0.3.0).
INTERFACES_SINCE = (0, 3, 0)

NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
#: Controllers that recreate a deleted pod; anything else (or nothing) owning a pod leaves it alone.
RECREATING_OWNERS = frozenset({"ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job"})
#: Owners whose pods are reported, not evicted, and why: the Job controller counts an evicted running
#: pod as failed (unless the Job's podFailurePolicy ignores DisruptionTarget), so a repair could fail
#: a Job with a small backoffLimit.
NOT_EVICTED = {"Job": "evicting it would count as a failure against the Job's backoffLimit"}
#: The pod conditions that turn True once the pod's sandbox exists, best first: the kubelet sets
#: PodReadyToStartContainers when the sandbox and its network are made (Kubernetes 1.29+);
#: ContainersReady comes later, so it errs towards leaving a pod alone.
SANDBOX_CONDITIONS = ("PodReadyToStartContainers", "ContainersReady")


@dataclass(frozen=True, slots=True)
class Damage:
    """A pod that needs a new sandbox to get its networks back."""

    namespace: str
    name: str
    uid: str
    #: The version judged: deleting only that one leaves a pod alone that changed since (new sandbox).
    resource_version: str
    #: "ReplicaSet/web-7d9" when a recreating controller owns the pod, else None (never deleted).
    owner: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Unwritten:
    """A pod whose status the kubelet has not rewritten since the node booted: judged again later."""

    namespace: str
    name: str


def sandbox_time(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod's current sandbox was made, approximately; None when it has none (yet), or its
    status does not tell. A condition that is not True says nothing of a sandbox's time: a Pending
    pod's PodReadyToStartContainers is False from the moment the kubelet takes the pod up, before any
    sandbox exists. Where the kubelet does not set that condition, a Running pod whose containers are
    not ready has a sandbox of unknown age: status.startTime stands for it, which the kubelet keeps
    across reboots, so it errs towards repairing."""
    return _sandbox(pod)[0]


def _sandbox(pod: Mapping[str, Any]) -> tuple[datetime | None, bool]:
    """sandbox_time, and whether a condition told it (False: status.startTime stood for it)."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    for kind in SANDBOX_CONDITIONS:
        condition = conditions.get(kind)
        if condition is None:
            continue
        if condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime")), True
        if kind == SANDBOX_CONDITIONS[0]:  # the kubelet reports on the sandbox: there is none now
            return None, True
    return (parse_time(status.get("startTime")) if status.get("phase") == "Running" else None), False


def _earlier(moment: datetime, than: datetime) -> bool:
    """Whether ``moment`` is in an earlier second than ``than`` (the kubelet's times are whole seconds)."""
    return moment.replace(microsecond=0) < than.replace(microsecond=0)


def recreating_owner(pod: Mapping[str, Any]) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True and ref.get("kind") in RECREATING_OWNERS:
            return f"{ref['kind']}/{ref.get('name')}"
    return None


def _reported(annotations: Mapping[str, Any]) -> list[tuple[str, str | None, bool]]:
    """(ns/name, interface, whether it is the pod's default network) of every attachment Multus
    reported, each as often as it is there; unreadable means none, and so does an entry whose name or
    interface is not a string (anyone who may write the annotation may write that)."""
    try:
        entries = json.loads(annotations.get(NETWORK_STATUS) or "[]")
    except (TypeError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [(e["name"], e.get("interface"), e.get("default") is True) for e in entries
            if isinstance(e, Mapping) and isinstance(e.get("name"), str)
            and (e.get("interface") is None or isinstance(e.get("interface"), str))]


def reported_by_multus(nad: Mapping[str, Any] | None) -> bool:
    """Whether Multus writes a network-status entry for an attachment of ``nad`` (True when there is no
    such NAD: the ADD failed and the entry is missing for good). Multus builds the entries from the
    result's sandbox interfaces (network-attachment-definition-client CreateNetworkStatuses, after
    converting the result to 1.0.0), and a result of cniVersion 0.1.0 or 0.2.0 has no interfaces: such
    a network never has an entry, however well it is wired. A version that cannot be read counts the
    same way: better a pod left alone than a healthy pod evicted on every reboot."""
    if nad is None:
        return True
    spec = nad.get("spec")
    netconf = parse_nad_config(spec.get("config") if isinstance(spec, Mapping) else None, "spec.config").netconf
    if netconf is None or not netconf.plugins:
        return False
    # A list's result is its last plugin's, at the list's version; a single config's, at its own.
    found = netconf.plugin_cni_version(netconf.plugins[-1], "spec.config")
    number = version_number(found[0]) if found is not None else None
    return number is not None and number >= INTERFACES_SINCE


def _any_nad(namespace: str, name: str) -> Mapping[str, Any] | None:
    """A lookup that knows no NAD: every attachment counts as one Multus reports."""
    return None


def missing_networks(pod: Mapping[str, Any], multus_namespace: str = DEFAULT_MULTUS_NAMESPACE,
                     nads: NadLookup = _any_nad) -> list[str]:
    """The requested attachments the pod's network-status does not list, leaving out those Multus
    never lists (reported_by_multus): ns/name@interface for an element that names its interface (and
    the default network, eth0), ns/name for one that does not. An unqualified default-network is in
    ``multus_namespace``, as Multus reads (and reports) it.

    An element without an interface is matched by its network's name, as many times as the pod asks
    for it, not by the net<N> its position gives: Multus counts its defaultNetworks before the pod's
    elements, and the repair judges pods wired before its config last changed. Looked for under a
    position-derived name, every healthy pod would look damaged once the default networks changed."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    left = _reported(annotations)  # an entry answers for one element: taken out once it has
    missing = []
    unnamed: dict[str, int] = {}
    for ref in network_references(annotations, meta.get("namespace") or "default", multus_namespace=multus_namespace):
        name = f"{ref.namespace}/{ref.name}"
        if not reported_by_multus(nads(ref.namespace, ref.name)):
            continue
        if ref.annotation == NETWORKS_ANNOTATION and not ref.selection.interface:
            unnamed[name] = unnamed.get(name, 0) + 1
            continue
        # An entry without an interface (older Multus) is matched by name alone.
        entry = next((e for e in left if e[:2] == (name, ref.interface)), None) or \
            next((e for e in left if e[:2] == (name, None)), None)
        if entry is None:
            missing.append(f"{name}@{ref.interface}")
        else:
            left.remove(entry)
    for name, wanted in unnamed.items():
        # Not the pod's primary network's entry (a clusterNetwork that is a NAD of that name).
        found = sum(1 for e in left if e[0] == name and not e[2])
        missing += [name] * max(0, wanted - found)
    return missing


def damage(pod: Mapping[str, Any], multus_ready_since: datetime | None,
           multus_namespace: str = DEFAULT_MULTUS_NAMESPACE,
           booted: datetime | None = None, nads: NadLookup = _any_nad) -> Damage | Unwritten | None:
    """Why ``pod`` lacks its networks on this boot, or None when it has them, asked for none or has no
    sandbox yet; Unwritten when its status was not rewritten since the node booted, so that it does not
    tell yet. ``multus_ready_since``: when Multus first became ready on this boot, None when unknown;
    ``multus_namespace``: the policy's multusNamespace; ``booted``: when the node booted, None when
    unknown; ``nads``: the NADs as stored."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    if not network_references(meta.get("annotations") or {}, meta.get("namespace") or "default"):
        return None
    made, told = _sandbox(pod)
    if made is None:  # no sandbox (yet): nothing was wired, so nothing can be missing
        return None
    if told and booted is not None and _earlier(made, booted):
        # Before the networks are looked at: the network-status may describe the sandbox that is gone too.
        return Unwritten(meta.get("namespace", ""), meta.get("name", ""))
    missing = missing_networks(pod, multus_namespace, nads)
    if missing:
        reason = f"its network-status lacks {', '.join(missing)}"
    elif multus_ready_since is not None and _earlier(made, multus_ready_since):
        reason = (f"its sandbox dates from {made.isoformat()}, before Multus became ready on this boot "
                  f"({multus_ready_since.isoformat()}): its network-status is left over from an earlier sandbox")
    else:
        return None
    return Damage(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""), meta.get("resourceVersion", ""),
                  recreating_owner(pod), reason)


def judge(pods: Iterable[Mapping[str, Any]], multus_ready_since: datetime | None, booted: datetime | None,
          multus_namespace: str = DEFAULT_MULTUS_NAMESPACE,
          nads: NadLookup = _any_nad) -> tuple[list[Damage], list[Unwritten]]:
    """The damaged pods among ``pods``, and those whose status does not tell yet (see ``damage``)."""
    damaged: list[Damage] = []
    unwritten: list[Unwritten] = []
    for pod in pods:
        verdict = damage(pod, multus_ready_since, multus_namespace, booted, nads)
        if isinstance(verdict, Damage):
            damaged.append(verdict)
        elif verdict is not None:
            unwritten.append(verdict)
    return damaged, unwritten


class TokenBucket:
    """At most ``burst`` at once and ``rate`` per second on average."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(burst, 1), clock
        self.tokens = float(self.burst)
        self.at = clock()

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def give_back(self) -> None:
        """A token taken for nothing (the action was refused)."""
        self.tokens = min(float(self.burst), self.tokens + 1)

    def delay(self) -> float:
        """Seconds until ``take`` can succeed."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
