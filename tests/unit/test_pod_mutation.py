"""Pod mutation: profiles into the networks annotation, readiness affinity; never loses a user key."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.mutation import mutate_pod
from webhook.cluster.static import StaticClusterView
from webhook.multus.selection import NETWORKS_ANNOTATION, parse_networks
from webhook.names import APPLIED_PROFILE_ANNOTATION
from webhook.objects import annotations_size
from webhook.rules import Policy, Severity, Subject, evaluate
from webhook.rules.gate import with_profile
from webhook.rules.policy import PolicyError

MACVLAN = json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
                      "ipam": {"type": "whereabouts", "range": "10.10.0.0/24"}})
BRIDGE = json.dumps({"cniVersion": "1.0.0", "name": "b", "plugins": [
    {"type": "bridge", "bridge": "br1", "ipam": {"type": "static", "addresses": [{"address": "10.20.0.5/24"}]}},
    {"type": "tuning"}]})


def nad(name: str, config: str, namespace: str = "apps") -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": config}}


def profile(name: str, networks: list[dict[str, Any]], namespace: str = "apps") -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"networks": networks}}


def node(name: str, ready: bool) -> dict[str, Any]:
    labels = {"multus-webhook.io/multus-ready": "true"} if ready else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def view(*extra: dict[str, Any], ready: bool = True) -> StaticClusterView:
    return StaticClusterView([
        nad("macvlan", MACVLAN), nad("bridge", BRIDGE),
        profile("data", [{"name": "macvlan"}]),
        profile("both", [{"name": "macvlan", "interface": "data0"}, {"name": "bridge", "ips": ["10.20.0.7/24"]}]),
        node("n1", ready), *extra,
    ])


def pod(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
        spec: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p", "namespace": "apps"}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": spec if spec is not None else {"containers": [{"name": "c", "image": "busybox"}]}}


def mutated(obj: dict[str, Any], v: StaticClusterView, policy: Policy | None = None) -> dict[str, Any]:
    result = mutate_pod(obj, "apps", v, policy or Policy())
    out: dict[str, Any] = jsonpatch.apply_patch(obj, result.ops)
    return out




def test_profile_label_becomes_the_networks_annotation_in_short_form() -> None:
    out = mutated(pod(labels={"multus-webhook.io/network-profile": "data", "app": "x"}), view())
    assert out["metadata"]["annotations"] == {"k8s.v1.cni.cncf.io/networks": "macvlan",
                                              "multus-webhook.io/applied-profile": "data", MARKER: "required"}
    assert out["metadata"]["labels"] == {"multus-webhook.io/network-profile": "data", "app": "x"}


def test_profile_with_options_becomes_the_json_form_and_keeps_user_elements() -> None:
    user = pod(labels={"multus-webhook.io/network-profile": "both"},
               annotations={"k8s.v1.cni.cncf.io/networks": "other/net@ext0", "team": "blue"})
    out = mutated(user, view())
    annotations = out["metadata"]["annotations"]
    assert annotations["team"] == "blue"
    elements = json.loads(annotations["k8s.v1.cni.cncf.io/networks"])
    assert elements[0] == {"name": "net", "namespace": "other", "interface": "ext0"}
    assert [e["name"] for e in elements[1:]] == ["macvlan", "bridge"]
    assert elements[2]["ips"] == ["10.20.0.7/24"]


AGENT_LABELS = {"app.kubernetes.io/name": "multus-webhook", "app.kubernetes.io/component": "agent"}
ZONE_A = {"key": "zone", "operator": "In", "values": ["a"]}


def gate(obj: dict[str, Any]) -> Any:
    """The readiness term: the last required pod affinity term."""
    return obj["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][-1]


def test_the_gate_is_a_pod_affinity_to_the_ready_agent_that_has_every_binary_the_nads_need() -> None:
    out = mutated(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan,bridge"}), view())
    assert out["spec"]["affinity"] == {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {
            **AGENT_LABELS, "multus-webhook.io/multus-ready": "true",
            **{f"cni.multus-webhook.io/{b}": "true"
               for b in ["bridge", "macvlan", "static", "tuning", "whereabouts"]}}},
        "namespaces": ["multus-webhook"], "topologyKey": "kubernetes.io/hostname"}]}}


def test_the_gate_points_at_the_namespace_the_webhook_runs_in() -> None:
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"})
    out = jsonpatch.apply_patch(user, mutate_pod(user, "apps", view(), Policy(), agent_namespace="netops").ops)
    assert gate(out)["namespaces"] == ["netops"]


def test_the_users_affinity_is_kept_whole_and_the_gate_added_to_its_pod_affinity() -> None:
    mine = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "topology.kubernetes.io/zone"}
    affinity = {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [copy.deepcopy(mine)]},
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": copy.deepcopy(mine)}]},
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [ZONE_A]}, {}]}}}
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"},
               spec={"containers": [], "affinity": copy.deepcopy(affinity)})
    result = mutate_pod(user, "apps", view(), Policy())
    out = jsonpatch.apply_patch(user, result.ops)
    after = out["spec"]["affinity"]
    assert {k: v for k, v in after.items() if k != "podAffinity"} == \
        {k: v for k, v in affinity.items() if k != "podAffinity"}
    assert after["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == \
        affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert after["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [gate(out)]
    assert gate(out)["labelSelector"]["matchLabels"]["multus-webhook.io/multus-ready"] == "true"
    assert result.warnings == []
    assert mutate_pod(out, "apps", view(), Policy()).ops == []
    assert user["spec"]["affinity"] == affinity  # the review's object is not written to


READY_REQUIREMENT = {"key": "multus-webhook.io/multus-ready", "operator": "In", "values": ["true"]}
MARKER = "multus-webhook.io/readiness-gate"


def marked(value: str) -> list[dict[str, Any]]:
    """The patch that only marks a pod (which has annotations of its own)."""
    return [{"op": "add", "path": "/metadata/annotations/multus-webhook.io~1readiness-gate", "value": value}]


def affinity_ops(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [op for op in ops if op["path"] == "/spec/affinity"]


def test_a_pod_with_required_pod_affinity_of_its_own_is_gated_by_node_affinity_with_a_warning() -> None:
    """The scheduler needs one pod that matches all of a pod's required pod affinity terms: the agent
    pod never matches the user's, so the gate as one more term would keep the pod Pending forever."""
    mine = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}, spec={"containers": [], "affinity": {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [copy.deepcopy(mine)]}}})
    result = mutate_pod(user, "apps", view(), Policy())
    out = jsonpatch.apply_patch(user, result.ops)
    assert out["spec"]["affinity"]["podAffinity"] == {"requiredDuringSchedulingIgnoredDuringExecution": [mine]}
    [term] = out["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert term["matchExpressions"] == [READY_REQUIREMENT] + [
        {"key": f"cni.multus-webhook.io/{b}", "operator": "In", "values": ["true"]} for b in ["macvlan", "whereabouts"]]
    assert "spec.affinity.podAffinity has required terms of its own" in result.warnings[0]
    assert "reason NodeAffinity" in result.warnings[0]
    assert mutate_pod(out, "apps", view(), Policy()).ops == []


@pytest.mark.parametrize("empty", [{}, {"matchExpressions": []}, {"matchExpressions": [], "matchFields": []}])
def test_the_node_affinity_gate_leaves_an_empty_term_empty(empty: dict[str, Any]) -> None:
    """An empty nodeSelectorTerm matches no node. With the requirements in it, it would match every ready
    node, ORed with the user's zone term: the pod could land outside zone a. Terms that select something
    each get the requirements (terms are ORed); a required node affinity with no term at all is left for
    the apiserver, which validates after the mutating webhooks, to refuse."""
    own_pod_affinity = {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}
    spec = {"containers": [], "affinity": {"podAffinity": own_pod_affinity, "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [ZONE_A]}, {"matchFields": [{"key": "metadata.name", "operator": "In",
                                                             "values": ["n1"]}]}, copy.deepcopy(empty)]}}}}
    out = mutated(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}, spec=spec), view())
    terms = out["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0] == ZONE_A
    assert READY_REQUIREMENT in terms[0]["matchExpressions"]
    assert READY_REQUIREMENT in terms[1]["matchExpressions"]
    assert terms[2] == empty
    assert mutate_pod(out, "apps", view(), Policy()).ops == []
    termless = copy.deepcopy(spec)
    termless["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": []}
    assert affinity_ops(mutate_pod(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}, spec=termless),
                                   "apps", view(), Policy()).ops) == []


@pytest.mark.parametrize("node_affinity", [
    {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
    {"requiredDuringSchedulingIgnoredDuringExecution": {}},
    {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}},
    {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [ZONE_A]}}]},
])
def test_node_affinity_is_left_as_written(node_affinity: dict[str, Any]) -> None:
    """Also when the apiserver will refuse it (no terms) or it matches no node (an empty term): the
    mutation neither widens nor repairs it."""
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"},
               spec={"containers": [], "affinity": {"nodeAffinity": copy.deepcopy(node_affinity)}})
    out = mutated(user, view())
    assert out["spec"]["affinity"]["nodeAffinity"] == node_affinity
    assert gate(out)["topologyKey"] == "kubernetes.io/hostname"


@pytest.mark.parametrize("affinity", [
    "not an object", {"podAffinity": "not an object"},
    {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"not": "a list"}}},
])
def test_an_affinity_the_apiserver_will_refuse_is_left_for_it_to_refuse(affinity: Any) -> None:
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}, spec={"containers": [], "affinity": affinity})
    assert affinity_ops(mutate_pod(user, "apps", view(), Policy()).ops) == []


def test_pod_without_networks_is_not_changed() -> None:
    assert mutate_pod(pod(labels={"app": "x"}), "apps", view(), Policy()).ops == []


@pytest.mark.parametrize("value", ["", "[]", " [ ] "])
def test_a_networks_annotation_that_attaches_nothing_gets_no_gate(value: str) -> None:
    assert mutate_pod(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), "apps", view(), Policy()).ops == []


@pytest.mark.parametrize("value", ["a,,b", " "])
def test_a_networks_annotation_that_cannot_be_read_is_gated_as_multus_will_parse_it(value: str) -> None:
    result = mutate_pod(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), "apps", view(), Policy())
    assert [op["path"] for op in result.ops] == ["/metadata/annotations/multus-webhook.io~1readiness-gate",
                                                 "/spec/affinity"]


def test_pod_with_node_name_gets_no_affinity_but_a_warning() -> None:
    result = mutate_pod(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"},
                            spec={"nodeName": "n1", "containers": []}), "apps", view(), Policy())
    assert result.ops == marked("nodeName-set")
    assert "spec.nodeName is set" in result.warnings[0]


def test_warning_when_no_node_is_ready() -> None:
    result = mutate_pod(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}), "apps", view(ready=False),
                        Policy())
    assert any("no node is labelled multus-webhook.io/multus-ready=true" in w for w in result.warnings)


def test_one_ready_node_among_many_is_enough_and_a_label_change_is_seen() -> None:
    cluster = view(*(node(f"m{i}", False) for i in range(50)), ready=False)
    asks = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"})
    assert any("no node is labelled" in w for w in mutate_pod(asks, "apps", cluster, Policy()).warnings)
    cluster.put(node("m49", True))
    assert not any("no node is labelled" in w for w in mutate_pod(asks, "apps", cluster, Policy()).warnings)
    cluster.put(node("m49", False))
    assert any("no node is labelled" in w for w in mutate_pod(asks, "apps", cluster, Policy()).warnings)


def reporting(name: str, binaries: list[str]) -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
            "metadata": {"name": name, "namespace": "multus-webhook"},
            "status": {"nodeName": name, "multusReady": True, "cniBinaries": binaries}}


SRIOV = json.dumps({"cniVersion": "1.0.0", "type": "sriov", "vlan": 100,
                    "ipam": {"type": "whereabouts", "range": "10.56.217.0/24"}})


def gate_warnings(cluster: StaticClusterView, network: str = "sriov", policy: Policy | None = None) -> list[str]:
    asks = pod(annotations={"k8s.v1.cni.cncf.io/networks": network})
    return [w for w in mutate_pod(asks, "apps", cluster, policy or Policy()).warnings if "has the CNI" in w
            or "has all of the CNI" in w]


def test_warning_when_no_ready_node_has_a_binary_the_gate_requires() -> None:
    """An SR-IOV NAD applied before any agent reported (nad-cni-binaries said nothing), then the nodes
    report without sriov: the gate keeps the pod Pending, and the scheduler says only that no node
    matched its pod affinity."""
    cluster = view(nad("sriov", SRIOV), reporting("n1", ["macvlan", "whereabouts"]), node("n2", False),
                   reporting("n2", ["sriov", "whereabouts"]))
    assert gate_warnings(cluster) == [
        "no node labelled multus-webhook.io/multus-ready=true has the CNI binary sriov, which the pod's networks "
        "need: its readiness gate requires the node label(s) cni.multus-webhook.io/sriov as well, so the pod stays "
        "Pending until a Multus-ready node has them; install it into the CNI bin directory (/opt/cni/bin) of a "
        "Multus-ready node (see the MultusNodeState objects in namespace multus-webhook)"]
    # Each binary on some ready node, but none with both.
    cluster.put(node("n2", True))
    cluster.put(reporting("n2", ["sriov"]))
    [together] = gate_warnings(cluster)
    assert "has all of the CNI binaries sriov, whereabouts at once" in together
    assert "install them into the CNI bin directory (/opt/cni/bin) of one Multus-ready node" in together
    assert "node label(s) cni.multus-webhook.io/sriov, cni.multus-webhook.io/whereabouts as well" in together
    cluster.put(reporting("n2", ["sriov", "whereabouts"]))
    assert gate_warnings(cluster) == []
    # Without the gate, or without any inventory, nothing is said.
    cluster.put(reporting("n2", ["macvlan"]))
    assert gate_warnings(cluster, policy=Policy(readiness_affinity=False)) == []
    assert len(gate_warnings(cluster)) == 1
    assert gate_warnings(view(nad("sriov", SRIOV))) == []
    # The reference plugins on every ready node: nothing either.
    assert gate_warnings(cluster, "macvlan") == []


DHCP = json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}})


def test_the_warning_names_the_dhcp_daemon_as_a_daemon_to_run() -> None:
    """The gate of a pod on a dhcp NAD requires the daemon's label as a binary's: where no ready node's
    daemon answers, the fix is to run `dhcp daemon`, not to copy a file into /opt/cni/bin."""
    down = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
            "metadata": {"name": "n1", "namespace": "multus-webhook"},
            "status": {"nodeName": "n1", "multusReady": True, "cniBinaries": ["macvlan", "dhcp"],
                       "dhcpDaemon": False}}
    cluster = view(nad("dh", DHCP), down)
    assert gate_warnings(cluster, "dh") == [
        "no node labelled multus-webhook.io/multus-ready=true has the CNI dhcp daemon answering on "
        "/run/cni/dhcp.sock, which the pod's networks need: its readiness gate requires the node label(s) "
        "cni.multus-webhook.io/dhcp-daemon as well, so the pod stays Pending until a Multus-ready node has them; "
        "run the CNI dhcp daemon (`/opt/cni/bin/dhcp daemon`, listening on /run/cni/dhcp.sock) on a Multus-ready "
        "node (see the MultusNodeState objects in namespace multus-webhook)"]
    # With the plugin missing too, each is named with its own remedy.
    cluster.put({**down, "status": {**down["status"], "cniBinaries": ["macvlan"]}})
    [both] = gate_warnings(cluster, "dh")
    assert "has the CNI binary dhcp and the CNI dhcp daemon answering on /run/cni/dhcp.sock, which" in both
    assert ("install it into the CNI bin directory (/opt/cni/bin) of a Multus-ready node and run the CNI dhcp "
            "daemon (`/opt/cni/bin/dhcp daemon`, listening on /run/cni/dhcp.sock) there") in both


