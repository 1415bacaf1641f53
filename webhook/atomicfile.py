"""Replacing a file so that a reader never sees half of it, and a crash or a full disk never leaves
half of it in place: certificates, the node's CNI plugins and the installer's record all go through
here."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


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


def symlink_atomic(path: Path, target: str) -> None:
    """Make ``path`` a symlink to ``target``, replacing whatever ``path`` was in one step."""
    _replace(path, lambda tmp: os.symlink(target, tmp))


def _replace(path: Path, create: Callable[[Path], None]) -> None:
    # The temporary file is in the same directory (a rename does not cross filesystems), hidden (the
    # node agent does not count dot files as plugins) and uniquely named, so that two writers of the
    # same path never write into each other's temporary file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
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
