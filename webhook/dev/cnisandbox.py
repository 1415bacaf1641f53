"""Network namespaces to run CNI plugins in, as on a node, for the differential tests: one namespace stands
in for the node (the master and device links the plugins take), one for the pod. ``run_add`` drives
the real libcni as Multus does (hack/cniplugins/multus-add); ``our_findings`` is what the rules say of
the same config. Shared by every differential test module, whatever pytest's import mode."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.rules import Policy, Severity, Subject, evaluate

#: Rules whose verdict no plugin can confirm: the apiserver or the cluster decides them.
NOT_PLUGIN_LEVEL = {"nad-name", "nad-config-empty"}
#: Interfaces on the "node": the master of macvlan/vlan/ipvlan, and the device host-device moves.
MASTER, DEVICE = "mwmaster", "mwdevice"

_names = itertools.count()


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Sandbox:
    host: str
    pod: str
    data_dir: Path
    #: libcni's cache of results (Multus keeps it under /var/lib/cni/multus).
    cache_dir: Path


@contextlib.contextmanager
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A node namespace holding MASTER and DEVICE (veth links, up) and an empty pod namespace, deleted
    on the way out."""
    n = next(_names)
    box = Sandbox(f"mwh{os.getpid()}x{n}", f"mwp{os.getpid()}x{n}", tmp_path / "host-local", tmp_path / "cache")
    try:
        for ns in (box.host, box.pod):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        for name in (MASTER, DEVICE):
            ip("-n", box.host, "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
            ip("-n", box.host, "link", "set", name, "up")
        yield box
    finally:
        # Deleting the namespaces removes every link the plugins made in them; host-local's state
        # lives under tmp_path.
        for ns in (box.host, box.pod):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    error: str


def _with_data_dir(plugin: Any, data_dir: Path) -> Any:
    if not isinstance(plugin, dict):
        return plugin
    plugin = copy.deepcopy(plugin)
    ipam = plugin.get("ipam")
    if isinstance(ipam, dict) and ipam.get("type") == "host-local":
        ipam["dataDir"] = str(data_dir)
    return plugin


def run_add(
    config: dict[str, Any], box: Sandbox, cni_bin: Path, nad_name: str, cap_args: dict[str, Any] | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """ADD as Multus runs it: the config through libcni (AddNetwork for a single config, AddNetworkList
    for a list), with ``cap_args`` as the capability args a pod's selection would give; ``cwd`` the
    working directory the runtime would run the plugins in."""
    if isinstance(config.get("plugins"), list):
        config = {**config, "plugins": [_with_data_dir(p, box.data_dir) for p in config["plugins"]]}
    else:
        config = _with_data_dir(config, box.data_dir)
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_PATH": str(cni_bin),
        **({"CAP_ARGS": json.dumps(cap_args)} if cap_args is not None else {}),
    }
    proc = subprocess.run(
        [
            "ip", "netns", "exec", box.host, str(cni_bin / "multus-add"),
            nad_name, f"/var/run/netns/{box.pod}", "net1", f"ctr-{box.pod}", str(box.cache_dir),
        ],
        input=json.dumps(config),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return Outcome(False, (proc.stdout + proc.stderr).strip())
    return Outcome(True, "")


def our_findings(config: dict[str, Any], nad_name: str, severity: Severity = Severity.DENY) -> list[str]:
    obj = {"metadata": {"name": nad_name, "namespace": "default"}, "spec": {"config": json.dumps(config)}}
    findings = evaluate(Subject(obj, "NetworkAttachmentDefinition"), Policy())
    assert not [f for f in findings if f.message.startswith("internal error in rule")]
    return [
        f"{f.rule}: {f.message}"
        for f in findings
        if f.severity is severity and f.rule not in NOT_PLUGIN_LEVEL
    ]
