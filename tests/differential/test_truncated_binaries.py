"""Real CNI plugins (v1.10.0) cut short, as a copy that was not atomic or a crash leaves them: the node
agent does not count one that ends before the last byte its program headers load, and the installer
replaces it; one cut only after that still runs, and counts. The plugin is built for this machine
(hack/cniplugins) and for the other ELF layouts, 32-bit and big-endian (hack/cniplugins/build-foreign.sh:
386, mips, s390x); binutils' readelf, not our reading, says where each one's loaded bytes end, and the
kernel runs this machine's cuts."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from webhook.agent.probe import read_host
from webhook.agent.standin import StandInHost
from webhook.node.hostfs import whole_executable

pytestmark = pytest.mark.slow

ARCHES = ("386", "mips", "s390x")


@pytest.fixture(scope="session")
def readelf(require: Callable[[str], NoReturn]) -> str:
    found = shutil.which("readelf")
    if found is None:
        require("binutils' readelf is not installed")
    assert found is not None
    return found


@pytest.fixture
def host() -> Iterator[StandInHost]:
    stand_in = StandInHost()
    yield stand_in
    stand_in.cleanup()


def loaded_end(readelf: str, binary: Path) -> int:
    """Where the last byte the kernel loads from ``binary`` ends: its last PT_LOAD's offset + file size."""
    out = subprocess.run([readelf, "-lW", str(binary)], check=True, capture_output=True, text=True).stdout
    loads = [line.split() for line in out.splitlines() if line.split()[:1] == ["LOAD"]]
    assert loads, out
    return max(int(fields[1], 16) + int(fields[4], 16) for fields in loads)


def cuts(binary: Path, end: int) -> dict[int, bool]:
    """Lengths to cut ``binary`` to, each with whether the agent counts what is left: inside the ELF
    header, inside the program headers, before the sections, halfway, one byte short of the loaded
    bytes; and from there on, the section headers and names only tools read, and the whole file."""
    size = binary.stat().st_size
    assert end < size, "nothing after the loaded bytes: the cuts below need the sections' names"
    return {4: False, 40: False, 63: False, 100: False, 4096: False, size // 2: False, end - 1: False,
            end: True, size - 1: True, size: True}


def cut(binary: Path, length: int, dest: Path) -> None:
    with binary.open("rb") as f:
        dest.write_bytes(f.read(length))
    dest.chmod(0o755)


def runs(binary: Path) -> bool:
    """Whether the plugin answers CNI_COMMAND=VERSION: the kernel loaded it and it ran."""
    try:
        done = subprocess.run([str(binary)], env={"CNI_COMMAND": "VERSION"}, capture_output=True, timeout=30)
    except OSError:  # Exec format error
        return False
    return done.returncode == 0 and b"cniVersion" in done.stdout


def test_a_plugin_cut_short_is_not_counted_and_does_not_run(
    cni_bin: Path, readelf: str, host: StandInHost
) -> None:
    binary = cni_bin / "dummy"
    end = loaded_end(readelf, binary)
    bin_dir = host.path(host.layout.cni_bin_dir)
    expected = cuts(binary, end)
    for length in expected:
        cut(binary, length, bin_dir / f"dummy-{length}")
    counted = read_host(host.layout).binaries
    for length, whole in expected.items():
        assert (f"dummy-{length}" in counted) is whole, (length, end, counted)
        if whole:
            assert runs(bin_dir / f"dummy-{length}"), length
        elif length < end - 1:
            # The last loaded page's missing tail reads as zeros, which this plugin may not need: it is
            # cut short all the same. Any shorter, the kernel refuses it or it crashes as it starts.
            assert not runs(bin_dir / f"dummy-{length}"), length


