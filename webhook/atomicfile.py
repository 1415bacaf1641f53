"""Replacing a file so that a reader never sees half of it, and a crash or a full disk never leaves
half of it in place: certificates, the node's CNI plugins and the installer's record all go through
here."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

#: A temporary file's name: ``.<name of the file it replaces>.<16 hex digits>.tmp``.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{16}\.tmp")


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Put ``data`` at ``path`` with permission bits ``mode``: all of it or, on any error, nothing
    (the old file stays and the error is raised)."""

    def create(tmp: Path) -> None:
        # 0600 until fchmod: a key written with mode 0600 is never readable by others, even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, mode)  # not umask-filtered, unlike the mode given to open
            view = memoryview(data)
            while view:
                # os.write may write less than asked: on a full disk it writes what fits.
                view = view[os.write(fd, view):]
            # On disk before the rename: otherwise a reboot soon after can leave a zero-length file.
            os.fsync(fd)
        finally:
            os.close(fd)

    _replace(path, create)


def temporary_path(path: Path) -> Path:
    """Where ``path``'s next content is written before it is renamed over ``path``: in the same
    directory (a rename does not cross filesystems), hidden (the node agent does not count dot files
    as plugins) and uniquely named, so that two writers of the same path never write into each
    other's temporary file."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def temporary_target(name: str) -> str | None:
    """The name of the file that a temporary file called ``name`` was to replace, None when ``name``
    is not one. A writer killed before its rename (SIGKILL, a power loss) leaves its temporary file
    behind; whoever writes that directory under a lock can then tell which ones it may remove."""
    match = _TEMPORARY.fullmatch(name)
    return match["name"] if match else None


def _replace(path: Path, create: Callable[[Path], None]) -> None:
    tmp = temporary_path(path)
    try:
        create(tmp)
        os.replace(tmp, path)
    except FileExistsError:
        raise  # the name was taken: that file is not ours to remove
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the directory is on disk.
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
