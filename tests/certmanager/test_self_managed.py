"""Self-managed certificates against the real apiserver: first start, racing replicas, renewal before
expiry, the caBundle of the webhook configurations, and the webhook ServiceAccount's RBAC."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import inspect
import json
import logging
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from kubernetes import client, config

from webhook import certs
from webhook.certmanager import (
    CA_BUNDLE_CHECK_INTERVAL,
    CHECK_INTERVAL,
    Bundle,
    SelfManagedCertificates,
    Settings,
    canonical_ca_bundle,
    issue_bundle,
)
from webhook.cli import parser
from webhook.dev.controlplane import ControlPlane
from webhook.tls import ReloadingTLS

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def api(controlplane: ControlPlane) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(controlplane.kubeconfig))
    yield api_client
    api_client.close()


def configurations_payload(name: str) -> str:
    """A Validating and a Mutating configuration named ``name``, without caBundle, that no request
    ever reaches (a kubectl List)."""
    hook = {"admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Ignore",
            "clientConfig": {"url": "https://127.0.0.1:1/never"},
            "rules": [{"apiGroups": ["example.invalid"], "apiVersions": ["v1"], "resources": ["things"],
                       "operations": ["CREATE"]}]}
    items = [{"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
              "webhooks": [{**hook, "name": f"{n}.{name}.example.com"} for n in ("a", "b")]}
             for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


@pytest.fixture
def configurations(controlplane: ControlPlane) -> Iterator[str]:
    """``configurations_payload`` of a name of its own, applied."""
    name = f"certs-{uuid.uuid4().hex[:8]}"
    payload = configurations_payload(name)
    controlplane.kubectl("apply", "-f", "-", input=payload)
    yield name
    controlplane.kubectl("delete", "-f", "-", input=payload, check=False)


def ca_bundles(cp: ControlPlane, name: str) -> list[str]:
    out = []
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        obj = json.loads(cp.kubectl("get", kind, name, "-o", "json").stdout)
        out += [h["clientConfig"].get("caBundle", "") for h in obj["webhooks"]]
    return out


def secret_data(cp: ControlPlane, namespace: str, name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads(cp.kubectl("get", "secret", "-n", namespace, name, "-o", "json").stdout)["data"]
    return data


def test_first_start_creates_the_secret_writes_the_files_and_patches_the_ca_bundles(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    bundle = SelfManagedCertificates(api, settings, tmp_path / "certs").ensure()

    stored = Bundle.from_secret_data(secret_data(controlplane, namespace, settings.secret_name))
    assert stored is not None
    assert stored.leaf.cert_pem == bundle.leaf.cert_pem
    assert (tmp_path / "certs" / "tls.crt").read_bytes() == bundle.leaf.cert_pem
    assert (tmp_path / "certs" / "tls.key").read_bytes() == bundle.leaf.key_pem
    assert (tmp_path / "certs" / "tls.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "certs" / "ca.crt").read_bytes() == bundle.ca.cert_pem
    bundle.leaf.cert.verify_directly_issued_by(bundle.ca.cert)
    names = bundle.leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"multus-webhook.{namespace}.svc" in names.get_values_for_type(x509.DNSName)
    assert ca_bundles(controlplane, configurations) == [base64.b64encode(bundle.ca.cert_pem).decode()] * 4
    kind = json.loads(controlplane.kubectl("get", "secret", "-n", namespace, settings.secret_name, "-o", "json").stdout)
    assert kind["type"] == "kubernetes.io/tls"


def test_racing_replicas_one_create_wins_and_the_others_read_it(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(namespace=namespace)
    replicas = [SelfManagedCertificates(config.new_client_from_config(config_file=str(controlplane.kubeconfig)),
                                        settings, Path("/nonexistent")) for _ in range(6)]
    start = threading.Barrier(len(replicas))
    results: list[bytes] = []
    errors: list[BaseException] = []

    def replica(r: SelfManagedCertificates) -> None:
        start.wait()
        try:
            results.append(r.ensure_secret().leaf.cert_pem)
        except BaseException as exc:
            errors.append(exc)

    with caplog.at_level(logging.INFO, logger="multus-webhook.certmanager"):
        threads = [threading.Thread(target=replica, args=(r,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    stored = Bundle.from_secret_data(secret_data(controlplane, namespace, settings.secret_name))
    assert stored is not None
    assert results == [stored.leaf.cert_pem] * len(replicas)
    assert sum("created the CA" in r.message for r in caplog.records) == 1


def test_the_serving_certificate_is_renewed_before_expiry_with_the_same_ca(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    first = SelfManagedCertificates(api, settings, tmp_path).ensure()
    assert SelfManagedCertificates(api, settings, tmp_path, clock=lambda: NOW + dt.timedelta(days=300)).ensure() \
        .leaf.cert_pem == first.leaf.cert_pem, "renewed too early"

    later = SelfManagedCertificates(api, settings, tmp_path, clock=lambda: NOW + dt.timedelta(days=340))
    renewed = later.ensure()
    assert renewed.leaf.cert_pem != first.leaf.cert_pem
    assert renewed.ca.cert_pem == first.ca.cert_pem
    renewed.leaf.cert.verify_directly_issued_by(first.ca.cert)
    assert (tmp_path / "tls.crt").read_bytes() == renewed.leaf.cert_pem
    assert ca_bundles(controlplane, configurations) == [base64.b64encode(first.ca.cert_pem).decode()] * 4


def test_a_ca_near_expiry_is_replaced_and_the_old_one_stays_trusted(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    first = SelfManagedCertificates(api, settings, tmp_path).ensure()
    late = NOW + (first.ca.cert.not_valid_after_utc - NOW) - dt.timedelta(days=100)
    renewed = SelfManagedCertificates(api, settings, tmp_path, clock=lambda: late).ensure()
    assert renewed.ca.cert_pem != first.ca.cert_pem
    renewed.leaf.cert.verify_directly_issued_by(renewed.ca.cert)
    expected = canonical_ca_bundle([renewed.ca.cert, first.ca.cert])
    assert ca_bundles(controlplane, configurations) == [expected] * 4
    assert (tmp_path / "ca.crt").read_bytes() == renewed.ca.cert_pem + first.ca.cert_pem


def test_a_secret_deleted_by_hand_gets_a_new_ca_and_what_is_served_stays_trusted(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    first = SelfManagedCertificates(api, settings, tmp_path).ensure()
    controlplane.kubectl("delete", "secret", "-n", namespace, settings.secret_name)
    again = SelfManagedCertificates(api, settings, tmp_path).ensure()
    assert again.ca.cert_pem != first.ca.cert_pem
    # Between the caBundle patch and the new files, the apiserver still meets the first certificate.
    expected = canonical_ca_bundle([again.ca.cert, first.ca.cert])
    assert ca_bundles(controlplane, configurations) == [expected] * 4
    stored = Bundle.from_secret_data(secret_data(controlplane, namespace, settings.secret_name))
    assert stored is not None
    assert stored.previous_ca_pem == first.ca.cert_pem
    assert (tmp_path / "tls.crt").read_bytes() == again.leaf.cert_pem


def test_an_unusable_secret_is_replaced(controlplane: ControlPlane, api: client.ApiClient, namespace: str) -> None:
    controlplane.kubectl("create", "secret", "generic", "-n", namespace, "multus-webhook-tls",
                         "--from-literal=tls.crt=not a certificate")
    bundle = SelfManagedCertificates(api, Settings(namespace=namespace), Path("/nonexistent")).ensure_secret()
    stored = Bundle.from_secret_data(secret_data(controlplane, namespace, "multus-webhook-tls"))
    assert stored is not None
    assert stored.leaf.cert_pem == bundle.leaf.cert_pem


async def test_the_renewal_loop_renews_again_and_again_and_the_renewed_certificate_is_served(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The loop as `serve --self-managed-certs` runs it, beside a TLS listener that takes the files in as
    the server's does. The loop renews a serving certificate in the last 366 days of its life, longer
    than it lives: each certificate it issues is due again at its next check, so every check renews,
    and a loop that stopped after one renewal (or one check) shows."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    first = SelfManagedCertificates(api, settings, tmp_path).ensure()  # what serve does before it listens
    tls = ReloadingTLS(tmp_path)

    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=tls.context)
    port = listener.sockets[0].getsockname()[1]
    # Leaf renewals keep the CA: the one trusted at the start is trusted throughout.
    trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))

    async def served() -> bytes:
        """The certificate a new connection gets, verified against the CA and the Service's name."""
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusted,
                                                  server_hostname=f"multus-webhook.{namespace}.svc")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)

    ahead = SelfManagedCertificates(api, dataclasses.replace(settings, leaf_renew_before=dt.timedelta(days=366)),
                                    tmp_path, check_interval=dt.timedelta(seconds=0.2))
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="multus-webhook.certmanager")
    task = asyncio.create_task(ahead.run(stop, settle=dt.timedelta(0)))
    try:
        seen = [await served()]
        assert seen == [first.leaf.cert_pem]
        deadline = asyncio.get_running_loop().time() + 30
        while len(seen) < 3:  # the first certificate, then two renewals, each served in its turn
            assert not task.done(), "the renewal loop ended by itself"
            assert asyncio.get_running_loop().time() < deadline, f"{len(seen) - 1} renewal(s) served in 30s"
            pem = await served()
            if pem != seen[-1]:
                seen.append(pem)
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)  # stops when asked, without an error
        # Where it stopped, the Secret, the files and what is served agree.
        stored = Bundle.from_secret_data(secret_data(controlplane, namespace, settings.secret_name))
        assert stored is not None
        assert (tmp_path / "tls.crt").read_bytes() == stored.leaf.cert_pem == await served()
    finally:
        stop.set()
        task.cancel()
        listener.close()
        await listener.wait_closed()

    assert len(set(seen)) == len(seen), "a certificate was served again after it was replaced"
    for pem in seen:
        x509.load_pem_x509_certificate(pem).verify_directly_issued_by(first.ca.cert)
    renewals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("renewed the certificates")]
    assert len(renewals) >= 2, renewals
    assert all("the serving certificate expires on" in r for r in renewals), renewals


