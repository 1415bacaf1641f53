"""The rule registry: every rule has a stable id, the kinds it applies to, a default severity, a
one-line title, and a docstring that says what it protects against."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from webhook.rules.findings import Severity, Violation
from webhook.rules.subject import Subject

RuleCheck = Callable[[Subject], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    id: str
    kinds: frozenset[str]
    severity: Severity
    title: str
    check: RuleCheck
    operations: frozenset[str]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.check) or ""


_REGISTRY: dict[str, Rule] = {}


#: Rules judge the object being written; deleting a broken object must stay possible.
WRITES = frozenset({"CREATE", "UPDATE"})


def rule(
    rule_id: str,
    *,
    kinds: Iterable[str],
    severity: Severity,
    title: str,
    operations: Iterable[str] = WRITES,
) -> Callable[[RuleCheck], RuleCheck]:
    def register(check: RuleCheck) -> RuleCheck:
        if rule_id in _REGISTRY:
            raise ValueError(f"rule id {rule_id} registered twice")
        if not inspect.getdoc(check):
            raise ValueError(f"rule {rule_id} needs a docstring saying what it protects against")
        _REGISTRY[rule_id] = Rule(rule_id, frozenset(kinds), severity, title, check, frozenset(operations))
        return check

    return register


def registered() -> Mapping[str, Rule]:
    """The rules by id (a read-only view, not a copy)."""
    return MappingProxyType(_REGISTRY)
