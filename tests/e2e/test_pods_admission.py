"""Pods through kubectl on a real apiserver, with `multus-webhook serve --kubeconfig` (live cache):
profiles injected, missing NADs refused, pods without networks never sent to us, the policy ConfigMap
picked up without a restart."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually
from webhook.dev.stubhook import Review, StubWebhook

MACVLAN = json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
                      "ipam": {"type": "whereabouts", "range": "10.30.0.0/24"}})


def apply(cp: ControlPlane, *objects: dict[str, Any], check: bool = True, extra: tuple[str, ...] = ()) -> Any:
    return cp.kubectl("apply", *extra, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                     "items": list(objects)}), check=check)


def pod(name: str, namespace: str, *, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


@pytest.fixture
def ns(cluster: ControlPlane, live_webhook: WebhookServer) -> str:
    name = f"pods-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    apply(cluster,
          {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "data", "namespace": name}, "spec": {"config": MACVLAN}},
          {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
           "metadata": {"name": "storage", "namespace": name},
           "spec": {"networks": [{"name": "data", "interface": "stor0"}]}})
    # The cache must have seen both before a pod can use them.
    eventually(lambda: apply(cluster, pod("probe", name, labels={"multus-webhook.io/network-profile": "storage"}),
                             check=False, extra=("--dry-run=server",)).returncode == 0,
               "the profile and NAD in the webhook's cache")
    return name


def get_pod(cp: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cp.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)
    return out


def test_labelled_pod_is_stored_with_the_profile_networks_and_readiness_affinity(cluster: ControlPlane,
                                                                                   ns: str) -> None:
    result = apply(cluster, pod("web", ns, labels={"multus-webhook.io/network-profile": "storage", "app": "web"},
                                annotations={"team": "blue"}))
    assert "pod/web created" in result.stdout
    stored = get_pod(cluster, ns, "web")
    annotations = stored["metadata"]["annotations"]
    assert annotations["k8s.v1.cni.cncf.io/networks"] == "data@stor0"
    assert annotations["multus-webhook.io/applied-profile"] == "storage"
    assert annotations["team"] == "blue"
    assert stored["metadata"]["labels"] == {"multus-webhook.io/network-profile": "storage", "app": "web"}
    # The readiness gate, as the apiserver stored it: the agent pod on the same node must carry the
    # ready label and those of the NAD's binaries.
    assert stored["spec"]["affinity"] == {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {
            "app.kubernetes.io/name": "multus-webhook", "app.kubernetes.io/component": "agent",
            "multus-webhook.io/multus-ready": "true", "cni.multus-webhook.io/macvlan": "true",
            "cni.multus-webhook.io/whereabouts": "true"}},
        "namespaces": ["multus-webhook"], "topologyKey": "kubernetes.io/hostname"}]}}


def test_the_users_node_affinity_is_left_as_written(cluster: ControlPlane, ns: str) -> None:
    """The gate is a pod affinity: node affinity is not written to, also where an empty term (which
    matches no node) would make a requirement added to it widen the user's zone term; a required
    affinity with no term at all is left for the apiserver, which validates after the mutation, to
    refuse."""
    zone = {"key": "zone", "operator": "In", "values": ["a"]}
    asks = {"k8s.v1.cni.cncf.io/networks": "data"}

    def with_terms(name: str, terms: list[dict[str, Any]]) -> dict[str, Any]:
        obj = pod(name, ns, annotations=asks)
        obj["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": terms}}}
        return obj

    apply(cluster, with_terms("zoned", [{"matchExpressions": [zone]}, {}]))
    affinity = get_pod(cluster, ns, "zoned")["spec"]["affinity"]
    assert affinity["nodeAffinity"] == {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [zone]}, {}]}}
    [gate] = affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert gate["labelSelector"]["matchLabels"]["multus-webhook.io/multus-ready"] == "true"

    result = apply(cluster, with_terms("termless", []), check=False)
    assert result.returncode == 1
    assert "must have at least one node selector term" in result.stderr


NODE_GATE = [{"key": label, "operator": "In", "values": ["true"]} for label in (
    "multus-webhook.io/multus-ready", "cni.multus-webhook.io/macvlan", "cni.multus-webhook.io/whereabouts")]


def test_a_namespace_whose_quota_forbids_cross_namespace_affinity_gets_its_pods_with_a_node_affinity_gate(
        cluster: ControlPlane, ns: str) -> None:
    """The documented way to forbid cross-namespace pod affinity in a namespace; the quota counts any
    term that names namespaces, the gate's too, and refused every Multus pod there ("exceeded quota")."""
    apply(cluster, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-cross-ns", "namespace": ns},
                    "spec": {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": [
                        {"scopeName": "CrossNamespacePodAffinity", "operator": "Exists"}]}}})
    # What the quota controller (not run here) writes, without which the quota admits nothing it matches.
    cluster.kubectl("patch", "resourcequota", "no-cross-ns", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}}))
    # The quota is in force: a pod (never sent to the webhook) with a cross-namespace term of its own.
    crossing = pod("crossing", ns)
    crossing["spec"]["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "namespaces": ["default"],
         "topologyKey": "kubernetes.io/hostname"}]}}
    refused = apply(cluster, crossing, check=False)
    assert refused.returncode == 1
    assert "exceeded quota: no-cross-ns" in refused.stderr, refused.stderr

    multus = pod("multus", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"})
    result = eventually(lambda: apply(cluster, multus, check=False), "the quota in the webhook's cache",
                        until=lambda r: r.returncode == 0)
    warning = " ".join(result.stderr.replace("Warning:", "").split())  # kubectl's lines joined again
    assert (f"namespace {ns} has ResourceQuota no-cross-ns with the scope CrossNamespacePodAffinity, which counts a "
            "pod affinity term naming namespace multus-webhook") in warning, warning
    assert get_pod(cluster, ns, "multus")["spec"]["affinity"] == {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": NODE_GATE}]}}}
    # The quota gone, the pod affinity is back.
    cluster.kubectl("delete", "resourcequota", "no-cross-ns", "-n", ns)
    gated = json.dumps(pod("gated", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}))
    eventually(lambda: cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=gated, check=False),
               "the quota's deletion in the webhook's cache",
               until=lambda r: r.returncode == 0 and "podAffinity" in json.loads(r.stdout)["spec"]["affinity"])


