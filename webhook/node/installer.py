"""The CNI plugin installer (Talos ships only a few reference plugins) and the record that lets
uninstall take away exactly what it put on the host.

The record, ``/var/lib/cni/multus-webhook/installed.json``, maps each file we wrote (host path) to
the hash of what we wrote. Only a file that was absent is written: a plugin the node already has is
the node's own and is never replaced, nor copied to be put back later. A copy put back by uninstall
would be a regular file in the upper layer of Talos's /opt overlay (or a stale file a package
manager owns), hiding every later upgrade of that plugin for good. A file that no longer holds what
we wrote is the node's own too: install drops it from the record and leaves it, uninstall leaves it.
Install and uninstall hold ``installed.lock`` while they change files and the record.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from webhook.atomicfile import temporary_target, write_atomic
from webhook.node.hostfs import (
    CNI_BIN_DIR,
    STATE_DIR,
    copy_executable_atomic,
    fingerprint,
    on_host,
    sha256,
    whole_executable,
)

RECORD = STATE_DIR / "installed.json"
LOCK = STATE_DIR / "installed.lock"
RECORD_VERSION = 1
# A plugin is a file name in the CNI bin directory: no path, nothing hidden.
PLUGIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

log = logging.getLogger("multus-webhook.install-cni")


class InstallError(RuntimeError):
    pass


@dataclass
class Entry:
    sha256: str  # what we wrote (or are writing)
    # Set while an upgrade is under way: what the file held until then, ours from an earlier run.
    # A write that failed or a crash leaves that, which is not someone else's change.
    replacing: str | None = None

    def recognizes(self, have: str) -> bool:
        """Whether ``have`` (a fingerprint) is what we wrote, or what we were replacing."""
        return have in (self.sha256, self.replacing)


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
            # disowned() also takes the keys only earlier versions wrote out of each entry.
            return cls({str(k): Entry(**v) for k, v in raw["files"].items() if not disowned(str(k), v)})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InstallError(f"/{RECORD} is not a record multus-webhook can read ({exc}); "
                               "fix or remove it by hand") from exc

    def save(self, host_root: Path) -> None:
        path = on_host(host_root, RECORD)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unset fields are left out: a record without "replacing" stays readable by earlier versions.
        files = {k: {f: x for f, x in asdict(v).items() if x is not None} for k, v in sorted(self.files.items())}
        body = {"version": RECORD_VERSION, "files": files}
        write_atomic(path, (json.dumps(body, indent=2) + "\n").encode())


def disowned(rel: str, fields: dict[str, object]) -> bool:
    """Whether an entry written by an earlier development version, which replaced the node's own file
    and kept a copy of it (``backup``, ``mode``), is given up: that file was the node's, so it is left
    as it is, out of the record. Putting the copy back is what this version no longer does (see the
    module's docstring); removing the file would take away a plugin the node had. The copy stays
    where it is, named here, for an administrator to put back by hand."""
    backup = fields.pop("backup", None)
    fields.pop("mode", None)
    if backup is None:
        return False
    log.warning("/%s replaced a file the node had, kept in /%s by an earlier multus-webhook; it is no longer "
                "recorded and stays as it is (put the copy back by hand if the node needs its own file)", rel, backup)
    return True


@dataclass(frozen=True)
class Change:
    # installed | upgraded | unchanged | present | kept-own | unavailable | unlisted | removed | left-changed
    # | absent
    action: str
    path: str


@dataclass(frozen=True)
class PluginList:
    names: list[str]
    #: The lines that name no plugin, each with its number and why.
    refused: list[str] = field(default_factory=list)


def parse_plugin_list(text: str) -> PluginList:
    """Plugin names, one a line; ``# comments``, YAML list items (``- macvlan``) and the seed
    chart's installCni map form (``macvlan: true``; ``: false`` leaves it out) are accepted. A line
    that is none of these is refused, not guessed at: it installs nothing, the others still do."""
    names: list[str] = []
    refused: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("- "):
            line = line[2:].strip()
        if not line:
            continue
        if ":" in line:
            name, _, flag = (part.strip() for part in line.partition(":"))
            if flag.lower() not in ("true", "false"):
                refused.append(f"line {lineno}: {raw.strip()!r}: expected '<binary>: true' or '<binary>: false'")
                continue
            if flag.lower() == "false":
                continue
            line = name
        if not PLUGIN_NAME.fullmatch(line):
            refused.append(f"line {lineno}: {line!r} is not a plugin file name")
        elif line not in names:
            names.append(line)
    return PluginList(names, refused)


def available(source: Path) -> list[str]:
    """The plugins ``source`` holds."""
    return sorted(p.name for p in source.iterdir() if p.is_file()) if source.is_dir() else []


def install(host_root: Path, source: Path, plugins: Iterable[str]) -> list[Change]:
    """Copy each plugin from ``source`` into the host's CNI bin directory when it is absent or
    different. A plugin ``source`` does not hold is skipped (an ``unavailable`` change): the others
    are installed all the same. Stops at the first file it cannot write, with an InstallError naming
    it; what is on the host stays whole.

    A plugin installed earlier and no longer listed stays, still recorded, until uninstall: the
    list changes on every node (one at a time, as the DaemonSet rolls) while pods set up with that
    plugin may still be running there, and Multus needs the binary to delete their attachments
    (without it their DEL fails with "failed to find plugin" and they stay Terminating)."""
    wanted = list(plugins)
    on_host(host_root, CNI_BIN_DIR).mkdir(parents=True, exist_ok=True)
    with locked(host_root):
        record = Record.load(host_root)
        changes = remove_leftovers(host_root, {*wanted, *recorded_names(record)})
        for name in wanted:
            if not (source / name).is_file():
                # A copy written by an earlier run stays as it is (still recorded, removed at uninstall).
                log.error("%-12s /%s: not in %s", "unavailable", CNI_BIN_DIR / name, source)
                changes.append(Change("unavailable", f"/{CNI_BIN_DIR / name}"))
                continue
            rel = str(CNI_BIN_DIR / name)
            try:
                change = install_one(host_root, record, source / name, rel)
            except OSError as exc:
                raise InstallError(f"could not install /{rel}: {exc.strerror or exc}") from exc
            if change.action != "kept-own":  # install_one said why, at WARNING
                log.info("%-12s %s", change.action, change.path)
            changes.append(change)
        listed = {str(CNI_BIN_DIR / name) for name in wanted}
        for rel in sorted(set(record.files) - listed):
            log.info("%-12s /%s: no longer listed, kept until uninstall", "unlisted", rel)
            changes.append(Change("unlisted", "/" + rel))
    return changes


def install_one(host_root: Path, record: Record, src: Path, rel: str) -> Change:
    dest = on_host(host_root, PurePosixPath(rel))
    want, have = sha256(src), fingerprint(dest)
    entry = record.files.get(rel)
    # A file that cannot run (empty, or cut short by a copy that was not atomic, or a crash) is nobody's
    # plugin to keep: Multus would fail every pod that needs it.
    broken = have is not None and have != want and not dest.is_symlink() and dest.is_file() \
        and not whole_executable(dest)
    if broken:
        log.warning("%-12s /%s: it is empty, does not begin as an executable does, or ends before what its ELF "
                    "header says the kernel loads (a copy cut short?); "
                    "replaced with the one in %s", "replacing", rel, src.parent)
    elif entry is not None and have is not None and not entry.recognizes(have):
        # Changed by someone else since we wrote it (an administrator, another installer): the
        # node's own now, as for release(). Overwriting it as an upgrade of ours would undo their change.
        del record.files[rel]
        record.save(host_root)
        keep_own(rel, src, "changed since multus-webhook installed it: it is the node's own now, no longer "
                           "recorded")
        return Change("kept-own", "/" + rel)
    if have == want:
        if entry is None:
            return Change("present", "/" + rel)
        if (entry.sha256, entry.replacing) != (want, None):
            # An earlier run stopped after its rename, before recording that it was done.
            entry.sha256, entry.replacing = want, None
            record.save(host_root)
        return Change("unchanged", "/" + rel)
    if entry is None and have is not None and not broken:
        # A symlink is the node's own too, whatever it points to: distribution packages link plugins.
        keep_own(rel, src, "the node's own plugin (multus-webhook did not write it)")
        return Change("kept-own", "/" + rel)
    if entry is None:
        entry = record.files[rel] = Entry(sha256=want)
        action = "installed"
    else:
        action = "upgraded" if have == entry.sha256 else "installed"
    # Recorded before the rename, with what the file holds until then: after a failure or a crash
    # in between, a rerun and uninstall still recognise the file as ours.
    entry.sha256, entry.replacing = want, have
    record.save(host_root)
    copy_executable_atomic(src, dest)
    entry.replacing = None
    record.save(host_root)
    return Change(action, "/" + rel)


def keep_own(rel: str, src: Path, why: str) -> None:
    log.warning("%-12s /%s: %s; not replaced, so Multus runs the node's version, not the one in %s. To run that "
                "one instead, remove the node's file and run install-cni again (restart the node's Multus pod). "
                "On Talos a plugin shipped in the root file system cannot be removed: the node's version is "
                "simply used", "kept-own", rel, why, src.parent)


def release(host_root: Path, record: Record, rel: str) -> Change:
    """Take back one recorded file: remove it. A file changed by someone else since we wrote it is not
    ours any more and stays."""
    entry = record.files.pop(rel)
    dest = on_host(host_root, PurePosixPath(rel))
    have = fingerprint(dest)
    if have is None:
        return Change("absent", "/" + rel)
    if not entry.recognizes(have):
        log.warning("/%s changed since multus-webhook installed it; left in place", rel)
        return Change("left-changed", "/" + rel)
    dest.unlink()
    return Change("removed", "/" + rel)


def release_each(host_root: Path, record: Record, rels: Iterable[str]) -> list[Change]:
    """Release each file and record that it is done, so that a failure halfway leaves a record of
    exactly what is still ours."""
    changes: list[Change] = []
    for rel in rels:
        try:
            change = release(host_root, record, rel)
            record.save(host_root)
        except OSError as exc:
            raise InstallError(f"could not take back /{rel}: {exc.strerror or exc}") from exc
        log.info("%-12s %s", change.action, change.path)
        changes.append(change)
    return changes


def release_all(host_root: Path) -> list[Change]:
    """Everything the installer recorded, taken back; the record, the lock and their directory go
    too, unless something else is in that directory (a copy an earlier version kept, see disowned())."""
    if not on_host(host_root, STATE_DIR).is_dir():
        # Nothing was ever installed (every install takes the lock in that directory first): taking
        # the lock would create the directory and its parents on a node that never had them.
        return []
    with locked(host_root):
        record = Record.load(host_root)
        names = recorded_names(record)
        changes = release_each(host_root, record, sorted(record.files))
        changes += remove_leftovers(host_root, names)
        on_host(host_root, RECORD).unlink(missing_ok=True)
        on_host(host_root, LOCK).unlink()  # a run waiting for the lock sees it gone and takes a new one
        state = on_host(host_root, STATE_DIR)
        if state.is_dir() and not any(state.iterdir()):
            state.rmdir()
    return changes


def recorded_names(record: Record) -> set[str]:
    return {PurePosixPath(rel).name for rel in record.files}


def remove_leftovers(host_root: Path, plugins: set[str]) -> list[Change]:
    """Remove the temporary files that an install killed before its rename (SIGKILL, a node losing
    power) left behind: copies of ``plugins`` in the bin directory (hidden, but executable) and of
    the record. Nothing else writes those names, and writers of ours hold the lock, which the caller
    holds: none of them is being written now."""
    places = ((CNI_BIN_DIR, lambda target: target in plugins),
              (STATE_DIR, lambda target: target == RECORD.name))
    changes: list[Change] = []
    for directory, ours in places:
        try:
            entries = sorted(os.scandir(on_host(host_root, directory)), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InstallError(f"could not read /{directory}: {exc.strerror or exc}") from exc
        for entry in entries:
            target = temporary_target(entry.name)
            if target is None or not ours(target) or entry.is_dir(follow_symlinks=False):
                continue
            rel = directory / entry.name
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise InstallError(f"could not remove /{rel}, left by an install that was cut short: "
                                   f"{exc.strerror or exc}") from exc
            log.info("%-12s /%s (left by an install that was cut short)", "removed", rel)
            changes.append(Change("removed", "/" + str(rel)))
    return changes


@contextmanager
def locked(host_root: Path) -> Iterator[None]:
    """Hold the installer's lock for a read-modify-write of the record and the files it lists: two
    runs at once (an init container restarted while the previous one still runs, an uninstall)
    would otherwise each save their own record and the last one would drop what the other did."""
    path = on_host(host_root, LOCK)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue  # release_all removed the directory in between
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue
            # release_all removes the lock file while holding it: whoever waited on that file must
            # lock the new one, or two runs would each hold "the" lock.
            if (current.st_dev, current.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                yield
                return
        finally:
            os.close(fd)


def plugin_list_from(path: Path) -> PluginList:
    try:
        return parse_plugin_list(path.read_text())
    except OSError as exc:
        raise InstallError(f"cannot read the plugin list {path}: {exc.strerror}") from exc
