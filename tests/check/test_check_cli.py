"""`multus-webhook check` as a CI step uses it: inputs, exit status, cluster state, policy."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from webhook.admission.handlers import VALIDATED_KINDS
from webhook.check.apply import applied
from webhook.check.inputs import GROUPS, POD_TEMPLATES
from webhook.check.output import FINGERPRINT, text
from webhook.check.run import NO_STATE_NOTE, SELECTION_ANNOTATIONS, Report, check
from webhook.cli import main
from webhook.cluster.snapshot import context_namespace
from webhook.documents import Document, load_path, parse_text
from webhook.multus.selection import MIRROR_ANNOTATION
from webhook.names import NAMESPACE, PROFILE_LABEL
from webhook.rules import Policy, rules_for

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]

VALID_NAD = """\
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: ok
spec:
  config: '{"cniVersion": "0.3.1", "name": "ok", "type": "macvlan", "master": "eth0",
    "ipam": {"type": "host-local", "subnet": "10.2.0.0/24"}}'
"""
WARNED_NAD = VALID_NAD.replace("name: ok", "name: dhcp").replace(
    '"ipam": {"type": "host-local", "subnet": "10.2.0.0/24"}', '"ipam": {"type": "dhcp"}')
DENIED_NAD = VALID_NAD.replace("name: ok", "name: bad").replace('"type": "macvlan", ', "")


def run(args: list[str], capsys: pytest.CaptureFixture[str], stdin: str | bytes | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        assert monkeypatch is not None
        data = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    status = main(["check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def json_results(out: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads(out)["results"]
    return results


# --- exit status -----------------------------------------------------------------------------------


def test_nothing_denied_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run([write(tmp_path, "ok.yaml", VALID_NAD)], capsys)
    assert status == 0
    assert out == "1 object(s) checked: 1 allowed, 0 warned, 0 denied; 0 skipped\n"


def test_a_denial_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, _ = run([write(tmp_path, "a.yaml", VALID_NAD + "---\n" + DENIED_NAD)], capsys)
    assert status == 1


def test_a_warning_exits_0_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "w.yaml", WARNED_NAD)
    assert run([path], capsys)[0] == 0
    assert run([path, "--strict"], capsys)[0] == 1


@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit", "github"])
def test_every_format_exits_the_same_way(output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([write(tmp_path, "d.yaml", DENIED_NAD), "--output", output], capsys)[0] == 1
    assert run([write(tmp_path, "ok.yaml", VALID_NAD), "--output", output], capsys)[0] == 0


def test_machine_formats_report_unreadable_inputs_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CI system that reads the report (a JUnit dashboard, GitHub annotations) and not the exit status
    must not find an empty report, which reads as nothing wrong."""
    broken = write(tmp_path, "broken.yaml", "kind: Pod\nmetadata: {name: [unclosed\n")
    outputs = {}
    for output in ["json", "sarif", "junit", "github"]:
        status, outputs[output], err = run([broken, "--output", output], capsys)
        assert status == 2
        assert f"{broken}:3: not valid YAML" in err
    assert json.loads(outputs["json"])["error"].startswith(f"{broken}:3: not valid YAML")
    [invocation] = json.loads(outputs["sarif"])["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["level"] == "error"
    assert f"{broken}:3: not valid YAML" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    root = ET.fromstring(outputs["junit"])
    assert root.get("errors") == "1"
    error = root.find("testsuite/testcase/error")
    assert error is not None
    assert f"{broken}:3: not valid YAML" in error.get("message", "")
    assert outputs["github"].startswith("::error title=multus-webhook::")
    assert "not valid YAML" in outputs["github"]


def test_a_missing_file_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["does/not/exist.yaml"], capsys)
    assert (status, out) == (2, "")
    assert err == "multus-webhook check: does/not/exist.yaml: no such file\n"


def test_a_yaml_syntax_error_exits_2_naming_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "broken.yaml", VALID_NAD + "---\nkind: Pod\nmetadata: {name: [unclosed\n")
    status, out, err = run([path], capsys)
    assert (status, out) == (2, "")
    assert err.startswith(f"multus-webhook check: {path}:11: not valid YAML")
    # The bracket left open is found a line later: the message says where it was opened.
    assert err.endswith("while parsing a flow sequence that starts at line 10, column 18\n")
    assert "Traceback" not in err


def test_a_document_that_is_not_an_object_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run([write(tmp_path, "l.yaml", VALID_NAD + "---\n- just\n- a list\n")], capsys)
    assert status == 2
    assert ":9: expected a Kubernetes object (a mapping), found list" in err


def test_a_bad_policy_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "policy.yaml", "rules:\n  no-such-rule: warn\n")
    status, _, err = run([write(tmp_path, "ok.yaml", VALID_NAD), "--policy", policy], capsys)
    assert status == 2
    assert "rules.no-such-rule: no such rule" in err


def test_a_policy_file_that_is_not_text_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(b"\xff\xfe")
    status, _, err = run([write(tmp_path, "ok.yaml", VALID_NAD), "--policy", str(policy)], capsys)
    assert status == 2
    assert f"{policy}: not UTF-8 text (byte 0)" in err


def test_an_unreadable_cluster_state_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = write(tmp_path, "state.yaml", "kind: List\nitems: [\n")
    status, _, err = run([write(tmp_path, "ok.yaml", VALID_NAD), "--cluster-state", state], capsys)
    assert status == 2
    assert f"{state}:" in err


def test_context_without_kubeconfig_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run([write(tmp_path, "ok.yaml", VALID_NAD), "--context", "prod"], capsys)
    assert exc.value.code == 2
    assert "--context needs --kubeconfig" in capsys.readouterr().err


def test_cluster_state_and_kubeconfig_exclude_each_other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["x.yaml", "--cluster-state", "s.yaml", "--kubeconfig", "k"], capsys)
    assert exc.value.code == 2


# --- inputs ---------------------------------------------------------------------------------------


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = run(["-", "--output", "json"], capsys, stdin=VALID_NAD + "---\n" + DENIED_NAD,
                         monkeypatch=monkeypatch)
    assert status == 1
    assert [(r["source"], r["verdict"]) for r in json_results(out)] == [("<stdin>#0", "allow"), ("<stdin>#1", "deny")]


