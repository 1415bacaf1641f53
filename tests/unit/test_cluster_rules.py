"""The cluster-aware NAD rules (webhook.rules.nad_cluster) on static cluster states: one node, three
nodes, nodes that lack a binary; overlapping ranges; NADs in use. Each case is checked through the
real engine (evaluate) and, for DELETE, through the admission handler; the pod rules that need the
cluster on an UPDATE of the selection annotations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.admission.handlers import AdmissionContext, validate
from webhook.admission.review import AdmissionRequest
from webhook.cluster.static import StaticClusterView
from webhook.names import DHCP_DAEMON
from webhook.rules import Finding, Policy, Severity, Subject, evaluate
from webhook.rules.gate import gate_labels, required_binaries
from webhook.rules.view import UNKNOWN_CLUSTER, ClusterView

NAD = "NetworkAttachmentDefinition"
REFERENCE_PLUGINS = ["bridge", "macvlan", "ipvlan", "vlan", "host-local", "static", "tuning", "portmap"]


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def node_state(name: str, binaries: list[str] | None, *, node_name: str | None = None,
               unverified: list[str] | None = None, dhcp_daemon: bool | None = False) -> dict[str, Any]:
    """As the agent writes it (None: without dhcpDaemon, as an older agent's or under an older CRD)."""
    status: dict[str, Any] = {"nodeName": node_name or name, "multusReady": True, "bootID": f"boot-{name}"}
    if dhcp_daemon is not None:
        status["dhcpDaemon"] = dhcp_daemon
    if binaries is not None:
        status["cniBinaries"] = binaries
    if unverified is not None:
        status["unverifiedBinaries"] = unverified
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
            "metadata": {"name": name, "namespace": "multus-webhook"}, "status": status}


def nad_obj(name: str, config: dict[str, Any], namespace: str = "default",
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": NAD, "metadata": meta,
            "spec": {"config": json.dumps(config)}}


def pod(name: str, namespace: str = "default", **annotations: str) -> dict[str, Any]:
    keys = {"networks": "k8s.v1.cni.cncf.io/networks", "default": "v1.multus-cni.io/default-network"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {keys[k]: v for k, v in annotations.items()}}}


def macvlan(ipam: dict[str, Any], master: str = "eth0", name: str = "net") -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": master, "ipam": ipam}


def host_local(subnet: str, **fields: str) -> dict[str, Any]:
    return {"type": "host-local", "ranges": [[{"subnet": subnet, **fields}]]}


def whereabouts(range_: str, **fields: Any) -> dict[str, Any]:
    return {"type": "whereabouts", "range": range_, **fields}


def one_node(*objects: dict[str, Any]) -> StaticClusterView:
    return StaticClusterView([node("n1"), node_state("n1", [*REFERENCE_PLUGINS, "whereabouts"]), *objects])


def three_nodes(*objects: dict[str, Any], binaries: list[str] | None = None) -> StaticClusterView:
    nodes = ["n1", "n2", "n3"]
    have = [*REFERENCE_PLUGINS, "whereabouts"] if binaries is None else binaries
    return StaticClusterView([*(node(n) for n in nodes), *(node_state(n, have) for n in nodes), *objects])


def check(obj: dict[str, Any], view: ClusterView, rule: str, operation: str = "CREATE",
          old: dict[str, Any] | None = None, policy: Policy | None = None) -> list[Finding]:
    subject = Subject(obj, NAD, operation=operation, old_object=old, view=view)
    return [f for f in evaluate(subject, policy or Policy()) if f.rule == rule]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


WHEREABOUTS_NAD = nad_obj("wa", macvlan(whereabouts("10.20.0.0/24")))
HOST_LOCAL_NAD = nad_obj("hl", macvlan(host_local("10.30.0.0/24")))


# --- the dhcp daemon ----------------------------------------------------------------------------------


DHCP_NAD = nad_obj("dh", macvlan({"type": "dhcp"}))


def dhcp_nodes(*daemons: bool) -> StaticClusterView:
    names = [f"n{i}" for i in range(len(daemons))]
    return StaticClusterView([*(node(n) for n in names), *(
        node_state(n, [*REFERENCE_PLUGINS, "dhcp"], dhcp_daemon=d) for n, d in zip(names, daemons, strict=True))])


def test_dhcp_with_no_node_reporting_its_daemon_is_warned_naming_the_gate() -> None:
    found = only(check(DHCP_NAD, dhcp_nodes(False, False), "nad-ipam-dhcp"))
    assert (found.severity, found.field) == (Severity.WARN, "spec.config.ipam.type")
    assert "none of the 2 node(s) that report has the CNI dhcp daemon answering on /run/cni/dhcp.sock" in found.message
    assert "requires the label cni.multus-webhook.io/dhcp-daemon" in found.message


def test_dhcp_with_a_daemon_on_some_node_is_allowed_under_the_gate_and_counted_without_it() -> None:
    assert check(DHCP_NAD, dhcp_nodes(True, False), "nad-ipam-dhcp") == []
    assert check(DHCP_NAD, dhcp_nodes(True, True), "nad-ipam-dhcp", policy=Policy(readiness_affinity=False)) == []
    found = only(check(DHCP_NAD, dhcp_nodes(True, False, False), "nad-ipam-dhcp",
                       policy=Policy(readiness_affinity=False)))
    assert "does not answer on /run/cni/dhcp.sock on 2 of the 3 node(s) that report" in found.message


def test_dhcp_on_its_own_socket_is_warned_whatever_the_nodes_report() -> None:
    custom = nad_obj("dh", macvlan({"type": "dhcp", "daemonSocketPath": "/var/run/dhcp/d.sock"}))
    found = only(check(custom, dhcp_nodes(True, True), "nad-ipam-dhcp"))
    assert "daemon on /var/run/dhcp/d.sock: the node agents check only /run/cni/dhcp.sock" in found.message


def test_the_gate_of_a_pod_on_dhcp_requires_the_daemon_unless_the_nad_names_its_own_socket() -> None:
    custom = nad_obj("own", macvlan({"type": "dhcp", "daemonSocketPath": "/var/run/dhcp/d.sock"}))
    view = StaticClusterView([DHCP_NAD, custom, nad_obj("dh2", macvlan({"type": "dhcp", "daemonSocketPath": ""}))])
    policy = Policy()
    assert required_binaries({"k8s.v1.cni.cncf.io/networks": "dh"}, "default", view, policy) == {
        "macvlan", "dhcp", DHCP_DAEMON}
    assert required_binaries({"k8s.v1.cni.cncf.io/networks": "dh2"}, "default", view, policy) == {
        "macvlan", "dhcp", DHCP_DAEMON}
    assert required_binaries({"k8s.v1.cni.cncf.io/networks": "own"}, "default", view, policy) == {"macvlan", "dhcp"}
    assert "cni.multus-webhook.io/dhcp-daemon" in gate_labels({"macvlan", "dhcp", DHCP_DAEMON})