@pytest.mark.parametrize("ready_count", [1, 60])
def test_a_ready_node_with_the_binaries_is_found_among_many(ready_count: int) -> None:
    """The ready nodes or the holders of the rarest binary are walked, whichever are fewer."""
    nodes = [f"m{i:02}" for i in range(60)]
    cluster = view(nad("sriov", SRIOV), *(node(n, i < ready_count) for i, n in enumerate(nodes)),
                   *(reporting(n, ["whereabouts", *(["sriov"] if n in ("m00", "m30") else [])]) for n in nodes))
    assert gate_warnings(cluster) == []
    cluster.put(reporting("m00", ["whereabouts"]))
    assert len(gate_warnings(cluster)) == (1 if ready_count == 1 else 0)
    cluster.put(reporting("m30", ["whereabouts"]))
    assert len(gate_warnings(cluster)) == 1


def test_readiness_affinity_can_be_turned_off_in_the_policy() -> None:
    policy = Policy(readiness_affinity=False)
    assert mutate_pod(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}), "apps", view(), policy).ops == \
        marked("off-by-policy")


def test_mutation_is_idempotent() -> None:
    once = mutated(pod(labels={"multus-webhook.io/network-profile": "both"}), view())
    assert mutate_pod(once, "apps", view(), Policy()).ops == []


def test_hand_written_applied_profile_annotation_is_kept_with_a_warning() -> None:
    user = pod(labels={"multus-webhook.io/network-profile": "data"},
               annotations={"multus-webhook.io/applied-profile": "mine"})
    result = mutate_pod(user, "apps", view(), Policy())
    out = jsonpatch.apply_patch(user, result.ops)
    assert out["metadata"]["annotations"]["multus-webhook.io/applied-profile"] == "mine"
    assert "written by hand" in result.warnings[0]


def findings(obj: dict[str, Any], v: StaticClusterView, policy: Policy | None = None) -> list[tuple[str, str, str]]:
    return [(f.rule, str(f.severity), f.message) for f in
            evaluate(Subject(obj, "Pod", view=v, default_namespace="apps"), policy or Policy())
            if f.rule.startswith(("pod-network-profile", "pod-networks-nad", "pod-networks-cap", "pod-networks-static",
                                  "pod-networks-namespace", "pod-networks-ips", "pod-networks-cni-args",
                                  "pod-networks-port", "pod-networks-device"))]


def test_missing_profile_is_refused() -> None:
    [(rule, severity, message)] = findings(pod(labels={"multus-webhook.io/network-profile": "nope"}), view())
    assert (rule, severity) == ("pod-network-profile", "deny")
    assert "NetworkProfile 'nope', which does not exist in namespace apps" in message


def test_missing_profile_can_be_a_warning_by_policy() -> None:
    policy = Policy(severities={"pod-network-profile": Severity.WARN})
    [(_, severity, _)] = findings(pod(labels={"multus-webhook.io/network-profile": "nope"}), view(), policy)
    assert severity == "warn"


def test_profile_interface_clash_is_refused_naming_both() -> None:
    user = pod(labels={"multus-webhook.io/network-profile": "both"},
               annotations={"k8s.v1.cni.cncf.io/networks": "bridge@data0"})
    [(rule, severity, message)] = findings(user, view())
    assert (rule, severity) == ("pod-network-profile", "deny")
    assert "data0" in message


def test_profile_adding_a_second_default_route_is_refused_naming_it_and_not_applied() -> None:
    v = view(profile("egress", [{"name": "bridge", "default-route": ["10.0.0.2"]}]))
    for own in ({"k8s.v1.cni.cncf.io/networks": '[{"name": "macvlan", "default-route": ["10.0.0.1"]}]'},
                        {"v1.multus-cni.io/default-network": '[{"name": "macvlan", "default-route": ["10.0.0.1"]}]'}):
        user = pod(labels={"multus-webhook.io/network-profile": "egress"}, annotations=own)
        assert [op for op in mutate_pod(user, "apps", v, Policy()).ops if "annotations" in op["path"]] == marked(
            "required")
        [(severity, message)] = [(s, m) for r, s, m in findings(user, v) if r == "pod-network-profile"]
        assert severity == "deny"
        assert "NetworkProfile egress spec.networks[0].default-route[0] (10.0.0.2)" in message


def test_missing_nad_is_refused_with_the_namespace_meant() -> None:
    [(rule, severity, message)] = findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan,gone"}), view())
    assert (rule, severity) == ("pod-networks-nad-exists", "deny")
    assert "apps/gone (no namespace given, so apps is meant), which does not exist" in message


def test_existing_nads_and_profiles_pass() -> None:
    assert findings(pod(labels={"multus-webhook.io/network-profile": "both"}), view()) == []
    assert findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}), view()) == []


def test_cluster_rules_are_silent_without_cluster_state() -> None:
    obj = pod(labels={"multus-webhook.io/network-profile": "nope"},
              annotations={"k8s.v1.cni.cncf.io/networks": "gone"})
    assert [f for f in evaluate(Subject(obj, "Pod"), Policy()) if f.rule in
            {"pod-network-profile", "pod-networks-nad-exists"}] == []


def macvlan_with(ipam: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": ipam, **extra})


def test_requests_that_no_plugin_takes_warn() -> None:
    # dhcp reads no IP= from CNI_ARGS, ipvlan no MAC=, and neither declares the capability.
    v = view(nad("dhcp", macvlan_with({"type": "dhcp"})),
             nad("ipvlan", json.dumps({"cniVersion": "1.0.0", "type": "ipvlan", "master": "eth0",
                                       "ipam": {"type": "static", "addresses": [{"address": "10.30.0.5/24"}]}})))
    value = json.dumps([{"name": "dhcp", "ips": ["10.10.0.9/24"]}, {"name": "ipvlan", "mac": "02:00:00:00:00:01"}])
    [(rule, severity, ips), (_, _, mac)] = findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), v)
    assert (rule, severity) == ("pod-networks-capabilities", "warn")
    assert ('[0] requests ips, but no plugin of NAD apps/dhcp declares "capabilities": {"ips": true} nor reads '
            "it from CNI_ARGS") in ips
    assert '[1] requests mac, but no plugin of NAD apps/ipvlan declares "capabilities": {"mac": true}' in mac


def test_requests_to_plugins_not_known_here_may_be_ignored() -> None:
    """Multus passes mac and ips in CNI_ARGS too; which third-party plugins read them there (calico-ipam
    is said to read IP=) is not known here. bandwidth reaches no plugin through CNI_ARGS: ignored."""
    v = view(nad("sriov", json.dumps({"cniVersion": "1.0.0", "type": "sriov", "vlan": 100,
                                      "ipam": {"type": "calico-ipam"}})),
             nad("kovn", json.dumps({"cniVersion": "1.0.0", "type": "kube-ovn", "ipam": {"type": "kube-ovn"}})))
    value = json.dumps([{"name": "sriov", "ips": ["10.10.0.9/24"], "bandwidth": {"ingressRate": 1000}},
                        {"name": "kovn", "mac": "02:00:00:00:00:01"}])
    found = only("pod-networks-capabilities", findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), v))
    assert [m.split(" requests ")[1].split(",")[0] for _, m in found] == ["ips", "bandwidth", "mac"]
    (_, ips), (_, bandwidth), (_, mac) = found
    assert ips.endswith('no plugin of NAD apps/sriov declares "capabilities": {"ips": true} nor reads it from '
                        "CNI_ARGS, unless its calico-ipam or sriov plugin does (not a reference plugin: not known "
                        "here): it may be ignored")
    assert bandwidth.endswith("nor reads it from CNI_ARGS: it will be ignored")
    assert mac.endswith("unless its kube-ovn plugin does (not a reference plugin: not known here): it may be ignored")


def test_mac_and_ips_reach_the_plugins_that_read_cni_args_without_capabilities() -> None:
    # Multus puts MAC= and IP= into CNI_ARGS whatever the capabilities: macvlan and tuning read MAC;
    # static reads the IP list, host-local one IP and whereabouts (the macvlan NAD's IPAM) a list.
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"})))
    value = json.dumps([{"name": "macvlan", "mac": "02:00:00:00:00:01", "ips": ["10.10.0.7/24", "10.10.0.8/24"]},
                        {"name": "bridge", "mac": "02:00:00:00:00:02", "ips": ["10.20.0.7/24", "10.20.0.8/24"]},
                        {"name": "hostlocal", "ips": ["10.30.0.7"]}])
    found = findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), v)
    assert [f for f in found if f[0] in {"pod-networks-capabilities", "pod-networks-ips-ipam"}] == []


@pytest.mark.parametrize("capabilities", [{}, {"capabilities": {"ips": True}}])
def test_two_ips_for_host_local_are_refused(capabilities: dict[str, Any]) -> None:
    # host-local parses IP= as one address, and Multus passes IP=a,b whether or not ips is declared.
    ranges = [[{"subnet": "10.30.0.0/24"}], [{"subnet": "fd00:30::/64"}]]
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "ranges": ranges}, **capabilities)))
    value = json.dumps([{"name": "hostlocal", "ips": ["10.30.0.7/24", "fd00:30::7/64"]}])
    [(rule, severity, message)] = findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), v)
    assert (rule, severity) == ("pod-networks-ips-ipam", "deny")
    assert ('networks"][0] requests 2 addresses, which Multus passes in CNI_ARGS as IP=10.30.0.7/24,fd00:30::7/64, '
            "but the host-local IPAM of NAD apps/hostlocal reads one address there") in message


def test_a_bare_address_for_static_or_whereabouts_is_refused() -> None:
    v = view(nad("static", macvlan_with({"type": "static"}, capabilities={"ips": True})))
    value = json.dumps([{"name": "static", "ips": ["10.30.0.7"]},
                        {"name": "macvlan", "ips": ["10.10.0.6/24", "10.10.0.7"]}])
    found = [f for f in findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), v) if f[1] == "deny"]
    assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-ips-ipam", "deny")] * 2
    assert ('networks"][0].ips[0] 10.30.0.7 has no prefix length, but the static IPAM of NAD apps/static reads '
            "the ips Multus passes in CNI_ARGS as CIDRs") in found[0][2]
    assert ('networks"][1].ips[1] 10.10.0.7 has no prefix length, but the whereabouts IPAM of NAD '
            "apps/macvlan") in found[1][2]


def test_requested_capability_that_is_declared_passes() -> None:
    config = json.loads(MACVLAN)
    config["capabilities"] = {"mac": True}
    v = view(nad("macmac", json.dumps(config)))
    value = json.dumps([{"name": "macmac", "mac": "02:00:00:00:00:01"}])
    assert findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), v) == []


def networks(*elements: dict[str, Any]) -> dict[str, Any]:
    return pod(annotations={"k8s.v1.cni.cncf.io/networks": json.dumps(list(elements))})


def only(rule: str, found: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    return [(severity, message) for name, severity, message in found if name == rule]


def test_an_ip_outside_host_locals_ranges_is_refused_as_host_local_fails_the_add() -> None:
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"})))
    [(severity, message)] = only("pod-networks-ips-host-local",
                                 findings(networks({"name": "hostlocal", "ips": ["10.99.0.1/24"]}), v))
    assert severity == "deny"
    assert message == ('metadata.annotations["k8s.v1.cni.cncf.io/networks"][0].ips[0] 10.99.0.1 lies in none of '
                       "host-local's ranges (spec.config.ipam: 10.30.0.1-10.30.0.254): host-local gives a requested "
                       "address only from its ranges and fails the pod's ADD on every try, so the pod never starts "
                       '("failed to allocate all requested IPs"); request an address inside them (Multus passes it in '
                       "CNI_ARGS to spec.config, the plugin with the host-local IPAM of NAD apps/hostlocal)")
    # host-local never gives out the gateway (10.30.0.1 by default).
    [(_, gateway)] = only("pod-networks-ips-host-local",
                          findings(networks({"name": "hostlocal", "ips": ["10.30.0.1"]}), v))
    assert "is the gateway of spec.config.ipam" in gateway
    assert findings(networks({"name": "hostlocal", "ips": ["10.30.0.9"]}), v) == []
    # Multus never passes ipRanges (its RuntimeConfig has no such field): declaring the capability
    # gives host-local no other range, and the pod fails as surely.
    runtime = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"},
                                                 capabilities={"ipRanges": True})))
    [(severity, _)] = only("pod-networks-ips-host-local",
                           findings(networks({"name": "hostlocal", "ips": ["10.99.0.1/24"]}), runtime))
    assert severity == "deny"


LITERAL_RANGES = {"ipRanges": [[{"subnet": "10.79.0.0/24"}]]}


def test_a_nads_literal_runtime_config_ip_ranges_reach_host_local_unless_a_capability_is_filled() -> None:
    # libcni replaces a plugin's runtimeConfig only when a capability it declares gets a value from
    # Multus; otherwise host-local reads the NAD's literal runtimeConfig.ipRanges ahead of its ranges.
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                           runtimeConfig=LITERAL_RANGES)))
    assert only("pod-networks-ips-host-local", findings(networks({"name": "hostlocal", "ips": ["10.79.0.7"]}), v)) == []
    [(severity, message)] = only("pod-networks-ips-host-local",
                                 findings(networks({"name": "hostlocal", "ips": ["10.78.0.7"]}), v))
    assert severity == "deny"
    assert "(spec.config.runtimeConfig.ipRanges[0][0]: 10.79.0.1-10.79.0.254, spec.config.ipam: " in message
    # A declared capability that the pod fills (mac here) replaces the whole runtimeConfig: no ipRanges.
    mac = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                             runtimeConfig=LITERAL_RANGES, capabilities={"mac": True})))
    assert only("pod-networks-ips-host-local",
                findings(networks({"name": "hostlocal", "ips": ["10.79.0.7"]}), mac)) == []
    [(severity, _)] = only("pod-networks-ips-host-local", findings(networks(
        {"name": "hostlocal", "ips": ["10.79.0.7"], "mac": "02:00:00:00:00:01"}), mac))
    assert severity == "deny"
    # ips counts only with a selection's ips, on the networks annotation.
    ips = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                             runtimeConfig=LITERAL_RANGES, capabilities={"ips": True})))
    [(severity, _)] = only("pod-networks-ips-host-local",
                           findings(networks({"name": "hostlocal", "ips": ["10.79.0.7"]}), ips))
    assert severity == "deny"


def test_a_nads_literal_runtime_config_ips_count_with_the_pods_in_one_range_set() -> None:
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                           runtimeConfig={"ips": ["10.77.0.5"]})))
    [(severity, message)] = only("pod-networks-ips-host-local",
                                 findings(networks({"name": "hostlocal", "ips": ["10.77.0.7"]}), v))
    assert severity == "deny"
    assert "is in the same range set as spec.config.runtimeConfig.ips[0] 10.77.0.5" in message
    # With the ips capability the pod's ips replace the literal runtimeConfig.
    ips = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                             runtimeConfig={"ips": ["10.77.0.5"]}, capabilities={"ips": True})))
    assert only("pod-networks-ips-host-local",
                findings(networks({"name": "hostlocal", "ips": ["10.77.0.7"]}), ips)) == []


def test_cni_args_ips_inside_a_literal_runtime_config_ip_range_are_admitted() -> None:
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                           runtimeConfig=LITERAL_RANGES)))
    assert only("pod-networks-cni-args-ips", findings(networks(
        {"name": "hostlocal", "cni-args": {"ips": ["10.79.0.7"]}}), v)) == []
    [(severity, _)] = only("pod-networks-cni-args-ips", findings(networks(
        {"name": "hostlocal", "cni-args": {"ips": ["10.78.0.7"]}}), v))
    assert severity == "deny"


