"""The floor: an aiohttp webhook that does nothing but answer "allowed", with the same TLS setup as
multus-webhook serve. Whatever it costs per request (TLS, HTTP, JSON in and out) no webhook on
aiohttp can avoid; our throughput as a fraction of its throughput is what our rules and models cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from webhook.tls import ReloadingTLS


async def allow(request: web.Request) -> web.Response:
    review = json.loads(await request.read())
    return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                              "response": {"uid": review["request"]["uid"], "allowed": True}})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert-dir", required=True)
    p.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = p.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    # The very TLS setup of multus-webhook serve (protocol floor, certificate reload on handshake).
    ctx = ReloadingTLS(Path(args.cert_dir), None).context
    app = web.Application(client_max_size=7 * 1024 * 1024)
    app.router.add_post("/validate", allow)
    app.router.add_post("/mutate", allow)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host=args.host, port=args.port, ssl_context=ctx, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
