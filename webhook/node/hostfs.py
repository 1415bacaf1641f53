"""Paths on the host, the few file operations the installer and the cleanup share, and the way they
log what an operator must act on."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import struct
from pathlib import Path, PurePosixPath
from typing import BinaryIO

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


#: After e_ident, the ELF file header's fields up to e_phnum, by class (EI_CLASS 1: 32-bit, 2: 64-bit):
#: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum.
_ELF_HEADER = {1: "16xHHIIIIIHHH", 2: "16xHHIQQQIHHH"}
#: A program header's p_type, p_offset and p_filesz, by class (p_flags comes second in 64-bit ones).
_ELF_PHDR = {1: "II8xI", 2: "I4xQ16xQ"}
#: The size of a program header, by class.
_ELF_PHDR_SIZE = {1: 32, 2: 56}
_PT_LOAD = 1
#: The most bytes of program headers the kernel reads (binfmt_elf load_elf_phdrs): it refuses more.
_MAX_PHDRS_SIZE = 65536


def whole_executable(path: Path) -> bool:
    """Whether the file at ``path`` is one the kernel can run as far as its first bytes tell: it begins
    as an executable does (EXECUTABLE_MAGIC), and an ELF binary holds every byte its header and program
    headers say the kernel loads. A file left empty or cut short by a copy that was not atomic, or a
    crash, never runs (Exec format error, or SIGBUS at the first page past its end). What only tools
    read (the section headers, which Go writes near the start and C toolchains at the end) is not
    counted. Raises OSError when it cannot be read."""
    with path.open("rb") as f:
        head = f.read(64)
        if not head.startswith(EXECUTABLE_MAGIC):
            return False
        return head.startswith(b"#!") or _elf_whole(f, head, os.fstat(f.fileno()).st_size)


def _elf_whole(f: BinaryIO, head: bytes, size: int) -> bool:
    elf_class, data = head[4:6] if len(head) >= 6 else (0, 0)
    if elf_class not in _ELF_HEADER or data not in (1, 2):
        return False
    order = "<" if data == 1 else ">"
    header, phdr = order + _ELF_HEADER[elf_class], order + _ELF_PHDR[elf_class]
    if len(head) < struct.calcsize(header):
        return False
    fields = struct.unpack_from(header, head)
    phoff, phentsize, phnum = fields[4], fields[8], fields[9]
    # binfmt_elf refuses (ENOEXEC) program headers of another size than its own, none, or too many.
    table_size = phnum * phentsize
    if phentsize != _ELF_PHDR_SIZE[elf_class] or not 0 < table_size <= _MAX_PHDRS_SIZE or phoff + table_size > size:
        return False
    f.seek(phoff)
    table = f.read(table_size)
    for i in range(phnum):
        p_type, offset, filesz = struct.unpack_from(phdr, table, i * phentsize)
        # A segment with no file bytes (bss only) maps none, wherever its offset says.
        if p_type == _PT_LOAD and filesz and offset + filesz > size:
            return False
    return True


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
