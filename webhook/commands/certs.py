"""`multus-webhook certs`: a CA and a serving certificate signed by it.

The CA's key is kept beside it (``ca.key``), so that ``--force`` renews the serving certificate under
the same CA and the caBundle the webhook configurations hold stays valid. A new CA comes only with
``--new-ca`` (or when the one there cannot sign: no key, or expired), and the CAs the served
certificate still depends on stay in ``ca.crt`` beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from webhook import certs
from webhook.atomicfile import temporary_target


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("certs", help="create a CA and a serving certificate signed by it")
    c.add_argument("--out", default="certs", help="output directory (default: certs)")
    c.add_argument("--dns", action="append", metavar="NAME", help="DNS name for the certificate (repeatable)")
    c.add_argument("--ip", action="append", metavar="ADDR", help="IP address for the certificate (repeatable)")
    c.add_argument("--force", action="store_true",
                   help="replace the serving certificate; the CA in --out is kept while it can sign")
    c.add_argument("--new-ca", action="store_true",
                   help="replace the CA; a serving certificate already there is kept, signed by the old CA, "
                        "which stays in ca.crt: update the caBundle, then renew it with --force (a second run, "
                        "not together)")
    c.set_defaults(func=run)


def _names(args: argparse.Namespace) -> tuple[list[str], list[str]] | str:
    """The certificate's DNS names and IP addresses, or the error naming the option."""
    ips: list[str] = args.ip or []
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return f"--ip {ip!r} is not an IP address"
    dns: list[str] = []
    for name in args.dns or []:
        try:
            dns.append(certs.dns_name(name))
        except ValueError as exc:
            return f"--dns {exc}"
    # Without any name, the certificate is for the in-cluster Service.
    return dns or ([] if ips else certs.service_dns_names("multus-webhook", "multus-webhook")), ips


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _certificates(pem: bytes | None) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem) if pem and pem.strip() else []
    except ValueError:
        return []



def _usable_ca(out: Path, now: dt.datetime) -> tuple[certs.KeyPair | None, str]:
    """The CA of ca.crt (its first certificate) with the key of ca.key, or None and why not."""
    cert_pem, key_pem = _read(out / "ca.crt"), _read(out / "ca.key")
    if cert_pem is None:
        return None, ""
    if key_pem is None:
        return None, f"{out}/ca.key is missing"
    try:
        ca = certs.key_pair(cert_pem, key_pem)
    except ValueError as exc:
        return None, f"{out}/ca.crt and ca.key are not a CA and its key ({exc})"
    if ca.cert.not_valid_after_utc <= now:
        return None, f"the CA in {out}/ca.crt expired on {ca.cert.not_valid_after_utc:%Y-%m-%d}"
    return ca, ""


def run(args: argparse.Namespace) -> int:
    names = _names(args)
    if isinstance(names, str):
        print(f"multus-webhook certs: {names}", file=sys.stderr)
        return 2
    dns, ips = names
    if args.force and args.new_ca:
        # Together they would serve a certificate of the new CA before any caBundle trusts it.
        print("multus-webhook certs: --force and --new-ca go in two steps: run --new-ca, put the caBundle "
              "it prints into both webhook configurations, then --force to renew the serving certificate",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    existing = [name for name in (*certs.TLS_FILES, "ca.key") if (out / name).exists()]
    if existing and not (args.force or args.new_ca):
        print(f"multus-webhook certs: {out} already holds {', '.join(existing)}; pass --force to replace "
              "the serving certificate (the CA is kept), --new-ca to replace the CA", file=sys.stderr)
        return 1
    now = dt.datetime.now(dt.UTC)
    try:
        served = _certificates(_read(out / "tls.crt"))
        previous = [c for c in _certificates(_read(out / "ca.crt")) if c.not_valid_after_utc > now]
        ca, why_not = (None, "") if args.new_ca else _usable_ca(out, now)
    except OSError as exc:
        print(f"multus-webhook certs: cannot read {_failed_file(exc, out)}: {exc.strerror}", file=sys.stderr)
        return 2
    # A serving certificate still valid stays when only the CA is replaced: it is served until the
    # webhook configurations trust the new CA.
    keep_leaf = args.new_ca and bool(served) and served[0].not_valid_after_utc > now
    if keep_leaf and (args.dns or args.ip):
        print("multus-webhook certs: --new-ca keeps the serving certificate in "
              f"{out}/tls.crt; pass --dns/--ip to the --force that renews it", file=sys.stderr)
        return 2
    new = ca is None
    ca = ca or certs.new_ca(now=now)
    # The CAs that signed the certificate served until now must stay trusted while it may still be
    # served (other replicas, a reload still to come).
    ca_pem = ca.cert_pem + b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in previous
        if c != ca.cert and served and certs.signed_by(served[0], c))
    leaf = None if keep_leaf else certs.issue(ca, (dns or ips)[0], dns_names=dns, ip_addresses=ips, now=now)
    try:
        certs.write_tls_files(out, ca_pem, leaf, ca if new else None)
    except OSError as exc:
        print(f"multus-webhook certs: cannot write {_failed_file(exc, out)}: {exc.strerror}", file=sys.stderr)
        return 2
    written = ["ca.crt", "ca.key"] if new else []
    written += [] if leaf is None else ["tls.crt", "tls.key"]
    print(f"wrote {', '.join(f'{out}/{name}' for name in written)}", file=sys.stderr)
    if why_not:
        print(f"multus-webhook certs: made a new CA: {why_not}", file=sys.stderr)
    if new and existing:
        print("multus-webhook certs: the CA changed: put the caBundle below into both webhook "
              "configurations" + (", then renew the serving certificate with --force" if keep_leaf else ""),
              file=sys.stderr)
    if leaf is not None and not new and ca.cert.not_valid_after_utc < now + certs.LEAF_VALIDITY:
        print(f"multus-webhook certs: WARNING: {_short_lived(out, ca.cert, now)}", file=sys.stderr)
    print(certs.ca_bundle(ca_pem))
    return 0


def _failed_file(exc: OSError, out: Path) -> Path:
    """The file ``exc`` is about: for a temporary file, the one it was to replace; ``out`` when it
    names none."""
    if exc.filename is None:
        return out
    path = Path(exc.filename)
    target = temporary_target(path.name)
    return path.with_name(target) if target else path


def _short_lived(out: Path, ca: x509.Certificate, now: dt.datetime) -> str:
    """Why the serving certificate just issued lives less than its year, and what to do. Not a refusal:
    a --force that keeps the CA needs no change to the caBundle, so it is also what keeps the webhook
    served while the CA's replacement (which does) is under way."""
    days = (ca.not_valid_after_utc - now).days
    return (f"the CA in {out}/ca.crt expires on {ca.not_valid_after_utc:%Y-%m-%d} (in {days} days), and the "
            "serving certificate it signed expires with it. Replace the CA before then: --new-ca, put the "
            "caBundle it prints into both webhook configurations, then --force (certs/README.md, Rotation)")