def test_pod_naming_a_missing_nad_is_refused(cluster: ControlPlane, ns: str) -> None:
    result = apply(cluster, pod("lost", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data,nowhere"}),
                   check=False)
    assert result.returncode == 1
    assert 'admission webhook "pods.multus-webhook.io" denied the request:' in result.stderr
    assert f"NetworkAttachmentDefinition {ns}/nowhere" in result.stderr
    assert "[pod-networks-nad-exists]" in result.stderr


def test_ips_the_nads_ipam_cannot_parse_are_refused_and_cni_args_requests_pass(cluster: ControlPlane,
                                                                                  ns: str) -> None:
    # Multus passes mac and ips as MAC= and IP= in CNI_ARGS: macvlan reads the MAC, whereabouts the
    # ips, as CIDRs only, and returns them next to the address it allocates.
    networks = json.dumps([{"name": "data", "mac": "02:00:00:00:30:01", "ips": ["10.30.0.5"]}])
    result = apply(cluster, pod("bare", ns, annotations={"k8s.v1.cni.cncf.io/networks": networks}), check=False)
    assert result.returncode == 1
    assert 'admission webhook "pods.multus-webhook.io" denied the request:' in result.stderr
    assert "10.30.0.5 has no prefix length, but the whereabouts IPAM" in result.stderr
    assert "[pod-networks-ips-ipam]" in result.stderr
    networks = json.dumps([{"name": "data", "mac": "02:00:00:00:30:01", "ips": ["10.30.0.5/24"]}])
    result = apply(cluster, pod("cidr", ns, annotations={"k8s.v1.cni.cncf.io/networks": networks}),
                   extra=("--dry-run=server",))
    assert result.stderr.count("Warning:") == 2, result.stderr
    warnings = " ".join(result.stderr.replace("Warning:", "").split())  # kubectl's lines joined again
    assert (f"which Multus passes to the whereabouts IPAM of NAD {ns}/data in CNI_ARGS, and whereabouts returns them "
            "next to the addresses it gives every pod: the pod also gets an address it allocates from each of its "
            "ranges (10.30.0.0/24)") in warnings, warnings
    assert f"10.30.0.5/24 lies in the pool the whereabouts IPAM of NAD {ns}/data allocates from" in warnings, warnings


def test_each_warning_reaches_kubectl_whole(cluster: ControlPlane, ns: str) -> None:
    # Two elements with the same mistake: warnings that share their text past the element's index. The
    # apiserver records a warning text once per request, and drops one holding a control character.
    networks = json.dumps([{"name": "data", "interface": "d0", "ip": "10.30.0.5"},
                           {"name": "data", "interface": "d1", "ip": "10.30.0.6"},
                           {"name": "data", "interface": "d2", "i\tp": "10.30.0.7"}])
    result = apply(cluster, pod("warned", ns, annotations={"k8s.v1.cni.cncf.io/networks": networks}),
                   extra=("--dry-run=server",))
    warnings = [line.removeprefix("Warning: ") for line in result.stderr.splitlines()]
    for i, key in ((0, "ip"), (1, "ip"), (2, "i\\x09p")):
        assert any(w.startswith(f"k8s.v1.cni.cncf.io/networks[{i}].{key} is not a field Multus reads")
                   and w.endswith("[pod-networks-field-names]") for w in warnings), (i, result.stderr)


def test_mutation_and_validation_warnings_together_reach_kubectl_whole(cluster: ControlPlane, ns: str) -> None:
    """The apiserver records one request's warnings from every webhook together, and once they pass
    4096 characters in all cuts every one of them to 256: /mutate's and /validate's shares fit beside
    each other."""
    # Warnings of about 330 characters: /validate's fill most of 4000, what one endpoint once took.
    networks = json.dumps([{"name": "data", "interface": f"d{i}", f"typo-key-{i:03d}{'-x' * 17}y": "x"}
                           for i in range(60)])
    pinned = pod("pinned", ns, annotations={"k8s.v1.cni.cncf.io/networks": networks})
    pinned["spec"]["nodeName"] = "node-a"
    result = apply(cluster, pinned, extra=("--dry-run=server",))
    warnings = [line.removeprefix("Warning: ") for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert ("spec.nodeName is set to 'node-a': the pod is not held back until Multus is ready on that node, and "
            "may start without its secondary networks") in warnings, result.stderr
    field_names = [w for w in warnings if " is not a field Multus reads" in w]
    assert field_names, result.stderr
    assert all(w.endswith("[pod-networks-field-names]") for w in field_names), result.stderr
    # /validate had more to say than its share: the rest is counted, not sent.
    assert any(w.endswith("more warning(s) left out") for w in warnings), result.stderr


def test_a_profile_nested_too_deeply_to_read_is_denied_saying_why(cluster: ControlPlane, ns: str) -> None:
    """cni-args keeps any JSON, and the apiserver reads 10,000 levels of it; the webhook's reader stops
    at 1024, and says so rather than leaving the user the apiserver's "failed calling webhook"."""
    profile = json.dumps({"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
                          "metadata": {"name": "deep", "namespace": ns},
                          "spec": {"networks": [{"name": "data", "interface": "d0", "cni-args": "NESTED"}]}})
    # Written out: Python's json module stops short of this depth.
    result = cluster.kubectl("create", "-f", "-", check=False,
                             input=profile.replace('"NESTED"', '{"a": ' * 1100 + "1" + "}" * 1100))
    assert result.returncode == 1
    assert 'admission webhook "networkprofiles.multus-webhook.io" denied the request' in result.stderr, result.stderr
    assert "nested more than 1024 levels deep" in result.stderr, result.stderr


def test_pod_with_a_missing_profile_is_refused(cluster: ControlPlane, ns: str) -> None:
    result = apply(cluster, pod("p", ns, labels={"multus-webhook.io/network-profile": "absent"}), check=False)
    assert result.returncode == 1
    assert "NetworkProfile 'absent', which does not exist" in result.stderr


def test_invalid_network_profile_is_refused(cluster: ControlPlane, ns: str) -> None:
    profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
               "metadata": {"name": "twice", "namespace": ns},
               "spec": {"networks": [{"name": "data", "interface": "x0"}, {"name": "data", "interface": "x0"}]}}
    result = apply(cluster, profile, check=False)
    assert result.returncode == 1
    assert 'admission webhook "networkprofiles.multus-webhook.io" denied the request' in result.stderr
    assert "interface 'x0'" in result.stderr


def test_a_network_profile_keeps_every_selection_key_multus_reads(cluster: ControlPlane, ns: str) -> None:
    """Nothing lost: the CRD takes what a selection element may hold, as Multus reads it (a MAC of 8
    or 20 octets, an InfiniBand GUID, an IPAMClaim reference), and the apiserver stores it as written."""
    element = {"name": "data", "interface": "ib0", "mac": "00:00:00:00:fe:80:00:00",
               "infiniband-guid": "c2:11:22:33:44:55:66:77", "ipam-claim-reference": "claim-1"}
    profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
               "metadata": {"name": "ib", "namespace": ns}, "spec": {"networks": [element]}}
    result = apply(cluster, profile, check=False, extra=("--validate=strict",))
    assert result.returncode == 0, result.stderr
    stored = json.loads(cluster.kubectl("get", "networkprofile", "ib", "-n", ns, "-o", "json").stdout)
    assert stored["spec"]["networks"] == [element]
    # What Multus could not read is still refused, by the webhook that reads it as Multus does.
    profile["spec"]["networks"] = [{**element, "mac": "00:11"}]
    result = apply(cluster, profile, check=False)
    assert result.returncode == 1
    assert 'admission webhook "networkprofiles.multus-webhook.io" denied the request' in result.stderr


