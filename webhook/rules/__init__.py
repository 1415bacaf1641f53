"""Pure rules: (object, ClusterView, Policy) -> findings. Importing this package registers them all."""

from webhook.rules import api_group as api_group
from webhook.rules import nad_cluster as nad_cluster
from webhook.rules import nad_config as nad_config
from webhook.rules import nad_ipam as nad_ipam
from webhook.rules import nad_plugins as nad_plugins
from webhook.rules import network_profile as network_profile
from webhook.rules import pod_binding as pod_binding
from webhook.rules import pod_cluster as pod_cluster
from webhook.rules import pod_networks as pod_networks
from webhook.rules.engine import evaluate, rules_for
from webhook.rules.findings import Finding, Severity, Violation, verdict
from webhook.rules.policy import Policy, PolicyError
from webhook.rules.registry import Rule, registered
from webhook.rules.subject import Subject

__all__ = [
    "Finding",
    "Policy",
    "PolicyError",
    "Rule",
    "Severity",
    "Subject",
    "Violation",
    "evaluate",
    "registered",
    "rules_for",
    "verdict",
]