def test_nodes_whose_dhcp_daemon_answers_hold_it() -> None:
    view = dhcp_nodes(True, False)
    assert view.binary_holders(DHCP_DAEMON) == {"n0"}
    assert view.binary_holders("dhcp") == {"n0", "n1"}


def test_a_node_whose_agent_does_not_report_the_dhcp_daemon_holds_it_as_its_labels_say() -> None:
    # An agent older than the probe, or a CRD that prunes status.dhcpDaemon: the controller labels the
    # node (decide.desired_labels), so the rules count the daemon there too.
    view = StaticClusterView([node("old"), node("new"),
                              node_state("old", [*REFERENCE_PLUGINS, "dhcp"], dhcp_daemon=None),
                              node_state("new", [*REFERENCE_PLUGINS, "dhcp"], dhcp_daemon=False)])
    assert view.binary_holders(DHCP_DAEMON) == {"old"}
    assert check(DHCP_NAD, view, "nad-ipam-dhcp") == []


# --- CNI binaries ----------------------------------------------------------------------------------


def test_binaries_present_on_every_node_are_allowed() -> None:
    assert check(WHEREABOUTS_NAD, three_nodes(), "nad-cni-binaries") == []


def test_binary_missing_on_every_reporting_node_is_denied_naming_the_field() -> None:
    view = three_nodes(binaries=["bridge", "macvlan", "host-local"])
    f = only(check(WHEREABOUTS_NAD, view, "nad-cni-binaries"))
    assert f.severity == "deny"
    assert f.field == "spec.config.ipam.type"
    assert "no node has the CNI binary 'whereabouts'" in f.message
    assert "checked the 3 node(s)" in f.message
    assert "install the whereabouts plugin" in f.message


def test_binary_messages_say_what_the_readiness_gate_makes_of_a_missing_binary() -> None:
    """With the gate (the default), pods stay Pending off the nodes without the binary; without it
    (policy readinessAffinity: false) the kubelet fails them there (ContainerCreating)."""
    nowhere = three_nodes(binaries=["macvlan", "host-local"])
    gated = only(check(WHEREABOUTS_NAD, nowhere, "nad-cni-binaries")).message
    assert "pods on this network would stay Pending, as their readiness gate requires the node label " \
        "cni.multus-webhook.io/whereabouts; install the whereabouts plugin" in gated
    assert "ContainerCreating" not in gated
    off = Policy(readiness_affinity=False)
    assert "pods on this network would stay in ContainerCreating; install" in only(
        check(WHEREABOUTS_NAD, nowhere, "nad-cni-binaries", policy=off)).message
    some = StaticClusterView([node("n1"), node("n2"), node_state("n1", ["macvlan", "whereabouts"]),
                              node_state("n2", ["macvlan"])])
    assert only(check(WHEREABOUTS_NAD, some, "nad-cni-binaries")).message == (
        "spec.config.ipam.type: the CNI binary 'whereabouts' is missing on node(s) n2: the readiness gate keeps "
        "pods on this network off them; install it there for them to run there")
    assert "missing on node(s) n2: pods on this network fail there; install it on those nodes or keep these " \
        "pods off them" in only(check(WHEREABOUTS_NAD, some, "nad-cni-binaries", policy=off)).message


def test_binary_missing_on_some_nodes_is_a_warning_naming_them() -> None:
    view = StaticClusterView([
        node("n1"), node("n2"), node("n3"),
        node_state("n1", ["macvlan", "whereabouts"]),
        node_state("n2", ["macvlan"]),
        node_state("n3", ["whereabouts"]),
    ])
    found = check(WHEREABOUTS_NAD, view, "nad-cni-binaries")
    assert [(f.severity, f.field) for f in found] == [("warn", "spec.config.type"), ("warn", "spec.config.ipam.type")]
    assert "'macvlan' is missing on node(s) n3" in found[0].message
    assert "'whereabouts' is missing on node(s) n2" in found[1].message


def test_links_the_agents_cannot_follow_count_as_present() -> None:
    """A node whose plugins are links to where its agent sees nothing gets no binary label for them, but
    its NADs are not refused for it: the plugin may well be there."""
    view = StaticClusterView([
        node("n1"), node("n2"),
        node_state("n1", ["macvlan"], unverified=["whereabouts"]),
        node_state("n2", ["whereabouts"], unverified=["macvlan"]),
    ])
    assert check(WHEREABOUTS_NAD, view, "nad-cni-binaries") == []
    assert view.binary_holders("whereabouts") == {"n1", "n2"}


UNREADABLE = {"type": "MultusBinaryInstalled", "status": "False", "reason": "BinDirUnreadable",
              "message": "cannot read /opt/cni/bin: Permission denied"}


def test_a_node_whose_agent_cannot_read_the_bin_dir_reports_no_inventory() -> None:
    """Agents before this fix wrote cniBinaries: [] with the BinDirUnreadable condition: read as "not
    known", not as a node without any plugin (on one node, every NAD was refused)."""
    old_agent = node_state("n1", [])
    old_agent["status"]["conditions"] = [UNREADABLE]
    view = StaticClusterView([node("n1"), old_agent])
    assert view.reporting_nodes == ()
    assert check(WHEREABOUTS_NAD, view, "nad-cni-binaries") == []
    # Beside a node that reads its bin dir, only that one is judged.
    two = StaticClusterView([node("n1"), old_agent, node("n2"), node_state("n2", ["macvlan", "whereabouts"])])
    assert two.reporting_nodes == ("n2",)
    assert check(WHEREABOUTS_NAD, two, "nad-cni-binaries") == []
    # The agent now publishes none at all.
    new_agent = node_state("n1", None)
    new_agent["status"]["conditions"] = [UNREADABLE]
    assert StaticClusterView([node("n1"), new_agent]).reporting_nodes == ()


def test_a_binary_only_on_nodes_no_new_pod_can_land_on_is_warned() -> None:
    view = StaticClusterView([
        tainted("n1", unschedulable=True), node_state("n1", ["macvlan", "whereabouts"]),
        node("n2"), node_state("n2", ["macvlan"]),
    ])
    f = only(check(WHEREABOUTS_NAD, view, "nad-cni-binaries"))
    assert f.severity == "warn"
    assert f.field == "spec.config.ipam.type"
    assert "only node(s) n1 have the CNI binary 'whereabouts', and no new pod can land there now" in f.message
    # Missing only on a cordoned node: nothing to say, no new pod goes there.
    lacking = StaticClusterView([
        tainted("n1", unschedulable=True), node_state("n1", ["macvlan"]),
        node("n2"), node_state("n2", ["macvlan", "whereabouts"]),
    ])
    assert check(WHEREABOUTS_NAD, lacking, "nad-cni-binaries") == []
    # Uncordoned: the binary counts again.
    view.put(node("n1"))
    assert "'whereabouts' is missing on node(s) n2" in only(check(WHEREABOUTS_NAD, view, "nad-cni-binaries")).message