def test_github_annotations_of_stdin_name_no_file(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub puts an annotation with file=<stdin> on a file the checkout does not have; without file=
    and line= it goes on the run."""
    status, out, _ = run(["-", "--output", "github"], capsys, stdin=DENIED_NAD, monkeypatch=monkeypatch)
    assert status == 1
    [annotation] = [line for line in out.splitlines() if line.startswith("::error ")]
    assert annotation.startswith("::error title=nad-")
    assert "file=" not in annotation.partition("::")[2].partition("::")[0]


@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit", "github"])
def test_stdin_that_is_not_utf8_exits_2_naming_the_line(output: str, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = b'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "\xff"}\n'
    status, out, err = run(["-", "--output", output], capsys, stdin=stdin, monkeypatch=monkeypatch)
    message = "not UTF-8 text: byte 0xff at column 19"
    assert (status, err.startswith(f"multus-webhook check: <stdin>:3: {message}")) == (2, True)
    assert (message in out) == (output != "text")  # the machine formats report it too


def test_files_are_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """Under the C locale (no UTF-8 mode), Python reads text as ASCII: a manifest must read the same."""
    nad = write(tmp_path, "nad.yaml", VALID_NAD.replace("metadata:\n", "metadata:\n  annotations: {owner: José}\n"))
    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    result = subprocess.run([sys.executable, "-m", "webhook.cli", "check", nad, "--output", "json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, encoding="utf-8", check=False)
    assert result.returncode == 0, result.stderr
    assert json_results(result.stdout)[0]["verdict"] == "allow"


def test_json_input_and_objects_without_namespace_go_to_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nad = parse_text(VALID_NAD, "x")[0].obj
    # Tab-indented JSON is valid JSON but not YAML.
    path = write(tmp_path, "nad.json", json.dumps(nad, indent="\t"))
    _, out, _ = run([path, "--namespace", "team-b", "--output", "json"], capsys)
    [result] = json_results(out)
    assert (result["namespace"], result["name"], result["verdict"]) == ("team-b", "ok", "allow")


def test_directories_are_read_recursively_in_sorted_order(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run([str(FIXTURES / "manifests"), "--output", "json"], capsys)
    files = [r["source"].split("#")[0] for r in json_results(out)]
    assert files == sorted(files, key=lambda f: Path(f).relative_to(FIXTURES / "manifests").parts)
    assert any(f.endswith("apps/workloads.yaml") for f in files)


def test_kinds_of_other_groups_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = "apiVersion: example.com/v1\nkind: NetworkProfile\nmetadata: {name: x}\nspec: {networks: 3}\n"
    _, out, _ = run([write(tmp_path, "o.yaml", other), "--output", "json"], capsys)
    assert json.loads(out)["summary"] == {"allow": 0, "warn": 0, "deny": 0, "skipped": 1}


def test_a_judged_kind_in_a_group_that_looks_like_a_slip_is_a_warning(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The annotations' prefix k8s.v1.cni.cncf.io for the NAD's group k8s.cni.cncf.io: kubectl apply
    refuses it, and it used to pass check silently, even with --strict."""
    typo = DENIED_NAD.replace("k8s.cni.cncf.io/v1", "k8s.v1.cni.cncf.io/v1")  # its config is refused too
    others = ("apiVersion: app/v1\nkind: Deployment\nmetadata: {name: d}\n---\n"
              "apiVersion: core/v1\nkind: Pod\nmetadata: {name: p}\n---\n"
              "apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\nmetadata: {name: volcano}\n")
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: user\n  annotations: {k8s.v1.cni.cncf.io/networks: bad}\n"
    path = write(tmp_path, "in.yaml", "---\n".join([typo, others, pod]))
    status, out, _ = run([path, "--cluster-state", write(tmp_path, "empty.yaml", ""), "--output", "json"], capsys)
    report = json.loads(out)
    assert status == 1  # the pod: no NAD "bad" was created
    assert report["summary"] == {"allow": 0, "warn": 3, "deny": 1, "skipped": 1}  # Volcano's Job is not ours
    judged = {r["name"]: r["findings"] for r in report["results"]}
    assert [f["rule"] for f in judged["user"]] == ["pod-networks-nad-exists"]
    expected = {"bad": "k8s.cni.cncf.io/v1", "d": "apps/v1", "p": "v1"}
    for name, api_version in expected.items():
        [finding] = judged[name]
        assert (finding["rule"], finding["severity"], finding["field"]) == ("unknown-api-group", "warn", "apiVersion")
        assert finding["message"].endswith(f"write apiVersion: {api_version}")
    assert "no API group 'k8s.v1.cni.cncf.io' serves NetworkAttachmentDefinition" in judged["bad"][0]["message"]
    slips = write(tmp_path, "slips.yaml", typo)
    assert run([slips], capsys)[0] == 0
    assert run([slips, "--strict"], capsys)[0] == 1
    off = write(tmp_path, "off.yaml", "rules: {unknown-api-group: off}\n")
    _, out, _ = run([slips, "--policy", off, "--output", "json"], capsys)
    assert json.loads(out)["summary"] == {"allow": 0, "warn": 0, "deny": 0, "skipped": 1}


def test_a_misspelled_judged_kind_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubectl apply refuses a kind no group serves ("no matches for kind"); check only counted it as
    skipped, even with --strict. The kinds our groups serve besides, and kinds of other projects' groups,
    stay none of check's business."""
    slips = ("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefiniton\nmetadata: {name: nad}\n---\n"
             "apiVersion: apps/v1\nkind: Deployments\nmetadata: {name: deploy}\n---\n"
             "apiVersion: v1\nkind: pod\nmetadata: {name: pod}\n---\n"
             "apiVersion: k8s.v1.cni.cncf.io/v1\nkind: networkattachmentdefinition\nmetadata: {name: both}\n")
    others = ("apiVersion: multus-webhook.io/v1alpha1\nkind: MultusNodeState\nmetadata: {name: node}\n---\n"
              "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: template}\n---\n"
              "apiVersion: example.com/v1\nkind: Deploymnet\nmetadata: {name: theirs}\n")
    path = write(tmp_path, "in.yaml", slips + "---\n" + others)
    status, out, _ = run([path, "--strict", "--output", "json"], capsys)
    report = json.loads(out)
    assert status == 1
    assert report["summary"] == {"allow": 0, "warn": 4, "deny": 0, "skipped": 3}
    judged = {r["name"]: [(f["rule"], f["field"], f["message"].rpartition("; ")[2]) for f in r["findings"]]
              for r in report["results"] if "findings" in r}
    assert judged == {
        "nad": [("unknown-kind", "kind", "write kind: NetworkAttachmentDefinition")],
        "deploy": [("unknown-kind", "kind", "write kind: Deployment")],
        "pod": [("unknown-kind", "kind", "write kind: Pod")],
        "both": [("unknown-api-group", "apiVersion", "write apiVersion: k8s.cni.cncf.io/v1"),
                 ("unknown-kind", "kind", "write kind: NetworkAttachmentDefinition")],
    }
    off = write(tmp_path, "off.yaml", "rules: {unknown-kind: off}\n")
    _, out, _ = run([path, "--policy", off, "--output", "json"], capsys)
    assert json.loads(out)["summary"] == {"allow": 0, "warn": 1, "deny": 0, "skipped": 6}


def test_the_api_group_rule_never_runs_in_the_webhook(capsys: pytest.CaptureFixture[str]) -> None:
    """The apiserver sends only objects of the groups the webhook registered for."""
    assert all(not {"unknown-api-group", "unknown-kind"} & {r.id for r in rules_for(kind, operation)}
               for kind in GROUPS for operation in ("CREATE", "UPDATE", "DELETE", "CONNECT"))
    assert main(["rules"]) == 0
    assert "unknown-api-group                  warn" in capsys.readouterr().out


def test_the_kinds_judged_directly_are_the_ones_the_webhook_validates() -> None:
    assert set(GROUPS) - set(POD_TEMPLATES) == VALIDATED_KINDS


@pytest.mark.parametrize(("kind", "api_version", "prefix"), [
    ("Deployment", "apps/v1", "spec.template."),
    ("StatefulSet", "apps/v1", "spec.template."),
    ("DaemonSet", "apps/v1", "spec.template."),
    ("ReplicaSet", "apps/v1", "spec.template."),
    ("ReplicationController", "v1", "spec.template."),
    ("Job", "batch/v1", "spec.template."),
])
def test_pod_templates_are_judged_as_pods_with_their_full_path(
    kind: str, api_version: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = (f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: w, namespace: n1}}\nspec:\n"
                "  template:\n    metadata:\n      annotations: {k8s.v1.cni.cncf.io/networks: 'net@eth0'}\n"
                "    spec: {containers: []}\n")
    status, out, _ = run([write(tmp_path, "w.yaml", workload), "--output", "json"], capsys)
    [result] = json_results(out)
    assert status == 1
    assert (result["kind"], result["namespace"], result["name"]) == (kind, "n1", "w")
    assert [f["field"] for f in result["findings"]] == [
        prefix + 'metadata.annotations["k8s.v1.cni.cncf.io/networks"][0].interface']


