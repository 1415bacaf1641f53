"""Rules on the shape of a NAD's CNI configuration."""

from __future__ import annotations

from collections.abc import Iterator

from webhook.rules.findings import Severity, Violation
from webhook.rules.registry import rule
from webhook.rules.subject import Subject

NAD = {"NetworkAttachmentDefinition"}


@rule("nad-config-structure", kinds=NAD, severity=Severity.DENY, title="spec.config is a CNI config object")
def config_structure(subject: Subject) -> Iterator[Violation]:
    """A config that is not a JSON object, whose ``plugins`` is not a non-empty list of objects, or
    whose plugins lack a string ``type`` is refused by libcni when the first pod is created: the pod
    then hangs in ContainerCreating. Refusing it at apply time names the field instead."""
    parsed = subject.nad_config
    for problem in parsed.problems:
        yield Violation(problem.field, f"{problem.field} {problem.message}")
    if parsed.netconf is None:
        return
    for plugin in parsed.netconf.plugins:
        value = plugin.conf.get("type")
        if value is None:
            yield Violation(
                f"{plugin.path}.type",
                f"{plugin.path} has no 'type': set it to the CNI plugin binary to run (e.g. macvlan, bridge)",
            )
        elif not isinstance(value, str) or not value:
            yield Violation(f"{plugin.path}.type", f"{plugin.path}.type must be a non-empty string naming a CNI plugin")