@pytest.mark.parametrize("arch", ARCHES)
def test_a_foreign_plugin_cut_short_is_not_counted(
    cni_foreign: Path, readelf: str, host: StandInHost, arch: str
) -> None:
    """The same headers in the other layouts: 32-bit little-endian (386), 32-bit big-endian (mips),
    64-bit big-endian (s390x). None of them runs here; only the counting is compared."""
    binary = cni_foreign / arch / "dummy"
    bin_dir = host.path(host.layout.cni_bin_dir)
    expected = cuts(binary, loaded_end(readelf, binary))
    for length in expected:
        cut(binary, length, bin_dir / f"dummy-{length}")
    counted = read_host(host.layout).binaries
    assert {length for length in expected if f"dummy-{length}" in counted} == \
        {length for length, whole in expected.items() if whole}, counted


def test_the_installer_replaces_a_plugin_cut_short_and_keeps_a_whole_one(
    cni_bin: Path, readelf: str, tmp_path: Path
) -> None:
    """A macvlan cut one byte short of its loaded bytes is nobody's plugin, and is replaced; the node's
    own bridge (another build: here, the real ipvlan) cut only in its section names stays the node's."""
    host = tmp_path / "host"
    node_bin = host / "opt/cni/bin"
    node_bin.mkdir(parents=True)
    macvlan, ipvlan = cni_bin / "macvlan", cni_bin / "ipvlan"
    cut(macvlan, loaded_end(readelf, macvlan) - 1, node_bin / "macvlan")
    own = ipvlan.stat().st_size - 1
    cut(ipvlan, own, node_bin / "bridge")
    listed = tmp_path / "plugins.txt"
    listed.write_text("macvlan\nbridge\n")
    done = subprocess.run([sys.executable, "-m", "webhook.cli", "install-cni", "--host-root", str(host), "--source",
                           str(cni_bin), "--plugins-file", str(listed)],
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert "replacing    /opt/cni/bin/macvlan: it is empty, does not begin as an executable does, or ends " \
           "before what its ELF header says the kernel loads" in done.stderr
    assert (node_bin / "macvlan").read_bytes() == macvlan.read_bytes()
    assert "kept-own     /opt/cni/bin/bridge" in done.stderr
    assert (node_bin / "bridge").read_bytes() == ipvlan.read_bytes()[:own]


def _bss_program(bss_file_size: int) -> bytes:
    """A static x86-64 program that writes into a bss-only segment and exits 0: its text segment, and a
    PT_LOAD whose offset lies past the end of the file, with ``bss_file_size`` bytes there to load."""
    header, phdr = "<16sHHIQQQIHHHHHH", "<IIQQQQQQ"
    code_at = struct.calcsize(header) + 2 * struct.calcsize(phdr)
    bss = 0x610000
    # mov byte [bss+5], 1; mov eax, 60 (exit); xor edi, edi; syscall
    code = b"\xc6\x04\x25" + struct.pack("<I", bss + 5) + b"\x01" + b"\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05"
    size = code_at + len(code)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    elf = struct.pack(header, ident, 2, 0x3E, 1, 0x400000 + code_at, struct.calcsize(header), 0, 0,
                      struct.calcsize(header), struct.calcsize(phdr), 2, 64, 0, 0)
    text = struct.pack(phdr, 1, 5, 0, 0x400000, 0x400000, size, size, 0x1000)
    data = struct.pack(phdr, 1, 6, 0x10000, bss, bss, bss_file_size, 0x1000, 0x1000)
    return elf + text + data + code


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the program is x86-64 code")
def test_a_segment_with_no_file_bytes_may_lie_past_the_end(tmp_path: Path) -> None:
    """The kernel maps no file bytes for a PT_LOAD whose file size is 0 (bss only), wherever its offset
    says: the program runs, and counts; with one byte to load there it does not run, and does not count."""
    for file_size, whole in ((0, True), (1, False)):
        binary = tmp_path / f"bss-{file_size}"
        binary.write_bytes(_bss_program(file_size))
        binary.chmod(0o755)
        assert whole_executable(binary) is whole, file_size
        assert (subprocess.run([str(binary)], capture_output=True, timeout=30).returncode == 0) is whole, file_size
