"""The manifests: every overlay builds with `kubectl kustomize` and is accepted by the real apiserver
(`kubectl apply --dry-run=server`); RBAC is checked on the real apiserver by impersonating each
ServiceAccount."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from webhook.agent.probe import HostLayout
from webhook.dev.controlplane import ControlPlane
from webhook.node.cleanup import NETNS_DIR, NETNS_DIRS
from webhook.server import serve_forever

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
BUILDS = ["base", *sorted(f"overlays/{p.name}" for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())]
STAND_INS = Path(__file__).with_name("stand-in-crds.yaml")
WEBHOOK_SA = "system:serviceaccount:multus-webhook:multus-webhook"
AGENT_SA = "system:serviceaccount:multus-webhook:multus-webhook-agent"
MULTUS_SA = "system:serviceaccount:kube-system:multus"


def build(cp: ControlPlane, path: str) -> list[dict[str, Any]]:
    out = cp.kubectl("kustomize", str(MANIFESTS / path)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def serve_args(docs: list[dict[str, Any]]) -> list[str]:
    args: list[str] = find(docs, "Deployment", "multus-webhook")["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


@pytest.fixture(scope="module")
def cluster(controlplane: ControlPlane) -> ControlPlane:
    """The control plane with our namespace applied for real and the third-party CRD stand-ins."""
    controlplane.kubectl("apply", "-f", str(MANIFESTS / "base" / "namespace.yaml"))
    controlplane.kubectl("apply", "-f", str(STAND_INS))
    controlplane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(STAND_INS))
    return controlplane


@pytest.mark.parametrize("path", BUILDS)
def test_every_build_is_accepted_by_the_apiserver(cluster: ControlPlane, path: str) -> None:
    docs = build(cluster, path)
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                             input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}), check=False)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == len(docs)


@pytest.mark.parametrize("path", BUILDS)
def test_every_object_carries_the_label_uninstall_selects(cluster: ControlPlane, path: str) -> None:
    """docs/install.md deletes the ConfigMaps of earlier settings by this label: kustomize's labels
    do not reach what a component adds or generates unless the component sets them too."""
    unlabelled = [f"{d['kind']}/{d['metadata']['name']}" for d in build(cluster, path)
                  if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") != "multus-webhook"]
    assert unlabelled == []


@pytest.mark.parametrize("path", BUILDS)
def test_every_image_is_pinned(cluster: ControlPlane, path: str) -> None:
    for doc in build(cluster, path):
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1], f"{image} has no tag"
            assert not image.endswith((":latest", "snapshot-thick")), image


def images_by_name(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Every container's image of the build, by name: the tags (or digests) each name runs with."""
    found: dict[str, set[str]] = {}
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            name, _, tag = container["image"].rpartition(":")
            found.setdefault(name, set()).add(tag)
    return found


def base_images(root: Path) -> dict[str, tuple[str, str]]:
    """The base's images: by kustomize name: the image name each is mapped to, and its tag."""
    config = yaml.safe_load((root / "base" / "kustomization.yaml").read_text())
    return {i["name"]: (i.get("newName", i["name"]), i["newTag"]) for i in config["images"]}


def copy_with_tags(tmp_path: Path, tags: dict[str, str]) -> Path:
    """A copy of manifests/ whose base's images: sets these kustomize names to these tags."""
    import shutil

    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    kustomization = copy / "base" / "kustomization.yaml"
    config = yaml.safe_load(kustomization.read_text())
    for image in config["images"]:
        image["newTag"] = tags.get(image["name"], image["newTag"])
    kustomization.write_text(yaml.safe_dump(config))
    return copy


def test_the_base_pins_every_image_of_every_overlay(cluster: ControlPlane, tmp_path: Path) -> None:
    """One place sets each image's tag: the base's images:, which by itself does not reach the
    containers components add (the Talos installer, the cleanup). A bumped tag left out of one of
    them would run two versions of our image over the one on-host record (installed.json)."""
    pinned = base_images(MANIFESTS)
    copy = copy_with_tags(tmp_path, {name: f"{tag}-bumped" for name, (_, tag) in pinned.items()})
    for path in BUILDS:
        for root, suffix in ((MANIFESTS, ""), (copy, "-bumped")):
            docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(root / path)).stdout) if d]
            found = images_by_name(docs)
            assert "ghcr.io/multus-webhook/multus-webhook" in found
            expected = {image: {tag + suffix} for image, tag in pinned.values()}
            assert found == {name: expected.get(name) for name in found}, f"{root}/{path}"


NODE_IMAGE = "multus-webhook-node"
WEBHOOK_IMAGE = "ghcr.io/multus-webhook/multus-webhook"


def pod_templates(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"] for d in docs
            if d["kind"] in ("Deployment", "DaemonSet")}


@pytest.mark.parametrize("path", BUILDS)
def test_a_new_webhook_image_does_not_roll_multus_and_a_new_node_image_rolls_nothing_else(
        cluster: ControlPlane, tmp_path: Path, path: str) -> None:
    """Our image runs in the Multus DaemonSet too (render-daemon-config, the Talos installer, the
    cleanup). Under the webhook's image name, every upgrade of the webhook rolled Multus on every node,
    each node without a top-level CNI config while its Multus pod restarts. Its own kustomize name
    (multus-webhook-node) lets the webhook, controller and agent move alone (docs/install.md, Upgrading)."""
    assert base_images(MANIFESTS)[NODE_IMAGE] == base_images(MANIFESTS)[WEBHOOK_IMAGE]
    before = pod_templates(build(cluster, path))
    multus = "DaemonSet/kube-multus-ds"
    for bumped, rolled in ((WEBHOOK_IMAGE, {"Deployment/multus-webhook", "DaemonSet/multus-webhook-agent"}),
                           (NODE_IMAGE, {multus})):
        root = copy_with_tags(tmp_path / bumped.replace("/", "_"), {bumped: "0.2.0"})
        after = pod_templates([d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(root / path)).stdout)
                               if d])
        assert {name for name in before if before[name] != after[name]} == rolled, f"{bumped} bumped"
        if bumped == NODE_IMAGE:
            spec = after[multus]["spec"]
            ours = [c for c in spec.get("initContainers", []) + spec["containers"]
                    if c["image"].startswith(f"{WEBHOOK_IMAGE}:")]
            assert ours
            assert all(c["image"] == f"{WEBHOOK_IMAGE}:0.2.0" for c in ours)


