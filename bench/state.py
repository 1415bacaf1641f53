"""A large cluster, generated deterministically (seeded), and the AdmissionReviews sent at the webhook.

The shapes follow what the apiserver really holds and sends: Nodes with the usual labels, addresses,
nodeInfo and the 50 images a kubelet reports by default (most of a real Node's bytes);
MultusNodeStates as the agent writes them; NADs of macvlan/bridge with whereabouts or host-local (one
/24 each, disjoint, so that the overlap index is populated); pods as they arrive at admission
(defaulted spec, managedFields), each selecting one or two NADs of its namespace.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch

from webhook.admission.handlers import AdmissionContext, mutate
from webhook.admission.review import AdmissionReview
from webhook.cluster.live import STATE_NAMESPACE
from webhook.cluster.static import StaticClusterView

NETWORKS = "k8s.v1.cni.cncf.io/networks"
PROFILE_LABEL = "multus-webhook.io/network-profile"
READY_LABEL = "multus-webhook.io/multus-ready"
BINARIES = ("bridge", "macvlan", "ipvlan", "host-local", "whereabouts", "tuning", "portmap", "static", "loopback")
PROFILE = "standard"


@dataclass(frozen=True)
class Scale:
    nodes: int = 5_000
    nads: int = 10_000
    pods: int = 50_000
    namespaces: int = 100

    @property
    def nads_per_namespace(self) -> int:
        return self.nads // self.namespaces


def namespace(i: int) -> str:
    return f"team-{i:03d}"


def nad_subnet(i: int) -> str:
    """The i-th NAD's /24: 10.0.0.0/24, 10.0.1.0/24, ... (65,536 of them before 10/8 runs out)."""
    return f"10.{(i >> 8) & 255}.{i & 255}.0/24"


def nad_config(i: int, name: str) -> str:
    ipam: dict[str, Any] = (
        {"type": "whereabouts", "range": nad_subnet(i)} if i % 5 else
        {"type": "host-local", "subnet": nad_subnet(i), "rangeStart": nad_subnet(i).replace(".0/24", ".10"),
         "rangeEnd": nad_subnet(i).replace(".0/24", ".250")}
    )
    if i % 4 == 0:
        return json.dumps({"cniVersion": "0.3.1", "name": name, "plugins": [
            {"type": "bridge", "bridge": f"br{i % 16}", "vlan": 100 + i % 50, "ipam": ipam},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"}},
        ]})
    return json.dumps({"cniVersion": "0.3.1", "name": name, "type": "macvlan", "master": f"eth{1 + i % 3}",
                       "mode": "bridge", "capabilities": {"ips": True}, "ipam": ipam})


def nad(i: int, scale: Scale) -> dict[str, Any]:
    ns = namespace(i // scale.nads_per_namespace)
    name = f"net-{i % scale.nads_per_namespace:03d}"
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": str(uuid.UUID(int=i)),
                            "resourceVersion": str(1000 + i), "generation": 1,
                            "creationTimestamp": "2026-01-01T00:00:00Z"}
    annotations = {"multus-webhook.io/allow-host-local": "true"} if i % 5 == 0 else {}
    obj = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": name, "namespace": ns, **({"annotations": annotations} if annotations else {})},
           "spec": {"config": nad_config(i, name)}}
    # As `kubectl apply` leaves it: the object as applied, once more, in an annotation.
    meta["annotations"] = {**annotations, "kubectl.kubernetes.io/last-applied-configuration": json.dumps(obj)}
    return {**obj, "metadata": meta}


#: status.images as the kubelet reports them (--node-status-max-images, default 50); the same ones on every node.
IMAGES = [{"names": [f"registry.example/team-{k:02d}/app@sha256:{hashlib.sha256(str(k).encode()).hexdigest()}",
                     f"registry.example/team-{k:02d}/app:v1.{k}.0"], "sizeBytes": 20_000_000 + 7_919 * k}
          for k in range(50)]


def node(i: int) -> dict[str, Any]:
    name = f"node-{i:05d}"
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "topology.kubernetes.io/zone": f"zone-{i % 3}", "node.kubernetes.io/instance-type": "m5.2xlarge",
              READY_LABEL: "true", **{f"cni.multus-webhook.io/{b}": "true" for b in BINARIES}}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": str(uuid.UUID(int=(1 << 64) + i)), "resourceVersion": str(i),
                     "labels": labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": f"10.244.{i % 256}.0/24", "providerID": f"aws:///zone/i-{i:017x}"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": f"172.16.{i // 256}.{i % 256}"},
                          {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "7910m", "memory": "31Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": "2026-01-01T00:00:00Z"}],
            "nodeInfo": {"bootID": str(uuid.UUID(int=(2 << 64) + i)), "kernelVersion": "6.12.0",
                         "kubeletVersion": "v1.37.2", "containerRuntimeVersion": "containerd://2.1.0",
                         "osImage": "Talos (v1.12.0)", "architecture": "amd64", "operatingSystem": "linux"},
            "images": IMAGES,
        },
    }


def node_state(i: int) -> dict[str, Any]:
    name = f"node-{i:05d}"
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "MultusNodeState",
            "metadata": {"name": name, "namespace": "multus-webhook"},
            "status": {"nodeName": name, "bootID": str(uuid.UUID(int=(2 << 64) + i)), "cniBinaries": list(BINARIES),
                       "multusReady": True, "heartbeatTime": "2026-01-01T00:00:00Z"}}


