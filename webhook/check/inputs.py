"""Which input documents `check` judges, and as what.

NADs, NetworkProfiles and Pods are judged as the webhook judges them. A workload is judged through its
pod template, as the Pod its controller will create: that Pod is what reaches the webhook, and by then
the manifest that caused it is far away. One of these kinds whose apiVersion looks like a slip for its
own, or a kind that looks like a misspelling of one (webhook.rules.api_group), is judged as written
only. Everything else is skipped (and counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.documents import Document
from webhook.objects import as_mapping
from webhook.rules.api_group import GROUPS, group_of, meant_kind

#: Where each workload kind keeps the template of the pods it creates.
POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Input:
    """One input object as the report names it."""

    document: Document
    api_version: str
    kind: str
    namespace: str
    #: metadata.name; "" when the apiserver is to name the object (generate_name).
    name: str
    generate_name: str = ""

    @property
    def shown_name(self) -> str:
        """The name the report gives: ``job-*`` for an object with only generateName (job-x7k2p once
        created)."""
        return self.name or (f"{self.generate_name}*" if self.generate_name else "")

    @property
    def source(self) -> str:
        """The file and the object's position in it: unique among the inputs."""
        return f"{self.document.source}#{self.document.index}"


@dataclass(frozen=True)
class Target:
    """An input to judge: ``obj`` of kind ``subject_kind`` is what the webhook would see."""

    input: Input
    subject_kind: str
    obj: Mapping[str, Any]
    #: Where ``obj`` sits inside the input object, e.g. "spec.template." for a Deployment.
    field_prefix: str
    #: Judged as written only (operation MANIFEST), as ``subject_kind`` though its kind may be written
    #: otherwise: no group serves it as written, so the apiserver would neither take it as one nor store it.
    as_written: bool = False

    @property
    def is_template(self) -> bool:
        """A template is not an object of the cluster: it never replaces or joins the cluster state."""
        return bool(self.field_prefix)


def describe(doc: Document, default_namespace: str) -> Input:
    metadata = as_mapping(doc.obj.get("metadata"))
    return Input(
        document=doc,
        api_version=_text(doc.obj.get("apiVersion")),
        kind=_text(doc.obj.get("kind")),
        namespace=_text(metadata.get("namespace")) or default_namespace,
        name=_text(metadata.get("name")),
        generate_name=_text(metadata.get("generateName")),
    )


def target(doc: Document, default_namespace: str) -> Target | Input:
    """The Target to judge, or the bare Input when the object is skipped."""
    item = describe(doc, default_namespace)
    if group_of(item.api_version) not in GROUPS.get(item.kind, ()):
        meant = meant_kind(item.kind, item.api_version)
        return item if meant is None else Target(item, meant, doc.obj, "", as_written=True)
    path = POD_TEMPLATES.get(item.kind)
    if path is None:
        return Target(item, item.kind, doc.obj, "")
    template: Mapping[str, Any] = doc.obj
    for key in path:
        template = as_mapping(template.get(key))
    return Target(item, "Pod", template_pod(template, item.namespace), ".".join(path) + ".")


#: What a controller copies of a template's metadata into the pods it creates (GetPodFromTemplate in
#: kubernetes pkg/controller/controller_utils.go): nothing else, the namespace least of all.
TEMPLATE_METADATA = ("labels", "annotations", "finalizers")


def template_pod(template: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The Pod a controller creates from ``template``: in ``namespace``, the workload's (the pods are
    created there whatever the template's metadata.namespace says), with the template's labels,
    annotations and finalizers."""
    written = as_mapping(template.get("metadata"))
    metadata = {key: written[key] for key in TEMPLATE_METADATA if key in written}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**metadata, "namespace": namespace},
            "spec": template.get("spec")}
