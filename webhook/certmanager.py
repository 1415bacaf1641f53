"""Self-managed serving certificates: the server keeps a CA and a serving certificate in a Secret,
writes them into its cert dir, puts the CA into the caBundle of our two webhook configurations, and
renews them before they expire.

Several replicas start at once: each reads the Secret; when there is none, each tries to create one
and exactly one create wins (the others get 409 Conflict and read the winner's). A renewal is an
update with the resourceVersion that was read, so two replicas renewing together also agree on one.

The CA key is kept in the Secret (``ca.key``) so that a renewed serving certificate is signed by the
same CA and the caBundle does not change. When the CA itself changes, the Secret keeps the previous
CA (``ca-previous.crt``) while a serving certificate it signed may still be valid. Each replica puts
into the caBundle only the current CA and the CA of the certificate it serves: a replica still
serving under the previous CA keeps that one trusted itself, and once none does, an administrator
who removes it from the caBundle is not overruled.

The caBundle is checked far more often than the Secret (``CA_BUNDLE_CHECK_INTERVAL``, two GETs): a
webhook configuration deleted and applied again (``kubectl delete -f`` and ``apply -f``, a GitOps
tool's replace) comes back without caBundle, and with failurePolicy Fail every request it gates fails
TLS until a replica puts the CA back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client  # noqa: TID251 - not the pure core: it runs in the server process
from kubernetes.client.exceptions import ApiException  # noqa: TID251

from webhook import certs
from webhook.kube import JSON_PATCH, request, status_message

log = logging.getLogger("multus-webhook.certmanager")

LEAF_RENEW_BEFORE = dt.timedelta(days=30)
CA_RENEW_BEFORE = dt.timedelta(days=365)
#: How often the Secret is read (renewal due, or renewed by another replica).
CHECK_INTERVAL = dt.timedelta(hours=1)
#: How often the webhook configurations' caBundle is checked between two looks at the Secret.
CA_BUNDLE_CHECK_INTERVAL = dt.timedelta(seconds=30)
RETRY_INTERVAL = dt.timedelta(minutes=1)
#: How many check intervals after a newer CA of ours appeared an older one is taken out of the caBundle.
SUPERSEDED_AFTER_CHECKS = 2
#: How long a changed caBundle is given to reach the apiserver's webhook clients before a certificate
#: from the new CA is served.
CA_BUNDLE_SETTLE = dt.timedelta(seconds=5)


@dataclass(frozen=True)
class Settings:
    namespace: str
    secret_name: str = "multus-webhook-tls"
    service: str = "multus-webhook"
    # Both our ValidatingWebhookConfiguration and MutatingWebhookConfiguration carry this name.
    webhook_configuration: str = "multus-webhook"
    leaf_renew_before: dt.timedelta = LEAF_RENEW_BEFORE
    ca_renew_before: dt.timedelta = CA_RENEW_BEFORE

    @property
    def dns_names(self) -> list[str]:
        return certs.service_dns_names(self.service, self.namespace)


@dataclass(frozen=True)
class Bundle:
    ca: certs.KeyPair
    leaf: certs.KeyPair
    previous_ca_pem: bytes = b""

    @property
    def ca_bundle_pem(self) -> bytes:
        return self.ca.cert_pem + self.previous_ca_pem

    def secret_data(self) -> dict[str, str]:
        data = {"ca.crt": self.ca.cert_pem, "ca.key": self.ca.key_pem, "tls.crt": self.leaf.cert_pem,
                "tls.key": self.leaf.key_pem}
        if self.previous_ca_pem:
            data["ca-previous.crt"] = self.previous_ca_pem
        return {k: base64.b64encode(v).decode() for k, v in data.items()}

    @classmethod
    def from_secret_data(cls, data: dict[str, str] | None) -> Bundle | None:
        """The bundle in a Secret, or None when it is incomplete or unreadable (then it is replaced)."""
        raw = {k: base64.b64decode(v) for k, v in (data or {}).items()}
        try:
            ca = certs.key_pair(raw["ca.crt"], raw["ca.key"])
            leaf = certs.key_pair(raw["tls.crt"], raw["tls.key"])
        except (KeyError, ValueError, TypeError):
            return None
        return cls(ca, leaf, raw.get("ca-previous.crt", b""))


def _certificates(pem: bytes) -> list[x509.Certificate]:
    """The certificates in ``pem`` ([] when it is not PEM)."""
    try:
        return x509.load_pem_x509_certificates(pem) if pem.strip() else []
    except ValueError:
        return []


def _still_valid(pem: bytes, now: dt.datetime) -> list[x509.Certificate]:
    """The certificates in ``pem`` that have not expired at ``now`` ([] when it is not PEM)."""
    return [c for c in _certificates(pem) if c.not_valid_after_utc > now]



def _pem(found: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in found)


def canonical_ca_bundle(found: list[x509.Certificate]) -> str:
    """The caBundle value of the CAs ``found``, oldest first, each once: one order whatever replica
    writes it, so that replicas holding different sets of CAs (one read a renewed Secret, the other
    reads it only at its next hourly look) do not rewrite each other's order."""
    unique: list[x509.Certificate] = []
    for c in found:
        if c not in unique:
            unique.append(c)
    return certs.ca_bundle(_pem(sorted(unique, key=lambda c: (c.not_valid_before_utc, c.serial_number))))