def test_policy_configmap_is_picked_up_without_a_restart(cluster: ControlPlane, ns: str) -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "multus-webhook-policy", "namespace": "multus-webhook"},
                 "data": {"policy": "rules:\n  pod-networks-nad-exists: warn\n"}}
    lost = pod("lost", ns, annotations={"k8s.v1.cni.cncf.io/networks": "nowhere"})
    apply(cluster, configmap)
    try:
        result = eventually(lambda: apply(cluster, lost, check=False, extra=("--dry-run=server",)),
                            "the policy ConfigMap to take effect", until=lambda r: r.returncode == 0)
        assert "Warning:" in result.stderr
        assert "nowhere" in result.stderr
    finally:
        cluster.kubectl("delete", "configmap", "multus-webhook-policy", "-n", "multus-webhook")
    eventually(lambda: apply(cluster, lost, check=False, extra=("--dry-run=server",)),
               "the policy file's rules to be back", until=lambda r: r.returncode == 1)


def test_only_pods_asking_for_networks_are_sent_to_the_webhook(cluster: ControlPlane, ns: str,
                                                              live_webhook: WebhookServer) -> None:
    assert live_webhook.stop() == 0
    try:
        plain = apply(cluster, pod("plain", ns, labels={"app": "x"}), check=False)
        assert plain.returncode == 0, plain.stderr  # matchConditions: never sent to us
        # Nor a host-network pod, whose selection Multus never reads: no CNI plugin runs for it.
        host = pod("host", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"})
        host["spec"]["hostNetwork"] = True
        hosted = apply(cluster, host, check=False)
        assert hosted.returncode == 0, hosted.stderr
        multus = apply(cluster, pod("multus", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}), check=False)
        assert multus.returncode == 1
        assert 'failed calling webhook "pods.multus-webhook.io"' in multus.stderr
    finally:
        live_webhook.start()
        eventually(lambda: live_webhook.readyz()[0] == 200, "the restarted webhook's first sync")


