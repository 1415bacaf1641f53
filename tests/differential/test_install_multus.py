"""The Multus DaemonSet's install-multus-binary init container: Multus v4.3.0's own install_multus run
as the manifests run it (its command, its user, no capability at all, no privilege escalation) into a
temporary directory standing for the host's /opt/cni/bin. Upstream's manifest runs it privileged with
Bidirectional mount propagation; neither is needed for what it does."""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from webhook.dev.controlplane import ControlPlane

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
#: Where the Multus image holds install_multus and the binaries it copies (cmd/install_multus).
IMAGE_BIN = "/usr/src/multus-cni/bin"


def init_container(cp: ControlPlane) -> tuple[dict[str, Any], dict[str, Any]]:
    """The init container as the base builds it, and the DaemonSet's pod spec."""
    docs = [d for d in yaml.safe_load_all(cp.kubectl("kustomize", str(MANIFESTS / "base")).stdout) if d]
    [ds] = [d for d in docs if d["kind"] == "DaemonSet" and d["metadata"]["name"] == "kube-multus-ds"]
    spec = ds["spec"]["template"]["spec"]
    [container] = [c for c in spec["initContainers"] if c["name"] == "install-multus-binary"]
    return container, spec


def test_install_multus_needs_neither_privilege_nor_mount_propagation(
        controlplane: ControlPlane, install_multus: Path, tmp_path: Path, require: Callable[[str], NoReturn]) -> None:
    container, spec = init_container(controlplane)
    context = container["securityContext"]
    assert not context.get("privileged")
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert [m.get("mountPropagation") for m in container["volumeMounts"]] == [None]
    [mount] = container["volumeMounts"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["hostPath"]["path"] == "/opt/cni/bin"
    command = container["command"]
    assert command[0] == f"{IMAGE_BIN}/install_multus"
    assert command[command.index("-d") + 1] == mount["mountPath"]

    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            require(f"{tool} is not installed (the test runs install_multus without capabilities)")
    if context["runAsUser"] != 0 or not Path("/usr/src").is_dir():
        require("the test runs install_multus as root, over /usr/src in a mount namespace of its own")
    # The host's /opt/cni/bin: root's, 0755, with an older multus-shim in place (an upgrade).
    host_bin = tmp_path / "opt-cni-bin"
    host_bin.mkdir(mode=0o755)
    (host_bin / "multus-shim").write_text("#!/bin/sh\necho old shim\n")
    image_bin = tmp_path / "image-bin"
    image_bin.mkdir()
    for name in ("multus-shim", "passthru"):
        (image_bin / name).write_text(f"#!/bin/sh\necho {name} v4.3.0\n")
        (image_bin / name).chmod(0o755)
    args = [str(install_multus), *[str(host_bin) if a == mount["mountPath"] else a for a in command[1:]]]
    # The image's binaries at the image's path, seen by this process alone; then no capability in any
    # set, no way to gain one, the container's user: what the securityContext leaves the container.
    script = (f"mount -t tmpfs none /usr/src && mkdir -p {IMAGE_BIN} && cp -p {image_bin}/* {IMAGE_BIN}/ && "
              f"exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all --ambient-caps=-all "
              f"--reuid={context['runAsUser']} --regid=0 --clear-groups -- \"$@\"")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args],
                            capture_output=True, text=True, timeout=60)
    if "mount:" in result.stderr and result.returncode != 0:
        require(f"cannot mount in a mount namespace of its own: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "multus multus-shim copy succeeded!" in result.stdout
    assert sorted(p.name for p in host_bin.iterdir()) == ["multus-shim", "passthru"]  # no temp file left
    for name in ("multus-shim", "passthru"):
        installed = host_bin / name
        assert installed.read_text() == f"#!/bin/sh\necho {name} v4.3.0\n"
        assert stat.S_IMODE(installed.stat().st_mode) == 0o755