def renewal_reason(bundle: Bundle, settings: Settings, now: dt.datetime) -> str | None:
    """Why ``bundle`` must be replaced now, or None when it is good."""
    ca, leaf = bundle.ca.cert, bundle.leaf.cert
    if ca.not_valid_after_utc - now < settings.ca_renew_before:
        return f"the CA expires on {ca.not_valid_after_utc:%Y-%m-%d}"
    if leaf.not_valid_after_utc - now < settings.leaf_renew_before:
        return f"the serving certificate expires on {leaf.not_valid_after_utc:%Y-%m-%d}"
    if not certs.signed_by(leaf, ca):
        return "the serving certificate was not issued by the CA"
    try:
        names = set(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                    .get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = set()
    if not set(settings.dns_names) <= names:
        return "the serving certificate does not name the Service"
    return None


def _previous_while_its_leaves_live(previous_pem: bytes, ca: x509.Certificate, now: dt.datetime) -> bytes:
    """The still valid CAs of ``previous_pem`` while a serving certificate they signed may be valid:
    every such certificate was issued before ``ca``, which replaced them, so none outlives ``ca``'s
    start by more than a serving certificate's life. After that the Secret stops carrying them."""
    if now >= ca.not_valid_before_utc + certs.BACKDATE + certs.LEAF_VALIDITY:
        return b""
    return _pem(_still_valid(previous_pem, now))


def issue_bundle(settings: Settings, previous: Bundle | None, now: dt.datetime, served_ca: bytes = b"") -> Bundle:
    """A new serving certificate, signed by the previous CA while that one has time left. Without a
    previous bundle (the Secret was deleted or spoiled), ``served_ca``, the CA of the certificate this
    replica serves now, is kept as the previous CA: until the new files are in place, the apiserver
    must still accept the certificate being served."""
    if previous is not None and previous.ca.cert.not_valid_after_utc - now >= settings.ca_renew_before:
        ca = previous.ca
        previous_ca_pem = _previous_while_its_leaves_live(previous.previous_ca_pem, ca.cert, now)
    else:
        ca = certs.new_ca(now=now)
        # Keep trusting the CA being replaced while it is still valid.
        still_valid = previous is not None and previous.ca.cert.not_valid_after_utc > now
        previous_ca_pem = previous.ca.cert_pem if previous is not None and still_valid else served_ca
    leaf = certs.issue(ca, settings.dns_names[-2], dns_names=settings.dns_names, now=now)
    return Bundle(ca, leaf, previous_ca_pem)


def _ours(c: x509.Certificate) -> bool:
    """Whether ``c`` is a CA as certs.new_ca makes them: self-signed, under our CA name."""
    return c.subject == c.issuer == certs.CA_NAME


class SelfManagedCertificates:
    """Call ``ensure()`` once before serving (the cert dir then holds the files), then run ``run()``
    next to the server to renew before expiry. ``check_interval`` is how often the Secret is read,
    by this replica and, as they run from one Deployment, by the others."""

    def __init__(self, api: client.ApiClient, settings: Settings, cert_dir: Path,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 check_interval: dt.timedelta = CHECK_INTERVAL) -> None:
        self.api = api
        self.secrets = f"/api/v1/namespaces/{settings.namespace}/secrets"
        self.settings = settings
        self.cert_dir = cert_dir
        self.clock = clock
        self.check_interval = check_interval
        #: What the last ensure() left in the cert dir: the CAs the caBundle must hold for it.
        self.bundle: Bundle | None = None

    def ensure(self, settle: float = 0.0) -> Bundle:
        """The caBundle before the files: a certificate from a new CA is served only once the webhook
        configurations trust that CA, and, when they had to be changed, ``settle`` seconds later (the
        apiserver learns of the change through its informers). Until the files are replaced the
        certificate served until now must stay trusted too."""
        bundle = self.ensure_secret()
        if self.patch_ca_bundles(bundle, self._served_ca()) and settle and self._serving() != bundle.leaf.cert_pem:
            time.sleep(settle)
        self.write_files(bundle)
        self.bundle = bundle
        return bundle

    def _served_ca(self) -> x509.Certificate | None:
        """The still valid CA in the cert dir's ca.crt that signed its tls.crt, None when there is none.
        Only that one: the other CAs of ca.crt may be long out of use."""
        try:
            leaf = _certificates((self.cert_dir / "tls.crt").read_bytes())
            cas = _still_valid((self.cert_dir / "ca.crt").read_bytes(), self.clock())
        except OSError:
            return None
        return next((c for c in cas if leaf and certs.signed_by(leaf[0], c)), None)

    def _serving(self) -> bytes:
        try:
            return (self.cert_dir / "tls.crt").read_bytes()
        except OSError:
            return b""

    def ensure_secret(self) -> Bundle:
        """The bundle in the Secret: created when missing, renewed when due; a lost race reads the
        winner's."""
        s = self.settings
        name = f"{s.namespace}/{s.secret_name}"
        served = self._served_ca()
        served_pem = b"" if served is None else _pem([served])
        for _ in range(5):
            secret = self._read()
            if secret is None:
                bundle = issue_bundle(s, None, self.clock(), served_pem)
                try:
                    request(self.api, "POST", self.secrets, body={
                        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "data": bundle.secret_data(),
                        "metadata": {"name": s.secret_name, "labels": {
                            "app.kubernetes.io/name": "multus-webhook",
                            "app.kubernetes.io/managed-by": "multus-webhook"}}})
                    log.info("created the CA and serving certificate in Secret %s", name)
                    return bundle
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    continue  # another replica created it first: read theirs
            now = self.clock()
            current = Bundle.from_secret_data(secret.get("data"))
            reason: str | None
            if current is None:
                reason = "the Secret holds no usable certificate"
                if self.bundle is not None:
                    # Our replicas never write an unusable Secret, and this one read a usable one at its
                    # last look: someone else writes it, and each time they do a new CA is made.
                    log.warning("Secret %s no longer holds the certificates this replica read from it at its "
                                "last check (CA made %s): something else writes it, such as a cert-manager "
                                "Certificate or a GitOps tool still managing it; each time, a new CA is made",
                                name, f"{self.bundle.ca.cert.not_valid_before_utc:%Y-%m-%d %H:%M}")
                renewed = issue_bundle(s, None, now, served_pem)
            elif (reason := renewal_reason(current, s, now)) is not None:
                renewed = issue_bundle(s, current, now)
            else:
                renewed = dataclasses.replace(current, previous_ca_pem=_previous_while_its_leaves_live(
                    current.previous_ca_pem, current.ca.cert, now))
                if renewed.previous_ca_pem == current.previous_ca_pem:
                    return current
                reason = "no serving certificate the previous CA signed is valid any more: dropped that CA"
            secret["data"] = renewed.secret_data()
            secret["type"] = secret.get("type") or "kubernetes.io/tls"
            try:
                # PUT carries the resourceVersion read: a replica that renewed in between makes it fail (409).
                request(self.api, "PUT", f"{self.secrets}/{s.secret_name}", body=secret)
                log.info("renewed the certificates in Secret %s: %s", name, reason)
                return renewed
            except ApiException as exc:
                if exc.status != 409:
                    raise
                # Another replica renewed it between our read and our update: read again.
        raise RuntimeError(f"Secret {name} kept changing; giving up for now")

    def _read(self) -> dict[str, Any] | None:
        try:
            secret: dict[str, Any] = request(self.api, "GET", f"{self.secrets}/{self.settings.secret_name}")
            return secret
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def write_files(self, bundle: Bundle) -> None:
        certs.write_tls_files(self.cert_dir, bundle.ca_bundle_pem, bundle.leaf)

    def patch_ca_bundles(self, bundle: Bundle, served: x509.Certificate | None = None) -> bool:
        """Make every webhook of our two configurations trust ``bundle``'s CA and the CA ``served``
        under until ``bundle``'s certificate is written. The other still valid CAs a caBundle
        has stay: another replica may serve under a CA this one has not read (it renewed since, or a
        new pod made a new Secret after the old was deleted), and a caBundle without it fails that
        replica's share of requests. That replica puts its own CA back, so this one does not add
        ``bundle``'s previous CA: once no replica serves under it, it can be removed by hand for good.
        A JSON patch that tests each webhook's name and caBundle as read, so that a concurrent edit
        fails it (then it is read again) instead of undoing the other's. True when something was
        patched."""
        required = [bundle.ca.cert, *([served] if served is not None else [])]
        kept = required + _still_valid(bundle.previous_ca_pem, self.clock())
        # Read at most once per call, and only when a superseded CA is about to go.
        in_secret = functools.cache(self._secret_cas)
        name = self.settings.webhook_configuration
        changed = False
        for kind, plural in (("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
                             ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations")):
            path = f"/apis/admissionregistration.k8s.io/v1/{plural}/{name}"
            for attempt in range(5):
                config: dict[str, Any] = request(self.api, "GET", path)
                ops = self._ca_bundle_ops(config, required, kept, in_secret)
                if not ops:
                    break
                try:
                    request(self.api, "PATCH", path, body=ops, content_type=JSON_PATCH)
                except ApiException as exc:
                    if exc.status != 422 or attempt == 4:  # a failed test: changed since it was read
                        raise
                    continue
                changed = True
                log.info("set the caBundle of %s %s", kind, name)
                break
        return changed

    def _superseded(self, ca: x509.Certificate, known: list[x509.Certificate], now: dt.datetime) -> bool:
        """Whether no replica can still be serving under ``ca``, one of our CAs: a newer CA of ours was
        made (it is in the caBundle, so it was the Secret's at that moment) more than
        SUPERSEDED_AFTER_CHECKS check intervals ago. A replica reads the Secret at every check and
        serves what it read, so by then every replica serves under that CA or a later one, unless the
        Secret was set back to an older CA since: the caller keeps the CAs the Secret names. This keeps
        the caBundle bounded when something keeps spoiling the Secret (each time, a new CA), without
        taking out the CA of a replica that has not had its next look yet. A replica that could not
        read the Secret for that long (while it could still write the caBundle) puts its CA back at
        its next caBundle check."""
        made_before = now - SUPERSEDED_AFTER_CHECKS * self.check_interval - certs.BACKDATE
        return _ours(ca) and any(
            _ours(c) and ca.not_valid_before_utc < c.not_valid_before_utc < made_before for c in known)

    def _secret_cas(self) -> list[x509.Certificate]:
        """The CAs the Secret names now, current and previous (whether or not the rest of it is usable):
        every replica serves under one of them once it has had its next look, whatever their age. A
        Secret set back to an older bundle (a backup restored, a GitOps copy, a CA made earlier with
        ``multus-webhook certs``) makes an older CA current again, which a newer CA of ours seems to
        supersede."""
        secret = self._read()
        data = (secret or {}).get("data") or {}
        return [c for key in ("ca.crt", "ca-previous.crt")
                for c in _certificates(base64.b64decode(data.get(key, "")))]

    def _ca_bundle_ops(self, config: dict[str, Any], required: list[x509.Certificate],
                       kept: list[x509.Certificate],
                       in_secret: Callable[[], list[x509.Certificate]]) -> list[dict[str, Any]]:
        """A webhook's caBundle is rewritten only when a ``required`` CA is missing from it or it holds
        a CA to go (expired, or one of ours superseded and not ``in_secret``) that is not ``kept``,
        never for its order alone: a replica that still trusts fewer CAs than another must not undo the
        other's bundle at every check (the other would put it back)."""
        now = self.clock()
        ops: list[dict[str, Any]] = []
        for i, hook in enumerate(config.get("webhooks") or []):
            current = hook.get("clientConfig", {}).get("caBundle")
            try:
                present = _certificates(base64.b64decode(current or ""))
            except ValueError:
                present = []
            missing = [c for c in required if c not in present]
            gone = [c for c in present if c not in kept and (
                c.not_valid_after_utc <= now
                or (self._superseded(c, present + required, now) and c not in in_secret()))]
            if current is not None and not missing and not gone:
                continue
            value = canonical_ca_bundle(required + [c for c in present if c not in gone])
            if current == value:
                continue
            ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": hook["name"]})
            ops.append({"op": "test", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": current}
                       if current is not None else
                       {"op": "test", "path": f"/webhooks/{i}/clientConfig", "value": hook.get("clientConfig")})
            ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": value})
        return ops

    async def run(self, stop: asyncio.Event, settle: dt.timedelta = CA_BUNDLE_SETTLE,
                  ca_bundle_interval: dt.timedelta = CA_BUNDLE_CHECK_INTERVAL) -> None:
        """ensure() every check interval (sooner after a failure) until ``stop`` is set; in between,
        every ``ca_bundle_interval``, that the webhook configurations still trust what is served (two
        GETs, a PATCH when one lost its caBundle)."""
        loop = asyncio.get_running_loop()
        next_secret = loop.time()
        while not stop.is_set():
            if self.bundle is None or loop.time() >= next_secret:
                try:
                    await asyncio.to_thread(self.ensure, settle.total_seconds())
                    next_secret = loop.time() + self.check_interval.total_seconds()
                except Exception:
                    log.exception("certificate check failed; retrying in %s", RETRY_INTERVAL)
                    next_secret = loop.time() + RETRY_INTERVAL.total_seconds()
            else:
                await self._check_ca_bundles(self.bundle)
            next_bundle = math.inf if self.bundle is None else loop.time() + ca_bundle_interval.total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, min(next_secret, next_bundle) - loop.time()))

    async def _check_ca_bundles(self, bundle: Bundle) -> None:
        try:
            await asyncio.to_thread(self.patch_ca_bundles, bundle)
        except Exception as exc:  # a configuration deleted and not yet applied again answers 404
            log.warning("could not check the caBundle of the webhook configurations %s: %s",
                        self.settings.webhook_configuration,
                        status_message(exc) if isinstance(exc, ApiException) else exc)