def test_whereabouts_and_host_local_findings_follow_their_own_rules_policies() -> None:
    # pod-networks-static-ip-range (whereabouts' pool, a warning by default) and
    # pod-networks-ips-host-local (a denial) are set apart by policy.
    v = view(nad("pool", macvlan_with({"type": "whereabouts", "range": "10.30.0.0/24"})),
             nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.31.0.0/24"})))
    pod_ = networks({"name": "pool", "ips": ["10.30.0.70/24"]}, {"name": "hostlocal", "ips": ["10.99.0.1"]})
    deny = Policy(severities={"pod-networks-static-ip-range": Severity.DENY})
    ours = {"pod-networks-ips-host-local", "pod-networks-static-ip-range"}
    assert sorted((r, s) for r, s, _ in findings(pod_, v, deny) if r in ours) == [
        ("pod-networks-ips-host-local", "deny"), ("pod-networks-static-ip-range", "deny")]
    off = Policy(severities={"pod-networks-static-ip-range": Severity.OFF})
    assert [(r, s) for r, s, _ in findings(pod_, v, off) if r in ours] == [("pod-networks-ips-host-local", "deny")]




def test_a_whereabouts_pool_written_ipv4_mapped_is_the_ipv4_pool_whereabouts_makes_of_it() -> None:
    # ::ffff:10.32.0.0/120 is whereabouts' 10.32.0.0/24 (run for real in test_whereabouts_real.py), and a
    # pod's IPv4-mapped ip its IPv4 address.
    v = view(nad("pool", macvlan_with({"type": "whereabouts", "range": "::ffff:10.32.0.0/120",
                                       "exclude": ["::ffff:10.32.0.64/122"]})))
    for ip in ("10.32.0.7/24", "::ffff:10.32.0.8/120"):
        [(severity, message)] = only("pod-networks-static-ip-range",
                                     findings(networks({"name": "pool", "ips": [ip]}), v))
        assert severity == "warn"
        assert "(10.32.0.1-10.32.0.63, spec.config.ipam.range)" in message
    # The excluded block is outside the pool.
    assert only("pod-networks-static-ip-range", findings(networks({"name": "pool", "ips": ["10.32.0.70/24"]}), v)) == []


def test_an_ip_in_the_range_set_of_host_locals_args_cni_ips_is_refused() -> None:
    # host-local takes the pod's IP= and args.cni.ips together, at most one per range set.
    args = {"cni": {"ips": ["10.30.0.5"]}}
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"}, args=args)))
    [(severity, message)] = only("pod-networks-ips-host-local",
                                 findings(networks({"name": "hostlocal", "ips": ["10.30.0.7"]}), v))
    assert severity == "deny"
    assert message.startswith('metadata.annotations["k8s.v1.cni.cncf.io/networks"][0].ips[0] 10.30.0.7 is in the '
                              "same range set as spec.config.args.cni.ips[0] 10.30.0.5")
    # The same address counts once; the selection's cni-args replace the NAD's ips.
    assert only("pod-networks-ips-host-local", findings(networks({"name": "hostlocal", "ips": ["10.30.0.5/24"]}),
                                                         v)) == []
    replaced = {"name": "hostlocal", "ips": ["10.30.0.7"], "cni-args": {"ips": ["10.30.0.7"]}}
    assert only("pod-networks-ips-host-local", findings(networks(replaced), v)) == []
    [(_, message)] = only("pod-networks-ips-host-local", findings(networks(
        {"name": "hostlocal", "ips": ["10.30.0.7"], "cni-args": {"ips": ["10.30.0.8"]}}), v))
    assert 'same range set as metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["cni-args"].ips[0] 10.30.0.8' \
        in message
    # One address in each of two range sets is what host-local gives.
    two = view(nad("hostlocal", macvlan_with({"type": "host-local", "ranges": [[{"subnet": "10.30.0.0/24"}],
                                                                               [{"subnet": "10.31.0.0/24"}]]},
                                             args=args)))
    assert only("pod-networks-ips-host-local", findings(networks({"name": "hostlocal", "ips": ["10.31.0.7"]}),
                                                         two)) == []


def test_a_static_nad_has_no_range_to_be_outside_of() -> None:
    # static uses the address it is given: one the NAD does not list is no mistake.
    v = view(nad("static", macvlan_with({"type": "static", "addresses": [{"address": "10.30.0.5/24"}]},
                                        capabilities={"ips": True})))
    assert findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), v) == []


def test_an_ip_inside_the_whereabouts_pool_warns_and_one_it_excludes_does_not() -> None:
    # whereabouts returns a requested address as it is but never records it: inside its pool it may
    # allocate it to another pod. Outside the pool (here: excluded) is where such addresses belong.
    v = view(nad("pool", macvlan_with({"type": "whereabouts", "range": "10.30.0.0/24",
                                       "exclude": ["10.30.0.0/28"]})))
    [(severity, message)] = only("pod-networks-static-ip-range",
                                 findings(networks({"name": "pool", "ips": ["10.30.0.70/24"]}), v))
    assert severity == "warn"
    assert ('networks"][0].ips[0] 10.30.0.70/24 lies in the pool the whereabouts IPAM of NAD apps/pool allocates '
            "from (10.30.0.16-10.30.0.254, spec.config.ipam.range), but whereabouts keeps no record of a requested "
            "address and may hand it to another pod too") in message
    assert only("pod-networks-static-ip-range", findings(networks({"name": "pool", "ips": ["10.30.0.7/24"]}), v)) == []
    assert only("pod-networks-static-ip-range", findings(networks({"name": "pool", "ips": ["10.99.0.7/24"]}), v)) == []


STATIC_WITH_ADDRESS = {"type": "static", "addresses": [{"address": "10.30.0.5/24", "gateway": "10.30.0.1"}]}


def test_ips_on_a_static_nad_with_addresses_warn_that_every_pod_gets_the_nads_address() -> None:
    # static appends the CIDRs of IP= (CNI_ARGS, where Multus always puts the ips) to ipam.addresses.
    v = view(nad("static", macvlan_with(STATIC_WITH_ADDRESS)))
    [(severity, message)] = only("pod-networks-ips-extra-addresses",
                                 findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), v))
    assert severity == "warn"
    assert message == (
        'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0].ips requests 10.30.0.7/24, which Multus passes to '
        "the static IPAM of NAD apps/static in CNI_ARGS, and static adds them to the NAD's own addresses: the pod "
        "also gets 10.30.0.5/24 (spec.config.ipam.addresses[0]), as does every pod on this NAD, so its pods share "
        "it; leave ipam.addresses out of a NAD whose pods request ips, or declare \"capabilities\": "
        '{"ips": true} on spec.config so that the requested ips replace them')
    # Requesting the NAD's own address: static returns it twice, and macvlan fails to add it again.
    [(_, message)] = only("pod-networks-ips-extra-addresses",
                          findings(networks({"name": "static", "ips": ["10.30.0.5/24"]}), v))
    assert ('so its pods share it; the pod requests 10.30.0.5/24 as well, which the interface plugin then fails to '
            'add a second time ("file exists"), so the pod never starts') in message
    # Without ips, or without addresses of its own, the pod gets what it asked for.
    assert findings(networks({"name": "static"}), v) == []
    bare = view(nad("static", macvlan_with({"type": "static"})))
    assert findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), bare) == []


def test_the_ips_capability_replaces_a_static_nads_addresses_on_the_networks_annotation_only() -> None:
    # runtimeConfig.ips, which libcni injects for the capability, comes last in static and replaces the
    # addresses; Multus injects none of the selection's into the default network (its master plugin).
    v = view(nad("static", macvlan_with(STATIC_WITH_ADDRESS, capabilities={"ips": True}), namespace="kube-system"))
    element = {"name": "static", "namespace": "kube-system", "ips": ["10.30.0.7/24"]}
    assert findings(networks(element), v) == []
    default = pod(annotations={"v1.multus-cni.io/default-network": json.dumps([element])})
    [(severity, message)] = only("pod-networks-ips-extra-addresses", findings(default, v))
    assert severity == "warn"
    assert message.startswith('metadata.annotations["v1.multus-cni.io/default-network"].ips requests 10.30.0.7/24')
    assert message.endswith("leave ipam.addresses out of a NAD whose pods request ips")


def test_args_cni_ips_replace_the_ips_a_pod_requests_from_a_static_nad() -> None:
    # static's args.cni.ips (the NAD's, or a selection's cni-args, which Multus merges in) replace both the
    # NAD's addresses and those of CNI_ARGS.
    v = view(nad("static", macvlan_with(STATIC_WITH_ADDRESS, args={"cni": {"ips": ["10.30.0.9/24"]}})))
    [(_, message)] = only("pod-networks-ips-extra-addresses",
                          findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), v))
    assert ("static takes its addresses from spec.config.args.cni.ips when there are any, dropping the ones of "
            "CNI_ARGS: the pod gets 10.30.0.9/24 instead") in message
    assert findings(networks({"name": "static", "ips": ["10.30.0.9/24"]}), v) == []
    element = {"name": "static", "ips": ["10.30.0.7/24"], "cni-args": {"ips": ["10.30.0.8/24"]}}
    [(_, message)] = only("pod-networks-ips-extra-addresses", findings(networks(element), v))
    assert ('static takes its addresses from metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["cni-args"].ips '
            "when there are any, dropping the ones of CNI_ARGS: the pod gets 10.30.0.8/24 instead") in message
    # The selection's empty list replaces the NAD's: static then keeps its own and CNI_ARGS' addresses.
    element = {"name": "static", "ips": ["10.30.0.7/24"], "cni-args": {"ips": []}}
    [(_, message)] = only("pod-networks-ips-extra-addresses", findings(networks(element), v))
    assert "the pod also gets 10.30.0.5/24 (spec.config.ipam.addresses[0])" in message


def test_cni_args_ips_that_static_cannot_parse_are_refused() -> None:
    v = view(nad("static", macvlan_with({"type": "static"})))
    found = findings(networks({"name": "static", "cni-args": {"ips": ["10.30.0.7"]}}), v)
    assert found == [("pod-networks-cni-args-ips", "deny",
                      f'{CNI_ARGS}.ips[0] is the string \'10.30.0.7\', not a CIDR: the static plugin takes these '
                      "addresses in CIDR form only, and fails the pod's ADD on every try, so the pod never starts; "
                      "write it as e.g. 10.1.0.5/24 (Multus merges it into args.cni of spec.config, the plugin with "
                      "the static IPAM of NAD apps/static)")]
    [(_, message)] = only("pod-networks-cni-args-ips",
                          findings(networks({"name": "static", "cni-args": {"IPs": "10.30.0.7/24"}}), v))
    assert message.startswith(f"{CNI_ARGS}.IPs is the string '10.30.0.7/24': the static plugin fails the pod's ADD")
    assert findings(networks({"name": "static", "cni-args": {"ips": ["10.30.0.7/24"]}}), v) == []
    # The NAD's "ips" sorts after the pod's "IPs" and replaces them: static never parses the pod's.
    replaced = view(nad("static", macvlan_with({"type": "static"}, args={"cni": {"ips": ["10.30.0.9/24"]}})))
    assert findings(networks({"name": "static", "cni-args": {"IPs": ["10.30.0.7"]}}), replaced) == []


def test_cni_args_mac_a_bridge_cannot_decode_is_refused() -> None:
    # bridge decodes args.cni.mac (its BridgeArgs), where Multus merges cni-args, as a string.
    v = view(nad("br", json.dumps({"cniVersion": "1.0.0", "type": "bridge", "bridge": "br0"})))
    [(severity, message)] = only("pod-networks-cni-args-tuning",
                                 findings(networks({"name": "br", "cni-args": {"MAC": 5}}), v))
    assert severity == "deny"
    assert message.startswith(f"{CNI_ARGS}.MAC is the number 5, but the bridge plugin reads args.cni.mac as a string")
    assert message.endswith("(Multus merges it into args.cni of spec.config, the bridge plugin of NAD apps/br)")
    assert findings(networks({"name": "br", "cni-args": {"mac": "02:00:00:00:00:09", "mtu": "x"}}), v) == []


def test_cni_args_mac_a_bridge_cannot_set_is_refused() -> None:
    # bridge takes args.cni.mac ahead of the MAC= the pod's mac gives, and hands it to net.ParseMAC.
    v = view(nad("br", json.dumps({"cniVersion": "1.0.0", "type": "bridge", "bridge": "br0"})))
    [(severity, message)] = only("pod-networks-cni-args-tuning",
                                 findings(networks({"name": "br", "cni-args": {"mac": "zz"}}), v))
    assert severity == "deny"
    assert message.startswith(f"{CNI_ARGS}.mac is 'zz', not a MAC address: the bridge plugin reads")
    assert only("pod-networks-cni-args-tuning", findings(networks(
        {"name": "br", "mac": "02:00:00:00:00:01", "cni-args": {"mac": "zz"}}), v)) != []
    # A non-empty runtimeConfig.mac of the NAD comes first: the pod's never reaches the veth.
    literal = view(nad("br", json.dumps({"cniVersion": "1.0.0", "type": "bridge", "bridge": "br0",
                                         "runtimeConfig": {"mac": "02:00:00:00:00:07"}})))
    assert findings(networks({"name": "br", "cni-args": {"mac": "zz"}}), literal) == []


def test_cni_args_findings_name_the_key_the_pod_wrote() -> None:
    # Multus matches "cni-args" as Go does, case-insensitively: a message names the key as written.
    v = view(nad("static", macvlan_with({"type": "static"})))
    [(_, message)] = only("pod-networks-cni-args-ips",
                          findings(networks({"name": "static", "CNI-Args": {"ips": ["10.30.0.7"]}}), v))
    assert message.startswith('metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["CNI-Args"].ips[0] is the '
                              "string '10.30.0.7', not a CIDR")


def test_cni_args_ips_static_reads_as_ipv4_mapped_are_allowed() -> None:
    # static reads ::ffff:10.30.0.7/120 as 10.30.0.7/24 (checked with the real plugin); at /96 or less the
    # interface gets a /0: a warning.
    v = view(nad("static", macvlan_with({"type": "static"})))
    assert findings(networks({"name": "static", "cni-args": {"ips": ["::ffff:10.30.0.7/120"]}}), v) == []
    [(severity, message)] = only("pod-networks-cni-args-ips",
                                 findings(networks({"name": "static", "cni-args": {"ips": ["::ffff:10.30.0.7/96"]}}),
                                          v))
    assert severity == "warn"
    assert "the interface gets 10.30.0.7/0" in message


def test_cni_args_ips_reach_no_ipam_of_a_plugin_that_never_runs_it() -> None:
    # tuning never calls IPAM: its static ipam section reads no args.cni.ips (checked with the real chain).
    tuning = {"type": "tuning", "ipam": {"type": "static"}}
    chained = {"cniVersion": "1.0.0", "name": "c", "plugins": [json.loads(macvlan_with(HOST_LOCAL_10)), tuning]}
    v = view(nad("chained", json.dumps(chained)))
    assert only("pod-networks-cni-args-ips",
                findings(networks({"name": "chained", "cni-args": {"ips": ["10.30.0.7"]}}), v)) == []


HOST_LOCAL_10 = {"type": "host-local", "ranges": [[{"subnet": "10.30.0.0/24"}]]}


