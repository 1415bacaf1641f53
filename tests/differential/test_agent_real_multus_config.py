"""The node agent against the 00-multus.conf the real Multus v4.3.0 daemon writes (its config manager,
hack/multus/multus-write-config): the delegate it names, by the conf dir as its container mounts it,
is the file the agent checks in the host's conf dir, wherever the host keeps that."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from webhook.agent.probe import PRIMARY, READY, HostLayout, evaluate, read_host
from webhook.agent.standin import StandInHost
from webhook.node.multusconfig import render_text

TEMPLATE = Path(__file__).resolve().parents[2] / "manifests" / "base" / "multus" / "daemon-config.json"
K3S_CONF_DIR = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
#: What Multus v4.3.0 accepts as a delegate (CheckVersionCompatibility), as flannel and Cilium write it.
PRIMARY_CONFIG = '{"cniVersion": "1.0.0", "name": "primary", "plugins": [{"type": "bridge"}]}\n'


@pytest.mark.parametrize("conf_dir", ["/etc/cni/net.d", K3S_CONF_DIR])
@pytest.mark.parametrize(("primary", "setting"), [
    ("10-flannel.conflist", ""),  # Multus's auto search
    ("cilium/05-cilium.conflist", "cilium/05-cilium.conflist"),  # primaryCniConfigFile, the manifests' way
])
def test_the_agent_checks_the_delegate_the_real_daemon_names(
        multus_write_config: Path, tmp_path: Path, conf_dir: str, primary: str, setting: str) -> None:
    host = StandInHost(HostLayout(cni_conf_dir=conf_dir))
    try:
        host.make_ready("b")
        for name in ("00-multus.conf", "05-cilium.conflist"):
            host.remove_config(name)
        host.write_config(primary, PRIMARY_CONFIG)
        # The daemon's container, its conf dir mounted at a path of its own (a link stands in for the
        # mount), and our manifests' daemon config pointing it there.
        mounted = tmp_path / "container" / "host" / "etc" / "cni" / "net.d"
        mounted.parent.mkdir(parents=True)
        mounted.symlink_to(host.path(conf_dir))
        daemon_config = json.loads(render_text(TEMPLATE.read_text().replace(
            '"/host/etc/cni/net.d"', json.dumps(str(mounted))), setting))
        assert (daemon_config["cniConfigDir"], daemon_config["multusAutoconfigDir"]) == (str(mounted), str(mounted))
        (tmp_path / "daemon-config.json").write_text(json.dumps(daemon_config))
        subprocess.run([str(multus_write_config), str(tmp_path / "daemon-config.json")], check=True,
                       capture_output=True, timeout=60)
        written = json.loads((host.path(conf_dir) / "00-multus.conf").read_text())
        assert written["clusterNetwork"] == f"{mounted}/{primary}"  # the container's path, not the host's

        agent = replace(host.layout, multus_autoconfig_dir=str(mounted))
        c = {x.type: x for x in evaluate(read_host(agent), agent).conditions}
        assert (c[PRIMARY].status, c[PRIMARY].reason, c[READY].status) == (True, "Found", True), c[READY].message
        assert c[PRIMARY].message == (f"the primary config {conf_dir}/{primary} (Multus's delegate, named in "
                                      "00-multus.conf) exists")
        host.remove_config(primary)
        c = {x.type: x for x in evaluate(read_host(agent), agent).conditions}
        assert (c[PRIMARY].status, c[PRIMARY].reason, c[READY].status) == (False, "Missing", False)
    finally:
        host.cleanup()
