"""Server TLS with certificate reload: every new connection gets the certificate currently on disk.

The listening socket keeps one SSLContext whose SNI callback (called for every handshake, with or
without SNI) hands the connection the most recently loaded context. A change of the files is noticed
by stat() at the next handshake; a half-written pair (key and certificate that do not match) is not
loaded, so the previous certificate keeps being served until the pair is whole again.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


def _new_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class ReloadingTLS:
    def __init__(self, cert_dir: Path, client_ca: Path | None = None) -> None:
        self.cert = cert_dir / "tls.crt"
        self.key = cert_dir / "tls.key"
        self.client_ca = client_ca
        self._stamp = self._read_stamp()
        self._current = _new_context(self.cert, self.key, client_ca)
        self.reloads = 0
        self.context = _new_context(self.cert, self.key, client_ca)
        self.context.sni_callback = self._on_handshake

    def _read_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.cert, self.key, *([self.client_ca] if self.client_ca else [])):
            st = os.stat(path)
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def maybe_reload(self) -> None:
        try:
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return
            fresh = _new_context(self.cert, self.key, self.client_ca)
        except (OSError, ssl.SSLError) as exc:
            # Mid-rotation (one file replaced, not yet the other): keep serving the old pair.
            log.debug("certificate files not loadable yet: %s", exc)
            return
        self._current = fresh
        self._stamp = stamp
        self.reloads += 1
        log.info("loaded new serving certificate from %s", self.cert)

    def _on_handshake(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        try:
            self.maybe_reload()
            sslobj.context = self._current
        except Exception:  # an exception here would abort the handshake
            log.exception("certificate reload failed; serving the previous certificate")
