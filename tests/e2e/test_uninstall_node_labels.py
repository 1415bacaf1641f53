"""The uninstall step of docs/install.md that removes the controller's node labels, run as written
against the real apiserver with the real kubectl (and jq)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from webhook.dev.controlplane import ControlPlane
from webhook.names import BINARY_LABEL_PREFIX, READY_LABEL

INSTALL_MD = Path(__file__).resolve().parents[2] / "docs" / "install.md"


def documented_step() -> str:
    text = INSTALL_MD.read_text()
    step = text[text.index("**Remove the node labels the controller set**"):]
    match = re.search(r"```sh\n(.*?)```", step, re.S)
    assert match is not None, "the step has no sh block"
    return match.group(1)


def test_the_documented_command_removes_our_node_labels_and_only_ours(
        controlplane: ControlPlane, require: Callable[[str], NoReturn]) -> None:
    if shutil.which("jq") is None:
        require("jq is not installed (the documented command uses it)")
    ours = {READY_LABEL: "true", BINARY_LABEL_PREFIX + "macvlan": "true", BINARY_LABEL_PREFIX + "multus-shim": "true"}
    theirs = {"team": "blue", "example.com/cni.multus-webhook.io": "x"}
    names = [f"node-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    nodes = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": names[0], "labels": {**ours, **theirs}}},
             {"apiVersion": "v1", "kind": "Node", "metadata": {"name": names[1], "labels": theirs}}]
    controlplane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    try:
        env = {**os.environ, "KUBECONFIG": str(controlplane.kubeconfig),
               "PATH": f"{controlplane.bin_dir}{os.pathsep}{os.environ['PATH']}"}
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", documented_step()], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        for name in names:
            labels = json.loads(controlplane.kubectl("get", "node", name, "-o", "json").stdout)["metadata"]["labels"]
            assert {k: v for k, v in labels.items() if not k.startswith("kubernetes.io/")} == theirs
    finally:
        controlplane.kubectl("delete", "node", *names, check=False)