@pytest.mark.parametrize("overlay", ["talos-cilium", "talos-cilium-uninstall"])
def test_the_documented_images_override_reaches_every_container_of_ours(
        cluster: ControlPlane, tmp_path: Path, overlay: str) -> None:
    """docs/install.md, The image: one images: entry in the user's kustomization moves every container
    of ours, those of the Multus DaemonSet (multus-webhook-node) included, to the user's registry. It
    names no tag: the tags stay the base's, two of them when the webhook is upgraded alone (Upgrading),
    which a newTag there would have set back to one for every container."""
    split = copy_with_tags(tmp_path / "split", {WEBHOOK_IMAGE: "0.2.0"})
    (tmp_path / "kustomization.yaml").write_text(json.dumps({
        "resources": [os.path.relpath(split / "overlays" / overlay, tmp_path)],
        "images": [{"name": WEBHOOK_IMAGE, "newName": "registry.example.com/multus-webhook"}]}))
    docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(tmp_path)).stdout) if d]
    found = images_by_name(docs)
    assert WEBHOOK_IMAGE not in found
    assert found["registry.example.com/multus-webhook"] == {"0.1.0", "0.2.0"}
    multus = find(docs, "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    assert {c["image"] for c in multus.get("initContainers", []) + multus["containers"]
            if "multus-webhook" in c["image"]} == {"registry.example.com/multus-webhook:0.1.0"}
    webhook = find(docs, "Deployment", "multus-webhook")["spec"]["template"]["spec"]
    assert {c["image"] for c in webhook["containers"]} == {"registry.example.com/multus-webhook:0.2.0"}