def test_a_pod_admitted_before_its_annotation_was_refused_can_still_be_updated(
    cluster: ControlPlane, ns: str, live_webhook: WebhookServer
) -> None:
    """A pod created in audit mode (or before the webhook was installed) with an annotation the rules now
    refuse: an update that leaves its selection annotations as they were is never even sent to the
    webhook (matchConditions), so its finalizer can be removed while the webhook is down; an update that
    changes them is judged, and what it leaves as it was is only a warning."""
    audit = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "multus-webhook-policy", "namespace": "multus-webhook"},
             "data": {"policy": "audit: true\n"}}
    held = pod("held", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data@eth0"})
    held["metadata"]["finalizers"] = ["multus-webhook.io/test-hold"]
    apply(cluster, audit)
    try:
        eventually(lambda: apply(cluster, held, check=False).returncode == 0, "audit mode to take effect")
    finally:
        cluster.kubectl("delete", "configmap", "multus-webhook-policy", "-n", "multus-webhook")
    eventually(lambda: apply(cluster, pod("new", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data@eth0"}),
                             check=False, extra=("--dry-run=server",)),
               "the denials to be back", until=lambda r: r.returncode == 1)

    def annotate(*pairs: str) -> Any:
        return cluster.kubectl("annotate", "pod", "held", "-n", ns, "--overwrite", *pairs, check=False)

    result = annotate("k8s.v1.cni.cncf.io/networks=data@lo")
    assert result.returncode == 1
    assert "requests interface lo" in result.stderr
    assert "[pod-networks-interface-names]" in result.stderr
    result = annotate(f"v1.multus-cni.io/default-network={ns}/data")  # a NAD that exists: the pod is pending
    assert result.returncode == 0, result.stderr
    warning = " ".join(result.stderr.replace("Warning:", "").split())  # kubectl's lines joined again
    assert ("allowed because it was already there: this update leaves annotation k8s.v1.cni.cncf.io/networks as "
            "it was; rule pod-networks-interface-names refuses it once it changes) [pod-networks-interface-names]"
            ) in warning

    # kubectl create, not apply (which adds its last-applied annotation): stored without an annotations map.
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod("bare", ns)))
    assert live_webhook.stop() == 0
    try:
        assert cluster.kubectl("label", "pod", "held", "-n", ns, "app=x").returncode == 0
        for name in ("held", "bare"):
            result = cluster.kubectl("annotate", "pod", name, "-n", ns, "--overwrite",
                                     "k8s.v1.cni.cncf.io/networks=data@net1", check=False)
            assert result.returncode == 1
            assert 'failed calling webhook "pods.multus-webhook.io"' in result.stderr
        cluster.kubectl("delete", "pod", "held", "-n", ns, "--wait=false")
        cluster.kubectl("patch", "pod", "held", "-n", ns, "--type=json",
                        "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
        eventually(lambda: cluster.kubectl("get", "pod", "held", "-n", ns, check=False).returncode == 1,
                   "the pod to go once its finalizer is removed")
    finally:
        live_webhook.start()
        eventually(lambda: live_webhook.readyz()[0] == 200, "the restarted webhook's first sync")


def test_a_pending_pods_networks_that_outgrow_its_readiness_gate_are_warned_about(cluster: ControlPlane,
                                                                                   ns: str) -> None:
    """The gate is written at CREATE and a pod's affinity cannot be changed: an UPDATE of a pending pod's
    networks that needs another binary, or the first networks of a pod created without any, is admitted
    with a warning that says to recreate the pod."""
    bridge = json.dumps({"cniVersion": "0.3.1", "type": "bridge", "bridge": "br-e2e",
                         "ipam": {"type": "whereabouts", "range": "10.31.0.0/24"}})
    apply(cluster, {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                    "metadata": {"name": "bridged", "namespace": ns}, "spec": {"config": bridge}})
    apply(cluster, pod("gated", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}))
    # kubectl create: never sent to the webhook (no Multus network), so no gate.
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod("plain", ns)))

    def annotate(name: str, networks: str, *extra: str) -> Any:
        return cluster.kubectl("annotate", "pod", name, "-n", ns, "--overwrite", *extra,
                               f"k8s.v1.cni.cncf.io/networks={networks}", check=False)

    eventually(lambda: annotate("gated", "bridged", "--dry-run=server").returncode == 0,
               "the bridge NAD in the webhook's cache")
    result = annotate("gated", "bridged")
    assert result.returncode == 0, result.stderr
    warning = " ".join(result.stderr.replace("Warning:", "").split())  # kubectl's lines joined again
    assert ("k8s.v1.cni.cncf.io/networks changed on a pod that is not on a node yet to networks that need the CNI "
            "binary bridge, which its readiness gate") in warning, warning
    assert "recreate the pod" in warning, warning
    assert warning.endswith("[pod-networks-gate-outgrown]"), warning
    # The gate covers the NAD's binaries (macvlan, whereabouts): no warning.
    result = annotate("gated", "data@net2")
    assert result.returncode == 0, result.stderr
    assert "pod-networks-gate-outgrown" not in result.stderr

    result = annotate("plain", "data")
    assert result.returncode == 0, result.stderr
    warning = " ".join(result.stderr.replace("Warning:", "").split())
    assert "has no readiness gate" in warning, warning
    assert "is not held back until Multus is ready" in warning, warning
    assert get_pod(cluster, ns, "plain")["spec"].get("affinity") is None


