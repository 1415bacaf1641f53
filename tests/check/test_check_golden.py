"""`multus-webhook check` output in every format, against reviewed golden files.

The fixture set mixes valid and invalid NADs, pods, workloads, a List and objects that are not
Multus's. Run with UPDATE_GOLDEN=1 to rewrite the goldens, then review the diff before committing;
under CI=true UPDATE_GOLDEN=1 is a failure.

tests/check/sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 schema (errata01), copied unchanged from
github.com/oasis-tcs/sarif-spec, Schemata/sarif-schema-2.1.0.json at commit ffa72eb (identical to
sarif-2.1/schema/sarif-schema-2.1.0.json at e058381).
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from webhook import __version__
from webhook.check.run import NO_STATE_NOTE
from webhook.cli import main

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
IN_CI = os.environ.get("CI") == "true"
STATE = ["--cluster-state", "fixtures/state/cluster.yaml"]

CASES = {
    "text.txt": ["--output", "text"],
    "json.json": ["--output", "json"],
    "sarif.json": ["--output", "sarif"],
    "junit.xml": ["--output", "junit"],
    "github.txt": ["--output", "github"],
    "state-text.txt": [*STATE, "--output", "text"],
    "state-json.json": [*STATE, "--output", "json"],
    "state-sarif.json": [*STATE, "--output", "sarif"],
}


def run_check(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              paths: tuple[str, ...] = ("fixtures/manifests",)) -> tuple[int, str, str]:
    # Relative paths in, relative paths out: goldens do not depend on where the checkout is.
    monkeypatch.chdir(HERE)
    status = main(["check", *paths, *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def normalized(out: str) -> str:
    """The tool's version is the one thing that may change without the output being wrong."""
    return out.replace(f'"version": "{__version__}"', '"version": "<version>"')


