"""Per-rule severities (deny / warn / off) and the audit switch, read from one YAML/JSON document.

The same document is read from a file (CLI, standalone server) or from the ``policy`` key of the
ConfigMap ``multus-webhook-policy`` in the cluster::

    audit: false          # true turns every deny into a warning
    rules:
      nad-host-local-multi-node: warn
      pod-networks-empty: off
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from webhook.rules.findings import Severity


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    severities: Mapping[str, Severity] = field(default_factory=dict)
    audit: bool = False

    def severity(self, rule_id: str, default: Severity) -> Severity:
        chosen = self.severities.get(rule_id, default)
        if self.audit and chosen is Severity.DENY:
            return Severity.WARN
        return chosen

    @classmethod
    def from_mapping(cls, data: Any, known_rules: set[str], source: str = "policy") -> Policy:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise PolicyError(f"{source}: the policy must be a mapping with 'rules' and 'audit'")
        unknown_keys = set(data) - {"rules", "audit"}
        if unknown_keys:
            raise PolicyError(f"{source}: unknown key(s) {', '.join(sorted(unknown_keys))}; expected rules, audit")
        audit = data.get("audit", False)
        if not isinstance(audit, bool):
            raise PolicyError(f"{source}: audit must be true or false, not {audit!r}")
        rules = data.get("rules") or {}
        if not isinstance(rules, dict):
            raise PolicyError(f"{source}: rules must be a mapping of rule id to deny, warn or off")
        severities: dict[str, Severity] = {}
        for rule_id, value in rules.items():
            if rule_id not in known_rules:
                raise PolicyError(f"{source}: rules.{rule_id}: no such rule (see 'multus-webhook rules')")
            # YAML reads a bare `off` as False.
            text = "off" if value is False else str(value)
            try:
                severities[rule_id] = Severity(text)
            except ValueError:
                raise PolicyError(f"{source}: rules.{rule_id}: {value!r} is not one of deny, warn, off") from None
        return cls(severities=severities, audit=audit)

    @classmethod
    def from_text(cls, text: str, known_rules: set[str], source: str = "policy") -> Policy:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source}: not valid YAML: {exc}") from None
        return cls.from_mapping(data, known_rules, source)

    @classmethod
    def from_file(cls, path: Path, known_rules: set[str]) -> Policy:
        try:
            text = path.read_text()
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror}") from None
        return cls.from_text(text, known_rules, str(path))
