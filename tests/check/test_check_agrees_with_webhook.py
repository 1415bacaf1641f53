"""check and the running webhook judge the same objects alike, and --kubeconfig reads a real cluster.

The webhook is the real `multus-webhook serve` process over HTTPS (it runs with no cluster state, so
check runs without one too). A workload's pod template goes to the webhook as the Pod its controller
would create. The template paths are spelled out here again on purpose: the test must not take
check's own idea of where templates live on trust.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from webhook.dev.controlplane import ControlPlane, WebhookServer
from webhook.documents import load_path
from webhook.rules import registered

HERE = Path(__file__).parent
MANIFESTS = "fixtures/manifests"
STATE = "fixtures/state/cluster.yaml"

TEMPLATES = {
    "Deployment": ["spec", "template"], "StatefulSet": ["spec", "template"], "DaemonSet": ["spec", "template"],
    "ReplicaSet": ["spec", "template"], "ReplicationController": ["spec", "template"], "Job": ["spec", "template"],
    "CronJob": ["spec", "jobTemplate", "spec", "template"],
}


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook.cli", "check", *args], cwd=HERE, input=stdin,
                          capture_output=True, text=True, timeout=120)


def admitted(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The kind and object the apiserver would send to the webhook for this manifest."""
    kind = obj["kind"]
    if kind not in TEMPLATES:
        return kind, obj
    template = obj
    for key in TEMPLATES[kind]:
        template = template[key]
    # What the controller copies of the template's metadata (GetPodFromTemplate, kubernetes
    # pkg/controller/controller_utils.go): not its namespace, the pod is created in the workload's (the
    # namespace ask_webhook is given).
    metadata = {k: v for k, v in (template.get("metadata") or {}).items()
                if k in ("labels", "annotations", "finalizers")}
    return "Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec") or {}}


def ask_webhook(server: WebhookServer, kind: str, obj: dict[str, Any], namespace: str,
                old: dict[str, Any] | None = None, endpoint: str = "/validate") -> dict[str, Any]:
    group, _, version = obj["apiVersion"].rpartition("/")
    review = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "kind": {"group": group, "version": version, "kind": kind},
            "name": (obj.get("metadata") or {}).get("name", ""), "namespace": namespace,
            "operation": "CREATE" if old is None else "UPDATE", "userInfo": {"username": "ci"},
            "object": obj, "oldObject": old,
        },
    }
    request = urllib.request.Request(f"{server.url}{endpoint}", data=json.dumps(review).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        answer: dict[str, Any] = json.load(response)["response"]
        return answer


def mutated_then_validated(server: WebhookServer, kind: str, obj: dict[str, Any], namespace: str,
                           old: dict[str, Any] | None = None) -> dict[str, Any]:
    """As the apiserver calls the webhooks: a Pod's CREATE goes through /mutate, and /validate judges
    the patched pod (its NetworkProfile applied). The answer is /validate's, with the warnings of
    /mutate first, as kubectl shows them."""
    mutation_warnings: list[str] = []
    if kind == "Pod" and old is None:
        mutation = ask_webhook(server, kind, obj, namespace, endpoint="/mutate")
        assert mutation["allowed"], mutation
        if "patch" in mutation:
            obj = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(mutation["patch"])))
        mutation_warnings = mutation.get("warnings") or []
    answer = ask_webhook(server, kind, obj, namespace, old=old)
    return {**answer, "warnings": [*mutation_warnings, *(answer.get("warnings") or [])]}


def rule_ids(text: str) -> list[str]:
    known = registered()
    return sorted(r for r in re.findall(r"\[([a-z0-9-]+)\]", text) if r in known)