def test_the_upgrade_applies_the_webhook_configurations_only_once_the_new_webhook_rolled_out(
        cluster: ControlPlane) -> None:
    """docs/install.md, Upgrading, its commands as written (with the real kubectl, --dry-run=server): the
    first apply of the overlay leaves out the webhook configurations and nothing else; they come with
    the second, after the wait for the webhook Deployment. Applied at once, new configurations could
    send the old replicas requests only the new webhook serves, failing closed."""
    text = (REPO / "docs" / "install.md").read_text()
    section = text[text.index("## Upgrading"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    overlay = [i for i, line in enumerate(lines) if line.startswith("kubectl apply -k manifests/overlays/")]
    waited = lines.index("kubectl -n multus-webhook rollout status deploy/multus-webhook")
    assert len(overlay) == 2
    assert overlay[0] < waited < overlay[1]

    def applied(line: str) -> set[str]:
        args = [a.strip("'") for a in line.split()[1:]]
        result = subprocess.run([str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args,
                                 "--dry-run=server", "-o", "name"], cwd=REPO, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        return set(result.stdout.split())

    configurations = {"validatingwebhookconfiguration.admissionregistration.k8s.io/multus-webhook",
                      "mutatingwebhookconfiguration.admissionregistration.k8s.io/multus-webhook"}
    first, everything = applied(lines[overlay[0]]), applied(lines[overlay[1]])
    assert configurations <= everything
    assert first == everything - configurations
    assert "deployment.apps/multus-webhook" in first


def test_base_shape(cluster: ControlPlane) -> None:
    docs = build(cluster, "base")
    validating = find(docs, "ValidatingWebhookConfiguration", "multus-webhook")
    mutating = find(docs, "MutatingWebhookConfiguration", "multus-webhook")
    ops = {h["name"]: h["rules"][0]["operations"] for h in validating["webhooks"]}
    assert ops == {"nads.multus-webhook.io": ["CREATE", "UPDATE", "DELETE"],
                   "networkprofiles.multus-webhook.io": ["CREATE", "UPDATE"],
                   "pods.multus-webhook.io": ["CREATE", "UPDATE"],
                   "pod-bindings.multus-webhook.io": ["CREATE"]}
    assert [h["rules"][0]["operations"] for h in mutating["webhooks"]] == [["CREATE"]]
    for hook in validating["webhooks"] + mutating["webhooks"]:
        assert hook["sideEffects"] == "None"
        assert hook["timeoutSeconds"] == 5
        if hook["name"].startswith(("pods.", "pod-bindings.")):
            assert hook["matchConditions"]
            assert hook["namespaceSelector"] == {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["multus-webhook"]}]}
        else:
            assert "namespaceSelector" not in hook
    deployment = find(docs, "Deployment", "multus-webhook")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert find(docs, "PodDisruptionBudget", "multus-webhook")["spec"]["minAvailable"] == 1
    policy = find(docs, "NetworkPolicy", "multus-webhook")["spec"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8443]
    agent = find(docs, "DaemonSet", "multus-webhook-agent")["spec"]["template"]["spec"]
    # Read-only on the host; writable only for its ready file, in memory.
    emptydirs = {v["name"] for v in agent["volumes"] if "emptyDir" in v}
    assert emptydirs == {"agent-state"}
    assert all(m["readOnly"] for m in agent["containers"][0]["volumeMounts"] if m["name"] not in emptydirs)
    # Every host path the agent reads (HostLayout.mounted, the dhcp daemon's /run/cni among them) is
    # mounted at that path under its host root.
    host_paths = {v["name"]: v["hostPath"]["path"] for v in agent["volumes"] if "hostPath" in v}
    mounted = {m["mountPath"]: host_paths.get(m["name"]) for m in agent["containers"][0]["volumeMounts"]}
    assert all(mounted.get(f"/host{path}") == path for path in HostLayout().mounted), mounted
    # uid 0 for the daemon's 0700 socket directory, and nothing more.
    assert agent["securityContext"]["runAsUser"] == 0
    assert agent["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert agent["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert agent["containers"][0]["args"] == ["agent", "--host-root=/host",
                                              "--ready-file=/run/multus-webhook-agent/published"]
    multus = find(docs, "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    assert multus["priorityClassName"] == "system-node-critical"
    assert multus["tolerations"] == [{"operator": "Exists"}]
    assert multus["initContainers"][0]["command"][0] == "/usr/src/multus-cni/bin/install_multus"


def test_a_stopping_or_lost_webhook_replica_fails_no_review(cluster: ControlPlane) -> None:
    """failurePolicy is Fail. A deleted replica keeps answering while the Service's endpoints and the
    apiserver's keep-alive connections move away (preStop), then drains within the grace period; a
    replica on a lost node is replaced in 30s, not the default 300s."""
    pod = find(build(cluster, "base"), "Deployment", "multus-webhook")["spec"]["template"]["spec"]
    sleep = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep >= 5
    drain = inspect.signature(serve_forever).parameters["shutdown_timeout"].default
    assert sleep + drain < pod["terminationGracePeriodSeconds"]
    assert {(t["key"], t["tolerationSeconds"]) for t in pod["tolerations"]} == {
        ("node.kubernetes.io/not-ready", 30), ("node.kubernetes.io/unreachable", 30)}


def test_the_multus_daemon_is_neither_throttled_nor_killed_by_a_quick_start_limit(cluster: ControlPlane) -> None:
    """Every pod of a rebooted node is set up at once through the daemon: upstream's 50Mi limit gets
    it OOM-killed then (multus-cni #1346, #1416), and a CPU limit slows every pod's network setup."""
    multus = find(build(cluster, "base"), "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    limits = multus["containers"][0]["resources"]["limits"]
    assert "cpu" not in limits
    assert limits["memory"].endswith("Mi")
    assert int(limits["memory"][:-2]) >= 256


def test_the_image_default_cert_dir_is_the_manifests(cluster: ControlPlane) -> None:
    """The Dockerfile's CMD serves from the directory the Deployment passes and mounts."""
    dockerfile = (MANIFESTS.parent / "Dockerfile").read_text()
    [cmd] = [json.loads(line[len("CMD "):]) for line in dockerfile.splitlines() if line.startswith("CMD ")]
    image_dir = cmd[cmd.index("--cert-dir") + 1]
    deployment = find(build(cluster, "base"), "Deployment", "multus-webhook")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert f"--cert-dir={image_dir}" in container["args"]
    assert {"name": "certs", "mountPath": image_dir} in container["volumeMounts"]


def primary_setting(docs: list[dict[str, Any]]) -> str:
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("multus-primary-cni-")]
    multus = find(docs, "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    refs = [e["valueFrom"]["configMapKeyRef"]["name"] for c in multus.get("initContainers", []) + multus["containers"]
            for e in c.get("env", []) if "configMapKeyRef" in e.get("valueFrom", {})]
    assert refs == [cm["metadata"]["name"]], "the DaemonSet must read the generated ConfigMap"
    value: str = cm["data"]["primaryCniConfigFile"]
    # No copy of it anywhere else: the agent checks the delegate Multus names in 00-multus.conf (its
    # empty env is there for overlays that still copy the value, as earlier READMEs said to).
    agent = find(docs, "DaemonSet", "multus-webhook-agent")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in agent["env"]}["PRIMARY_CNI_CONFIG_FILE"] in ("", value)
    assert not [a for a in agent["args"] if a.startswith("--primary-cni-config")]
    return value


def test_the_primary_cni_is_one_setting(cluster: ControlPlane) -> None:
    assert primary_setting(build(cluster, "base")) == ""
    assert primary_setting(build(cluster, "overlays/cilium")) == "cilium/05-cilium.conflist"
    cilium = build(cluster, "overlays/cilium")
    assert not [d for d in cilium if d["kind"] == "NetworkPolicy"]
    assert find(cilium, "CiliumNetworkPolicy", "multus-webhook")["spec"]["ingress"][0]["fromEntities"] == [
        "kube-apiserver"]


def test_the_cilium_values_keep_its_config_where_multus_watches_it(cluster: ControlPlane) -> None:
    """Cilium writes its config where the overlay's primaryCniConfigFile names it, leaves 00-multus.conf
    alone, and keeps its config when its agent stops: Multus v4.3.0 watches that file (its
    readinessindicatorfile), and its removal makes the daemon remove 00-multus.conf and exit
    (docs/failure-modes.md, "The primary CNI's config is removed")."""
    values = yaml.safe_load((MANIFESTS / "overlays" / "cilium" / "cilium-values.yaml").read_text())
    primary = PurePosixPath("/etc/cni/net.d") / primary_setting(build(cluster, "overlays/cilium"))
    assert values["cni"] == {"exclusive": False, "confPath": str(primary.parent), "uninstall": False}


def test_the_cilium_readme_shows_the_values_file() -> None:
    """The README's copy of cilium-values.yaml says what the file does: a setting missing there (it lacked
    uninstall: false) is one a reader who writes their values from it leaves out."""
    readme = (MANIFESTS / "overlays" / "cilium" / "README.md").read_text()
    shown = re.search(r"\(cilium-values\.yaml\):\n\n```yaml\n(.*?)```", readme, re.DOTALL)
    assert shown is not None, "the README's cilium-values.yaml snippet"
    values = yaml.safe_load((MANIFESTS / "overlays" / "cilium" / "cilium-values.yaml").read_text())
    assert yaml.safe_load(shown.group(1)) == values


@pytest.mark.parametrize("copied", [False, True], ids=["setting-only", "as-earlier-readmes"])
def test_an_overlay_that_sets_only_the_primary_cni_setting_makes_a_ready_agent(
        cluster: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copied: bool) -> None:
    """What overlays/cilium/README.md tells a Calico user to write, and nothing more: Multus renders its
    daemon config from it, and the agent, built from the same overlay, finds the primary config in its
    subdirectory instead of reporting the node not ready (and every gated pod Pending) for ever. An
    overlay written from an earlier README, which also copies the value into the agent's env, still
    builds (kustomize fails on a replacement without its target) and still makes a ready agent."""
    from webhook.agent.probe import PRIMARY, READY, evaluate, read_host
    from webhook.agent.standin import StandInHost, multus_config_delegating_to
    from webhook.cli import parser
    from webhook.commands.agent import layout_from
    from webhook.node.multusconfig import render_text

    overlay = tmp_path / "calico"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(json.dumps({
        "resources": [os.path.relpath(MANIFESTS / "base", overlay)],
        "configMapGenerator": [{"name": "multus-primary-cni", "namespace": "kube-system", "behavior": "merge",
                                "literals": ["primaryCniConfigFile=calico/10-calico.conflist"]}],
        **({"replacements": [{
            "source": {"kind": "ConfigMap", "name": "multus-primary-cni", "namespace": "kube-system",
                       "fieldPath": "data.primaryCniConfigFile"},
            "targets": [{"select": {"kind": "DaemonSet", "name": "multus-webhook-agent"}, "fieldPaths": [
                "spec.template.spec.containers.[name=agent].env.[name=PRIMARY_CNI_CONFIG_FILE].value"]}]}]}
           if copied else {})}))
    docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(overlay)).stdout) if d]
    primary = primary_setting(docs)
    assert primary == "calico/10-calico.conflist"

    # The Multus pod's render-daemon-config init container, with the ConfigMaps of this build.
    [template] = [d["data"]["daemon-config.json"] for d in docs
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("multus-daemon-config-")]
    daemon_config = json.loads(render_text(template, primary))
    # The agent's container of this build, as its CLI parses it.
    agent = find(docs, "DaemonSet", "multus-webhook-agent")["spec"]["template"]["spec"]["containers"][0]
    monkeypatch.delenv("PRIMARY_CNI_CONFIG_FILE", raising=False)
    for env in agent["env"]:
        monkeypatch.setenv(env["name"], env.get("value", "node-1"))
    args = parser(agent["args"]).parse_args(agent["args"])
    host = StandInHost(layout_from(args))
    try:
        host.make_ready("boot-1")
        host.remove_config("05-cilium.conflist")
        host.write_config(primary)  # Calico's config in its subdirectory, as the setting says
        # What the daemon writes with this daemon config (webhook/agent/standin.py).
        host.write_config("00-multus.conf", multus_config_delegating_to(
            daemon_config["multusMasterCNI"], daemon_config["multusAutoconfigDir"]))
        report = evaluate(read_host(host.layout), host.layout)
        conditions = {c.type: c for c in report.conditions}
        assert conditions[PRIMARY].status, conditions[PRIMARY].message
        assert "/etc/cni/net.d/calico/10-calico.conflist" in conditions[PRIMARY].message
        assert conditions[READY].status, conditions[READY].message
    finally:
        host.cleanup()


