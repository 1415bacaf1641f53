"""`serve --repair` and the policy's `repair: true` both turn the controller's pod repair on; the
policy in force changing (the ConfigMap listed, changed or deleted) never turns off what --repair
turned on."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from webhook.admission.handlers import AdmissionContext
from webhook.commands.serve import PolicySource
from webhook.controller.controller import ControllerConfig
from webhook.rules import Policy


def source(flag: bool, base: Policy) -> tuple[PolicySource, Any]:
    s = PolicySource(AdmissionContext(policy=base), base, repair=flag)
    controller = SimpleNamespace(config=ControllerConfig(identity="test"))
    s.attach(controller)  # type: ignore[arg-type]
    return s, controller


def test_a_policy_in_force_before_the_controller_exists_reaches_it() -> None:
    # The cache lists the ConfigMap on its own thread; serve attaches the controller afterwards.
    s = PolicySource(AdmissionContext(policy=Policy()), Policy())
    s.on_configmap({"data": {"policy": "repair: true\n"}})
    controller = SimpleNamespace(config=ControllerConfig(identity="test", repair=False))
    s.attach(controller)  # type: ignore[arg-type]
    assert controller.config.repair is True


@pytest.mark.parametrize("configmap", [
    None,  # the first list finds no ConfigMap: the policy file (or the defaults) is in force
    {"data": {"policy": "repair: false\n"}},
    {"data": {"policy": "audit: true\n"}},
])
def test_the_flag_keeps_repair_on_whatever_policy_comes_into_force(configmap: dict[str, Any] | None) -> None:
    s, controller = source(True, Policy())
    s.on_configmap(configmap)
    assert controller.config.repair is True


def test_without_the_flag_the_policy_in_force_decides() -> None:
    s, controller = source(False, Policy())
    s.on_configmap({"data": {"policy": "repair: true\n"}})
    assert controller.config.repair is True
    s.on_configmap(None)
    assert controller.config.repair is False
    s, controller = source(False, Policy(repair=True))
    s.on_configmap(None)
    assert controller.config.repair is True
    s.on_configmap({"data": {"policy": "audit: false\n"}})
    assert controller.config.repair is False


def test_the_controller_follows_the_multus_namespace_of_the_policy_in_force() -> None:
    """The repair reads unqualified default-network references as the admission rules do."""
    s, controller = source(False, Policy())
    assert controller.config.multus_namespace == "kube-system"
    s.on_configmap({"data": {"policy": "multusNamespace: multus\n"}})
    assert controller.config.multus_namespace == "multus"
    s.on_configmap(None)
    assert controller.config.multus_namespace == "kube-system"