def test_check_and_the_webhook_give_the_same_verdicts(webhook_server: WebhookServer) -> None:
    result = cli(MANIFESTS, "--output", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    documents = {f"{d.source}#{d.index}": d for d in load_path(str(HERE / MANIFESTS))}
    assert len(report["results"]) == 15
    for checked in report["results"]:
        doc = documents[str(HERE / checked["source"])]
        kind, obj = admitted(doc.obj)
        answer = mutated_then_validated(webhook_server, kind, obj, checked["namespace"])
        assert_agree(checked, answer)


def assert_agree(checked: dict[str, Any], answer: dict[str, Any]) -> None:
    warnings = " ".join(answer.get("warnings") or [])
    # /mutate's warnings name no rule: check reports each under pod-mutation, with the same text.
    untagged = [w for w in answer.get("warnings") or [] if not rule_ids(w)]
    assert untagged == [f["message"] for f in checked["findings"] if f["rule"] == "pod-mutation"], checked["source"]
    verdict = "deny" if not answer["allowed"] else "warn" if warnings else "allow"
    where = f"{checked['source']} ({checked['kind']} {checked['name']})"
    assert verdict == checked["verdict"], where
    denied = rule_ids((answer.get("status") or {}).get("message", ""))
    assert denied == sorted(f["rule"] for f in checked["findings"] if f["severity"] == "deny"), where
    assert rule_ids(warnings) == sorted(f["rule"] for f in checked["findings"]
                                        if f["severity"] == "warn" and f["rule"] != "pod-mutation"), where


@pytest.fixture(scope="module")
def stateful_webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    """`multus-webhook serve --cluster-state`: the same state check is given, from the same file."""
    server = WebhookServer(tmp_path_factory.mktemp("stateful-webhook"),
                           ["--cluster-state", str(HERE / STATE)])
    with server:
        yield server


def test_with_cluster_state_check_and_the_webhook_agree_object_by_object(
    stateful_webhook: WebhookServer, tmp_path: Path
) -> None:
    # One object per run: check adds each input to the state for the next, the server's state is fixed.
    state = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in yaml.safe_load((HERE / STATE).read_text())["items"]}
    compared = 0
    for doc in load_path(str(HERE / MANIFESTS)):
        single = tmp_path / "object.yaml"
        single.write_text(yaml.safe_dump(doc.obj))
        result = cli(str(single), "--cluster-state", STATE, "--output", "json")
        assert result.returncode in (0, 1), result.stderr
        [checked] = json.loads(result.stdout)["results"] or [None]
        if checked is None:
            continue
        kind, obj = admitted(doc.obj)
        key = (checked["kind"], checked["namespace"], checked["name"])
        # An object already in the state arrives as an UPDATE of it (a template never does).
        old = state.get(key) if kind == checked["kind"] else None
        answer = mutated_then_validated(stateful_webhook, kind, obj, checked["namespace"], old=old)
        assert_agree(checked, answer)
        compared += 1
    assert compared == 15


PROFILE_STATE = """
apiVersion: v1
kind: List
items:
  - apiVersion: multus-webhook.io/v1alpha1
    kind: NetworkProfile
    metadata: {name: storage, namespace: default}
    spec:
      networks: [{name: missing-net}]
"""
PROFILED = """
apiVersion: v1
kind: Pod
metadata:
  name: labelled
  labels: {multus-webhook.io/network-profile: storage}
spec:
  containers: [{name: app, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: labelled-template}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata:
      labels: {app: x, multus-webhook.io/network-profile: storage}
    spec:
      containers: [{name: app, image: busybox:1.36}]
"""


def test_check_judges_a_pod_with_its_network_profile_applied(tmp_path: Path) -> None:
    # The profile names a NAD that does not exist: the server's /mutate writes it into the networks
    # annotation and /validate refuses the pod; check must refuse it too, not judge the pod as written.
    state = tmp_path / "state.yaml"
    state.write_text(PROFILE_STATE)
    manifests = tmp_path / "profiled.yaml"
    manifests.write_text(PROFILED)
    result = cli(str(manifests), "--cluster-state", str(state), "--output", "json")
    assert result.returncode == 1, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [(r["kind"], r["verdict"]) for r in results] == [("Pod", "deny"), ("Deployment", "deny")]
    with WebhookServer(tmp_path / "server", ["--cluster-state", str(state)]) as server:
        for checked, doc in zip(results, load_path(str(manifests)), strict=True):
            assert "pod-networks-nad-exists" in {f["rule"] for f in checked["findings"]}
            kind, obj = admitted(doc.obj)
            assert_agree(checked, mutated_then_validated(server, kind, obj, checked["namespace"]))


# --- --kubeconfig: a read-only snapshot of a real cluster ----------------------------------------