@pytest.mark.parametrize(
    ("cni_args", "field", "text"),
    [
        ({"ips": ["10.31.0.7"]}, "ips[0]",
         "10.31.0.7 lies in none of host-local's ranges (spec.config.ipam.ranges[0][0]: 10.30.0.1-10.30.0.254)"),
        ({"IPs": ["fd00::7"]}, "IPs[0]", "fd00::7 is IPv6, but every range of host-local is IPv4"),
        ({"ips": ["10.30.0.07"]}, "ips[0]", "is the string '10.30.0.07', not an IP address"),
        ({"ips": [None]}, "ips[0]", "is null: host-local reads it as a nil address, crashes on it"),
        ({"ips": ["10.30.0.1"]}, "ips[0]", "10.30.0.1 is the gateway of spec.config.ipam.ranges[0][0]"),
        ({"ips": ["10.30.0.7", "10.30.0.8"]}, "ips[1]", "is in the same range set as"),
    ],
)
def test_cni_args_ips_that_host_local_cannot_allocate_are_refused(cni_args: dict[str, Any], field: str,
                                                                   text: str) -> None:
    # host-local allocates args.cni.ips, where Multus merges cni-args, from its ranges (every spelling).
    v = view(nad("hl", macvlan_with(HOST_LOCAL_10)))
    found = findings(networks({"name": "hl", "cni-args": cni_args}), v)
    [(severity, message)] = only("pod-networks-cni-args-ips", found)
    assert severity == "deny"
    assert message.startswith(f"{CNI_ARGS}.{field} ")
    assert text in message
    assert message.endswith("(Multus merges it into args.cni of spec.config, the plugin with the host-local IPAM of "
                            "NAD apps/hl)")


def test_cni_args_ips_host_local_allocates_are_allowed() -> None:
    v = view(nad("hl", macvlan_with(HOST_LOCAL_10)))
    for cni_args in ({"ips": ["10.30.0.7"]}, {"IPs": ["10.30.0.7/24", "10.30.0.7"]}, {"ips": []}, {"ips": None}):
        assert findings(networks({"name": "hl", "cni-args": cni_args}), v) == [], cni_args
    # The NAD's "ips" sorts after the pod's "IPs" and replaces them: host-local never sees the pod's.
    replaced = view(nad("hl", macvlan_with(HOST_LOCAL_10, args={"cni": {"ips": ["10.30.0.9"]}})))
    assert findings(networks({"name": "hl", "cni-args": {"IPs": ["10.31.0.7"]}}), replaced) == []
    # A literal runtimeConfig.ipRanges of the NAD may hold it (Multus never passes ipRanges: the
    # capability alone gives host-local no other range).
    runtime = view(nad("hl", macvlan_with(HOST_LOCAL_10, runtimeConfig={"ipRanges": [[{"subnet": "10.31.0.0/24"}]]})))
    assert findings(networks({"name": "hl", "cni-args": {"ips": ["10.31.0.7"]}}), runtime) == []
    declared = view(nad("hl", macvlan_with(HOST_LOCAL_10, capabilities={"ipRanges": True})))
    assert [r for r, _, _ in findings(networks({"name": "hl", "cni-args": {"ips": ["10.31.0.7"]}}), declared)] == [
        "pod-networks-cni-args-ips"]


def test_cni_args_ips_of_another_spelling_replace_statics_addresses() -> None:
    # static decodes the pod's "IPs" as "ips": they replace the NAD's own address.
    v = view(nad("static", macvlan_with(STATIC_WITH_ADDRESS)))
    element = {"name": "static", "ips": ["10.30.0.7/24"], "cni-args": {"IPs": ["10.30.0.7/24"]}}
    assert findings(networks(element), v) == []


def test_cni_args_ips_of_an_earlier_repeated_cni_args_object_count() -> None:
    # Go decodes a repeated "cni-args" into the same map: the first object's ips stay beside the second's keys.
    v = view(nad("static", macvlan_with(STATIC_WITH_ADDRESS)))
    repeated = pod(annotations={"k8s.v1.cni.cncf.io/networks": '[{"name": "static", "ips": ["10.30.0.7/24"], '
                                '"cni-args": {"ips": ["10.30.0.8/24"]}, "cni-args": {"foo": 1}}]'})
    [(_, message)] = only("pod-networks-ips-extra-addresses", findings(repeated, v))
    assert "the pod gets 10.30.0.8/24 instead" in message


TUNED = json.dumps({"cniVersion": "1.0.0", "name": "t", "plugins": [
    {"type": "bridge", "bridge": "br1", "ipam": {"type": "static", "addresses": [{"address": "10.20.0.5/24"}]}},
    {"type": "tuning", "sysctl": {}}]})
ARP_FILTER = {"net.ipv4.conf.IFNAME.arp_filter": "1"}


@pytest.mark.parametrize("annotation", ["k8s.v1.cni.cncf.io/networks", "v1.multus-cni.io/default-network"])
def test_cni_args_sysctl_for_a_tuning_plugin_without_sysctl_is_refused(annotation: str) -> None:
    # Multus merges cni-args into args.cni of every plugin; tuning copies args.cni.sysctl into its own
    # sysctl map, nil when the NAD has none, and panics.
    element = [{"name": "bridge", "namespace": "apps", "cni-args": {"sysctl": ARP_FILTER}}]
    [(rule, severity, message)] = findings(pod(annotations={annotation: json.dumps(element)}), view())
    assert (rule, severity) == ("pod-networks-cni-args-sysctl", "deny")
    field = f'metadata.annotations["{annotation}"]' + ("[0]" if annotation.endswith("networks") else "")
    assert message == (
        f'{field}["cni-args"].sysctl is set but spec.config.plugins[1] has no sysctl object: the tuning plugin '
        'crashes copying the entries into it and the pod never starts; add "sysctl": {} to spec.config.plugins[1] '
        f'of NAD apps/bridge, or drop sysctl from {field}["cni-args"] (Multus merges it into args.cni of '
        "spec.config.plugins[1], the tuning plugin of NAD apps/bridge)")


def test_cni_args_sysctl_reaches_tuning_as_go_matches_keys_and_empty_is_nothing_to_copy() -> None:
    found = findings(networks({"name": "bridge", "cni-args": {"SysCtl": ARP_FILTER}}), view())
    assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "deny")]
    assert found[0][2].startswith('metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["cni-args"].SysCtl is set')
    assert findings(networks({"name": "bridge", "cni-args": {"sysctl": {}}}), view()) == []
    assert findings(networks({"name": "bridge", "cni-args": {"sysctl": None, "foo": "bar"}}), view()) == []
    # No tuning plugin reads it.
    assert findings(networks({"name": "macvlan", "cni-args": {"sysctl": ARP_FILTER}}), view()) == []


def test_cni_args_sysctl_keys_get_the_nads_key_checks() -> None:
    v = view(nad("tuned", TUNED))
    assert findings(networks({"name": "tuned", "cni-args": {"sysctl": ARP_FILTER}}), v) == []
    found = findings(networks({"name": "tuned", "cni-args": {"sysctl": {"kernel.shmmax": "1"}}}), v)
    assert found == [("pod-networks-cni-args-sysctl", "deny",
                      'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["cni-args"].sysctl["kernel.shmmax"]: '
                      "the key 'kernel.shmmax' is outside net.* (the tuning plugin only writes network sysctls); set "
                      "it through the pod's securityContext instead (Multus merges it into args.cni of "
                      "spec.config.plugins[1], the tuning plugin of NAD apps/tuned)")]
    # Two spellings of one sysctl, different values: tuning writes them in random order, a warning.
    twice = {"net.ipv4.conf.IFNAME.arp_filter": "1", "net/ipv4/conf/IFNAME/arp_filter": "0"}
    found = findings(networks({"name": "tuned", "cni-args": {"sysctl": twice}}), v)
    assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "warn")]


def tuned(args_cni: dict[str, Any], sysctl: bool = True) -> StaticClusterView:
    config = json.loads(TUNED)
    config["plugins"][1] = {"type": "tuning", **({"sysctl": {}} if sysctl else {}), "args": {"cni": args_cni}}
    return view(nad("tuned", json.dumps(config)))


CNI_ARGS = 'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["cni-args"]'
ARP_IGNORE = {"net.ipv4.conf.IFNAME.arp_ignore": "2"}


# Real Multus v4.3.0 merge (hack/multus/multus-delegates) and tuning v1.10.0: Multus sets the selection's
# keys in the NAD's args.cni by exact key and encodes it again, keys sorted ("SYSCTL" < "Sysctl" <
# "sysctl"); tuning decodes every spelling into one map, in that order: objects add their entries, null
# empties it.
def test_cni_args_sysctl_beside_the_nads_other_spelling_both_reach_tuning() -> None:
    # Both objects are applied (arp_filter=1 and arp_ignore=2 on the real interface).
    both = networks({"name": "tuned", "cni-args": {"sysctl": ARP_IGNORE}})
    assert findings(both, tuned({"Sysctl": ARP_FILTER})) == []
    # A kernel key from the pod is refused even beside the NAD's own spelling.
    found = findings(networks({"name": "tuned", "cni-args": {"SYSCTL": {"kernel.shmmax": "1"}}}),
                     tuned({"sysctl": ARP_FILTER}))
    assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "deny")]
    assert found[0][2].startswith(f"{CNI_ARGS}.SYSCTL[\"kernel.shmmax\"]: the key 'kernel.shmmax' is outside net.*")


def test_cni_args_sysctl_that_a_later_spelling_of_the_nad_empties_is_no_crash_and_no_kernel_key() -> None:
    # The NAD's "sysctl": null sorts after the pod's "Sysctl": the map is nil when tuning copies it, so it
    # neither crashes on a missing sysctl nor sees the kernel key; the pod starts. A warning that the
    # pod's sysctls are lost.
    for view_, value in ((tuned({"sysctl": None}, sysctl=False), ARP_FILTER),
                         (tuned({"sysctl": None}), {"kernel.shmmax": "1"})):
        found = findings(networks({"name": "tuned", "cni-args": {"Sysctl": value}}), view_)
        [key] = value
        assert found == [("pod-networks-cni-args-sysctl", "warn",
                          f'{CNI_ARGS}.Sysctl["{key}"] never reaches the tuning plugin: spec.config.plugins[1].'
                          "args.cni.sysctl is null, which empties the map (Go reads every spelling of "
                          "args.cni.sysctl into one map, in sorted order of the keys); keep one spelling of sysctl "
                          "(Multus merges it into args.cni of spec.config.plugins[1], the tuning plugin of NAD "
                          "apps/tuned)")]


def test_cni_args_sysctl_replaced_by_the_nads_later_spelling_warns() -> None:
    # The pod's "Sysctl" sorts before the NAD's "sysctl": the NAD's value of the same key wins (the real
    # interface gets arp_ignore=1).
    found = findings(networks({"name": "tuned", "cni-args": {"Sysctl": ARP_IGNORE}}),
                     tuned({"sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"}}))
    assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "warn")]
    assert found[0][2].startswith(f'{CNI_ARGS}.Sysctl["net.ipv4.conf.IFNAME.arp_ignore"] never reaches the tuning '
                                  'plugin: spec.config.plugins[1].args.cni.sysctl["net.ipv4.conf.IFNAME.arp_ignore"] '
                                  "replaces it")
    # The other way round the pod's value wins, and nothing is said.
    assert findings(networks({"name": "tuned", "cni-args": {"sysctl": ARP_IGNORE}}),
                    tuned({"Sysctl": {"net.ipv4.conf.IFNAME.arp_ignore": "1"}})) == []


def tuned_plugin(**tuning: Any) -> StaticClusterView:
    config = json.loads(TUNED)
    config["plugins"][1] = {"type": "tuning", "sysctl": {}, **tuning}
    return view(nad("tuned", json.dumps(config)))


def test_cni_args_sysctl_meets_the_nads_entries_under_other_spellings_of_args_and_cni() -> None:
    # Multus v4.3.0 injectCNIArgs adds "args" (or "cni") by exact key beside the NAD's "Args" ("CNI"), and
    # tuning decodes both, in sorted order: the NAD's entry there writes the same file as the pod's
    # (net/... and net....), in random order (real tuning, after the real Multus merge).
    other = {"sysctl": {"net/ipv4/conf/IFNAME/arp_ignore": "1"}}
    for view_, where in ((tuned_plugin(Args={"cni": other}), "Args.cni"),
                         (tuned_plugin(args={"CNI": other}), "args.CNI")):
        found = findings(networks({"name": "tuned", "cni-args": {"sysctl": ARP_IGNORE}}), view_)
        assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "warn")]
        assert found[0][2].startswith(
            f'{CNI_ARGS}.sysctl["net.ipv4.conf.IFNAME.arp_ignore"] sets the same sysctl as spec.config.plugins[1].'
            f'{where}.sysctl["net/ipv4/conf/IFNAME/arp_ignore"]')


def test_cni_args_kernel_sysctl_that_a_later_spelling_of_args_empties_only_warns() -> None:
    # "arg\u017f" folds to "args" and sorts after the "args" Multus adds: its null drops the pod's map,
    # so real tuning never sees the kernel key and the pod starts.
    found = findings(networks({"name": "tuned", "cni-args": {"sysctl": {"kernel.shmmax": "1"}}}),
                     tuned_plugin(**{"arg\u017f": None}))
    assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "warn")]
    assert "never reaches the tuning plugin: spec.config.plugins[1].arg\u017f is null, which empties the map" \
        in found[0][2]


def test_cni_args_sysctl_that_tuning_cannot_decode_is_refused() -> None:
    for value, what in (("x", "the string 'x'"), ({"net.ipv4.conf.IFNAME.arp_filter": 1}, "the number 1")):
        found = findings(networks({"name": "tuned", "cni-args": {"sysctl": value}}), tuned({}))
        assert [(rule, severity) for rule, severity, _ in found] == [("pod-networks-cni-args-sysctl", "deny")]
        assert f"is {what}, but the tuning plugin reads args.cni.sysctl as an object whose values are strings: it " \
               "fails to load its config and the pod never starts" in found[0][2]


@pytest.mark.parametrize(("cni_args", "field", "text"), [
    ({"mtu": "x"}, "mtu", "is the string 'x', but the tuning plugin reads args.cni.mtu as an integer: it fails to load "
     "its config and fails the pod's ADD on every try, so the pod never starts; write it as an integer"),
    ({"Promisc": "yes"}, "Promisc", "reads args.cni.promisc as true or false"),
    ({"TXQLEN": 1.5}, "TXQLEN", "is the number 1.5, but the tuning plugin reads args.cni.txQLen as an integer"),
    ({"allmulti": 1}, "allmulti", "reads args.cni.allmulti as true or false"),
    ({"mac": 5}, "mac", "reads args.cni.mac as a string: it fails to load its config and fails the pod's ADD on "
     "every try, so the pod never starts; write a MAC address"),
    ({"mac": "zz"}, "mac", "is 'zz', not a MAC address: the tuning plugin reads 02:00:5e:00:53:01"),
    # A mistyped spelling fails the decode though a later one replaces it.
    ({"MTU": "x", "mtu": 1400}, "MTU", "is the string 'x'"),
    ({"mtu": -1}, "mtu", "is -1: the tuning plugin hands it to the kernel, which refuses it, and fails the pod's ADD "
     "on every try, so the pod never starts"),
])
def test_cni_args_tuning_fields_that_tuning_cannot_use_are_refused(cni_args: dict[str, Any], field: str,
                                                                   text: str) -> None:
    found = findings(networks({"name": "tuned", "cni-args": cni_args}), tuned({}))
    # The NAD's first plugin is a bridge, which decodes args.cni.mac too: judged on its own.
    [(severity, message)] = [m for m in only("pod-networks-cni-args-tuning", found) if "the bridge plugin" not in m[1]]
    assert severity == "deny"
    assert message.startswith(f"{CNI_ARGS}.{field} is "), message
    assert text in message
    assert message.endswith("(Multus merges it into args.cni of spec.config.plugins[1], the tuning plugin of NAD "
                            "apps/tuned)")


