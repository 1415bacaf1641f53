"""Coverage-guided fuzzing (atheris) of the running server: the aiohttp application with the real
handlers, instrumented, served over TLS on a thread of this process; every input goes over a real
connection as raw bytes, or wrapped as the object of an AdmissionReview. Any 5xx, AdmissionReview
with code 500, or answer that is neither a 4xx with a reason nor a well-formed AdmissionReview
stops the run with a non-zero exit. Run by test_atheris.py: python atheris_server.py -runs=N."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["webhook"]):
    from aiohttp import web

    from webhook import certs
    from webhook.server import ServerState, make_app
    from webhook.tls import ReloadingTLS

KINDS = ["NetworkAttachmentDefinition", "Pod", "NetworkProfile"]


def start_server(cert_dir: Path) -> int:
    """The server on a port the kernel picks as it binds (port 0: no port picked before can be taken
    meanwhile); the port, once it listens."""
    ready = threading.Event()
    bound: list[int] = []

    async def main() -> None:
        runner = web.AppRunner(make_app(ServerState()), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ReloadingTLS(cert_dir).context).start()
            bound.append(runner.addresses[0][1])
        finally:
            ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    if not ready.wait(10) or not bound:
        raise SystemExit("the server did not start")
    return bound[0]


def wrap(fdp: atheris.FuzzedDataProvider) -> bytes:
    kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    try:
        obj: Any = json.loads(text)
    except (ValueError, RecursionError):
        obj = {"kind": kind, "metadata": {"name": "f", "annotations": {"k8s.v1.cni.cncf.io/networks": text}},
               "spec": {"config": text}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "fuzz", "kind": {"group": "", "version": "v1", "kind": kind}, "operation": "CREATE",
        "namespace": "default", "object": obj}}).encode()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="atheris-"))
    ca = certs.new_ca()
    certs.write_bundle(work, ca, certs.issue(ca, "localhost", dns_names=["localhost"]))
    port = start_server(work)
    ctx = ssl.create_default_context(cafile=str(work / "ca.crt"))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)

    def one_input(data: bytes) -> None:
        nonlocal conn
        fdp = atheris.FuzzedDataProvider(data)
        path = "/mutate" if fdp.ConsumeBool() else "/validate"
        body = wrap(fdp) if fdp.ConsumeBool() else fdp.ConsumeBytes(fdp.remaining_bytes())
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            status, answer = resp.status, resp.read()
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
            raise
        if status == 200:
            review = json.loads(answer)
            response = review["response"]
            assert review["apiVersion"] == "admission.k8s.io/v1", answer
            assert review["kind"] == "AdmissionReview", answer
            assert isinstance(response["allowed"], bool), answer
            assert response.get("status", {}).get("code") != 500, answer
        else:
            assert 400 <= status < 500, (status, answer)
            assert json.loads(answer)["message"], answer

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