def profile(ns: str) -> dict[str, Any]:
    return {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
            "metadata": {"name": PROFILE, "namespace": ns},
            "spec": {"networks": [{"name": "net-000", "interface": "data0"}]}}


def pod(name: str, ns: str, networks: str, *, node_name: str | None, labels: dict[str, str] | None = None,
        uid: str = "") -> dict[str, Any]:
    """A pod as the apiserver hands it to admission: defaults filled in, managedFields present."""
    spec: dict[str, Any] = {
        "containers": [{
            "name": "app", "image": "registry.example/team/app:1.4.2", "imagePullPolicy": "IfNotPresent",
            "args": ["--listen=:8080", "--log-format=json"],
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "env": [{"name": "POD_NAME",
                     "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10,
                               "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                              "readOnly": True}],
        }],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
        "schedulerName": "default-scheduler", "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
    }
    if node_name:
        spec["nodeName"] = node_name
    meta: dict[str, Any] = {
        "name": name, "namespace": ns, "labels": {"app": "app", **(labels or {})},
        "annotations": {NETWORKS: networks},
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                           "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:annotations": {f"f:{NETWORKS}": {}}},
                                        "f:spec": {"f:containers": {'k:{"name":"app"}': {".": {}}}}}}],
    }
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def cluster_state(scale: Scale, seed: int = 9) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    objects: list[dict[str, Any]] = [node(i) for i in range(scale.nodes)]
    objects += [node_state(i) for i in range(scale.nodes)]
    objects += [nad(i, scale) for i in range(scale.nads)]
    objects += [profile(namespace(n)) for n in range(scale.namespaces)]
    per_ns = scale.nads_per_namespace
    for p in range(scale.pods):
        ns = namespace(p % scale.namespaces)
        picks = rng.sample(range(per_ns), 1 + p % 2)
        networks = ", ".join(f"net-{k:03d}" for k in picks)
        objects.append(pod(f"app-{p:05d}", ns, networks, node_name=f"node-{rng.randrange(scale.nodes):05d}",
                           uid=str(uuid.UUID(int=(3 << 64) + p))))
    return objects


def write_state(path: Path, objects: list[dict[str, Any]]) -> Path:
    """A `kubectl get -o json` List of the whole cluster."""
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


# --- the reviews the load generator sends ----------------------------------------------------------


def _review(obj: dict[str, Any], kind: str, group: str, resource: str, uid: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "requestKind": {"group": group, "version": "v1", "kind": kind},
        "requestResource": {"group": group, "version": "v1", "resource": resource},
        "name": meta.get("name", ""), "namespace": meta["namespace"], "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "uid": "5b1f0a46-0000-4000-8000-000000000000",
                     "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                "system:authenticated"]},
        "object": obj, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }}


def pod_reviews(scale: Scale, count: int = 256, seed: int = 10) -> list[bytes]:
    """New pods (not in the state), like a ReplicaSet creates them: one or two NADs of the namespace,
    half also labelled with the namespace's NetworkProfile; none bound to a node yet."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ns = namespace(rng.randrange(scale.namespaces))
        picks = rng.sample(range(scale.nads_per_namespace), 1 + i % 2)
        networks = ", ".join(f"net-{k:03d}" for k in picks)
        labels = {PROFILE_LABEL: PROFILE} if i % 2 else None
        obj = pod(f"web-7d4b9c-{i:05x}", ns, networks, node_name=None, labels=labels)
        out.append(json.dumps(_review(obj, "Pod", "", "pods", str(uuid.UUID(int=(4 << 64) + i)))).encode())
    return out


def as_mutated(reviews: list[bytes], objects: list[dict[str, Any]]) -> list[bytes]:
    """The pods of ``reviews`` as the apiserver sends them to /validate: with the patch /mutate gives
    each in the cluster of ``objects`` (its readiness gate, its profile's networks). A rule may judge
    what /mutate did (pod-networks-gate-missing): the unmutated pod would be a denial no apiserver sends."""
    ctx = AdmissionContext(view=StaticClusterView(objects, state_namespace=STATE_NAMESPACE))
    out = []
    for body in reviews:
        review = json.loads(body)
        response = mutate(AdmissionReview.model_validate(review).request, ctx)
        review["request"]["object"] = jsonpatch.apply_patch(review["request"]["object"], list(response.patch))
        out.append(json.dumps(review).encode())
    return out


def nad_reviews(scale: Scale, count: int = 256, seed: int = 11) -> list[bytes]:
    """New NADs: nine in ten with a fresh /24, one in ten overlapping an existing NAD on the same
    segment (refused by nad-range-overlap)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ns = namespace(rng.randrange(scale.namespaces))
        existing = rng.randrange(scale.nads)
        fresh = scale.nads + 1 + rng.randrange(60_000 - scale.nads)
        which = existing if i % 10 == 0 else fresh
        name = f"new-{i:04d}"
        obj: dict[str, Any] = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
               "metadata": {"name": name, "namespace": ns}, "spec": {"config": nad_config(which, name)}}
        if which % 5 == 0:
            obj["metadata"]["annotations"] = {"multus-webhook.io/allow-host-local": "true"}
        out.append(json.dumps(_review(obj, "NetworkAttachmentDefinition", "k8s.cni.cncf.io",
                                      "network-attachment-definitions", str(uuid.UUID(int=(5 << 64) + i)))).encode())
    return out