def test_cni_args_tuning_fields_that_tuning_reads_are_allowed() -> None:
    fine = {"mac": "02:00:00:00:00:01", "mtu": 1400, "promisc": True, "allmulti": None, "txQLen": 500}
    assert findings(networks({"name": "tuned", "cni-args": fine}), tuned({})) == []
    # The pod's mtu replaces the NAD's own, which is nad-plugin-mtu's.
    assert findings(networks({"name": "tuned", "cni-args": {"mtu": 1400}}), tuned_plugin(mtu=-1)) == []
    # Multus hands the numbers on as Go encodes a float64: 1400.0 reaches tuning as 1400.
    assert findings(networks({"name": "tuned", "cni-args": {"mtu": 1400.0}}), tuned({})) == []
    # The NAD's "mac" sorts after the pod's "Mac" and replaces it before tuning reads it.
    # (The bridge before it reads the pod's "Mac" as its args.cni.mac, and fails on it.)
    [(_, _, message)] = findings(networks({"name": "tuned", "cni-args": {"Mac": "zz"}}),
                                 tuned({"mac": "02:00:00:00:00:01"}))
    assert message.endswith("the bridge plugin of NAD apps/tuned)")
    # The NAD's own mistyped field is nad-plugin-field-types'; no tuning plugin reads them here.
    assert findings(networks({"name": "tuned", "cni-args": {"mac": "02:00:00:00:00:01"}}), tuned({"mtu": "x"})) == []
    assert findings(networks({"name": "bridge", "cni-args": {"mtu": "x"}}), view(nad("bridge", json.dumps(
        {"cniVersion": "1.0.0", "name": "b", "type": "bridge"})))) == []


# Real Multus v4.3.0 (hack/multus/multus-delegates): injectCNIArgs asserts that a plugin's "args" and its
# "cni" are objects, by exact key, and panics on anything else, null too; it merges an empty cni-args as
# well, and nothing for a null one.
@pytest.mark.parametrize("annotation", ["k8s.v1.cni.cncf.io/networks", "v1.multus-cni.io/default-network"])
def test_cni_args_into_nad_args_that_are_not_an_object_is_refused(annotation: str) -> None:
    config = json.loads(TUNED)
    config["plugins"][0]["args"] = {"cni": None}
    config["plugins"][1]["args"] = "x"
    element = [{"name": "tuned", "namespace": "apps", "cni-args": {}}]
    found = findings(pod(annotations={annotation: json.dumps(element)}), view(nad("tuned", json.dumps(config))))
    field = f'metadata.annotations["{annotation}"]' + ("[0]" if annotation.endswith("networks") else "")
    assert found == [("pod-networks-cni-args-nad-args", "deny",
                      f'{field}["cni-args"] is merged by Multus into args.cni of every plugin of NAD apps/tuned, but '
                      f"its {where} is {what}, not an object: Multus panics merging them (the pod's ADD fails on "
                      "every try) and the pod never starts; "
                      f"make {where} an object (or remove it) in NAD apps/tuned, or drop \"cni-args\" from {field}")
                     for where, what in (("spec.config.plugins[0].args.cni", "null"),
                                         ("spec.config.plugins[1].args", "the string 'x'"))]


def test_cni_args_into_nad_args_multus_can_merge_into_are_allowed() -> None:
    for args in ({}, {"cni": {}}, {"cni": {"a": "b"}}, {"CNI": 5}):
        assert findings(networks({"name": "tuned", "cni-args": {"k": "v"}}), tuned_plugin(args=args)) == []
    # Another spelling Multus leaves alone (what tuning makes of it is nad-plugin-tuning-sysctl's).
    assert only("pod-networks-cni-args-nad-args",
                findings(networks({"name": "tuned", "cni-args": {}}), tuned_plugin(Args="x"))) == []
    # A null cni-args is nothing to merge.
    assert findings(networks({"name": "tuned", "cni-args": None}), tuned_plugin(args="x")) == []


def test_ips_on_a_whereabouts_nad_warn_that_it_allocates_an_address_besides() -> None:
    # whereabouts returns the IP= CIDRs after one address allocated from each range, and its own addresses.
    ipam = {"type": "whereabouts", "range": "10.30.0.0/24", "ipRanges": [{"range": "fd00:30::/64"}],
            "addresses": [{"address": "10.31.0.5/24"}]}
    v = view(nad("pool", macvlan_with(ipam, capabilities={"ips": True})))
    [(severity, message)] = only("pod-networks-ips-extra-addresses",
                                 findings(networks({"name": "pool", "ips": ["10.99.0.7/24"]}), v))
    assert severity == "warn"
    assert ("which Multus passes to the whereabouts IPAM of NAD apps/pool in CNI_ARGS, and whereabouts returns them "
            "next to the addresses it gives every pod: the pod also gets an address it allocates from each of its "
            "ranges (10.30.0.0/24, fd00:30::/64) and its own ipam.addresses, 10.31.0.5/24 "
            "(spec.config.ipam.addresses[0]), as does every pod on this NAD, so its pods share it; to give a pod "
            "only the addresses it requests, use static IPAM") in message


def test_requests_on_the_default_network_get_no_runtime_config() -> None:
    config = json.loads(MACVLAN)
    config["capabilities"] = {"portMappings": True}
    v = view(nad("ports", json.dumps(config), namespace="kube-system"))
    element = {"name": "ports", "namespace": "kube-system", "portMappings": [{"hostPort": 8080, "containerPort": 80}]}
    assert only("pod-networks-capabilities", findings(networks(element), v)) == []
    default = pod(annotations={"v1.multus-cni.io/default-network": json.dumps([element])})
    [(severity, message)] = only("pod-networks-capabilities", findings(default, v))
    assert severity == "warn"
    assert message == ('metadata.annotations["v1.multus-cni.io/default-network"] requests portMappings, but on the '
                       "default network Multus passes it to no plugin as runtime config, whatever their capabilities, "
                       "and no plugin of NAD kube-system/ports reads it from CNI_ARGS: it will be ignored")


PORTMAP_PLUGIN = {"type": "portmap", "capabilities": {"portMappings": True}}


def portmap_nad(name: str = "ports", capability: bool = True, backend: str | None = None) -> dict[str, Any]:
    portmap: dict[str, Any] = {"type": "portmap"} if backend is None else {"type": "portmap", "backend": backend}
    if capability:
        portmap["capabilities"] = {"portMappings": True}
    return nad(name, json.dumps({"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": "macvlan", "master": "eth0", "ipam": {"type": "static"}}, portmap]}))


PORTS_AT = 'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0].portMappings'


# What portmap v1.10.0 refuses (parseConfig, every ADD, whatever the backend), checked with the real
# Multus v4.3.0 and portmap in tests/differential/test_nad_real_plugins.py (the portmap-* pod cases).
@pytest.mark.parametrize(
    ("entries", "where", "said"),
    [
        ([None], "[0]", 'is null, which Multus passes on to portmap as it is and portmap reads as an entry of zeros: '
                        'it fails the ADD with "Invalid container port number: 0"'),
        ([{}], "[0].containerPort", 'is 0 (or left out): portmap refuses a port number that is not above 0 and fails '
                                    'the ADD with "Invalid container port number: 0"'),
        ([{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}], "[0].hostPort",
         '"Invalid host port number: 0"'),
        ([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}, {"hostPort": -2, "containerPort": 81,
                                                                        "protocol": "udp"}],
         "[1].hostPort", 'is -2: portmap refuses'),
        ([{"hostPort": 70000, "containerPort": 80, "protocol": "tcp"}], "[0].hostPort",
         "is 70000, above 65535: portmap writes it into the rule of its backend, which iptables and nftables both "
         "refuse"),
    ],
)
def test_port_mappings_portmap_refuses_are_denied(entries: list[Any], where: str, said: str) -> None:
    found = findings(networks({"name": "ports", "portMappings": entries}), view(portmap_nad()))
    [(severity, message)] = only("pod-networks-port-mappings", found)
    assert severity == "deny"
    assert message.startswith(f"{PORTS_AT}{where} ")
    assert said in message
    assert message.endswith("(it reaches spec.config.plugins[1], the portmap plugin of NAD apps/ports, as "
                            "runtimeConfig)")
    assert only("pod-networks-capabilities", found) == []


def test_port_mappings_host_ip_not_an_address_warns() -> None:
    entry = {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "host"}
    found = only("pod-networks-port-mappings",
                 findings(networks({"name": "ports", "portMappings": [entry]}), view(portmap_nad())))
    assert [severity for severity, _ in found] == ["warn"]
    assert found[0][1].startswith(f"{PORTS_AT}[0].hostIP 'host' is not an IP address")


# Run with iptables v1.8.9 ("-p <protocol> --dport 80") and nft ("<protocol> dport 80") in a network
# namespace: iptables takes TCP and dccp, refuses "", icmp and udplite; nft takes udplite and dccp,
# refuses TCP, "" and icmp.
@pytest.mark.parametrize(("protocol", "backend", "severity", "said"), [
    (None, None, "deny", "is missing: portmap writes it as it is into the rule of its backend, and both its backends, "
                         "iptables and nftables, refuse it, failing the ADD; write one of tcp, udp, sctp"),
    ("icmp", "iptables", "deny", "is 'icmp': portmap writes it as it is into the rule of its backend, and its "
                                 "iptables backend refuses it, failing the ADD; write one of tcp, udp, sctp"),
    ("TCP", None, "warn", "is 'TCP': portmap writes it as it is into the rule of its backend, and nftables refuses "
                          "it (this portmap names no backend: the node decides, nftables where iptables does not "
                          "work), failing the ADD there; write 'tcp', or name the backend"),
    ("TCP", "nftables", "deny", "is 'TCP': portmap writes it as it is into the rule of its backend, and its nftables "
                                "backend refuses it, failing the ADD; write 'tcp'"),
    ("TCP", "iptables", None, ""),
    ("udplite", "nftables", None, ""),
    ("udplite", "iptables", "deny", "is 'udplite': portmap writes it as it is into the rule of its backend, and its "
                                    "iptables backend refuses it, failing the ADD; write one of tcp, udp, sctp"),
    ("dccp", None, None, ""),
    ("6", "iptables", None, ""),
    ("6", None, "warn", "is '6': portmap writes it as it is into the rule of its backend, and nftables refuses it "
                        "(this portmap names no backend: the node decides, nftables where iptables does not work), "
                        "failing the ADD there; write 'tcp', or name the backend"),
])
def test_port_mappings_protocol_as_the_backends_take_it(
        protocol: str | None, backend: str | None, severity: str | None, said: str) -> None:
    entry = {"hostPort": 8080, "containerPort": 80, **({"protocol": protocol} if protocol is not None else {})}
    found = only("pod-networks-port-mappings",
                 findings(networks({"name": "ports", "portMappings": [entry]}), view(portmap_nad(backend=backend))))
    if severity is None:
        assert found == []
        return
    [(got, message)] = found
    assert got == severity
    assert message.startswith(f"{PORTS_AT}[0].protocol {said} (it reaches spec.config.plugins[1]")


def test_port_mappings_without_an_address_reach_no_backend() -> None:
    """portmap calls its backend only for a container address an IPAM earlier in the chain gave: without
    one only its own check of the ports (above 0) fails the ADD (real portmap: icmp, port 70000 pass)."""
    config = {"cniVersion": "1.0.0", "name": "ports", "plugins": [
        {"type": "macvlan", "master": "eth0"}, {**PORTMAP_PLUGIN, "backend": "iptables"}]}
    entries = [{"hostPort": 70000, "containerPort": 80, "protocol": "icmp"}, {"hostPort": 0, "containerPort": 80}]
    found = only("pod-networks-port-mappings", findings(networks({"name": "ports", "portMappings": entries}),
                                                       view(nad("ports", json.dumps(config)))))
    assert [(severity, message.split(" is ")[0]) for severity, message in found] == \
        [("deny", f"{PORTS_AT}[1].hostPort")]


def test_port_mappings_an_entry_nftables_may_skip_warns() -> None:
    """nftables skips an entry whose hostIP is of another family than the pod's address."""
    entry = {"hostPort": 8080, "containerPort": 80, "protocol": "TCP", "hostIP": "2001:db8::1"}
    [(severity, message)] = only("pod-networks-port-mappings", findings(
        networks({"name": "ports", "portMappings": [entry]}), view(portmap_nad(backend="nftables"))))
    assert severity == "warn"
    assert "unless the pod has no address of the family of hostIP '2001:db8::1': portmap then skips it" in message


def test_port_mappings_a_container_port_iptables_may_skip_warns() -> None:
    """iptables writes the hostPort and protocol of every entry into one rule, but skips the containerPort's
    rule of an entry whose hostIP is of another family than the pod's address (real portmap: 70000 then
    passes on an IPv4 pod)."""
    entry = {"hostPort": 8080, "containerPort": 70000, "protocol": "icmp", "hostIP": "fd00::1"}
    found = only("pod-networks-port-mappings", findings(
        networks({"name": "ports", "portMappings": [entry]}), view(portmap_nad(backend="iptables"))))
    assert [(severity, message.split(" is ")[0]) for severity, message in found] == \
        [("warn", f"{PORTS_AT}[0].containerPort"), ("deny", f"{PORTS_AT}[0].protocol")]


def test_port_mappings_every_portmap_of_the_chain_is_judged() -> None:
    config = {"cniVersion": "1.0.0", "name": "ports", "plugins": [
        {"type": "macvlan", "master": "eth0", "ipam": {"type": "static"}}, {**PORTMAP_PLUGIN, "backend": "iptables"},
        {**PORTMAP_PLUGIN, "backend": "nftables"}]}
    entry = {"hostPort": 8080, "containerPort": 80, "protocol": "TCP"}
    [(severity, message)] = only("pod-networks-port-mappings", findings(
        networks({"name": "ports", "portMappings": [entry]}), view(nad("ports", json.dumps(config)))))
    assert severity == "deny"
    assert "its nftables backend refuses it" in message
    assert "(it reaches spec.config.plugins[2]" in message


# iptables refuses an empty argument ("Bad argument"), which an empty condition is to portmap's iptables
# backend; nft takes the conditions joined with spaces. Run with both in
# tests/differential/test_nad_real_plugins.py (the portmap-*-condition pod cases).
@pytest.mark.parametrize(("backend", "conditions", "said"), [
    ("iptables", {"conditionsV4": ["-s", "10.0.0.0/8", ""]},
     "whose spec.config.plugins[1].conditionsV4[2] is empty: its iptables backend passes it to iptables as an "
     'argument of its own, which iptables refuses ("Bad argument"), failing the ADD of the pod if it has an IPv4 '
     "address; remove the empty entry from the NAD"),
    (None, {"conditionsV6": [None]},
     "whose spec.config.plugins[1].conditionsV6[0] is empty: the iptables backend it takes with none named "
     "(nftables only on a node without iptables) passes it to iptables"),
    ("nftables", {"conditionsV4": ["", "ip saddr 10.0.0.0/8"]}, None),
    # A leading empty entry hides what the conditions are written for, from portmap too: it takes iptables.
    (None, {"conditionsV4": ["", "ip saddr 10.0.0.0/8"]}, "whose spec.config.plugins[1].conditionsV4[0] is empty"),
    ("iptables", {"conditionsV4": ["-s", "10.0.0.0/8"]}, None),
])
def test_port_mappings_empty_condition_where_iptables_takes_it_warns(
        backend: str | None, conditions: dict[str, Any], said: str | None) -> None:
    config = json.loads(portmap_nad(backend=backend)["spec"]["config"])
    config["plugins"][1].update(conditions)
    entry = {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    v = view(nad("ports", json.dumps(config)))
    found = only("pod-networks-port-mappings", findings(networks({"name": "ports", "portMappings": [entry]}), v))
    if said is None:
        assert found == []
        return
    [(severity, message)] = found
    assert severity == "warn"
    assert message.startswith(f"{PORTS_AT} reach spec.config.plugins[1], the portmap plugin of NAD apps/ports, ")
    assert said in message
    # Without port mappings portmap writes no rule.
    assert only("pod-networks-port-mappings", findings(networks({"name": "ports"}), v)) == []


def test_port_mappings_portmap_takes_pass() -> None:
    entries = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
               {"hostPort": 65535, "containerPort": 1, "protocol": "sctp", "hostIP": "fd00::1"}]
    assert findings(networks({"name": "ports", "portMappings": entries}), view(portmap_nad())) == []


