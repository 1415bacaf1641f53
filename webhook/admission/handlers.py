"""Handlers: an AdmissionRequest in, a Response out, chosen by the request's kind.

They only read the cluster view (a cache); they never call the API server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from webhook.admission.mutation import mutate_pod
from webhook.admission.response import Response, allowed, denied, errored, patched
from webhook.admission.review import AdmissionRequest
from webhook.multus.selection import DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, judged
from webhook.names import NAMESPACE
from webhook.objects import as_mapping
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


def describe(finding: Finding) -> str:
    return f"{finding.message} [{finding.rule}]"


def response_for(findings: list[Finding]) -> Response:
    denials = [describe(f) for f in findings if f.severity is Severity.DENY]
    warnings = [describe(f) for f in findings if f.severity is Severity.WARN]
    if denials:
        return denied("; ".join(denials), warnings=warnings)
    return allowed(warnings)


def validate_binding(request: AdmissionRequest, ctx: AdmissionContext) -> Response:
    """A Binding (pods/binding, or the older bindings resource) that carries a selection annotation. The
    apiserver copies a Binding's annotations onto the pod as it binds it, with no admission of the pod
    (kubernetes pkg/registry/core/pod/storage: assignPod): a selection set that way would reach Multus
    unjudged. The scheduler's bindings carry no annotations, and are never sent here (matchConditions)."""
    annotations = as_mapping(as_mapping((request.object or {}).get("metadata")).get("annotations"))
    keys = [k for k in (NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION) if k in annotations]
    if not keys:
        return allowed()
    fields = " and ".join(f"metadata.annotations[{k!r}]" for k in keys)
    message = (f"the Binding of pod {request.namespace}/{request.name} sets {fields}, which the apiserver copies "
               "onto the pod without judging it as a pod change: set the pod's selection on the pod itself "
               "(kubectl annotate pod) before binding it, and bind it without that annotation")
    return allowed([message]) if ctx.policy.audit else denied(message)


def validate(request: AdmissionRequest, ctx: AdmissionContext) -> Response:
    kind = request.kind.kind
    if kind == "Binding":
        return validate_binding(request, ctx)
    if kind not in VALIDATED_KINDS:
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