def test_when_every_reporting_node_is_closed_they_all_count() -> None:
    # A one-node cluster being upgraded (talosctl upgrade cordons it): NADs are judged as before.
    view = StaticClusterView([tainted("n1", unschedulable=True), node_state("n1", ["macvlan", "whereabouts"])])
    assert check(WHEREABOUTS_NAD, view, "nad-cni-binaries") == []
    without = StaticClusterView([tainted("n1", unschedulable=True), node_state("n1", ["macvlan"])])
    f = only(check(WHEREABOUTS_NAD, without, "nad-cni-binaries"))
    assert "no node has the CNI binary 'whereabouts'" in f.message


def test_every_plugin_of_a_conflist_and_its_ipam_is_looked_up() -> None:
    config = {"cniVersion": "1.0.0", "name": "br", "plugins": [
        {"type": "bridge", "bridge": "br1", "ipam": {"type": "whereabouts", "range": "10.9.0.0/24"}},
        {"type": "tuning"}, {"type": "sbr"},
    ]}
    view = three_nodes(binaries=["bridge", "tuning"])
    found = check(nad_obj("br", config), view, "nad-cni-binaries")
    assert [f.field for f in found] == ["spec.config.plugins[0].ipam.type", "spec.config.plugins[2].type"]
    assert all(f.severity == "deny" for f in found)


def test_a_binary_no_label_can_name_is_warned_about_the_gate_that_cannot_require_it() -> None:
    """The agent lists it, the controller never labels it (names.binary_label): a pod's readiness gate
    cannot require it, even with every node having it."""
    long = "a" * 64
    config = {"cniVersion": "1.0.0", "name": "odd", "plugins": [
        {"type": long}, {"type": "_under"}, {"type": "dot."}, {"type": "tuning"}]}
    view = three_nodes(binaries=[long, "_under", "dot.", "tuning"])
    found = check(nad_obj("odd", config), view, "nad-cni-binaries")
    assert [(f.field, f.severity) for f in found] == [
        (f"spec.config.plugins[{i}].type", "warn") for i in range(3)]
    assert found[1].message == (
        "spec.config.plugins[1].type is '_under', which cannot be a label name (at most 63 letters, digits, '-', "
        "'_' or '.', beginning and ending with a letter or digit): nodes get no label for it, so the readiness "
        "gate of pods on this network cannot require it, and they may land on a node where Multus is ready but "
        "the binary is missing; rename the plugin's file")
    # Without the gate (policy readinessAffinity: false) there is nothing it could miss.
    assert check(nad_obj("odd", config), view, "nad-cni-binaries",
                 policy=Policy(readiness_affinity=False)) == []


def test_nodes_that_do_not_report_are_not_counted_and_none_reporting_says_nothing() -> None:
    view = StaticClusterView([node("n1"), node("n2"), node_state("n1", ["macvlan"]), node_state("n2", None)])
    assert view.cni_inventory_known
    f = only(check(WHEREABOUTS_NAD, view, "nad-cni-binaries"))
    assert "checked the 1 node(s)" in f.message

    silent = StaticClusterView([node("n1"), node("n2")])
    assert not silent.cni_inventory_known
    assert check(WHEREABOUTS_NAD, silent, "nad-cni-binaries") == []
    assert not UNKNOWN_CLUSTER.cni_inventory_known
    assert check(WHEREABOUTS_NAD, UNKNOWN_CLUSTER, "nad-cni-binaries") == []


def test_a_state_of_a_node_that_left_the_cluster_is_ignored() -> None:
    view = StaticClusterView([node("n1"), node_state("n1", ["macvlan", "whereabouts"]),
                              node_state("gone", ["macvlan"])])
    assert [n.name for n in view.nodes()] == ["n1"]
    assert check(WHEREABOUTS_NAD, view, "nad-cni-binaries") == []


def test_states_alone_stand_for_their_nodes() -> None:
    view = StaticClusterView([node_state("a", ["macvlan"]), node_state("mns-b", ["macvlan"], node_name="b")])
    assert [(n.name, n.cni_binaries) for n in view.nodes()] == [("a", frozenset({"macvlan"})),
                                                                ("b", frozenset({"macvlan"}))]
    assert view.node_state("b") is not None
    assert view.node_state("b")["status"]["bootID"] == "boot-mns-b"
    assert only(check(WHEREABOUTS_NAD, view, "nad-cni-binaries")).severity == "deny"


# --- host-local on several nodes -------------------------------------------------------------------


def test_host_local_on_one_node_is_allowed() -> None:
    assert check(HOST_LOCAL_NAD, one_node(), "nad-host-local-multi-node") == []


def test_host_local_on_three_nodes_is_denied_with_the_annotation_first_and_whereabouts_last() -> None:
    f = only(check(HOST_LOCAL_NAD, three_nodes(), "nad-host-local-multi-node"))
    assert f.severity == "deny"
    assert f.field == "spec.config.ipam.type"
    assert "host-local on a cluster of 3 nodes" in f.message
    assert "pods on different nodes get the same addresses" in f.message
    # The option that needs nothing installed comes first; whereabouts is not part of this stack.
    assert f.message.index('annotate the NAD with multus-webhook.io/allow-host-local: "true"') < f.message.index(
        "static IPAM") < f.message.index("use whereabouts")
    assert "must first be installed on the nodes (its own DaemonSet: multus-webhook does not ship it)" in f.message


def test_host_local_in_any_plugin_of_a_list_is_found() -> None:
    config = {"cniVersion": "1.0.0", "name": "l", "plugins": [
        {"type": "tuning"}, {"type": "bridge", "ipam": {"Type": "host-local", "subnet": "10.1.0.0/24"}}]}
    f = only(check(nad_obj("l", config), three_nodes(), "nad-host-local-multi-node"))
    assert f.field == "spec.config.plugins[1].ipam.Type"


def test_allow_host_local_annotation_turns_the_denial_into_a_warning() -> None:
    obj = nad_obj("hl", macvlan(host_local("10.30.0.0/24")),
                  annotations={"multus-webhook.io/allow-host-local": "true"})
    f = only(check(obj, three_nodes(), "nad-host-local-multi-node"))
    assert f.severity == "warn"
    assert "allowed by multus-webhook.io/allow-host-local" in f.message


def test_host_local_rule_can_be_set_to_warn_by_policy() -> None:
    policy = Policy(severities={"nad-host-local-multi-node": "warn"})  # type: ignore[dict-item]
    assert only(check(HOST_LOCAL_NAD, three_nodes(), "nad-host-local-multi-node", policy=policy)).severity == "warn"


