"""The `multus-webhook` command: serve | certs | rules."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from webhook import __version__
from webhook.rules import Policy, PolicyError, registered


def _load_policy(path: str | None) -> Policy:
    return Policy.from_file(Path(path), set(registered())) if path else Policy()


def cmd_serve(args: argparse.Namespace) -> int:
    from webhook.admission.handlers import AdmissionContext
    from webhook.cluster.static import StaticClusterView
    from webhook.documents import DocumentError
    from webhook.server import ServerState, serve_forever

    try:
        policy = _load_policy(args.policy)
        context = AdmissionContext(policy=policy)
        if args.cluster_state:
            context.view = StaticClusterView.from_files(args.cluster_state)
    except (PolicyError, DocumentError) as exc:
        print(f"multus-webhook serve: {exc}", file=sys.stderr)
        return 2
    for name in ("tls.crt", "tls.key"):
        if not (Path(args.cert_dir) / name).is_file():
            print(f"multus-webhook serve: {Path(args.cert_dir) / name} is missing "
                  "(create one with 'multus-webhook certs --out DIR')", file=sys.stderr)
            return 2
    state = ServerState(context=context)
    asyncio.run(serve_forever(state, cert_dir=Path(args.cert_dir), host=args.host, port=args.port,
                              client_ca=Path(args.client_ca) if args.client_ca else None))
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    from webhook import certs

    dns = args.dns or certs.service_dns_names("multus-webhook", "multus-webhook")
    ca = certs.new_ca()
    leaf = certs.issue(ca, dns[0] if dns else (args.ip or ["multus-webhook"])[0], dns_names=dns, ip_addresses=args.ip)
    try:
        certs.write_bundle(Path(args.out), ca, leaf, force=args.force)
    except certs.CertsExist as exc:
        print(f"multus-webhook certs: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"multus-webhook certs: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/ca.crt, {args.out}/tls.crt, {args.out}/tls.key", file=sys.stderr)
    print(certs.ca_bundle(ca.cert_pem))
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    rules = sorted(registered().values(), key=lambda r: r.id)
    width = max(len(r.id) for r in rules)
    print(f"{'ID':<{width}}  SEVERITY  KINDS{' ' * 30}TITLE")
    for r in rules:
        kinds = ",".join(sorted(r.kinds))
        print(f"{r.id:<{width}}  {r.severity:<8}  {kinds:<35}{r.title}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multus-webhook", description="Admission webhook that makes Multus safe to use")
    p.add_argument("--version", action="version", version=f"multus-webhook {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the admission webhook server (HTTPS only)")
    s.add_argument("--port", type=int, default=8443)
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--cert-dir", default="certs", help="directory holding tls.crt and tls.key (reloaded on change)")
    s.add_argument("--client-ca", help="verify the apiserver's client certificate against this CA bundle")
    s.add_argument("--cluster-state", action="append", metavar="FILE",
                   help="standalone mode: YAML/JSON objects standing for the cluster (repeatable)")
    s.add_argument("--policy", metavar="FILE", help="rule severities and audit switch")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("certs", help="create a CA and a serving certificate signed by it")
    c.add_argument("--out", default="certs", help="output directory (default: certs)")
    c.add_argument("--dns", action="append", metavar="NAME", help="DNS name for the certificate (repeatable)")
    c.add_argument("--ip", action="append", metavar="ADDR", help="IP address for the certificate (repeatable)")
    c.add_argument("--force", action="store_true", help="replace existing files")
    c.set_defaults(func=cmd_certs)

    r = sub.add_parser("rules", help="list the rules with id, default severity and title")
    r.set_defaults(func=cmd_rules)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
