"""The uninstall cleanup against the cache the real Multus v4.3.0 keeps of a sandbox (its thin plugin,
cmd/multus, ADD and DEL of a pod in the module's real apiserver, with the real CNI plugins v1.10.0 in
a network namespace); a temporary directory stands in for the node's file system."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from webhook.dev.controlplane import ControlPlane

NAMESPACE = "uninstall-real"
CONTAINER_ID = "4f1c0ffee0ddba11"


def ip_netns(*args: str) -> None:
    subprocess.run(["ip", "netns", *args], check=True, capture_output=True)


@pytest.fixture
def pod_netns(cni_bin: Path) -> Iterator[str]:
    """An empty network namespace for the pod (``cni_bin`` first: its checks for root and ip)."""
    name = f"mwu{os.getpid()}"
    ip_netns("add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def host_local(subnet: str, data_dir: Path) -> dict[str, object]:
    return {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": str(data_dir)}


def multus(command: str, binary: Path, config: dict[str, object], cni_bin: Path, netns: str,
           container_id: str, pod_uid: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": container_id, "CNI_NETNS": f"/var/run/netns/{netns}", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(cni_bin),
           "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME=web-0;"
                       f"K8S_POD_INFRA_CONTAINER_ID={container_id};K8S_POD_UID={pod_uid}"}
    return subprocess.run([str(binary)], input=json.dumps(config), env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def uninstall(host: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook.cli", "uninstall", "--host-root", str(host)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def node(cluster: ControlPlane, tmp_path: Path) -> Path:
    """The node's file system after install step 1 (Cilium's config at the top level), and the NAD
    "lab" (a tap device, an address from host-local) in the module's apiserver."""
    host = tmp_path / "host"
    (host / "etc/cni/net.d").mkdir(parents=True)
    (host / "etc/cni/net.d/05-cilium.conflist").write_text("{}")
    (host / "opt/cni/bin").mkdir(parents=True)
    nad = {"cniVersion": "1.0.0", "name": "lab", "type": "tap", "ipam": host_local("10.77.0.0/24", tmp_path / "lab")}
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NAMESPACE}},
        {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
         "metadata": {"name": "lab", "namespace": NAMESPACE}, "spec": {"config": json.dumps(nad)}}]}))
    return host


def added(cluster: ControlPlane, multus_thin: Path, cni_bin: Path, netns: str, host: Path,
          annotations: dict[str, str]) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Pod web-0 created with ``annotations`` and ADDed through the real Multus; the function runs
    Multus again for the same sandbox (``"DEL"``)."""
    cluster.kubectl("-n", NAMESPACE, "delete", "pod", "web-0", "--ignore-not-found")
    pod = json.loads(cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": NAMESPACE, "annotations": annotations},
        "spec": {"automountServiceAccountToken": False,
                 "containers": [{"name": "web", "image": "registry.example.com/web:1"}]}})).stdout)
    config = {"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
              "kubeconfig": str(cluster.kubeconfig), "cniDir": str(host / "var/lib/cni/multus"),
              "delegates": [{"cniVersion": "1.0.0", "name": "cilium", "plugins": [
                  {"type": "tap", "ipam": host_local("10.78.0.0/24", host.parent / "primary")}]}]}

    def run(command: str) -> subprocess.CompletedProcess[str]:
        result = multus(command, multus_thin, config, cni_bin, netns, CONTAINER_ID, pod["metadata"]["uid"])
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    run("ADD")
    return run


def test_the_cleanup_keeps_the_record_of_a_real_multus_add_until_its_del(
        cluster: ControlPlane, multus_thin: Path, cni_bin: Path, pod_netns: str, node: Path) -> None:
    """docs/install.md, Uninstall step 0 skipped on a node: a pod's secondary network is still
    attached. Only Multus's record says what its DEL must release (here, host-local's address)."""
    multus_again = added(cluster, multus_thin, cni_bin, pod_netns, node, {"k8s.v1.cni.cncf.io/networks": "lab"})
    addresses = node.parent / "lab" / "lab"
    assert list(addresses.glob("10.77.0.*")), "host-local handed out no address"
    # The runtime's mount of the pod's namespace, where the cleanup DaemonSet mounts that directory.
    (node / "var/run/netns").mkdir(parents=True)
    (node / "var/run/netns" / pod_netns).write_text("")

    before = sorted(str(p.relative_to(node)) for p in node.rglob("*"))
    kept = uninstall(node)
    assert kept.returncode == 1, kept.stderr
    assert (f"  container {CONTAINER_ID} (pod {NAMESPACE}/web-0): {NAMESPACE}/lab\n"
            f"    live: its network namespace /var/run/netns/{pod_netns} is still there\n") in kept.stderr
    assert "stale:" not in kept.stderr
    assert "Nothing was removed." in kept.stderr
    assert sorted(str(p.relative_to(node)) for p in node.rglob("*")) == before

    # The pod deleted while Multus still runs: its DEL reads the record, releases the address, and
    # removes the record; the cleanup then goes on.
    multus_again("DEL")
    assert not list(addresses.glob("10.77.0.*"))
    done = uninstall(node)
    assert done.returncode == 0, done.stderr
    assert "removed /var/lib/cni/multus" in done.stderr


def test_the_record_of_a_pod_on_the_default_network_alone_does_not_stop_the_cleanup(
        cluster: ControlPlane, multus_thin: Path, cni_bin: Path, pod_netns: str, node: Path) -> None:
    """Multus records every sandbox it sets up; Cilium's own DEL tears this one down in full."""
    added(cluster, multus_thin, cni_bin, pod_netns, node, {})
    assert (node / "var/lib/cni/multus" / CONTAINER_ID).is_file()
    done = uninstall(node)
    assert done.returncode == 0, done.stderr
    assert "removed /var/lib/cni/multus" in done.stderr


