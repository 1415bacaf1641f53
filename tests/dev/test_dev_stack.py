"""The local stack behind `make run` and the tests (webhook.dev): what is left running when whoever
started it ends, and what `make run` says and keeps."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from webhook.dev.controlplane import REPO, eventually, spawn, terminate

pytestmark = pytest.mark.slow

#: Seconds to wait for a control plane to start or stop: a bound, not a measure.
PATIENCE = 180


def alive(pid: int) -> bool:
    """Running: a zombie (exited, not reaped by an init that does not reap) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Processes a test expects gone: whatever the test found, the ones still there are killed after it."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_all_gone(pids: list[int]) -> None:
    eventually(lambda: [pid for pid in pids if alive(pid)], f"the processes {pids} to end",
               until=lambda running: not running, timeout=PATIENCE)


def output_until(proc: subprocess.Popen[bytes], log: Path, text: str) -> str:
    """``proc``'s output once it holds ``text``; fails at once if ``proc`` ends first."""
    def probe() -> str:
        out = log.read_text(errors="replace")
        if proc.poll() is not None and text not in out:
            raise AssertionError(f"exited with {proc.returncode} before printing {text!r}:\n{out}")
        return out

    return eventually(probe, f"{text!r} in {log}", until=lambda out: text in out, timeout=PATIENCE)


OWNER = """
import json, sys, time
from pathlib import Path
from webhook.dev.controlplane import ControlPlane, WebhookServer
work, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
with ControlPlane(work / "controlplane", bin_dir) as cp, WebhookServer(work) as server:
    print(json.dumps([p.pid for p in cp.procs.values()] + [server.proc.pid]), flush=True)
    time.sleep(3600)
"""


def test_a_killed_owner_takes_the_control_plane_and_the_webhook_with_it(
        controlplane_bin: Path, tmp_path: Path, leftovers: list[int]) -> None:
    """SIGKILL gives no chance to stop anything: etcd, kube-apiserver and serve, each in a session of
    its own, kept running with ppid 1, holding their ports."""
    log = tmp_path / "owner.log"
    owner = spawn([sys.executable, "-c", OWNER, str(tmp_path), str(controlplane_bin)], log)
    try:
        out = output_until(owner, log, "]\n")
        leftovers.extend(json.loads(out.splitlines()[-1]))
        assert len(leftovers) == 3
        assert all(alive(pid) for pid in leftovers)
    finally:
        owner.kill()
        owner.wait()
    wait_all_gone(leftovers)


HELD = """
import json, os, time
from pathlib import Path
import pytest

@pytest.fixture
def marker():
    yield
    Path(os.environ["TORN_DOWN"]).write_text("torn down")

def test_held(controlplane, webhook_server, marker):
    print(json.dumps([p.pid for p in controlplane.procs.values()] + [webhook_server.proc.pid]), flush=True)
    time.sleep(3600)
"""