def test_line_numbers_are_each_objects_first_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run([str(FIXTURES / "manifests" / "nads.yaml")], capsys)
    lines = [line.split(": ")[0].rsplit(":", 1)[1] for line in out.splitlines()[:-1]]
    assert lines == ["10", "17", "31"]


# --- policy ---------------------------------------------------------------------------------------


def test_policy_severities_and_audit_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = write(tmp_path, "in.yaml", WARNED_NAD + "---\n" + DENIED_NAD)
    off = write(tmp_path, "off.yaml", "rules:\n  nad-ipam-dhcp: off\n")
    _, out, _ = run([inputs, "--policy", off, "--output", "json"], capsys)
    assert [r["verdict"] for r in json_results(out)] == ["allow", "deny"]
    audit = write(tmp_path, "audit.yaml", "audit: true\n")
    status, out, _ = run([inputs, "--policy", audit, "--output", "json"], capsys)
    assert status == 0
    assert [r["verdict"] for r in json_results(out)] == ["warn", "warn"]


# --- cluster state --------------------------------------------------------------------------------

CHANGED = "pod-networks-changed-after-start"
NAD_EXISTS = "pod-networks-nad-exists"
RUNNING_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "annotations": {"k8s.v1.cni.cncf.io/networks": "a"}},
    "spec": {"nodeName": "node-1", "containers": []},
}
CHANGED_POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {k8s.v1.cni.cncf.io/networks: b}\n"


def test_an_input_already_in_the_state_is_judged_as_an_update_of_it() -> None:
    docs = parse_text(CHANGED_POD, "in.yaml")
    report = check(docs, Policy(), state=[RUNNING_POD])
    assert rules_of(report, CHANGED) == [[CHANGED]]
    # Without the state it is a CREATE, and a CREATE changes nothing.
    assert check(docs, Policy()).results[0].findings == ()


class StateObject(dict[str, Any]):
    """A state object that can be watched for being freed (a plain dict cannot be weakly referenced)."""


def test_only_the_state_objects_an_input_updates_are_kept_whole() -> None:
    """The state streams through the view, which keeps little of each object: a large cluster's state
    held whole was 1.4 GB. The one object an input updates is kept whole, for the UPDATE rules."""
    kept: list[weakref.ref[StateObject]] = []
    alive_after_load: list[str] = []

    def state() -> Iterator[dict[str, Any]]:
        for name in ["a", "p", "b", "c"]:
            obj = StateObject(RUNNING_POD, metadata={**RUNNING_POD["metadata"], "name": name})
            kept.append(weakref.ref(obj))
            yield obj
            del obj
        # Whatever reads the state holds the object it is on: one more, not watched.
        yield {**RUNNING_POD, "metadata": {**RUNNING_POD["metadata"], "name": "last"}}
        # The view has stored every pod; check() has not judged anything yet.
        alive_after_load.extend(ref()["metadata"]["name"] for ref in kept if ref() is not None)

    report = check(parse_text(CHANGED_POD, "in.yaml"), Policy(), state=state())
    assert alive_after_load == ["p"]
    assert rules_of(report, CHANGED) == [[CHANGED]]


def test_a_profile_label_removed_from_a_pod_asking_for_nothing_else_is_judged() -> None:
    """The pod left without the label asks Multus for nothing, but its old object had the label: the
    apiserver sends the UPDATE (asks-for-multus-networks looks at the old object too on UPDATE), and the
    rule warns that the removal changes nothing. Before, check said nothing, as the server did."""
    # As kubectl apply left it (labelled, without selection annotations: set on the existing pod).
    labelled = applied({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "default", "labels": {PROFILE_LABEL: "prof"}}, "spec": {"containers": []}}, {})
    unlabelled = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: x}\n"
    report = check(parse_text(unlabelled, "in.yaml"), Policy(), state=[labelled])
    assert rules_of(report, "pod-network-profile-changed") == [["pod-network-profile-changed"]]
    assert "removed (it was 'prof')" in report.results[0].findings[0].message
    assert report.results[0].verdict == "warn"
    # Neither before nor after: not sent, nothing said.
    report = check(parse_text(unlabelled, "in.yaml"), Policy(), state=[applied(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}}, {})])
    assert report.results[0].findings == ()


def rules_of(report: Report, rule: str) -> list[list[str]]:
    """Per result, the findings of one rule: other cluster-aware rules have their own tests."""
    return [[f.rule for f in r.findings if f.rule == rule] for r in report.results]


HOST_LOCAL = ('{"cniVersion": "1.0.0", "name": "hl", "type": "macvlan", "master": "eth1", '
              '"ipam": {"type": "host-local", "subnet": "10.60.0.0/24"}}')


def test_an_input_updating_what_the_cluster_already_has_is_ratcheted() -> None:
    """As in the webhook: a pod admitted before its annotation was refused (the webhook away, or in audit
    mode), or a host-local NAD from before a second node joined, can have its labels changed; a change of
    the annotation or of the config is judged in full."""
    refused = {"k8s.v1.cni.cncf.io/networks": "a@eth0"}
    state = [{"kind": "Node", "metadata": {"name": n}} for n in ("n1", "n2")] + [
        {**RUNNING_POD, "metadata": {**RUNNING_POD["metadata"], "annotations": refused}},
        {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
         "metadata": {"name": "hl", "namespace": "default"}, "spec": {"config": HOST_LOCAL}}]
    relabelled = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: x}\n"
                  "  annotations: {k8s.v1.cni.cncf.io/networks: a@eth0}\n---\n"
                  "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: hl\n"
                  f"  labels: {{app: x}}\nspec:\n  config: '{HOST_LOCAL}'\n")
    report = check(parse_text(relabelled, "in.yaml"), Policy(), state=state)
    # The pod's UPDATE leaves its selection annotations as they were: the apiserver does not even call
    # the webhook for it (matchConditions). The NAD's is judged, and ratcheted.
    assert [r.verdict for r in report.results] == ["allow", "warn"]
    assert [[f.rule for f in r.findings if "allowed because it was already there" in f.message]
            for r in report.results] == [[], ["nad-host-local-multi-node"]]
    assert report.exit_status == 0

    changed = relabelled.replace("a@eth0", "a@lo").replace("eth1", "eth2")
    report = check(parse_text(changed, "in.yaml"), Policy(), state=state)
    assert [r.verdict for r in report.results] == ["deny", "deny"]