def test_a_record_left_by_a_del_without_the_daemon_is_named_stale_for_discarding(
        cluster: ControlPlane, multus_thin: Path, multus_shim: Path, cni_bin: Path, pod_netns: str, node: Path,
        tmp_path: Path) -> None:
    """The pod goes while the Multus daemon is down (restarted, upgraded): the real shim's DEL
    reports success without reaching it, so the runtime never sends DEL again and the record stays
    with its address allocated, for a pod that no longer exists."""
    added(cluster, multus_thin, cni_bin, pod_netns, node, {"k8s.v1.cni.cncf.io/networks": "lab"})
    cluster.kubectl("-n", NAMESPACE, "delete", "pod", "web-0", "--wait=false")
    shim = multus("DEL", multus_shim, {"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus-shim",
                                       "daemonSocketDir": str(tmp_path / "no-daemon")},
                  cni_bin, pod_netns, CONTAINER_ID, "gone")
    assert shim.returncode == 0, shim.stdout + shim.stderr
    assert (node / "var/lib/cni/multus" / CONTAINER_ID).is_file()
    assert list((node.parent / "lab" / "lab").glob("10.77.0.*")), "the address is still allocated"

    # The runtime counted the sandbox as torn down and removed its namespace; the cleanup sees where
    # it was. Without that directory it cannot tell, and says how to.
    unknown = uninstall(node)
    assert unknown.returncode == 1, unknown.stderr
    assert f"  container {CONTAINER_ID} (pod {NAMESPACE}/web-0): {NAMESPACE}/lab\n" in unknown.stderr
    assert "stale:" not in unknown.stderr
    assert "live:" not in unknown.stderr
    assert "`crictl pods --id <container>`" in unknown.stderr
    assert ("the addresses it holds were never released, and deleting pods frees nothing. Release them in the "
            "IPAM, then discard the records: set DISCARD_MULTUS_ATTACHMENTS=true") in unknown.stderr

    (node / "var/run/netns").mkdir(parents=True)
    stale = uninstall(node)
    assert stale.returncode == 1, stale.stderr
    assert (f"  container {CONTAINER_ID} (pod {NAMESPACE}/web-0): {NAMESPACE}/lab\n"
            f"    stale: its pod is gone (/var/run/netns/{pod_netns} no longer exists), the addresses it holds were "
            f"never released: {NAMESPACE}/lab; discard with DISCARD_MULTUS_ATTACHMENTS=true after releasing them\n"
            ) in stale.stderr
    assert (node / "var/lib/cni/multus" / CONTAINER_ID).is_file()
