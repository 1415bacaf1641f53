"""The CNI plugin installer and the uninstall cleanup, run as the real subcommands against a
temporary directory standing in for the node's filesystem."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from webhook.atomicfile import temporary_path
from webhook.node.hostfs import on_host, sha256
from webhook.node.installer import LOCK, PluginList, Record, install, parse_plugin_list

Snapshot = dict[str, tuple[str, str, int]]


def cli(*args: str, env: dict[str, str] | None = None, wrapper: Sequence[str] = (),
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*wrapper, sys.executable, "-m", "webhook.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def unprivileged(require: Callable[[str], None]) -> list[str]:
    """A command prefix under which file permission bits bind: as root, no capabilities at all (root
    keeps CAP_DAC_OVERRIDE otherwise, and a directory's mode stops nothing)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        require("needs setpriv(1) to drop root's capabilities")
    return ["setpriv", "--bounding-set=-all", "--"]


def snapshot(root: Path) -> Snapshot:
    """Every file and directory under ``root``: kind, content hash, permission bits."""
    out: Snapshot = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = ("dir", "", path.stat().st_mode & 0o7777)
        else:
            out[rel] = ("file", sha256(path), path.stat().st_mode & 0o7777)
    return out


def write(path: Path, data: bytes, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A node before anything of ours: some plugins, the primary CNI's config at the top level."""
    root = tmp_path / "host"
    write(root / "opt/cni/bin/bridge", b"#!bridge v1")
    write(root / "opt/cni/bin/loopback", b"#!loopback v1")
    write(root / "etc/cni/net.d/05-cilium.conflist", b'{"name": "cilium"}', 0o644)
    (root / "var/lib/cni/networks").mkdir(parents=True)
    return root


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "plugins"
    for name in ("macvlan", "ipvlan", "bridge", "vlan"):
        write(src / name, f"#!{name} from the plugins image v1".encode())
    return src


@pytest.fixture
def plugins_file(tmp_path: Path) -> Path:
    f = tmp_path / "plugins.txt"
    f.write_text("# default\nmacvlan\nipvlan\n")
    return f


def install_cli(host: Path, source: Path, plugins_file: Path) -> subprocess.CompletedProcess[str]:
    return cli("install-cni", "--host-root", str(host), "--source", str(source), "--plugins-file", str(plugins_file))


def put_multus_on(host: Path) -> None:
    """What the Multus thick DaemonSet leaves on a node (the part a test may stand in for)."""
    write(host / "etc/cni/net.d/00-multus.conf", b'{"name": "multus-cni-network"}', 0o600)
    write(host / "etc/cni/net.d/multus.d/multus.kubeconfig", b"kubeconfig", 0o600)
    write(host / "opt/cni/bin/multus-shim", b"#!shim")
    write(host / "opt/cni/bin/passthru", b"#!passthru")
    write(host / "var/lib/cni/multus/results/abc", b"{}", 0o644)
    (host / "etc/cni/multus/net.d").mkdir(parents=True)


def test_install_reinstall_upgrade_uninstall_leaves_the_host_as_before(host: Path, source: Path,
                                                                       plugins_file: Path) -> None:
    before = snapshot(host)

    first = install_cli(host, source, plugins_file)
    assert first.returncode == 0, first.stderr
    for name in ("macvlan", "ipvlan"):
        dest = host / "opt/cni/bin" / name
        assert dest.read_bytes() == (source / name).read_bytes()
        assert dest.stat().st_mode & 0o777 == 0o755
    assert "installed" in first.stderr
    installed = {name: (host / "opt/cni/bin" / name).stat() for name in ("macvlan", "ipvlan")}

    again = install_cli(host, source, plugins_file)
    assert again.returncode == 0, again.stderr
    assert "installed" not in again.stderr
    assert again.stderr.count("unchanged") == 2
    for name, st in installed.items():
        now = (host / "opt/cni/bin" / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), f"{name} was rewritten"

    write(source / "macvlan", b"#!macvlan from the plugins image v2")
    upgrade = install_cli(host, source, plugins_file)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "upgraded" in upgrade.stderr
    assert (host / "opt/cni/bin/macvlan").read_bytes() == b"#!macvlan from the plugins image v2"
    assert (host / "opt/cni/bin/macvlan").stat().st_ino != installed["macvlan"].st_ino, "replaced in place"
    assert (host / "opt/cni/bin/ipvlan").stat().st_ino == installed["ipvlan"].st_ino

    put_multus_on(host)
    cleanup = cli("uninstall", "--host-root", str(host))
    assert cleanup.returncode == 0, cleanup.stderr
    assert snapshot(host) == before
    for step in ("removed /etc/cni/net.d/00-multus.conf", "removed /opt/cni/bin/multus-shim",
                 "removed /opt/cni/bin/passthru", "removed /var/lib/cni/multus", "removed /opt/cni/bin/macvlan",
                 "removed /etc/cni/multus (empty)", "cleanup finished"):
        assert step in cleanup.stderr
    assert "!!!" not in cleanup.stderr  # the primary config is at the top level: nothing to warn about


def test_an_empty_or_headerless_plugin_on_the_node_is_replaced_not_kept_as_its_own(host: Path, source: Path,
                                                                                    tmp_path: Path) -> None:
    """A file the kernel cannot run (a copy cut short, a crash) is nobody's plugin: Multus would fail every
    pod needing it. A script stays the node's own, whatever follows its "#!" (ELF binaries cut short:
    tests/differential/test_truncated_binaries.py)."""
    write(host / "opt/cni/bin/macvlan", b"")
    write(host / "opt/cni/bin/vlan", b"\0\0\0\0half a vlan")
    write(host / "opt/cni/bin/bridge", b"#!/bin/sh\n# the node's own bridge, cut short or not")
    listed = tmp_path / "list"
    listed.write_text("macvlan\nvlan\nbridge\n")
    result = install_cli(host, source, listed)
    assert result.returncode == 0, result.stderr
    for name in ("macvlan", "vlan"):
        assert (host / "opt/cni/bin" / name).read_bytes() == (source / name).read_bytes()
        assert (f"replacing    /opt/cni/bin/{name}: it is empty, does not begin as an executable does, or ends "
                "before what its ELF header says the kernel loads (a copy cut short?); replaced with the one in "
                f"{source}") in result.stderr
        assert f"installed    /opt/cni/bin/{name}" in result.stderr
    assert (host / "opt/cni/bin/bridge").read_bytes() == b"#!/bin/sh\n# the node's own bridge, cut short or not"
    assert "kept-own     /opt/cni/bin/bridge: the node's own plugin" in result.stderr
    # Ours now: uninstall takes them away (the broken files are not put back).
    cleanup = cli("uninstall", "--host-root", str(host))
    assert cleanup.returncode == 0, cleanup.stderr
    assert not (host / "opt/cni/bin/macvlan").exists()
    assert not (host / "opt/cni/bin/vlan").exists()
    assert (host / "opt/cni/bin/bridge").exists()


def test_the_nodes_own_plugin_is_never_replaced_and_an_identical_one_is_not_ours(host: Path, source: Path,
                                                                                 tmp_path: Path) -> None:
    """On Talos /opt is an overlay: a plugin replaced, then put back by uninstall, would be a copy in
    the upper layer hiding every later Talos upgrade of it. The node's own plugin is used instead."""
    write(host / "opt/cni/bin/macvlan", b"#!the node's own macvlan", 0o700)
    write(host / "opt/cni/bin/vlan", (source / "vlan").read_bytes())
    before, bin_before = snapshot(host), snapshot(host / "opt/cni/bin")
    listed = tmp_path / "list"
    listed.write_text("macvlan: true\nvlan: true\nipvlan: false\n")

    for _ in range(2):  # and again: a rerun keeps it the same way
        result = install_cli(host, source, listed)
        assert result.returncode == 0, result.stderr
        assert snapshot(host / "opt/cni/bin") == bin_before, "a file of the node's was written"
        assert ("WARNING multus-webhook.install-cni: kept-own     /opt/cni/bin/macvlan: the node's own plugin "
                "(multus-webhook did not write it); not replaced, so Multus runs the node's version") in result.stderr
        assert "remove the node's file and run install-cni again" in result.stderr
        assert "On Talos a plugin shipped in the root file system cannot be removed" in result.stderr
        assert "present      /opt/cni/bin/vlan" in result.stderr
    assert not (host / "var/lib/cni/multus-webhook/installed.json").exists()  # nothing of ours

    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert "/opt/cni/bin/macvlan" not in result.stderr
    assert snapshot(host) == before  # vlan was there, identical, before us: it stays


def test_a_plugin_dropped_from_the_list_stays_until_uninstall(host: Path, source: Path, plugins_file: Path) -> None:
    """Every node runs the installer at once when the list changes, while pods wired with the plugin
    may still run: Multus needs it to delete their attachments."""
    before = snapshot(host)
    assert install_cli(host, source, plugins_file).returncode == 0
    installed = (host / "opt/cni/bin/ipvlan").stat()
    plugins_file.write_text("macvlan\n")
    result = install_cli(host, source, plugins_file)
    assert result.returncode == 0, result.stderr
    assert "unlisted     /opt/cni/bin/ipvlan: no longer listed, kept until uninstall" in result.stderr
    assert (host / "opt/cni/bin/ipvlan").stat().st_ino == installed.st_ino
    assert "opt/cni/bin/ipvlan" in Record.load(host).files  # still ours: uninstall takes it back
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert "removed /opt/cni/bin/ipvlan" in result.stderr
    assert snapshot(host) == before


def test_temporary_files_of_an_install_cut_short_go_at_the_next_run_and_at_uninstall(host: Path, source: Path,
                                                                                     tmp_path: Path) -> None:
    bin_dir, state = host / "opt/cni/bin", host / "var/lib/cni/multus-webhook"
    not_ours = write(temporary_path(bin_dir / "loopback"), b"a plugin we neither list nor installed")
    before = snapshot(host)
    listed = tmp_path / "list"
    listed.write_text("macvlan\nbridge\n")  # bridge is the node's own: kept
    assert install_cli(host, source, listed).returncode == 0

    def killed_install() -> list[Path]:
        """What an install killed before its renames leaves behind (write_atomic's temporary files)."""
        return [write(temporary_path(bin_dir / "macvlan"), b"half a macvlan"),  # executable
                write(temporary_path(state / "installed.json"), b'{"vers', 0o644)]

    left = killed_install()
    again = install_cli(host, source, listed)
    assert again.returncode == 0, again.stderr
    for path in left:
        assert not path.exists(), path
        rel = path.relative_to(host)
        assert f"removed      /{rel} (left by an install that was cut short)" in again.stderr
    assert not_ours.exists()

    left = killed_install()
    put_multus_on(host)
    # Upstream install_multus, killed before its renames (Go's os.CreateTemp names, mode 0600).
    left += [write(bin_dir / "multus-shim.temp2813308004", b"half a shim", 0o600),
             write(bin_dir / "passthru.temp1", b"half a passthru", 0o600)]
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert not [path for path in left if path.exists()]
    assert "removed /opt/cni/bin/multus-shim.temp2813308004" in result.stderr
    assert snapshot(host) == before


def test_a_file_changed_by_someone_else_is_left_alone(host: Path, source: Path, plugins_file: Path) -> None:
    assert install_cli(host, source, plugins_file).returncode == 0
    write(host / "opt/cni/bin/ipvlan", b"#!ipvlan from a Talos upgrade")
    result = cli("uninstall", "--host-root", str(host))
    assert "/opt/cni/bin/ipvlan changed since multus-webhook installed it; left in place" in result.stderr
    assert (host / "opt/cni/bin/ipvlan").read_bytes() == b"#!ipvlan from a Talos upgrade"
    assert not (host / "opt/cni/bin/macvlan").exists()
    assert not (host / "var/lib/cni/multus-webhook").exists()


def test_a_file_changed_after_install_is_the_nodes_and_is_never_written_again(host: Path, source: Path,
                                                                              plugins_file: Path) -> None:
    assert install_cli(host, source, plugins_file).returncode == 0
    ipvlan = write(host / "opt/cni/bin/ipvlan", b"#!ipvlan an administrator put there", 0o750)
    changed = ipvlan.stat()
    write(source / "ipvlan", b"#!ipvlan from the plugins image v2")  # an upgrade of ours does not win either

    # The run that finds the change drops the file from the record; the next ones find a file of the node's.
    for why in ("changed since multus-webhook installed it: it is the node's own now, no longer recorded",
                "the node's own plugin (multus-webhook did not write it)"):
        again = install_cli(host, source, plugins_file)
        assert again.returncode == 0, again.stderr
        assert f"kept-own     /opt/cni/bin/ipvlan: {why}; not replaced" in again.stderr
        assert "upgraded" not in again.stderr
        assert "installed    /opt/cni/bin/ipvlan" not in again.stderr
        now = ipvlan.stat()
        assert (now.st_ino, now.st_mtime_ns, now.st_mode & 0o7777) == (changed.st_ino, changed.st_mtime_ns, 0o750)
        assert sorted(Record.load(host).files) == ["opt/cni/bin/macvlan"]

    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert "/opt/cni/bin/ipvlan" not in result.stderr  # not ours: not even looked at
    assert ipvlan.read_bytes() == b"#!ipvlan an administrator put there"
    assert not (host / "opt/cni/bin/macvlan").exists()
    assert not (host / "var/lib/cni/multus-webhook").exists()


def test_a_record_of_an_earlier_version_with_a_copy_of_the_nodes_file_loads_and_leaves_it(
        host: Path, source: Path, plugins_file: Path) -> None:
    """Development versions replaced the node's own plugin and kept a copy to put back (``backup``,
    ``mode``). That file was the node's: it is given up, left as it is, and the copy is named."""
    assert install_cli(host, source, plugins_file).returncode == 0
    state = host / "var/lib/cni/multus-webhook"
    write(host / "opt/cni/bin/bridge", (source / "bridge").read_bytes())
    write(state / "originals/bridge", b"#!bridge v1")
    old = json.loads((state / "installed.json").read_text())
    old["files"]["opt/cni/bin/bridge"] = {"sha256": sha256(source / "bridge"),
                                          "backup": "var/lib/cni/multus-webhook/originals/bridge", "mode": 0o755}
    (state / "installed.json").write_text(json.dumps(old))

    assert sorted(Record.load(host).files) == ["opt/cni/bin/ipvlan", "opt/cni/bin/macvlan"]
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert ("/opt/cni/bin/bridge replaced a file the node had, kept in /var/lib/cni/multus-webhook/originals/bridge "
            "by an earlier multus-webhook; it is no longer recorded and stays as it is") in result.stderr
    assert "removed /opt/cni/bin/macvlan" in result.stderr
    assert (host / "opt/cni/bin/bridge").read_bytes() == (source / "bridge").read_bytes()
    assert sorted(p.relative_to(host).as_posix() for p in state.rglob("*")) == [
        "var/lib/cni/multus-webhook/originals", "var/lib/cni/multus-webhook/originals/bridge"]


@pytest.mark.parametrize("target", ["distribution's vlan", "same as ours"])
def test_a_symlinked_plugin_of_the_node_is_never_replaced(host: Path, source: Path, tmp_path: Path,
                                                          target: str) -> None:
    """Distribution packages link their plugins into /opt/cni/bin: the link is the node's own, even
    when it leads to the very file we would install."""
    content = b"the distribution's vlan" if target == "distribution's vlan" else (source / "vlan").read_bytes()
    write(host / "usr/libexec/cni/vlan", content)
    link = host / "opt/cni/bin/vlan"
    link.symlink_to("../../../usr/libexec/cni/vlan")
    before, bin_before = snapshot(host), snapshot(host / "opt/cni/bin")
    listed = tmp_path / "list"
    listed.write_text("vlan\n")

    result = install_cli(host, source, listed)
    assert result.returncode == 0, result.stderr
    assert "kept-own     /opt/cni/bin/vlan: the node's own plugin" in result.stderr
    assert os.readlink(link) == "../../../usr/libexec/cni/vlan"
    assert snapshot(host / "opt/cni/bin") == bin_before

    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert os.readlink(link) == "../../../usr/libexec/cni/vlan"
    assert snapshot(host) == before
    assert not (host / "var/lib/cni/multus-webhook").exists()


def test_a_symlinked_plugin_in_the_source_is_installed_as_the_file_it_points_to(host: Path, source: Path,
                                                                                 tmp_path: Path) -> None:
    # The link points into the source, which the host does not have: the file itself is installed.
    (source / "macvlan").unlink()
    (source / "macvlan").symlink_to("ipvlan")
    listed = tmp_path / "list"
    listed.write_text("macvlan\n")

    assert install_cli(host, source, listed).returncode == 0
    installed = host / "opt/cni/bin/macvlan"
    assert not installed.is_symlink()
    assert installed.read_bytes() == (source / "ipvlan").read_bytes()
    assert installed.stat().st_mode & 0o7777 == 0o755

# Runs inside a mount namespace with a 512 KiB tmpfs at argv[1]: the node's own bridge (listed, and
# kept) leaves too little room for the new plugin.
FULL_DISK_RUN = """
import json, os, shutil, subprocess, sys
from pathlib import Path
disk, original, source, plugins = (Path(a) for a in sys.argv[1:5])
host = disk / "host"
bridge = host / "opt/cni/bin/bridge"
bridge.parent.mkdir(parents=True)
shutil.copy(original, bridge)
(host / "etc/cni/net.d").mkdir(parents=True)
(host / "etc/cni/net.d/05-cilium.conflist").write_text("{}")  # the node can start pods after uninstall
def run(*args):
    done = subprocess.run([sys.executable, "-m", "webhook.cli", *args, "--host-root", str(host)],
                          capture_output=True, text=True)
    return {"rc": done.returncode, "stderr": done.stderr, "bin": sorted(os.listdir(bridge.parent)),
            "bridge": bridge.read_bytes() == original.read_bytes(),
            "state": sorted(str(p.relative_to(host)) for p in (host / "var/lib/cni").rglob("*"))}
out = {"install": run("install-cni", "--source", str(source), "--plugins-file", str(plugins))}
out["uninstall"] = run("uninstall")
print(json.dumps(out))
"""


def test_a_full_disk_fails_the_install_and_loses_nothing(
        tmp_path: Path, mounts: Callable[[Sequence[str], Sequence[str]], list[str]]) -> None:
    original = write(tmp_path / "original", b"#!/bin/sh\n# the node's own\n" + os.urandom(150_000))
    src = tmp_path / "plugins"
    write(src / "bridge", b"\x7fELF our bridge")
    write(src / "macvlan", b"\x7fELF ours" + os.urandom(400_000))
    listed = tmp_path / "list"
    listed.write_text("bridge\nmacvlan\n")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        mounts(["-t", "tmpfs", "-o", "size=512k", "none", str(disk)],
               [sys.executable, "-c", FULL_DISK_RUN, str(disk), str(original), str(src), str(listed)]),
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    install_run = out["install"]
    assert install_run["rc"] == 1, install_run["stderr"]
    assert "could not install /opt/cni/bin/macvlan: No space left on device" in install_run["stderr"]
    assert install_run["bridge"], "the node's own bridge was written"
    assert install_run["bin"] == ["bridge"], "a temporary file was left behind"

    uninstall_run = out["uninstall"]
    assert uninstall_run["rc"] == 0, uninstall_run["stderr"]
    assert "absent  /opt/cni/bin/macvlan" in uninstall_run["stderr"]  # recorded before the write that failed
    assert uninstall_run["bridge"]
    assert uninstall_run["bin"] == ["bridge"]
    assert uninstall_run["state"] == []


# One install that stops inside its first plugin copy until the test lets it go on.
HELD_INSTALL = """
import json, sys, time
from pathlib import Path
from webhook.node import installer
host, source, gate = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
copy = installer.copy_executable_atomic
def held(src, dest):
    (gate / "copying").touch()
    while not (gate / "go").exists():
        time.sleep(0.02)
    copy(src, dest)
installer.copy_executable_atomic = held
print(json.dumps([c.action for c in installer.install(host, source, sys.argv[4:])]))
"""


def waits_for_lock(pid: int, path: Path) -> bool:
    """Whether process ``pid`` is blocked waiting for a lock on ``path``. flock(2) leaves no other trace
    of a waiter: the kernel lists it in /proc/locks, marked "->", with its pid and the file's
    major:minor:inode, as in ``1: -> FLOCK  ADVISORY  WRITE 4242 fe:00:9979367 0 EOF``."""
    st = path.stat()
    file_id = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:
            kind, _, _, holder, lock_file = fields[fields.index("->") + 1:][:5]
            if kind == "FLOCK" and int(holder) == pid and lock_file == file_id:
                return True
    return False


def test_concurrent_installs_take_turns_and_leave_one_consistent_record(host: Path, source: Path,
                                                                        tmp_path: Path) -> None:
    write(host / "opt/cni/bin/macvlan", b"#!the node's own macvlan")
    before = snapshot(host)
    listed = tmp_path / "list"
    listed.write_text("macvlan\nipvlan\nvlan\n")
    gate = tmp_path / "gate"
    gate.mkdir()
    first = subprocess.Popen([sys.executable, "-c", HELD_INSTALL, str(host), str(source), str(gate),
                              "macvlan", "ipvlan", "vlan"], stdout=subprocess.PIPE, text=True)
    second: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 30
        while not (gate / "copying").exists():
            assert first.poll() is None, "the first install ended before its copy"
            assert time.monotonic() < deadline, "the first install never reached its copy"
            time.sleep(0.02)
        second = subprocess.Popen([sys.executable, "-m", "webhook.cli", "install-cni", "--host-root", str(host),
                                   "--source", str(source), "--plugins-file", str(listed)],
                                  stderr=subprocess.PIPE, text=True)
        # The overlap is seen, not timed: the second install is blocked on the lock the first one holds
        # halfway through its copies (a slow start of the second would otherwise pass for waiting).
        deadline = time.monotonic() + 30
        while not waits_for_lock(second.pid, on_host(host, LOCK)):
            if second.poll() is not None:
                pytest.fail(f"the second install ran while the first one was halfway: {second.communicate()[1]}")
            assert time.monotonic() < deadline, "the second install never waited for the lock"
            time.sleep(0.02)
        (gate / "go").touch()
        _, err = second.communicate(timeout=30)
        assert second.returncode == 0, err
        assert err.count("unchanged") == 2, err  # it read the record only once the first one was done
        out, _ = first.communicate(timeout=30)
        assert first.returncode == 0
        assert json.loads(out) == ["kept-own", "installed", "installed"]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    record = Record.load(host)
    assert sorted(record.files) == ["opt/cni/bin/ipvlan", "opt/cni/bin/vlan"]
    for rel, entry in record.files.items():
        assert sha256(host / rel) == entry.sha256
        assert entry.replacing is None
    assert cli("uninstall", "--host-root", str(host)).returncode == 0
    assert snapshot(host) == before


def test_upgrading_a_running_binary_is_not_text_file_busy(host: Path, tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    src = tmp_path / "src"
    write(src / "busy", Path(sleep).read_bytes())
    install(host, src, ["busy"])
    # Popen returns once the exec has succeeded: from then on the file is a running program's text.
    running = subprocess.Popen([str(host / "opt/cni/bin/busy"), "30"])
    try:
        with pytest.raises(OSError, match="Text file busy"):
            (host / "opt/cni/bin/busy").open("wb")  # what a plain cp would do
        write(src / "busy", Path(sleep).read_bytes() + b"\0v2")
        changes = install(host, src, ["busy"])
        assert [c.action for c in changes] == ["upgraded"]
        assert (host / "opt/cni/bin/busy").read_bytes().endswith(b"\0v2")
    finally:
        running.kill()
        running.wait()


def test_an_unknown_plugin_is_reported_loudly_and_the_others_are_installed(host: Path, source: Path,
                                                                            tmp_path: Path) -> None:
    """install-cni is the first init container of the Multus pod: failing on a misspelt name (the same on
    every node, no rerun fixes it) would keep Multus off every node the DaemonSet rolls to, and off
    every node that joins. It installs the rest, says loudly what it did not, and lets Multus start."""
    listed = tmp_path / "list"
    listed.write_text("macvlan\nmacvlann\nsbr\nipvlan\n")
    result = install_cli(host, source, listed)
    assert result.returncode == 0, result.stderr
    assert (host / "opt/cni/bin/macvlan").read_bytes() == (source / "macvlan").read_bytes()
    assert (host / "opt/cni/bin/ipvlan").read_bytes() == (source / "ipvlan").read_bytes()
    assert not (host / "opt/cni/bin/macvlann").exists()
    assert "ERROR" in result.stderr
    assert "unavailable  /opt/cni/bin/macvlann: not in" in result.stderr
    banner = result.stderr[result.stderr.index("!" * 78):]
    assert f"Not installed, from the plugin list {listed}:\n" in banner
    assert f"not in {source}: macvlann, sbr (available: bridge, ipvlan, macvlan, vlan)" in banner
    assert banner.count("!" * 78) == 2
    # Recorded as usual: uninstall takes back what was installed, nothing else.
    assert sorted(Record.load(host).files) == ["opt/cni/bin/ipvlan", "opt/cni/bin/macvlan"]


def test_a_malformed_line_is_reported_loudly_and_the_others_are_installed(host: Path, source: Path,
                                                                          tmp_path: Path) -> None:
    listed = tmp_path / "list"
    listed.write_text("macvlan: yes\n../../bin/sh\nipvlan: true\n")
    result = install_cli(host, source, listed)
    assert result.returncode == 0, result.stderr
    assert "line 1: 'macvlan: yes': expected '<binary>: true' or '<binary>: false'" in result.stderr
    assert "line 2: '../../bin/sh' is not a plugin file name" in result.stderr
    assert "!" * 78 in result.stderr
    assert sorted(Record.load(host).files) == ["opt/cni/bin/ipvlan"]
    assert not (host / "opt/cni/bin/macvlan").exists()


def test_a_plugin_the_image_no_longer_has_keeps_the_copy_installed_earlier(host: Path, source: Path,
                                                                           plugins_file: Path) -> None:
    assert install_cli(host, source, plugins_file).returncode == 0
    (source / "ipvlan").unlink()
    result = install_cli(host, source, plugins_file)
    assert result.returncode == 0, result.stderr
    assert "not in" in result.stderr
    assert (host / "opt/cni/bin/ipvlan").read_bytes() == b"#!ipvlan from the plugins image v1"
    put_multus_on(host)
    cleanup = cli("uninstall", "--host-root", str(host))
    assert cleanup.returncode == 0, cleanup.stderr
    assert "removed /opt/cni/bin/ipvlan" in cleanup.stderr


def test_an_unreadable_plugin_list_still_fails(host: Path, source: Path, tmp_path: Path) -> None:
    result = install_cli(host, source, tmp_path / "missing")
    assert result.returncode == 1
    assert f"cannot read the plugin list {tmp_path / 'missing'}: No such file or directory" in result.stderr


@pytest.mark.parametrize(("text", "names"), [
    ("macvlan\nipvlan\n", ["macvlan", "ipvlan"]),
    ("# plugins\n- macvlan  # for the lab\n- ipvlan\n\n", ["macvlan", "ipvlan"]),
    ("macvlan: true\nipvlan: false\nbridge: True\n", ["macvlan", "bridge"]),
    ("macvlan\nmacvlan\n", ["macvlan"]),
    ("", []),
])
def test_plugin_list_forms(text: str, names: list[str]) -> None:
    assert parse_plugin_list(text) == PluginList(names)


@pytest.mark.parametrize(("text", "message"), [
    ("../../bin/sh\n", "line 1: '../../bin/sh' is not a plugin file name"),
    ("ok\n.hidden\n", "line 2: '.hidden' is not a plugin file name"),
    ("macvlan: yes\n", "line 1: 'macvlan: yes': expected '<binary>: true' or '<binary>: false'"),
])
def test_plugin_list_refusals(text: str, message: str) -> None:
    assert parse_plugin_list(text + "ipvlan\n").refused == [message]
    assert parse_plugin_list(text + "ipvlan\n").names == [*(["ok"] if text.startswith("ok") else []), "ipvlan"]


def test_uninstall_warns_loudly_when_the_primary_config_is_in_a_subdirectory(tmp_path: Path) -> None:
    host = tmp_path / "host"
    write(host / "etc/cni/net.d/cilium/05-cilium.conflist", b"{}", 0o644)
    put_multus_on(host)
    result = cli("uninstall", "--host-root", str(host), env={"PRIMARY_CNI_CONFIG_FILE": "cilium/05-cilium.conflist"})
    # The node can start no pod: not a success, though every step of the cleanup itself succeeded.
    assert result.returncode == 1, result.stderr
    assert "!" * 78 in result.stderr
    assert ("No CNI config is left directly in /etc/cni/net.d (only in subdirectories: cilium/05-cilium.conflist)"
            in result.stderr)
    assert ("primaryCniConfigFile is cilium/05-cilium.conflist, in a subdirectory: revert the primary CNI"
            in result.stderr)
    assert "cleanup finished\n" in result.stderr
    assert not (host / "etc/cni/net.d/00-multus.conf").exists()


@pytest.mark.parametrize("layout", ["subdirectory only", "nothing at all"])
def test_the_cleanup_pod_on_a_node_left_without_cni_config_is_never_ready(tmp_path: Path, layout: str) -> None:
    """The cleanup DaemonSet (maxUnavailable 1) rolls on to the next node once this pod is Ready: the
    run must fail there (writing no --ready-file, tests/manifests), or an unattended rollout takes
    every node's pods down."""
    host = tmp_path / "host"
    if layout == "subdirectory only":
        write(host / "etc/cni/net.d/cilium/05-cilium.conflist", b"{}", 0o644)
    put_multus_on(host)
    result = cli("uninstall", "--host-root", str(host), "--idle", timeout=20)
    assert result.returncode == 1, result.stderr
    assert "No CNI config is left directly in /etc/cni/net.d" in result.stderr
    assert ("this pod exits with status 1 and is not Ready: the cleanup goes to no other node until this one is "
            "fixed") in result.stderr
    # The kubelet runs it again: a second run finds nothing left to remove and still stops the rollout.
    again = cli("uninstall", "--host-root", str(host), "--idle", timeout=20)
    assert again.returncode == 1, again.stderr
    assert "absent  /etc/cni/net.d/00-multus.conf" in again.stderr
    # The operator gives the node a top-level config back (docs/install.md, Uninstall step 1): the
    # next run idles, the pod is Ready, the rollout goes on.
    write(host / "etc/cni/net.d/05-cilium.conflist", b"{}", 0o644)
    proc = subprocess.Popen([sys.executable, "-m", "webhook.cli", "uninstall", "--host-root", str(host), "--idle"],
                            stderr=subprocess.DEVNULL)
    idles_until_sigterm(proc)


def test_the_cleanup_pod_that_failed_a_step_is_never_ready(tmp_path: Path) -> None:
    """A step that failed (here: no node file system at all, a wrong mount) would fail on the next
    node too: the rollout stops at the first."""
    result = cli("uninstall", "--host-root", str(tmp_path / "hots"), "--idle", timeout=20)
    assert result.returncode == 1, result.stderr
    assert "it is not a node's file system" in result.stderr
    assert "this pod exits with status 1 and is not Ready" in result.stderr


def test_uninstall_after_the_primary_cni_was_reverted_does_not_warn(tmp_path: Path) -> None:
    # docs/install.md's step 1 done: the primary CNI writes its config at the top level again, while
    # the uninstall overlay still carries primaryCniConfigFile in the subdirectory.
    host = tmp_path / "host"
    write(host / "etc/cni/net.d/cilium/05-cilium.conflist", b"{}", 0o644)
    write(host / "etc/cni/net.d/05-cilium.conflist", b"{}", 0o644)
    put_multus_on(host)
    result = cli("uninstall", "--host-root", str(host), env={"PRIMARY_CNI_CONFIG_FILE": "cilium/05-cilium.conflist"})
    assert result.returncode == 0, result.stderr
    assert "!" * 78 not in result.stderr
    assert "the node's CNI config is now 05-cilium.conflist" in result.stderr
    # Cilium's copy: not ours, named for the operator to remove (docs/install.md, Uninstall step 7).
    assert ("kept    /etc/cni/net.d/cilium/05-cilium.conflist: not multus-webhook's, and the container runtime "
            "does not read it") in result.stderr
    assert (host / "etc/cni/net.d/cilium/05-cilium.conflist").exists()


def test_uninstall_refuses_a_host_root_that_is_not_a_node(tmp_path: Path) -> None:
    typo = tmp_path / "hots"
    result = cli("uninstall", "--host-root", str(typo))
    assert result.returncode == 1
    assert f"{typo} holds neither /etc/cni nor /opt/cni/bin: it is not a node's file system" in result.stderr
    assert "cleanup finished" not in result.stderr
    assert not typo.exists()


def test_uninstall_keeps_a_multus_dir_holding_foreign_files(host: Path) -> None:
    write(host / "etc/cni/multus/net.d/lab.conf", b"{}", 0o644)
    result = cli("uninstall", "--host-root", str(host))
    assert "kept    /etc/cni/multus: it holds files multus-webhook did not put there" in result.stderr
    assert (host / "etc/cni/multus/net.d/lab.conf").exists()


def test_a_directory_uninstall_may_not_change_is_an_error_and_the_rest_is_still_removed(
        host: Path, source: Path, plugins_file: Path, unprivileged: list[str]) -> None:
    assert install_cli(host, source, plugins_file).returncode == 0
    put_multus_on(host)  # with the empty /etc/cni/multus/net.d its hostPath mount makes
    (host / "etc/cni/multus").chmod(0o555)  # net.d in it cannot be removed
    (host / "etc/cni/net.d").chmod(0o333)  # its files can be removed, not listed
    try:
        result = cli("uninstall", "--host-root", str(host), wrapper=unprivileged)
    finally:
        (host / "etc/cni/multus").chmod(0o755)
        (host / "etc/cni/net.d").chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "could not remove /etc/cni/multus: Permission denied: /etc/cni/multus/net.d" in result.stderr
    assert ("could not tell which CNI config is left in /etc/cni/net.d: Permission denied: /etc/cni/net.d"
            in result.stderr)
    # The steps after the failed ones still ran: our plugins and Multus's files are gone.
    for step in ("removed /etc/cni/net.d/00-multus.conf", "removed /opt/cni/bin/macvlan",
                 "removed /opt/cni/bin/ipvlan", "cleanup finished with 2 error(s)"):
        assert step in result.stderr
    assert not (host / "opt/cni/bin/macvlan").exists()
    assert (host / "etc/cni/multus/net.d").is_dir()


def waiting_for_sigterm(pid: int) -> bool:
    """Whether ``pid`` sleeps in sigwait(2), which is how the command idles (as PID 1 in a container a
    signal without a handler would be ignored; one blocked and waited for is not). The kernel names the
    function a process sleeps in in /proc/PID/wchan; sigwait sleeps in do_sigtimedwait."""
    return "sigtimedwait" in Path(f"/proc/{pid}/wchan").read_text()


def idles_until_sigterm(proc: subprocess.Popen[str] | subprocess.Popen[bytes], lines: list[str] | None = None) -> None:
    """``proc`` is seen waiting for the signal (not merely alive a moment after its last line), then
    stops on SIGTERM with status 0; killed whatever happens. ``lines``: its output so far, for a failure."""
    try:
        deadline = time.monotonic() + 30
        while not waiting_for_sigterm(proc.pid):
            assert proc.poll() is None, "".join(lines or [])
            assert time.monotonic() < deadline, "the uninstall never waited for SIGTERM"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_uninstall_idles_until_sigterm_so_that_its_logs_can_be_read(host: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "webhook.cli", "uninstall", "--host-root", str(host), "--idle"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "cleanup finished" in line:
                break
        idles_until_sigterm(proc, lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def put_sandbox_on(host: Path, container_id: str, networks: list[str], pod: str = "", netns: str = "") -> Path:
    """A sandbox Multus set up, as its ADD leaves it (Multus v4.3.0 pkg/multus/multus.go): a record
    named by the container ID listing every delegate it must DEL, the default network first; and, for
    each secondary delegate, libcni's cache of its result with the CNI_ARGS that name the pod."""
    cache = host / "var/lib/cni/multus"
    delegates = [{"Name": name, "Conf": {"type": "macvlan"}} for name in ["cilium", *networks]]
    record = write(cache / container_id, json.dumps(delegates).encode(), 0o600)
    if pod:
        namespace, name = pod.split("/")
        for i, network in enumerate(networks, 1):
            cached = {"kind": "cniCacheV1", "containerId": container_id, "ifName": f"net{i}", "networkName": network,
                      "cniArgs": [["K8S_POD_NAMESPACE", namespace], ["K8S_POD_NAME", name]],
                      **({"netns": netns} if netns else {})}
            write(cache / "results" / f"{network.replace('/', '-')}-{container_id}-net{i}",
                  json.dumps(cached).encode(), 0o600)
    return record


def test_uninstall_removes_nothing_while_a_sandbox_still_has_secondary_networks(host: Path, source: Path,
                                                                             plugins_file: Path) -> None:
    """docs/install.md step 0 skipped: the record is the only trace of which delegates (and IPAM
    addresses) a DEL must release. The cleanup keeps everything and stops the rollout here."""
    assert install_cli(host, source, plugins_file).returncode == 0
    put_multus_on(host)
    record = put_sandbox_on(host, "4f1c0ffee", ["default/macvlan-a", "lab/vlan-b"], pod="default/web-0")
    put_sandbox_on(host, "0dd", ["default/macvlan-a"])  # no libcni cache: no pod name to give
    put_sandbox_on(host, "plain", [])  # the default network alone: the primary CNI tears it down in full
    before = snapshot(host)
    result = cli("uninstall", "--host-root", str(host), "--idle", timeout=20)
    assert result.returncode == 1, result.stderr
    assert snapshot(host) == before
    assert "!" * 78 in result.stderr
    assert "2 sandbox(es) still have secondary networks Multus never tore down" in result.stderr
    assert "  container 4f1c0ffee (pod default/web-0): default/macvlan-a, lab/vlan-b\n" in result.stderr
    assert "  container 0dd: default/macvlan-a\n" in result.stderr
    assert "plain" not in result.stderr
    assert "Nothing was removed. Tell a live record from a stale one" in result.stderr
    assert "- Live: abort the uninstall" in result.stderr
    assert "If Multus's config has defaultNetworks, every pod outside its systemNamespaces has such a record" in (
        result.stderr)
    assert "set DISCARD_MULTUS_ATTACHMENTS=true on the cleanup" in result.stderr
    assert "this pod exits with status 1 and is not Ready" in result.stderr
    assert "cleanup finished" not in result.stderr
    # Multus's DEL of those pods (the uninstall aborted, the pods deleted) consumes their records.
    record.unlink()
    (host / "var/lib/cni/multus/0dd").unlink()
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert "removed /var/lib/cni/multus" in result.stderr
    assert not (host / "var/lib/cni/multus").exists()


@pytest.mark.parametrize("how", [["--discard-multus-attachments"], ["--discard-multus-attachments=yes"],
                                 "DISCARD_MULTUS_ATTACHMENTS=true"])
def test_uninstall_discards_the_records_of_attached_sandboxes_when_told(host: Path, how: list[str] | str) -> None:
    put_multus_on(host)
    put_sandbox_on(host, "4f1c0ffee", ["default/macvlan-a"], pod="default/web-0")
    flags, env = (how, {}) if isinstance(how, list) else ([], dict([how.split("=")]))
    result = cli("uninstall", "--host-root", str(host), *flags, env=env)
    assert result.returncode == 0, result.stderr
    assert ("discarding the record of container 4f1c0ffee (pod default/web-0): default/macvlan-a "
            "(DISCARD_MULTUS_ATTACHMENTS)") in result.stderr
    assert not (host / "var/lib/cni/multus").exists()


def test_uninstall_names_a_record_whose_network_namespace_is_gone_stale(host: Path) -> None:
    """The runtime removes a sandbox's namespace with the sandbox; a record that outlives it was
    left by a DEL that never reached the Multus daemon. Only a namespace where the runtime mounts
    them (and the cleanup sees them) says anything."""
    put_multus_on(host)
    (host / "var/run/netns").mkdir(parents=True)
    (host / "var/run/netns/cni-1111").write_text("")
    put_sandbox_on(host, "aaa", ["default/macvlan-a"], pod="default/web-0", netns="/var/run/netns/cni-1111")
    put_sandbox_on(host, "bbb", ["default/macvlan-a", "lab/vlan-b"], pod="default/web-1",
                   netns="/run/netns/cni-2222")
    put_sandbox_on(host, "ccc", ["default/macvlan-a"], pod="default/web-2", netns="/proc/4242/ns/net")
    put_sandbox_on(host, "ddd", ["default/macvlan-a"], pod="default/web-3", netns="/var/run/netns/..")
    put_sandbox_on(host, "eee", ["default/macvlan-a"], pod="default/web-4", netns="/var/run/netns/a\0b")
    before = snapshot(host)
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 1, result.stderr
    assert snapshot(host) == before
    assert ("  container aaa (pod default/web-0): default/macvlan-a\n"
            "    live: its network namespace /var/run/netns/cni-1111 is still there\n") in result.stderr
    assert ("  container bbb (pod default/web-1): default/macvlan-a, lab/vlan-b\n"
            "    stale: its pod is gone (/run/netns/cni-2222 no longer exists), the addresses it holds were never "
            "released: default/macvlan-a, lab/vlan-b; discard with DISCARD_MULTUS_ATTACHMENTS=true after releasing "
            "them\n") in result.stderr
    assert "  container ccc (pod default/web-2): default/macvlan-a\n  container ddd" in result.stderr
    assert "  container ddd (pod default/web-3): default/macvlan-a\n  container eee" in result.stderr
    assert "  container eee (pod default/web-4): default/macvlan-a\nNothing was removed." in result.stderr


def test_uninstall_refuses_an_unreadable_discard_setting(host: Path) -> None:
    put_multus_on(host)
    result = cli("uninstall", "--host-root", str(host), env={"DISCARD_MULTUS_ATTACHMENTS": "maybe"})
    assert result.returncode == 2
    assert ("argument --discard-multus-attachments: 'maybe' is neither true nor false (also read from "
            "$DISCARD_MULTUS_ATTACHMENTS)") in result.stderr
    assert (host / "etc/cni/net.d/00-multus.conf").exists()


@pytest.mark.parametrize("record", [b"[{", b"{}", b"[]"])
def test_a_sandbox_record_multus_could_not_use_either_stops_nothing(host: Path, record: bytes) -> None:
    """Multus's DEL reads such a record, fails to decode it or finds no delegate, and releases nothing
    from it: keeping it would block the uninstall for nothing."""
    put_multus_on(host)
    write(host / "var/lib/cni/multus/4f1c0ffee", record, 0o600)
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert not (host / "var/lib/cni/multus").exists()


def test_uninstall_on_a_node_without_var_lib_cni_creates_nothing(tmp_path: Path) -> None:
    host = tmp_path / "host"
    write(host / "etc/cni/net.d/05-cilium.conflist", b"{}", 0o644)
    (host / "opt/cni/bin").mkdir(parents=True)
    before = snapshot(host)
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 0, result.stderr
    assert snapshot(host) == before


def test_an_unreadable_install_record_is_named_by_its_host_path(host: Path) -> None:
    write(host / "var/lib/cni/multus-webhook/installed.json", b"{", 0o600)
    result = cli("uninstall", "--host-root", str(host))
    assert result.returncode == 1, result.stderr
    assert ("CNI plugins of install-cni: /var/lib/cni/multus-webhook/installed.json is not a record "
            "multus-webhook can read") in result.stderr
    assert str(host) not in result.stderr