def test_the_ca_bundle_check_is_due_within_a_minute_by_default() -> None:
    """A configuration applied again comes back without caBundle, and with failurePolicy Fail every
    request it gates fails TLS until the check puts the CA back: the Secret's hourly look is far too
    rare for that."""
    default = inspect.signature(SelfManagedCertificates.run).parameters["ca_bundle_interval"].default
    assert inspect.signature(SelfManagedCertificates).parameters["check_interval"].default == CHECK_INTERVAL
    assert default == CA_BUNDLE_CHECK_INTERVAL <= dt.timedelta(seconds=60)
    args = parser(["serve"]).parse_args(["serve"])
    assert args.ca_bundle_check_interval == CA_BUNDLE_CHECK_INTERVAL.total_seconds()
    assert args.cert_check_interval == CHECK_INTERVAL.total_seconds()


async def test_the_loop_puts_the_ca_bundle_back_into_configurations_deleted_and_applied_again(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """`kubectl delete -f` and `apply -f` of the webhook configurations (or a GitOps tool replacing them)
    leaves every webhook without caBundle. The loop, its Secret check an hour away, restores them within
    its caBundle interval, and says nothing worse than a warning while they are gone."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    manager = SelfManagedCertificates(api, settings, tmp_path, check_interval=dt.timedelta(hours=1))
    bundle = manager.ensure()  # what serve does before it listens
    trusted = [certs.ca_bundle(bundle.ca_bundle_pem)] * 4
    assert ca_bundles(controlplane, configurations) == trusted
    secret_version = json.loads(controlplane.kubectl("get", "secret", "-n", namespace, settings.secret_name,
                                                     "-o", "json").stdout)["metadata"]["resourceVersion"]
    payload = configurations_payload(configurations)
    # The loop's first look at the Secret (ensure(), which patches the configurations' caBundle too) must
    # be behind it before they are deleted: one still under way fails ("certificate check failed") and
    # is tried again only a minute later. A fixed 0.2s was not always enough on a loaded machine.
    looked = threading.Event()
    ensure = manager.ensure

    def ensure_noted(settle: float = 0.0) -> Bundle:
        try:
            return ensure(settle)
        finally:
            looked.set()

    manager.ensure = ensure_noted  # type: ignore[method-assign]
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="multus-webhook.certmanager")

    def warnings_logged() -> int:
        return len([r for r in caplog.records if r.levelno >= logging.WARNING])

    task = asyncio.create_task(manager.run(stop, settle=dt.timedelta(0),
                                           ca_bundle_interval=dt.timedelta(seconds=0.5)))
    try:
        assert await asyncio.to_thread(looked.wait, 30), "the loop's first look at the Secret"
        for _ in range(2):  # and again: the check keeps running after it restored them once
            await asyncio.to_thread(controlplane.kubectl, "delete", "-f", "-", input=payload)
            # Two checks find nothing to patch: they warn, and go on.
            warned, start = warnings_logged(), asyncio.get_running_loop().time()
            while warnings_logged() < warned + 2:
                assert not task.done(), "the loop ended when the configurations were gone"
                assert asyncio.get_running_loop().time() - start < 30, "no check found them gone"
                await asyncio.sleep(0.05)
            assert not task.done(), "the loop ended when the configurations were gone"
            await asyncio.to_thread(controlplane.kubectl, "apply", "-f", "-", input=payload)  # no caBundle
            start = asyncio.get_running_loop().time()
            while ca_bundles(controlplane, configurations) != trusted:
                assert asyncio.get_running_loop().time() - start < 5, "the caBundle was not put back"
                await asyncio.sleep(0.1)
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings, "the configurations' absence went unnoticed"
    assert all(w.startswith(f"could not check the caBundle of the webhook configurations {configurations}: ")
               for w in warnings), warnings
    # The Secret was not touched: only the configurations were.
    assert json.loads(controlplane.kubectl("get", "secret", "-n", namespace, settings.secret_name, "-o", "json")
                      .stdout)["metadata"]["resourceVersion"] == secret_version


def test_the_webhook_service_account_may_do_all_of_it(controlplane: ControlPlane, tmp_path: Path) -> None:
    """The Secret part (get, create, update) as system:serviceaccount:multus-webhook:multus-webhook."""
    docs = [d for d in yaml.safe_load_all(controlplane.kubectl("kustomize", str(MANIFESTS / "base")).stdout) if d]
    rbac: list[dict[str, Any]] = [d for d in docs if d["kind"] in (
        "Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]
    controlplane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    impersonated = config.new_client_from_config(config_file=str(controlplane.kubeconfig))
    impersonated.set_default_header("Impersonate-User", "system:serviceaccount:multus-webhook:multus-webhook")
    settings = Settings(namespace="multus-webhook")
    try:
        created = SelfManagedCertificates(impersonated, settings, tmp_path).ensure_secret()
        again = SelfManagedCertificates(impersonated, settings, tmp_path).ensure_secret()
        assert again.leaf.cert_pem == created.leaf.cert_pem
        renewed = SelfManagedCertificates(impersonated, settings, tmp_path,
                                          clock=lambda: NOW + dt.timedelta(days=340)).ensure_secret()
        assert renewed.leaf.cert_pem != created.leaf.cert_pem
    finally:
        controlplane.kubectl("delete", "secret", "-n", "multus-webhook", "multus-webhook-tls", check=False)
        impersonated.close()


def test_a_ca_another_replica_serves_under_stays_in_the_ca_bundle(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    """A replica that read the Secret before another renewed it (or one that made a new Secret after the
    old was deleted) patches the caBundle with what it knows: the CA the other serves under must stay,
    or the apiserver refuses that replica's certificate. Expired CAs go."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    mine = SelfManagedCertificates(api, settings, tmp_path / "a").ensure()
    theirs = certs.new_ca()
    expired = certs.new_ca(validity=-dt.timedelta(minutes=1))  # valid from 5 minutes ago to 1 minute ago
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        obj = json.loads(controlplane.kubectl("get", kind, configurations, "-o", "json").stdout)
        ops = [{"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle",
                "value": certs.ca_bundle(theirs.cert_pem + expired.cert_pem + mine.ca.cert_pem)}
               for i in range(len(obj["webhooks"]))]
        controlplane.kubectl("patch", kind, configurations, "--type=json", "-p", json.dumps(ops))
    manager = SelfManagedCertificates(api, settings, tmp_path / "a")
    assert manager.patch_ca_bundles(mine)
    assert ca_bundles(controlplane, configurations) == [canonical_ca_bundle([mine.ca.cert, theirs.cert])] * 4
    assert not manager.patch_ca_bundles(mine)  # settled: nothing to write again


def test_replicas_holding_different_cas_during_a_ca_rotation_do_not_rewrite_each_other(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    """One replica renewed the CA (it trusts the new and the previous CA), the other reads the Secret
    only at its next hourly look (it still knows the previous CA alone). Their caBundle checks every
    30 s, in turn, must settle after one patch each at most, not rewrite the order back and forth."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    previous = issue_bundle(settings, None, NOW)
    renewed = issue_bundle(dataclasses.replace(settings, ca_renew_before=dt.timedelta(days=100_000)), previous, NOW)
    assert renewed.previous_ca_pem == previous.ca.cert_pem
    a = SelfManagedCertificates(api, settings, tmp_path / "a")
    b = SelfManagedCertificates(api, settings, tmp_path / "b")
    held = {a: renewed, b: previous}
    for order in ((a, b), (b, a)):
        patches = [[replica.patch_ca_bundles(held[replica]) for replica in order] for _ in range(4)]
        assert max(sum(column) for column in zip(*patches, strict=True)) <= 1, patches  # per replica
        assert not any(patches[-1]), patches
        assert ca_bundles(controlplane, configurations) == [
            canonical_ca_bundle([renewed.ca.cert, previous.ca.cert])] * 4
        # The other order of first checks, from configurations without caBundle again.
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            ops = [{"op": "remove", "path": f"/webhooks/{i}/clientConfig/caBundle"} for i in range(2)]
            controlplane.kubectl("patch", kind, configurations, "--type=json", "-p", json.dumps(ops))


def test_a_secret_whose_key_is_not_its_certificates_or_whose_certificate_another_ca_signed_is_replaced(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str) -> None:
    settings = Settings(namespace=namespace)
    good = SelfManagedCertificates(api, settings, Path("/nonexistent")).ensure_secret()
    stranger = certs.new_ca()  # the same name as ours: only the signature tells them apart
    for bad in (Bundle(good.ca, certs.KeyPair(good.leaf.cert, stranger.key)),
                Bundle(good.ca, certs.issue(stranger, "x", dns_names=settings.dns_names))):
        controlplane.kubectl("delete", "secret", "-n", namespace, settings.secret_name)
        controlplane.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": settings.secret_name, "namespace": namespace},
            "type": "kubernetes.io/tls", "data": bad.secret_data()}))
        fixed = SelfManagedCertificates(api, settings, Path("/nonexistent")).ensure_secret()
        assert fixed.leaf.cert_pem != bad.leaf.cert_pem
        assert fixed.leaf.cert.public_key() == fixed.leaf.key.public_key()
        fixed.leaf.cert.verify_directly_issued_by(fixed.ca.cert)


def remove_from_ca_bundles(cp: ControlPlane, name: str, keep: list[x509.Certificate]) -> None:
    """What an administrator does to stop trusting a CA: every webhook's caBundle set to ``keep``."""
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        ops = [{"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": canonical_ca_bundle(keep)}
               for i in range(2)]
        cp.kubectl("patch", kind, name, "--type=json", "-p", json.dumps(ops))


def test_a_replaced_ca_removed_by_hand_is_not_added_back(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    """A CA renewal in place, then a key-compromise rotation (the Secret deleted): once every replica
    serves under the new CA, the administrator takes the old one out of the caBundle. Neither the 30s
    caBundle check nor the hourly look at the Secret may put it back, though the Secret still names it
    as the previous CA."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    a = SelfManagedCertificates(api, settings, tmp_path / "a")
    b = SelfManagedCertificates(api, settings, tmp_path / "b")
    first = a.ensure()
    b.ensure()
    a.settings = dataclasses.replace(settings, ca_renew_before=dt.timedelta(days=100_000))
    renewed = a.ensure()  # the CA renewed in place
    a.settings = settings
    assert renewed.ca.cert != first.ca.cert
    assert renewed.previous_ca_pem == first.ca.cert_pem
    b.ensure()  # b's next look: it serves under the new CA too
    remove_from_ca_bundles(controlplane, configurations, [renewed.ca.cert])
    for replica in (a, b):
        assert replica.bundle is not None
        assert not replica.patch_ca_bundles(replica.bundle)  # the 30s check
        replica.ensure()  # the hourly look
    assert ca_bundles(controlplane, configurations) == [canonical_ca_bundle([renewed.ca.cert])] * 4

    controlplane.kubectl("delete", "secret", "-n", namespace, settings.secret_name)
    rotated = a.ensure()
    b.ensure()
    assert rotated.previous_ca_pem == renewed.ca.cert_pem  # only the CA a served, not its previous one
    remove_from_ca_bundles(controlplane, configurations, [rotated.ca.cert])
    for replica in (a, b):
        assert replica.bundle is not None
        assert not replica.patch_ca_bundles(replica.bundle)
        replica.ensure()
    assert ca_bundles(controlplane, configurations) == [canonical_ca_bundle([rotated.ca.cert])] * 4


def test_the_previous_ca_leaves_the_secret_and_the_ca_bundle_once_no_certificate_it_signed_can_be_valid(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The Secret's CA changed a serving certificate's life ago (its own serving certificate was
    renewed since): every certificate the previous CA signed has expired, so the Secret stops
    carrying it, a replica started later does not trust it, and it leaves the caBundle."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    previous = certs.new_ca(now=NOW - dt.timedelta(days=400))
    ca = certs.new_ca(now=NOW - certs.LEAF_VALIDITY - dt.timedelta(minutes=10))
    leaf = certs.issue(ca, "x", dns_names=settings.dns_names, now=NOW - dt.timedelta(days=10))
    old = Bundle(ca, leaf, previous.cert_pem)
    controlplane.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": settings.secret_name, "namespace": namespace},
        "type": "kubernetes.io/tls", "data": old.secret_data()}))
    remove_from_ca_bundles(controlplane, configurations, [previous.cert, ca.cert])
    caplog.set_level(logging.INFO, logger="multus-webhook.certmanager")
    kept = SelfManagedCertificates(api, settings, tmp_path).ensure()
    assert (kept.ca.cert, kept.leaf.cert, kept.previous_ca_pem) == (ca.cert, leaf.cert, b"")
    assert "ca-previous.crt" not in secret_data(controlplane, namespace, settings.secret_name)
    assert any("dropped that CA" in r.getMessage() for r in caplog.records)
    assert ca_bundles(controlplane, configurations) == [canonical_ca_bundle([ca.cert])] * 4
    # A day earlier a certificate the previous CA signed could still be valid: it stays.
    day_before = SelfManagedCertificates(api, settings, tmp_path, clock=lambda: NOW - dt.timedelta(days=1))
    controlplane.kubectl("delete", "secret", "-n", namespace, settings.secret_name)
    controlplane.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": settings.secret_name, "namespace": namespace},
        "type": "kubernetes.io/tls", "data": old.secret_data()}))
    assert day_before.ensure_secret().previous_ca_pem == previous.cert_pem


def test_a_secret_someone_else_keeps_spoiling_does_not_grow_the_ca_bundle_and_is_warned_about(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Another writer (a cert-manager Certificate left behind, a GitOps tool) puts its own Secret back
    after each hourly check, without ca.key: each check makes a new CA. The caBundle keeps the CAs
    that may still be served and loses the older ones of ours; a foreign CA in it stays."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    # A check every 65 minutes: an hour apart, as they are, and off the boundaries of the rule.
    checks = [0]
    manager = SelfManagedCertificates(api, settings, tmp_path, clock=lambda: NOW + checks[0] * dt.timedelta(minutes=65))
    other = certs.new_ca("other-issuer")
    caplog.set_level(logging.INFO, logger="multus-webhook.certmanager")
    made: list[x509.Certificate] = []
    for check in range(12):
        checks[0] = check
        made.append(manager.ensure().ca.cert)
        if check == 0:
            remove_from_ca_bundles(controlplane, configurations, [made[0], other.cert])
        leaf = certs.issue(other, "x", dns_names=settings.dns_names)
        secret = json.loads(controlplane.kubectl("get", "secret", "-n", namespace, settings.secret_name,
                                                 "-o", "json").stdout)
        secret["data"] = {k: base64.b64encode(v).decode() for k, v in (
            ("tls.crt", leaf.cert_pem), ("tls.key", leaf.key_pem), ("ca.crt", other.cert_pem))}
        controlplane.kubectl("replace", "-f", "-", input=json.dumps(secret))
    assert len(set(made)) == 12
    # The current CA, the one served until it came, and the one before: its successor is younger than
    # two check intervals, so a replica that has not looked since may serve it. Older ones went.
    assert ca_bundles(controlplane, configurations) == [canonical_ca_bundle([other.cert, *made[-3:]])] * 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 11, warnings
    assert all(w.startswith(f"Secret {namespace}/{settings.secret_name} no longer holds the certificates")
               for w in warnings), warnings


def test_an_older_ca_of_ours_put_back_into_the_secret_stays_in_the_ca_bundle(
        controlplane: ControlPlane, api: client.ApiClient, namespace: str, configurations: str,
        tmp_path: Path) -> None:
    """Hours after its CA was made, the Secret is set back to an older bundle of ours (a backup
    restored, a GitOps copy, a CA made earlier with ``multus-webhook certs``). The replica that reads it
    first serves under the older CA, which the CA the other replica still serves under seems to
    supersede: the other's caBundle check must not take it out, or the two rewrite the caBundle every
    30s until the other's next look, and the first one's share of requests fails TLS."""
    settings = Settings(namespace=namespace, webhook_configuration=configurations)
    clock = [NOW]
    a = SelfManagedCertificates(api, settings, tmp_path / "a", clock=lambda: clock[0])
    b = SelfManagedCertificates(api, settings, tmp_path / "b", clock=lambda: clock[0])
    current = a.ensure().ca.cert
    b.ensure()
    older = issue_bundle(settings, None, NOW - dt.timedelta(days=10))
    secret = json.loads(controlplane.kubectl("get", "secret", "-n", namespace, settings.secret_name,
                                             "-o", "json").stdout)
    secret["data"] = older.secret_data()
    controlplane.kubectl("replace", "-f", "-", input=json.dumps(secret))
    clock[0] = NOW + 3 * CHECK_INTERVAL
    assert a.ensure().leaf.cert_pem == older.leaf.cert_pem == (tmp_path / "a" / "tls.crt").read_bytes()
    both = [canonical_ca_bundle([older.ca.cert, current])] * 4
    assert ca_bundles(controlplane, configurations) == both
    for replica in (b, a, b):  # their caBundle checks, before b's next look
        assert replica.bundle is not None
        assert not replica.patch_ca_bundles(replica.bundle)
    assert b.ensure().ca.cert == older.ca.cert
    assert not a.patch_ca_bundles(older)
    assert not b.patch_ca_bundles(older)
    assert ca_bundles(controlplane, configurations) == both


def test_an_hourly_check_that_changes_nothing_rewrites_no_file(
        api: client.ApiClient, namespace: str, configurations: str, tmp_path: Path) -> None:
    """Each rewrite is a new inode, and the server loads (and logs) the certificate again: real
    rotations would drown among hourly reloads of the same one."""
    manager = SelfManagedCertificates(api, Settings(namespace=namespace, webhook_configuration=configurations),
                                      tmp_path)
    manager.ensure()
    tls = ReloadingTLS(tmp_path)
    inodes = {f: (tmp_path / f).stat().st_ino for f in certs.TLS_FILES}
    for _ in range(3):
        manager.ensure()
        tls.maybe_reload()
    assert tls.reloads == 0
    assert {f: (tmp_path / f).stat().st_ino for f in certs.TLS_FILES} == inodes
