"""Judging the inputs with the webhook's own evaluation function, against the cluster they would be
applied to."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from webhook.check.inputs import Input, Target, target
from webhook.cluster.static import StaticClusterView, object_key
from webhook.documents import Document
from webhook.rules import Finding, Policy, Severity, Subject, evaluate, verdict
from webhook.rules.view import UNKNOWN_CLUSTER

NO_STATE_NOTE = (
    "no cluster state given (--cluster-state or --kubeconfig): the rules that need one were skipped"
)


@dataclass(frozen=True)
class Result:
    input: Input
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> str:
        return verdict(list(self.findings))

    @property
    def source(self) -> str:
        return f"{self.input.document.source}#{self.input.document.index}"


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    skipped: tuple[Input, ...]
    #: False when no cluster state was given: the cluster-aware rules said nothing.
    cluster_known: bool
    #: --strict: a warning fails the run as a denial does.
    strict: bool = False

    def failing(self, result: Result) -> list[Finding]:
        """The findings that fail the run."""
        worst = Severity.WARN if self.strict else Severity.DENY
        return [f for f in result.findings if f.severity.rank >= worst.rank]

    @property
    def summary(self) -> dict[str, int]:
        counts = {"allow": 0, "warn": 0, "deny": 0}
        for result in self.results:
            counts[result.verdict] += 1
        return {**counts, "skipped": len(self.skipped)}

    @property
    def exit_status(self) -> int:
        return 1 if any(self.failing(r) for r in self.results) else 0


def _find(view: StaticClusterView, key: tuple[str, str, str], default_namespace: str) -> dict[str, Any] | None:
    return next((o for o in view.objects(key[0]) if object_key(o, default_namespace) == key), None)


def check(
    documents: Iterable[Document],
    policy: Policy,
    *,
    state: StaticClusterView | None = None,
    default_namespace: str = "default",
    strict: bool = False,
) -> Report:
    """Judge each document in order. With ``state``, every input object joins it once judged, so the
    inputs after it see it (a NAD before the pods that use it); an input that is already in the state
    is judged as an UPDATE of it. ``state`` is changed in place."""
    results: list[Result] = []
    skipped: list[Input] = []
    for doc in documents:
        item = target(doc, default_namespace)
        if not isinstance(item, Target):
            skipped.append(item)
            continue
        old = None
        placed: dict[str, Any] | None = None
        if state is not None and not item.is_template:
            # Keyed in the namespace it would be applied to, as the apiserver would store it.
            placed = copy.deepcopy(doc.obj)
            if not isinstance(placed.get("metadata"), dict):
                placed["metadata"] = {}
            placed["metadata"]["namespace"] = item.input.namespace
            old = _find(state, object_key(placed), default_namespace)
        subject = Subject(
            item.obj,
            item.subject_kind,
            operation="CREATE" if old is None else "UPDATE",
            old_object=old,
            view=UNKNOWN_CLUSTER if state is None else state,
            field_prefix=item.field_prefix,
            default_namespace=item.input.namespace,
        )
        results.append(Result(item.input, tuple(evaluate(subject, policy))))
        if state is not None and placed is not None:
            state.put(placed)
    return Report(tuple(results), tuple(skipped), cluster_known=state is not None, strict=strict)