def profile_port_mappings(entries: list[Any], v: StaticClusterView | None,
                          policy: Policy | None = None) -> list[tuple[str, str]]:
    """networkprofile-networks on a profile whose one network is NAD apps/ports with these portMappings."""
    subject = Subject(profile("web", [{"name": "ports", "portMappings": entries}]), "NetworkProfile",
                      **({"view": v} if v is not None else {}), default_namespace="apps")
    return [(str(f.severity), f.message) for f in evaluate(subject, policy or Policy())
            if f.rule == "networkprofile-networks"]


NO_PORTMAP = nad("ports", json.dumps({"cniVersion": "1.0.0", "name": "ports", "type": "macvlan", "master": "eth0"}))
PORTMAP_WITHOUT_IPAM = nad("ports", json.dumps({"cniVersion": "1.0.0", "name": "ports", "plugins": [
    {"type": "macvlan", "master": "eth0"}, PORTMAP_PLUGIN]}))


def test_a_profile_port_mapping_no_portmap_gets_is_not_denied_as_the_same_pod_is_not() -> None:
    """The NAD has no portmap: a pod with this annotation starts (pod-networks-capabilities says the
    entries are ignored), so a profile giving it to every pod must not be refused."""
    entries = [{"containerPort": 80}]
    for v in (view(NO_PORTMAP), view(portmap_nad(capability=False)), view(nad("ports", MACVLAN))):
        assert profile_port_mappings(entries, v) == []
        ignored_port_mappings(findings(networks({"name": "ports", "portMappings": entries}), v))


@pytest.mark.parametrize("the_nad", [portmap_nad(), portmap_nad(capability=False), portmap_nad(backend="iptables"),
                                     portmap_nad(backend="nftables"), NO_PORTMAP, PORTMAP_WITHOUT_IPAM,
                                     nad("ports", json.dumps({"cniVersion": "1.0.0", "name": "ports", "plugins": [
                                         {"type": "macvlan", "master": "eth0", "ipam": {"type": "static"}},
                                         {**PORTMAP_PLUGIN, "conditionsV4": [""]}]}))],
                         ids=["portmap", "no-capability", "iptables", "nftables", "no-portmap", "no-ipam",
                              "empty-condition"])
@pytest.mark.parametrize("entry", [
    None, {}, {"containerPort": 80}, {"hostPort": 0, "containerPort": 80, "protocol": "tcp"},
    {"hostPort": 8080, "containerPort": 80}, {"hostPort": 8080, "containerPort": 80, "protocol": "icmp"},
    {"hostPort": 8080, "containerPort": 80, "protocol": "TCP"}, {"hostPort": 8080, "containerPort": 80,
                                                                 "protocol": "udplite"},
    {"hostPort": 70000, "containerPort": 80, "protocol": "tcp"},
    {"hostPort": 8080, "containerPort": 70000, "protocol": "tcp", "hostIP": "fd00::1"},
    {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "host"},
    {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
])
def test_a_profile_port_mapping_is_judged_as_the_pod_rule_judges_it_against_the_nad(
        the_nad: dict[str, Any], entry: Any) -> None:
    """Denied exactly where pod-networks-port-mappings denies a pod with the same annotation, warned
    about where it warns, with its message, saying the pods are every pod using the profile."""
    v = view(the_nad)
    pod_said = only("pod-networks-port-mappings", findings(networks({"name": "ports", "portMappings": [entry]}), v))
    expected = [(severity, message.replace(PORTS_AT, "spec.networks[0].portMappings")
                 .replace("as runtimeConfig)", "as runtimeConfig, in every pod using this profile)")
                 .replace("failing the ADD of the pod if", "failing the ADD of every pod using this profile if"))
                for severity, message in pod_said]
    assert profile_port_mappings([entry], v) == expected


@pytest.mark.parametrize(("v", "unknown"), [(None, "which is not known here (no cluster state)"),
                                            (view(), "which does not exist (yet)")])
def test_a_profile_port_mapping_through_an_unknown_nad_is_only_warned_about(
        v: StaticClusterView | None, unknown: str) -> None:
    entries = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}, {"containerPort": 80},
               {"hostPort": 8080, "containerPort": 80, "protocol": "icmp"}]
    assert profile_port_mappings(entries, v) == [
        ("warn", 'spec.networks[0].portMappings[1].hostPort is 0 (or left out): portmap refuses a port number that is '
                 'not above 0 and fails the ADD with "Invalid host port number: 0"; give a port from 1 to 65535 (if '
                 f'NAD apps/ports, {unknown}, has a portmap plugin that declares "capabilities": '
                 '{"portMappings": true}: it then fails the ADD of every pod using this profile)'),
        ("warn", "spec.networks[0].portMappings[2].protocol is 'icmp': portmap writes it as it is into the rule of its "
                 "backend, and both its backends, iptables and nftables, refuse it, failing the ADD; write one of tcp, "
                 f'udp, sctp (if NAD apps/ports, {unknown}, has a portmap plugin that declares "capabilities": '
                 '{"portMappings": true} after a plugin whose IPAM gives the pod an address: it then fails the ADD of '
                 "every pod using this profile)"),
    ]


def test_a_profile_port_mapping_denial_follows_the_policy() -> None:
    entries = [{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}]
    assert [s for s, _ in profile_port_mappings(entries, view(portmap_nad()))] == ["deny"]
    assert [s for s, _ in profile_port_mappings(entries, view(portmap_nad()), Policy(audit=True))] == ["warn"]
    assert profile_port_mappings(entries, view(portmap_nad()),
                                 Policy(severities={"networkprofile-networks": Severity.OFF})) == []


def ignored_port_mappings(found: list[tuple[str, str, str]]) -> None:
    assert only("pod-networks-port-mappings", found) == []
    [(severity, message)] = only("pod-networks-capabilities", found)
    assert severity == "warn"
    assert "requests portMappings, but" in message
    assert message.endswith("it will be ignored")


def test_port_mappings_no_plugin_declares_only_warn_they_are_ignored() -> None:
    # Multus passes them to no plugin: the real Multus and portmap start a pod with a null entry there.
    element = {"name": "ports", "portMappings": [None, {"hostPort": 0}]}
    ignored_port_mappings(findings(networks(element), view(portmap_nad(capability=False))))


def test_port_mappings_on_the_default_network_reach_no_plugin() -> None:
    element = {"name": "ports", "namespace": "apps", "portMappings": [None, {"hostPort": 0}]}
    default = pod(annotations={"v1.multus-cni.io/default-network": json.dumps([element])})
    ignored_port_mappings(findings(default, view(portmap_nad())))


def test_a_null_port_mapping_replaced_by_a_later_list_is_not_judged() -> None:
    value = '[{"name": "ports", "portMappings": [null], "PortMappings": [{"hostPort": 1, "containerPort": 2, ' \
            '"protocol": "udp"}]}]'
    assert findings(pod(annotations={"k8s.v1.cni.cncf.io/networks": value}), view(portmap_nad())) == []


def test_namespace_isolation_is_off_by_default_and_enforced_when_on() -> None:
    v = view(nad("shared", MACVLAN, namespace="default"), nad("theirs", MACVLAN, namespace="other"))
    obj = pod(annotations={"k8s.v1.cni.cncf.io/networks": "default/shared,other/theirs"})
    assert findings(obj, v) == []
    policy = Policy(severities={"pod-networks-namespace-isolation": Severity.DENY})
    [(rule, _, message)] = findings(obj, v, policy)
    assert rule == "pod-networks-namespace-isolation"
    assert "other/theirs from another namespace; only apps, default are allowed" in message


# Property: for random pods (labels, annotations, existing networks) and random profiles the patch
# never removes or changes a key the user wrote, applying it twice equals applying it once, and the
# result still parses.
names = st.sampled_from(["macvlan", "bridge", "other", "a-b"])
ifaces = st.sampled_from(["", "net1", "net2", "data0", "eth1"])
elements = st.fixed_dictionaries({"name": names}, optional={"interface": ifaces.filter(bool),
                                                           "namespace": st.sampled_from(["apps", "default"])})
user_networks = st.one_of(st.none(), st.just(""),
                          st.lists(st.tuples(names, ifaces), max_size=3).map(
                              lambda items: ",".join(n + (f"@{i}" if i else "") for n, i in items)),
                          st.lists(elements, max_size=3).map(json.dumps))
keys = st.sampled_from(["team", "k8s.v1.cni.cncf.io/networks", "multus-webhook.io/applied-profile", MARKER,
                       "x/y"])


@settings(max_examples=300, deadline=None)
@given(networks=user_networks, profile_networks=st.lists(elements, min_size=1, max_size=3),
       extra_annotations=st.dictionaries(keys, st.text(max_size=8), max_size=3),
       labels=st.dictionaries(st.sampled_from(["app", "tier"]), st.text(max_size=5), max_size=2),
       labelled=st.booleans(), affinity=st.booleans())
def test_mutation_never_loses_a_user_key_and_is_idempotent(
    networks: str | None, profile_networks: list[dict[str, Any]], extra_annotations: dict[str, str],
    labels: dict[str, str], labelled: bool, affinity: bool,
) -> None:
    annotations = dict(extra_annotations)
    if networks is not None:
        annotations["k8s.v1.cni.cncf.io/networks"] = networks
    if labelled:
        labels = {**labels, "multus-webhook.io/network-profile": "random"}
    spec: dict[str, Any] = {"containers": []}
    if affinity:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    v = view(profile("random", profile_networks))
    original = pod(labels=labels, annotations=annotations, spec=spec)
    frozen = copy.deepcopy(original)

    once = mutated(original, v)
    assert original == frozen  # the input is not modified in place
    assert once["metadata"]["labels"] == labels
    for key, value in annotations.items():
        if key != "k8s.v1.cni.cncf.io/networks":
            assert once["metadata"]["annotations"][key] == value
    if affinity:
        term = once["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"][0]
        assert term["matchExpressions"][0] == {"key": "zone", "operator": "In", "values": ["a"]}
    result_networks = once["metadata"].get("annotations", {}).get("k8s.v1.cni.cncf.io/networks")
    if networks is not None and result_networks != networks:
        assert parse_networks(networks, "apps").ok  # only a readable value is ever rewritten
        before = {s.key for s in parse_networks(networks, "apps").selections}
        after = parse_networks(result_networks, "apps")
        assert after.ok
        assert before <= {s.key for s in after.selections}
    assert mutate_pod(once, "apps", v, Policy()).ops == []


@pytest.mark.parametrize("annotations", [None, {}])
def test_pod_without_annotations_gets_them_added(annotations: dict[str, str] | None) -> None:
    out = mutated(pod(labels={"multus-webhook.io/network-profile": "data"}, annotations=annotations), view())
    assert out["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "macvlan"


_values = st.text(max_size=8) | st.none() | st.integers() | st.lists(st.text(max_size=3), max_size=2)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([NETWORKS_ANNOTATION, APPLIED_PROFILE_ANNOTATION, "a", "\u00e9"]), _values),
       st.none() | st.text(max_size=8), st.text(min_size=1, max_size=8))
def test_a_profile_applied_is_sized_from_what_it_changes_as_the_whole_would_be(
        annotations: dict[str, Any], merged: str | None, name: str) -> None:
    """/mutate and rule pod-network-profile size the profiled annotations from the entries the profile
    changes: the same count as annotations_size of them all, whatever the values (a hand-written one
    may be anything); the networks replaced, the applied profile kept unless it is missing (or null),
    every other annotation kept in its place."""
    profiled, size = with_profile(annotations, annotations_size(annotations), name, merged)
    assert size == annotations_size(profiled)
    expected = dict(annotations)
    if merged is not None:
        expected[NETWORKS_ANNOTATION] = merged
    if expected.get(APPLIED_PROFILE_ANNOTATION) is None:
        expected[APPLIED_PROFILE_ANNOTATION] = name
    assert profiled == expected
    assert list(profiled)[:len(annotations)] == list(annotations)


def test_pod_with_annotations_the_apiserver_will_refuse_is_not_mutated() -> None:
    huge = ",".join(f"net-{i}" for i in range(40_000))  # ~350 KiB, over the apiserver's 256 KiB
    result = mutate_pod(pod(labels={"multus-webhook.io/network-profile": "data"},
                            annotations={"k8s.v1.cni.cncf.io/networks": huge}), "apps", view(), Policy())
    assert result.ops == []
    assert "over the 262144 the apiserver accepts" in result.warnings[0]