def test_kubeconfig_snapshot_sees_the_clusters_pods_and_nads(
    controlplane: ControlPlane, webhook: WebhookServer, namespace: str
) -> None:
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "net-a", "namespace": namespace},
        "spec": {"config": json.dumps({"cniVersion": "0.3.1", "name": "net-a", "type": "macvlan", "master": "eth0",
                                       "ipam": {"type": "static", "addresses": [{"address": "10.9.0.5/24"}]}})},
    }
    # Already placed on a node (no kubelet here, so it simply stays there).
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": namespace, "annotations": {"k8s.v1.cni.cncf.io/networks": "net-a"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    controlplane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": [nad, pod]}))
    changed = {**pod, "metadata": {**pod["metadata"], "annotations": {"k8s.v1.cni.cncf.io/networks": "net-b"}}}
    uses_nad = {**pod, "metadata": {"name": "other", "namespace": namespace,
                                    "annotations": {"k8s.v1.cni.cncf.io/networks": "net-a"}}}
    uses_missing = {**pod, "metadata": {"name": "third", "namespace": namespace,
                                        "annotations": {"k8s.v1.cni.cncf.io/networks": "net-b"}}}
    inputs = yaml.safe_dump_all([changed, uses_nad, uses_missing])

    result = cli("-", "--kubeconfig", str(controlplane.kubeconfig), "--output", "json", stdin=inputs)
    assert result.returncode == 1, result.stderr
    changed_rules, nad_rules, missing_rules = ({f["rule"] for f in r["findings"]}
                                               for r in json.loads(result.stdout)["results"])
    # The running pod was seen (the input is an UPDATE of it), and so was the NAD: net-a exists, net-b not.
    assert "pod-networks-changed-after-start" in changed_rules
    assert "pod-networks-nad-exists" not in nad_rules
    assert "pod-networks-nad-exists" in missing_rules
    assert "no cluster state given" not in result.stderr


def test_reapplying_a_manifest_keeps_what_others_wrote_as_kubectl_apply_does(
    controlplane: ControlPlane, namespace: str
) -> None:
    """kubectl apply's three-way merge keeps an annotation the manifest never set (the networks annotation
    a NetworkProfile gave the pod at creation, written here by annotate as the mutating webhook would);
    check judged the manifest as a replacement, a removal of the pod's networks after it started. An
    annotation the last applied manifest had is removed, and judged."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "app", "namespace": namespace, "labels": {"multus-webhook.io/network-profile": "p"}},
           "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    controlplane.kubectl("apply", "-f", "-", input=json.dumps(pod))
    controlplane.kubectl("annotate", "pod", "app", "-n", namespace, "k8s.v1.cni.cncf.io/networks=net-a")
    dry = json.loads(controlplane.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-",
                                          input=json.dumps(pod)).stdout)
    assert dry["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "net-a"  # kubectl keeps it

    result = cli("-", "--kubeconfig", str(controlplane.kubeconfig), "--output", "json", stdin=json.dumps(pod))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0].get("findings", []) == []

    # Applied with the annotation, then applied without it: kubectl removes it, and check judges that.
    with_networks = {**pod, "metadata": {**pod["metadata"], "annotations": {"k8s.v1.cni.cncf.io/networks": "net-a"}}}
    controlplane.kubectl("apply", "-f", "-", input=json.dumps(with_networks))
    dry = json.loads(controlplane.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-",
                                          input=json.dumps(pod)).stdout)
    assert "k8s.v1.cni.cncf.io/networks" not in dry["metadata"]["annotations"]
    result = cli("-", "--kubeconfig", str(controlplane.kubeconfig), "--output", "json", stdin=json.dumps(pod))
    [judged] = json.loads(result.stdout)["results"]
    assert "pod-networks-changed-after-start" in {f["rule"] for f in judged["findings"]}


def test_an_identity_that_may_only_list_is_enough(controlplane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    """The snapshot issues list calls only, the whole pod an input updates included (a CI job's identity
    is given list rights and no more)."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "app", "namespace": namespace, "annotations": {"k8s.v1.cni.cncf.io/networks": "a"}},
           "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox:1.36"}]}}
    controlplane.kubectl("apply", "-f", "-", input=json.dumps(pod))
    controlplane.kubectl("create", "serviceaccount", "ci", "-n", namespace)
    controlplane.kubectl("create", "clusterrole", f"{namespace}-list", "--verb=list",
                         "--resource=nodes,pods,resourcequotas,network-attachment-definitions.k8s.cni.cncf.io,"
                         "networkprofiles.multus-webhook.io,multusnodestates.multus-webhook.io")
    controlplane.kubectl("create", "clusterrolebinding", f"{namespace}-list", f"--clusterrole={namespace}-list",
                         f"--serviceaccount={namespace}:ci")
    # The webhook's policy ConfigMap, where it lives: listed too (without the right, check exits 2).
    controlplane.kubectl("apply", "-f", "-", input=json.dumps(WEBHOOK_NAMESPACE))
    controlplane.kubectl("create", "role", f"{namespace}-policy", "-n", "multus-webhook", "--verb=list",
                         "--resource=configmaps")
    controlplane.kubectl("create", "rolebinding", f"{namespace}-policy", "-n", "multus-webhook",
                         f"--role={namespace}-policy", f"--serviceaccount={namespace}:ci")
    config = yaml.safe_load(controlplane.kubeconfig.read_text())
    token = controlplane.kubectl("create", "token", "ci", "-n", namespace).stdout.strip()
    config["users"][0]["user"] = {"token": token}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    changed = {**pod, "metadata": {**pod["metadata"], "annotations": {"k8s.v1.cni.cncf.io/networks": "b"}}}

    result = cli("-", "--kubeconfig", str(kubeconfig), "--output", "json", stdin=yaml.safe_dump(changed))
    assert result.returncode == 0, result.stderr  # a warning
    # Judged as an UPDATE of the running pod, which only its whole object (spec.nodeName) tells.
    findings = json.loads(result.stdout)["results"][0]["findings"]
    assert "pod-networks-changed-after-start" in {f["rule"] for f in findings}


