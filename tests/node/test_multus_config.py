"""The Multus daemon configuration rendered from the one primaryCniConfigFile setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.node.multusconfig import ConfigError, render

TEMPLATE = Path(__file__).resolve().parents[2] / "manifests" / "base" / "multus" / "daemon-config.json"


def test_without_a_primary_file_multus_detects_it() -> None:
    template = json.loads(TEMPLATE.read_text())
    assert render(template, "") == template
    assert template["multusConfigFile"] == "auto"
    assert "multusMasterCNI" not in template
    assert "readinessindicatorfile" not in template


def test_the_cilium_subdirectory_sets_master_and_readiness_indicator() -> None:
    config = render(json.loads(TEMPLATE.read_text()), "cilium/05-cilium.conflist")
    assert config["multusMasterCNI"] == "cilium/05-cilium.conflist"
    # Inside the daemon's container the host's /etc/cni/net.d is /host/etc/cni/net.d.
    assert config["readinessindicatorfile"] == "/host/etc/cni/net.d/cilium/05-cilium.conflist"
    assert config["multusAutoconfigDir"] == "/host/etc/cni/net.d"


@pytest.mark.parametrize(("value", "message"), [
    ("/etc/cni/net.d/cilium/05-cilium.conflist", "must be a path relative to the CNI config directory"),
    ("../05-cilium.conflist", "must be a path relative to the CNI config directory"),
    ("cilium/", "must be a path relative to the CNI config directory"),
    ("cilium/05-cilium.yaml", "must name a .conf or .conflist file"),
    ("00-multus.conf", "is the file Multus writes itself"),
])
def test_bad_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render({"multusAutoconfigDir": "/host/etc/cni/net.d"}, value)


def test_the_command_reads_the_setting_from_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "rendered" / "daemon-config.json"
    result = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "multus-config", "--template", str(TEMPLATE), "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "PRIMARY_CNI_CONFIG_FILE": "cilium/05-cilium.conflist"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["multusMasterCNI"] == "cilium/05-cilium.conflist"


def test_the_command_refuses_a_bad_setting_without_writing(tmp_path: Path) -> None:
    out = tmp_path / "daemon-config.json"
    result = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "multus-config", "--template", str(TEMPLATE), "--out", str(out),
         "--primary-cni-config-file", "/abs.conflist"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "multus-webhook multus-config: primaryCniConfigFile '/abs.conflist' must be a path relative" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(("where", "message"), [
    ("a-directory", "cannot write --out {out}: Is a directory"),
    ("a-file/daemon-config.json", "cannot create {out.parent}, the directory of --out {out}: File exists"),
])
def test_an_out_path_that_cannot_be_written_is_named_without_a_traceback(tmp_path: Path, where: str,
                                                                         message: str) -> None:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    out = tmp_path / where
    result = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "multus-config", "--template", str(TEMPLATE), "--out", str(out)],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == "multus-webhook multus-config: " + message.format(out=out) + "\n"
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob(".*.tmp"))
