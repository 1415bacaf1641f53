"""`multus-webhook serve --kubeconfig` on a real kube-apiserver: a policy ConfigMap it refuses shows in
/metrics and as a Warning Event on the ConfigMap, the policy in force is told, the apiserver's own dry
runs are counted apart, and docs/metrics.md lists exactly the metrics and labels it exports."""

from __future__ import annotations

import json
import re
import ssl
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from webhook.cluster.live import POLICY_CONFIGMAP
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually

DOC = Path(__file__).parents[2] / "docs" / "metrics.md"
#: A row of the table: the metric, its type, its labels.
_ROW = re.compile(r"^\| `(multus_webhook_\w+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(server: WebhookServer) -> str:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(f"{server.url}/metrics", context=ctx, timeout=10) as resp:
        return str(resp.read().decode())


def samples(server: WebhookServer) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(scrape(server)):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def apply_policy(cp: ControlPlane, text: str) -> None:
    cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": POLICY_CONFIGMAP, "namespace": "multus-webhook"},
        "data": {"policy": text}}))


def rejections(cp: ControlPlane) -> list[dict[str, Any]]:
    events = json.loads(cp.kubectl("get", "events", "-n", "multus-webhook", "-o", "json", "--field-selector",
                                   f"involvedObject.kind=ConfigMap,involvedObject.name={POLICY_CONFIGMAP},"
                                   "reason=PolicyRejected").stdout)["items"]
    return list(events)


def test_a_refused_policy_configmap_is_a_metric_and_a_warning_event(cluster: ControlPlane,
                                                                     live_webhook: WebhookServer) -> None:
    """An admin turning enforcement on with a typo: the apiserver takes the ConfigMap, the webhook keeps
    the policy in force; this was one ERROR line, and nothing to alert on."""
    apply_policy(cluster, "audit: true\n")
    eventually(lambda: samples(live_webhook).get("multus_webhook_policy_info"), "the ConfigMap in force",
               until=lambda info: info == {(("audit", "true"), ("source", "configmap")): 1.0})
    apply_policy(cluster, "audit: false\nrules:\n  nad-config-structure: denny\n")
    eventually(lambda: samples(live_webhook).get("multus_webhook_policy_load_success"), "the typo refused",
               until=lambda loaded: loaded == {(): 0.0})
    # Still the one before it in force.
    assert samples(live_webhook)["multus_webhook_policy_info"] == {(("audit", "true"), ("source", "configmap")): 1.0}
    events = eventually(lambda: rejections(cluster), "the PolicyRejected Event")
    assert len(events) == 1, events
    assert events[0]["type"] == "Warning"
    assert events[0]["message"] == (
        f"ConfigMap {POLICY_CONFIGMAP}: rules.nad-config-structure: Input should be 'deny', 'warn' or 'off'; "
        "keeping the policy in force")
    apply_policy(cluster, "audit: false\n")
    eventually(lambda: samples(live_webhook), "the fix in force",
               until=lambda now: now["multus_webhook_policy_load_success"] == {(): 1.0}
               and now["multus_webhook_policy_info"] == {(("audit", "false"), ("source", "configmap")): 1.0})
    cluster.kubectl("delete", "configmap", POLICY_CONFIGMAP, "-n", "multus-webhook")
    eventually(lambda: samples(live_webhook).get("multus_webhook_policy_info"), "the defaults again",
               until=lambda info: info == {(("audit", "false"), ("source", "defaults")): 1.0})
    assert len(rejections(cluster)) == 1


def test_the_apiservers_dry_runs_are_counted_apart(cluster: ControlPlane, live_webhook: WebhookServer) -> None:
    namespace = f"m-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "untyped", "namespace": namespace},
           "spec": {"config": '{"cniVersion": "0.3.1", "master": "eth0"}'}}
    labels = (("audited", "false"), ("dry_run", "true"), ("kind", "NetworkAttachmentDefinition"),
              ("rule", "nad-config-structure"), ("severity", "deny"))
    before = samples(live_webhook).get("multus_webhook_findings_total", {})
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(nad), check=False)
    assert result.returncode != 0
    assert "[nad-config-structure]" in result.stderr, result.stderr
    after = samples(live_webhook)["multus_webhook_findings_total"]
    assert after[labels] == before.get(labels, 0) + 1
    enforced = dict(labels) | {"dry_run": "false"}
    assert after.get(tuple(sorted(enforced.items()))) == before.get(tuple(sorted(enforced.items())))


def test_docs_list_every_metric_serve_exports_with_its_labels(live_webhook: WebhookServer) -> None:
    documented = {name: (kind, {label.strip(" `") for label in labels.split(",") if label.strip()})
                  for name, kind, labels in _ROW.findall(DOC.read_text())}
    text = scrape(live_webhook)
    exported = {name: kind for name, kind in re.findall(r"^# TYPE (multus_webhook_\w+) (\w+)$", text, re.MULTILINE)}
    assert {name: kind for name, (kind, _) in documented.items()} == exported
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # The client names a counter's family without _total, and its samples with it.
            name = next((n for n in (sample.name, f"{family.name}_total", family.name) if n in documented), None)
            if name is None:
                assert not sample.name.startswith("multus_webhook_"), sample
                continue
            assert set(sample.labels) - {"le"} == documented[name][1], sample