def test_talos_mounts_var_run_netns_and_installs_the_listed_plugins(cluster: ControlPlane) -> None:
    docs = build(cluster, "overlays/talos-cilium")
    multus = find(docs, "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in multus["volumes"]}
    assert volumes["host-run-netns"]["hostPath"]["path"] == "/var/run/netns/"
    installer = next(c for c in multus["initContainers"] if c["name"] == "install-cni-plugins")
    assert installer["args"][0] == "install-cni"
    # The plugins come from our image, where the Dockerfile puts those built from hack/cniplugins (the
    # ones the differential tests run), not from another image with another release of them.
    # The node image (multus-webhook-node), as render-daemon-config runs it, not the Deployment's:
    # a new webhook image must not roll Multus.
    [render] = [c for c in multus["initContainers"] if c["name"] == "render-daemon-config"]
    node_image = render["image"]
    assert installer["image"] == node_image
    annotations = find(docs, "DaemonSet", "kube-multus-ds")["metadata"]["annotations"]
    assert annotations["multus-webhook.io/node-image"] == node_image
    assert {c["image"] for c in multus["initContainers"]} == {node_image, multus["containers"][0]["image"]}
    copied = re.search(r"^COPY --from=cni-plugins /cni-plugins (\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert copied is not None
    assert f"--source={copied.group(1)}" in installer["args"]
    [plugins] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("multus-cni-plugins")]
    from webhook.node.installer import PluginList, parse_plugin_list

    assert parse_plugin_list(plugins["data"]["plugins"]) == PluginList(["macvlan", "ipvlan"])
    assert volumes["cni-plugin-list"]["configMap"]["name"] == plugins["metadata"]["name"]


def test_render_daemon_config_tidies_the_hosts_conf_dir_it_mounts(cluster: ControlPlane, tmp_path: Path) -> None:
    """The Multus pod's render-daemon-config removes a stale top-level copy of the primary config from
    the host's /etc/cni/net.d: the directory it names is the host's, and it runs as the root that owns
    it. Run as the build gives it, with a temporary directory for the mount."""
    multus = find(build(cluster, "overlays/talos-cilium"), "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    [render] = [c for c in multus["initContainers"] if c["name"] == "render-daemon-config"]
    volumes = {v["name"]: v for v in multus["volumes"]}
    mounts = {m["mountPath"]: m for m in render["volumeMounts"]}
    args = render["args"]
    conf_dir = args[args.index("--host-conf-dir") + 1]
    assert volumes[mounts[conf_dir]["name"]]["hostPath"]["path"] == "/etc/cni/net.d"
    assert not mounts[conf_dir].get("readOnly")
    assert render["securityContext"]["runAsUser"] == 0
    assert render["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # As the container runs it, paths moved under tmp_path.
    host = tmp_path / "host"
    (host / "etc/cni/net.d/cilium").mkdir(parents=True)
    for when, name in enumerate(("05-cilium.conflist", "cilium/05-cilium.conflist")):  # the leftover older
        (host / "etc/cni/net.d" / name).write_text('{"name": "cilium", "plugins": [{"type": "cilium-cni"}]}')
        os.utime(host / "etc/cni/net.d" / name, (1_700_000_000 + when, 1_700_000_000 + when))
    moved = [str(tmp_path / a.lstrip("/")) if a.startswith("/") else a for a in args]
    template = MANIFESTS / "base" / "multus" / "daemon-config.json"
    moved[moved.index("--template") + 1] = str(template)
    result = subprocess.run([sys.executable, "-m", "webhook.cli", *moved], capture_output=True, text=True,
                            env={**os.environ, "PRIMARY_CNI_CONFIG_FILE": "cilium/05-cilium.conflist"})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (host / "etc/cni/net.d").iterdir()) == ["cilium"]


@pytest.mark.parametrize("path", BUILDS)
def test_no_build_lists_a_crd(cluster: ControlPlane, path: str) -> None:
    """`kubectl delete -k` of an install overlay (or a GitOps prune of it) deletes what the build
    lists: a CRD there takes every object of its kind with it, the NADs of other software (upstream
    Multus, SR-IOV, KubeVirt) and of before us, and the users' NetworkProfiles. The CRDs are in
    manifests/crds, applied once before the overlay."""
    assert [d["metadata"]["name"] for d in build(cluster, path) if d["kind"] == "CustomResourceDefinition"] == []


@pytest.mark.parametrize("path", BUILDS)
def test_kubectl_delete_of_an_overlay_would_delete_no_crd(cluster: ControlPlane, path: str) -> None:
    """The operator's reflex, as the apiserver answers it (server-side dry run), with the CRDs
    installed from manifests/crds as the test control plane does."""
    result = cluster.kubectl("delete", "-k", str(MANIFESTS / path), "--dry-run=server", "--ignore-not-found",
                             "-o", "name", check=False)
    deleted = result.stdout.split()
    assert "namespace/multus-webhook" in deleted, result.stderr
    assert [name for name in deleted if name.startswith("customresourcedefinition")] == []


def test_the_crds_are_their_own_kustomization_and_those_of_data_survive_gitops(cluster: ControlPlane) -> None:
    crds = {d["metadata"]["name"]: d for d in build(cluster, "crds")}
    assert {d["kind"] for d in crds.values()} == {"CustomResourceDefinition"}
    assert set(crds) == {"network-attachment-definitions.k8s.cni.cncf.io", "networkprofiles.multus-webhook.io",
                         "multusnodestates.multus-webhook.io"}
    # NADs and NetworkProfiles are what users wrote: neither Flux's prune nor Argo CD's prune or app
    # deletion may delete their CRDs.
    for name in ("network-attachment-definitions.k8s.cni.cncf.io", "networkprofiles.multus-webhook.io"):
        annotations = crds[name]["metadata"]["annotations"]
        assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
        options = {o.strip() for o in annotations["argocd.argoproj.io/sync-options"].split(",")}
        assert {"Prune=false", "Delete=false"} <= options
    # Multus's CRD, shared with other software: our label would let a cleanup by label take it.
    assert "labels" not in crds["network-attachment-definitions.k8s.cni.cncf.io"]["metadata"]
    result = cluster.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS / "crds"), check=False)
    assert result.returncode == 0, result.stderr


