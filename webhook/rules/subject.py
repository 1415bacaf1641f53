"""The object under review, as every rule sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from webhook.cni.config import ParsedConfig, parse_nad_config
from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    NetworkReference,
    ParsedNetworks,
    network_references,
    parse_default_network,
    parse_networks,
)
from webhook.names import NAMESPACE
from webhook.objects import as_mapping
from webhook.rules.policy import Policy
from webhook.rules.view import UNKNOWN_CLUSTER, ClusterView


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
    #: Where the agents' pods run (the webhook's own namespace), which a pod's readiness gate names.
    agent_namespace: str = NAMESPACE

    def __post_init__(self) -> None:
        # Read by most rules, several times each: looked up once per review. The object under review
        # is never modified.
        self.metadata: Mapping[str, Any] = as_mapping(self.obj.get("metadata"))
        name = self.metadata.get("name")
        self.name: str = name if isinstance(name, str) else ""
        ns = self.metadata.get("namespace")
        self.namespace: str = ns if isinstance(ns, str) and ns else self.default_namespace
        self.annotations: Mapping[str, Any] = as_mapping(self.metadata.get("annotations"))
        self.labels: Mapping[str, Any] = as_mapping(self.metadata.get("labels"))
        self.spec: Mapping[str, Any] = as_mapping(self.obj.get("spec"))

    @cached_property
    def nad_config(self) -> ParsedConfig:
        """The NAD's spec.config, parsed once for all rules."""
        return parse_nad_config(self.spec.get("config"), "spec.config")

    @cached_property
    def network_references(self) -> tuple[NetworkReference, ...]:
        """The NADs a pod's selection annotations refer to, resolved once for all rules."""
        return network_references(self.annotations, self.namespace, multus_namespace=self.policy.multus_namespace,
                                  first_index=self.policy.default_networks.first_index(self.namespace))

    @cached_property
    def networks(self) -> ParsedNetworks | None:
        """A pod's networks annotation as Multus reads it, parsed once for all rules; None when it is
        absent or not a string."""
        value = self.annotations.get(NETWORKS_ANNOTATION)
        return parse_networks(value, self.namespace) if isinstance(value, str) else None

    @cached_property
    def default_network(self) -> ParsedNetworks | None:
        """A pod's default-network annotation, as ``networks``."""
        value = self.annotations.get(DEFAULT_NETWORK_ANNOTATION)
        return parse_default_network(value, self.policy.multus_namespace) if isinstance(value, str) else None
