"""What a rule reports, and how severities order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    OFF = "off"
    WARN = "warn"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.OFF: 0, Severity.WARN: 1, Severity.DENY: 2}


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem a rule found. ``severity`` caps the rule's configured severity: a rule that is
    deny by default yields ``Severity.WARN`` for the cases that only deserve a warning."""

    field: str
    message: str
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A violation after the policy decided its severity."""

    rule: str
    severity: Severity
    message: str
    field: str
    #: A denial that audit mode made a warning: what enforcing would refuse.
    audited: bool = False
    #: The rule raised instead of judging: the finding is the warning saying so.
    rule_failed: bool = False

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": str(self.severity), "message": self.message, "field": self.field}


def verdict(findings: list[Finding]) -> str:
    """The most severe finding decides: "deny", "warn" or "allow"."""
    worst = max((f.severity.rank for f in findings), default=0)
    return {0: "allow", 1: "warn", 2: "deny"}[worst]