def tainted(name: str, *taints: tuple[str, str], unschedulable: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": [{"key": key, "effect": effect} for key, effect in taints]}
    if unschedulable:
        spec["unschedulable"] = True
    return {**node(name), "spec": spec}


CONTROL_PLANE = ("node-role.kubernetes.io/control-plane", "NoSchedule")


def test_nodes_pods_cannot_land_on_are_not_counted() -> None:
    # kubeadm and kind: a control plane tainted NoSchedule and one worker.
    kind_cluster = StaticClusterView([tainted("control-plane", CONTROL_PLANE), node("worker")])
    assert check(HOST_LOCAL_NAD, kind_cluster, "nad-host-local-multi-node") == []
    dedicated = StaticClusterView([tainted("gpu", ("dedicated", "NoExecute")), node("b")])
    assert check(HOST_LOCAL_NAD, dedicated, "nad-host-local-multi-node") == []


def test_nodes_tainted_for_a_passing_condition_or_only_preferring_no_pods_count() -> None:
    # A node not ready or under pressure takes pods again once it recovers.
    view = StaticClusterView([
        tainted("a", ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/disk-pressure", "NoSchedule")),
        tainted("b", ("node.cloudprovider.kubernetes.io/uninitialized", "NoSchedule"), ("x", "PreferNoSchedule")),
        tainted("control-plane", CONTROL_PLANE),
    ])
    f = only(check(HOST_LOCAL_NAD, view, "nad-host-local-multi-node"))
    assert ("host-local on a cluster of 2 nodes (not counting 1 tainted for good, which pods without a toleration "
            "never land on): " in f.message)


def test_a_cordoned_node_counts_pods_land_there_again_once_it_is_uncordoned() -> None:
    """kubectl drain or talosctl upgrade cordons a node for a while: a host-local NAD admitted then hands
    out, after the uncordon, the addresses the other node has already given."""
    # As kubectl cordon leaves it, and with the taint the node lifecycle controller then adds.
    for taints in ((), (("node.kubernetes.io/unschedulable", "NoSchedule"),)):
        cordoned = StaticClusterView([tainted("a", *taints, unschedulable=True), node("b")])
        f = only(check(HOST_LOCAL_NAD, cordoned, "nad-host-local-multi-node"))
        assert f.severity == "deny"
        assert ("host-local on a cluster of 2 nodes (1 of them cordoned, which pods land on again once "
                "uncordoned): " in f.message)
    # Cordoned and tainted for good: not counted.
    both = StaticClusterView([tainted("a", CONTROL_PLANE, unschedulable=True), node("b")])
    assert check(HOST_LOCAL_NAD, both, "nad-host-local-multi-node") == []


def test_ciliums_agent_not_ready_taint_passes() -> None:
    # Cilium taints a node until its agent runs there, at every boot (the talos-cilium stack).
    view = StaticClusterView([tainted("a", ("node.cilium.io/agent-not-ready", "NoSchedule")), node("b")])
    f = only(check(HOST_LOCAL_NAD, view, "nad-host-local-multi-node"))
    assert "host-local on a cluster of 2 nodes: " in f.message


def test_a_node_that_lifts_its_taint_is_counted_again() -> None:
    view = StaticClusterView([tainted("control-plane", CONTROL_PLANE), node("worker")])
    assert check(HOST_LOCAL_NAD, view, "nad-host-local-multi-node") == []
    view.put(node("control-plane"))
    assert "a cluster of 2 nodes:" in only(check(HOST_LOCAL_NAD, view, "nad-host-local-multi-node")).message


@pytest.mark.parametrize("plugin", ["ptp", "dummy"])
def test_host_local_behind_a_node_local_plugin_is_allowed(plugin: str) -> None:
    # ptp gives each pod a /32 route on its own node only; dummy's interface is reachable from nowhere.
    obj = nad_obj("p", {"cniVersion": "1.0.0", "name": "p", "type": plugin, "ipMasq": True,
                        "ipam": host_local("10.40.0.0/24")})
    assert check(obj, three_nodes(), "nad-host-local-multi-node") == []


SRIOV_HOST_LOCAL = nad_obj("sriov", {"cniVersion": "1.0.0", "name": "sriov", "type": "sriov",
                                      "ipam": host_local("10.56.217.0/24")},
                           annotations={"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"})


def test_host_local_counts_only_the_nodes_that_have_the_nads_binaries() -> None:
    """An SR-IOV NAD with host-local (sriov-cni's README example, or what sriov-network-operator
    generates) on a cluster where one node has the sriov plugin: its pods only ever run there."""
    lone = StaticClusterView([*(node(n) for n in ("a", "b", "c")), node_state("a", ["sriov", "host-local"]),
                              *(node_state(n, ["macvlan", "host-local"]) for n in ("b", "c"))])
    assert check(SRIOV_HOST_LOCAL, lone, "nad-host-local-multi-node") == []
    # Two of five have it, one reports nothing (no agent yet: it might), one lacks the IPAM binary.
    view = StaticClusterView([
        *(node(n) for n in ("a", "b", "c", "d", "e")), tainted("cp", CONTROL_PLANE),
        *(node_state(n, ["sriov", "host-local"]) for n in ("a", "b")), node_state("c", ["macvlan", "host-local"]),
        node_state("d", ["sriov"]), node_state("cp", ["macvlan"])])
    f = only(check(SRIOV_HOST_LOCAL, view, "nad-host-local-multi-node"))
    assert f.severity == "deny"
    assert f.message.startswith(
        "spec.config.ipam.type is host-local on 3 of the 5 untainted nodes, those that have its CNI binaries or "
        "do not report theirs (the other 2 lack host-local and sriov, and pods on this network never start there; "
        "not counting 1 tainted for good, which pods without a toleration never land on): host-local keeps ")
    # Whether the readiness gate keeps the pods off them or Multus fails them there, the count is the same.
    off = Policy(readiness_affinity=False)
    assert only(check(SRIOV_HOST_LOCAL, view, "nad-host-local-multi-node", policy=off)).message == f.message


def test_a_node_whose_agent_has_not_reported_yet_is_counted_for_host_local_under_the_gate_too() -> None:
    """A node without a report is, as often as not, one whose agent is still starting: once it reports,
    the gate lets the pods there, and host-local hands out the same addresses on both nodes. Leaving such
    nodes out admitted a NAD while the agents came up and denied it again once they had (a review of a
    first version that did)."""
    starting = StaticClusterView([node("a"), node("b"), node("c"), node_state("a", ["macvlan", "host-local"])])
    assert "host-local on a cluster of 3 nodes" in only(
        check(HOST_LOCAL_NAD, starting, "nad-host-local-multi-node")).message
    # Only the tainted control plane's agent has reported: the two workers still count.
    control_plane_first = StaticClusterView([tainted("cp", CONTROL_PLANE), node("a"), node("b"),
                                             node_state("cp", ["macvlan", "host-local"])])
    assert "host-local on a cluster of 2 nodes" in only(
        check(HOST_LOCAL_NAD, control_plane_first, "nad-host-local-multi-node")).message


def test_cordoned_nodes_that_lack_the_binaries_are_not_counted_as_cordoned() -> None:
    view = StaticClusterView([tainted("a", unschedulable=True), tainted("b", unschedulable=True), node("c"),
                              node_state("a", ["sriov", "host-local"]), node_state("b", ["host-local"]),
                              node_state("c", ["sriov", "host-local"])])
    assert "host-local on 2 of the 3 untainted nodes, those that have its CNI binaries or do not report theirs (1 " \
        "of them cordoned, which pods land on again once uncordoned; the other 1 lack sriov" in only(
            check(SRIOV_HOST_LOCAL, view, "nad-host-local-multi-node")).message


def test_no_cluster_no_host_local_finding() -> None:
    assert check(HOST_LOCAL_NAD, UNKNOWN_CLUSTER, "nad-host-local-multi-node") == []


# --- overlapping ranges ----------------------------------------------------------------------------


def test_overlap_on_the_same_master_is_denied_naming_the_other_nad_and_addresses() -> None:
    existing = nad_obj("a", macvlan(host_local("10.1.0.0/24", rangeStart="10.1.0.100", rangeEnd="10.1.0.200")),
                       namespace="team-a")
    new = nad_obj("b", macvlan(whereabouts("10.1.0.0/25")))
    f = only(check(new, one_node(existing), "nad-range-overlap"))
    assert f.severity == "deny"
    assert f.field == "spec.config.ipam.range"
    assert "(10.1.0.1-10.1.0.126) overlaps NAD team-a/a spec.config.ipam.ranges[0][0]" in f.message
    assert "(addresses 10.1.0.100-10.1.0.126)" in f.message
    assert "same segment (master eth0)" in f.message
    assert "make the ranges disjoint" in f.message


def test_ranges_are_compared_by_allocation_range_not_subnet() -> None:
    existing = nad_obj("a", macvlan(host_local("10.1.0.0/24", rangeStart="10.1.0.10", rangeEnd="10.1.0.99")))
    new = nad_obj("b", macvlan(host_local("10.1.0.0/24", rangeStart="10.1.0.100", rangeEnd="10.1.0.199")))
    assert check(new, one_node(existing), "nad-range-overlap") == []
    wa_existing = nad_obj("c", macvlan(whereabouts("10.2.0.0/24", range_start="10.2.0.128")))
    wa_new = nad_obj("d", macvlan(whereabouts("10.2.0.0/24", range_end="10.2.0.127"), master="eth0"))
    assert check(wa_new, one_node(wa_existing), "nad-range-overlap") == []


def test_overlap_on_another_segment_is_a_warning() -> None:
    existing = nad_obj("a", macvlan(whereabouts("10.1.0.0/24"), master="eth1"))
    new = nad_obj("b", macvlan(whereabouts("10.1.0.0/24", network_name="other"), master="eth2"))
    f = only(check(new, one_node(existing), "nad-range-overlap"))
    assert f.severity == "warn"
    assert "overlaps NAD default/a spec.config.ipam.range (addresses 10.1.0.1-10.1.0.254) on another segment" \
        in f.message


def test_whereabouts_same_range_and_network_name_is_one_pool() -> None:
    existing = nad_obj("a", macvlan(whereabouts("10.1.0.0/24", network_name="blue", enable_overlapping_ranges=False)))
    new = nad_obj("b", macvlan(whereabouts("10.1.0.0/24", network_name="blue", enable_overlapping_ranges=False)))
    assert check(new, one_node(existing), "nad-range-overlap") == []


def test_whereabouts_overlapping_ranges_guarded_when_both_enable_them() -> None:
    existing = nad_obj("a", macvlan(whereabouts("10.1.0.0/24")))
    new = nad_obj("b", macvlan(whereabouts("10.1.0.0/25")))
    assert check(new, one_node(existing), "nad-range-overlap") == []
    disabled = nad_obj("c", macvlan(whereabouts("10.1.0.0/25", enable_overlapping_ranges=False)))
    assert only(check(disabled, one_node(existing), "nad-range-overlap")).severity == "deny"
    other_name = nad_obj("d", macvlan(whereabouts("10.1.0.0/25", network_name="x")))
    assert only(check(other_name, one_node(existing), "nad-range-overlap")).severity == "deny"


def test_host_local_nads_sharing_one_store_are_one_pool() -> None:
    # host-local keeps a file per address taken in dataDir/<network name>, and Multus names a config
    # without a name after its NAD (without the namespace): team-a/mynet and team-b/mynet share a store
    # and never take one address twice.
    def hl(name: str | None = None, **ipam: str) -> dict[str, Any]:
        conf = {"cniVersion": "1.0.0", "type": "macvlan", "master": "eth1",
                "ipam": {"type": "host-local", "subnet": "10.50.0.0/24", **ipam}}
        return conf if name is None else {**conf, "name": name}

    existing = nad_obj("mynet", hl(), namespace="team-a")
    assert check(nad_obj("mynet", hl(), namespace="team-b"), one_node(existing), "nad-range-overlap") == []
    # The default dataDir written out is the same directory.
    same_dir = nad_obj("mynet", hl(dataDir="/var/lib/cni/networks/"), namespace="team-b")
    assert check(same_dir, one_node(existing), "nad-range-overlap") == []
    # A config name of its own, the same in both, whatever the NADs are called.
    named = nad_obj("x", hl("shared"), namespace="team-a")
    assert check(nad_obj("y", hl("shared"), namespace="team-b"), one_node(named), "nad-range-overlap") == []

    for other in (nad_obj("mynet", hl(dataDir="/run/cni/ipam"), namespace="team-b"),
                  nad_obj("other", hl(), namespace="team-b"),
                  nad_obj("mynet", hl("mynet-b"), namespace="team-b")):
        f = only(check(other, one_node(existing), "nad-range-overlap"))
        assert f.severity == "deny"
        assert "or host-local with the same network name and dataDir in both (one store on each node)" in f.message


def test_ipv6_overlap_and_bridge_segments() -> None:
    def bridge(subnet: str, br: str, vlan: int | None = None) -> dict[str, Any]:
        # A network name of its own: host-local NADs of one name share their allocations.
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": f"b-{subnet.replace(':', '-').replace('/', '-')}",
                                "type": "bridge", "bridge": br, "ipam": host_local(subnet)}
        if vlan is not None:
            conf["vlan"] = vlan
        return conf

    existing = nad_obj("a", bridge("fd00:1::/64", "br1", 100))
    same = nad_obj("b", bridge("fd00:1::/112", "br1", 100))
    f = only(check(same, one_node(existing), "nad-range-overlap"))
    assert f.severity == "deny"
    assert "same segment (bridge br1, VLAN 100)" in f.message
    # Both subnets' gateway (fd00:1::1, host-local skips it) is left out of what they hand out.
    assert "(addresses fd00:1::2-fd00:1::ffff)" in f.message
    other_vlan = nad_obj("c", bridge("fd00:1::/112", "br1", 200))
    assert only(check(other_vlan, one_node(existing), "nad-range-overlap")).severity == "warn"
    v4 = nad_obj("d", bridge("10.0.0.0/8", "br1", 100))
    assert check(v4, one_node(existing), "nad-range-overlap") == []


def test_static_address_inside_another_nads_pool_is_denied() -> None:
    existing = nad_obj("pool", macvlan(whereabouts("10.5.0.0/24")))
    new = nad_obj("fixed", macvlan({"type": "static", "addresses": [{"address": "10.5.0.7/24"}]}))
    f = only(check(new, one_node(existing), "nad-range-overlap"))
    assert f.field == "spec.config.ipam.addresses[0]"
    assert "(10.5.0.7) overlaps NAD default/pool spec.config.ipam.range (addresses 10.5.0.7)" in f.message


def test_update_is_not_compared_with_its_own_old_version() -> None:
    old = nad_obj("a", macvlan(whereabouts("10.1.0.0/24", enable_overlapping_ranges=False)))
    new = nad_obj("a", macvlan(whereabouts("10.1.0.0/23", enable_overlapping_ranges=False)))
    assert check(new, one_node(old), "nad-range-overlap", operation="UPDATE", old=old) == []
    # The same name in another namespace is another NAD.
    elsewhere = nad_obj("a", macvlan(whereabouts("10.1.0.0/23", enable_overlapping_ranges=False)), namespace="x")
    assert only(check(elsewhere, one_node(old), "nad-range-overlap")).severity == "deny"


def test_many_overlaps_are_named_up_to_five() -> None:
    existing = [nad_obj(f"n{i}", macvlan(host_local(f"10.7.{i}.0/24"))) for i in range(8)]
    new = nad_obj("wide", macvlan(whereabouts("10.7.0.0/16")))
    f = only(check(new, one_node(*existing), "nad-range-overlap"))
    assert "default/n4" in f.message
    assert "default/n5" not in f.message
    assert "and 3 more NADs" in f.message


def static(address: str) -> dict[str, Any]:
    return {"type": "static", "addresses": [{"address": address}]}


@pytest.mark.parametrize("pool_first", [True, False], ids=["pool-first", "static-first"])
def test_addresses_whereabouts_excludes_are_free_for_static_use(pool_first: bool) -> None:
    # whereabouts' README way of keeping addresses for fixed use: exclude them from the pool.
    pool = nad_obj("pool", macvlan(whereabouts("10.1.0.0/24", exclude=["10.1.0.0/28", "10.1.0.200"])))
    for address, overlaps in (("10.1.0.5/24", False), ("10.1.0.200/24", False), ("10.1.0.16/24", True)):
        fixed = nad_obj("fixed", macvlan(static(address)))
        existing, new = (pool, fixed) if pool_first else (fixed, pool)
        findings = check(new, one_node(existing), "nad-range-overlap")
        assert bool(findings) is overlaps, (address, findings)


def test_the_gateway_host_local_skips_is_free_for_a_static_router() -> None:
    pool = nad_obj("hl", macvlan(host_local("10.3.0.0/24")))
    assert check(nad_obj("router", macvlan(static("10.3.0.1/24"))), one_node(pool), "nad-range-overlap") == []
    assert check(nad_obj("other", macvlan(static("10.3.0.2/24"))), one_node(pool), "nad-range-overlap")
    explicit = nad_obj("hl2", macvlan(host_local("10.4.0.0/24", gateway="10.4.0.254")))
    assert check(nad_obj("r2", macvlan(static("10.4.0.254/24"))), one_node(explicit), "nad-range-overlap") == []
    assert check(nad_obj("r3", macvlan(static("10.4.0.1/24"))), one_node(explicit), "nad-range-overlap")


def literal_ip_ranges(subnet: str, name: str, **plugin: Any) -> dict[str, Any]:
    """A macvlan NAD whose host-local has ranges of its own (10.60.0.0/24) and a literal runtimeConfig.ipRanges,
    which host-local allocates from too when the literal runtimeConfig reaches it."""
    return {**macvlan(host_local("10.60.0.0/24"), name=name), **plugin,
            "runtimeConfig": {"ipRanges": [[{"subnet": subnet}]]}}


def test_host_local_literal_ip_ranges_are_compared_both_ways() -> None:
    # host-local (plugins v1.10.0 LoadIPAMConfig) puts a literal runtimeConfig.ipRanges ahead of its own
    # ranges and allocates from both; Multus never fills ipRanges, so with no capability declared every pod
    # gets an address of it.
    existing = nad_obj("a", literal_ip_ranges("10.61.0.0/24", "a"))
    new = nad_obj("b", macvlan(host_local("10.61.0.0/24"), name="b"))
    f = only(check(new, one_node(existing), "nad-range-overlap"))
    assert f.severity == "deny"
    assert "overlaps NAD default/a spec.config.runtimeConfig.ipRanges[0][0] (addresses 10.61.0.2-10.61.0.254)" \
        in f.message
    f = only(check(existing, one_node(new), "nad-range-overlap"))
    assert (f.severity, f.field) == ("deny", "spec.config.runtimeConfig.ipRanges[0][0]")
    # Its own ranges are still used.
    assert only(check(nad_obj("c", macvlan(host_local("10.60.0.0/25"), name="c")), one_node(existing),
                      "nad-range-overlap")).severity == "deny"


def test_host_local_literal_ip_ranges_a_pod_may_replace_are_a_warning() -> None:
    # A declared capability Multus fills for a pod (its mac) replaces the whole literal runtimeConfig:
    # host-local then allocates from its own ranges only. Not known for the NAD: a warning, either way round.
    existing = nad_obj("a", literal_ip_ranges("10.62.0.0/24", "a", capabilities={"mac": True}))
    new = nad_obj("b", macvlan(host_local("10.62.0.0/24"), name="b"))
    f = only(check(new, one_node(existing), "nad-range-overlap"))
    assert f.severity == "warn"
    assert "(which host-local uses only when none of the capabilities spec.config declares (mac) gets a value" \
        in f.message
    f = only(check(existing, one_node(new), "nad-range-overlap"))
    assert f.severity == "warn"
    assert f.message.startswith("spec.config.runtimeConfig.ipRanges[0][0] (10.62.0.2-10.62.0.254), which host-local "
                                "uses only when none of the capabilities")
    # A capability Multus never fills (ipRanges itself) replaces nothing.
    certain = nad_obj("c", literal_ip_ranges("10.62.0.0/24", "c", capabilities={"ipRanges": True}))
    assert only(check(certain, one_node(new), "nad-range-overlap")).severity == "deny"
    # Nor is a literal one under a key libcni does not inject into ("RuntimeConfig"): host-local decodes it
    # for every pod, beside the injected one (plugins v1.10.0, test_nad_real_plugins.py).
    misspelled = {("RuntimeConfig" if key == "runtimeConfig" else key): value
                  for key, value in literal_ip_ranges("10.62.0.0/24", "d", capabilities={"mac": True}).items()}
    f = only(check(nad_obj("d", misspelled), one_node(new), "nad-range-overlap"))
    assert (f.severity, f.field) == ("deny", "spec.config.RuntimeConfig.ipRanges[0][0]")


def test_host_local_literal_ip_ranges_it_refuses_or_never_reads_are_not_compared() -> None:
    new = nad_obj("b", macvlan(host_local("10.63.0.0/24"), name="b"))
    # A range set it cannot read: host-local refuses the config and allocates nothing from any of them.
    refused = nad_obj("a", {**macvlan(host_local("10.60.0.0/24"), name="a"),
                            "runtimeConfig": {"ipRanges": [[{"subnet": "10.63.0.0/24"}], [{"subnet": "x"}]]}})
    assert check(new, one_node(refused), "nad-range-overlap") == []
    # whereabouts and static read no ipRanges.
    static_nad = nad_obj("s", {**macvlan(static("10.64.0.5/24"), name="s"),
                               "runtimeConfig": {"ipRanges": [[{"subnet": "10.63.0.0/24"}]]}})
    assert check(new, one_node(static_nad), "nad-range-overlap") == []


def test_a_static_nads_literal_runtime_config_ips_replace_its_addresses_in_the_index() -> None:
    # static takes a literal runtimeConfig.ips last, instead of its addresses, when it reaches it.
    pool = nad_obj("pool", macvlan(whereabouts("10.64.0.0/24")))

    def fixed(**plugin: Any) -> dict[str, Any]:
        return nad_obj("fixed", {**macvlan(static("10.64.0.5/24"), name="fixed"), **plugin,
                                 "runtimeConfig": {"ips": ["10.64.0.9/24"]}})

    f = only(check(fixed(), one_node(pool), "nad-range-overlap"))
    assert (f.severity, f.field) == ("deny", "spec.config.runtimeConfig.ips[0]")
    # A capability a pod may fill replaces the literal runtimeConfig: either set of addresses, for some pods.
    found = check(fixed(capabilities={"mac": True}), one_node(pool), "nad-range-overlap")
    assert sorted((f.severity, f.field) for f in found) == [
        ("warn", "spec.config.ipam.addresses[0]"), ("warn", "spec.config.runtimeConfig.ips[0]")]
    [own] = [f for f in found if f.field == "spec.config.ipam.addresses[0]"]
    assert own.message.startswith(
        "spec.config.ipam.addresses[0] (10.64.0.5), which static uses only when one of the capabilities spec.config "
        "declares (mac) gets a value for the pod, which replaces the NAD's literal runtimeConfig, overlaps")
    # Addresses static refuses give it nothing: its own are judged as before.
    refused = nad_obj("fixed", {**macvlan(static("10.64.0.5/24"), name="fixed"),
                                "runtimeConfig": {"ips": ["10.64.0.9"]}})
    assert [(f.severity, f.field) for f in check(refused, one_node(pool), "nad-range-overlap")] == [
        ("deny", "spec.config.ipam.addresses[0]")]


def test_no_cluster_no_overlap_finding() -> None:
    assert check(nad_obj("b", macvlan(whereabouts("10.1.0.0/24"))), UNKNOWN_CLUSTER, "nad-range-overlap") == []


# --- NADs in use -----------------------------------------------------------------------------------


def test_deleting_a_nad_pods_use_is_denied_naming_them() -> None:
    target = nad_obj("net", macvlan(whereabouts("10.1.0.0/24")), namespace="apps")
    view = one_node(
        target,
        pod("web-1", "apps", networks="net"),
        pod("web-2", "apps", networks='[{"name": "net", "interface": "eth1"}]'),
        pod("other", "tools", networks="apps/net@net9"),
        pod("unrelated", "apps", networks="net2"),
        pod("no-annotations", "apps"),
    )
    f = only(check(target, view, "nad-in-use", operation="DELETE"))
    assert f.severity == "deny"
    assert f.field == "metadata.name"
    assert "NAD apps/net is still used by 3 pod(s) (apps/web-1, apps/web-2, tools/other)" in f.message
    assert "tear their interfaces down and release their addresses" in f.message
    assert "delete those pods first" in f.message


def test_a_default_network_reference_without_namespace_means_kube_system() -> None:
    target = nad_obj("cluster-net", macvlan(whereabouts("10.1.0.0/24")), namespace="kube-system")
    view = one_node(target, pod("p", "apps", default="cluster-net"))
    assert "kube-system/cluster-net is still used by 1 pod(s) (apps/p)" in only(
        check(target, view, "nad-in-use", operation="DELETE")).message
    same_name_elsewhere = nad_obj("cluster-net", macvlan(whereabouts("10.1.0.0/24")), namespace="apps")
    assert check(same_name_elsewhere, view, "nad-in-use", operation="DELETE") == []


def test_a_default_network_reference_without_namespace_follows_the_policys_multus_namespace() -> None:
    """The policy (a ConfigMap) may change multusNamespace after the pods were stored: the same store
    answers for the policy in force, each pod counted once however it names the NAD."""
    target = nad_obj("cluster-net", macvlan(whereabouts("10.1.0.0/24")), namespace="multus")
    view = one_node(target, pod("p", "apps", default="cluster-net"),
                    pod("both", "apps", default="cluster-net", networks="multus/cluster-net"))
    moved = Policy.from_text("multusNamespace: multus\n", set())
    assert "multus/cluster-net is still used by 2 pod(s) (apps/both, apps/p)" in only(
        check(target, view, "nad-in-use", operation="DELETE", policy=moved)).message
    assert "used by 1 pod(s) (apps/both)" in only(check(target, view, "nad-in-use", operation="DELETE")).message
    in_kube_system = nad_obj("cluster-net", macvlan(whereabouts("10.1.0.0/24")), namespace="kube-system")
    assert check(in_kube_system, view, "nad-in-use", operation="DELETE", policy=moved) == []
    changed = nad_obj("cluster-net", macvlan(whereabouts("10.1.0.0/23")), namespace="multus")
    assert "while 2 pod(s) (apps/both, apps/p)" in only(
        check(changed, view, "nad-in-use-changed", operation="UPDATE", old=target, policy=moved)).message


def finished(obj: dict[str, Any], phase: str) -> dict[str, Any]:
    return {**obj, "status": {"phase": phase}}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_do_not_keep_a_nad_from_being_deleted(phase: str) -> None:
    """A Job's pod, an evicted one, one failed by a node's graceful shutdown: the kubelet tore its
    sandbox down (CNI DEL) when it finished. The live view does not even list them (RUNNING_PODS); a
    state file of `kubectl get pods -o yaml` has them with their phase."""
    target = nad_obj("net", macvlan(whereabouts("10.1.0.0/24")))
    view = one_node(target, finished(pod("job-1", networks="net"), phase), pod("web", networks="net"))
    assert "used by 1 pod(s) (default/web)" in only(check(target, view, "nad-in-use", operation="DELETE")).message
    view.put(finished(pod("web", networks="net"), phase))  # the status write that ends it
    assert check(target, view, "nad-in-use", operation="DELETE") == []
    assert view.pods_using("default", "net", first=5, multus_namespace="kube-system") == (0, [])


def test_deleting_a_default_network_of_the_policy_is_denied() -> None:
    """Multus looks every defaultNetworks entry up as a NAD in its multusNamespace at each ADD of a pod
    outside systemNamespaces, and fails the pod when it is gone ("failed to get defaultNetworks")."""
    target = nad_obj("sidecar-net", macvlan(whereabouts("10.1.0.0/24")), namespace="kube-system")
    policy = Policy.from_text("defaultNetworks: [sidecar-net]\nsystemNamespaces: [kube-system, infra]\n", set())
    f = only(check(target, one_node(target), "nad-in-use", operation="DELETE", policy=policy))
    assert f.severity == "deny"
    assert f.field == "metadata.name"
    assert ("NAD kube-system/sidecar-net is in defaultNetworks (the policy's, which repeat Multus's config)"
            in f.message)
    assert "every new pod outside systemNamespaces (kube-system, infra) would fail to start" in f.message
    # Another namespace's NAD of that name is not the default network; nor is any NAD without the policy.
    elsewhere = nad_obj("sidecar-net", macvlan(whereabouts("10.1.0.0/24")), namespace="apps")
    assert check(elsewhere, one_node(elsewhere), "nad-in-use", operation="DELETE", policy=policy) == []
    assert check(target, one_node(target), "nad-in-use", operation="DELETE") == []
    moved = Policy.from_text("defaultNetworks: [sidecar-net]\nmultusNamespace: multus\n", set())
    assert check(target, one_node(target), "nad-in-use", operation="DELETE", policy=moved) == []
    # Without cluster state too: it is the policy that names it.
    assert only(check(target, UNKNOWN_CLUSTER, "nad-in-use", operation="DELETE", policy=policy)).severity == "deny"


def profile(name: str, namespace: str, *networks: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"networks": list(networks)}}


