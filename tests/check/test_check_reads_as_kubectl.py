"""check reads a manifest into the object the apiserver sends a webhook for it under `kubectl apply`.

Differential: the real kubectl applies each file to the real apiserver, where a webhook registered by
URL (webhook.dev.stubhook) records the object of every review and refuses it (nothing is stored, so
every file is a CREATE); check's reading of the same file (webhook.documents, then check.apply.created:
kubectl's create drops the nulls of maps) must be that object. What kubectl refuses to send, check must
refuse with exit 2 naming the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_check_agrees_with_webhook import ask_webhook, assert_agree, mutated_then_validated

from webhook.check.apply import created
from webhook.dev.controlplane import ControlPlane, WebhookServer
from webhook.dev.stubhook import Review, StubWebhook, refuse
from webhook.documents import DocumentError, load_manifests

# Plain scalars whose reading differs between YAML 1.1 (PyYAML) and go-yaml v2 (kubectl), or between
# YAML and what the apiserver hands on: dates, words taken as booleans, numbers in the forms Go parses,
# what only looks like a number (base 60, a MAC), "=" (YAML 1.1's value tag), nulls and keys.
SCALARS = [
    "2024-01-01", "2024-01-01T10:00:00Z", "2001-12-14 21:59:43.10", "y", "Y", "n", "yes", "No", "on", "OFF",
    "true", "False", "~", "null", "Null", "", "1e6", "1E6", "1e+6", "1.0e6", "1000000.0", "-0", "-0.0", "0755",
    "0o17", "0x1F", "+0x1F", "0b101", "-0b101", "08", "1_000", "1:20", "10:20:30:40:50:59", "=", ".5", "+1",
    "1.", "1e21", "1e-7", "123456789012345678", "9223372036854775807", "9223372036854775808",
    "18446744073709551615", "18446744073709551616", "-9223372036854775809", "99999999999999999999999",
    "1e400", "0x", "1__0", ".5e1_0", ".5e-1_0", ".5E+1_0", ".5_0e1_0", ".5e1__0", ".5e+_1", ".5e1_", "<<",
    "!!str 12", "!!float 3", "!!int '7'", "!!binary aGk=", "!!set {a, b}",
    "!local 12", "'1e6'", '"y"',
]
KEYS = ["y", "n", "on", "off", "1", "0x1F", "1.5", "1e6", "0.1", "1234567.0", "-2", "true", "2024-01-01", "="]
NETWORK = ("apiVersion: multus-webhook.io/v1alpha1\nkind: NetworkProfile\nmetadata: {{name: {name}}}\nspec:\n"
           "  networks:\n  - name: {network}\n    mac: 10:20:30:40:50:59\n"
           "    bandwidth: {{ingressRate: 1000000.0, ingressBurst: 1e6, egressRate: 0x10, egressBurst: 0755}}\n"
           "    cni-args:\n{args}\n")


def profile(name: str, args: dict[str, str], network: str = "2024-01-01") -> str:
    return NETWORK.format(name=name, network=network, args="\n".join(f"      {k}: {v}" for k, v in args.items()))


@pytest.fixture(scope="module")
def recorder(controlplane: ControlPlane) -> Iterator[tuple[ControlPlane, str, StubWebhook]]:
    """A namespace whose pods and NetworkProfiles go to a webhook that records and refuses them."""
    controlplane.install_crds()
    namespace = f"reads-{uuid.uuid4().hex[:8]}"
    controlplane.kubectl("create", "namespace", namespace)
    rules = [{"apiGroups": ["", "multus-webhook.io"], "apiVersions": ["*"], "resources": ["pods", "networkprofiles"],
              "operations": ["CREATE"], "scope": "Namespaced"}]

    def answer(review: Review) -> dict[str, Any]:
        return refuse(403, "recorded")

    stub = StubWebhook(controlplane, f"records-{namespace}", rules, answer,
                       namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}})
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    try:
        stub.start(lambda: controlplane.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe),
                                                check=False))
        yield controlplane, namespace, stub
    finally:
        stub.stop()
        controlplane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def kubectl_apply(cp: ControlPlane, namespace: str, path: Path | None, data: bytes | None = None
                  ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(cp.bin_dir / "kubectl"), "--kubeconfig", str(cp.kubeconfig), "-n", namespace,
                           "apply", "-f", str(path) if path else "-"], input=data, capture_output=True, timeout=60)


def sent(recorder: tuple[ControlPlane, str, StubWebhook], path: Path, data: bytes | None = None
         ) -> list[dict[str, Any]]:
    """The objects the apiserver sent the webhook when kubectl applied ``path`` (or ``data`` on stdin)."""
    cp, namespace, stub = recorder
    before = len(stub.reviews())
    result = kubectl_apply(cp, namespace, None if data is not None else path, data)
    assert b"recorded" in result.stderr, result.stderr.decode()
    return [dict(r.object) for r in stub.reviews()[before:]]


def as_sent(obj: dict[str, Any]) -> dict[str, Any]:
    """What of the recorded object comes from the manifest (the apiserver adds the rest)."""
    metadata = obj["metadata"]
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    kept = {"name": metadata["name"], **({"annotations": annotations} if annotations else {}),
            **({"labels": metadata["labels"]} if metadata.get("labels") else {})}
    spec = obj["spec"]
    if obj["kind"] == "Pod":
        spec = {"hostNetwork": spec.get("hostNetwork", False), "containers": [
            {"name": c["name"], "image": c["image"], **({"env": c["env"]} if c.get("env") else {})}
            for c in spec["containers"]]}
    return {"kind": obj["kind"], "metadata": kept, "spec": spec}


def check_reads(path: Path) -> list[dict[str, Any]]:
    """The objects check judges for ``path``: as read, then as created (none is in the cluster)."""
    return [as_sent(created({**d.obj, "metadata": {k: v for k, v in d.obj["metadata"].items() if k != "namespace"}}))
            for d in load_manifests(str(path))]


def assert_read_alike(recorder: tuple[ControlPlane, str, StubWebhook], path: Path) -> None:
    received = [as_sent(o) for o in sent(recorder, path)]
    assert received, path.read_text()
    assert check_reads(path) == received


def test_tricky_scalars_read_as_the_webhook_receives_them(recorder: tuple[ControlPlane, str, StubWebhook],
                                                          tmp_path: Path) -> None:
    # Every scalar as a value in cni-args and in a list there (the empty one cannot be written in a flow
    # list); the network's name is a date.
    path = tmp_path / "scalars.yaml"
    path.write_text(profile("scalars", {f"v{i}": s for i, s in enumerate(SCALARS)}
                            | {"list": "[" + ", ".join(s for s in SCALARS if s) + "]"}))
    assert_read_alike(recorder, path)


def test_keys_read_as_the_webhook_receives_them(recorder: tuple[ControlPlane, str, StubWebhook],
                                                tmp_path: Path) -> None:
    # Merges too: go-yaml sets a merged mapping's pairs where the "<<" stands (PyYAML lets the mapping's
    # own keys win), and aliasing just under go-yaml's limit (one more level is past it: below).
    merges = {"merge1": "{a: 1, <<: {a: 2, b: 3}}", "merge2": "{<<: [{a: 1}, {a: 2, b: 2}], b: 3}"}
    path = tmp_path / "keys.yaml"
    path.write_text(profile("keys", {k: f"k{i}" for i, k in enumerate(KEYS)} | merges | aliases(2), network="net"))
    assert_read_alike(recorder, path)


def test_json_numbers_read_as_the_webhook_receives_them(recorder: tuple[ControlPlane, str, StubWebhook],
                                                        tmp_path: Path) -> None:
    numbers = ["1e6", "1000000.0", "1.5", "-0", "-0.0", "1e21", "1e-7", "9223372036854775807", "9223372036854775808",
               "18446744073709551616", "123456789012345678901234567890", "0.1", "2.5e3"]
    args = ", ".join(f'"n{i}": {n}' for i, n in enumerate(numbers))
    path = tmp_path / "numbers.json"
    path.write_text('{"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile", "metadata": {"name": '
                    '"numbers"}, "spec": {"networks": [{"name": "net", "bandwidth": {"ingressRate": 1000000.0, '
                    f'"ingressBurst": 1e6}}, "cni-args": {{{args}}}}}]}}}}\n')
    assert_read_alike(recorder, path)
    # The integer fields arrive as integers: what the rules judge as Multus decodes them.
    [obj] = check_reads(path)
    assert obj["spec"]["networks"][0]["bandwidth"] == {"ingressRate": 1000000, "ingressBurst": 1000000}
    assert all(type(v) is int for v in obj["spec"]["networks"][0]["bandwidth"].values())


POD = """apiVersion: v1
kind: Pod
metadata:
  name: p2024
  labels: {release: 2024-01-01}
  annotations: {k8s.v1.cni.cncf.io/networks: 2024-01-01, yes: "no", app: =}