def test_sigterm_to_pytest_tears_the_fixtures_down(tmp_path: Path, leftovers: list[int]) -> None:
    """timeout(1) or a cancelled CI job sends SIGTERM: the run ends as on Ctrl-C, teardown included."""
    (tmp_path / "test_held.py").write_text(HELD)
    log, marker = tmp_path / "pytest.log", tmp_path / "torn-down"
    env = {**os.environ, "TORN_DOWN": str(marker),
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")])}
    # This suite's conftest as a plugin: the run is rooted in tmp_path, outside the suite.
    run = spawn([sys.executable, "-m", "pytest", "-p", "conftest", "-s", "-q", "-p", "no:cacheprovider",
                 "-o", "asyncio_default_fixture_loop_scope=function", "--rootdir", str(tmp_path),
                 str(tmp_path / "test_held.py")], log, env=env, cwd=tmp_path)
    try:
        out = output_until(run, log, "]\n")
        leftovers.extend(json.loads(next(line for line in out.splitlines() if line.startswith("["))))
        run.send_signal(signal.SIGTERM)
        status = run.wait(PATIENCE)
    finally:
        terminate(run, PATIENCE)
    assert status == pytest.ExitCode.INTERRUPTED, log.read_text()
    assert marker.read_text() == "torn down"
    wait_all_gone(leftovers)


def make_run(tmp_path: Path, name: str = "make-run") -> tuple[subprocess.Popen[bytes], Path]:
    """`make run` (python -m webhook.dev) writing its kubeconfig into ``tmp_path``, not the checkout's, and
    its output to ``name``.log there."""
    log = tmp_path / f"{name}.log"
    return spawn([sys.executable, "-m", "webhook.dev", "--kubeconfig-out", str(tmp_path / "kubeconfig")], log,
                 cwd=REPO), log


def started(run: subprocess.Popen[bytes], log: Path, leftovers: list[int]) -> Path:
    """The work directory of a `make run` once it has printed its banner; its processes in ``leftovers``."""
    out = output_until(run, log, "Ctrl-C stops everything.")
    leftovers.extend(children(run.pid))
    assert len(leftovers) == 3, f"etcd, kube-apiserver and serve, not {leftovers}"
    found = re.search(r"Webhook log: (\S+)/webhook.log", out)
    assert found, out
    return Path(found[1])


def test_make_run_stops_everything_when_its_terminal_is_closed(
        controlplane_bin: Path, tmp_path: Path, leftovers: list[int]) -> None:
    """Closing the terminal sends SIGHUP: handled as Ctrl-C is, not an exit that leaves the rest running."""
    run, log = make_run(tmp_path)
    try:
        work = started(run, log, leftovers)
        run.send_signal(signal.SIGHUP)
        status = run.wait(PATIENCE)
    finally:
        terminate(run, PATIENCE)
    assert status == 0, log.read_text()
    assert log.read_text().endswith("stopped; temporary data removed\n")
    assert not work.exists()
    assert not (tmp_path / "kubeconfig").exists()
    wait_all_gone(leftovers)


def test_make_run_keeps_the_logs_it_points_at_when_it_fails(
        controlplane_bin: Path, tmp_path: Path, leftovers: list[int]) -> None:
    run, log = make_run(tmp_path)
    try:
        work = started(run, log, leftovers)
        [serve] = [pid for pid in leftovers if b"webhook.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(serve, signal.SIGKILL)
        status = run.wait(PATIENCE)
    finally:
        terminate(run, PATIENCE)
    out = log.read_text()
    try:
        assert status == 1, out
        assert f"multus-webhook exited with -9; see {work}/webhook.log\n" in out
        assert out.endswith(f"make run: logs kept in {work}\n")
        assert (work / "webhook.log").exists()
        assert (work / "controlplane" / "kube-apiserver.log").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wait_all_gone(leftovers)


def test_a_second_make_run_with_the_same_kubeconfig_exits_at_once(
        controlplane_bin: Path, tmp_path: Path, leftovers: list[int]) -> None:
    """It overwrote the first one's kubeconfig and deleted it on exit while the first went on."""
    first, first_log = make_run(tmp_path)
    try:
        started(first, first_log, leftovers)
        kubeconfig = (tmp_path / "kubeconfig").read_bytes()
        second, second_log = make_run(tmp_path, "second")
        try:
            # Either way it is over: refused, or started as the first did.
            eventually(lambda: second.poll() is not None or "Ctrl-C stops everything." in second_log.read_text(),
                       "the second make run to exit or start", timeout=PATIENCE)
            status = second.poll()
        finally:
            terminate(second, PATIENCE)
        assert (status, second_log.read_text()) == (
            1, f"make run is already running in this checkout (pid {first.pid})\n")
        assert (tmp_path / "kubeconfig").read_bytes() == kubeconfig
        assert first.poll() is None
    finally:
        terminate(first, PATIENCE)
    wait_all_gone(leftovers)


def test_what_the_banner_suggests_does_what_it_says(
        controlplane_bin: Path, tmp_path: Path, leftovers: list[int]) -> None:
    """Each command of "Try, in another shell here:", in order, in bash at the checkout: refused where
    its comment says so, successful otherwise. Its dry run of examples/ exited 1 where it promised
    "the same checks": the bridge pod's NAD was only dry-run created, and broken-network is refused."""
    run, log = make_run(tmp_path)
    try:
        started(run, log, leftovers)
        lines = [line.strip() for line in log.read_text().splitlines()]
        [export] = [line for line in lines if line.startswith("export ")]
        commands = [line for line in lines if line.startswith("kubectl ")]
        assert len(commands) >= 4
        for command in commands:
            result = subprocess.run(["bash", "-c", f"{export} && {command}"], cwd=REPO, capture_output=True,
                                    text=True, timeout=PATIENCE)
            if "# refused" in command:
                assert result.returncode == 1, (command, result.stdout)
                assert "denied the request" in result.stderr, (command, result.stderr)
            else:
                assert result.returncode == 0, (command, result.stderr)
    finally:
        terminate(run, PATIENCE)
    wait_all_gone(leftovers)


def test_a_ctrl_c_while_make_run_starts_is_reported_as_one(controlplane_bin: Path, tmp_path: Path) -> None:
    """The terminal sends SIGINT to its foreground process group: to make run, and to the kubectl it
    runs at that moment, which dies without a word. That was "kubectl apply ... failed: " and nothing
    after the colon. A kubectl that sends SIGINT to its own process group stands for the terminal."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kube-apiserver"):
        (bin_dir / name).symlink_to(controlplane_bin / name)
    (bin_dir / "kubectl").write_text("#!/bin/sh\nkill -INT 0\n")
    (bin_dir / "kubectl").chmod(0o755)
    log = tmp_path / "make-run.log"
    run = spawn([sys.executable, "-m", "webhook.dev", "--kubeconfig-out", str(tmp_path / "kubeconfig")], log,
                env={**os.environ, "MULTUS_WEBHOOK_CONTROLPLANE_DIR": str(bin_dir)}, cwd=REPO)
    try:
        status = run.wait(PATIENCE)
    finally:
        terminate(run, PATIENCE)
    out = log.read_text()
    assert status == 0, out
    assert out.startswith("make run: interrupted while starting (kubectl apply -k ")
    assert out.endswith(" was killed by SIGINT)\nstopped; temporary data removed\n")