def test_the_status_subresource_cannot_store_a_selection_the_rules_refuse(
    cluster: ControlPlane, ns: str, live_webhook: WebhookServer
) -> None:
    """An UPDATE through pods/status may change the annotations too (the apiserver keeps only the spec):
    it is judged as a pod UPDATE. The status writes of the kubelet and of Multus (network-status),
    which leave the selection as it was, are never sent, so a webhook outage cannot hold them up."""
    apply(cluster, pod("stat", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}))

    def replace_status(change: Any) -> Any:
        stored = get_pod(cluster, ns, "stat")
        change(stored)
        return cluster.kubectl("replace", "--subresource=status", "-f", "-", input=json.dumps(stored), check=False)

    def networks(value: str) -> Any:
        return lambda p: p["metadata"]["annotations"].update({"k8s.v1.cni.cncf.io/networks": value})

    result = replace_status(networks("data@lo"))
    assert result.returncode == 1
    assert "[pod-networks-interface-names]" in result.stderr
    assert get_pod(cluster, ns, "stat")["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "data"

    assert live_webhook.stop() == 0
    try:
        kubelet = replace_status(lambda p: p["status"].update({"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}))
        assert kubelet.returncode == 0, kubelet.stderr
        network_status = replace_status(lambda p: p["metadata"]["annotations"].update(
            {"k8s.v1.cni.cncf.io/network-status": "[]"}))
        assert network_status.returncode == 0, network_status.stderr
        result = replace_status(networks("data@net1"))
        assert result.returncode == 1
        assert 'failed calling webhook "pods.multus-webhook.io"' in result.stderr
    finally:
        live_webhook.start()
        eventually(lambda: live_webhook.readyz()[0] == 200, "the restarted webhook's first sync")


def test_a_profile_that_would_take_the_annotations_past_the_apiservers_limit_is_refused_saying_so(
        cluster: ControlPlane, ns: str) -> None:
    """The apiserver checks the annotations' size after the mutating webhooks: a pod whose own fit was
    refused with only "metadata.annotations: Too long" once the profile's bytes were added."""
    blob = "x" * (256 * 1024 - len("blob") - 40)
    plain = pod("big", ns, annotations={"blob": blob})
    # kubectl create, not apply (whose last-applied annotation would double the size).
    fits = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(plain), check=False)
    assert fits.returncode == 0, fits.stderr
    labelled = pod("big", ns, labels={"multus-webhook.io/network-profile": "storage"}, annotations={"blob": blob})
    result = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(labelled), check=False)
    assert result.returncode == 1
    assert "Too long" not in result.stderr, result.stderr
    assert ('admission webhook "pods.multus-webhook.io" denied the request: NetworkProfile storage would bring '
            "metadata.annotations to 262181 bytes (the pod's own are 262104), over the 262144 the apiserver "
            "accepts, so it was not applied: make the pod's annotations at least 37 bytes shorter"
            ) in result.stderr, result.stderr
    assert "[pod-network-profile]" in result.stderr


def test_a_binding_cannot_set_a_selection_the_pod_webhook_never_sees(cluster: ControlPlane, ns: str) -> None:
    """The apiserver copies a Binding's annotations onto the pod it binds, with no admission of the pod:
    a selection the rules refuse on the pod (an interface named lo) was stored through pods/binding (and
    the older bindings resource). A binding without annotations, as the scheduler's, still binds."""
    apply(cluster, pod("bound", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}),
          pod("plain", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}),
          pod("legacy", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}))

    def bind(name: str, path: str, annotations: dict[str, str] | None = None) -> Any:
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
        return cluster.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(binding), check=False)

    for name, path in (("bound", f"/api/v1/namespaces/{ns}/pods/bound/binding"),
                       ("legacy", f"/api/v1/namespaces/{ns}/bindings")):
        result = bind(name, path, {"k8s.v1.cni.cncf.io/networks": "data@lo"})
        assert result.returncode == 1, (name, result.stdout)
        assert 'admission webhook "pod-bindings.multus-webhook.io" denied the request' in result.stderr, result.stderr
        assert (f"the Binding of pod {ns}/{name} sets metadata.annotations['k8s.v1.cni.cncf.io/networks'], which "
                "the apiserver copies onto the pod without judging it") in result.stderr, result.stderr
        stored = get_pod(cluster, ns, name)
        assert stored["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "data"
        assert not stored["spec"].get("nodeName")
    result = bind("plain", f"/api/v1/namespaces/{ns}/pods/plain/binding")
    assert result.returncode == 0, result.stderr
    assert get_pod(cluster, ns, "plain")["spec"]["nodeName"] == "node-a"


def test_a_policy_sets_the_binding_rule(cluster: ControlPlane, ns: str) -> None:
    """The Binding refusal is rule pod-binding-selection: the policy ConfigMap turns it into a warning
    (a cluster whose own binder annotates), as it does any rule."""
    apply(cluster, pod("bound", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}))
    binding = json.dumps({"apiVersion": "v1", "kind": "Binding",
                          "metadata": {"name": "bound", "annotations": {"k8s.v1.cni.cncf.io/networks": "data"}},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}})

    def bind() -> Any:
        return cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{ns}/pods/bound/binding?dryRun=All", "-f",
                               "-", input=binding, check=False)

    def set_policy(text: str) -> None:
        cluster.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "multus-webhook-policy",
                                                                  "namespace": "multus-webhook"},
            "data": {"policy": text}}))

    denied = bind()
    assert denied.returncode == 1
    assert denied.stderr.rstrip().endswith("bind it without that annotation [pod-binding-selection]"), denied.stderr
    set_policy("rules:\n  pod-binding-selection: warn\n")
    try:
        warned = eventually(bind, "the policy in force", until=lambda r: r.returncode == 0)
        assert (f"Warning: the Binding of pod {ns}/bound sets metadata.annotations['k8s.v1.cni.cncf.io/networks'], "
                "which the apiserver copies onto the pod") in warned.stderr, warned.stderr
    finally:
        set_policy("{}")
        eventually(bind, "the default policy back", until=lambda r: r.returncode == 1)


