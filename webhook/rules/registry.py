"""The rule registry: every rule has a stable id, the kinds it applies to, a default severity, a
one-line title, a docstring that says what it protects against, and the parts of the object it
judges."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from webhook.rules.findings import Severity, Violation
from webhook.rules.subject import Subject

RuleCheck = Callable[[Subject], Iterable[Violation]]

# Tells a part that is absent from one that is null.
_ABSENT = object()


@dataclass(frozen=True)
class Part:
    """A part of an object that a rule judges, by its path; ``label`` names it in messages."""

    path: tuple[str, ...]
    label: str

    def of(self, obj: Mapping[str, Any]) -> object:
        value: object = obj
        for key in self.path:
            if not isinstance(value, Mapping) or key not in value:
                return _ABSENT
            value = value[key]
        return value


def field(*path: str) -> Part:
    return Part(path, ".".join(path))


def annotation(key: str) -> Part:
    return Part(("metadata", "annotations", key), f"annotation {key}")


#: What most NAD rules judge.
SPEC_CONFIG = field("spec", "config")


@dataclass(frozen=True)
class Rule:
    id: str
    kinds: frozenset[str]
    severity: Severity
    title: str
    check: RuleCheck
    operations: frozenset[str]
    #: What of the object the rule reads (besides its namespace and name, which an UPDATE cannot change).
    #: An UPDATE that leaves all of it as it was is not refused by the rule (see engine._already_there);
    #: empty: every UPDATE is judged in full.
    judges: tuple[Part, ...] = ()

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.check) or ""


_REGISTRY: dict[str, Rule] = {}


#: Rules judge the object being written; deleting a broken object must stay possible.
WRITES = frozenset({"CREATE", "UPDATE"})
#: Not an admission operation: a manifest as written, which only `multus-webhook check` reads (the
#: webhook is sent CREATE, UPDATE and DELETE, so a rule of this operation never runs there).
MANIFEST = "MANIFEST"


def rule(
    rule_id: str,
    *,
    kinds: Iterable[str],
    severity: Severity,
    title: str,
    operations: Iterable[str] = WRITES,
    judges: Iterable[Part] = (),
) -> Callable[[RuleCheck], RuleCheck]:
    def register(check: RuleCheck) -> RuleCheck:
        if rule_id in _REGISTRY:
            raise ValueError(f"rule id {rule_id} registered twice")
        if not inspect.getdoc(check):
            raise ValueError(f"rule {rule_id} needs a docstring saying what it protects against")
        _REGISTRY[rule_id] = Rule(rule_id, frozenset(kinds), severity, title, check, frozenset(operations),
                                  tuple(judges))
        return check

    return register


def registered() -> Mapping[str, Rule]:
    """The rules by id (a read-only view, not a copy)."""
    return MappingProxyType(_REGISTRY)
