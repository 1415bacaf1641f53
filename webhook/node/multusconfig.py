"""The Multus thick daemon's configuration, with the primary CNI config file set in one place.

Multus picks its delegate with ``multusConfigFile: auto`` from the first config file in its autoconfig
directory. When the primary CNI writes its config into a subdirectory (the fix for the reboot race,
REFERENCE section 4), Multus must be told where: ``multusMasterCNI`` names the file relative to the
autoconfig directory and ``readinessindicatorfile`` makes the daemon wait for it. One value, the
seed chart's ``primaryCniConfigFile``, drives both, so that they cannot disagree.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from webhook.agent.probe import config_names

MULTUS_OWN_CONFIG = "00-multus.conf"


class ConfigError(ValueError):
    pass


def primary_config_path(value: str) -> PurePosixPath:
    """``value`` checked: a relative path to a .conf/.conflist file, not Multus's own."""
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or value.endswith("/"):
        raise ConfigError(f"primaryCniConfigFile {value!r} must be a path relative to the CNI config "
                          "directory, like cilium/05-cilium.conflist")
    if path.suffix not in (".conf", ".conflist"):
        raise ConfigError(f"primaryCniConfigFile {value!r} must name a .conf or .conflist file")
    if path.name == MULTUS_OWN_CONFIG:
        raise ConfigError(f"primaryCniConfigFile {value!r} is the file Multus writes itself")
    return path


def render(template: dict[str, Any], primary_cni_config_file: str) -> dict[str, Any]:
    """The daemon configuration: ``template`` unchanged when no primary file is set (auto
    detection), else with ``multusMasterCNI`` and ``readinessindicatorfile`` pointing at it."""
    config = dict(template)
    if not primary_cni_config_file:
        return config
    path = primary_config_path(primary_cni_config_file)
    autoconfig = config.get("multusAutoconfigDir")
    if not isinstance(autoconfig, str) or not autoconfig:
        raise ConfigError("the daemon configuration template has no multusAutoconfigDir")
    config["multusMasterCNI"] = str(path)
    # The daemon reads this path inside its container, where the host's net.d is the autoconfig dir.
    config["readinessindicatorfile"] = str(PurePosixPath(autoconfig) / path)
    return config


def render_text(template_text: str, primary_cni_config_file: str) -> str:
    try:
        template = json.loads(template_text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the daemon configuration template is not JSON: {exc}") from exc
    if not isinstance(template, dict):
        raise ConfigError("the daemon configuration template must be a JSON object")
    return json.dumps(render(template, primary_cni_config_file), indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class TopLevelConfigs:
    """What ``tidy_top_level`` did: the configs it removed, and those it left with why (name, reason)."""

    removed: tuple[str, ...] = ()
    left: tuple[tuple[str, str], ...] = ()


def _lstat(path: Path) -> os.stat_result | None:
    """``path.lstat()``; None where Path.is_file finds nothing: no such file, or a path through a file or
    a symbolic link loop."""
    try:
        return path.lstat()
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


def tidy_top_level(conf_dir: Path, primary_cni_config_file: str) -> TopLevelConfigs:
    """With the primary config in a subdirectory of ``conf_dir`` (the host's /etc/cni/net.d), remove a
    config at its top level that is a stale copy of it: the same name and byte for byte the same
    content (Cilium's old 05-cilium.conflist, from before its cni.confPath moved it into cilium/,
    which Cilium does not remove), and older than it (the newer of the two is where the primary CNI wrote last:
    a top-level copy newer than the subdirectory's is the primary moved back to the top level, as
    uninstall step 1 does, and must stay). The runtime uses such a file whenever 00-multus.conf is absent,
    after every reboot until the daemon writes it: the reboot race. Anything else (another name, other
    content, a symbolic link, a primary not written yet) may be someone's own and is only reported.
    Nothing with the primary at the top level (no subdirectory layout). Raises OSError when
    ``conf_dir`` cannot be listed or a file cannot be read or removed."""
    primary = primary_config_path(primary_cni_config_file) if primary_cni_config_file else None
    if primary is None or len(primary.parts) < 2:
        return TopLevelConfigs()
    source = conf_dir.joinpath(*primary.parts)
    removed: list[str] = []
    left: list[tuple[str, str]] = []
    for name in config_names(conf_dir):
        if name == MULTUS_OWN_CONFIG:
            continue
        top = conf_dir / name
        if name != primary.name:
            left.append((name, f"not named as the primary config {primary}"))
        elif not stat.S_ISREG((top_stat := top.lstat()).st_mode):
            left.append((name, "not a regular file"))
        elif (source_stat := _lstat(source)) is None or not stat.S_ISREG(source_stat.st_mode):
            left.append((name, f"{primary} is not a regular file there (yet) to compare it with"))
        elif top.read_bytes() != source.read_bytes():
            left.append((name, f"its content differs from {primary}"))
        elif top_stat.st_mtime_ns >= source_stat.st_mtime_ns:
            # The newer copy is where the primary CNI wrote last, so where it writes now.
            # A top-level one as new is the primary moved back (uninstall, step 1), not a leftover.
            left.append((name, f"it is not older than {primary}: the primary CNI may write it there now (as "
                               "during uninstall, step 1)"))
        else:
            top.unlink()
            removed.append(name)
    return TopLevelConfigs(tuple(removed), tuple(left))
