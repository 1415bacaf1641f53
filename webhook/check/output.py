"""The report in the formats CI systems read: text, json, sarif, junit, github.

Every format renders the same Report; nothing here judges anything. Output is deterministic (input
order, paths as given, no timestamps) so that it can be diffed and kept as golden files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from webhook import __version__
from webhook.admission.mutation import MUTATION_WARNING
from webhook.check.inputs import Input
from webhook.check.run import Report, Result
from webhook.documents import STDIN
from webhook.rules import Finding, Rule, Severity, registered
from webhook.text import escaped, printable

TOOL = "multus-webhook"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _object(item: Input) -> str:
    return f"{item.kind} {item.namespace}/{item.shown_name}"


def _where(result: Result) -> str:
    return f"{result.input.document.source}:{result.input.document.line}"


def _findings(report: Report) -> Iterator[tuple[Result, Finding]]:
    for result in report.results:
        for finding in result.findings:
            yield result, finding


def _at(f: Finding) -> str:
    return f" (at {f.field})" if f.field else ""


def _summary_line(report: Report) -> str:
    s = report.summary
    return (f"{len(report.results)} object(s) checked: {s['allow']} allowed, {s['warn']} warned, "
            f"{s['deny']} denied; {s['skipped']} skipped")




_COLORS = {Severity.DENY: "\033[31m", Severity.WARN: "\033[33m"}
_RESET = "\033[0m"


def text(report: Report, *, color: bool = False) -> str:
    lines = []
    for result, f in _findings(report):
        severity = f"{_COLORS[f.severity]}{f.severity}{_RESET}" if color else str(f.severity)
        lines.append(f"{printable(_where(result))}: {severity} "
                     f"{printable(f'{f.rule}: {_object(result.input)}: {f.message}{_at(f)}')}")
    lines.append(_summary_line(report))
    return "\n".join(lines) + "\n"


def json_(report: Report) -> str:
    results = [
        {
            "source": r.source,
            "apiVersion": r.input.api_version,
            "kind": r.input.kind,
            "namespace": r.input.namespace,
            "name": r.input.shown_name,
            "verdict": r.verdict,
            "findings": [f.as_dict() for f in r.findings],
        }
        for r in report.results
    ]
    # "notes" is what the other formats say as notes (the rules a missing cluster state skipped): a
    # script must be able to tell a pass from a run that could not look.
    return json.dumps({"results": results, "summary": report.summary, "notes": list(report.notes)}, indent=2) + "\n"


_SARIF_LEVEL = {Severity.DENY: "error", Severity.WARN: "warning", Severity.OFF: "none"}


def _uri(source: str) -> str:
    path = PurePath(source)
    # Relative URIs resolve against the checkout root in code scanning, as the paths were given. The
    # bytes are quoted: a file name that is not UTF-8 holds surrogates (surrogateescape), which quote()
    # cannot encode.
    return path.as_uri() if path.is_absolute() else quote(os.fsencode(path.as_posix()))


#: The partialFingerprints key: code scanning tells results apart by it across runs and line moves.
FINGERPRINT = "multusWebhookFinding/v1"


def _fingerprint(result: Result, f: Finding) -> str:
    """What the finding is about, not where the object's lines are: rule, object and field. Messages are
    left out (some count pods or nodes, which change between runs), except the first three words of one
    that names no field (the mutation's warnings: "spec.nodeName is set", "NetworkProfile p
    spec.networks[0]", "metadata.annotations total" before a byte count, "namespace x has" before quota
    names): without them, the warnings on one object would be told apart by their order only, and one
    going away would hand its identity to the next."""
    item = result.input
    about = f.field or " ".join(f.message.split()[:3])
    identity = "\0".join([f.rule, item.kind, item.namespace, item.shown_name, about])
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


def _rules() -> list[Rule]:
    # The order ruleIndex counts in.
    return sorted(registered().values(), key=lambda r: r.id)


def _descriptor(r: Rule) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.id,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.doc},
        "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
        "properties": {"kinds": sorted(r.kinds)},
    }


#: The warnings of /mutate are no rule's, but a result's ruleId should name a descriptor of the run's
#: (code scanning shows its description next to the alert): this one, among the rules.
MUTATION_DESCRIPTOR: dict[str, Any] = {
    "id": MUTATION_WARNING,
    "name": MUTATION_WARNING,
    "shortDescription": {"text": "a warning of the mutating webhook"},
    "fullDescription": {"text": "What the pod mutating webhook (/mutate) warns about when it creates the pod: "
                                "kubectl shows it as a warning. Not a rule: no policy sets its severity."},
    "defaultConfiguration": {"level": _SARIF_LEVEL[Severity.WARN]},
    "properties": {"kinds": ["Pod"]},
}


def _descriptors() -> list[dict[str, Any]]:
    # Sorted by id, the order ruleIndex counts in.
    return sorted([*map(_descriptor, _rules()), MUTATION_DESCRIPTOR], key=lambda d: str(d["id"]))


def sarif(report: Report) -> str:
    rules = _descriptors()
    index = {r["id"]: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    # Findings with one fingerprint (one rule on one field of one object, several times; objects with one
    # generateName) are told apart by their order, as code scanning's own line hashes are.
    seen: Counter[str] = Counter()
    for result, f in _findings(report):
        location: dict[str, Any] = {}
        # Standard input is no file in the repository: the object alone locates the finding.
        if result.input.document.source != STDIN:
            location["physicalLocation"] = {
                "artifactLocation": {"uri": _uri(result.input.document.source)},
                "region": {"startLine": result.input.document.line},
            }
        location["logicalLocations"] = [{
            "name": result.input.shown_name,
            "fullyQualifiedName": f"{result.input.namespace}/{result.input.kind}/{result.input.shown_name}",
            "kind": "object",
        }]
        fingerprint = _fingerprint(result, f)
        seen[fingerprint] += 1
        sarif_result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{_object(result.input)}: {f.message}"},
            "locations": [location],
            "partialFingerprints": {FINGERPRINT: f"{fingerprint}:{seen[fingerprint]}"},
            "properties": {"field": f.field, "source": result.source},
        }
        # An internal-error finding names a rule id too, but guard against one the registry lacks.
        if f.rule in index:
            sarif_result["ruleIndex"] = index[f.rule]
        results.append(sarif_result)
    notifications = [{"level": "note", "message": {"text": note}} for note in report.notes]
    return _sarif_log(rules, results, notifications, successful=True)


def _sarif_log(rules: list[dict[str, Any]], results: list[dict[str, Any]], notifications: list[dict[str, Any]], *,
               successful: bool) -> str:
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL,
                "version": __version__,
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": successful,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    }
    return json.dumps(log, indent=2) + "\n"


def _finding_line(f: Finding) -> str:
    return f"{f.severity} {f.rule}: {f.message}{_at(f)}"


def junit(report: Report) -> str:
    """One testsuite per file, one testcase per object; a failure lists the findings that fail the
    run (--strict counts warnings), the other findings go to system-out; skipped objects are skipped
    testcases, so that a CI dashboard shows what was not looked at."""
    cases: dict[str, list[ET.Element]] = {}
    failures: dict[str, int] = {}
    skips: dict[str, int] = {}

    def case(item: Input) -> ET.Element:
        source = item.document.source
        element = ET.Element("testcase", {"classname": source, "name": _object(item), "file": source,
                                          "line": str(item.document.line)})
        cases.setdefault(source, []).append(element)
        return element

    for entry in report.entries:
        if isinstance(entry, Result):
            element = case(entry.input)
            failing = report.failing(entry)
            if failing:
                failures[entry.input.document.source] = failures.get(entry.input.document.source, 0) + 1
                failure = ET.SubElement(element, "failure", {
                    "message": "; ".join(f"{f.rule}: {f.message}" for f in failing),
                    "type": str(max((f.severity for f in failing), key=lambda s: s.rank)),
                })
                failure.text = "\n".join(_finding_line(f) for f in failing)
            others = [f for f in entry.findings if f not in failing]
            if others:
                ET.SubElement(element, "system-out").text = "\n".join(_finding_line(f) for f in others)
        else:
            element = case(entry)
            skips[entry.document.source] = skips.get(entry.document.source, 0) + 1
            ET.SubElement(element, "skipped", {"message": f"{entry.kind} is not checked by multus-webhook"})

    root = ET.Element("testsuites", {"name": f"{TOOL} check", "tests": str(sum(map(len, cases.values()))),
                                     "failures": str(sum(failures.values())), "errors": "0",
                                     "skipped": str(sum(skips.values()))})
    for source, elements in cases.items():
        suite = ET.SubElement(root, "testsuite", {
            "name": source, "tests": str(len(elements)), "failures": str(failures.get(source, 0)),
            "errors": "0", "skipped": str(skips.get(source, 0)),
        })
        if report.notes:
            # The run's notes (the rules a missing cluster state skipped) in every suite: JUnit has no
            # place for the whole run's, and properties, before the testcases, are where the schema
            # (and Jenkins, GitLab) keep what the suite ran with.
            properties = ET.SubElement(suite, "properties")
            for note in report.notes:
                ET.SubElement(properties, "property", {"name": f"{TOOL}.note", "value": note})
        suite.extend(elements)
    return _xml(root)


# Characters XML 1.0 cannot hold, even escaped: a message quoting user input (an annotation with a
# control character) would make the whole report unreadable to the CI.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(value: str) -> str:
    return _NOT_XML.sub(escaped, value)


def _xml(root: ET.Element) -> str:
    for element in root.iter():
        element.attrib = {k: _xml_safe(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _xml_safe(element.text)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_SURROGATES = re.compile("[\ud800-\udfff]")


def _escape_data(value: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit, command.ts escapeData), after the surrogates
    # of a file name that is not UTF-8, which a strict stdout cannot write.
    return _SURROGATES.sub(escaped, value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    # Properties are also split on ',' and end at ':' (command.ts escapeProperty).
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


_GITHUB_COMMAND = {Severity.DENY: "error", Severity.WARN: "warning"}


def github(report: Report) -> str:
    """Workflow commands: GitHub Actions turns each into an annotation on the file and line."""
    lines = []
    for note in report.notes:
        lines.append(f"::notice title={_escape_property(TOOL)}::{_escape_data(note)}")
    for result, f in _findings(report):
        document = result.input.document
        # Read from stdin, it is in no file of the checkout: an annotation without file= goes on the run.
        where = [] if document.source == STDIN else [("file", document.source), ("line", str(document.line))]
        props = ",".join(f"{k}={_escape_property(v)}" for k, v in [
            *where, ("title", f"{f.rule} ({_object(result.input)})"),
        ])
        lines.append(f"::{_GITHUB_COMMAND[f.severity]} {props}::{_escape_data(f.message + _at(f))}")
    lines.append(_summary_line(report))
    return "\n".join(lines) + "\n"


def _json_failure(message: str) -> str:
    return json.dumps({"error": message}, indent=2) + "\n"


def _sarif_failure(message: str) -> str:
    return _sarif_log(_descriptors(), [], [{"level": "error", "message": {"text": message}}], successful=False)


def _junit_failure(message: str) -> str:
    root = ET.Element("testsuites", {"name": f"{TOOL} check", "tests": "1", "failures": "0", "errors": "1",
                                     "skipped": "0"})
    suite = ET.SubElement(root, "testsuite", {"name": f"{TOOL} check", "tests": "1", "failures": "0",
                                              "errors": "1", "skipped": "0"})
    case = ET.SubElement(suite, "testcase", {"classname": TOOL, "name": "read the inputs"})
    ET.SubElement(case, "error", {"message": message, "type": "unreadable"}).text = message
    return _xml(root)


def _github_failure(message: str) -> str:
    return f"::error title={_escape_property(TOOL)}::{_escape_data(message)}\n"


Formatter = Callable[[Report], str]

#: --output NAME -> formatter; text is first, the default.
FORMATS: dict[str, Formatter] = {"text": text, "json": json_, "sarif": sarif, "junit": junit, "github": github}

#: --output NAME -> what the format says when the inputs could not be read (exit status 2): a CI system
#: that reads the report rather than the exit status must not find an empty, passing one. Text has
#: nothing to add to the message on stderr.
FAILURES: dict[str, Callable[[str], str]] = {
    "json": _json_failure, "sarif": _sarif_failure, "junit": _junit_failure, "github": _github_failure,
}
