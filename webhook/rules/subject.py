"""The object under review, as every rule sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from webhook.cni.config import ParsedConfig, parse_nad_config
from webhook.multus.selection import NetworkReference, network_references
from webhook.rules.policy import Policy
from webhook.rules.view import UNKNOWN_CLUSTER, ClusterView


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass
class Subject:
    obj: Mapping[str, Any]
    kind: str
    operation: str = "CREATE"
    old_object: Mapping[str, Any] | None = None
    view: ClusterView = field(default=UNKNOWN_CLUSTER)
    #: Prepended to every finding's field, e.g. "spec.template." for a Deployment's pod template.
    field_prefix: str = ""
    #: The namespace to assume when the object names none (the CLI's --namespace).
    default_namespace: str = "default"
    #: The policy in force, for rules with settings of their own (global namespaces, Multus namespace).
    policy: Policy = field(default_factory=Policy)

    @property
    def metadata(self) -> Mapping[str, Any]:
        return _mapping(self.obj.get("metadata"))

    @property
    def name(self) -> str:
        name = self.metadata.get("name")
        return name if isinstance(name, str) else ""

    @property
    def namespace(self) -> str:
        ns = self.metadata.get("namespace")
        return ns if isinstance(ns, str) and ns else self.default_namespace

    @property
    def annotations(self) -> Mapping[str, Any]:
        return _mapping(self.metadata.get("annotations"))

    @property
    def labels(self) -> Mapping[str, Any]:
        return _mapping(self.metadata.get("labels"))

    @property
    def spec(self) -> Mapping[str, Any]:
        return _mapping(self.obj.get("spec"))

    @cached_property
    def nad_config(self) -> ParsedConfig:
        """The NAD's spec.config, parsed once for all rules."""
        return parse_nad_config(self.spec.get("config"), "spec.config")

    @cached_property
    def network_references(self) -> tuple[NetworkReference, ...]:
        """The NADs a pod's selection annotations refer to, resolved once for all rules."""
        return network_references(self.annotations, self.namespace, multus_namespace=self.policy.multus_namespace)
