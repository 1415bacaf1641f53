"""The commands that run in our pods take their namespace from the pod ($POD_NAMESPACE, which the
manifests set from the downward API), so that a kustomization that moves the manifests moves them."""

from __future__ import annotations

import pytest

from webhook.cli import parser
from webhook.names import NAMESPACE

COMMANDS = [["agent", "--node-name", "n1"], ["serve"]]


@pytest.mark.parametrize("argv", COMMANDS)
def test_the_pods_namespace_is_the_default(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "netops")
    assert parser(argv).parse_args(argv).namespace == "netops"
    assert parser(argv).parse_args([*argv, "--namespace", "other"]).namespace == "other"


@pytest.mark.parametrize("argv", COMMANDS)
@pytest.mark.parametrize("value", [None, ""])
def test_outside_a_pod_it_is_the_manifests_namespace(argv: list[str], value: str | None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("POD_NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("POD_NAMESPACE", value)
    assert parser(argv).parse_args(argv).namespace == NAMESPACE


@pytest.mark.parametrize("flag", ["node_state_namespace", "lease_namespace"])
def test_the_standalone_controller_takes_the_pods_namespace_too(flag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # They were multus-webhook wherever the pod ran, while serve and agent followed $POD_NAMESPACE.
    argv = ["controller"]
    monkeypatch.setenv("POD_NAMESPACE", "netops")
    assert getattr(parser(argv).parse_args(argv), flag) == "netops"
    monkeypatch.delenv("POD_NAMESPACE")
    assert getattr(parser(argv).parse_args(argv), flag) == NAMESPACE