def test_deleting_a_nad_a_network_profile_names_warns_naming_the_profiles() -> None:
    target = nad_obj("storage", macvlan(whereabouts("10.1.0.0/24")), namespace="apps")
    view = one_node(target,
                    profile("db", "apps", {"name": "storage", "interface": "stor0"}),
                    profile("cache", "tools", {"name": "storage", "namespace": "apps"}),
                    profile("other", "tools", {"name": "storage"}),  # tools/storage: another NAD
                    profile("broken", "apps", {"interface": "x"}))
    f = only(check(target, view, "nad-in-use", operation="DELETE"))
    assert f.severity == "warn"
    assert f.field == "metadata.name"
    assert "NAD apps/storage is named by NetworkProfile(s) apps/db, tools/cache: pods created with them" in f.message
    view.put(profile("db", "apps", {"name": "elsewhere"}))
    view.remove(profile("cache", "tools"))
    assert check(target, view, "nad-in-use", operation="DELETE") == []


def test_deleting_a_nad_nobody_uses_is_allowed_and_pod_changes_are_followed() -> None:
    target = nad_obj("net", macvlan(whereabouts("10.1.0.0/24")))
    view = one_node(target, *(pod(f"p{i}", networks="net") for i in range(7)))
    f = only(check(target, view, "nad-in-use", operation="DELETE"))
    assert "used by 7 pod(s) (default/p0, default/p1, default/p2, default/p3, default/p4 and 2 more)" in f.message
    for i in range(6):
        view.remove(pod(f"p{i}"))
    view.put(pod("p6", networks="other"))  # the annotation changed: no longer a user
    assert view.pods_using("default", "net", first=5, multus_namespace="kube-system") == (0, [])
    assert check(target, view, "nad-in-use", operation="DELETE") == []


