"""`multus-webhook certs`: a CA and a serving certificate signed by it."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from webhook import certs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("certs", help="create a CA and a serving certificate signed by it")
    c.add_argument("--out", default="certs", help="output directory (default: certs)")
    c.add_argument("--dns", action="append", metavar="NAME", help="DNS name for the certificate (repeatable)")
    c.add_argument("--ip", action="append", metavar="ADDR", help="IP address for the certificate (repeatable)")
    c.add_argument("--force", action="store_true", help="replace existing files")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ips: list[str] = args.ip or []
    for ip in ips:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            print(f"multus-webhook certs: --ip {ip!r} is not an IP address", file=sys.stderr)
            return 2
    dns: list[str] = []
    for name in args.dns or []:
        try:
            dns.append(certs.dns_name(name))
        except ValueError as exc:
            print(f"multus-webhook certs: --dns {exc}", file=sys.stderr)
            return 2
    # Without any name, the certificate is for the in-cluster Service.
    dns = dns or ([] if ips else certs.service_dns_names("multus-webhook", "multus-webhook"))
    ca = certs.new_ca()
    leaf = certs.issue(ca, (dns or ips)[0], dns_names=dns, ip_addresses=ips)
    try:
        certs.write_bundle(Path(args.out), ca, leaf, force=args.force)
    except certs.CertsExist as exc:
        print(f"multus-webhook certs: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"multus-webhook certs: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/ca.crt, {args.out}/tls.crt, {args.out}/tls.key", file=sys.stderr)
    print(certs.ca_bundle(ca.cert_pem))
    return 0
