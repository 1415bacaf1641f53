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


CILIUM = '{"cniVersion": "0.3.1", "name": "cilium", "plugins": [{"type": "cilium-cni"}]}\n'


def net_d(tmp_path: Path, files: dict[str, str]) -> Path:
    """The files written in order, each a second older than the next: a top-level file before the
    subdirectory's is the leftover of a primary moved into it."""
    conf = tmp_path / "etc" / "cni" / "net.d"
    for age, (name, content) in enumerate(reversed(files.items()), start=1):
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(content)
        os.utime(conf / name, (1_700_000_000 - age, 1_700_000_000 - age))
    return conf


def tidy(conf: Path, primary: str = "cilium/05-cilium.conflist") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook.cli", "multus-config", "--template", str(TEMPLATE),
         "--out", str(conf.parent / "rendered" / "daemon-config.json"), "--host-conf-dir", str(conf),
         "--primary-cni-config-file", primary], capture_output=True, text=True)


def test_a_top_level_copy_of_the_primary_is_removed(tmp_path: Path) -> None:
    """Cilium's old 05-cilium.conflist, left at the top level when its cni.confPath moved into cilium/:
    the runtime would use it whenever 00-multus.conf is absent (the reboot race)."""
    conf = net_d(tmp_path, {"05-cilium.conflist": CILIUM, "cilium/05-cilium.conflist": CILIUM,
                            "00-multus.conf": "{}", "notes.txt": "x"})
    result = tidy(conf)
    assert result.returncode == 0, result.stderr
    assert f"removed {conf}/05-cilium.conflist: byte for byte {conf}/cilium/05-cilium.conflist" in result.stderr
    assert sorted(p.name for p in conf.iterdir()) == ["00-multus.conf", "cilium", "notes.txt"]
    assert (conf / "cilium" / "05-cilium.conflist").read_text() == CILIUM
    assert "!!!" not in result.stderr


@pytest.mark.parametrize(("files", "why"), [
    ({"05-cilium.conflist": CILIUM.replace("0.3.1", "0.4.0"), "cilium/05-cilium.conflist": CILIUM},
     "its content differs from cilium/05-cilium.conflist"),
    ({"05-cilium.conflist": CILIUM}, "cilium/05-cilium.conflist is not a regular file there (yet)"),
    # Cilium moved back to the top level (uninstall, step 1): it writes there now, the subdirectory's is old.
    ({"cilium/05-cilium.conflist": CILIUM, "05-cilium.conflist": CILIUM},
     "it is not older than cilium/05-cilium.conflist: the primary CNI may write it there now"),
    ({"10-flannel.conflist": CILIUM, "cilium/05-cilium.conflist": CILIUM},
     "not named as the primary config cilium/05-cilium.conflist"),
    ({".05-cilium.json": CILIUM, "cilium/05-cilium.conflist": CILIUM},
     "not named as the primary config cilium/05-cilium.conflist"),
])
def test_any_other_top_level_config_is_reported_and_left(tmp_path: Path, files: dict[str, str], why: str) -> None:
    conf = net_d(tmp_path, files)
    before = {p: p.read_bytes() for p in conf.rglob("*") if p.is_file()}
    result = tidy(conf)
    assert result.returncode == 0, result.stderr
    [name] = [n for n in files if "/" not in n]
    assert f"{conf}/{name} is a CNI config at the top level beside Multus's: {why}" in result.stderr
    assert "!" * 78 in result.stderr
    assert all(p.read_bytes() == content for p, content in before.items())


def test_a_symbolic_link_at_the_top_level_is_left(tmp_path: Path) -> None:
    conf = net_d(tmp_path, {"cilium/05-cilium.conflist": CILIUM})
    (conf / "05-cilium.conflist").symlink_to("cilium/05-cilium.conflist")
    result = tidy(conf)
    assert "05-cilium.conflist is a CNI config at the top level beside Multus's: not a regular file" in result.stderr
    assert (conf / "05-cilium.conflist").is_symlink()


@pytest.mark.parametrize("subdir", ["a symlink to the primary's copy", "a file", "a symlink loop"])
def test_a_top_level_copy_is_left_while_the_primary_is_no_regular_file_to_compare_with(
        tmp_path: Path, subdir: str) -> None:
    """Older than the top-level copy, byte for byte the same, but not a regular file in the subdirectory:
    nothing there the primary CNI wrote, so the copy may be the only config; and a subdirectory that is
    a file or loops is no error."""
    conf = net_d(tmp_path, {"elsewhere/05-cilium.conflist": CILIUM, "05-cilium.conflist": CILIUM})
    if subdir == "a file":
        (conf / "cilium").write_text(CILIUM)
    elif subdir == "a symlink loop":
        (conf / "cilium").symlink_to("cilium")
    else:
        (conf / "cilium").mkdir()
        (conf / "cilium" / "05-cilium.conflist").symlink_to(conf / "elsewhere" / "05-cilium.conflist")
    result = tidy(conf)
    assert result.returncode == 0, result.stderr
    assert (f"{conf}/05-cilium.conflist is a CNI config at the top level beside Multus's: cilium/05-cilium.conflist "
            "is not a regular file there (yet)") in result.stderr
    assert (conf / "05-cilium.conflist").read_text() == CILIUM


def test_nothing_is_touched_with_the_primary_at_the_top_level_or_detected(tmp_path: Path) -> None:
    conf = net_d(tmp_path, {"05-cilium.conflist": CILIUM, "cilium/05-cilium.conflist": CILIUM})
    for primary in ("05-cilium.conflist", ""):
        result = tidy(conf, primary)
        assert result.returncode == 0, result.stderr
        assert "removed" not in result.stderr
        assert "!!!" not in result.stderr
        assert (conf / "05-cilium.conflist").exists()


def test_a_conf_dir_that_cannot_be_tidied_does_not_stop_multus(tmp_path: Path) -> None:
    conf = net_d(tmp_path, {"cilium/05-cilium.conflist": CILIUM})
    result = tidy(conf / "missing")
    assert result.returncode == 0
    assert f"could not tidy the top level of {conf}/missing" in result.stderr