def test_inputs_join_the_state_for_the_inputs_after_them() -> None:
    # The second pod replaces the first, as an UPDATE would: it now sees the first as running.
    first = CHANGED_POD.replace("metadata:\n", "metadata:\n  namespace: default\n") + "spec: {nodeName: node-1}\n"
    second = CHANGED_POD.replace("networks: b", "networks: c")
    nads = [{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
             "metadata": {"name": name, "namespace": "default"},
             "spec": {"config": HOST_LOCAL.replace('"hl"', f'"{name}"')}} for name in ("b", "c")]
    report = check(parse_text(first + "---\n" + second, "in.yaml"), Policy(), state=nads)
    # The first only for its spec.nodeName, which /mutate warns about on CREATE.
    assert [[f.rule for f in r.findings] for r in report.results] == [["pod-mutation"], [CHANGED]]


def test_input_nads_exist_for_the_inputs_after_them_only() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {k8s.v1.cni.cncf.io/networks: ok}\n"
    report = check(parse_text(pod + "---\n" + VALID_NAD + "---\n" + pod, "in.yaml"), Policy(), state=[])
    assert rules_of(report, NAD_EXISTS) == [[NAD_EXISTS], [], []]
    # In another namespace it is another NAD.
    report = check(parse_text(VALID_NAD + "---\n" + pod.replace("name: p", "name: p\n  namespace: x"), "in.yaml"),
                   Policy(), state=[])
    assert rules_of(report, NAD_EXISTS)[1] == [NAD_EXISTS]


def test_pod_templates_never_replace_objects_of_the_state() -> None:
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: p}\nspec:\n  template:\n"
                  "    metadata: {annotations: {k8s.v1.cni.cncf.io/networks: b}}\n")
    report = check(parse_text(deployment + "---\n" + CHANGED_POD, "in.yaml"), Policy(), state=[RUNNING_POD])
    assert rules_of(report, CHANGED) == [[], [CHANGED]]


def test_without_state_a_note_says_so_once() -> None:
    report = check(parse_text(VALID_NAD + "---\n" + VALID_NAD, "x"), Policy())
    assert report.notes == (NO_STATE_NOTE,)
    assert check(parse_text(VALID_NAD, "x"), Policy(), state=[RUNNING_POD]).notes != (NO_STATE_NOTE,)


def test_text_colors_only_when_asked() -> None:
    report = check(parse_text(DENIED_NAD, "x"), Policy())
    assert "\033[31mdeny\033[0m" in text(report, color=True)
    assert "\033[" not in text(report)