WEBHOOK_NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "multus-webhook"}}


def test_kubeconfig_judges_with_the_policy_the_clusters_webhook_serves(controlplane: ControlPlane,
                                                                       tmp_path: Path) -> None:
    policy = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "multus-webhook-policy", "namespace": "multus-webhook"},
              "data": {"policy": "audit: true\n"}}
    broken = "fixtures/manifests/nads.yaml"
    controlplane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": [WEBHOOK_NAMESPACE, policy]}))
    try:
        audited = cli(broken, "--kubeconfig", str(controlplane.kubeconfig), "--output", "json")
        assert audited.returncode == 0, audited.stderr  # audit mode: denials become warnings
        assert {r["verdict"] for r in json.loads(audited.stdout)["results"]} <= {"allow", "warn"}
        defaults = tmp_path / "policy.yaml"
        defaults.write_text("audit: false\n")
        explicit = cli(broken, "--kubeconfig", str(controlplane.kubeconfig), "--policy", str(defaults))
        assert explicit.returncode == 1, explicit.stderr  # an explicit --policy wins
        policy["data"] = {"policy": "rules: {no-such-rule: deny}\n"}
        controlplane.kubectl("apply", "-f", "-", input=json.dumps(policy))
        unreadable = cli(broken, "--kubeconfig", str(controlplane.kubeconfig))
        assert unreadable.returncode == 2
        assert "ConfigMap multus-webhook/multus-webhook-policy" in unreadable.stderr
    finally:
        controlplane.kubectl("delete", "configmap", "-n", "multus-webhook", "multus-webhook-policy")
    assert cli(broken, "--kubeconfig", str(controlplane.kubeconfig)).returncode == 1


def test_kubeconfig_reads_the_policy_where_the_webhook_was_installed(controlplane: ControlPlane) -> None:
    """A stack moved by a kustomization's `namespace:` keeps its policy ConfigMap in the moved
    namespace; check read multus-webhook's whatever it was told."""
    moved = {**WEBHOOK_NAMESPACE, "metadata": {"name": "netops"}}
    policy = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "multus-webhook-policy", "namespace": "netops"}, "data": {"policy": "audit: true\n"}}
    broken = "fixtures/manifests/nads.yaml"
    controlplane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": [moved, policy]}))
    try:
        there = ("--kubeconfig", str(controlplane.kubeconfig), "--webhook-namespace", "netops")
        audited = cli(broken, *there, "--output", "json")
        assert audited.returncode == 0, audited.stderr
        assert {r["verdict"] for r in json.loads(audited.stdout)["results"]} <= {"allow", "warn"}
        # Not from the default namespace, which has no such ConfigMap: there the defaults deny.
        assert cli(broken, "--kubeconfig", str(controlplane.kubeconfig)).returncode == 1
        policy["data"] = {"policy": "rules: {no-such-rule: deny}\n"}
        controlplane.kubectl("apply", "-f", "-", input=json.dumps(policy))
        unreadable = cli(broken, *there)
        assert unreadable.returncode == 2
        assert "ConfigMap netops/multus-webhook-policy" in unreadable.stderr
    finally:
        controlplane.kubectl("delete", "configmap", "-n", "netops", "multus-webhook-policy")


