"""The names DESIGN.md fixes, which users, manifests and other components depend on. Pure."""

from __future__ import annotations

import re

#: The namespace the manifests install into: the webhook's own objects, the MultusNodeStates, the Lease.
#: The commands in pods take theirs from $POD_NAMESPACE, so that a kustomization may move them.
NAMESPACE = "multus-webhook"
#: Pod label choosing a NetworkProfile in the pod's namespace.
PROFILE_LABEL = "multus-webhook.io/network-profile"
#: Set on a pod by the mutation, for traceability.
APPLIED_PROFILE_ANNOTATION = "multus-webhook.io/applied-profile"
#: Set by the mutation on every pod it handles that asks Multus for networks: whether it required the
#: readiness gate, or why not (rules/gate.py GATE_MARKS). The validating webhook tells by it a pod /mutate
#: handled from one it never saw (pod-networks-gate-missing), as Istio marks the pods it injected.
READINESS_GATE_ANNOTATION = "multus-webhook.io/readiness-gate"
#: NAD annotation: host-local IPAM on purpose (segments local to each node).
ALLOW_HOST_LOCAL_ANNOTATION = "multus-webhook.io/allow-host-local"
#: Node label: Multus is ready on the node's current boot. The controller puts the same label on the
#: node's agent pod, which is what the pods' readiness gate selects (see AGENT_POD_LABELS).
READY_LABEL = "multus-webhook.io/multus-ready"
#: Node labels cni.multus-webhook.io/<binary>: "true" for each CNI binary present (on the agent pod too).
BINARY_LABEL_PREFIX = "cni.multus-webhook.io/"
#: Not a file: the name under which the CNI dhcp daemon answering on DHCP_SOCKET is counted and labelled
#: beside the binaries (cni.multus-webhook.io/dhcp-daemon), so that the readiness gate of pods on a dhcp
#: network requires it as it requires their plugins: the dhcp binary ships in every plugins tarball, and
#: without its daemon it fails every ADD and DEL.
DHCP_DAEMON = "dhcp-daemon"
#: Where the dhcp IPAM plugin dials its daemon unless the NAD's ipam.daemonSocketPath names another
#: socket (plugins v1.10.0, plugins/ipam/dhcp, defaultSocketPath).
DHCP_SOCKET = "/run/cni/dhcp.sock"
#: The labels of the agent's pods (manifests/base/agent/agent.yaml). The readiness gate is a required
#: pod affinity to the agent pod on the same node carrying our labels, not a node affinity to the
#: node's labels: a kubelet that starts checks its pods' node affinity again, never their pod affinity.
AGENT_POD_LABELS = {"app.kubernetes.io/name": "multus-webhook", "app.kubernetes.io/component": "agent"}
#: The well-known node label that tells nodes apart; the gate's topology key.
HOSTNAME_LABEL = "kubernetes.io/hostname"

_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def binary_label(binary: str) -> str | None:
    """The node label for a CNI binary, or None for a file name that cannot be a label name (the
    controller never sets such a label, so the mutation must not require it either)."""
    # fullmatch: "$" also matches before a final newline, and a label "bridge2\n" is refused by the
    # apiserver with every other label of the same patch, the ready label included.
    return BINARY_LABEL_PREFIX + binary if _LABEL_NAME.fullmatch(binary) else None


def is_own_label(key: str) -> bool:
    """A node label the controller sets (and the only node labels anything here reads)."""
    return key == READY_LABEL or key.startswith(BINARY_LABEL_PREFIX)
