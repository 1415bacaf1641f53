"""A policy text that cannot be read is a PolicyError, whatever the YAML parser raised: PolicySource
keeps the policy in force only on PolicyError."""

from __future__ import annotations

import pytest

from webhook.admission.handlers import AdmissionContext
from webhook.commands.serve import PolicySource
from webhook.rules import Policy, PolicyError, registered


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 5000 + "]" * 5000, "nested too deep"),  # RecursionError from the parser
    ("audit: " + "9" * 5000, "Exceeds the limit"),  # ValueError from int()
])
def test_yaml_the_parser_cannot_read_is_a_policy_error(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=f"^ConfigMap x: not readable YAML: .*{message}"):
        Policy.from_text(text, set(registered()), "ConfigMap x")


def test_a_configmap_the_parser_cannot_read_keeps_the_policy_in_force() -> None:
    context = AdmissionContext(policy=Policy(audit=True))
    PolicySource(context, Policy()).on_configmap({"data": {"policy": "audit: " + "9" * 5000}})
    assert context.policy == Policy(audit=True)