spec:
  hostNetwork: y
  containers:
  - name: app
    image: busybox
    env: [{name: A, value: "on"}]
"""


def test_pod_read_as_the_webhook_receives_it(recorder: tuple[ControlPlane, str, StubWebhook], tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    assert_read_alike(recorder, path)
    [obj] = check_reads(path)
    assert obj["spec"]["hostNetwork"] is True
    assert obj["metadata"]["annotations"] == {"k8s.v1.cni.cncf.io/networks": "2024-01-01", "true": "no", "app": "="}


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_read_as_kubectl_reads_it(
    recorder: tuple[ControlPlane, str, StubWebhook], tmp_path: Path, encoding: str
) -> None:
    data = "\ufeff".encode(encoding) + POD.replace("p2024", "utf16").encode(encoding)
    path = tmp_path / "utf16.yaml"
    path.write_bytes(data)
    assert_read_alike(recorder, path)
    # From standard input too.
    received = [as_sent(o) for o in sent(recorder, path, data=data)]
    result = subprocess.run([sys.executable, "-m", "webhook.cli", "check", "-", "--output", "json"], input=data,
                            capture_output=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr.decode()
    assert [(r["kind"], r["name"]) for r in json.loads(result.stdout)["results"]] == [("Pod", "utf16")]
    assert received == check_reads(path)


# How kubectl cuts a YAML stream into documents (apimachinery's YAMLReader, then go-yaml reads the first
# document of each piece): the objects sent, in order, and the line check reports for each.
SPLIT = {
    # A separator with a comment right after the dashes, or spaces (a tab).
    "dash-comment.yaml": (f"{POD}---#c\n{POD}---\t\n{POD}", [1, 14, 27]),
    # Files saved with a UTF-8 byte order mark and joined: the mark starts a piece; a line of only a mark.
    "joined-boms.yaml": (f"\ufeff{POD}---\n\ufeff{POD}---\n\ufeff\n---\n{POD}", [1, 14, 29]),
    # go-yaml reads the first document of a piece: after "..." the rest of the piece is not read.
    "end-then-more.yaml": (f"{POD}...\n{POD}---\n{POD}...\nnot: [read\n", [1, 27]),
    # A separator first in its piece stays in it; a piece of comments only holds no object.
    "leading-separators.yaml": (f"---\n# nothing\n---\n---\n{POD}---\r\n{POD}", [5, 18]),
    # kubectl reads a text starting with "{" as JSON objects; where one is not JSON after a first, the
    # rest is YAML.
    "json-then-yaml.yaml": ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2024"},\n'
                            f' "spec": {{"containers": [{{"name": "c", "image": "i"}}]}}}}\n{POD}---\n{POD}',
                            [1, 3, 16]),
    # Any object with "items" is a list to kubectl, whatever its kind.
    "items-any-kind.yaml": ("apiVersion: v1\nkind: Pod\n"
                            "metadata: {name: holder}\nitems:\n"
                            + "".join(f"{'-' if i == 0 else ' '} {line}\n" for i, line in enumerate(POD.splitlines())),
                            [5]),
}


@pytest.mark.parametrize("name", sorted(SPLIT))
def test_documents_split_as_kubectl_splits_them(recorder: tuple[ControlPlane, str, StubWebhook], tmp_path: Path,
                                                name: str) -> None:
    text, lines = SPLIT[name]
    # Each object its own name, in order.
    parts = text.split("p2024")
    text = "".join(part + (f"split{i}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))
    path = tmp_path / name
    path.write_bytes(text.encode())
    assert_read_alike(recorder, path)
    assert [d.line for d in load_manifests(str(path))] == lines


def test_json_not_utf8_and_lone_surrogate_escapes_read_as_kubectl_reads_them(
    recorder: tuple[ControlPlane, str, StubWebhook], tmp_path: Path
) -> None:
    # Go's JSON decoder reads each byte that is no UTF-8 in a string, and an escape of half a surrogate
    # pair alone, as U+FFFD; an escaped backslash before "u" makes no escape.
    path = tmp_path / "go-strings.json"
    path.write_bytes(b'{"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile", "metadata": '
                     b'{"name": "gostrings"}, "spec": {"networks": [{"name": "net", "cni-args": {'
                     b'"a": "x\xff\xe2\x82y", '
                     b'"b": "\\ud83d", "c": "\\ud83d\\ude00", "d": "\\\\ud83d", "e": "\\ude00\\ud83d!", '
                     b'"\\udfff": ["\\ud800\\ud800\\udc00"]}}]}}')
    assert_read_alike(recorder, path)
    # A YAML file that is not UTF-8 stays refused, as kubectl (go-yaml) refuses it, and so does a binary.
    for name, data in (("latin1.yaml", POD.replace("p2024", "latin").encode() + b"x: \xff\n"),
                       ("binary.json", b"{\x00\xff\xfe\x80}")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DocumentError, match=rf"^{tmp_path / name}:\d+: not UTF-8 text: byte 0x"):
            load_manifests(str(tmp_path / name))


def aliases(levels: int) -> dict[str, str]:
    """Lists of ten, each level ten aliases of the one before: 10^levels strings once expanded."""
    return {"x0": "&a0 [" + ", ".join(["lol"] * 10) + "]"} | {
        f"x{i}": f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)}


REFUSED = {
    "alias-bomb.yaml": profile("bomb", aliases(8), network="net"),
    "aliases.yaml": profile("aliases", aliases(3), network="net"),
    "self.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: self}\nspec: &s {containers: [{name: c, image: i}], "
                 "x: *s}\n",
    "inf.yaml": profile("inf", {"a": ".inf"}, network="net"),
    "nan.yaml": profile("nan", {"a": ".nan"}, network="net"),
    "null-key.yaml": profile("nullkey", {"~": "x"}, network="net"),
    "uint-key.yaml": profile("uintkey", {"18446744073709551615": "x"}, network="net"),
    "map-key.yaml": profile("mapkey", {"? {a: 1}\n      ": "x"}, network="net"),
    "big.json": '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "x": 1e400}, '
                '"spec": {"containers": [{"name": "c", "image": "i"}]}}',
    "bad-int.yaml": profile("badint", {"a": "!!int abc"}, network="net"),
    # kubectl cuts the stream at lines starting with "---" before go-yaml reads a piece: a directive is a
    # piece without its document, other text after the dashes an error.
    "directive.yaml": "%YAML 1.1\n---\n" + POD.replace("p2024", "directive"),
    "tag-directive.yaml": "%TAG !e! tag:example.com,2000:\n---\n" + POD.replace("p2024", "tagdirective"),
    "four-dashes.yaml": POD.replace("p2024", "dashes1") + "----\n" + POD.replace("p2024", "dashes2"),
    "separator-bom.yaml": POD.replace("p2024", "sepbom1") + "---\ufeff\n" + POD.replace("p2024", "sepbom2"),
    # kubectl takes a List's items apart once.
    "nested-list.yaml": "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n"
                        + "".join(f"  {'-' if i == 0 else ' '} {line}\n" for i, line in
                                  enumerate(POD.replace("p2024", "nested").splitlines())),
    "items-map.json": '{"apiVersion": "v1", "kind": "List", "items": {"a": 1}}',
    "items-null.yaml": "apiVersion: v1\nkind: List\nitems: null\n---\n" + POD.replace("p2024", "itemsnull"),
    # kubectl sends no object without a kind and an apiVersion: nothing check could skip.
    "no-kind.yaml": "apiVersion: v1\nmetadata: {name: nokind}\n---\n" + POD.replace("p2024", "nokind2"),
    "no-api-version.yaml": POD.replace("p2024", "noversion").replace("apiVersion: v1\n", ""),
    "list-item-no-kind.yaml": "apiVersion: v1\nkind: List\nitems:\n- metadata: {name: nokind}\n",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_kubectl_refuses_check_refuses_naming_the_file(recorder: tuple[ControlPlane, str, StubWebhook],
                                                            tmp_path: Path, name: str) -> None:
    cp, namespace, stub = recorder
    path = tmp_path / name
    path.write_text(REFUSED[name])
    before = len(stub.reviews())
    result = kubectl_apply(cp, namespace, path)
    assert result.returncode != 0, result.stderr.decode()
    assert b"recorded" not in result.stderr
    assert len(stub.reviews()) == before
    with pytest.raises(DocumentError, match=rf"^{path}(:\d+)?: "):
        load_manifests(str(path))
    check = subprocess.run([sys.executable, "-m", "webhook.cli", "check", str(path)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 2, check.stderr
    assert check.stderr.startswith(f"multus-webhook check: {path}")
    assert "Traceback" not in check.stderr


def test_a_dangling_link_in_a_directory_is_refused_as_kubectl_refuses_it(
    recorder: tuple[ControlPlane, str, StubWebhook], tmp_path: Path
) -> None:
    cp, namespace, _ = recorder
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "net.yaml").symlink_to(tmp_path / "gone.yaml")
    result = kubectl_apply(cp, namespace, tmp_path)
    assert result.returncode != 0
    assert b"net.yaml: no such file or directory" in result.stderr, result.stderr.decode()
    check = subprocess.run([sys.executable, "-m", "webhook.cli", "check", str(tmp_path)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 2, check
    assert check.stderr == f"multus-webhook check: {tmp_path / 'net.yaml'}: cannot read: a symbolic link to nothing\n"


# The reviewer's files where check's verdict was not the webhook's (session 17): the object the apiserver
# sends, handed to the real webhook (`multus-webhook serve`, /mutate then /validate for a pod's CREATE),
# must get check's verdict on the file.
DISAGREED = {
    "bandwidth-1e6.yaml": profile("rates", {}, network="net").replace("    cni-args:\n\n", ""),
    "bandwidth-1e6.json": '{"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile", "metadata": '
                          '{"name": "rates"}, "spec": {"networks": [{"name": "net", "bandwidth": '
                          '{"ingressRate": 1e6, "ingressBurst": 1000000.0}}]}}',
    "dated-network.yaml": profile("dated", {"release": "2024-01-01"}),
    "host-network.yaml": POD.replace("p2024", "host"),
    "dated-networks.yaml": POD.replace("p2024", "dated").replace("hostNetwork: y", "hostNetwork: n"),
}


@pytest.mark.parametrize("name", sorted(DISAGREED))
def test_the_webhook_given_what_the_apiserver_sends_agrees_with_check(
    recorder: tuple[ControlPlane, str, StubWebhook], webhook_server: WebhookServer, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_text(DISAGREED[name])
    [obj] = sent(recorder, path)
    result = subprocess.run([sys.executable, "-m", "webhook.cli", "check", str(path), "--output", "json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    [checked] = json.loads(result.stdout)["results"]
    if obj["kind"] == "Pod" and obj["spec"].get("hostNetwork"):
        # The webhook's rules skip a host-network pod: no finding, as check gives none.
        assert checked["findings"] == []
        assert ask_webhook(webhook_server, "Pod", obj, checked["namespace"])["allowed"]
        return
    assert_agree(checked, mutated_then_validated(webhook_server, obj["kind"], obj, checked["namespace"]))
