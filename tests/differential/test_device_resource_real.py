"""Differential test: rule pod-networks-device-resource against the real host-device plugin v1.10.0. A pod
that requests no device of a NAD's resourceName gets none from Multus (pkg/k8sclient getKubernetesDelegate
adds deviceID / pciBusID only for a device the kubelet's PodResources lists for the pod), so host-device
gets the NAD's config as it is; run as Multus runs it (hack/cniplugins/multus-add), it fails for the
reason the rule names, while the same config with the pciBusID Multus adds for an allocated device gets
past the device selection. Needs root and `ip netns`, as the other differential tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhook.cluster.static import StaticClusterView
from webhook.dev.cnisandbox import Sandbox, run_add
from webhook.rules import Policy, Subject, evaluate

pytestmark = pytest.mark.slow

#: host-device v1.10.0's error for a config that names no device (loadConf).
NO_DEVICE = 'specify either "device", "hwaddr", "kernelpath" or "pciBusID"'
CONFIG = {"cniVersion": "1.0.0", "name": "hd-net", "type": "host-device"}


def test_a_pod_without_the_resource_fails_in_the_real_host_device_as_the_rule_says(
        cni_bin: Path, sandbox: Sandbox) -> None:
    outcome = run_add(CONFIG, sandbox, cni_bin, "hd-net")
    assert not outcome.accepted
    assert NO_DEVICE in outcome.error
    # With the device Multus passes for a pod given one, host-device looks for that device instead (none
    # at that address here).
    given = run_add({**CONFIG, "pciBusID": "0000:ff:1f.7"}, sandbox, cni_bin, "hd-net")
    assert NO_DEVICE not in given.error, given.error

    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": "hd-net", "namespace": "default",
                        "annotations": {"k8s.v1.cni.cncf.io/resourceName": "example.com/nic"}},
           "spec": {"config": json.dumps(CONFIG)}}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "default", "annotations": {"k8s.v1.cni.cncf.io/networks": "hd-net"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    findings = [f for f in evaluate(Subject(pod, "Pod", view=StaticClusterView([nad])), Policy())
                if f.rule == "pod-networks-device-resource"]
    assert [str(f.severity) for f in findings] == ["deny"]
    assert NO_DEVICE in findings[0].message
