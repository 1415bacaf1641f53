"""Per-rule severities (deny / warn / off) and the audit switch, read from one YAML/JSON document.

The same document is read from a file (CLI, standalone server) or from the ``policy`` key of the
ConfigMap ``multus-webhook-policy`` in the cluster::

    audit: false              # true turns every deny into a warning
    rules:                    # any rule id (multus-webhook rules) -> deny | warn | off
      nad-ipam-dhcp: off
      pod-networks-empty: deny
    readinessAffinity: true   # pods with Multus networks only go to nodes where Multus is ready
    readinessGate: podAffinity    # how: podAffinity (to the node's agent pod) or nodeAffinity (on the
                                  # node's labels), for clusters that forbid cross-namespace affinity
    globalNamespaces: [default]   # with pod-networks-namespace-isolation on
    multusNamespace: kube-system  # where an unqualified default-network points
    defaultNetworks: []       # as in Multus's config: the networks every pod gets first (net1...), which
    systemNamespaces: [kube-system]   # shift the names of a pod's own; pods here do not get them
    repair: false             # delete owned pods that lost their networks after a node reboot
    onTimeout: deny           # the answer when a request cannot be checked before the apiserver's
                              # timeout: deny (as failurePolicy Fail would, but with a clear
                              # message) or allow (with a warning that it was not checked)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook.multus.selection import NO_DEFAULT_NETWORKS, DefaultNetworks
from webhook.rules.findings import Severity


class PolicyError(ValueError):
    pass


class _PolicyDocument(BaseModel):
    """The policy file as written; unknown keys are errors, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    audit: bool = False
    rules: dict[str, Literal["deny", "warn", "off"]] = Field(default_factory=dict)
    readiness_affinity: bool = Field(True, alias="readinessAffinity")
    readiness_gate: Literal["podAffinity", "nodeAffinity"] = Field("podAffinity", alias="readinessGate")
    global_namespaces: list[str] = Field(default_factory=lambda: ["default"], alias="globalNamespaces")
    multus_namespace: str = Field("kube-system", alias="multusNamespace")
    default_networks: list[str] = Field(default_factory=list, alias="defaultNetworks")
    system_namespaces: list[str] = Field(default_factory=lambda: ["kube-system"], alias="systemNamespaces")
    repair: bool = False
    on_timeout: Literal["deny", "allow"] = Field("deny", alias="onTimeout")


@dataclass(frozen=True)
class Policy:
    severities: Mapping[str, Severity] = field(default_factory=dict)
    #: Every denial is a warning instead, marked as one (engine.evaluate, after the ratchet).
    audit: bool = False
    #: Pods asking for Multus networks get a required pod affinity to a Multus-ready node's agent pod.
    readiness_affinity: bool = True
    #: What that gate is: a pod affinity to the node's agent pod (which a kubelet never checks again),
    #: or a node affinity on the node's labels for every pod, for a cluster whose apiserver refuses pods
    #: with cross-namespace pod affinity in every namespace (ResourceQuota ``limitedResources``), which
    #: the cluster cache cannot see (see docs/failure-modes.md).
    readiness_gate: Literal["podAffinity", "nodeAffinity"] = "podAffinity"
    #: With namespace isolation (rule pod-networks-namespace-isolation), the namespaces whose NADs
    #: every pod may use, as Multus's globalNamespaces.
    global_namespaces: tuple[str, ...] = ("default",)
    #: Multus's own namespace: where a default-network reference without a namespace points.
    multus_namespace: str = "kube-system"
    #: Multus's defaultNetworks and systemNamespaces, which decide the net<N> names of a pod's networks.
    default_networks: DefaultNetworks = NO_DEFAULT_NETWORKS
    #: Delete controller-owned pods that came up without their networks after a node reboot.
    repair: bool = False
    #: The answer given instead of a check that would not finish before the apiserver's timeout. Deny by
    #: default: every webhook is failurePolicy Fail, so this is what the apiserver would do anyway,
    #: only sooner and with a message that says why.
    on_timeout: Literal["deny", "allow"] = "deny"

    @classmethod
    def from_mapping(cls, data: Any, known_rules: set[str], source: str = "policy") -> Policy:
        if data is None:
            return cls()
        if isinstance(data, dict) and isinstance(data.get("rules"), dict):
            # YAML 1.1 reads a bare `off` as false.
            data = {**data, "rules": {k: "off" if v is False else v for k, v in data["rules"].items()}}
        try:
            doc = _PolicyDocument.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise PolicyError(f"{source}: {problems}") from None
        unknown = sorted(set(doc.rules) - known_rules)
        if unknown:
            raise PolicyError(f"{source}: rules.{unknown[0]}: no such rule (see 'multus-webhook rules')")
        return cls(
            severities={k: Severity(v) for k, v in doc.rules.items()},
            audit=doc.audit,
            readiness_affinity=doc.readiness_affinity,
            readiness_gate=doc.readiness_gate,
            global_namespaces=tuple(doc.global_namespaces),
            multus_namespace=doc.multus_namespace,
            default_networks=DefaultNetworks(tuple(doc.default_networks), tuple(doc.system_namespaces)),
            repair=doc.repair,
            on_timeout=doc.on_timeout,
        )

    @classmethod
    def from_text(cls, text: str, known_rules: set[str], source: str = "policy") -> Policy:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source}: not valid YAML: {exc}") from None
        except ValueError as exc:  # an integer of more digits than int() accepts (4,300)
            raise PolicyError(f"{source}: not readable YAML: {exc}") from None
        except RecursionError:  # collections nested thousands deep
            raise PolicyError(f"{source}: not readable YAML: nested too deep") from None
        return cls.from_mapping(data, known_rules, source)

    @classmethod
    def from_file(cls, path: Path, known_rules: set[str]) -> Policy:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{path}: not UTF-8 text (byte {exc.start}): a policy is YAML") from None
        return cls.from_text(text, known_rules, str(path))