def test_a_profile_that_would_take_the_annotations_past_the_limit_is_not_applied_and_the_pod_is_refused() -> None:
    """The apiserver checks the size after the mutating webhooks and says only "Too long": the user's
    annotations fit, the profile's bytes do not. Counted in UTF-8 bytes, as the apiserver counts."""
    labels = {"multus-webhook.io/network-profile": "data"}
    room = 256 * 1024 - len("blob")
    for blob in ("x" * (room - 10), "\u00e9" * ((room - 10) // 2)):
        labelled = pod(labels=labels, annotations={"blob": blob})
        result = mutate_pod(labelled, "apps", view(), Policy())
        assert result.ops == [], result.ops
        assert result.annotations == {"blob": blob}
        [denial] = [f for f in evaluate(Subject(labelled, "Pod", view=view(), default_namespace="apps"), Policy())
                    if f.severity is Severity.DENY]
        assert denial.rule == "pod-network-profile"
        assert denial.field == "metadata.annotations"
        assert denial.message.startswith("NetworkProfile data would bring metadata.annotations to 262205 bytes (the "
                                         "pod's own are 262134), over the 262144 the apiserver accepts, so it was not "
                                         "applied: make the pod's annotations at least 61 bytes shorter"), denial
    # A pod /mutate marked (the mark is not the pod's own): the refusal counts only the pod's own bytes.
    marked = pod(labels=labels, annotations={"blob": "x" * (room - 60), "multus-webhook.io/readiness-gate": "required"})
    [denial] = [f for f in evaluate(Subject(marked, "Pod", view=view(), default_namespace="apps"), Policy())
                if f.severity is Severity.DENY]
    assert denial.message.startswith("NetworkProfile data would bring metadata.annotations to 262155 bytes (the "
                                     "pod's own are 262084), over the 262144 the apiserver accepts, so it was not "
                                     "applied: make the pod's annotations at least 11 bytes shorter"), denial
    # With room for it, applied; and the mutated pod passes the rule.
    fits = pod(labels=labels, annotations={"blob": "x" * (room - 71)})  # to the byte
    out = mutated(fits, view())
    assert out["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "macvlan"
    assert not [f for f in evaluate(Subject(out, "Pod", view=view(), default_namespace="apps"), Policy())
                if f.rule == "pod-network-profile"]


def test_findings_per_rule_are_capped_with_a_note() -> None:
    networks = ",".join(f"gone-{i}" for i in range(100))
    found = [f for f in evaluate(Subject(pod(annotations={"k8s.v1.cni.cncf.io/networks": networks}), "Pod",
                                         view=view(), default_namespace="apps"), Policy())
             if f.rule == "pod-networks-nad-exists"]
    assert len(found) == 21
    assert "apps/gone-0" in found[0].message
    assert found[-1].message == ("more findings of rule pod-networks-nad-exists left out after the first 20: "
                                 "fix these and check again")


def test_the_gate_never_requires_a_label_the_controller_cannot_set() -> None:
    odd = json.dumps({"cniVersion": "0.3.1", "type": "my plugin", "ipam": {"type": "static"}})
    out = mutated(pod(annotations={"k8s.v1.cni.cncf.io/networks": "odd"}), view(nad("odd", odd)))
    assert gate(out)["labelSelector"]["matchLabels"] == {
        **AGENT_LABELS, "multus-webhook.io/multus-ready": "true", "cni.multus-webhook.io/static": "true"}


def test_patch_paths_escape_annotation_keys_and_only_add() -> None:
    """The patch is written key by key (not diffed): keys with '/' and '~' must be escaped as JSON
    pointers (RFC 6901), or the apiserver would write the value under another key."""
    user = pod(labels={"multus-webhook.io/network-profile": "data"},
               annotations={"a~b/c": "kept", "example.com/x": "kept too"})
    result = mutate_pod(user, "apps", view(), Policy())
    assert {op["op"] for op in result.ops} == {"add"}
    out = jsonpatch.apply_patch(user, result.ops)
    assert out["metadata"]["annotations"] == {"a~b/c": "kept", "example.com/x": "kept too",
                                              "k8s.v1.cni.cncf.io/networks": "macvlan",
                                              "multus-webhook.io/applied-profile": "data", MARKER: "required"}


def test_a_profile_element_the_pod_already_has_is_not_added_and_its_other_options_are_named() -> None:
    """The pod's own element wins (nothing the user wrote is rewritten), but the options the profile
    meant for it are not silently lost: the warning names them."""
    user = pod(labels={"multus-webhook.io/network-profile": "both"},
               annotations={"k8s.v1.cni.cncf.io/networks": "bridge,macvlan@data0"})
    result = mutate_pod(user, "apps", view(), Policy())
    out = jsonpatch.apply_patch(user, result.ops)
    assert out["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "bridge,macvlan@data0"
    assert result.warnings == [
        "NetworkProfile both spec.networks[1] (apps/bridge) is the pod's own element "
        "k8s.v1.cni.cncf.io/networks[0], which is kept as written: what the profile sets for ips is not applied"]
    # The same element without other options: nothing to say.
    same = pod(labels={"multus-webhook.io/network-profile": "data"},
               annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"})
    assert mutate_pod(same, "apps", view(), Policy()).warnings == []


def test_a_gated_pod_that_gains_pod_affinity_terms_of_its_own_loses_the_gate_term_for_the_node_affinity() -> None:
    """A later mutating webhook (reinvocationPolicy IfNeeded calls this one again) or a spec copied from
    a gated pod: with the gate term beside the user's, no single pod would match both."""
    gated = mutated(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}), view())
    mine = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
    gated["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"].append(mine)
    result = mutate_pod(gated, "apps", view(), Policy())
    out = jsonpatch.apply_patch(gated, result.ops)
    assert out["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [mine]
    [term] = out["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert READY_REQUIREMENT in term["matchExpressions"]
    assert mutate_pod(out, "apps", view(), Policy()).ops == []


@pytest.mark.parametrize("node_affinity", [
    "not an object", {"requiredDuringSchedulingIgnoredDuringExecution": []},
    {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": ["not an object"]}},
    {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": "x"}]}},
])
def test_the_node_affinity_gate_leaves_a_node_affinity_the_apiserver_refuses_for_it(node_affinity: Any) -> None:
    own = {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"},
               spec={"containers": [], "affinity": {"podAffinity": own, "nodeAffinity": node_affinity}})
    assert affinity_ops(mutate_pod(user, "apps", view(), Policy()).ops) == []


def quota(name: str, namespace: str = "apps", *, hard: dict[str, str] | None = None,
          scopes: list[str] | None = None, selected: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hard": hard if hard is not None else {"pods": "0"}}
    if scopes is not None:
        spec["scopes"] = scopes
    if selected is not None:
        spec["scopeSelector"] = {"matchExpressions": [{"scopeName": s, "operator": "Exists"} for s in selected]}
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def node_gate(obj: dict[str, Any]) -> list[Any]:
    [term] = obj["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    expressions: list[Any] = term["matchExpressions"]
    return expressions


MACVLAN_GATE = [READY_REQUIREMENT] + [{"key": f"cni.multus-webhook.io/{b}", "operator": "In", "values": ["true"]}
                                      for b in ["macvlan", "whereabouts"]]


@pytest.mark.parametrize("forbidding", [
    quota("no-cross-ns", selected=["CrossNamespacePodAffinity"]),
    quota("no-cross-ns", scopes=["CrossNamespacePodAffinity"]),
    # A limit above zero would count the gate against the owner's own cross-namespace affinity.
    quota("no-cross-ns", hard={"pods": "10"}, selected=["CrossNamespacePodAffinity", "NotBestEffort"]),
])
def test_in_a_namespace_whose_quota_counts_cross_namespace_affinity_the_gate_is_a_node_affinity(
        forbidding: dict[str, Any]) -> None:
    """The apiserver's quota counts any pod affinity term that names namespaces as cross-namespace,
    the gate's among them: with pods 0 in that scope every gated pod in the namespace was refused
    ("exceeded quota"), with nothing saying the webhook had added the term."""
    cluster = view(forbidding, quota("plain", scopes=["BestEffort"]), quota("elsewhere", "other",
                                                                            selected=["CrossNamespacePodAffinity"]))
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"})
    result = mutate_pod(user, "apps", cluster, Policy())
    out = jsonpatch.apply_patch(user, result.ops)
    assert "podAffinity" not in out["spec"]["affinity"]
    assert node_gate(out) == MACVLAN_GATE
    [warning] = result.warnings
    assert warning.startswith("namespace apps has ResourceQuota no-cross-ns with the scope CrossNamespacePodAffinity, "
                              "which counts a pod affinity term naming namespace multus-webhook")
    assert "reason NodeAffinity" in warning
    assert mutate_pod(out, "apps", cluster, Policy()).ops == []
    # Other namespaces, and quotas with other scopes, leave the pod affinity.
    assert "podAffinity" in mutated(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}), view(
        quota("plain", scopes=["BestEffort"]), quota("elsewhere", "other", selected=["CrossNamespacePodAffinity"])))[
        "spec"]["affinity"]


def test_the_quota_namespace_gate_follows_the_quotas_as_they_change() -> None:
    cluster = view(quota("b", selected=["CrossNamespacePodAffinity"]), quota("a", scopes=["CrossNamespacePodAffinity"]))
    asks = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"})
    assert "ResourceQuota a, b with the scope" in mutate_pod(asks, "apps", cluster, Policy()).warnings[0]
    cluster.remove(quota("a"))
    cluster.put(quota("b", scopes=["NotTerminating"]))  # its scope changed
    result = mutate_pod(asks, "apps", cluster, Policy())
    assert result.warnings == []
    assert "podAffinity" in jsonpatch.apply_patch(asks, result.ops)["spec"]["affinity"]


def test_a_gate_term_already_on_a_pod_in_a_quota_namespace_is_replaced_by_the_node_affinity() -> None:
    """Copied from a pod gated elsewhere, or written by the first call of a reinvocation: left there, the
    quota would refuse the pod for it."""
    gated = mutated(pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"}), view())
    cluster = view(quota("no-cross-ns", selected=["CrossNamespacePodAffinity"]))
    out = mutated(gated, cluster)
    assert out["spec"]["affinity"]["podAffinity"] == {"requiredDuringSchedulingIgnoredDuringExecution": []}
    assert node_gate(out) == MACVLAN_GATE


def test_the_policy_can_make_the_gate_a_node_affinity_in_every_namespace() -> None:
    """For an apiserver whose quota admission lists CrossNamespacePodAffinity in limitedResources: it
    refuses such pods in every namespace without a quota allowing them, which no API object shows."""
    policy = Policy.from_text("readinessGate: nodeAffinity\n", set())
    user = pod(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan"})
    result = mutate_pod(user, "apps", view(), policy)
    out = jsonpatch.apply_patch(user, result.ops)
    assert "podAffinity" not in out["spec"]["affinity"]
    assert node_gate(out) == MACVLAN_GATE
    assert result.warnings == []  # whoever set the policy knows; every pod would say it again
    assert mutate_pod(out, "apps", view(), policy).ops == []
    assert Policy.from_text("readinessGate: podAffinity\n", set()) == Policy()


def test_an_unknown_gate_in_the_policy_is_refused_naming_the_key() -> None:
    with pytest.raises(PolicyError, match="policy: readinessGate: Input should be 'podAffinity' or 'nodeAffinity'"):
        Policy.from_text("readinessGate: nodeaffinity\n", set())


def profile_ips(ips: list[str], v: StaticClusterView | None) -> list[tuple[str, str]]:
    """networkprofile-networks on a profile whose one network is NAD apps/hostlocal with these ips."""
    subject = Subject(profile("web", [{"name": "hostlocal", "ips": ips}]), "NetworkProfile",
                      **({"view": v} if v is not None else {}), default_namespace="apps")
    return [(str(f.severity), f.message) for f in evaluate(subject, Policy()) if f.rule == "networkprofile-networks"]


def test_a_profiles_ips_host_local_cannot_give_are_refused_as_on_a_pod() -> None:
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"})))
    [(severity, message)] = profile_ips(["10.99.0.1"], v)
    assert severity == "deny"
    assert message.startswith("spec.networks[0].ips[0] 10.99.0.1 lies in none of host-local's ranges")
    assert message.endswith("the plugin with the host-local IPAM of NAD apps/hostlocal, in every pod using this "
                            "profile)")
    [(_, gateway)] = profile_ips(["10.30.0.1"], v)
    assert "is the gateway of spec.config.ipam" in gateway
    assert profile_ips(["10.30.0.9"], v) == []
    # The NAD's literal runtimeConfig.ipRanges count as on a pod.
    literal = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"},
                                                 runtimeConfig={"ipRanges": [[{"subnet": "10.99.0.0/24"}]]})))
    assert profile_ips(["10.99.0.7"], literal) == []


def test_a_profiles_ips_on_an_unknown_nad_warn_that_they_are_unchecked() -> None:
    for v, unknown in ((view(), "which does not exist (yet)"), (None, "which is not known here (no cluster state)")):
        [(severity, message)] = profile_ips(["10.99.0.1"], v)
        assert severity == "warn"
        assert message.startswith(f"spec.networks[0].ips requests 10.99.0.1, not checked against NAD apps/hostlocal, "
                                  f"{unknown}: if its IPAM is host-local")


def _with_annotations(selection: dict[str, Any], spec: dict[str, Any] | None = None,
                      extra: dict[str, str] | None = None) -> dict[str, Any]:
    return pod(annotations={"k8s.v1.cni.cncf.io/networks": json.dumps([selection]), **(extra or {})}, spec=spec)


HOST_PORT_SPEC = {"containers": [{"name": "c", "image": "busybox",
                                  "ports": [{"containerPort": 80, "hostPort": 8080}]}]}


def test_a_fill_the_container_runtime_may_make_judges_the_literal_runtime_config_both_ways() -> None:
    # containerd passes portMappings for a pod with a hostPort, and Multus hands them on: libcni then
    # replaces the literal runtimeConfig of a plugin declaring portMappings. Whether the runtime does is not
    # known here: what only one case refuses is a warning that says why.
    v = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                    runtimeConfig={"ips": ["10.77.0.5"]}, capabilities={"portMappings": True})))
    selection = {"name": "hl", "ips": ["10.77.0.7"]}
    [(severity, message)] = only("pod-networks-ips-host-local",
                                 findings(_with_annotations(selection, HOST_PORT_SPEC), v))
    assert severity == "warn"
    assert ("(only if none of the capabilities spec.config declares (portMappings) gets a value for the pod, which "
            "would replace the NAD's literal runtimeConfig; not known here: the pod has a hostPort") in message
    assert "the pod has a hostPort, which the container runtime may pass as portMappings" in message
    # Without a hostPort nothing fills portMappings: the literal runtimeConfig.ips reach host-local.
    [(severity, _)] = only("pod-networks-ips-host-local", findings(_with_annotations(selection), v))
    assert severity == "deny"
    # What both cases refuse is still refused.
    [(severity, _)] = only("pod-networks-ips-host-local", findings(
        _with_annotations({"name": "hl", "ips": ["10.99.0.7"]}, HOST_PORT_SPEC), v))
    assert severity == "deny"
    # libcni injects under "runtimeConfig" only: a literal one spelled otherwise reaches host-local, ips and all.
    v = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                    RuntimeConfig={"ips": ["10.77.0.5"]}, capabilities={"portMappings": True})))
    [(severity, message)] = only("pod-networks-ips-host-local",
                                 findings(_with_annotations(selection, HOST_PORT_SPEC), v))
    assert severity == "deny", message
    assert "(only if" not in message
    # The bandwidth annotations the runtime reads count the same way, for the bandwidth capability.
    bw = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                     runtimeConfig={"ips": ["10.77.0.5"]}, capabilities={"bandwidth": True})))
    [(severity, message)] = only("pod-networks-ips-host-local", findings(
        _with_annotations(selection, None, {"kubernetes.io/ingress-bandwidth": "10M"}), bw))
    assert severity == "warn"
    assert "kubernetes.io/ingress-bandwidth" in message
    # A literal ipRanges only the replaced case loses: cni-args ips inside it are a warning too.
    ranges = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                         runtimeConfig=LITERAL_RANGES, capabilities={"portMappings": True})))
    [(severity, message)] = only("pod-networks-cni-args-ips", findings(
        _with_annotations({"name": "hl", "cni-args": {"ips": ["10.79.0.7"]}}, HOST_PORT_SPEC), ranges))
    assert severity == "warn"
    assert ("(only if one of the capabilities spec.config declares (portMappings) gets a value for the pod, which "
            "replaces the NAD's literal runtimeConfig; not known here") in message


def test_device_id_is_filled_only_for_a_pod_given_a_device() -> None:
    n = nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                               runtimeConfig=LITERAL_RANGES, capabilities={"deviceID": True}))
    n["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"}
    v = view(n)
    selection = {"name": "hl", "ips": ["10.79.0.7"]}
    # A pod requesting no intel.com/sriov gets no device: no deviceID, the literal ipRanges reach.
    assert only("pod-networks-ips-host-local", findings(_with_annotations(selection), v)) == []
    # One requesting it may get one (then its deviceID replaces the literal runtimeConfig).
    spec = {"containers": [{"name": "c", "image": "busybox",
                            "resources": {"limits": {"intel.com/sriov": "1"}}}]}
    [(severity, message)] = only("pod-networks-ips-host-local", findings(_with_annotations(selection, spec), v))
    assert severity == "warn"
    assert "only when the device plugin gave the pod a intel.com/sriov device" in message


#: A container requesting a device of the SR-IOV device plugin; a pod holding a DRA claim.
DEVICE_LIMITS = {"containers": [{"name": "c", "image": "busybox", "resources": {"limits": {"intel.com/sriov": "1"}}}]}
DRA_CLAIM = {"containers": [{"name": "c", "image": "busybox", "resources": {"claims": [{"name": "nic"}]}}],
             "resourceClaims": [{"name": "nic", "resourceClaimName": "sf"}]}


def device_nad(name: str, config: dict[str, Any]) -> dict[str, Any]:
    n = nad(name, json.dumps({"cniVersion": "1.0.0", **config}))
    n["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"}
    return n


