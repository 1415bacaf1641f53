"""What the differential tests share: the real Multus v4.3.0, CNI plugins v1.10.0 and whereabouts v0.9.4,
built from hack/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from webhook.dev import cnisandbox
from webhook.dev.controlplane import ControlPlane

HACK = Path(__file__).resolve().parents[2] / "hack"
MULTUS_BUILD_SCRIPT = HACK / "multus" / "build.sh"
CNI_PLUGINS_BUILD_SCRIPT = HACK / "cniplugins" / "build.sh"
CNI_FOREIGN_BUILD_SCRIPT = HACK / "cniplugins" / "build-foreign.sh"
WHEREABOUTS_BUILD_SCRIPT = HACK / "whereabouts" / "build.sh"

#: Runs a pod's networks annotation (pod "pod" in namespace "default") through Multus's parser
#: (k8sclient.GetPodNetwork): its "networks", or its "error" and the "stage" ("parse") that failed.
RealMultusParser = Callable[[str], dict[str, Any]]

#: Runs a pod's networks annotation and the NADs it selects (each {"name", "config"}) through Multus:
#: the NADs are created in a namespace of their own in the module's real apiserver (``cluster``), the
#: pod is in that namespace, and Multus reads them from there (k8sclient.GetNetworkDelegates). Its
#: "networks" and "delegates", each with the "config" it hands to libcni; or its "error" and the
#: "stage" ("parse", "delegates") that failed.
RealMultus = Callable[[str, list[dict[str, str]]], dict[str, Any]]


def built(script: Path, what: str, require: Callable[[str], NoReturn]) -> Path:
    """The directory ``script`` builds ``what`` into (a cache outside the checkout, reused). Without a
    way to build it the tests are skipped, or fail under CI=true (``require``)."""
    try:
        out = subprocess.run(["bash", str(script)], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        # The build scripts reuse what they built before without Go; only a build needs the toolchain.
        if shutil.which("go") is None:
            require(f"no Go toolchain to build {what}")
        require(f"{script} failed: {exc.stderr.strip()[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def multus_delegates(require: Callable[[str], NoReturn]) -> Path:
    """The multus-delegates tool (hack/multus/multus-delegates), built on first use."""
    return built(MULTUS_BUILD_SCRIPT, "Multus v4.3.0", require) / "multus-delegates"


@pytest.fixture(scope="session")
def multus_write_config(require: Callable[[str], NoReturn]) -> Path:
    """The multus-write-config tool (hack/multus/multus-write-config), built on first use."""
    return built(MULTUS_BUILD_SCRIPT, "Multus v4.3.0", require) / "multus-write-config"


@pytest.fixture(scope="session")
def install_multus(require: Callable[[str], NoReturn]) -> Path:
    """Multus v4.3.0's install_multus (cmd/install_multus, from hack/multus), built on first use."""
    return built(MULTUS_BUILD_SCRIPT, "Multus v4.3.0", require) / "install_multus"


@pytest.fixture(scope="session")
def multus_thin(require: Callable[[str], NoReturn]) -> Path:
    """Multus v4.3.0's thin plugin (cmd/multus, from hack/multus), built on first use."""
    return built(MULTUS_BUILD_SCRIPT, "Multus v4.3.0", require) / "multus"


@pytest.fixture(scope="session")
def multus_shim(require: Callable[[str], NoReturn]) -> Path:
    """Multus v4.3.0's thick-plugin shim (cmd/multus-shim, from hack/multus), built on first use."""
    return built(MULTUS_BUILD_SCRIPT, "Multus v4.3.0", require) / "multus-shim"


@pytest.fixture(scope="session")
def cni_bin(require: Callable[[str], NoReturn]) -> Path:
    """The CNI plugins v1.10.0 (hack/cniplugins), built on first use; running them needs root and ip."""
    if os.geteuid() != 0:
        require("the differential test runs CNI plugins in network namespaces and needs root")
    if shutil.which("ip") is None:
        require("iproute2 (`ip`) is not installed")
    return built(CNI_PLUGINS_BUILD_SCRIPT, "github.com/containernetworking/plugins v1.10.0", require)


@pytest.fixture(scope="session")
def cni_foreign(require: Callable[[str], NoReturn]) -> Path:
    """The dummy plugin v1.10.0 built for 386, mips and s390x (./<GOARCH>/dummy, from
    hack/cniplugins/build-foreign.sh), on first use: binaries to read, not to run."""
    return built(CNI_FOREIGN_BUILD_SCRIPT, "github.com/containernetworking/plugins v1.10.0 for 386, mips, s390x",
                 require)


@pytest.fixture(scope="session")
def whereabouts_dir(require: Callable[[str], NoReturn]) -> Path:
    """The whereabouts IPAM plugin v0.9.4 (./whereabouts) and the version's CRDs (./crds), from
    hack/whereabouts, built on first use."""
    return built(WHEREABOUTS_BUILD_SCRIPT, "github.com/k8snetworkplumbingwg/whereabouts v0.9.4", require)


@pytest.fixture
def sandbox(cni_bin: Path, tmp_path: Path) -> Iterator[cnisandbox.Sandbox]:
    """A node and a pod network namespace of the test's own (webhook.dev.cnisandbox); ``cni_bin`` first,
    for its checks that the machine can run plugins at all."""
    with cnisandbox.sandbox(tmp_path) as box:
        yield box


def _run(tool: Path, request: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run([str(tool), *args], input=json.dumps(request), capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"multus-delegates exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="session")
def real_multus_parser(multus_delegates: Path) -> RealMultusParser:
    def run(annotation: str) -> dict[str, Any]:
        return _run(multus_delegates, {"annotation": annotation, "namespace": "default"})

    return run


@pytest.fixture(scope="module")
def real_multus(multus_delegates: Path, cluster: ControlPlane) -> RealMultus:
    """The module's own control plane (no webhook registered with it: the NADs go in as they are)."""
    def run(annotation: str, nads: list[dict[str, str]]) -> dict[str, Any]:
        namespace = f"multus-{uuid.uuid4().hex[:10]}"
        objects = {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            *({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
               "metadata": {"name": nad["name"], "namespace": namespace}, "spec": {"config": nad["config"]}}
              for nad in nads)]}
        cluster.kubectl("create", "-f", "-", input=json.dumps(objects))
        try:
            return _run(multus_delegates, {"annotation": annotation, "namespace": namespace},
                        "-kubeconfig", str(cluster.kubeconfig))
        finally:
            # No namespace controller runs: the NADs are deleted here, the namespace stays Terminating
            # until the module's control plane stops.
            cluster.kubectl("delete", "-f", "-", "--wait=false", input=json.dumps(objects))

    return run
