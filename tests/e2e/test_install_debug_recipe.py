"""The node debug recipe of docs/install.md (removing a stale top-level CNI config), its kubectl commands
run as written against the real apiserver with the real kubectl; the test plays the kubelet that runs
the debug pod (there is none), talosctl's lines are left out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

from webhook.dev.controlplane import ControlPlane, eventually

INSTALL_MD = Path(__file__).resolve().parents[2] / "docs" / "install.md"


def documented_commands(node: str) -> str:
    text = INSTALL_MD.read_text()
    step = text[text.index("**A cluster that already ran Cilium**"):]
    match = re.search(r"```sh\n(.*?)```", step, re.S)
    assert match is not None, "the step has no sh block"
    return "\n".join(line for line in match.group(1).replace("<node>", node).splitlines()
                     if not line.strip().startswith("talosctl"))


def debug_pods(cp: ControlPlane, node: str) -> list[dict[str, Any]]:
    out = cp.kubectl("get", "pods", "-n", "kube-system", "-o", "json").stdout
    pods: list[dict[str, Any]] = json.loads(out)["items"]
    return [p for p in pods if p["metadata"]["name"].startswith(f"node-debugger-{node}-")]


def test_the_debug_recipe_removes_the_file_and_leaves_no_pod_behind(controlplane: ControlPlane) -> None:
    cp = controlplane
    node = f"node-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    ran: list[dict[str, Any]] = []

    def kubelet() -> None:
        """Runs the debug pod to completion as far as the apiserver can tell: its phase Succeeded."""
        [pod] = eventually(lambda: debug_pods(cp, node), what="the debug pod", timeout=60)
        ran.append(pod)
        cp.kubectl("patch", "pod", "-n", "kube-system", pod["metadata"]["name"], "--subresource=status",
                   "--type=merge", "-p", json.dumps({"status": {"phase": "Succeeded"}}))

    thread = threading.Thread(target=kubelet, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig), "PATH": f"{cp.bin_dir}{os.pathsep}{os.environ['PATH']}"}
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", documented_commands(node)], env=env,
                                capture_output=True, text=True, timeout=120)
        thread.join(60)
        assert result.returncode == 0, result.stderr
        assert debug_pods(cp, node) == []
        [pod] = ran
        assert pod["spec"]["nodeName"] == node
        [container] = pod["spec"]["containers"]
        assert [*container.get("command", []), *container.get("args", [])] == [
            "rm", "-fv", "/host/etc/cni/net.d/05-cilium.conflist"]
        assert any(v.get("hostPath", {}).get("path") == "/" for v in pod["spec"]["volumes"])  # the host at /host
    finally:
        cp.kubectl("delete", "node", node, check=False)
