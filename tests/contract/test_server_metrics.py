"""What `multus-webhook serve` (a real process, standalone) tells through /metrics and its log about the
reviews it answered: which rules found what, in audit mode what enforcing would refuse, dry runs apart,
requests it could not judge apart from denials, the policy in force and its own version."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_server_contract import Client, review

from webhook import __version__
from webhook.dev.controlplane import WebhookServer
from webhook.rules.engine import AUDITED

#: A NAD without a type (denied by nad-config-structure) whose static IPAM has no addresses (a warning
#: of nad-ipam-static).
UNTYPED = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "net1", "namespace": "default"},
           "spec": {"config": '{"cniVersion": "0.3.1", "master": "eth0", "ipam": {"type": "static"}}'}}
NAD = "NetworkAttachmentDefinition"

Labels = tuple[tuple[str, str], ...]


def samples(client: Client, name: str) -> dict[Labels, float]:
    """The samples of ``name`` in /metrics, by their sorted labels."""
    text = client.request("GET", "/metrics")[1].decode()
    return {tuple(sorted(s.labels.items())): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def finding(rule: str, severity: str, *, audited: bool = False, dry_run: bool = False, kind: str = NAD) -> Labels:
    return (("audited", "true" if audited else "false"), ("dry_run", "true" if dry_run else "false"),
            ("kind", kind), ("rule", rule), ("severity", severity))


def request(verdict: str, *, dry_run: str = "false", kind: str = NAD, endpoint: str = "/validate",
            operation: str = "CREATE") -> Labels:
    return (("dry_run", dry_run), ("endpoint", endpoint), ("kind", kind), ("operation", operation),
            ("verdict", verdict))


def dry(payload: dict[str, Any]) -> dict[str, Any]:
    payload["request"]["dryRun"] = True
    return payload


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    with WebhookServer(tmp_path_factory.mktemp("metrics")) as srv:
        yield srv


@pytest.fixture(scope="module")
def audit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    work = tmp_path_factory.mktemp("metrics-audit")
    (work / "policy.yaml").write_text("audit: true\n")
    with WebhookServer(work, ["--policy", str(work / "policy.yaml")]) as srv:
        yield srv


def test_findings_are_counted_by_rule_and_a_denial_is_logged_with_its_rules(server: WebhookServer) -> None:
    client = Client(server)
    before = samples(client, "multus_webhook_findings_total")
    uid = str(uuid.uuid4())
    answer = client.post_review(review(UNTYPED, uid=uid))["response"]
    assert answer["allowed"] is False
    assert answer["status"]["message"].endswith("[nad-config-structure]")
    after = samples(client, "multus_webhook_findings_total")
    for labels in (finding("nad-config-structure", "deny"), finding("nad-ipam-static", "warn")):
        assert after[labels] == before.get(labels, 0) + 1
    # A review with nothing to find counts no finding.
    client.post_review(review())
    assert samples(client, "multus_webhook_findings_total") == after
    log = (server.dir / "webhook.log").read_text()
    assert f"denied CREATE {NAD} default/net1 uid={uid} by rule(s) nad-config-structure" in log


def test_denials_are_logged_once_a_minute_per_kind_and_rule_saying_how_many_were_not(tmp_path: Path) -> None:
    """Anyone allowed to create NADs can be denied as fast as they like: the count is in the metrics."""
    with WebhookServer(tmp_path) as server:
        client = Client(server)
        uids = [str(uuid.uuid4()) for _ in range(30)]
        for uid in uids:
            assert client.post_review(review(UNTYPED, uid=uid))["response"]["allowed"] is False
        lines = [line for line in (server.dir / "webhook.log").read_text().splitlines() if " denied " in line]
    assert len(lines) == 1, lines
    assert f"uid={uids[0]} by rule(s) nad-config-structure" in lines[0]


def test_dry_runs_are_counted_apart(server: WebhookServer) -> None:
    """GitOps tools dry-run every sync: their reviews must not look like real denials."""
    client = Client(server)
    requests, findings = (samples(client, "multus_webhook_requests_total"),
                          samples(client, "multus_webhook_findings_total"))
    uid = str(uuid.uuid4())
    assert client.post_review(dry(review(UNTYPED, uid=uid)))["response"]["allowed"] is False
    assert client.post_review(dry(review()))["response"]["allowed"] is True
    after = samples(client, "multus_webhook_requests_total")
    assert after[request("deny", dry_run="true")] == requests.get(request("deny", dry_run="true"), 0) + 1
    assert after[request("allow", dry_run="true")] == requests.get(request("allow", dry_run="true"), 0) + 1
    assert after.get(request("deny")) == requests.get(request("deny"))
    labels = finding("nad-config-structure", "deny", dry_run=True)
    assert samples(client, "multus_webhook_findings_total")[labels] == findings.get(labels, 0) + 1
    assert f"uid={uid} (dry run) by rule(s) nad-config-structure" in (server.dir / "webhook.log").read_text()


def test_a_review_that_cannot_be_judged_is_an_error_not_a_denial(server: WebhookServer) -> None:
    client = Client(server)
    before = samples(client, "multus_webhook_requests_total")
    payload = review(kind="Pod")
    del payload["request"]["object"]
    answer = client.post_review(payload)["response"]
    assert (answer["allowed"], answer["status"]["code"]) == (False, 400)
    after = samples(client, "multus_webhook_requests_total")
    assert after[request("error", kind="Pod")] == before.get(request("error", kind="Pod"), 0) + 1
    assert after.get(request("deny", kind="Pod")) == before.get(request("deny", kind="Pod"))


def test_audit_mode_says_and_counts_what_enforcing_would_deny(audit_server: WebhookServer) -> None:
    client = Client(audit_server)
    answer = client.post_review(review(UNTYPED))["response"]
    assert answer["allowed"] is True
    assert ("spec.config.type is missing: set it to the CNI plugin binary to run (e.g. macvlan, bridge) "
            f"({AUDITED}) [nad-config-structure]") in answer["warnings"]
    # A warning of its own is no denial held back.
    assert not [w for w in answer["warnings"] if w.endswith("[nad-ipam-static]") and AUDITED in w]
    found = samples(client, "multus_webhook_findings_total")
    assert found == {finding("nad-config-structure", "warn", audited=True): 1.0,
                     finding("nad-ipam-static", "warn"): 1.0}
    assert samples(client, "multus_webhook_policy_info") == {(("audit", "true"), ("source", "file")): 1.0}
    assert samples(client, "multus_webhook_policy_load_success") == {(): 1.0}


def test_the_policy_in_force_without_a_file_is_the_defaults(server: WebhookServer) -> None:
    client = Client(server)
    assert samples(client, "multus_webhook_policy_info") == {(("audit", "false"), ("source", "defaults")): 1.0}


def test_the_build_is_told_and_no_created_series_doubles_the_counters(server: WebhookServer) -> None:
    client = Client(server)
    client.post_review(review())
    assert samples(client, "multus_webhook_build_info") == {(("version", __version__),): 1.0}
    text = client.request("GET", "/metrics")[1].decode()
    assert "multus_webhook_requests_total{" in text
    assert "_created" not in text, [line for line in text.splitlines() if "_created" in line][:3]

