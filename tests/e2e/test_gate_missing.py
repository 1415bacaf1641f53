"""A selection another mutating webhook adds, and the policy's defaultNetworks, against the readiness
gate, end to end: a real apiserver (which orders and reinvokes the mutating webhooks), a real
kube-scheduler, `multus-webhook serve` (webhook, live cache, controller) and real `multus-webhook
agent`s on stand-in hosts. The second mutating webhook is a stub named network-resources-injector,
which the apiserver calls after ours (configurations in order of name), as that project's
user-defined injections are. The kubelet is the only part played by the test (Node status, bootID).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webhook.agent.standin import StandInHost, Subcommand
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually, register_webhook, webhook_configurations
from webhook.dev.stubhook import Review, StubWebhook, allow, patch
from webhook.names import APPLIED_PROFILE_ANNOTATION, NAMESPACE, PROFILE_LABEL
from webhook.rules.gate import required_gate_labels

IMAGE = "registry.invalid/none:never-pulled"  # no kubelet: never pulled
NETWORKS = "k8s.v1.cni.cncf.io/networks"
MACVLAN = json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0",
                      "ipam": {"type": "whereabouts", "range": "10.40.0.0/24"}})
BRIDGE = json.dumps({"cniVersion": "0.3.1", "type": "bridge", "bridge": "br-default",
                     "ipam": {"type": "whereabouts", "range": "10.50.0.0/24"}})
PODS = [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"],
         "scope": "Namespaced"}]
READY = "multus-webhook.io/multus-ready"
#: /mutate's marker on every pod it handles that asks Multus for networks.
MARKER = "multus-webhook.io/readiness-gate"
RULE = "[pod-networks-gate-missing]"
MUTATE_EVERY_POD_COMPONENT = "manifests/components/mutate-every-pod"


@pytest.fixture(scope="module")
def agent(gate_cp: ControlPlane, gate_server: WebhookServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Callable[[str, tuple[str, ...]], None]]:
    """``agent(node, binaries)``: Multus ready on ``node`` with these CNI binaries, as its agent reports
    (once for the module: a node already started is left as it is)."""
    running: dict[str, tuple[StandInHost, Subcommand]] = {}

    def start(node: str, binaries: tuple[str, ...]) -> None:
        if node in running:
            return
        host = StandInHost()
        host.make_ready("boot-1", binaries=("multus-shim", *binaries))
        log = tmp_path_factory.mktemp(f"agent-{node}") / "agent.log"
        running[node] = host, Subcommand(["agent", "--kubeconfig", str(gate_cp.kubeconfig), "--node-name", node,
                                          "--host-root", str(host.root), "--interval", "1", "--poll-interval",
                                          "0.2"], log).start()
        eventually(lambda: get(gate_cp, "pod", "-n", NAMESPACE, f"agent-{node}")["metadata"]["labels"].get(READY)
                   == "true", f"Multus ready on {node}")

    yield start
    for host, process in running.values():
        process.stop()
        host.cleanup()


def get(gate_cp: ControlPlane, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(gate_cp.kubectl("get", *args, "-o", "json").stdout)
    return out


def pod(name: str, namespace: str, *, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"containers": [{"name": "main", "image": IMAGE}]}}


def create(gate_cp: ControlPlane, obj: dict[str, Any], *extra: str, check: bool = True) -> Any:
    return gate_cp.kubectl("create", *extra, "-f", "-", input=json.dumps(obj), check=check)


def gate(obj: dict[str, Any]) -> frozenset[str] | None:
    return required_gate_labels(obj["spec"].get("affinity"), NAMESPACE)


def placed(gate_cp: ControlPlane, namespace: str, name: str) -> str:
    node: str = eventually(lambda: get(gate_cp, "pod", "-n", namespace, name)["spec"].get("nodeName"),
                           f"pod {name} placed")
    return node


def unschedulable(gate_cp: ControlPlane, namespace: str, name: str) -> None:
    eventually(lambda: any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                           for c in get(gate_cp, "pod", "-n", namespace, name).get("status", {}).get("conditions", [])),
               f"the scheduler to hold pod {name} back")


def injector(review: Review) -> dict[str, Any]:
    """network-resources-injector's user-defined injections: by the pod's label, the networks annotation
    (or, as a policy engine might, the profile label)."""
    metadata = review.object["metadata"]
    wants = (metadata.get("labels") or {}).get("inject")
    if wants == "networks" and NETWORKS not in (metadata.get("annotations") or {}):
        ops = [] if metadata.get("annotations") is not None else [
            {"op": "add", "path": "/metadata/annotations", "value": {}}]
        return patch([*ops, {"op": "add", "path": "/metadata/annotations/k8s.v1.cni.cncf.io~1networks",
                             "value": "data"}])
    if wants == "profile" and PROFILE_LABEL not in metadata["labels"]:
        return patch([{"op": "add", "path": "/metadata/labels/multus-webhook.io~1network-profile",
                       "value": "p1"}])
    return dict(allow(review))


@pytest.fixture
def ns(gate_cp: ControlPlane, gate_server: WebhookServer) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    gate_cp.kubectl("create", "namespace", name)
    gate_cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
         "metadata": {"name": "data", "namespace": name}, "spec": {"config": MACVLAN}},
        {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
         "metadata": {"name": "p1", "namespace": name}, "spec": {"networks": [{"name": "data", "interface": "data0"}]}},
    ]}))
    # Both in the webhook's cache: a pod naming them is admitted (a dry run, so nothing is created).
    eventually(lambda: create(gate_cp, pod("probe", name, labels={PROFILE_LABEL: "p1"}), "--dry-run=server",
                              check=False).returncode == 0, "the NAD and the profile in the webhook's cache")
    return name


@pytest.fixture
def injected(gate_cp: ControlPlane, gate_server: WebhookServer, ns: str) -> Iterator[StubWebhook]:
    stub = StubWebhook(gate_cp, "network-resources-injector", PODS, injector, mutating=True)
    stub.start(lambda: create(gate_cp, pod("probe-injector", ns), "--dry-run=server", check=False))
    yield stub
    stub.stop()


@pytest.fixture
def mutate_every_pod(gate_cp: ControlPlane, gate_server: WebhookServer) -> Iterator[None]:
    register_webhook(gate_cp, gate_server, components=["mutate-every-pod"])
    yield
    register_webhook(gate_cp, gate_server)


def test_a_selection_another_webhook_adds_after_ours_was_skipped_is_refused_saying_why(
        gate_cp: ControlPlane, ns: str, injected: StubWebhook) -> None:
    for name, wants in (("injected", "networks"), ("profiled", "profile")):
        refused = create(gate_cp, pod(name, ns, labels={"inject": wants}), check=False)
        assert refused.returncode != 0, f"pod {name} admitted without its readiness gate"
        assert "[pod-networks-gate-missing]" in refused.stderr
        assert "another mutating webhook that ran after ours was skipped added the selection" in refused.stderr
        assert "manifests/components/mutate-every-pod" in refused.stderr
        # The injector did its part: the apiserver sent /validate the pod with the selection.
        assert [r.name for r in injected.reviews(name)] == [name]
    assert "NetworkProfile p1 is not applied" in refused.stderr
    # A pod that asks for the networks itself goes through /mutate: it is gated and admitted.
    create(gate_cp, pod("asks", ns, annotations={NETWORKS: "data"}))
    assert gate(get(gate_cp, "pod", "-n", ns, "asks")) is not None


def test_with_mutate_every_pod_the_injected_selection_is_gated_and_placed_where_multus_is_ready(
        gate_cp: ControlPlane, ns: str, injected: StubWebhook, mutate_every_pod: None,
        agent: Callable[[str, tuple[str, ...]], None]) -> None:
    # The apiserver reads webhook configurations through an informer: refused until it has the new one.
    # (Not a dry run: the stub injects nothing into those.)
    eventually(lambda: create(gate_cp, pod("injected", ns, labels={"inject": "networks"}), check=False).returncode == 0,
               "the apiserver to call /mutate for every pod")
    create(gate_cp, pod("profiled", ns, labels={"inject": "profile"}))
    injected_pod, profiled_pod = get(gate_cp, "pod", "-n", ns, "injected"), get(gate_cp, "pod", "-n", ns, "profiled")
    assert injected_pod["metadata"]["annotations"][NETWORKS] == "data"
    assert profiled_pod["metadata"]["annotations"][NETWORKS] == "data@data0"
    assert profiled_pod["metadata"]["annotations"][APPLIED_PROFILE_ANNOTATION] == "p1"
    needs = {READY, "cni.multus-webhook.io/macvlan", "cni.multus-webhook.io/whereabouts"}
    assert gate(injected_pod) == gate(profiled_pod) == needs
    # The gate holds: placed on the node where Multus is ready with macvlan, once there is one.
    agent("node-a", ("macvlan", "whereabouts"))
    assert placed(gate_cp, ns, "injected") == placed(gate_cp, ns, "profiled") == "node-a"


def test_the_gate_requires_the_binaries_of_the_policys_default_networks(
        gate_cp: ControlPlane, gate_server: WebhookServer, ns: str,
        agent: Callable[[str, tuple[str, ...]], None]) -> None:
    """Multus attaches defaultNetworks (NADs in its multusNamespace) to every pod outside systemNamespaces:
    a pod goes to a node that has their binaries too. node-a has macvlan and whereabouts but no bridge."""
    agent("node-a", ("macvlan", "whereabouts"))  # a no-op when the test above started it
    # No node has bridge yet: without the rule's warning, the NAD would be refused (nad-cni-binaries).
    policy = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "multus-webhook-policy",
                                                                  "namespace": NAMESPACE},
              "data": {"policy": "defaultNetworks: [cluster-bridge]\nrules: {nad-cni-binaries: warn}\n"}}
    gate_cp.kubectl("apply", "-f", "-", input=json.dumps(policy))
    try:
        eventually(lambda: gate_cp.kubectl("apply", "-f", "-", check=False, input=json.dumps({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "cluster-bridge", "namespace": "kube-system"}, "spec": {"config": BRIDGE}})
        ).returncode == 0, "the policy in force")
        with_defaults = {READY, "cni.multus-webhook.io/macvlan", "cni.multus-webhook.io/whereabouts",
                         "cni.multus-webhook.io/bridge"}
        eventually(lambda: gate(json.loads(create(gate_cp, pod("probe-defaults", ns, annotations={NETWORKS: "data"}),
                                                  "--dry-run=server", "-o", "json").stdout)),
                   "the gate to require the default network's binaries (the policy in force)",
                   until=lambda g: g == with_defaults)
        create(gate_cp, pod("with-defaults", ns, annotations={NETWORKS: "data"}))
        unschedulable(gate_cp, ns, "with-defaults")
        # Without the component a pod with no selection never reaches /mutate: no gate (docs/install.md).
        create(gate_cp, pod("bare", ns))
        assert gate(get(gate_cp, "pod", "-n", ns, "bare")) is None
        register_webhook(gate_cp, gate_server, components=["mutate-every-pod"])
        try:
            eventually(lambda: gate(json.loads(create(gate_cp, pod("probe-bare", ns), "--dry-run=server", "-o",
                                                      "json").stdout)), "the apiserver to call /mutate for every pod")
            create(gate_cp, pod("bare-gated", ns))
            assert gate(get(gate_cp, "pod", "-n", ns, "bare-gated")) == {
                READY, "cni.multus-webhook.io/bridge", "cni.multus-webhook.io/whereabouts"}
            # Multus's systemNamespaces get no default network: no gate.
            create(gate_cp, pod("system", "kube-system"))
            assert gate(get(gate_cp, "pod", "-n", "kube-system", "system")) is None
        finally:
            register_webhook(gate_cp, gate_server)
        unschedulable(gate_cp, ns, "bare-gated")
        agent("node-b", ("macvlan", "whereabouts", "bridge"))
        assert placed(gate_cp, ns, "with-defaults") == placed(gate_cp, ns, "bare-gated") == "node-b"
    finally:
        gate_cp.kubectl("delete", "configmap", "-n", NAMESPACE, "multus-webhook-policy")
        gate_cp.kubectl("delete", "pod", "-n", "kube-system", "system", "--force", "--grace-period=0", check=False)


# --- /mutate ran, and yet the pod has no gate: the marker tells, and the pod is admitted -----------------


@pytest.fixture
def policy(gate_cp: ControlPlane, ns: str) -> Iterator[Callable[[str], None]]:
    """``policy(text)`` applies the policy ConfigMap; deleted afterwards, the defaults back in force."""
    def apply(text: str) -> None:
        gate_cp.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "multus-webhook-policy", "namespace": NAMESPACE}, "data": {"policy": text}}))

    yield apply
    gate_cp.kubectl("delete", "configmap", "-n", NAMESPACE, "multus-webhook-policy", check=False)
    eventually(lambda: dry_run_gate(gate_cp, ns), "the defaults back in force (the gate on)")


def dry_run_gate(gate_cp: ControlPlane, ns: str, name: str = "probe-gate") -> frozenset[str] | None:
    """The gate a pod asking for networks gets now (a dry run, which the stubs let through)."""
    return gate(json.loads(create(gate_cp, pod(name, ns, annotations={NETWORKS: "data"}), "--dry-run=server", "-o",
                                  "json").stdout))


def warnings(result: Any) -> str:
    return " ".join(result.stderr.replace("Warning:", "").split())  # kubectl's lines joined again


def test_the_policy_turning_the_gate_on_between_mutate_and_validate_refuses_nothing(
        gate_cp: ControlPlane, ns: str, policy: Callable[[str], None]) -> None:
    """An admin turns readinessAffinity on while a later mutating webhook holds the pod: /mutate left it
    ungated by the policy it had, /validate judges it by the new one."""
    policy("readinessAffinity: false\n")
    eventually(lambda: dry_run_gate(gate_cp, ns) is None, "the gate off")

    def slow(review: Review) -> dict[str, Any]:
        if review.name == "raced":
            policy("readinessAffinity: true\n")
            eventually(lambda: dry_run_gate(gate_cp, ns), "the gate on", timeout=20)
        return dict(allow(review))

    stub = StubWebhook(gate_cp, "zz-slow", PODS, slow, mutating=True, timeout_seconds=30)
    stub.start(lambda: create(gate_cp, pod("probe-slow", ns), "--dry-run=server", check=False))
    try:
        created = create(gate_cp, pod("raced", ns, annotations={NETWORKS: "data"}), check=False)
    finally:
        stub.stop()
    assert len(stub.reviews("raced")) == 1
    assert created.returncode == 0, created.stderr
    stored = get(gate_cp, "pod", "-n", ns, "raced")
    assert gate(stored) is None
    assert stored["metadata"]["annotations"][MARKER] == "off-by-policy"
    said = warnings(created)
    assert RULE in said, said
    assert "/mutate left the pod without a readiness gate as readinessAffinity was false" in said, said
    assert "the policy changed between /mutate and /validate" in said, said


def test_replicas_that_disagree_on_the_policy_refuse_nothing(
        gate_cp: ControlPlane, gate_server: WebhookServer, ns: str, policy: Callable[[str], None],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The policy ConfigMap stops parsing: the running replica (A) keeps its last good policy (gate off),
    one started since (B) has the defaults (gate on). The Service sends /mutate to A, /validate to B."""
    policy("readinessAffinity: false\n")
    eventually(lambda: dry_run_gate(gate_cp, ns) is None, "the gate off")
    log = gate_server.dir / "webhook.log"
    kept = log.read_text().count("keeping the policy in force")
    policy("readinessAffinity: false\nrules: {nosuchrule: warn\n")  # a typo
    eventually(lambda: log.read_text().count("keeping the policy in force") > kept, "A to keep its policy")
    b = WebhookServer(tmp_path_factory.mktemp("gate-missing-replica-b"), [
        "--kubeconfig", str(gate_cp.kubeconfig), "--lease-duration", "3", "--renew-deadline", "2",
        "--retry-period", "0.5"])
    b.start()
    try:
        eventually(lambda: b.readyz()[0] == 200, "B's first sync")
        mutating = [d for d in webhook_configurations(gate_server.url, gate_server.ca_file.read_bytes())
                    if d["kind"] == "MutatingWebhookConfiguration"]
        validating = [d for d in webhook_configurations(b.url, b.ca_file.read_bytes())
                      if d["kind"] == "ValidatingWebhookConfiguration"]
        gate_cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                               "items": [*mutating, *validating]}))
        # Until the apiserver has the new configuration, A answers both and says nothing: B's policy
        # has the gate on, so it judges the ungated pod.
        created = eventually(lambda: create(gate_cp, pod("split", ns, annotations={NETWORKS: "data"}),
                                            "--dry-run=server", "-o", "json", check=False),
                             "/validate answered by B", until=lambda r: RULE in r.stderr)
    finally:
        register_webhook(gate_cp, gate_server)
        b.stop()
    assert created.returncode == 0, created.stderr
    assert gate(json.loads(created.stdout)) is None
    assert json.loads(created.stdout)["metadata"]["annotations"][MARKER] == "off-by-policy"
    said = warnings(created)
    assert "the webhook's replicas disagree on the policy" in said, said