@pytest.mark.parametrize("golden", sorted(CASES))
def test_output_matches_golden(golden: str, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run_check(CASES[golden], capsys, monkeypatch)
    assert status == 1  # the fixtures hold denials
    out = normalized(out)
    path = GOLDEN / golden
    if UPDATE:
        # A CI run that rewrote its goldens would compare the output with itself: it could never fail.
        if IN_CI:
            pytest.fail("UPDATE_GOLDEN=1 under CI=true: goldens are rewritten and reviewed locally, never in CI")
        path.write_text(out)
    assert out == path.read_text(), f"output differs from {path}; rerun with UPDATE_GOLDEN=1 and review the diff"


def test_text_is_one_line_per_finding_with_a_summary_and_no_color_off_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, err = run_check([], capsys, monkeypatch)
    lines = out.splitlines()
    assert lines[-1] == "15 object(s) checked: 7 allowed, 2 warned, 6 denied; 3 skipped"
    assert ("fixtures/manifests/nads.yaml:10: deny nad-config-structure: NetworkAttachmentDefinition "
            "default/no-type: spec.config.type is missing") in out
    assert "\033[" not in out
    # Without cluster state the note comes once, on stderr, so the findings stay parseable.
    assert err.count("note: no cluster state given") == 1
    assert err.count("\n") == 1


def test_json_follows_the_design_schema(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, out, _ = run_check(["--output", "json"], capsys, monkeypatch)
    data = json.loads(out)
    assert list(data) == ["results", "summary", "notes"]
    assert data["notes"] == [NO_STATE_NOTE]
    assert data["summary"] == {"allow": 7, "warn": 2, "deny": 6, "skipped": 3}
    for result in data["results"]:
        assert list(result) == ["source", "apiVersion", "kind", "namespace", "name", "verdict", "findings"]
        assert result["verdict"] in {"allow", "warn", "deny"}
        for finding in result["findings"]:
            assert list(finding) == ["rule", "severity", "message", "field"]
    by_source = {r["source"]: r for r in data["results"]}
    cronjob = by_source["fixtures/manifests/apps/workloads.yaml#2"]
    assert (cronjob["kind"], cronjob["name"], cronjob["verdict"]) == ("CronJob", "nightly", "deny")
    assert cronjob["findings"][0]["field"] == (
        'spec.jobTemplate.spec.template.metadata.annotations["v1.multus-cni.io/default-network"]')
    # The objects of a List keep their own positions and lines.
    assert by_source["fixtures/manifests/apps/list.yaml#2"]["kind"] == "StatefulSet"


def _sarif_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((HERE / "sarif-schema-2.1.0.json").read_text())
    return schema


@pytest.mark.parametrize("args", [[], STATE], ids=["no-state", "state"])
def test_sarif_validates_against_the_sarif_2_1_0_schema(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = run_check([*args, "--output", "sarif"], capsys, monkeypatch)
    log = json.loads(out)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(r["id"] for r in rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].startswith("fixtures/manifests/")
        assert location["region"]["startLine"] >= 1
    structure = next(r for r in rules if r["id"] == "nad-config-structure")
    assert structure["shortDescription"]["text"] == "spec.config is a CNI config object"
    assert structure["fullDescription"]["text"]
    assert structure["defaultConfiguration"]["level"] == "error"


def test_sarif_of_unreadable_inputs_validates_too(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run_check(["--output", "sarif", "--policy", "no/such/policy.yaml"], capsys, monkeypatch)
    assert status == 2
    log = json.loads(out)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_the_sarif_check_itself_refuses_an_invalid_log() -> None:
    # The schema check is only worth something if it can fail.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(_sarif_schema()).validate({"version": "2.1.0", "runs": [{"results": []}]})


def test_junit_has_a_case_per_object_failures_for_denials_and_skipped_objects(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = run_check(["--output", "junit"], capsys, monkeypatch)
    root = ET.fromstring(out)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("18", "6", "3")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == [f"fixtures/manifests/{f}" for f in
                            ["apps/list.yaml", "apps/workloads.yaml", "configmap.json", "nads.yaml", "pods.yaml"]]
    dhcp = next(c for c in root.iter("testcase") if c.get("name") == "NetworkAttachmentDefinition default/dhcp-network")
    assert dhcp.find("failure") is None
    assert "warn nad-ipam-dhcp" in (dhcp.findtext("system-out") or "")


def test_junit_strict_fails_on_warnings(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, out, _ = run_check(["--output", "junit", "--strict"], capsys, monkeypatch)
    assert ET.fromstring(out).get("failures") == "8"


def test_github_annotations_escape_per_the_workflow_command_rules(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A file name with ':' and ',' must not end the property list; a '%' in a message must not be
    # read as an escape.
    odd = tmp_path / "odd:name,1.yaml"
    odd.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
        "    k8s.v1.cni.cncf.io/networks: 'Net%1'\nspec: {containers: []}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", odd.name, "--output", "github"]) == 1
    out = capsys.readouterr().out
    error = next(line for line in out.splitlines() if line.startswith("::error "))
    assert error.startswith("::error file=odd%3Aname%2C1.yaml,line=1,title=pod-networks-syntax (Pod default/p)::")
    message = error.split("::", 2)[2]
    assert "Net%251" in message
    assert "%0A" not in message
    assert out.splitlines()[0].startswith("::notice title=multus-webhook::no cluster state given")


def test_sarif_results_have_fingerprints_of_what_they_are_about(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Code scanning keeps one alert per fingerprint: findings of one rule on one object (one line) must
    not collapse, and a finding must keep its fingerprint when its object moves down the file."""
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  {name}\n"
           "  annotations: {{k8s.v1.cni.cncf.io/networks: 'a@lo,b@lo'}}\n")
    manifests = tmp_path / "pods.yaml"

    def fingerprints(*pods: str) -> list[str]:
        manifests.write_text("---\n".join(pods))
        _, out, _ = run_check(["--output", "sarif"], capsys, monkeypatch, paths=(str(manifests),))
        log = json.loads(out)
        jsonschema.Draft4Validator(_sarif_schema()).validate(log)
        return [r["partialFingerprints"]["multusWebhookFinding/v1"] for r in log["runs"][0]["results"]]

    named = pod.format(name="name: p")
    first = fingerprints(named)
    assert len(first) == len(set(first)) == 2  # [0].interface and [1].interface
    assert fingerprints(named) == first  # stable across runs
    assert fingerprints("apiVersion: v1\nkind: Pod\nmetadata: {name: q}\n", named) == first  # p moved down
    # Two objects with one generateName have one identity: their order tells them apart.
    generated = fingerprints(*[pod.format(name="generateName: job-")] * 2)
    assert [f.rsplit(":", 1)[1] for f in generated] == ["1", "1", "2", "2"]
    assert len(set(generated)) == 4


def test_sarif_of_stdin_locates_findings_by_object_only(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """<stdin> is no file in the repository: a physicalLocation would point code scanning at nothing."""
    stdin = (HERE / "fixtures/manifests/nads.yaml").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    _, out, _ = run_check(["--output", "sarif"], capsys, monkeypatch, paths=("-",))
    log = json.loads(out)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    results = log["runs"][0]["results"]
    assert results
    for result in results:
        [location] = result["locations"]
        assert "physicalLocation" not in location
        assert "/NetworkAttachmentDefinition/" in location["logicalLocations"][0]["fullyQualifiedName"]
        assert result["properties"]["source"].startswith("<stdin>#")
