"""Certificates: a CA and the leaf certificates it signs (ECDSA P-256), written as the Kubernetes TLS
Secret keys ``ca.crt``, ``tls.crt`` and ``tls.key``."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.atomicfile import write_atomic

#: The longest Common Name X.509 allows (RFC 5280, ub-common-name).
MAX_COMMON_NAME = 64
CA_VALIDITY = dt.timedelta(days=5 * 365)
LEAF_VALIDITY = dt.timedelta(days=365)
#: The Common Name of the CAs this program makes (``certs`` and --self-managed-certs alike).
CA_COMMON_NAME = "multus-webhook-ca"
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
# Clocks of the apiserver and the webhook host may disagree slightly.
BACKDATE = dt.timedelta(minutes=5)


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether ``ca`` signed ``cert``. All our CAs have the same name: the signature tells them apart."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class KeyPair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def key_pair(cert_pem: bytes, key_pem: bytes) -> KeyPair:
    """The first certificate of ``cert_pem`` with its key; ValueError when either does not load or the
    key is not the certificate's."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC key")
    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.public_key() != key.public_key():
        raise ValueError("the key is not the certificate's")
    return KeyPair(cert, key)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: dt.datetime,
             not_after: dt.datetime, *, ca: bool) -> x509.CertificateBuilder:
    """What a CA's certificate and a leaf's share: backdated by BACKDATE, for signatures; a CA's (``ca``)
    signs certificates too, and no CA below it (path length 0)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )


def new_ca(common_name: str = CA_COMMON_NAME, validity: dt.timedelta = CA_VALIDITY,
           now: dt.datetime | None = None) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = now or dt.datetime.now(dt.UTC)
    cert = (
        _builder(name, name, key, now, now + validity, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    dns_names: list[str] | None = None,
    ip_addresses: list[str] | None = None,
    client: bool = False,
    organizations: list[str] | None = None,
    validity: dt.timedelta = LEAF_VALIDITY,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A serving certificate (or, with ``client``, a client certificate) signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    # X.509 allows 64 characters in a Common Name, DNS names are longer (a Service in a namespace of 47
    # or more): clients read the SANs only, so a longer name is left out of the subject.
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if len(common_name) <= MAX_COMMON_NAME else []
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations or []]
    now = now or dt.datetime.now(dt.UTC)
    builder = (
        _builder(x509.Name(attrs), ca.cert.subject, key, now, min(now + validity, ca.cert.not_valid_after_utc),
                 ca=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names or []]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses or []]
    if sans:
        # Critical when the subject is empty (RFC 5280 4.2.1.6).
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not attrs)
    return KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


#: What a DNS name in a certificate can hold for a name a client dials: letters, digits, '-', '.', a
#: wildcard '*', and '_', which is no hostname character but resolves and Go's crypto/x509 matches.
_DNS_CHARACTERS = re.compile(r"[A-Za-z0-9._*-]+")


def dns_name(name: str) -> str:
    """``name`` as a certificate's DNS name holds it: ASCII, an internationalised name in its IDNA form.
    ValueError when it cannot be one, or is one no client matches the name it dials against."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        # Clients match an address against the IP SANs only.
        raise ValueError(f"{name!r} is an IP address: give it with --ip")
    if name.endswith("."):
        # Go's crypto/x509 (the apiserver's client) never matches a SAN ending in a dot. Refused rather
        # than stripped: the name written in the certificate is then the one given.
        raise ValueError(f"{name!r} ends with a dot, which clients never match: write it without")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{name!r} is not a DNS name: {exc}") from None
    if not ascii_name or len(ascii_name) > 253:
        raise ValueError(f"{name!r} is not a DNS name: 1 to 253 characters")
    if not _DNS_CHARACTERS.fullmatch(ascii_name):
        raise ValueError(f"{name!r} is not a DNS name: letters, digits, '-', '_', '.' and '*' only")
    return ascii_name


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the apiserver uses to reach a webhook Service."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


TLS_FILES = ("ca.crt", "tls.crt", "tls.key")


class CertsExist(FileExistsError):
    pass


def write_tls_files(out: Path, ca_pem: bytes, leaf: KeyPair | None, ca: KeyPair | None = None) -> None:
    """Write ``ca_pem`` as ca.crt, with ``ca`` its key as ca.key (0600), and ``leaf`` as tls.crt and
    tls.key (0600) into ``out``, each by atomic rename. Each key is written before its certificate, so
    that a reader that sees a new certificate finds its key already there. A file that already holds
    what it would get is left alone: each rename is a new inode, and the server would load (and log)
    the same certificate again at every hourly check."""
    out.mkdir(parents=True, exist_ok=True)
    if ca is not None:
        _write_changed(out / "ca.key", ca.key_pem, 0o600)
    _write_changed(out / "ca.crt", ca_pem)
    if leaf is not None:
        _write_changed(out / "tls.key", leaf.key_pem, 0o600)
        _write_changed(out / "tls.crt", leaf.cert_pem)


def _write_changed(path: Path, data: bytes, mode: int = 0o644) -> None:
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_atomic(path, data, mode)


def write_bundle(out: Path, ca: KeyPair, leaf: KeyPair, *, force: bool = False) -> None:
    """Write ca.crt, tls.crt and tls.key into ``out``; CertsExist when one is there, unless ``force``."""
    existing = [name for name in TLS_FILES if (out / name).exists()]
    if existing and not force:
        raise CertsExist(f"{out} already holds {', '.join(existing)}; pass --force to replace them")
    write_tls_files(out, ca.cert_pem, leaf)


def ca_bundle(ca_pem: bytes) -> str:
    """The base64 value for a webhook configuration's clientConfig.caBundle."""
    return base64.b64encode(ca_pem).decode()
