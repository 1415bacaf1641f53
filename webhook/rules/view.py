"""ClusterView: the one interface through which rules ask about the cluster.

Defined here, in the pure core, so that rules never import the cache or the kubernetes client.
``webhook.cluster`` holds the implementations (static files, live watches); both keep their answers
in the same store (webhook.cluster.store), so a rule sees the same thing from the CLI and the server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from webhook.cni.range_index import RangeIndex
from webhook.multus.profiles import ProfileMerge


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node, merged from its Node object and the MultusNodeState its agent writes."""

    name: str
    #: File names in the node's CNI bin directory, and names.DHCP_DAEMON when the dhcp daemon answers on
    #: its default socket there (as the gate requires it like a binary); None when no agent reported them.
    cni_binaries: frozenset[str] | None = None
    #: The node's labels of ours (webhook.names.is_own_label): the only ones anything reads.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Cordoned (spec.unschedulable): no new pod lands there until it is uncordoned, which a drain or an
    #: upgrade (talosctl upgrade, kubectl drain) does once it is over.
    cordoned: bool = False
    #: Has a NoSchedule or NoExecute taint other than those of a node that is not ready for now
    #: (webhook.cluster.nodes.PASSING_TAINTS), such as a kubeadm control plane's: pods stay off it for
    #: good. A pod may tolerate a taint; rules that deny count such nodes out all the same.
    tainted: bool = False

    @property
    def schedulable(self) -> bool:
        """Whether a new pod can land there now."""
        return not self.cordoned and not self.tainted


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class ClusterView(Protocol):
    @property
    def known(self) -> bool:
        """False when nothing is known of the cluster: cluster-aware rules then stay silent."""
        ...

    def nodes(self) -> Sequence[NodeInfo]:
        """The cluster's nodes, sorted by name."""
        ...

    @property
    def untainted_node_count(self) -> int:
        """How many of nodes() pods can land on now or once uncordoned (NodeInfo.tainted False); kept up
        to date as nodes change, since admission asks on every NAD review and there may be thousands of
        nodes."""
        ...

    @property
    def cni_inventory_known(self) -> bool:
        """True when at least one node reports its CNI binaries; otherwise binary checks are skipped
        and the CLI says that the inventory is unknown."""
        ...

    @property
    def reporting_nodes(self) -> Sequence[str]:
        """Names of the nodes that report their CNI binaries, sorted."""
        ...

    @property
    def cordoned_node_count(self) -> int:
        """How many of those untainted_node_count counts are cordoned (kept up to date likewise)."""
        ...

    @property
    def closed_reporting_nodes(self) -> Sequence[str]:
        """Names (sorted) of the reporting nodes that no new pod can land on now (NodeInfo.schedulable
        False): usually none, or the few being drained."""
        ...

    def binary_holders(self, binary: str) -> frozenset[str]:
        """Names of the reporting nodes that have this CNI binary, or the dhcp daemon for
        names.DHCP_DAEMON (precomputed: one lookup, however many nodes)."""
        ...

    @property
    def ready_nodes(self) -> Sequence[str]:
        """Names of the nodes the controller labelled Multus-ready (webhook.names.READY_LABEL), sorted."""
        ...

    def nad(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        ...

    def nad_binaries(self, namespace: str, name: str) -> frozenset[str] | None:
        """The CNI binaries a NAD's config runs (none when it cannot be read), and names.DHCP_DAEMON when
        it needs the dhcp daemon on its default socket; None when there is no such NAD. Precomputed when
        the NAD is stored."""
        ...

    def network_profile(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        ...

    def profile_merge(self, namespace: str, name: str, existing: str | None,
                      first_index: int = 1, default_network: str | None = None) -> ProfileMerge | None:
        """merge_profile of NetworkProfile namespace/name into a pod annotation value ``existing``
        (``first_index`` as for interface_names; ``default_network`` the pod's default-network
        annotation value, whose default-route gateways count with the merged ones); None when there is
        no such profile. Remembered: /mutate and the pod-network-profile rule ask the same question of
        every pod, and replicas of one template ask it again."""
        ...

    @property
    def ranges(self) -> RangeIndex:
        """The allocation ranges of every NAD, for overlap queries."""
        ...

    def pods_using(self, namespace: str, name: str, *, first: int,
                   multus_namespace: str) -> tuple[int, Sequence[ObjectRef]]:
        """How many pods reference this NAD (through their networks or default-network annotation),
        and the first ``first`` of them in namespace/name order. Messages name a few; tens of
        thousands of pods may use one NAD. ``multus_namespace`` is the policy's (``multusNamespace``):
        where a default-network reference without a namespace points."""
        ...

    def profiles_using(self, namespace: str, name: str) -> Sequence[ObjectRef]:
        """The NetworkProfiles (sorted) whose spec.networks name this NAD."""
        ...

    def cross_namespace_affinity_quotas(self, namespace: str) -> Sequence[str]:
        """The names (sorted) of the ResourceQuotas in ``namespace`` whose scopes include
        CrossNamespacePodAffinity: they count, and may forbid, pods with a pod affinity term that names
        a namespace, as the readiness gate's does."""
        ...


_NO_RANGES = RangeIndex()


class UnknownCluster:
    """The view when no cluster state was given."""

    @property
    def known(self) -> bool:
        return False

    def nodes(self) -> Sequence[NodeInfo]:
        return ()

    @property
    def untainted_node_count(self) -> int:
        return 0

    @property
    def cni_inventory_known(self) -> bool:
        return False

    @property
    def reporting_nodes(self) -> Sequence[str]:
        return ()

    @property
    def cordoned_node_count(self) -> int:
        return 0

    @property
    def closed_reporting_nodes(self) -> Sequence[str]:
        return ()

    def binary_holders(self, binary: str) -> frozenset[str]:
        return frozenset()

    @property
    def ready_nodes(self) -> Sequence[str]:
        return ()

    def nad(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None

    def nad_binaries(self, namespace: str, name: str) -> frozenset[str] | None:
        return None

    def network_profile(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return None

    def profile_merge(self, namespace: str, name: str, existing: str | None,
                      first_index: int = 1, default_network: str | None = None) -> ProfileMerge | None:
        return None

    @property
    def ranges(self) -> RangeIndex:
        return _NO_RANGES

    def pods_using(self, namespace: str, name: str, *, first: int,
                   multus_namespace: str) -> tuple[int, Sequence[ObjectRef]]:
        return 0, ()

    def profiles_using(self, namespace: str, name: str) -> Sequence[ObjectRef]:
        return ()

    def cross_namespace_affinity_quotas(self, namespace: str) -> Sequence[str]:
        return ()


UNKNOWN_CLUSTER = UnknownCluster()