def test_uninstall_replaces_multus_with_the_cleanup(cluster: ControlPlane) -> None:
    docs = build(cluster, "overlays/talos-cilium-uninstall")
    daemonset = find(docs, "DaemonSet", "kube-multus-ds")
    template = daemonset["spec"]["template"]
    # Multus's container name: a user's patch of kube-multus lands on the cleanup (test below).
    assert [c["name"] for c in template["spec"]["containers"]] == ["kube-multus"]
    assert "initContainers" not in template["spec"]
    cleanup = template["spec"]["containers"][0]
    assert cleanup["args"][:3] == ["uninstall", "--host-root=/host", "--idle"]
    # The node image, the installer's, which the base recorded on the DaemonSet before the patch replaced
    # the containers that ran it.
    assert cleanup["image"] == daemonset["metadata"]["annotations"]["multus-webhook.io/node-image"]
    assert cleanup["image"].startswith("ghcr.io/multus-webhook/multus-webhook:")
    # The rollout stops at the first node the cleanup leaves unable to start pods: one node at a time,
    # each Ready only once its cleanup finished there (test_the_cleanup_pod_is_ready_only_...).
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                   "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert "startupProbe" not in cleanup
    # What to fix, in `kubectl describe pod` of a pod in CrashLoopBackOff.
    assert cleanup["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # Its sandbox must not need the CNI config it removes (or the one missing until the primary is reverted).
    assert template["spec"]["hostNetwork"] is True
    assert primary_setting(docs) == "cilium/05-cilium.conflist"


def own_kustomization(directory: Path, components: list[str]) -> Path:
    """A kustomization of the user's over talos-cilium, as a private registry needs it: its images
    renamed, a pull secret, and the kube-multus container given more memory."""
    directory.mkdir()
    patch = {"apiVersion": "apps/v1", "kind": "DaemonSet",
             "metadata": {"name": "kube-multus-ds", "namespace": "kube-system"},
             "spec": {"template": {"spec": {"imagePullSecrets": [{"name": "regcred"}],
                                            "containers": [{"name": "kube-multus",
                                                            "resources": {"limits": {"memory": "300Mi"}}}]}}}}
    (directory / "kustomization.yaml").write_text(json.dumps({
        "resources": [os.path.relpath(MANIFESTS / "overlays/talos-cilium", directory)],
        "components": [os.path.relpath(MANIFESTS / "components" / c, directory) for c in components],
        "patches": [{"target": {"kind": "DaemonSet", "name": "kube-multus-ds"}, "patch": json.dumps(patch)}],
        "images": [{"name": "ghcr.io/multus-webhook/multus-webhook",
                    "newName": "registry.example.com/multus-webhook"}]}))
    return directory


def test_uninstall_added_to_a_kustomization_that_patches_the_multus_container_applies(
        cluster: ControlPlane, tmp_path: Path) -> None:
    """docs/install.md, Uninstall step 2: "add manifests/components/uninstall to its components". The
    user's patches come after the component: a patch of kube-multus must land on the cleanup, not add
    an image-less kube-multus next to it (the apiserver refused the DaemonSet)."""
    built = {name: [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(
        own_kustomization(tmp_path / name, components))).stdout) if d]
        for name, components in (("install", []), ("uninstall", ["uninstall"]))}
    uninstall = built["uninstall"]
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                             input=json.dumps({"apiVersion": "v1", "kind": "List", "items": uninstall}))
    assert result.returncode == 0, result.stderr
    # The DaemonSet for real, as `kubectl apply -k` changes the installed one into the cleanup.
    for name in ("install", "uninstall"):
        result = cluster.kubectl("apply", "-f", "-", check=False,
                                 input=json.dumps(find(built[name], "DaemonSet", "kube-multus-ds")))
        assert result.returncode == 0, result.stderr
    try:
        live = json.loads(cluster.kubectl("-n", "kube-system", "get", "ds", "kube-multus-ds", "-o", "json").stdout)
    finally:
        cluster.kubectl("-n", "kube-system", "delete", "ds", "kube-multus-ds", "--wait=false")
    pod = live["spec"]["template"]["spec"]
    [cleanup] = pod["containers"]
    assert cleanup["args"][0] == "uninstall"
    assert cleanup["image"].startswith("registry.example.com/multus-webhook:")
    assert cleanup["resources"]["limits"]["memory"] == "300Mi"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert "initContainers" not in pod


# Multus v4.3.0 waits this long for its readinessindicatorfile, then exits 1 (pkg/types/conf.go,
# GetReadinessIndicatorFile: PollImmediate(1s, 45s)).
MULTUS_READINESS_INDICATOR_WAIT = 45


def probe(container: dict[str, Any], paths: dict[str, Path], argv0: str | None = None) -> bool:
    """Whether ``container``'s exec readiness probe succeeds here, with each of its container paths
    (``paths``' keys, which it must name) read at the path given, and its program replaced by ``argv0``."""
    command = list(container["readinessProbe"]["exec"]["command"])
    if argv0 is not None:
        command[0] = argv0
    for inside, here in paths.items():
        assert any(inside in arg for arg in command), f"the probe does not read {inside}: {command}"
        command = [arg.replace(inside, str(here)) for arg in command]
    return subprocess.run(command, check=False).returncode == 0


