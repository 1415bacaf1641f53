"""`serve --client-ca` behind the real kube-apiserver: an apiserver that presents no client certificate
fails its calls with the webhook's reason in the error, not with an opaque TLS failure."""

from __future__ import annotations

import json
from pathlib import Path

from webhook import certs
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually

NAD = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": {"name": "ca"},
       "spec": {"config": json.dumps({"cniVersion": "1.0.0", "name": "ca", "type": "bridge"})}}


def test_an_apiserver_without_a_client_certificate_is_told_why(
        controlplane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    (tmp_path / "client-ca.crt").write_bytes(certs.new_ca("apiserver-clients").cert_pem)
    # This apiserver has no AdmissionConfiguration: it presents no client certificate to webhooks.
    with WebhookServer(tmp_path, ["--client-ca", str(tmp_path / "client-ca.crt")]) as server:
        name = f"client-ca-{namespace}"
        controlplane.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "client-ca.multus-webhook.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Fail", "timeoutSeconds": 5,
                "clientConfig": {"url": f"{server.url}/validate",
                                 "caBundle": certs.ca_bundle(server.ca_file.read_bytes())},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "rules": [{"apiGroups": ["k8s.cni.cncf.io"], "apiVersions": ["*"],
                           "resources": ["network-attachment-definitions"], "operations": ["CREATE"]}],
            }],
        }))
        try:
            # The apiserver takes a new configuration in a moment after it is stored.
            refused = eventually(
                lambda: controlplane.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                                             input=json.dumps(NAD), check=False),
                "the webhook configuration to be in force", until=lambda r: r.returncode != 0)
        finally:
            controlplane.kubectl("delete", "validatingwebhookconfiguration", name, check=False)
    assert 'failed calling webhook "client-ca.multus-webhook.io"' in refused.stderr, refused.stderr
    assert ("multus-webhook answers /validate only over a connection that presents a client certificate signed "
            "by its --client-ca, and this one presented none") in refused.stderr, refused.stderr