def test_a_pod_on_a_device_plugin_nad_without_the_resource_gets_no_device() -> None:
    v = view(device_nad("hd", {"type": "host-device"}), device_nad("sriov", {"type": "sriov", "vlan": 10}),
             device_nad("own", {"type": "host-device", "device": "eth1"}))
    [(severity, message)] = only("pod-networks-device-resource", findings(networks({"name": "hd"}), v))
    assert severity == "deny"
    assert message.startswith('metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]: NAD apps/hd takes its device '
                              "from a device plugin (k8s.v1.cni.cncf.io/resourceName: intel.com/sriov), but no "
                              "container of the pod requests intel.com/sriov")
    assert "spec.config is host-device with no device of its own" in message
    assert "Multus matches by claim name through the kubelet's PodResources" in message
    # sriov-cni is not run here: its failure without deviceID is not certain to this rule.
    [(severity, message)] = only("pod-networks-device-resource", findings(networks({"name": "sriov"}), v))
    assert severity == "warn"
    assert "its plugins get no deviceID" in message
    # host-device with a device of its own moves that one.
    assert only("pod-networks-device-resource", findings(networks({"name": "own"}), v)) == []
    # A pod requesting the resource, holding a DRA claim, or naming the device itself gets one.
    for spec in (DEVICE_LIMITS, DRA_CLAIM):
        assert only("pod-networks-device-resource", findings(_with_annotations({"name": "hd"}, spec), v)) == []
    assert only("pod-networks-device-resource", findings(networks({"name": "hd", "deviceID": "0000:03:00.1"}), v)) == []


def test_a_dra_claim_may_bring_the_device_id_too() -> None:
    n = nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                               runtimeConfig=LITERAL_RANGES, capabilities={"deviceID": True}))
    n["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"}
    [(severity, message)] = only("pod-networks-ips-host-local", findings(
        _with_annotations({"name": "hl", "ips": ["10.79.0.7"]}, DRA_CLAIM), view(n)))
    assert severity == "warn"
    assert "only when the device plugin gave the pod a intel.com/sriov device" in message


def test_a_bridge_pods_own_mac_through_the_capability_leaves_its_cni_args_mac_unused() -> None:
    # bridge's loadNetConf takes a non-empty runtimeConfig.mac over args.cni.mac: with the mac
    # capability the pod's own mac is that runtimeConfig.mac, and the cni-args mac is never parsed.
    v = view(nad("br", json.dumps({"cniVersion": "1.0.0", "type": "bridge", "bridge": "br0",
                                   "capabilities": {"mac": True}})))
    for bad in ("zz", "01:00:5e:00:00:01"):
        assert only("pod-networks-cni-args-tuning", findings(networks(
            {"name": "br", "mac": "02:00:00:00:00:01", "cni-args": {"mac": bad}}), v)) == []
        # Without a mac of its own, bridge sets the cni-args one and fails.
        [(severity, _)] = only("pod-networks-cni-args-tuning", findings(networks(
            {"name": "br", "cni-args": {"mac": bad}}), v))
        assert severity == "deny"
    # Without the capability the pod's mac reaches bridge only as MAC= in CNI_ARGS, after args.cni.mac.
    plain = view(nad("br", json.dumps({"cniVersion": "1.0.0", "type": "bridge", "bridge": "br0"})))
    [(severity, _)] = only("pod-networks-cni-args-tuning", findings(networks(
        {"name": "br", "mac": "02:00:00:00:00:01", "cni-args": {"mac": "zz"}}), plain))
    assert severity == "deny"
    # On the default network Multus passes no runtimeConfig: the cni-args mac is set.
    default = pod(annotations={"v1.multus-cni.io/default-network": json.dumps(
        [{"namespace": "apps", "name": "br", "mac": "02:00:00:00:00:01", "cni-args": {"mac": "zz"}}])})
    [(severity, _)] = only("pod-networks-cni-args-tuning", findings(default, v))
    assert severity == "deny"


def test_a_profiles_ips_are_judged_both_ways_where_any_pod_using_it_may_have_a_fill() -> None:
    # A profile's pods are not known: one with a hostPort may get portMappings from the container runtime,
    # replacing the literal runtimeConfig of a plugin declaring portMappings; one without does not.
    v = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"},
                                           runtimeConfig={"ips": ["10.30.0.5"]}, capabilities={"portMappings": True})))
    [(severity, message)] = profile_ips(["10.30.0.7"], v)
    assert severity == "warn"
    assert "a pod with a hostPort gets portMappings from the container runtime" in message
    # Outside every range it fails either way.
    [(severity, _)] = profile_ips(["10.99.0.7"], v)
    assert severity == "deny"
    # Without such a capability the literal runtimeConfig reaches every pod's host-local.
    plain = view(nad("hostlocal", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"},
                                               runtimeConfig={"ips": ["10.30.0.5"]})))
    [(severity, _)] = profile_ips(["10.30.0.7"], plain)
    assert severity == "deny"


EXTRA = "pod-networks-ips-extra-addresses"
DUAL_STACK = {"type": "host-local", "ranges": [[{"subnet": "10.30.0.0/24"}], [{"subnet": "fd00:30::/64"}]]}


def test_host_local_gives_a_pod_requesting_one_address_one_of_each_other_range_set_too() -> None:
    # host-local (plugins v1.10.0 cmdAdd) allocates one address from each range set, the requested one from
    # the set holding it: a pod asking for 10.30.0.7 gets an IPv6 address as well.
    v = view(nad("hl", macvlan_with(DUAL_STACK)))
    [(severity, message)] = only(EXTRA, findings(networks({"name": "hl", "ips": ["10.30.0.7"]}), v))
    assert severity == "warn"
    assert message == (
        'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0].ips requests 10.30.0.7, which Multus passes to the '
        "host-local IPAM of NAD apps/hl in CNI_ARGS, and host-local gives one address of each of its range sets: the "
        "pod also gets an address it allocates from each other range set (spec.config.ipam.ranges[1][0]); to give a "
        "pod only the address it requests, keep one range set per address family it requests, or use static IPAM")
    # One range set: the pod gets the address it asked for and no other.
    one_set = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.30.0.0/24"})))
    assert only(EXTRA, findings(networks({"name": "hl", "ips": ["10.30.0.7"]}), one_set)) == []
    # An address host-local cannot give fails the ADD: pod-networks-ips-host-local's alone.
    assert only(EXTRA, findings(networks({"name": "hl", "ips": ["10.99.0.7"]}), v)) == []
    # Several addresses fail host-local's reading of IP=: pod-networks-ips-ipam's alone.
    assert only(EXTRA, findings(networks({"name": "hl", "ips": ["10.30.0.7", "fd00:30::7"]}), v)) == []


def test_host_local_gives_a_pod_the_addresses_the_nad_requests_for_every_pod_too() -> None:
    v = view(nad("hl", macvlan_with({"type": "host-local", "ranges": [[{"subnet": "10.30.0.0/24"}],
                                                                      [{"subnet": "10.31.0.0/24"}]]},
                                    args={"cni": {"ips": ["10.30.0.5"]}})))
    [(_, message)] = only(EXTRA, findings(networks({"name": "hl", "ips": ["10.31.0.7"]}), v))
    assert ("the pod also gets 10.30.0.5 (spec.config.args.cni.ips[0]), which the NAD requests for every pod; "
            in message)
    # The same address requested by both is one address.
    [(_, message)] = only(EXTRA, findings(networks({"name": "hl", "ips": ["10.30.0.5"]}), v))
    assert "which the NAD requests for every pod" not in message
    assert "the pod also gets an address it allocates from each other range set (spec.config.ipam.ranges[1][0])" \
        in message


def test_host_locals_literal_ip_ranges_are_a_range_set_of_its_own_unless_a_capability_is_filled() -> None:
    v = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"}, runtimeConfig=LITERAL_RANGES)))
    [(_, message)] = only(EXTRA, findings(networks({"name": "hl", "ips": ["10.79.0.7"]}), v))
    assert "an address it allocates from each other range set (spec.config.ipam)" in message
    # A pod's mac fills the declared capability, which replaces the literal runtimeConfig: one range set left.
    mac = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"}, runtimeConfig=LITERAL_RANGES,
                                      capabilities={"mac": True})))
    assert only(EXTRA, findings(networks({"name": "hl", "ips": ["10.77.0.7"], "mac": "02:00:00:00:00:01"}),
                                mac)) == []
    [(_, message)] = only(EXTRA, findings(networks({"name": "hl", "ips": ["10.77.0.7"]}), mac))
    assert "each other range set (spec.config.runtimeConfig.ipRanges[0][0])" in message
    # A fill not known here (portMappings for a pod with a hostPort): judged both ways, the message says so.
    ports = view(nad("hl", macvlan_with({"type": "host-local", "subnet": "10.77.0.0/24"},
                                        runtimeConfig=LITERAL_RANGES, capabilities={"portMappings": True})))
    [(severity, message)] = only(EXTRA, findings(_with_annotations({"name": "hl", "ips": ["10.77.0.7"]},
                                                                   HOST_PORT_SPEC), ports))
    assert severity == "warn"
    assert "(only if none of the capabilities spec.config declares (portMappings) gets a value for the pod" in message
    assert "the pod has a hostPort, which the container runtime may pass as portMappings" in message


def test_a_static_nads_literal_runtime_config_ips_replace_the_ips_a_pod_requests() -> None:
    # static (plugins v1.10.0 LoadIPAMConfig) takes a non-empty runtimeConfig.ips last, replacing IP= and
    # args.cni.ips; the NAD's literal one reaches it when no capability it declares is filled.
    literal = {"ips": ["10.30.0.9/24"]}
    v = view(nad("static", macvlan_with({"type": "static"}, runtimeConfig=literal,
                                        args={"cni": {"ips": ["10.30.0.8/24"]}})))
    [(severity, message)] = only(EXTRA, findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), v))
    assert severity == "warn"
    assert message.endswith(
        "static takes its addresses from spec.config.runtimeConfig.ips when there are any, dropping the ones of "
        "CNI_ARGS and args.cni.ips: the pod gets 10.30.0.9/24 instead; drop ips from the NAD's literal runtimeConfig, "
        'or declare "capabilities": {"ips": true} on spec.config so that the requested ips replace them')
    assert only(EXTRA, findings(networks({"name": "static", "ips": ["10.30.0.9/24"]}), v)) == []
    # The ips capability: the pod's ips replace the literal runtimeConfig.
    ips = view(nad("static", macvlan_with({"type": "static"}, runtimeConfig=literal, capabilities={"ips": True})))
    assert only(EXTRA, findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), ips)) == []
    # Another capability the pod fills (its mac) replaces it too: static then takes IP=.
    mac = view(nad("static", macvlan_with({"type": "static"}, runtimeConfig=literal, capabilities={"mac": True})))
    assert only(EXTRA, findings(networks({"name": "static", "ips": ["10.30.0.7/24"], "mac": "02:00:00:00:00:01"}),
                                mac)) == []
    [(_, message)] = only(EXTRA, findings(networks({"name": "static", "ips": ["10.30.0.7/24"]}), mac))
    assert "the pod gets 10.30.0.9/24 instead" in message


CAPS = "pod-networks-capabilities"
POD_MAC = "02:00:00:00:00:01"


def test_a_literal_runtime_config_mac_replaces_the_mac_a_pod_requests_unless_a_capability_is_filled() -> None:
    # macvlan (plugins v1.10.0 loadConf) reads MAC= (where Multus puts the pod's mac), then a non-empty
    # runtimeConfig.mac: the NAD's literal one, unless libcni replaced it with the filled capabilities.
    v = view(nad("mv", macvlan_with(STATIC_WITH_ADDRESS, runtimeConfig={"mac": "02:00:00:00:00:09"})))
    [(severity, message)] = only(CAPS, findings(networks({"name": "mv", "mac": POD_MAC}), v))
    assert severity == "warn"
    assert message == (
        'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0] requests mac 02:00:00:00:00:01, but spec.config, the '
        "macvlan plugin of NAD apps/mv, reads spec.config.runtimeConfig.mac (02:00:00:00:00:09) after the mac Multus "
        "passes it, and the interface gets 02:00:00:00:00:09: remove spec.config.runtimeConfig.mac, or declare "
        '"capabilities": {"mac": true} on spec.config so that the requested mac comes last')
    # The same address written otherwise is the same address.
    assert only(CAPS, findings(networks({"name": "mv", "mac": "02-00-00-00-00-09"}), v)) == []
    for capabilities in ({"mac": True}, {"ips": True}):
        filled = view(nad("mv", macvlan_with(STATIC_WITH_ADDRESS, runtimeConfig={"mac": "02:00:00:00:00:09"},
                                             capabilities=capabilities)))
        assert only(CAPS, findings(networks({"name": "mv", "mac": POD_MAC, "ips": ["10.30.0.7/24"]}), filled)) == []
    # A fill not known here: judged both ways.
    ports = view(nad("mv", macvlan_with(STATIC_WITH_ADDRESS, runtimeConfig={"mac": "02:00:00:00:00:09"},
                                        capabilities={"portMappings": True})))
    [(severity, message)] = only(CAPS, findings(_with_annotations({"name": "mv", "mac": POD_MAC}, HOST_PORT_SPEC),
                                                ports))
    assert severity == "warn"
    assert "(only if none of the capabilities spec.config declares (portMappings) gets a value for the pod" in message
    # tuning after it reads MAC= too, and sets the pod's mac last.
    chained = view(nad("mv", json.dumps({"cniVersion": "1.0.0", "name": "c", "plugins": [
        {"type": "macvlan", "master": "eth0", "ipam": STATIC_WITH_ADDRESS,
         "runtimeConfig": {"mac": "02:00:00:00:00:09"}},
        {"type": "tuning"}]})))
    assert only(CAPS, findings(networks({"name": "mv", "mac": POD_MAC}), chained)) == []


def test_bridges_and_tunings_args_cni_mac_replace_the_mac_a_pod_requests() -> None:
    bridge = {"cniVersion": "1.0.0", "type": "bridge", "bridge": "br0", "ipam": STATIC_WITH_ADDRESS}
    v = view(nad("br", json.dumps({**bridge, "args": {"cni": {"mac": "02:00:00:00:00:09"}}})))
    [(severity, message)] = only(CAPS, findings(networks({"name": "br", "mac": POD_MAC}), v))
    assert severity == "warn"
    assert ("the bridge plugin of NAD apps/br, reads spec.config.args.cni.mac (02:00:00:00:00:09) after the mac Multus "
            "passes it") in message
    # The selection's own cni-args, which Multus merges into args.cni.
    [(_, message)] = only(CAPS, findings(networks({"name": "br", "mac": POD_MAC,
                                                   "cni-args": {"mac": "02:00:00:00:00:08"}}), view(
        nad("br", json.dumps(bridge)))))
    assert 'reads metadata.annotations["k8s.v1.cni.cncf.io/networks"][0]["cni-args"].mac (02:00:00:00:00:08)' \
        in message
    # The mac capability puts the pod's mac in runtimeConfig, which bridge reads last.
    cap = view(nad("br", json.dumps({**bridge, "args": {"cni": {"mac": "02:00:00:00:00:09"}},
                                     "capabilities": {"mac": True}})))
    assert only(CAPS, findings(networks({"name": "br", "mac": POD_MAC}), cap)) == []
    # On the default network the capability gives the pod's mac nothing: no such advice.
    default = pod(annotations={"v1.multus-cni.io/default-network": json.dumps(
        [{"name": "br", "namespace": "kube-system", "mac": POD_MAC}])})
    [(_, message)] = only(CAPS, findings(default, view(nad("br", json.dumps(
        {**bridge, "args": {"cni": {"mac": "02:00:00:00:00:09"}}, "capabilities": {"mac": True}}),
        namespace="kube-system"))))
    assert message.endswith("remove spec.config.args.cni.mac")
    # tuning reads its args.cni.mac after runtimeConfig.mac: the capability does not help.
    tuning = view(nad("tu", json.dumps({"cniVersion": "1.0.0", "name": "c", "plugins": [
        {"type": "macvlan", "master": "eth0", "ipam": STATIC_WITH_ADDRESS, "capabilities": {"mac": True}},
        {"type": "tuning", "capabilities": {"mac": True}, "args": {"cni": {"mac": "02:00:00:00:00:09"}}}]})))
    [(_, message)] = only(CAPS, findings(networks({"name": "tu", "mac": POD_MAC}), tuning))
    assert message.endswith("and the interface gets 02:00:00:00:00:09: remove spec.config.plugins[1].args.cni.mac")
