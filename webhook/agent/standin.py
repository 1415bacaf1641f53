"""Stand-ins for what tests and demos cannot have: a node's root filesystem (a directory), the Multus
daemon (a real unix socket that accepts connections), and our commands as real processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from webhook.agent.probe import MULTUS_AUTOCONFIG_DIR, HostLayout
from webhook.dev.controlplane import ControlPlane, spawn, terminate
from webhook.kube import utcnow
from webhook.names import AGENT_POD_LABELS, NAMESPACE

MULTUS_CONFIG = '{"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus-shim"}\n'


def multus_config_delegating_to(relative: str, autoconfig_dir: str = MULTUS_AUTOCONFIG_DIR) -> str:
    """00-multus.conf as the thick daemon (v4.3.0) writes it for the primary config ``relative``: the
    path it delegates to is ``clusterNetwork``, its autoconfig dir joined with that name
    (pkg/server/config/manager.go); multusMasterCNI, readinessindicatorfile and the dirs are left out
    (generator.go, Generate)."""
    config = json.loads(MULTUS_CONFIG)
    config["clusterNetwork"] = str(PurePosixPath(autoconfig_dir) / relative)
    return json.dumps(config) + "\n"
PRIMARY_CONFIG = '{"cniVersion": "1.0.0", "name": "cilium", "plugins": [{"type": "cilium-cni"}]}\n'
#: The primary config with Cilium's portmap chaining turned on: it enables a capability (portMappings).
PORTMAP_CHAINED = ('{"cniVersion": "0.3.1", "name": "cilium", "plugins": [{"type": "cilium-cni"}, '
                   '{"type": "portmap", "capabilities": {"portMappings": true}}]}\n')


class StandInHost:
    """A directory laid out as a node's /. Short-lived and under the system temp dir, because a unix
    socket path must fit in 108 bytes. It booted a week before it was made (see ``set_boot_time``)."""

    def __init__(self, layout: HostLayout | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mw-host-"))
        self.layout = replace(layout or HostLayout(), root=self.root)
        #: The sockets listened on, by host path, each with the thread accepting on it.
        self._daemons: dict[str, tuple[socket.socket, threading.Thread]] = {}
        for path in (self.layout.cni_bin_dir, self.layout.cni_conf_dir):
            self.path(path).mkdir(parents=True, exist_ok=True)
        # Earlier than the pod statuses tests write, unless a test sets it: the pod repair waits for the
        # kubelet to rewrite a status older than the boot.
        self.set_boot_time(utcnow() - timedelta(days=7))

    def path(self, host_path: str) -> Path:
        return self.layout.on_host(host_path)

    def add_binary(self, name: str) -> None:
        target = self.path(self.layout.cni_bin_dir) / name
        target.write_text("#!/bin/sh\nexit 0\n")
        target.chmod(0o755)

    def remove_binary(self, name: str) -> None:
        (self.path(self.layout.cni_bin_dir) / name).unlink(missing_ok=True)

    def write_config(self, relative: str, content: str = PRIMARY_CONFIG) -> None:
        target = self.path(self.layout.cni_conf_dir) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    def remove_config(self, relative: str) -> None:
        (self.path(self.layout.cni_conf_dir) / relative).unlink(missing_ok=True)

    def set_boot_id(self, boot_id: str) -> None:
        target = self.path(self.layout.boot_id_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(boot_id + "\n")

    def set_boot_time(self, moment: datetime) -> None:
        """The host's /proc/stat, as far as the agent reads it: its btime line, in whole seconds."""
        target = self.path(self.layout.stat_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"cpu  1 0 1 100 0 0 0 0 0 0\nintr 0\nctxt 0\nbtime {int(moment.timestamp())}\n"
                          "processes 1\nprocs_running 1\nprocs_blocked 0\n")

    def start_daemon(self, host_path: str | None = None) -> None:
        """Listen on the Multus socket (or the daemon socket at ``host_path``: the dhcp daemon's) and
        accept (then drop) every connection, as far as a connect test can tell a daemon apart from
        nothing."""
        host_path = host_path or self.layout.multus_socket
        if host_path in self._daemons:
            return
        path = self.path(host_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(16)
        thread = threading.Thread(target=_accept_forever, args=(server,), daemon=True)
        thread.start()
        self._daemons[host_path] = server, thread

    def stop_daemon(self, host_path: str | None = None) -> None:
        """The daemon is gone; its socket file stays behind, as after a crash."""
        found = self._daemons.pop(host_path or self.layout.multus_socket, None)
        if found is not None:
            server, thread = found
            # shutdown wakes the accept() blocked in the thread, close alone does not on Linux.
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
            thread.join(5)

    def restart_daemon(self) -> None:
        """As the thick daemon starts: its socket directory removed and created anew, mode 0700."""
        self.stop_daemon()
        directory = self.path(self.layout.multus_socket).parent
        shutil.rmtree(directory)
        directory.mkdir(mode=0o700)
        self.start_daemon()

    def make_ready(self, boot_id: str, binaries: Sequence[str] = ("multus-shim", "bridge", "macvlan")) -> None:
        """A node on which Multus is installed, configured first and answering."""
        for name in binaries:
            self.add_binary(name)
        primary = self.layout.primary_config or "05-cilium.conflist"
        self.write_config(self.layout.multus_config, multus_config_delegating_to(primary))
        self.write_config(primary)
        self.set_boot_id(boot_id)
        self.start_daemon()

    def cleanup(self) -> None:
        for host_path in list(self._daemons):
            self.stop_daemon(host_path)
        shutil.rmtree(self.root, ignore_errors=True)


def _accept_forever(server: socket.socket) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conn.close()


class Subcommand:
    """`multus-webhook <args>` as a real process, its output in a log file; ``wrapper`` is a command
    that runs it (e.g. in a mount namespace of its own)."""

    def __init__(self, args: Sequence[str], log: Path, wrapper: Sequence[str] = ()) -> None:
        self.args = list(args)
        self.log = log
        self.wrapper = list(wrapper)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Subcommand:
        self.proc = spawn([*self.wrapper, sys.executable, "-m", "webhook.cli", *self.args], self.log,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit status."""
        return None if self.proc is None else terminate(self.proc, timeout)

    def kill(self) -> None:
        """A crash: no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class StandInNode:
    """A Node object with no kubelet behind it: the test plays the kubelet by patching its status. It
    has the pod the agent DaemonSet would have there (bound to it, never run), which the controller
    labels as it labels the node."""

    def __init__(self, cp: ControlPlane, name: str, boot_id: str, labels: dict[str, str] | None = None,
                 *, namespace: str = NAMESPACE) -> None:
        self.cp, self.name, self.namespace = cp, name, namespace
        self.agent_pod = f"multus-webhook-agent-{name}"
        cp.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}}))
        self.patch_status(boot_id=boot_id, ready=True)
        self._create_agent_pod()

    def _create_agent_pod(self) -> None:
        self.cp.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": self.agent_pod, "namespace": self.namespace, "labels": AGENT_POD_LABELS},
             "spec": {"nodeName": self.name, "containers": [{"name": "agent", "image": "multus-webhook"}]}}))

    def recreate_agent_pod(self) -> None:
        """Another pod of the same name (a new uid), as a StatefulSet would make it."""
        # Forced: a bound pod's graceful deletion waits for a kubelet.
        self.cp.kubectl("delete", "pod", "-n", self.namespace, self.agent_pod, "--grace-period=0", "--force")
        self._create_agent_pod()

    def patch_status(self, *, boot_id: str | None = None, ready: bool | None = None) -> None:
        status: dict[str, Any] = {}
        if boot_id is not None:
            status["nodeInfo"] = {"bootID": boot_id}
        if ready is not None:
            status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                     "reason": "KubeletReady" if ready else "KubeletNotReady"}]
        self.cp.kubectl("patch", "node", self.name, "--subresource=status", "--type=merge", "-p",
                        json.dumps({"status": status}))

    def reboot(self, boot_id: str) -> None:
        self.patch_status(boot_id=boot_id)

    def labels(self) -> dict[str, str]:
        out = self.cp.kubectl("get", "node", self.name, "-o", "jsonpath={.metadata.labels}").stdout
        return json.loads(out) if out else {}

    def own_labels(self) -> dict[str, str]:
        return {k: v for k, v in self.labels().items() if "multus-webhook.io" in k}

    def agent_labels(self) -> dict[str, str]:
        """Our labels on the node's agent pod: what the readiness gate of pods selects."""
        out = self.cp.kubectl("get", "pod", "-n", self.namespace, self.agent_pod,
                              "-o", "jsonpath={.metadata.labels}").stdout
        return {k: v for k, v in (json.loads(out) if out else {}).items() if "multus-webhook.io" in k}

    def events(self) -> list[dict[str, Any]]:
        out = self.cp.kubectl("get", "events", "-n", "default", "--field-selector",
                              f"involvedObject.kind=Node,involvedObject.name={self.name}", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))  # creation order

    def delete(self) -> None:
        self.cp.kubectl("delete", "node", self.name, "--wait=false", check=False)
        self.cp.kubectl("delete", "pod", "-n", self.namespace, self.agent_pod, "--wait=false", check=False)
