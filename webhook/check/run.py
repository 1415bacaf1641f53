"""Judging the inputs with the webhook's own evaluation function, against the cluster they would be
applied to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from webhook.admission.mutation import MUTATION_WARNING, as_validated
from webhook.check.apply import applied, created
from webhook.check.inputs import Input, Target, target
from webhook.cluster.static import StaticClusterView, object_key
from webhook.documents import Document
from webhook.multus.selection import DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, judged
from webhook.names import NAMESPACE, PROFILE_LABEL
from webhook.objects import as_mapping
from webhook.rules import Finding, Policy, Severity, Subject, evaluate, verdict
from webhook.rules.registry import MANIFEST
from webhook.rules.view import UNKNOWN_CLUSTER

#: What an UPDATE of a pod must change for the apiserver to call the pod validating webhook.
SELECTION_ANNOTATIONS = (NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION)

NO_STATE_NOTE = "no cluster state given (--cluster-state or --kubeconfig): the rules that need one were skipped"
NO_INVENTORY_NOTE = (
    "no node in the cluster state reports its CNI binaries (MultusNodeState status.cniBinaries): "
    "the checks that need them were skipped"
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
        return self.input.source


@dataclass(frozen=True)
class Report:
    #: Every input object in input order: a Result when judged, the bare Input when skipped.
    entries: tuple[Result | Input, ...]
    #: What the reader must know about the run as a whole: rules that could not say anything.
    notes: tuple[str, ...]
    #: --strict: a warning fails the run as a denial does.
    strict: bool = False

    @property
    def results(self) -> list[Result]:
        return [e for e in self.entries if isinstance(e, Result)]

    @property
    def skipped(self) -> list[Input]:
        return [e for e in self.entries if isinstance(e, Input)]

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


def check(
    documents: Sequence[Document],
    policy: Policy,
    *,
    state: Iterable[Mapping[str, Any]] | None = None,
    default_namespace: str = "default",
    webhook_namespace: str = NAMESPACE,
    strict: bool = False,
) -> Report:
    """Judge each document in order against ``state``, the objects of the cluster the inputs would be
    applied to (None: no cluster state, the cluster-aware rules stay silent). Every input object the
    webhook would admit joins the state, so the inputs after it see it (a NAD before the pods that use
    it); an input that is already in the state is judged as an UPDATE of it. An input without a name
    (generateName) is always a CREATE: the apiserver gives it a name of its own. Pods in
    ``webhook_namespace``, where the webhook runs, are not judged: the pod webhooks skip it."""
    items = [target(doc, default_namespace) for doc in documents]
    updated = _updated(items)
    view: StaticClusterView | None = None
    # The view keeps little of each object (pods as the NADs they reference); an UPDATE needs the whole
    # old object. Only those the inputs would update are kept whole: a large cluster's state, all of it
    # kept, was 1.4 GB for 5,000 nodes and 50,000 pods.
    stored: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    if state is not None:
        def keeping_updated(objects: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
            for obj in objects:
                key = object_key(obj, default_namespace)
                if key in updated:
                    stored[key] = obj
                yield obj

        view = StaticClusterView(keeping_updated(state), default_namespace=default_namespace,
                                 state_namespace=webhook_namespace)

    def judge(item: Target, old: Mapping[str, Any] | None) -> tuple[Result, Mapping[str, Any]]:
        """The result, and the object the apiserver would store if it is admitted (a pod with its
        profile applied)."""
        obj = item.obj if old is not None else created(item.obj)
        if _not_sent(item, old, webhook_namespace):
            # The apiserver admits it without asking the webhook: nothing to report, as for the server.
            return Result(item.input, ()), obj
        mutation_warnings: list[str] = []
        if item.subject_kind == "Pod" and old is None:
            # On the server /mutate runs first: the validating rules judge the pod with its profile applied,
            # and its warnings reach kubectl as the rules' do. Without a state too: some of them (spec.nodeName
            # set, annotations too large) need none.
            obj, mutation_warnings = as_validated(obj, item.input.namespace,  # the namespace the pod is created in
                                                  UNKNOWN_CLUSTER if view is None else view, policy, webhook_namespace)
        subject = Subject(
            obj,
            item.subject_kind,
            operation="CREATE" if old is None else "UPDATE",
            old_object=old,
            view=UNKNOWN_CLUSTER if view is None else view,
            field_prefix=item.field_prefix,
            default_namespace=item.input.namespace,
            agent_namespace=webhook_namespace,  # where the gate's pod affinity term points
        )
        # Once each, as fit_warnings sends them to the apiserver.
        mutated = [Finding(MUTATION_WARNING, Severity.WARN, w, "") for w in dict.fromkeys(mutation_warnings)]
        return Result(item.input, (*mutated, *evaluate(subject, policy))), obj

    entries: list[Result | Input] = []
    templates: list[tuple[int, Target]] = []
    for item in items:
        if not isinstance(item, Target):
            entries.append(item)
        elif item.as_written:
            findings = tuple(evaluate(Subject(item.obj, item.subject_kind, operation=MANIFEST,
                                              default_namespace=item.input.namespace), policy))
            # With the rule off it is what it was before the rule: skipped.
            entries.append(Result(item.input, findings) if findings else item.input)
        elif item.is_template:
            # A workload's pods are created after the whole apply, and kustomize and helm print NADs and
            # NetworkProfiles after the Deployments that use them: templates see every input object.
            templates.append((len(entries), item))
            entries.append(item.input)
        else:
            key = _key(item)
            old = None if key is None else stored.get(key)
            if old is not None:
                item = replace(item, obj=applied(item.obj, old))
            result, admitted = judge(item, old)
            entries.append(result)
            # The apiserver stores what the webhook allows and nothing else: a denied NAD does not exist
            # for the pods after it, a denied UPDATE leaves the object as it was.
            if view is not None and result.verdict != "deny":
                if key is None:
                    admitted = _named(admitted, item.input)
                else:
                    stored[key] = admitted
                view.put(admitted)
    for i, item in templates:
        entries[i] = judge(item, None)[0]
    return Report(tuple(entries), _notes(view), strict=strict)


def _not_sent(item: Target, old: Mapping[str, Any] | None, webhook_namespace: str) -> bool:
    """Whether the apiserver would not call the pod webhooks for this pod at all (their namespaceSelector
    and matchConditions in manifests/base/webhook/webhook-configurations.yaml): a pod in the webhook's
    own namespace (by its name, ``webhook_namespace``, as the selector has it), one Multus never reads
    (selection.judged), one that asks for no Multus network
    (neither selection annotation, no profile label, nor on UPDATE a profile label on the old object),
    or an UPDATE that leaves both selection annotations and the profile label as they were (the server
    would only have ratcheted them into warnings)."""
    if item.subject_kind != "Pod":
        return False
    if item.input.namespace == webhook_namespace or not judged(item.obj):
        return True
    metadata = as_mapping(item.obj.get("metadata"))
    annotations = as_mapping(metadata.get("annotations"))
    old_metadata = as_mapping(None if old is None else old.get("metadata"))
    asks = any(k in annotations for k in SELECTION_ANNOTATIONS) or PROFILE_LABEL in as_mapping(metadata.get("labels"))
    # The removal of the profile label is sent (and warned about) even when it leaves the pod asking
    # for nothing.
    had_profile = PROFILE_LABEL in as_mapping(old_metadata.get("labels"))
    if not asks and not had_profile:
        return True
    if old is None:
        return False
    old_annotations = as_mapping(old_metadata.get("annotations"))
    profile = as_mapping(metadata.get("labels")).get(PROFILE_LABEL)
    return all(annotations.get(k) == old_annotations.get(k) for k in SELECTION_ANNOTATIONS) and \
        profile == as_mapping(old_metadata.get("labels")).get(PROFILE_LABEL)


def _key(item: Target) -> tuple[str, str, str] | None:
    """What the input replaces in the state: None for one without metadata.name, which the apiserver
    names at CREATE (generateName), so that it is never the UPDATE of another object (all of them would
    have the name "")."""
    return (item.input.kind, item.input.namespace, item.input.name) if item.input.name else None


def _named(obj: Mapping[str, Any], item: Input) -> Mapping[str, Any]:
    """``obj``, which has no name, as the state keeps it: under a name no other object has (no object
    can be named so), that says where it came from, e.g. ``job-* (pods.yaml#3)`` in the messages of
    the inputs after it."""
    return {**obj, "metadata": {**as_mapping(obj.get("metadata")), "name": f"{item.shown_name} ({item.source})"}}


def _updated(items: Iterable[Target | Input]) -> set[tuple[str, str, str]]:
    return {key for item in items if isinstance(item, Target) and not item.is_template and not item.as_written
            and (key := _key(item)) is not None}


def updated_pods(documents: Sequence[Document], default_namespace: str = "default") -> set[tuple[str, str]]:
    """(namespace, name) of the pods among ``documents``: if the cluster has them, check judges these
    inputs as UPDATEs of them and needs them whole."""
    return {(ns, name) for kind, ns, name in _updated(target(doc, default_namespace) for doc in documents)
            if kind == "Pod"}


def _notes(view: StaticClusterView | None) -> tuple[str, ...]:
    if view is None or not view.known:
        return (NO_STATE_NOTE,)
    if not view.cni_inventory_known:
        if view.other_state_namespaces:
            # The likeliest cause: the webhook runs elsewhere than --webhook-namespace says.
            others = ", ".join(sorted(view.other_state_namespaces))
            return (f"{NO_INVENTORY_NOTE}; MultusNodeStates in {others} were left out: the webhook reads only "
                    f"those of its own namespace, {view.state_namespace} (--webhook-namespace)",)
        return (NO_INVENTORY_NOTE,)
    return ()