WORKLOAD_THEN_NAD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata:
      labels: {app: x}
      annotations: {k8s.v1.cni.cncf.io/networks: ok}
    spec:
      containers: [{name: app, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata:
  name: bare
  annotations: {k8s.v1.cni.cncf.io/networks: ok}
spec:
  containers: [{name: app, image: busybox:1.36}]
---
""" + VALID_NAD


def test_a_template_sees_nads_listed_after_it_and_a_pod_does_not(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # kustomize and helm print NADs after the Deployments; the Deployment's pods come after the whole
    # apply, while a bare Pod is created (and refused) before the NAD exists.
    state = write(tmp_path, "state.yaml", "apiVersion: v1\nkind: List\nitems: []\n")
    status, out, _ = run([write(tmp_path, "in.yaml", WORKLOAD_THEN_NAD), "--cluster-state", state,
                          "--output", "json"], capsys)
    assert status == 1
    verdicts = {(r["kind"], r["verdict"], tuple(f["rule"] for f in r["findings"] if f["severity"] == "deny"))
                for r in json_results(out)}
    assert verdicts == {("Deployment", "allow", ()), ("Pod", "deny", ("pod-networks-nad-exists",)),
                        ("NetworkAttachmentDefinition", "allow", ())}
    assert [r["kind"] for r in json_results(out)] == ["Deployment", "Pod", "NetworkAttachmentDefinition"]


def test_a_denied_input_does_not_join_the_state() -> None:
    # The apiserver stores nothing the webhook refuses: the pod after a refused NAD finds no NAD.
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {k8s.v1.cni.cncf.io/networks: bad}\n"
    report = check(parse_text(DENIED_NAD + "---\n" + pod, "in.yaml"), Policy(), state=[])
    assert [r.verdict for r in report.results] == ["deny", "deny"]
    assert rules_of(report, NAD_EXISTS) == [[], [NAD_EXISTS]]
    # In audit mode the webhook admits it (with a warning): then it exists.
    report = check(parse_text(DENIED_NAD + "---\n" + pod, "in.yaml"), Policy(audit=True), state=[])
    assert rules_of(report, NAD_EXISTS) == [[], []]


def test_the_namespace_of_a_named_context_needs_no_current_context(tmp_path: Path) -> None:
    # kubectl --context works with a kubeconfig that has no current-context; so must the namespace.
    kubeconfig = write(tmp_path, "kubeconfig", (
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: x}}]\n"
        "contexts: [{name: a, context: {cluster: c, user: u, namespace: ns-a}}, {name: b, context: {cluster: c}}]\n"))
    assert context_namespace(kubeconfig, "a") == "ns-a"
    assert context_namespace(kubeconfig, "b") is None
    assert context_namespace(kubeconfig) is None


def test_pods_the_apiserver_never_sends_to_the_webhook_have_no_findings() -> None:
    """As webhook-configurations.yaml selects them: no pod of the webhook's own namespace, no UPDATE
    that leaves both selection annotations as they were."""
    refused = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {k8s.v1.cni.cncf.io/networks: a@lo}\n"
    own = refused.replace("name: p", "name: p\n  namespace: multus-webhook")
    host = refused.replace("name: p", "name: h") + "spec: {hostNetwork: true}\n"
    mirror = refused.replace("name: p", "name: m").replace("{k8s", "{kubernetes.io/config.mirror: x, k8s")
    inputs = "---\n".join([refused, own, host, mirror])
    assert [r.verdict for r in check(parse_text(inputs, "in.yaml"), Policy()).results] == [
        "deny", "allow", "allow", "allow"]
    running = {**RUNNING_POD, "metadata": {**RUNNING_POD["metadata"],
                                           "annotations": {"k8s.v1.cni.cncf.io/networks": "a@lo"}}}
    relabelled = refused.replace("name: p", "name: p\n  labels: {app: x}")
    assert check(parse_text(relabelled, "in.yaml"), Policy(), state=[running]).results[0].findings == ()
    # An UPDATE that leaves the pod asking for no network at all is not sent either.
    unasked = {**RUNNING_POD, "metadata": {**RUNNING_POD["metadata"], "annotations": {"other": "x"}}}
    assert check([Document("in.yaml", 1, 0, unasked)], Policy(), state=[running]).results[0].findings == ()
    # Adding the default-network annotation is sent, and judged.
    changed = relabelled.replace("a@lo}", "a@lo, v1.multus-cni.io/default-network: x}")
    findings = check(parse_text(changed, "in.yaml"), Policy(), state=[running]).results[0].findings
    assert "pod-networks-interface-names" in {f.rule for f in findings}


def test_pods_of_the_webhooks_namespace_wherever_it_was_installed_have_no_findings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {k8s.v1.cni.cncf.io/networks: a@lo}\n"
    inputs = write(tmp_path, "pods.yaml", "---\n".join(
        pod.replace("name: p", f"name: p\n  namespace: {ns}") for ns in ("netops", "multus-webhook")))
    _, out, _ = run([inputs, "--webhook-namespace", "netops", "--output", "json"], capsys)
    assert [r["verdict"] for r in json.loads(out)["results"]] == ["allow", "deny"]
    _, out, _ = run([inputs, "--output", "json"], capsys)
    assert [r["verdict"] for r in json.loads(out)["results"]] == ["deny", "allow"]


def test_what_check_leaves_out_is_what_the_shipped_configuration_leaves_out() -> None:
    configs = list(yaml.safe_load_all((REPO / "manifests/base/webhook/webhook-configurations.yaml").read_text()))
    validating = next(c for c in configs if c["kind"] == "ValidatingWebhookConfiguration")
    pods = next(w for w in validating["webhooks"] if w["name"] == "pods.multus-webhook.io")
    assert pods["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]}]
    namespace = yaml.safe_load((REPO / "manifests/base/namespace.yaml").read_text())
    assert namespace["metadata"]["name"] == NAMESPACE
    update = next(c["expression"] for c in pods["matchConditions"] if c["name"] == "update-changes-multus-selection")
    assert all(f"'{a}'" in update for a in [*SELECTION_ANNOTATIONS, PROFILE_LABEL])
    asks = next(c["expression"] for c in pods["matchConditions"] if c["name"] == "asks-for-multus-networks")
    assert all(f"'{a}'" in asks for a in [*SELECTION_ANNOTATIONS, PROFILE_LABEL])
    # On UPDATE, the old object's profile label too (its removal is warned about: _not_sent).
    assert f"'{PROFILE_LABEL}' in oldObject.metadata.labels" in " ".join(asks.split())
    # selection.judged, in both pod webhooks.
    mutating = next(c for c in configs if c["kind"] == "MutatingWebhookConfiguration")["webhooks"][0]
    for hook in (pods, mutating):
        attaches = next(c["expression"] for c in hook["matchConditions"] if c["name"] == "attaches-multus-networks")
        assert "object.spec.hostNetwork" in attaches
        assert f"'{MIRROR_ANNOTATION}'" in attaches


def test_a_pod_joins_the_state_with_its_profile_applied() -> None:
    """As the apiserver stores it after /mutate: a NAD change after it warns about the running pod."""
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "a", "namespace": "default"}, "spec": {"config": HOST_LOCAL.replace('"hl"', '"a"')}}
    profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
               "metadata": {"name": "prof", "namespace": "default"}, "spec": {"networks": [{"name": "a"}]}}
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {multus-webhook.io/network-profile: prof}\n"
           "spec: {nodeName: node-1}\n")
    changed = ("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: a}\n"
               f"spec:\n  config: '{HOST_LOCAL.replace('hl', 'a').replace('eth1', 'eth2')}'\n")
    report = check(parse_text(pod + "---\n" + changed, "in.yaml"), Policy(), state=[nad, profile])
    assert rules_of(report, "nad-in-use-changed") == [[], ["nad-in-use-changed"]]


def test_inputs_with_only_generate_name_are_each_a_new_object(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The apiserver names each at CREATE: the second is no UPDATE of the first (whose rules, and the
    pods the apiserver would not send, are not those of a CREATE), and both are in the state after."""
    good = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "good", "namespace": "default"}, "spec": {"config": HOST_LOCAL}}
    state = write(tmp_path, "state.yaml", yaml.safe_dump(good))
    job = ("apiVersion: v1\nkind: Pod\nmetadata:\n  generateName: job-\n"
           "  annotations: {k8s.v1.cni.cncf.io/networks: %s}\n")
    # Network names of their own: host-local NADs of one name would share their allocations.
    config = HOST_LOCAL.replace("10.60.0.0/24", "10.61.0.0/%d").replace('"hl"', '"net%d"')
    nad = ("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {generateName: net-}\n"
           f"spec:\n  config: '{config}'\n")
    inputs = write(tmp_path, "in.yaml", "---\n".join([job % "good", job % "good", job % "missing-nad",
                                                       nad % (24, 24), nad % (25, 25)]))
    status, out, _ = run([inputs, "--cluster-state", state, "--output", "json"], capsys)
    assert status == 1
    results = json_results(out)
    assert [(r["name"], r["verdict"]) for r in results] == [
        ("job-*", "allow"), ("job-*", "allow"), ("job-*", "deny"), ("net-*", "allow"), ("net-*", "deny")]
    assert [f["rule"] for f in results[2]["findings"]] == [NAD_EXISTS]
    [overlap] = results[4]["findings"]
    assert overlap["rule"] == "nad-range-overlap"
    assert f"overlaps NAD default/net-* ({inputs}#3)" in overlap["message"]
    # Both pods the webhook admitted are users of the NAD they name.
    changed = write(tmp_path, "changed.yaml", yaml.safe_dump(
        {**good, "spec": {"config": HOST_LOCAL.replace("eth1", "eth2")}}))
    _, out, _ = run([inputs, changed, "--cluster-state", state, "--output", "json"], capsys)
    assert (f"2 pod(s) (default/job-* ({inputs}#0), default/job-* ({inputs}#1))"
            in json_results(out)[-1]["findings"][0]["message"])
    _, out, _ = run([inputs, "--cluster-state", state], capsys)
    assert f"{inputs}:13: deny {NAD_EXISTS}: Pod default/job-*: " in out


def test_the_policys_multus_namespace_is_where_an_unqualified_default_network_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "prim", "namespace": "multus"}, "spec": {"config": HOST_LOCAL}}
    user = {**RUNNING_POD, "metadata": {"name": "user", "namespace": "apps",
                                        "annotations": {"v1.multus-cni.io/default-network": "prim"}}}
    state = write(tmp_path, "state.yaml", yaml.safe_dump_all([nad, user]))
    changed = write(tmp_path, "nad.yaml", yaml.safe_dump(
        {**nad, "spec": {"config": HOST_LOCAL.replace("eth1", "eth2")}}))
    policy = write(tmp_path, "policy.yaml", "multusNamespace: multus\n")
    status, out, _ = run([changed, "--cluster-state", state, "--policy", policy, "--output", "json"], capsys)
    [result] = json_results(out)
    assert (status, [f["rule"] for f in result["findings"]]) == (0, ["nad-in-use-changed"])
    assert "while 1 pod(s) (apps/user) use this NAD" in result["findings"][0]["message"]