def test_a_later_mutating_webhook_gets_the_gate_fitted_to_what_it_added(cluster: ControlPlane, ns: str) -> None:
    """reinvocationPolicy: IfNeeded, with somebody else's mutating webhook called after ours (its
    configuration's name sorts after multus-webhook): a required pod affinity term it adds moves the
    gate to the node affinity (the scheduler needs one pod to match every required pod affinity term),
    and a network it adds is in the pod's networks, its gate and nothing written twice."""
    cache = {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}

    def answer(review: Review) -> dict[str, Any]:
        mode = (review.object["metadata"].get("labels") or {}).get("sidecar")
        affinity = review.object["spec"].get("affinity") or {}
        terms = (affinity.get("podAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []
        networks = (review.object["metadata"].get("annotations") or {}).get("k8s.v1.cni.cncf.io/networks", "")
        if mode == "affinity" and cache not in terms:
            ops = [{"op": "add", "path": "/spec/affinity", "value": {**affinity, "podAffinity": {
                **affinity.get("podAffinity", {}), "requiredDuringSchedulingIgnoredDuringExecution": [*terms, cache]}}}]
        elif mode == "networks" and "inj0" not in networks:
            ops = [{"op": "add", "path": "/metadata/annotations/k8s.v1.cni.cncf.io~1networks",
                    "value": f"{networks},data@inj0"}]
        else:
            return {"allowed": True}
        return {"allowed": True, "patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}

    stub = StubWebhook(cluster, "zz-sidecar", [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                                               "operations": ["CREATE"], "scope": "Namespaced"}], answer)
    stub.configuration["kind"] = "MutatingWebhookConfiguration"
    stub.configuration["webhooks"][0]["reinvocationPolicy"] = "Never"
    labels = {"multus-webhook.io/network-profile": "storage"}
    try:
        stub.start(lambda: apply(cluster, pod("probe-stub", ns), check=False, extra=("--dry-run=server",)))
        apply(cluster, pod("with-cache", ns, labels={**labels, "sidecar": "affinity"}),
              pod("injected", ns, labels={**labels, "sidecar": "networks"}))
    finally:
        stub.stop()
        cluster.kubectl("delete", "mutatingwebhookconfiguration", "zz-sidecar", "--ignore-not-found", check=False)
    affinity = get_pod(cluster, ns, "with-cache")["spec"]["affinity"]
    assert affinity == {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [cache]},
                        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": NODE_GATE}]}}}
    injected = get_pod(cluster, ns, "injected")
    assert injected["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "data@stor0,data@inj0"
    [gate] = injected["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert gate["labelSelector"]["matchLabels"]["cni.multus-webhook.io/macvlan"] == "true"


def test_the_node_affinity_gate_goes_into_every_term_and_a_second_pass_changes_nothing(cluster: ControlPlane,
                                                                                      ns: str) -> None:
    """A pod with required pod affinity of its own gets the node form: terms are ORed, so every term
    that selects something (matchFields alone included) carries the gate; an empty term, which matches
    no node, stays empty; preferred terms are kept, and a pod with only those gets a required term. The
    stored pod sent again (what reinvocation does) comes back as it was."""
    own = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    zone = {"key": "zone", "operator": "In", "values": ["a"]}
    named = {"key": "metadata.name", "operator": "In", "values": ["n1"]}
    preferred = [{"weight": 1, "preference": {"matchExpressions": [{"key": "z", "operator": "Exists"}]}}]
    termed = pod("termed", ns, labels={"multus-webhook.io/network-profile": "storage"})
    termed["spec"]["affinity"] = {**own, "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [zone]}, {"matchFields": [named]}, {}]},
        "preferredDuringSchedulingIgnoredDuringExecution": preferred}}
    liked = pod("liked", ns, labels={"multus-webhook.io/network-profile": "storage"})
    liked["spec"]["affinity"] = {**own, "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}

    def created(obj: dict[str, Any]) -> dict[str, Any]:
        out = cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(obj))
        stored: dict[str, Any] = json.loads(out.stdout)
        return stored

    first = created(termed)
    assert first["spec"]["affinity"]["nodeAffinity"] == {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [zone, *NODE_GATE]}, {"matchFields": [named], "matchExpressions": NODE_GATE}, {}]},
        "preferredDuringSchedulingIgnoredDuringExecution": preferred}
    assert first["spec"]["affinity"]["podAffinity"] == own["podAffinity"]
    assert created(liked)["spec"]["affinity"]["nodeAffinity"] == {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": NODE_GATE}]},
        "preferredDuringSchedulingIgnoredDuringExecution": preferred}
    again = created({"apiVersion": "v1", "kind": "Pod", "metadata": {
        k: first["metadata"][k] for k in ("name", "namespace", "labels", "annotations")}, "spec": first["spec"]})
    assert again["metadata"]["annotations"] == first["metadata"]["annotations"]
    assert again["spec"] == first["spec"]


