"""The three commands that read Multus's primaryCniConfigFile take it the same way: either spelling
of the flag, else PRIMARY_CNI_CONFIG_FILE (which the manifests set for multus-config and uninstall),
stripped of blanks."""

from __future__ import annotations

import pytest

from webhook.cli import parser

COMMANDS = [("agent", ["--node-name", "n1"]), ("uninstall", []), ("multus-config", ["--template", "t", "--out", "o"])]


@pytest.mark.parametrize(("command", "required"), COMMANDS)
@pytest.mark.parametrize("flag", ["--primary-cni-config-file", "--primary-cni-config"])
def test_either_spelling(command: str, required: list[str], flag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIMARY_CNI_CONFIG_FILE", raising=False)
    argv = [command, *required, flag, " cilium/05-cilium.conflist "]
    assert parser(argv).parse_args(argv).primary_cni_config_file == "cilium/05-cilium.conflist"


@pytest.mark.parametrize(("command", "required"), COMMANDS)
def test_the_environment_is_the_default(command: str, required: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIMARY_CNI_CONFIG_FILE", "10-calico.conflist\n")
    argv = [command, *required]
    assert parser(argv).parse_args(argv).primary_cni_config_file == "10-calico.conflist"
    monkeypatch.delenv("PRIMARY_CNI_CONFIG_FILE")
    assert parser(argv).parse_args(argv).primary_cni_config_file == ""