@pytest.mark.parametrize("path", [p for p in BUILDS if "uninstall" not in p])
def test_a_multus_pod_is_ready_only_once_its_daemon_wrote_the_multus_config(
        cluster: ControlPlane, tmp_path: Path, path: str) -> None:
    """A Multus pod replaced in a rollout takes 00-multus.conf off its node (the old daemon removes it);
    a new daemon that never writes it again (its primary's config never appears: it waits 45 s, then
    exits 1, again and again) must stop the rollout there, not be Ready as it starts (no probe) and
    let the next node lose its config too."""
    docs = build(cluster, path)
    daemonset = find(docs, "DaemonSet", "kube-multus-ds")
    assert daemonset["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 1
    assert daemonset["spec"]["minReadySeconds"] > MULTUS_READINESS_INDICATOR_WAIT
    [daemon] = [c for c in daemonset["spec"]["template"]["spec"]["containers"] if c["name"] == "kube-multus"]
    [template] = [d["data"]["daemon-config.json"] for d in docs
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("multus-daemon-config-")]
    # Multus v4.3.0 writes it into cniConfigDir (pkg/server/config/manager.go newManager), not into
    # multusAutoconfigDir, where it looks for the primary's config.
    written = str(PurePosixPath(json.loads(template)["cniConfigDir"]) / "00-multus.conf")
    # The file the kubelet creates at each start of the container (a new one at every restart).
    started = daemon.get("terminationMessagePath", "/dev/termination-log")
    conf, marker = tmp_path / "00-multus.conf", tmp_path / "termination-log"
    paths = {written: conf, started: marker}
    assert not probe(daemon, paths), "ready with no Multus config at all"
    conf.write_text("{}")
    marker.write_text("")
    os.utime(conf, (1000, 1000))  # left by a daemon killed before this container started
    os.utime(marker, (2000, 2000))
    assert not probe(daemon, paths), "ready with the config of an earlier daemon"
    os.utime(conf, (2000.5, 2000.5))  # written by this container's daemon
    assert probe(daemon, paths)


def test_an_agent_pod_is_ready_once_its_run_published_the_node_state(cluster: ControlPlane, tmp_path: Path) -> None:
    """Without a probe `rollout status` of the agents succeeded while agents exited. The probe tests
    for the file the run writes after its first MultusNodeState write (tests/e2e: the agent's side)."""
    agent = find(build(cluster, "base"), "DaemonSet", "multus-webhook-agent")["spec"]["template"]["spec"]
    [container] = agent["containers"]
    interpreter = re.search(r"printf '#!(\S+)\\n", (REPO / "Dockerfile").read_text())
    assert interpreter is not None
    assert container["readinessProbe"]["exec"]["command"][0] == interpreter.group(1)
    [ready_file] = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--ready-file=")]
    assert any(PurePosixPath(m["mountPath"]) in PurePosixPath(ready_file).parents for m in container["volumeMounts"]
               if m["name"] in {v["name"] for v in agent["volumes"] if "emptyDir" in v})
    here = tmp_path / "published"
    assert not probe(container, {ready_file: here}, sys.executable)
    here.write_text("")
    assert probe(container, {ready_file: here}, sys.executable)


@pytest.mark.parametrize("path", [p for p in BUILDS if "uninstall" in p])
def test_the_cleanup_sees_the_runtimes_network_namespaces_where_it_looks_for_them(
        cluster: ControlPlane, path: str) -> None:
    """A record whose namespace is gone is named stale (webhook.node.cleanup); the cleanup can tell
    only with the host's directory mounted under its --host-root, and its later changes propagated."""
    spec = find(build(cluster, path), "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    [cleanup] = spec["containers"]
    [host_root] = [a.split("=", 1)[1] for a in cleanup["args"] if a.startswith("--host-root=")]
    [mount] = [m for m in cleanup["volumeMounts"] if m["mountPath"] == f"{host_root}/{NETNS_DIR}"]
    assert mount["mountPropagation"] == "HostToContainer"
    assert mount["readOnly"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert PurePosixPath(volume["hostPath"]["path"]) in NETNS_DIRS


@pytest.mark.parametrize("path", [p for p in BUILDS if "uninstall" in p])
def test_the_cleanup_pod_is_ready_only_once_its_cleanup_finished_and_left_the_node_working(
        cluster: ControlPlane, tmp_path: Path, path: str) -> None:
    """A cleanup that fails exits 1 in a fraction of a second: a container without a probe is Ready for
    that moment, enough for the rollout (maxUnavailable 1) to go on to the next node. The probe's file
    is written only by a run that left the node working, and outlives a restart of the container: a
    later run removes it before anything else."""
    daemonset = find(build(cluster, path), "DaemonSet", "kube-multus-ds")
    assert daemonset["spec"]["minReadySeconds"] > 0
    [cleanup] = daemonset["spec"]["template"]["spec"]["containers"]
    # The image has no shell: the probe runs the interpreter the image runs our CLI with.
    interpreter = re.search(r"printf '#!(\S+)\\n", (REPO / "Dockerfile").read_text())
    assert interpreter is not None
    assert cleanup["readinessProbe"]["exec"]["command"][0] == interpreter.group(1)
    [ready_file] = [a.split("=", 1)[1] for a in cleanup["args"] if a.startswith("--ready-file=")]
    # On a volume: the root file system is read-only.
    assert any(PurePosixPath(m["mountPath"]) in PurePosixPath(ready_file).parents for m in cleanup["volumeMounts"])
    here = tmp_path / "finished"
    host = tmp_path / "host"
    (host / "etc/cni/net.d").mkdir(parents=True)
    (host / "etc/cni/net.d/00-multus.conf").write_text("{}")

    def run_cleanup() -> int:
        args = [a for a in cleanup["args"] if a != "--idle"]  # it would wait for SIGTERM after a clean run
        args = [a.replace("/host", str(host)) if a.startswith("--host-root=") else a.replace(ready_file, str(here))
                for a in args]
        return subprocess.run([sys.executable, "-m", "webhook.cli", *args], check=False,
                              stderr=subprocess.DEVNULL).returncode

    paths = {ready_file: here}
    assert not probe(cleanup, paths, sys.executable)
    here.write_text("")  # from an earlier run of the container, on the volume that outlives it
    assert run_cleanup() == 1  # no CNI config left at the top level: this node cannot start pods
    assert not probe(cleanup, paths, sys.executable)
    (host / "etc/cni/net.d/05-cilium.conflist").write_text("{}")  # the primary's config back
    assert run_cleanup() == 0
    assert probe(cleanup, paths, sys.executable)


@pytest.mark.parametrize("components", [["pod-repair", "cert-manager"], ["cert-manager", "pod-repair"]])
def test_cert_manager_and_pod_repair_combine_in_either_order(
        cluster: ControlPlane, tmp_path: Path, components: list[str]) -> None:
    root = Path(os.path.relpath(MANIFESTS, tmp_path))
    (tmp_path / "kustomization.yaml").write_text(json.dumps({
        "resources": [str(root / "base")], "components": [str(root / "components" / c) for c in components]}))
    docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(tmp_path)).stdout) if d]
    assert serve_args(docs) == ["serve", "--port=8443", "--cert-dir=/var/run/multus-webhook/certs", "--repair"]


