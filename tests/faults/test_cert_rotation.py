"""Certificate rotation under load, on a real apiserver: `serve --self-managed-certs` renews a serving
certificate close to expiry and then a CA close to expiry while a client posts to it directly and
kubectl sends NADs through the apiserver, without one failed request; every certificate served is
trusted by the caBundle of both webhook configurations at that moment (the new CA reaches the
caBundle before a certificate it signed is served). Own control plane (module fixture `cluster`)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from kubernetes import client

from webhook import certs
from webhook.certmanager import Bundle, SelfManagedCertificates, Settings, canonical_ca_bundle, issue_bundle
from webhook.dev.controlplane import ControlPlane, WebhookServer, eventually, register_webhook, webhook_configurations
from webhook.kube import load_client

pytestmark = pytest.mark.slow
NAMESPACE = "multus-webhook"
# The apiserver reaches the server as https://localhost:PORT; the certificate names the "Service" localhost.
SETTINGS = Settings(namespace=NAMESPACE, secret_name="rotating-tls", service="localhost")
NAD = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
       "metadata": {"name": "rot", "namespace": "default"},
       "spec": {"config": json.dumps({"cniVersion": "1.0.0", "name": "rot", "type": "macvlan", "master": "eth1",
                                      "ipam": {"type": "whereabouts", "range": "10.80.0.0/24"}})}}


def put_secret(cp: ControlPlane, bundle: Bundle) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": {"name": SETTINGS.secret_name, "namespace": NAMESPACE}, "data": bundle.secret_data()}
    cp.kubectl("apply", "-f", "-", input=json.dumps(secret))


def stored(cp: ControlPlane) -> Bundle:
    data = json.loads(cp.kubectl("get", "secret", "-n", NAMESPACE, SETTINGS.secret_name, "-o", "json").stdout)["data"]
    bundle = Bundle.from_secret_data(data)
    assert bundle is not None
    return bundle


def expiring_leaf(ca: certs.KeyPair) -> certs.KeyPair:
    return certs.issue(ca, SETTINGS.dns_names[-2], dns_names=SETTINGS.dns_names, validity=dt.timedelta(days=10))


def expiring_ca(ca: certs.KeyPair) -> certs.KeyPair:
    """The same CA (key, subject, key identifiers: what it signed still chains to it) in a certificate
    that expires in 100 days, inside the renewal window."""
    builder = (x509.CertificateBuilder().subject_name(ca.cert.subject).issuer_name(ca.cert.subject)
               .public_key(ca.key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(ca.cert.not_valid_before_utc)
               .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=100)))
    for ext in ca.cert.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return certs.KeyPair(builder.sign(ca.key, hashes.SHA256()), ca.key)


class Load:
    """Requests until stopped: direct HTTPS posts that trust exactly the caBundle of the validating
    configuration read just before (and check the mutating one trusts the certificate too), and
    `kubectl apply --dry-run=server` of a NAD through the apiserver. New connections every time, so
    each request sees the certificate served at that moment."""

    def __init__(self, cp: ControlPlane, server: WebhookServer, api: Any) -> None:
        self.cp, self.server = cp, server
        self.admission = client.AdmissionregistrationV1Api(api)
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.served: list[x509.Certificate] = []
        self.counts = {"direct": 0, "kubectl": 0}
        self.threads = [threading.Thread(target=self._loop, args=(job, name), daemon=True)
                        for job, name in ((self._direct, "direct"), (self._kubectl, "kubectl"))]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _loop(self, job: Callable[[], None], name: str) -> None:
        while not self.stop.is_set():
            try:
                job()
                self.counts[name] += 1
            except Exception as exc:
                self.failures.append(f"{name}: {exc!r}")

    def _bundle(self, kind: str) -> list[x509.Certificate]:
        read = getattr(self.admission, f"read_{kind}_webhook_configuration")
        value = read("multus-webhook").webhooks[0].client_config.ca_bundle
        return x509.load_pem_x509_certificates(base64.b64decode(value))

    def _direct(self) -> None:
        mutating = self._bundle("mutating")
        trusted = self._bundle("validating")
        ctx = ssl.create_default_context(cadata="".join(
            c.public_bytes(Encoding.PEM).decode() for c in trusted))
        conn = http.client.HTTPSConnection("localhost", self.server.port, context=ctx, timeout=10)
        try:
            body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                "uid": str(uuid.uuid4()), "kind": {"group": "k8s.cni.cncf.io", "version": "v1",
                                                   "kind": "NetworkAttachmentDefinition"},
                "operation": "CREATE", "namespace": "default", "name": "rot", "object": NAD}}
            conn.request("POST", "/validate?timeout=5s", json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            assert resp.status == 200, answer
            assert answer["response"]["allowed"], answer
            assert conn.sock is not None
            leaf = x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True) or b"")
        finally:
            conn.close()
        assert any(ca.subject == leaf.issuer and _issued(leaf, ca) for ca in mutating), \
            f"certificate {leaf.serial_number} served before the mutating caBundle trusts its CA"
        if not self.served or self.served[-1] != leaf:
            self.served.append(leaf)

    def _kubectl(self) -> None:
        result = self.cp.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(NAD), check=False)
        assert result.returncode == 0, result.stderr


def _issued(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@contextlib.contextmanager
def self_managed(cluster: ControlPlane, tmp_path: Path, *flags: str) -> Iterator[tuple[WebhookServer, Any]]:
    """serve --self-managed-certs with ``flags``, started from a Secret made beforehand (as a previous
    replica would have), registered with the apiserver."""
    api = load_client(str(cluster.kubeconfig))
    first = issue_bundle(SETTINGS, None, dt.datetime.now(dt.UTC))
    put_secret(cluster, first)
    SelfManagedCertificates(api, SETTINGS, tmp_path / "certs").write_files(first)
    server = WebhookServer(tmp_path, [
        "--kubeconfig", str(cluster.kubeconfig), "--self-managed-certs", "--tls-secret", SETTINGS.secret_name,
        "--namespace", NAMESPACE, "--service", SETTINGS.service, "--no-controller", *flags,
    ], hostname="localhost")
    register_webhook(cluster, server)
    try:
        with server:
            eventually(lambda: server.readyz()[0] == 200, "the live cache's first sync")
            yield server, api
    finally:
        api.close()


@pytest.fixture
def rotating(cluster: ControlPlane, tmp_path: Path) -> Iterator[tuple[WebhookServer, Any]]:
    """``self_managed``, checking the Secret every second."""
    with self_managed(cluster, tmp_path, "--cert-check-interval", "1") as running:
        yield running


def test_renewals_under_load_fail_no_request(cluster: ControlPlane, rotating: tuple[WebhookServer, Any]) -> None:
    server, api = rotating
    first = stored(cluster)
    with Load(cluster, server, api) as load:
        eventually(lambda: min(load.counts.values()) >= 3, "requests of both kinds under way")

        # A serving certificate 10 days from expiry: renewed by the same CA.
        put_secret(cluster, Bundle(first.ca, expiring_leaf(first.ca)))
        renewed = eventually(lambda: stored(cluster), "the serving certificate's renewal",
                             until=lambda b: b.leaf.cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
                             > dt.timedelta(days=300))
        assert renewed.ca.cert_pem == first.ca.cert_pem
        eventually(lambda: load.served[-1] == renewed.leaf.cert, "the renewed certificate to be served")

        # The CA 100 days from expiry: a new CA, the old one kept in the caBundle beside it.
        put_secret(cluster, Bundle(expiring_ca(first.ca), renewed.leaf))
        rolled = eventually(lambda: stored(cluster), "the CA's renewal",
                            until=lambda b: b.ca.cert.public_key() != first.ca.cert.public_key())
        eventually(lambda: load.served[-1] == rolled.leaf.cert, "the certificate of the new CA to be served")
        count = {**load.counts}
        eventually(lambda: min(n - count[k] for k, n in load.counts.items()) >= 3,
                   "requests of both kinds after the roll-over")

    assert not load.failures, load.failures[:5]
    assert [c.serial_number for c in load.served] == [
        c.serial_number for c in (first.leaf.cert, renewed.leaf.cert, rolled.leaf.cert)]
    for kind in ("validating", "mutating"):
        config = json.loads(cluster.kubectl("get", f"{kind}webhookconfiguration", "multus-webhook", "-o",
                                            "json").stdout)
        for hook in config["webhooks"]:
            # The new CA and the first CA, which signed the certificate served until the roll-over. The
            # test swapped the first CA in the Secret for a copy about to expire (its key, so the served
            # certificate verifies under either) behind the server's back: the Secret keeps that copy as
            # the previous CA, but the server puts into the caBundle only the CA of the certificate it
            # served, the first, already there.
            trusted = x509.load_pem_x509_certificates(base64.b64decode(hook["clientConfig"]["caBundle"]))
            expected = [rolled.ca.cert, first.ca.cert]
            assert sorted(c.serial_number for c in trusted) == sorted(c.serial_number for c in expected)
    assert rolled.previous_ca_pem  # the CA being replaced stays trusted while it is valid


def test_configurations_applied_again_without_ca_bundle_get_it_back_between_looks_at_the_secret(
        cluster: ControlPlane, tmp_path: Path) -> None:
    """`kubectl delete -f` and `apply -f` of webhook-configurations.yaml (which has no caBundle): every
    NAD change fails TLS through the apiserver until serve puts the CA back, at its next caBundle check,
    not at its next look at the Secret an hour later."""
    with self_managed(cluster, tmp_path, "--cert-check-interval", "3600", "--ca-bundle-check-interval", "1") \
            as (server, _):
        docs = webhook_configurations(server.url, b"")
        for doc in docs:
            for hook in doc["webhooks"]:
                del hook["clientConfig"]["caBundle"]
        payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        cluster.kubectl("delete", "-f", "-", input=payload)
        cluster.kubectl("apply", "-f", "-", input=payload)
        eventually(lambda: cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(NAD),
                                           check=False).returncode == 0,
                   "a NAD dry run through the apiserver", timeout=10)
        # The CA served only: the Secret may hold a previous CA too (the module's control plane saw a
        # roll-over), which a replica no longer serving under it does not put back.
        trusted = canonical_ca_bundle([stored(cluster).ca.cert])
        for kind in ("validating", "mutating"):
            config = json.loads(cluster.kubectl("get", f"{kind}webhookconfiguration", "multus-webhook", "-o",
                                                "json").stdout)
            assert [h["clientConfig"].get("caBundle") for h in config["webhooks"]] == [trusted] * len(
                config["webhooks"])