def test_delete_through_the_admission_handler_reads_old_object() -> None:
    target = nad_obj("net", macvlan(whereabouts("10.1.0.0/24")))
    view = one_node(target, pod("p", networks="net"))
    request = AdmissionRequest.model_validate({
        "uid": "1", "kind": {"group": "k8s.cni.cncf.io", "version": "v1", "kind": NAD},
        "operation": "DELETE", "name": "net", "namespace": "default", "oldObject": target,
    })
    response = validate(request, AdmissionContext(view=view))
    assert not response.allowed
    assert "[nad-in-use]" in response.message


def test_changing_the_config_of_a_nad_in_use_warns() -> None:
    old = nad_obj("net", macvlan(whereabouts("10.1.0.0/24")))
    new = nad_obj("net", macvlan(whereabouts("10.1.0.0/23")))
    view = one_node(old, pod("p", networks="net"))
    f = only(check(new, view, "nad-in-use-changed", operation="UPDATE", old=old))
    assert f.severity == "warn"
    assert f.field == "spec.config"
    assert "spec.config changed while 1 pod(s) (default/p) use this NAD" in f.message
    # Reformatting the JSON or changing labels is not a change of config.
    reformatted = {**old, "spec": {"config": json.dumps(json.loads(old["spec"]["config"]), indent=2)}}
    assert check(reformatted, view, "nad-in-use-changed", operation="UPDATE", old=old) == []
    unused = one_node(old)
    assert check(new, unused, "nad-in-use-changed", operation="UPDATE", old=old) == []


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_in_use_rule_only_runs_on_delete(operation: str) -> None:
    target = nad_obj("net", macvlan(whereabouts("10.1.0.0/24")))
    view = one_node(target, pod("p", networks="net"))
    assert check(target, view, "nad-in-use", operation=operation, old=target) == []