def test_cert_manager_turns_self_management_off(cluster: ControlPlane) -> None:
    docs = build(cluster, "overlays/cert-manager")
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        annotations = find(docs, kind, "multus-webhook")["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == "multus-webhook/multus-webhook-tls"
    pod = find(docs, "Deployment", "multus-webhook")["spec"]["template"]["spec"]
    assert "--self-managed-certs" not in pod["containers"][0]["args"]
    assert pod["volumes"][0]["secret"]["secretName"] == "multus-webhook-tls"
    assert find(docs, "Certificate", "multus-webhook-tls")["spec"]["secretName"] == "multus-webhook-tls"
    assert not [d for d in docs if d["metadata"]["name"] == "multus-webhook-certs"]


# --- RBAC, on the real apiserver, by impersonation -------------------------------------------------

RBAC_KINDS = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


@pytest.fixture(scope="module")
def rbac(cluster: ControlPlane) -> ControlPlane:
    """The RBAC objects of the base applied for real."""
    items = [d for d in build(cluster, "base") if d["kind"] in RBAC_KINDS]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return cluster


def can(cp: ControlPlane, who: str, verb: str, resource: str, namespace: str | None = None,
        subresource: str | None = None) -> bool:
    args = ["auth", "can-i", verb, resource, "--as", who]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args += ["--subresource", subresource]
    result = cp.kubectl(*args, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


WEBHOOK_MAY = [
    ("list", "nodes", None), ("watch", "nodes", None), ("patch", "nodes", None),
    ("list", "network-attachment-definitions.k8s.cni.cncf.io", None),
    ("watch", "network-attachment-definitions.k8s.cni.cncf.io", None),
    ("list", "networkprofiles.multus-webhook.io", None), ("watch", "networkprofiles.multus-webhook.io", None),
    ("list", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("watch", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("delete", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("list", "pods", None), ("watch", "pods", None),
    ("list", "resourcequotas", None), ("watch", "resourcequotas", None),
    *[(verb, "configmaps/multus-webhook-policy", "multus-webhook") for verb in ("get", "list", "watch")],
    ("get", "secrets/multus-webhook-tls", "multus-webhook"), ("update", "secrets/multus-webhook-tls", "multus-webhook"),
    ("create", "secrets", "multus-webhook"),
    ("get", "validatingwebhookconfigurations/multus-webhook", None),
    ("patch", "validatingwebhookconfigurations/multus-webhook", None),
    ("patch", "mutatingwebhookconfigurations/multus-webhook", None),
    ("create", "leases.coordination.k8s.io", "multus-webhook"),
    ("get", "leases.coordination.k8s.io/multus-webhook-controller", "multus-webhook"),
    ("update", "leases.coordination.k8s.io/multus-webhook-controller", "multus-webhook"),
    ("create", "events", "default"), ("create", "events", "apps"), ("patch", "events", "apps"),
    ("list", "events", "default"),
    *[("get", f"customresourcedefinitions.apiextensions.k8s.io/{crd}", None)
      for crd in ("network-attachment-definitions.k8s.cni.cncf.io", "networkprofiles.multus-webhook.io",
                  "multusnodestates.multus-webhook.io")],
]
WEBHOOK_MAY_NOT = [
    ("get", "secrets", "kube-system"), ("list", "secrets", "multus-webhook"),
    ("get", "secrets/other", "multus-webhook"), ("list", "secrets", None), ("get", "configmaps", "kube-system"),
    ("get", "configmaps/other", "multus-webhook"), ("list", "configmaps", "multus-webhook"),
    ("update", "configmaps/multus-webhook-policy", "multus-webhook"),
    ("patch", "validatingwebhookconfigurations/someone-else", None),
    ("create", "validatingwebhookconfigurations", None),
    ("delete", "pods", "default"), ("patch", "pods", "default"), ("update", "nodes", None), ("delete", "nodes", None),
    ("create", "network-attachment-definitions.k8s.cni.cncf.io", "default"),
    ("create", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("create", "resourcequotas", "default"), ("update", "resourcequotas", "default"),
    ("create", "leases.coordination.k8s.io", "kube-system"), ("create", "clusterrolebindings", None),
    # MultusNodeStates are read in the webhook's namespace only, Events are core/v1 only, and the
    # Lease is ours only.
    ("list", "multusnodestates.multus-webhook.io", None), ("watch", "multusnodestates.multus-webhook.io", "default"),
    ("get", "multusnodestates.multus-webhook.io", "default"),
    ("delete", "multusnodestates.multus-webhook.io", "default"),
    ("update", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("patch", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("create", "events.events.k8s.io", "default"),
    ("get", "leases.coordination.k8s.io/other", "multus-webhook"),
    ("update", "leases.coordination.k8s.io/other", "multus-webhook"),
    ("delete", "leases.coordination.k8s.io/multus-webhook-controller", "multus-webhook"),
    ("list", "leases.coordination.k8s.io", "multus-webhook"),
    # Our CRDs are read by name, to tell one not installed from one not served yet; no other.
    ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("get", "customresourcedefinitions.apiextensions.k8s.io/other.example.com", None),
    ("update", "customresourcedefinitions.apiextensions.k8s.io/networkprofiles.multus-webhook.io", None),
]
AGENT_MAY = [(verb, "multusnodestates.multus-webhook.io", "multus-webhook") for verb in ("get", "create")]
AGENT_MAY_NOT = [
    ("patch", "nodes", None), ("get", "nodes", None), ("patch", "pods", "default"), ("get", "pods", "default"),
    ("create", "multusnodestates.multus-webhook.io", "default"), ("delete", "multusnodestates.multus-webhook.io",
                                                                  "multus-webhook"),
    ("list", "multusnodestates.multus-webhook.io", None), ("get", "secrets", "multus-webhook"),
    ("get", "configmaps", "multus-webhook"), ("update", "multusnodestates.multus-webhook.io", "multus-webhook"),
    ("patch", "multusnodestates.multus-webhook.io", "multus-webhook"),
]
MULTUS_MAY = [
    ("list", "network-attachment-definitions.k8s.cni.cncf.io", None), ("watch", "pods", None),
    ("get", "pods", "default"), ("create", "events", "default"),
]
MULTUS_MAY_NOT = [
    ("create", "network-attachment-definitions.k8s.cni.cncf.io", "default"), ("delete", "pods", "default"),
    ("update", "pods", "default"), ("get", "secrets", "kube-system"), ("patch", "nodes", None),
    ("list", "resourceclaims.resource.k8s.io", None), ("get", "resourceslices.resource.k8s.io", None),
]


@pytest.mark.parametrize(("who", "verb", "resource", "namespace", "allowed"), [
    *[(WEBHOOK_SA, *c, True) for c in WEBHOOK_MAY], *[(WEBHOOK_SA, *c, False) for c in WEBHOOK_MAY_NOT],
    *[(AGENT_SA, *c, True) for c in AGENT_MAY], *[(AGENT_SA, *c, False) for c in AGENT_MAY_NOT],
    *[(MULTUS_SA, *c, True) for c in MULTUS_MAY], *[(MULTUS_SA, *c, False) for c in MULTUS_MAY_NOT],
])
def test_each_service_account_can_do_what_it_needs_and_nothing_more(
        rbac: ControlPlane, who: str, verb: str, resource: str, namespace: str | None, allowed: bool) -> None:
    assert can(rbac, who, verb, resource, namespace) is allowed, f"{who} {verb} {resource} in {namespace}"


@pytest.mark.parametrize(("who", "subresource", "verb", "allowed"), [
    (AGENT_SA, "status", "patch", True), (AGENT_SA, "status", "update", False),
    (MULTUS_SA, "status", "update", True),
])
def test_status_subresources(rbac: ControlPlane, who: str, subresource: str, verb: str, allowed: bool) -> None:
    resource = "multusnodestates.multus-webhook.io" if who == AGENT_SA else "pods"
    namespace = "multus-webhook" if who == AGENT_SA else "default"
    assert can(rbac, who, verb, resource, namespace, subresource) is allowed


def test_pod_repair_is_opt_in(rbac: ControlPlane) -> None:
    """The component turns repair on (serve --repair) and grants the evictions it makes, and no plain
    deletion (which would ignore PodDisruptionBudgets)."""
    assert not can(rbac, WEBHOOK_SA, "create", "pods", "default", "eviction")
    assert "--repair" not in serve_args(build(rbac, "base"))
    docs = build(rbac, "overlays/pod-repair")
    assert serve_args(docs) == [*serve_args(build(rbac, "base")), "--repair"]
    items = [d for d in docs if d["metadata"]["name"] == "multus-webhook-pod-repair"]
    assert len(items) == 2
    payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    rbac.kubectl("apply", "-f", "-", input=payload)
    try:
        assert can(rbac, WEBHOOK_SA, "create", "pods", "default", "eviction")
        assert not can(rbac, WEBHOOK_SA, "delete", "pods", "default")
        assert not can(rbac, AGENT_SA, "create", "pods", "default", "eviction")
    finally:
        rbac.kubectl("delete", "-f", "-", input=payload)


# An uninstall build runs the cleanup in place of the Multus daemon.
@pytest.mark.parametrize("path", [p for p in BUILDS if "uninstall" not in p])
def test_the_agent_maps_the_delegate_multus_names_to_the_host_dir_multus_mounts_there(
        cluster: ControlPlane, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon names its delegate by its multusAutoconfigDir, a path in its container: the agent of
    the same build is told that path, and looks in the host directory the daemon's container mounts
    there. Else the node's delegate is taken for one outside the conf dir (k3s: the agent's conf dir is
    /var/lib/rancher/k3s/agent/etc/cni/net.d, the daemon's /host/etc/cni/net.d still)."""
    from webhook.cli import parser
    from webhook.commands.agent import layout_from

    docs = build(cluster, path)
    [template] = [d["data"]["daemon-config.json"] for d in docs
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("multus-daemon-config-")]
    autoconfig = json.loads(template)["multusAutoconfigDir"]
    multus = find(docs, "DaemonSet", "kube-multus-ds")["spec"]["template"]["spec"]
    [daemon] = [c for c in multus["containers"] if c["name"] == "kube-multus"]
    [volume] = [m["name"] for m in daemon["volumeMounts"] if m["mountPath"] == autoconfig]
    [host_dir] = [v["hostPath"]["path"] for v in multus["volumes"] if v["name"] == volume]
    agent = find(docs, "DaemonSet", "multus-webhook-agent")["spec"]["template"]["spec"]["containers"][0]
    monkeypatch.setenv("NODE_NAME", "node-1")
    layout = layout_from(parser(agent["args"]).parse_args(agent["args"]))
    assert (layout.multus_autoconfig_dir, layout.cni_conf_dir) == (autoconfig, host_dir)


@pytest.mark.parametrize("path", BUILDS)
def test_every_container_of_our_image_is_given_arguments_our_cli_accepts(
    cluster: ControlPlane, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from webhook.cli import parser

    checked = 0
    for doc in build(cluster, path):
        pod_spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
            if "/multus-webhook:" not in container["image"]:
                continue
            argv = [*container.get("command", [])[1:], *container.get("args", [])]
            try:
                parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"{path}: {doc['kind']}/{doc['metadata']['name']} container {container['name']}: "
                            f"multus-webhook {' '.join(argv)}: {capsys.readouterr().err.strip()}")
            checked += 1
    assert checked > 0


def test_the_policy_configmap_watch_works_as_the_webhook_and_no_other_configmap_is_readable(rbac: ControlPlane) -> None:
    """The request the cache really makes (list with the name as fieldSelector), as its ServiceAccount."""
    as_webhook = ("-n", "multus-webhook", "--as", WEBHOOK_SA)
    rbac.kubectl("create", "configmap", "-n", "multus-webhook", "unrelated", "--from-literal=k=v", check=False)
    named = rbac.kubectl("get", "configmaps", *as_webhook, "--field-selector", "metadata.name=multus-webhook-policy",
                         check=False)
    assert named.returncode == 0, named.stderr
    everything = rbac.kubectl("get", "configmaps", *as_webhook, check=False)
    assert "forbidden" in everything.stderr
