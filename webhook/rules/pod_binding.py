"""The rule on Bindings (pods/binding, or the older bindings resource): the one way to set a pod's
annotations that no pod admission sees."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.multus.selection import DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION
from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import rule
from webhook.rules.subject import Subject


# Bindings are only ever created (pods/binding and bindings serve CREATE alone).
@rule("pod-binding-selection", kinds={"Binding"}, severity=Severity.DENY, operations={"CREATE"},
      title="a Binding sets no Multus selection annotation on the pod it binds")
def selection(subject: Subject) -> Iterator[Violation]:
    """The apiserver copies a Binding's annotations onto the pod as it binds it, with no admission of the
    pod (kubernetes pkg/registry/core/pod/storage: assignPod): a selection set that way would reach Multus
    unjudged by every pod rule. The scheduler's bindings carry no annotations and are never sent to the
    webhook (its matchConditions), so this never holds up scheduling; only a custom binder that annotates
    is refused, and the pod itself takes the same annotation through the pod rules.

    A host-network pod's Binding is refused too, although Multus never reads its selection (the pod
    rules do not judge such a pod): the Binding does not say what pod it binds, and the webhook would
    have to ask the apiserver, which its admission path never does. Nothing is lost by it: the selection
    of a host-network pod attaches nothing (hostNetwork cannot change), and annotating the pod itself,
    the fix the message gives, is admitted for it. A cluster whose binder does annotate can set this rule
    to warn or off."""
    keys = [k for k in (NETWORKS_ANNOTATION, DEFAULT_NETWORK_ANNOTATION) if k in subject.annotations]
    if not keys:
        return
    fields = " and ".join(f"metadata.annotations[{k!r}]" for k in keys)
    yield Violation("metadata.annotations",
                    f"the Binding of pod {subject.namespace}/{subject.name} sets {fields}, which the apiserver copies "
                    "onto the pod without judging it as a pod change: set the pod's selection on the pod itself "
                    "(kubectl annotate pod) before binding it, and bind it without that annotation")