def test_a_new_policy_object_is_applied_at_once_after_another() -> None:
    """evaluate remembers which rules a policy turns on; a different policy must not get that answer."""
    from webhook.rules import Policy, Severity, Subject, evaluate

    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps",
                                                         "annotations": {"k8s.v1.cni.cncf.io/networks": "a,,b"}}}
    on, off = Policy(), Policy(severities={"pod-networks-syntax": Severity.OFF})
    for _ in range(2):
        assert "pod-networks-syntax" in {f.rule for f in evaluate(Subject(obj, "Pod"), on)}
        assert "pod-networks-syntax" not in {f.rule for f in evaluate(Subject(obj, "Pod"), off)}


# --- pod rules on an UPDATE of the selection annotations ---------------------------------------------


def test_a_pending_pods_networks_changed_to_a_missing_nad_are_refused_a_placed_pods_are_not() -> None:
    view = one_node(nad_obj("net", macvlan(whereabouts("10.20.0.0/24"))))

    def judged(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
        subject = Subject(new, "Pod", operation="UPDATE", old_object=old, view=view)
        return [(f.rule, f.severity.value) for f in evaluate(subject, Policy()) if f.rule.startswith("pod-networks-")]

    # Multus has not read the annotation yet (no node): the new value is what the pod starts with. (These
    # pods never went through /mutate: they have no readiness gate, which another rule says.)
    assert judged(pod("p", networks="net"), pod("p", networks="nowhere")) == [
        ("pod-networks-nad-exists", "deny"), ("pod-networks-gate-outgrown", "warn")]
    # On a node already: the change does nothing, which another rule says; no NAD is looked up.
    placed_old, placed_new = pod("p", networks="net"), pod("p", networks="nowhere")
    for p in (placed_old, placed_new):
        p["spec"] = {"nodeName": "n1"}
    assert judged(placed_old, placed_new) == [("pod-networks-changed-after-start", "warn")]
    # Also when the new object omits spec.nodeName, as the manifest check judges as the UPDATE of the
    # stored pod does (the apiserver keeps it through an UPDATE).
    assert judged(placed_old, pod("p", networks="nowhere")) == [("pod-networks-changed-after-start", "warn")]
    # An update that leaves the annotation as it was is not refused for a NAD deleted since (ratchet).
    assert judged(pod("p", networks="nowhere"), pod("p", networks="nowhere")) == [("pod-networks-nad-exists", "warn")]