def test_a_later_webhook_that_rewrites_spec_affinity_is_named_as_the_cause(gate_cp: ControlPlane, ns: str) -> None:
    """A later mutating webhook (reinvoked, as a policy engine is) writes spec.affinity as it wants it,
    dropping the gate /mutate writes each time it runs: /mutate did its part, the other webhook undid it."""
    wanted = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
        "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}

    def setter(review: Review) -> dict[str, Any]:
        if review.object["spec"].get("affinity") == wanted:
            return dict(allow(review))
        return patch([{"op": "add", "path": "/spec/affinity", "value": wanted}])

    stub = StubWebhook(gate_cp, "zz-affinity", PODS, setter, mutating=True)
    stub.start(lambda: create(gate_cp, pod("probe-affinity", ns), "--dry-run=server", check=False))
    try:
        created = create(gate_cp, pod("rewritten", ns, annotations={NETWORKS: "data"}), check=False)
    finally:
        stub.stop()
    # Called twice, each time with the gate /mutate had written (again).
    assert ["podAffinity" in (r.object["spec"].get("affinity") or {}) for r in stub.reviews("rewritten")] == [
        True, True]
    assert created.returncode == 0, created.stderr
    stored = get(gate_cp, "pod", "-n", ns, "rewritten")
    assert stored["spec"]["affinity"] == wanted
    assert stored["metadata"]["annotations"][MARKER] == "required"
    said = warnings(created)
    assert RULE in said, said
    assert "a mutating webhook that ran after /mutate rewrote spec.affinity" in said, said
    assert MUTATE_EVERY_POD_COMPONENT not in said, said
