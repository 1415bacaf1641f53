"""The one way files are replaced (certificates, CNI plugins, the installer's record): whole, on
disk before they are visible, never leaving a temporary file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from webhook.atomicfile import write_atomic


def test_a_short_write_is_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk, or a signal, makes write(2) write less than asked without any error.
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:1000])))
    data = os.urandom(10_000)
    write_atomic(tmp_path / "plugin", data, 0o755)
    assert (tmp_path / "plugin").read_bytes() == data
    assert (tmp_path / "plugin").stat().st_mode & 0o777 == 0o755


def test_the_file_is_synced_before_the_rename_and_the_directory_after(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Without both, a reboot soon after the install can leave an empty file or the old one.
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        steps.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(tmp_path / "tls.key", b"key", 0o600)
    assert steps == ["fsync file", "rename", "fsync dir"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_atomic(tmp_path / "plugin", b"old")

    def enospc(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", enospc)
    with pytest.raises(OSError, match="No space left on device"):
        write_atomic(tmp_path / "plugin", b"new")
    assert os.listdir(tmp_path) == ["plugin"]
    assert (tmp_path / "plugin").read_bytes() == b"old"