def test_a_profile_label_changed_on_an_existing_pod_is_warned_about(cluster: ControlPlane, ns: str) -> None:
    """A profile is applied at CREATE only: a label set on an existing pod (even naming no profile)
    changed nothing and said nothing."""
    apply(cluster, pod("later", ns, annotations={"k8s.v1.cni.cncf.io/networks": "data"}))

    def label(*args: str) -> Any:
        result = cluster.kubectl("label", "pod", "later", "-n", ns, "--overwrite", *args, check=False)
        assert result.returncode == 0, result.stderr
        return " ".join(result.stderr.replace("Warning:", "").split())  # kubectl's lines joined again

    warning = label("multus-webhook.io/network-profile=storage")
    assert ("metadata.labels[\"multus-webhook.io/network-profile\"] set to 'storage' on an existing pod: a "
            "NetworkProfile is applied only when a pod is created, so this pod's k8s.v1.cni.cncf.io/networks "
            "annotation and readiness gate stay as they are; recreate the pod") in warning, warning
    assert warning.endswith("[pod-network-profile-changed]"), warning
    assert get_pod(cluster, ns, "later")["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "data"
    assert "changed from 'storage' to 'absent'" in label("multus-webhook.io/network-profile=absent")
    assert "removed (it was 'absent')" in label("multus-webhook.io/network-profile-")
    assert label("app=x") == ""  # other labels: not sent, nothing said


def test_a_profile_label_removed_from_a_pod_without_selection_annotations_is_warned_about(
        cluster: ControlPlane, ns: str) -> None:
    """The pod without the label asks Multus for nothing: the UPDATE is sent for its OLD object's label.
    Before, asks-for-multus-networks looked at the new object only, and the removal said nothing."""
    apply(cluster, pod("bare", ns))

    def label(*args: str) -> str:
        result = cluster.kubectl("label", "pod", "bare", "-n", ns, "--overwrite", *args, check=False)
        assert result.returncode == 0, result.stderr
        return " ".join(result.stderr.replace("Warning:", "").split())

    assert "set to 'storage' on an existing pod" in label("multus-webhook.io/network-profile=storage")
    annotations = get_pod(cluster, ns, "bare")["metadata"].get("annotations", {})
    assert not {"k8s.v1.cni.cncf.io/networks", "v1.multus-cni.io/default-network"} & set(annotations)
    warning = label("multus-webhook.io/network-profile-")
    assert "removed (it was 'storage') on an existing pod" in warning, warning
    assert warning.endswith("[pod-network-profile-changed]"), warning
    # Without the label before or after: still not sent.
    assert label("app=x") == ""
