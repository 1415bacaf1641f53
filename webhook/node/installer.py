"""The CNI plugin installer (Talos ships only a few reference plugins) and the record that lets
uninstall take away exactly what it put on the host.

The record, ``/var/lib/cni/multus-webhook/installed.json``, maps each file we wrote (host path) to
the hash of what we wrote and, when the file existed before with other content, to a copy of that
original, so that uninstall can give the node back the file it had.
"""

from __future__ import annotations

import json
import logging
import re
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from webhook.atomicfile import write_atomic
from webhook.node.hostfs import CNI_BIN_DIR, STATE_DIR, copy_executable_atomic, file_digest, on_host, sha256

RECORD = STATE_DIR / "installed.json"
ORIGINALS = STATE_DIR / "originals"
RECORD_VERSION = 1
# A plugin is a file name in the CNI bin directory: no path, nothing hidden.
PLUGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

log = logging.getLogger("multus-webhook.install-cni")


class InstallError(RuntimeError):
    pass


@dataclass
class Entry:
    sha256: str
    backup: str | None = None  # host path of the original we replaced, if there was one
    mode: int | None = None  # the original's permission bits


@dataclass
class Record:
    files: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def load(cls, host_root: Path) -> Record:
        path = on_host(host_root, RECORD)
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text())
            if raw.get("version") != RECORD_VERSION:
                raise ValueError(f"unknown version {raw.get('version')!r}")
            return cls({str(k): Entry(**v) for k, v in raw["files"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InstallError(f"{path} is not a record multus-webhook can read ({exc}); "
                               "fix or remove it by hand") from exc

    def save(self, host_root: Path) -> None:
        path = on_host(host_root, RECORD)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": RECORD_VERSION, "files": {k: asdict(v) for k, v in sorted(self.files.items())}}
        write_atomic(path, (json.dumps(body, indent=2) + "\n").encode())


@dataclass(frozen=True)
class Change:
    action: str  # installed | upgraded | unchanged | present | removed | restored | left-changed | absent
    path: str


def parse_plugin_list(text: str) -> list[str]:
    """Plugin names, one a line; ``# comments``, YAML list items (``- macvlan``) and the seed
    chart's installCni map form (``macvlan: true``; ``: false`` leaves it out) are accepted."""
    names: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("- "):
            line = line[2:].strip()
        if not line:
            continue
        if ":" in line:
            name, _, flag = (part.strip() for part in line.partition(":"))
            if flag.lower() not in ("true", "false"):
                raise InstallError(f"line {lineno}: {raw.strip()!r}: expected '<binary>: true' or '<binary>: false'")
            if flag.lower() == "false":
                continue
            line = name
        if not PLUGIN_NAME.match(line):
            raise InstallError(f"line {lineno}: {line!r} is not a plugin file name")
        if line not in names:
            names.append(line)
    return names


def install(host_root: Path, source: Path, plugins: Iterable[str]) -> list[Change]:
    """Copy each plugin from ``source`` into the host's CNI bin directory when it is absent or
    different, and release the ones we installed earlier that are no longer listed."""
    wanted = list(plugins)
    missing = [p for p in wanted if not (source / p).is_file()]
    if missing:
        available = sorted(p.name for p in source.iterdir() if p.is_file()) if source.is_dir() else []
        raise InstallError(f"not in {source}: {', '.join(missing)} (available: {', '.join(available) or 'nothing'})")
    record = Record.load(host_root)
    bin_dir = on_host(host_root, CNI_BIN_DIR)
    bin_dir.mkdir(parents=True, exist_ok=True)
    changes: list[Change] = []
    for name in wanted:
        rel = str(CNI_BIN_DIR / name)
        src, dest = source / name, bin_dir / name
        want, have = sha256(src), file_digest(dest)
        entry = record.files.get(rel)
        if have == want:
            changes.append(Change("unchanged" if entry else "present", "/" + rel))
            continue
        if entry is None:
            entry = Entry(sha256=want)
            if dest.exists():
                # Not ours: keep the node's original so that uninstall can put it back.
                backup = ORIGINALS / name
                on_host(host_root, backup).parent.mkdir(parents=True, exist_ok=True)
                mode = stat.S_IMODE(dest.stat().st_mode)
                write_atomic(on_host(host_root, backup), dest.read_bytes(), mode)
                entry.backup, entry.mode = str(backup), mode
            record.files[rel] = entry
            action = "installed"
        else:
            entry.sha256 = want
            action = "upgraded"
        # Recorded before the rename: after a crash in between, a rerun copies again and uninstall
        # never deletes a file whose content it does not recognise.
        record.save(host_root)
        copy_executable_atomic(src, dest)
        changes.append(Change(action, "/" + rel))
    listed = {str(CNI_BIN_DIR / name) for name in wanted}
    for rel in sorted(set(record.files) - listed):
        changes.append(release(host_root, record, rel))
        record.save(host_root)
    for change in changes:
        log.info("%-12s %s", change.action, change.path)
    return changes


def release(host_root: Path, record: Record, rel: str) -> Change:
    """Take back one recorded file: restore the original it replaced, or remove it. A file changed
    by someone else since we wrote it is not ours any more and stays."""
    entry = record.files.pop(rel)
    dest = on_host(host_root, PurePosixPath(rel))
    backup = on_host(host_root, PurePosixPath(entry.backup)) if entry.backup else None
    have = file_digest(dest)
    if have is not None and have != entry.sha256:
        log.warning("/%s changed since multus-webhook installed it; left in place", rel)
        action = "left-changed"
    elif backup is not None and backup.is_file():
        write_atomic(dest, backup.read_bytes(), entry.mode if entry.mode is not None else 0o755)
        action = "restored"
    elif have is not None:
        dest.unlink()
        action = "removed"
    else:
        action = "absent"
    if backup is not None:
        backup.unlink(missing_ok=True)
    return Change(action, "/" + rel)


def release_all(host_root: Path) -> list[Change]:
    """Everything the installer recorded, taken back; the record and its directory go too."""
    record = Record.load(host_root)
    changes = [release(host_root, record, rel) for rel in sorted(record.files)]
    on_host(host_root, RECORD).unlink(missing_ok=True)
    for directory in (ORIGINALS, STATE_DIR):
        path = on_host(host_root, directory)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return changes


def plugin_list_from(path: Path) -> list[str]:
    try:
        return parse_plugin_list(path.read_text())
    except OSError as exc:
        raise InstallError(f"cannot read the plugin list {path}: {exc.strerror}") from exc
