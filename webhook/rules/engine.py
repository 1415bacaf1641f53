"""The one evaluation function that the webhook and the CLI share."""

from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import replace

from webhook.rules.findings import Finding, Severity
from webhook.rules.policy import Policy
from webhook.rules.registry import Rule, registered
from webhook.rules.subject import Subject

log = logging.getLogger(__name__)

#: Findings reported per rule and object: a denial listing thousands of elements helps nobody, and the
#: apiserver and kubectl would carry it all.
MAX_PER_RULE = 20
#: Said after a warning that audit mode made of a denial.
AUDITED = "audit mode: denied when enforced"


def rules_for(kind: str, operation: str = "CREATE") -> list[Rule]:
    return list(_rules_for(kind, operation, len(registered())))


@functools.lru_cache(maxsize=64)
def _rules_for(kind: str, operation: str, _registered: int) -> tuple[Rule, ...]:
    # Keyed by the registry's size too, so a rule registered later is never missed.
    return tuple(r for r in registered().values() if kind in r.kinds and operation in r.operations)


#: (kind, operation, registry size) -> (the policy, the rules it turns on with their severities); the
#: policy object is kept so that a result serves only the very policy it was computed for.
_active_cache: dict[tuple[str, str, int], tuple[Policy, tuple[tuple[Rule, Severity], ...]]] = {}


def _active(kind: str, operation: str, policy: Policy) -> tuple[tuple[Rule, Severity], ...]:
    key = (kind, operation, len(registered()))
    cached = _active_cache.get(key)
    if cached is not None and cached[0] is policy:
        return cached[1]
    # The severity as enforced: audit mode downgrades each denial after the ratchet (evaluate), so that
    # the warning can say that enforcing would refuse it.
    active = tuple((rule, severity) for rule in _rules_for(*key)
                   if (severity := policy.severities.get(rule.id, rule.severity)) is not Severity.OFF)
    _active_cache[key] = (policy, active)
    return active


def evaluate(subject: Subject, policy: Policy) -> list[Finding]:
    if subject.policy is not policy:
        subject = replace(subject, policy=policy)
    findings: list[Finding] = []
    for rule, configured in _active(subject.kind, subject.operation, policy):
        try:
            # Rules are generators: stopping after the limit also stops the work on a huge object.
            violations = list(itertools.islice(rule.check(subject), MAX_PER_RULE + 1))
        except Exception as exc:
            # A bug in one rule must neither block every object of its kind nor pass silently.
            log.exception("rule %s failed on %s %s/%s", rule.id, subject.kind, subject.namespace, subject.name)
            findings.append(Finding(rule.id, Severity.WARN,
                                    f"internal error in rule {rule.id}: {exc!r}; please report it", "",
                                    rule_failed=True))
            continue
        ratchet: str | None = None  # the suffix of a ratcheted denial, worked out at the first one
        for i, v in enumerate(violations):
            severity = configured if v.severity is None or v.severity.rank >= configured.rank else v.severity
            if severity is Severity.OFF:
                continue
            if i == MAX_PER_RULE:
                message, where = (f"more findings of rule {rule.id} left out after the first {MAX_PER_RULE}: fix "
                                  "these and check again"), ""
            else:
                message, where = v.message, subject.field_prefix + v.field
            if severity is Severity.DENY:
                if ratchet is None:
                    ratchet = _ratcheted(rule) if _already_there(rule, subject) else ""
                if ratchet:
                    severity, message = Severity.WARN, f"{message} ({ratchet})"
                elif policy.audit:
                    findings.append(Finding(rule.id, Severity.WARN, f"{message} ({AUDITED})", where, audited=True))
                    continue
            findings.append(Finding(rule.id, severity, message, where))
    return findings


def _already_there(rule: Rule, subject: Subject) -> bool:
    """Whether an UPDATE leaves all that ``rule`` judges as it was, so that what it finds was already
    there. Such a finding is not a denial, as Kubernetes ratchets its own validation: an object admitted
    before the rule refused it (while the webhook was away or in audit mode, or before the cluster
    changed) must still have its finalizers removed, its labels edited, and so on."""
    old = subject.old_object
    return (subject.operation == "UPDATE" and old is not None and bool(rule.judges)
            and all(part.of(subject.obj) == part.of(old) for part in rule.judges))


def _ratcheted(rule: Rule) -> str:
    what = " and ".join(part.label for part in rule.judges)
    was, changes = ("it was", "it changes") if len(rule.judges) == 1 else ("they were", "one of them changes")
    return (f"allowed because it was already there: this update leaves {what} as {was}; rule {rule.id} "
            f"refuses it once {changes}")
