"""NAD rules that need the cluster: CNI binaries on the nodes, host-local on several nodes, address
ranges that collide with another NAD, and NADs that pods still use. Each stays silent when the view
knows nothing of the cluster."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.cni.gojson import GoJSONError, loads
from webhook.cni.ipam import AddressRange, nad_allocation_ranges
from webhook.cni.range_index import IndexedRange
from webhook.multus.selection import default_network_is_nad
from webhook.names import ALLOW_HOST_LOCAL_ANNOTATION, binary_label
from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import SPEC_CONFIG, annotation, rule
from webhook.rules.subject import Subject
from webhook.rules.view import ClusterView

NAD = {"NetworkAttachmentDefinition"}

#: How many nodes, pods or NADs a message names before it says "and N more".
SHOWN = 5


def _some(names: Sequence[str], what: str = "", *, total: int | None = None) -> str:
    """The first SHOWN of ``names``, then how many more of ``total`` (default: all of ``names``)."""
    shown = ", ".join(names[:SHOWN])
    rest = (len(names) if total is None else total) - SHOWN
    return f"{shown} and {rest} more{what}" if rest > 0 else shown


# --- CNI binaries ---------------------------------------------------------------------------------


@rule("nad-cni-binaries", kinds=NAD, severity=Severity.DENY, title="the CNI binaries exist on the nodes",
      judges=[SPEC_CONFIG])
def cni_binaries(subject: Subject) -> Iterator[Violation]:
    """Every binary a NAD runs (each plugin type and IPAM type) must be in the CNI bin directory of
    the node a pod lands on, or the pod stays in ContainerCreating; with the readiness gate on (policy
    readinessAffinity), which requires the binary's node label, the pod stays Pending instead, kept off
    the nodes without it, and the messages say which. Checked against the binaries the
    nodes report in their MultusNodeState, among those new pods can land on (not cordoned, not tainted
    for good): missing on every one of them is a denial (a warning when cordoned or tainted nodes have
    it: a cordon is most often maintenance), missing on some is a warning naming them. When
    every reporting node is cordoned or tainted (a one-node cluster being upgraded), all of them count.
    When no node reports (or none can read its bin directory), nothing is known and nothing is said.
    A binary whose file name cannot be a label name gets no node label, so the pods' readiness gate
    cannot require it: warned, whichever nodes have it (a pod may land on a ready node without it)."""
    netconf = subject.nad_config.netconf
    reporting = subject.view.reporting_nodes
    if netconf is None or not reporting:
        return
    closed = frozenset(subject.view.closed_reporting_nodes)
    if len(closed) == len(reporting):
        closed = frozenset()  # no reporting node takes pods now: judged on them all rather than on none
    open_count = len(reporting) - len(closed)
    for binary, path in netconf.binary_fields():
        label = binary_label(binary)
        if subject.policy.readiness_affinity and label is None:
            yield Violation(
                path,
                f"{path} is {binary!r}, which cannot be a label name (at most 63 letters, digits, '-', '_' or "
                "'.', beginning and ending with a letter or digit): nodes get no label for it, so the readiness "
                "gate of pods on this network cannot require it, and they may land on a node where Multus is "
                "ready but the binary is missing; rename the plugin's file",
                Severity.WARN,
            )
        # The readiness gate requires the binary's node label: the scheduler keeps pods off the nodes
        # without it, rather than the kubelet failing them there.
        gated = subject.policy.readiness_affinity and label is not None
        holders = subject.view.binary_holders(binary)
        open_holders = len(holders - closed)
        if open_holders == open_count:
            continue
        if not open_holders:
            # Only on nodes closed for now (a cordon for maintenance, most often): warned, not denied; a
            # GitOps sync during a drain would be refused for what the uncordon gives back.
            if holders:
                where = (f"only node(s) {_some(sorted(holders))} have the CNI binary {binary!r}, and no new pod "
                         f"can land there now (cordoned or tainted; checked the {len(reporting)} node(s) that "
                         "report their CNI binaries)")
            else:
                where = (f"no node has the CNI binary {binary!r} (checked the {len(reporting)} node(s) that report "
                         "their CNI binaries)")
            yield Violation(
                path,
                f"{path} is {binary}, but {where}: pods on this network would stay "
                + (f"Pending, as their readiness gate requires the node label {label}"
                   if gated else "in ContainerCreating")
                + f"; install the {binary} plugin into the nodes' CNI bin directory (/opt/cni/bin) or fix the type",
                Severity.WARN if holders else None,
            )
        else:
            missing = [name for name in reporting if name not in holders and name not in closed]
            yield Violation(
                path,
                f"{path}: the CNI binary {binary!r} is missing on node(s) {_some(missing)}: "
                + ("the readiness gate keeps pods on this network off them; install it there for them to run there"
                   if gated else "pods on this network fail there; install it on those nodes or keep these pods "
                   "off them"),
                Severity.WARN,
            )


# --- host-local on several nodes ------------------------------------------------------------------


#: Plugins whose addresses are reached only through the node (ptp: a /32 host route to the pod behind a
#: veth, the gateway address on the host side) or not at all (dummy): an address that repeats on
#: another node meets nothing there.
NODE_LOCAL_PLUGINS = frozenset({"ptp", "dummy"})


@rule("nad-host-local-multi-node", kinds=NAD, severity=Severity.DENY,
      title="host-local is not used on a multi-node cluster",
      judges=[SPEC_CONFIG, annotation(ALLOW_HOST_LOCAL_ANNOTATION)])
def host_local_multi_node(subject: Subject) -> Iterator[Violation]:
    """host-local keeps its allocations in files on each node, so one NAD used on several nodes
    hands out the same addresses on each of them (multus-cni #52, #144, #529, #1150). When pods can land
    on more than one node it is refused unless the NAD carries the annotation
    multus-webhook.io/allow-host-local: "true" (segments local to each node), which turns the
    denial into a warning. Nodes tainted NoSchedule or NoExecute for good (a kubeadm control plane) are
    not counted, though a pod may tolerate the taint; cordoned nodes and those tainted for a passing
    condition (not ready, under pressure, Cilium's agent not ready yet) are: a drain or an upgrade ends,
    and pods land there again with the same addresses. Nor is host-local behind ptp or dummy, whose
    addresses never leave the node (ptp routes each pod's address to it on its own node only: upstream's
    own ptp example uses host-local). Nor are the nodes that report their CNI binaries without every one the
    NAD runs (an SR-IOV plugin on the few bare-metal workers): a pod on this network never keeps an
    address there. With the readiness gate the scheduler keeps it off them; without it, Multus fails to
    run the missing plugin there and deletes what the pod's earlier delegates added (its ADD's
    delPlugins), so no address host-local gave stays in use. A node that reports nothing might run it:
    counted (most often its agent is still starting, and the gate lets pods there once it reports)."""
    netconf = subject.nad_config.netconf
    if netconf is None or subject.view.untainted_node_count <= 1:
        return
    host_local = [plugin for plugin in netconf.plugins if plugin.ipam_type == "host-local"
                  and plugin.ipam is not None and plugin.type not in NODE_LOCAL_PLUGINS]
    if not host_local:
        return
    nodes = _nodes_able(subject.view, frozenset(binary for binary, _ in netconf.binary_fields()))
    if nodes.able <= 1:
        return
    allowed = subject.annotations.get(ALLOW_HOST_LOCAL_ANNOTATION) == "true"
    cluster = _cluster_text(subject.view, nodes)
    for plugin in host_local:
        path = plugin.ipam_type_path
        if allowed:
            yield Violation(
                path,
                f"{path} is host-local on {cluster}, allowed by {ALLOW_HOST_LOCAL_ANNOTATION}: each "
                "node allocates on its own, so this segment must not span nodes",
                Severity.WARN,
            )
        else:
            yield Violation(
                path,
                f"{path} is host-local on {cluster}: host-local keeps its allocations on "
                "each node, so pods on different nodes get the same addresses. If the segment is local to "
                f'each node, annotate the NAD with {ALLOW_HOST_LOCAL_ANNOTATION}: "true"; else give each pod '
                'its address (static IPAM), or use whereabouts ("ipam": {"type": "whereabouts", "range": '
                "...}), cluster-wide IPAM that must first be installed on the nodes (its own DaemonSet: "
                "multus-webhook does not ship it)",
            )


@dataclass(frozen=True, slots=True)
class _Able:
    """The untainted nodes that can run a NAD (see _nodes_able)."""

    able: int
    cordoned: int  # of those able
    #: How many untainted nodes report their CNI binaries without one the NAD runs, and those binaries.
    lacking: int = 0
    missing: tuple[str, ...] = ()


def _nodes_able(view: ClusterView, binaries: frozenset[str]) -> _Able:
    """The untainted nodes that hold every one of ``binaries`` or do not report theirs. A walk over the
    nodes only when some reporting node lacks one: the counts are kept up to date otherwise."""
    reporting = len(view.reporting_nodes)
    if all(len(view.binary_holders(binary)) == reporting for binary in binaries):
        return _Able(view.untainted_node_count, view.cordoned_node_count)
    able = cordoned = lacking = 0
    missing: set[str] = set()
    for node in view.nodes():
        if node.tainted:
            continue
        if node.cni_binaries is None or binaries <= node.cni_binaries:
            able += 1
            cordoned += node.cordoned
        else:
            lacking += 1
            missing |= binaries - node.cni_binaries
    return _Able(able, cordoned, lacking, tuple(sorted(missing)))


def _cluster_text(view: ClusterView, nodes: _Able) -> str:
    """The nodes that can run the NAD in words, with the cordoned ones among them, and those left out:
    the ones that lack its binaries, and the tainted ones."""
    tainted = len(view.nodes()) - view.untainted_node_count
    notes = [f"{nodes.cordoned} of them cordoned, which pods land on again once uncordoned"] if nodes.cordoned else []
    if nodes.lacking:
        notes.append(f"the other {nodes.lacking} lack {' and '.join(nodes.missing)}, and pods on this network never "
                     "start there")
    if tainted:
        notes.append(f"not counting {tainted} tainted for good, which pods without a toleration never land on")
    what = f"a cluster of {nodes.able} nodes" if not nodes.lacking else (
        f"{nodes.able} of the {nodes.able + nodes.lacking} untainted nodes, those that have its CNI binaries or do "
        "not report theirs")
    return what + (f" ({'; '.join(notes)})" if notes else "")


# --- overlapping ranges ---------------------------------------------------------------------------


def shares_pool(a: AddressRange, b: AddressRange) -> bool:
    """Whether the two ranges are handed out from one pool, so that no address is given twice.
    whereabouts keeps one pool per range and network_name, and guards overlapping pools of one
    network_name when both leave enable_overlapping_ranges on. host-local keeps one store per network
    name and dataDir on each node, a file per address taken: configs that share it (two NADs of one name
    in two namespaces, with no name of their own or the same one) never take one address twice."""
    if a.ipam_type == b.ipam_type == "host-local":
        return a.store is not None and a.store == b.store
    if a.ipam_type != "whereabouts" or b.ipam_type != "whereabouts" or a.network_name != b.network_name:
        return False
    return a.network == b.network or (a.enable_overlapping_ranges and b.enable_overlapping_ranges)


def same_segment(a: AddressRange, b: AddressRange) -> bool:
    """Only a segment the configs name (same master interface or same bridge, same VLAN) counts:
    an unnamed one (macvlan on the default-route interface, ptp) may differ per node."""
    same_link = (a.master is not None and a.master == b.master) or (a.bridge is not None and a.bridge == b.bridge)
    return same_link and a.vlan == b.vlan


def _segment_text(r: AddressRange) -> str:
    link = f"master {r.master}" if r.master is not None else f"bridge {r.bridge}"
    return f"{link}, VLAN {r.vlan}" if r.vlan else link


def _clash(other: IndexedRange, mine: AddressRange) -> str:
    o = other.range
    first, last = max(o.first, mine.first), min(o.last, mine.last)
    shared = str(first) if first == last else f"{first}-{last}"
    return f"NAD {other.owner[0]}/{other.owner[1]} {o.path} (addresses {shared})"


def _span(r: AddressRange) -> str:
    return str(r.first) if r.first == r.last else f"{r.first}-{r.last}"


@rule("nad-range-overlap", kinds=NAD, severity=Severity.DENY,
      title="address ranges do not overlap another NAD's", judges=[SPEC_CONFIG])
def range_overlap(subject: Subject) -> Iterator[Violation]:
    """Two NADs that hand out the same addresses on one segment give two pods one address. Ranges are
    compared by what is allocated (rangeStart..rangeEnd, whereabouts range and range_start/range_end,
    static addresses), against every other NAD in the cluster: on the same named segment (master or
    bridge, and VLAN) an overlap is refused; on other segments it is a warning. whereabouts NADs that
    share a pool (same range and network_name, or same network_name with overlapping ranges enabled
    in both), and host-local NADs that share a store (the same network name, which Multus takes from
    the NAD's name when the config has none, and the same dataDir) never clash either. An UPDATE is not
    compared with its own old version. host-local also allocates from a literal runtimeConfig.ipRanges of
    the plugin, when that reaches it: for every pod when the plugin declares no capability Multus fills,
    else only for the pods that get none of them (an overlap of such a range is a warning, naming the
    condition). So are static's addresses, which a literal runtimeConfig.ips replaces when it reaches it."""
    if not subject.view.known:
        return
    own = (subject.namespace, subject.name)
    index = subject.view.ranges
    for mine in nad_allocation_ranges(subject.nad_config.netconf, subject.name):
        denied: list[str] = []
        maybe: list[str] = []
        warned: list[str] = []
        for other in index.overlapping(mine.first, mine.last):
            if other.owner == own or shares_pool(mine, other.range):
                continue
            if not same_segment(mine, other.range):
                warned.append(_clash(other, mine))
            elif mine.used_when is None and other.range.used_when is None:
                denied.append(_clash(other, mine))
            else:
                when = other.range.used_when
                maybe.append(_clash(other, mine) + (f" (which {other.range.ipam_type} uses only when {when})"
                                                    if when else ""))
        if denied:
            yield Violation(
                mine.path,
                f"{mine.path} ({_span(mine)}) overlaps {_some(denied, ' NADs')} on the same segment "
                f"({_segment_text(mine)}): those addresses can be given to two pods; make the ranges "
                "disjoint, or let both share one pool: whereabouts with the same network_name in both, or "
                "host-local with the same network name and dataDir in both (one store on each node)",
            )
        if maybe:
            used = f", which {mine.ipam_type} uses only when {mine.used_when}," if mine.used_when else ""
            yield Violation(
                mine.path,
                f"{mine.path} ({_span(mine)}){used} overlaps {_some(maybe, ' NADs')} on the same segment "
                f"({_segment_text(mine)}): for the pods where both are used, those addresses can be given to two "
                "pods; make the ranges disjoint",
                Severity.WARN,
            )
        if warned:
            yield Violation(
                mine.path,
                f"{mine.path} ({_span(mine)}) overlaps {_some(warned, ' NADs')} on another segment: a pod "
                "attached to both gets conflicting routes; make the ranges disjoint if the segments can meet",
                Severity.WARN,
            )


# --- NADs in use ----------------------------------------------------------------------------------


def _pods_text(count: int, pods: Sequence[object]) -> str:
    return f"{count} pod(s) ({_some([str(p) for p in pods], total=count)})"


@rule("nad-in-use", kinds=NAD, severity=Severity.DENY, title="a NAD that pods use is not deleted",
      operations={"DELETE"})
def in_use(subject: Subject) -> Iterator[Violation]:
    """Multus tears a pod's interfaces down and releases their addresses with the delegate configs it
    cached at ADD (under /var/lib/cni/multus); when that cache is gone, it reads the NADs again, and a
    deleted one is skipped: its addresses leak
    (multus-cni #199). Deleting a NAD that pods still reference (through the networks or the
    default-network annotation) leaves their teardown to that cache. Finished pods (Succeeded, Failed)
    do not count: the kubelet tore their sandboxes down when they ended. Deleting a NAD the policy's
    defaultNetworks name (in its multusNamespace) is refused too: Multus looks each default network up
    at every ADD of a pod outside systemNamespaces and fails the pod when it is gone. Deleting a NAD a
    NetworkProfile names is a warning: the pods created with that profile afterwards are refused
    (pod-networks-nad-exists)."""
    namespace, name = subject.namespace, subject.name
    count, pods = subject.view.pods_using(namespace, name, first=SHOWN,
                                          multus_namespace=subject.policy.multus_namespace)
    if count:
        yield Violation(
            "metadata.name",
            f"NAD {namespace}/{name} is still used by {_pods_text(count, pods)}: where Multus has "
            "lost its cached copy of their networks, it reads this NAD to tear their interfaces down and "
            "release their addresses, which would leak without it; delete those pods first",
        )
    defaults = subject.policy.default_networks
    if namespace == subject.policy.multus_namespace and name in defaults.names and default_network_is_nad(name):
        system = ", ".join(defaults.system_namespaces) or "none"
        yield Violation(
            "metadata.name",
            f"NAD {namespace}/{name} is in defaultNetworks (the policy's, which repeat Multus's config): "
            f"Multus looks it up in its multusNamespace {namespace} at every pod ADD, so every new pod outside "
            f"systemNamespaces ({system}) would fail to start (failed to get defaultNetworks), unless Multus's "
            "confDir has a CNI config of that name; remove it from defaultNetworks in Multus's config and in "
            "the policy first",
        )
    if subject.view.known:
        profiles = [str(p) for p in subject.view.profiles_using(namespace, name)]
        if profiles:
            yield Violation(
                "metadata.name",
                f"NAD {namespace}/{name} is named by NetworkProfile(s) {_some(profiles)}: pods created with "
                "them afterwards would be refused (the NAD does not exist); change those profiles or "
                "create the NAD again",
                Severity.WARN,
            )


def _config(obj: Mapping[str, Any]) -> Any:
    # Decoded, as the plugins read it: a reformatted config gives pods the same interfaces. The ratchet
    # compares the text, as Kubernetes ratchets a string field: any edit of spec.config is judged in full.
    spec = obj.get("spec")
    config = spec.get("config") if isinstance(spec, Mapping) else None
    try:
        return loads(config) if isinstance(config, str) else config
    except GoJSONError:
        return config


@rule("nad-in-use-changed", kinds=NAD, severity=Severity.WARN,
      title="changing a NAD that pods use does not reach them", operations={"UPDATE"})
def in_use_changed(subject: Subject) -> Iterator[Violation]:
    """Pods keep the interfaces that the old config made: a changed config of a NAD in use reaches
    only pods created after it, and the running ones differ from it until they are recreated."""
    if subject.old_object is None or _config(subject.old_object) == _config(subject.obj):
        return
    count, pods = subject.view.pods_using(subject.namespace, subject.name, first=SHOWN,
                                            multus_namespace=subject.policy.multus_namespace)
    if count:
        yield Violation(
            "spec.config",
            f"spec.config changed while {_pods_text(count, pods)} use this NAD: they keep the old interfaces; "
            "recreate them to apply the change",
        )