def test_kubeconfig_of_an_unreachable_cluster_exits_2(controlplane: ControlPlane, tmp_path: Path) -> None:
    config = yaml.safe_load(controlplane.kubeconfig.read_text())
    # A port held bound and never listened on: connections to it are refused for as long as the test
    # runs. A port merely free a moment ago could be taken by a server of a test run beside this one.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed.getsockname()[1]}"
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        result = cli("fixtures/manifests/nads.yaml", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"multus-webhook check: {kubeconfig}: cannot reach the cluster" in result.stderr
    assert "Traceback" not in result.stderr


def test_kubeconfig_with_an_unknown_context_exits_2(controlplane: ControlPlane) -> None:
    result = cli("fixtures/manifests/nads.yaml", "--kubeconfig", str(controlplane.kubeconfig), "--context", "nope")
    assert result.returncode == 2
    assert "(context nope): cannot use this kubeconfig" in result.stderr


@pytest.mark.parametrize("output", ["json", "sarif"])
def test_a_snapshot_run_is_read_only(controlplane: ControlPlane, namespace: str, output: str) -> None:
    before = controlplane.kubectl("get", "nad,pods", "-A", "-o", "name").stdout
    assert cli(MANIFESTS, "--kubeconfig", str(controlplane.kubeconfig), "--output", output).returncode == 1
    assert controlplane.kubectl("get", "nad,pods", "-A", "-o", "name").stdout == before


def test_objects_without_namespace_take_the_contexts_as_with_kubectl(controlplane: ControlPlane,
                                                                     tmp_path: Path) -> None:
    config = yaml.safe_load(controlplane.kubeconfig.read_text())
    [context] = config["contexts"]
    context["context"]["namespace"] = "ns-1"
    config["contexts"].append({"name": "other", "context": {**context["context"], "namespace": "ns-2"}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    def namespaces(*args: str) -> set[str]:
        result = cli("fixtures/manifests/nads.yaml", "--kubeconfig", str(kubeconfig), "--output", "json", *args)
        assert result.returncode in (0, 1), result.stderr
        # One input names its namespace (team-a): that one it keeps.
        return {r["namespace"] for r in json.loads(result.stdout)["results"]} - {"team-a"}

    assert namespaces() == {"ns-1"}
    assert namespaces("--context", "other") == {"ns-2"}
    assert namespaces("--context", "other", "--namespace", "ns-3") == {"ns-3"}
    del context["context"]["namespace"]
    kubeconfig.write_text(yaml.safe_dump(config))
    assert namespaces() == {"default"}


MOVED_STATE = """
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Node
    metadata: {name: node-1}
  - apiVersion: k8s.cni.cncf.io/v1
    kind: NetworkAttachmentDefinition
    metadata: {name: net1, namespace: prod}
    spec:
      config: '{"cniVersion": "0.3.1", "name": "net1", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}'
"""
MOVED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: prod}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata:
      namespace: other
      labels: {app: d}
      annotations: {k8s.v1.cni.cncf.io/networks: net1}
    spec:
      containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata:
  name: pinned
  namespace: prod
  annotations: {k8s.v1.cni.cncf.io/networks: net1}
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox:1.36}]
"""


def test_templates_are_judged_in_the_workloads_namespace_and_mutation_warnings_agree(tmp_path: Path) -> None:
    # The template's metadata.namespace is dropped by the controller: net1 resolves in prod, where it
    # exists. No node is Multus-ready, and the pod names its node: /mutate warns about both.
    state = tmp_path / "state.yaml"
    state.write_text(MOVED_STATE)
    manifests = tmp_path / "moved.yaml"
    manifests.write_text(MOVED)
    result = cli(str(manifests), "--cluster-state", str(state), "--output", "json")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [(r["kind"], r["namespace"]) for r in results] == [("Deployment", "prod"), ("Pod", "prod")]
    assert all("pod-networks-nad-exists" not in {f["rule"] for f in r["findings"]} for r in results)
    assert {f["rule"] for r in results for f in r["findings"]} >= {"pod-mutation"}
    with WebhookServer(tmp_path / "server", ["--cluster-state", str(state)]) as server:
        for checked, doc in zip(results, load_path(str(manifests)), strict=True):
            kind, obj = admitted(doc.obj)
            assert_agree(checked, mutated_then_validated(server, kind, obj, checked["namespace"]))
