"""Paths on the host, the few file operations the installer and the cleanup share, and the way they
log what an operator must act on."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
from pathlib import Path, PurePosixPath

from webhook.atomicfile import write_atomic

# Host paths, relative to the host root so that they work under /host and under a test directory.
CNI_BIN_DIR = PurePosixPath("opt/cni/bin")
CNI_CONF_DIR = PurePosixPath("etc/cni/net.d")
# Our own state: which plugin files we installed. It lives under
# /var/lib/cni because that directory survives reboots on every distribution, Talos included.
STATE_DIR = PurePosixPath("var/lib/cni/multus-webhook")
#: The binaries upstream install_multus (the thick plugin's init container) copies into the bin dir.
INSTALL_MULTUS_BINARIES = ("multus-shim", "passthru")
# It copies each by writing "<binary>.temp<digits>" (Go's os.CreateTemp) and renaming it: the file is
# there while it copies, and one killed in between leaves it, not hidden.
INSTALL_MULTUS_TEMPORARY = re.compile(
    "(?:" + "|".join(re.escape(name) for name in INSTALL_MULTUS_BINARIES) + r")\.temp[0-9]*")
#: How every file the kernel can execute begins: an ELF binary, or a script naming its interpreter.
EXECUTABLE_MAGIC = (b"\x7fELF", b"#!")

log = logging.getLogger("multus-webhook.node")


def loudly(logger: logging.Logger, level: int, message: str) -> None:
    """``message`` between two lines of "!": what the operator must act on stands out among the one-line
    steps of an init container's or a cleanup pod's log."""
    banner = "!" * 78
    logger.log(level, "\n%s\n%s\n%s", banner, message, banner)


def on_host(host_root: Path, path: PurePosixPath) -> Path:
    return host_root.joinpath(*path.parts)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def executable_header(path: Path) -> bool:
    """Whether the file at ``path`` begins as an executable does (EXECUTABLE_MAGIC): a file left empty
    or cut short before its header by a copy that was not atomic, or a crash, never runs (Exec format
    error). Only the first bytes are read: a file cut short after them is not told apart. Raises
    OSError when it cannot be read."""
    with path.open("rb") as f:
        head = f.read(4)
    return head.startswith(EXECUTABLE_MAGIC)


def fingerprint(path: Path) -> str | None:
    """What is at ``path``, never following a symlink: a regular file's content hash, ``-> target``
    for a symlink, the file type for anything else, None when there is nothing."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return sha256(path)
    if stat.S_ISLNK(st.st_mode):
        return "-> " + os.readlink(path)
    return f"<{stat.filemode(st.st_mode)[0]}>"


def copy_executable_atomic(src: Path, dest: Path) -> None:
    """Write ``src`` next to ``dest`` and rename it over ``dest``. A running binary keeps its old
    inode, so a node that is executing the plugin never sees "Text file busy" (multus-cni#1221)
    nor a half-written file. A symlink ``src`` is copied as the file it points to: the link points
    into the source, not the host."""
    write_atomic(dest, src.read_bytes(), 0o755)


def remove_path(path: Path) -> bool:
    """Remove a file, symlink or directory tree; False when there was nothing to remove."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def remove_empty_dirs(top: Path) -> bool:
    """Remove ``top`` and its subdirectories if they hold nothing but directories; True when removed.
    Each goes by rmdir, deepest first, rather than rmtree: something put there meanwhile stops the
    removal instead of being deleted, and an error names the directory it is about (rmtree's names
    are relative to a directory it does not say)."""
    if not top.is_dir() or top.is_symlink():
        return False
    inside = list(top.rglob("*"))
    if any(p.is_symlink() or not p.is_dir() for p in inside):
        return False
    for directory in sorted(inside, key=lambda p: len(p.parts), reverse=True):
        directory.rmdir()
    top.rmdir()
    return True