def test_an_empty_namespace_is_no_namespace_as_for_kubectl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `--namespace "$NS"` with NS unset in a CI job.
    _, out, _ = run([write(tmp_path, "ok.yaml", VALID_NAD), "--namespace", "", "--output", "json"], capsys)
    assert json_results(out)[0]["namespace"] == "default"


def test_junit_stays_xml_when_a_message_quotes_a_control_character(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pod = ('apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n'
           '  annotations: {k8s.v1.cni.cncf.io/networks: "a\\x07@lo"}\n')
    status, out, _ = run([write(tmp_path, "pod.yaml", pod), "--output", "junit"], capsys)
    assert status == 1
    failure = ET.fromstring(out).find("testsuite/testcase/failure")
    assert failure is not None
    assert "\\x07" in failure.get("message", "")
    policy = write(tmp_path, "policy.yaml", 'rules: {"bad\\x07id": off}\n')
    status, out, _ = run([write(tmp_path, "ok.yaml", VALID_NAD), "--policy", policy, "--output", "junit"], capsys)
    assert status == 2
    assert ET.fromstring(out).get("errors") == "1"


def test_text_puts_what_it_quotes_on_its_line_with_no_control_characters(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A CI log runs the GitHub workflow commands it finds at the start of a line: a value quoted in a
    message must not start one, nor drive the terminal."""
    pod = ('apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n'
           '  annotations: {k8s.v1.cni.cncf.io/networks: "a\\n::error file=x::pwned\\e]0;x\\a@lo"}\n')
    status, out, err = run([write(tmp_path, "pod.yaml", pod)], capsys)
    assert status == 1
    [finding, _summary] = out.splitlines()
    assert '"a\\x0a::error file=x::pwned\\x1b]0;x\\x07"' in finding
    assert "\033" not in out
    status, _, err = run([str(tmp_path / "x\n::error::pwned.yaml")], capsys)
    assert (status, err) == (2, f"multus-webhook check: {tmp_path}/x\\x0a::error::pwned.yaml: no such file\n")


@pytest.mark.parametrize(("name", "content", "message"), [
    # Past Python's digit limit for int(), and float64's range: kubectl refuses such a JSON number.
    ("big.json", '{"a": ' + "1" * 5000 + "}\n", ":1: the number 1111111111111111111111111111111111111111 is out of "
     "the range of a float64: kubectl cannot read it"),
    ("deep.json", "[" * 5000 + "]" * 5000 + "\n", ": cannot read the document"),  # past the JSON reader's stack
])
def test_input_python_cannot_represent_exits_2(name: str, content: str, message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, name, content)
    status, out, _ = run([path, "--output", "json"], capsys)
    assert status == 2
    assert json.loads(out)["error"].startswith(f"{path}{message}")


def test_a_yaml_number_past_float64_is_a_string_as_kubectl_reads_it(tmp_path: Path) -> None:
    # go-yaml gives up on the number (strconv's range error) and keeps the text.
    [doc] = load_path(write(tmp_path, "big.yaml", "kind: ConfigMap\ndata: {a: " + "1" * 5000 + "}\n"))
    assert doc.obj["data"] == {"a": "1" * 5000}


@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit", "github"])
def test_a_file_name_that_is_not_utf8_is_reported_in_every_format(output: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A strict stdout (capsys's, or any locale but C) cannot write the surrogate the name is read with.
    name = os.fsdecode(b"bad\xff.yaml")
    (tmp_path / name).write_text(DENIED_NAD)
    monkeypatch.chdir(tmp_path)
    status, out, _ = run([".", "--output", output], capsys)
    assert status == 1
    if output == "sarif":
        [result] = json.loads(out)["runs"][0]["results"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad%FF.yaml"
    elif output == "json":
        assert json_results(out)[0]["source"] == f"{name}#0"
    else:
        assert "bad\\xff.yaml" in out


def test_stdin_is_read_once(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The second reader would find it empty: a cluster state read so stands for an empty cluster, where
    every NAD a pod names is missing."""
    for args in (["-", "--cluster-state", "-"], ["-", "-"]):
        with pytest.raises(SystemExit) as exit_:
            run(args, capsys, stdin=VALID_NAD, monkeypatch=monkeypatch)
        assert exit_.value.code == 2
        assert "- (stdin) can be given once" in capsys.readouterr().err


def in_a_directory_that_cannot_be_listed(tmp_path: Path, require: Callable[[str], NoReturn]) -> tuple[Path, list[str]]:
    """``tmp_path``/manifests with a subdirectory nobody may list, and the command prefix under which
    that holds: root lists anything unless it gives up the capabilities that let it."""
    manifests = tmp_path / "manifests"
    (manifests / "private").mkdir(parents=True)
    (manifests / "private" / "nad.yaml").write_text(DENIED_NAD)
    (manifests / "ok.yaml").write_text(VALID_NAD)
    (manifests / "private").chmod(0)
    if os.geteuid() != 0:
        return manifests, []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        require("as root, a directory nobody may list needs setpriv (util-linux) to give up CAP_DAC_*")
    return manifests, [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_a_directory_that_cannot_be_listed_exits_2_naming_it(tmp_path: Path,
                                                           require: Callable[[str], NoReturn]) -> None:
    manifests, prefix = in_a_directory_that_cannot_be_listed(tmp_path, require)
    try:
        result = subprocess.run([*prefix, sys.executable, "-m", "webhook.cli", "check", str(manifests)],
                                cwd=tmp_path, capture_output=True, text=True, check=False)
    finally:
        (manifests / "private").chmod(0o755)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"multus-webhook check: {manifests}/private: cannot read the directory: Permission denied\n"


def test_hidden_directories_are_entered_only_when_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkout's .git, .venv or .github hold no manifests to apply, but YAML that is none, or a lot."""
    (tmp_path / "deploy" / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / "deploy" / ".github" / "workflows" / "ci.yaml").write_text(DENIED_NAD)
    (tmp_path / "deploy" / ".hidden.yaml").write_text(VALID_NAD)  # a file: read, as before
    _, out, _ = run([str(tmp_path / "deploy"), "--output", "json"], capsys)
    assert [r["source"] for r in json_results(out)] == [f"{tmp_path}/deploy/.hidden.yaml#0"]
    status, out, _ = run([str(tmp_path / "deploy" / ".github"), "--output", "json"], capsys)
    assert (status, [r["name"] for r in json_results(out)]) == (1, ["bad"])


def test_the_policys_default_networks_shift_the_names_a_profile_merge_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The profile's unnamed network b comes after the pod's own c@net3: with one defaultNetwork it is
    net3 too, and the merge is refused; counted from net1 (no defaultNetworks in the policy) it is net2."""
    nads = [{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
             "metadata": {"name": n, "namespace": "default"},
             "spec": {"config": HOST_LOCAL.replace('"hl"', f'"{n}"').replace("10.60.0", f"10.6{i}.0")}}
            for i, n in enumerate("bc")]
    profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
               "metadata": {"name": "prof", "namespace": "default"}, "spec": {"networks": [{"name": "b"}]}}
    state = write(tmp_path, "state.yaml", yaml.safe_dump_all([*nads, profile]))
    pod = write(tmp_path, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
                "  labels: {multus-webhook.io/network-profile: prof}\n"
                "  annotations: {k8s.v1.cni.cncf.io/networks: 'c@net3'}\n")
    status, out, _ = run([pod, "--cluster-state", state, "--output", "json"], capsys)
    assert status == 0, out
    policy = write(tmp_path, "policy.yaml", "defaultNetworks: [mgmt]\n")
    status, out, _ = run([pod, "--cluster-state", state, "--policy", policy, "--output", "json"], capsys)
    [result] = json_results(out)
    assert (status, result["verdict"]) == (1, "deny"), out
    assert [f["rule"] for f in result["findings"]] == ["pod-network-profile"]
    assert "(default/b) would be given interface (by its position) net3" in result["findings"][0]["message"]


# --- the namespace a template's pods are created in ------------------------------------------------


def nad_in(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "net1", "namespace": namespace},
            "spec": {"config": HOST_LOCAL.replace('"hl"', '"net1"')}}


MOVED_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d%s}
spec:
  template:
    metadata:
      namespace: other
      annotations: {k8s.v1.cni.cncf.io/networks: net1}
    spec: {containers: []}
"""


@pytest.mark.parametrize(("written", "namespace"), [(", namespace: prod", "default"), ("", "prod")])
def test_a_template_is_judged_in_the_workloads_namespace_not_the_one_it_names(written: str, namespace: str) -> None:
    """The controller creates the pods in the workload's namespace (GetPodFromTemplate drops the
    template's): net1 is looked up there, in the workload's metadata.namespace or else -n's."""
    deployment = parse_text(MOVED_TEMPLATE % written, "d.yaml")
    there = check(deployment, Policy(), state=[nad_in("prod")], default_namespace=namespace)
    assert rules_of(there, "pod-networks-nad-exists") == [[]]
    elsewhere = check(deployment, Policy(), state=[nad_in("other")], default_namespace=namespace)
    assert rules_of(elsewhere, "pod-networks-nad-exists") == [["pod-networks-nad-exists"]]
    assert "prod/net1" in elsewhere.results[0].findings[0].message


# --- the warnings of the mutating webhook --------------------------------------------------------

PINNED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: pinned
  annotations: {k8s.v1.cni.cncf.io/networks: net1}
spec:
  nodeName: node-1
  containers: []
"""
UNREADY_NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}


def test_the_mutating_webhooks_warnings_are_findings() -> None:
    """What /mutate warns about (kubectl shows it) is a warning of check's, under pod-mutation: a pod
    that names its node, and one no node is Multus-ready for, in a workload's template too."""
    pinned = check(parse_text(PINNED_POD, "p.yaml"), Policy(), state=[UNREADY_NODE, nad_in("default")])
    [result] = pinned.results
    messages = [f.message for f in result.findings if f.rule == "pod-mutation"]
    assert len(messages) == 1
    assert messages[0].startswith("spec.nodeName is set to 'node-1'")
    assert result.verdict == "warn"
    unpinned = PINNED_POD.replace("  nodeName: node-1\n", "")
    template = MOVED_TEMPLATE.replace("      namespace: other\n", "") % ""
    for doc in (unpinned, template):
        report = check(parse_text(doc, "p.yaml"), Policy(), state=[UNREADY_NODE, nad_in("default")])
        [warning] = [f for f in report.results[0].findings if f.rule == "pod-mutation"]
        assert warning.severity == "warn"
        assert warning.message.startswith("no node is labelled")
    # spec.nodeName needs no cluster state to warn about.
    assert "pod-mutation" in {f.rule for f in check(parse_text(PINNED_POD, "p.yaml"), Policy()).results[0].findings}


@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit", "github"])
def test_strict_fails_on_the_mutating_webhooks_warnings_in_every_format(
    output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "p.yaml", PINNED_POD)
    status, out, _ = run([path, "--output", output], capsys)
    assert status == 0
    assert "pod-mutation" in out
    assert "spec.nodeName is set to" in out
    assert run([path, "--output", output, "--strict"], capsys)[0] == 1
    if output == "sarif":
        sarif_run = json.loads(out)["runs"][0]
        [result] = sarif_run["results"]
        assert (result["ruleId"], result["level"]) == ("pod-mutation", "warning")
        assert sarif_run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "pod-mutation"


# --- the note of a run without cluster state, in json and junit -----------------------------------


def test_json_and_junit_say_that_the_cluster_rules_were_skipped(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ok.yaml", VALID_NAD)
    _, out, err = run([path, "--output", "json"], capsys)
    assert json.loads(out)["notes"] == [NO_STATE_NOTE]
    assert NO_STATE_NOTE in err
    _, out, err = run([path, "--output", "junit"], capsys)
    [suite] = ET.fromstring(out)
    assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [("multus-webhook.note", NO_STATE_NOTE)]
    assert NO_STATE_NOTE in err
    state = write(tmp_path, "state.yaml", yaml.safe_dump(RUNNING_POD))
    _, out, _ = run([path, "--output", "json", "--cluster-state", state], capsys)
    assert NO_STATE_NOTE not in json.loads(out)["notes"]


TWO_WARNINGS_STATE = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: n1, labels: {multus-webhook.io/multus-ready: "true"}}
- apiVersion: k8s.cni.cncf.io/v1
  kind: NetworkAttachmentDefinition
  metadata: {name: b, namespace: default}
  spec: {config: '{"cniVersion":"0.3.1","name":"b","type":"macvlan","ipam":{"type":"static"}}'}
- apiVersion: multus-webhook.io/v1alpha1
  kind: NetworkProfile
  metadata: {name: p, namespace: default}
  spec: {networks: [{name: b, default-route: ["10.0.0.2"]}]}
"""
TWO_WARNINGS_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: t1
  labels: {multus-webhook.io/network-profile: p}
  annotations: {k8s.v1.cni.cncf.io/networks: '[{"name":"b","default-route":["10.0.0.9"]}]'}
spec:
  containers: [{name: c, image: x}]
%s"""
OWN_AFFINITY = """\
  affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {a: b}},
    topologyKey: k}]}}
"""


def test_each_mutation_warning_on_one_object_keeps_its_own_fingerprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Code scanning follows a result by its fingerprint: the mutation's warnings name no field, so their
    message's head tells them apart, and one going away leaves the other's identity as it was."""
    state = write(tmp_path, "state.yaml", TWO_WARNINGS_STATE)

    def fingerprints(pod: str) -> dict[str, str]:
        _, out, _ = run([write(tmp_path, "p.yaml", pod), "--cluster-state", state, "--output", "sarif"], capsys)
        return {r["message"]["text"].split(": ")[1]: r["partialFingerprints"][FINGERPRINT]
                for r in json.loads(out)["runs"][0]["results"] if r["ruleId"] == "pod-mutation"}

    both = fingerprints(TWO_WARNINGS_POD % OWN_AFFINITY)
    assert len(both) == 2
    assert len(set(both.values())) == 2
    # Without an element of its own the profile's is no note: the affinity warning, second above, is left.
    own_element = next(line for line in TWO_WARNINGS_POD.splitlines(keepends=True) if "annotations" in line)
    one = fingerprints((TWO_WARNINGS_POD % OWN_AFFINITY).replace(own_element, ""))
    assert len(one) == 1
    [(head, print_)] = one.items()
    assert both[head] == print_


def test_only_the_multus_node_states_of_the_webhook_namespace_count(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `kubectl get ... -A` of a cluster with two installs saves both installs' MultusNodeStates; the
    # webhook watches only its own namespace's, and --kubeconfig lists only those.
    def node_state(namespace: str, binaries: str) -> str:
        return (f"apiVersion: multus-webhook.io/v1alpha1\nkind: MultusNodeState\nmetadata: {{name: n1, namespace: "
                f"{namespace}}}\nstatus: {{nodeName: n1, cniBinaries: [{binaries}], multusReady: true}}\n")
    state = write(tmp_path, "state.yaml", "---\n".join([
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
        node_state("multus-webhook", "macvlan, host-local"), node_state("other-install", "macvlan")]))
    nad = write(tmp_path, "nad.yaml", VALID_NAD)
    _, out, _ = run([nad, "--cluster-state", state, "--output", "json"], capsys)
    assert "nad-cni-binaries" not in {f["rule"] for f in json_results(out)[0]["findings"]}
    _, out, _ = run([nad, "--cluster-state", state, "--webhook-namespace", "other-install", "--output", "json"],
                    capsys)
    assert "nad-cni-binaries" in {f["rule"] for f in json_results(out)[0]["findings"]}
    # With none in the webhook's namespace the binary checks are skipped, and the note says where they were.
    _, out, _ = run([nad, "--cluster-state", state, "--webhook-namespace", "netops", "--output", "json"], capsys)
    [note] = json.loads(out)["notes"]
    assert note.endswith("MultusNodeStates in multus-webhook, other-install were left out: the webhook reads only "
                         "those of its own namespace, netops (--webhook-namespace)")


# The reviewer's cases (session 17) where check and the webhook behind `kubectl apply --dry-run=server`
# disagreed, all from reading YAML as YAML 1.1 instead of as kubectl does.
DATED_POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: dated, labels: {release: 2024-01-01}}\n" \
            "spec: {containers: [{name: app, image: busybox}]}\n"
PROFILE = """\
apiVersion: multus-webhook.io/v1alpha1
kind: NetworkProfile
metadata: {name: storage}
spec:
  networks:
  - name: ok
    mac: 10:20:30:40:50:59
    cni-args: {release: 2024-01-01}
    bandwidth: {ingressRate: %s, ingressBurst: %s}
---
apiVersion: v1
kind: Pod
metadata: {name: profiled, labels: {multus-webhook.io/network-profile: storage}}
spec: {containers: [{name: app, image: busybox}]}
"""


def test_a_dated_label_re_applied_is_judged_without_a_traceback(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    item = DATED_POD.replace("\n", "\n  ")
    state = write(tmp_path, "state.yaml", f"apiVersion: v1\nkind: List\nitems:\n- {item}")
    status, out, err = run([write(tmp_path, "pod.yaml", DATED_POD), "--cluster-state", state, "--output", "json"],
                           capsys)
    assert "Traceback" not in err
    assert status == 0
    assert [r["verdict"] for r in json.loads(out)["results"]] == ["allow"]


@pytest.mark.parametrize(("rate", "burst"), [("1e6", "1e6"), ("1000000.0", "1000000"), ("0x10", "0755")])
def test_a_profile_read_as_kubectl_reads_it_is_allowed(rate: str, burst: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # A date in cni-args, a MAC YAML 1.1 reads as a base-60 integer, the rates in forms Go reads as numbers
    # and the apiserver hands on as integers: all fine, for the profile and the pod it is applied to.
    inputs = write(tmp_path, "in.yaml", VALID_NAD + "---\n" + PROFILE % (rate, burst))
    status, out, err = run([inputs, "--cluster-state", write(tmp_path, "empty.yaml", ""), "--output", "json"],
                           capsys)
    assert "Traceback" not in err
    # The NAD takes no bandwidth: the one warning, as the webhook gives it.
    assert [(r["kind"], r["verdict"], [f["rule"] for f in r["findings"]]) for r in json.loads(out)["results"]] == [
        ("NetworkAttachmentDefinition", "allow", []), ("NetworkProfile", "allow", []),
        ("Pod", "warn", ["pod-networks-capabilities"])]
    assert status == 0


def test_a_host_network_pod_written_y_is_not_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # hostNetwork: y is true to kubectl: the pod rules skip host-network pods, as the webhook does.
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: host, annotations: {k8s.v1.cni.cncf.io/networks: missing}}\n"
           "spec: {hostNetwork: y, containers: [{name: app, image: busybox}]}\n")
    status, out, _ = run([write(tmp_path, "pod.yaml", pod), "--cluster-state", write(tmp_path, "empty.yaml", ""),
                          "--output", "json"], capsys)
    assert [r["findings"] for r in json.loads(out)["results"]] == [[]]
    assert status == 0


def test_dates_where_names_are_expected_are_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: 2024-01-01, annotations: {k8s.v1.cni.cncf.io/networks: "
           "2024-01-01, note: =}}\nspec: {containers: [{name: app, image: busybox}]}\n")
    status, out, _ = run([write(tmp_path, "pod.yaml", pod), "--cluster-state", write(tmp_path, "empty.yaml", ""),
                          "--output", "json"], capsys)
    [result] = json.loads(out)["results"]
    assert result["name"] == "2024-01-01"
    assert [f["rule"] for f in result["findings"]] == ["pod-networks-nad-exists"]
    assert status == 1


def test_an_alias_bomb_in_the_cluster_state_exits_2_naming_the_file(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # Once exhausted the memory (3 GB in 52 s): kubectl refuses such a document, so does check, at once.
    levels = "".join(f"    x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    state = write(tmp_path, "state.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n"
                  "  metadata: {name: bomb}\n  spec:\n    x0: &a0 [" + ", ".join(["lol"] * 10) + "]\n" + levels)
    status, _, err = run([write(tmp_path, "ok.yaml", VALID_NAD), "--cluster-state", state], capsys)
    assert status == 2
    assert err.startswith(f"multus-webhook check: {state}:11: document contains excessive aliasing")  # x3


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_on_standard_input_is_read(encoding: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = "\ufeff".encode(encoding) + VALID_NAD.encode(encoding)
    status, out, _ = run(["-", "--output", "json"], capsys, stdin=data, monkeypatch=monkeypatch)
    assert [(r["kind"], r["name"], r["verdict"]) for r in json.loads(out)["results"]] == [
        ("NetworkAttachmentDefinition", "ok", "allow")]
    assert status == 0
