"""Handlers: an AdmissionRequest in, a Response out, chosen by the request's kind.

They only read the cluster view (a cache); they never call the API server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from webhook.admission.mutation import mutate_pod
from webhook.admission.response import Response, allowed, denied, errored, patched
from webhook.admission.review import AdmissionRequest
from webhook.multus.selection import judged
from webhook.names import NAMESPACE
from webhook.rules import Finding, Policy, Severity, Subject, evaluate
from webhook.rules.view import UNKNOWN_CLUSTER, ClusterView


@dataclass
class AdmissionContext:
    """What handlers read: the cluster view and the policy in force (both swapped in place when the
    cache syncs or the policy ConfigMap changes)."""

    view: ClusterView = field(default=UNKNOWN_CLUSTER)
    policy: Policy = field(default_factory=Policy)
    #: The webhook's own namespace, where the agents' pods run (the readiness gate points there).
    namespace: str = NAMESPACE


Handler = Callable[[AdmissionRequest, AdmissionContext], Response]

VALIDATED_KINDS = frozenset({"NetworkAttachmentDefinition", "Pod", "NetworkProfile"})
#: Judged too (pod-binding-selection), but not one of the kinds above: `multus-webhook check` reads
#: manifests, and a Binding is an act on a pod rather than one.
BINDING = "Binding"
#: Every kind /validate judges: the metrics count each under its own name (and any other as one).
SERVED_KINDS = VALIDATED_KINDS | {BINDING}


def describe(finding: Finding) -> str:
    return f"{finding.message} [{finding.rule}]"


def response_for(findings: list[Finding]) -> Response:
    if not findings:
        return allowed()
    denials = [describe(f) for f in findings if f.severity is Severity.DENY]
    warnings = [describe(f) for f in findings if f.severity is Severity.WARN]
    if denials:
        return denied("; ".join(denials), warnings=warnings, findings=tuple(findings))
    return allowed(warnings, findings=tuple(findings))


def validate(request: AdmissionRequest, ctx: AdmissionContext) -> Response:
    kind = request.kind.kind
    if kind not in SERVED_KINDS:
        return allowed()
    # On DELETE the object is gone from `object`; the rules see what is being deleted.
    obj = request.old_object if request.operation == "DELETE" else request.object
    if obj is None:
        which = "oldObject" if request.operation == "DELETE" else "object"
        return errored(f"request.{which} is missing for {request.operation} of {kind}")
    if kind == "Pod" and not judged(obj):
        return allowed()
    subject = Subject(
        obj,
        kind,
        operation=request.operation,
        old_object=request.old_object if request.operation == "UPDATE" else None,
        view=ctx.view,
        default_namespace=request.namespace or "default",
        policy=ctx.policy,
        agent_namespace=ctx.namespace,
    )
    return response_for(evaluate(subject, ctx.policy))


def mutate(request: AdmissionRequest, ctx: AdmissionContext) -> Response:
    """Pods on CREATE: the labelled NetworkProfile into the networks annotation, and the readiness
    pod affinity. Nothing is refused here; the validating rules refuse what could not be applied."""
    if request.kind.kind != "Pod" or request.operation != "CREATE" or request.object is None or not judged(
            request.object):
        return allowed()
    mutation = mutate_pod(request.object, request.namespace or "default", ctx.view, ctx.policy, ctx.namespace)
    return patched(mutation.ops, mutation.warnings) if mutation.ops else allowed(mutation.warnings)
