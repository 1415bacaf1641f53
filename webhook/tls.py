"""Server TLS with certificate reload: every new connection gets the certificate currently on disk.

The listening socket keeps one SSLContext whose SNI callback (called for every handshake, with or
without SNI) hands the connection the most recently loaded context. A change of the files is noticed
by stat() at the next handshake; a half-written pair (key and certificate that do not match) is not
loaded, so the previous certificate keeps being served until the pair is whole again.

With a client CA, a client certificate is asked for but not required at the TLS layer: the kubelet's
HTTPS probes present none, and a handshake that requires one would fail them, so a pod never became
Ready. A certificate that is presented must chain to the CA (the handshake fails otherwise); the
server then requires one on the admission endpoints only (``has_verified_peer``), and with
--client-name one of those Common Names (``common_names``): a client CA is often the cluster's, which
signs every kubelet's and many users' certificates too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from pathlib import Path

from cryptography import x509

log = logging.getLogger(__name__)

#: (inode, mtime in ns, size) of each file, None for one that cannot be stat()ed.
Stamp = tuple[tuple[int, int, int] | None, ...]


#: OpenSSL's names for ECDHE key exchange with AES-GCM or ChaCha20-Poly1305.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def new_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2 with ECDHE and an AEAD cipher only, as Go's defaults (the apiserver's client offers these):
    # OpenSSL's defaults also take the CBC suites Go lists as insecure (crypto/tls InsecureCipherSuites).
    # TLS 1.3 has only AEAD suites, which this list does not touch.
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _not_after(cert: Path) -> float:
    """notAfter of the first certificate in ``cert`` (the leaf), as a Unix time."""
    return x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc.timestamp()


def has_verified_peer(peercert: object) -> bool:
    """Whether a connection's ``peercert`` (the transport's extra info) is a client certificate that
    chained to the client CA. With CERT_OPTIONAL OpenSSL fails the handshake on one that does not, so
    any certificate that got this far was verified; without one, getpeercert() gives None (or {})."""
    return isinstance(peercert, dict) and bool(peercert)


def common_names(peercert: object) -> list[str]:
    """The Common Names in the subject of a verified ``peercert`` (getpeercert()'s dict form)."""
    subject = peercert.get("subject") if isinstance(peercert, dict) else None
    return [value for rdn in subject or () for key, value in rdn if key == "commonName"]


class ReloadingTLS:
    def __init__(self, cert_dir: Path, client_ca: Path | None = None) -> None:
        self.cert = cert_dir / "tls.crt"
        self.key = cert_dir / "tls.key"
        self.client_ca = client_ca
        self._stamp = self._read_stamp()
        self._current = new_context(self.cert, self.key, client_ca)
        self.reloads = 0
        #: Distinct broken states of the files seen (one per set of stamps), for the metrics.
        self.reload_failures = 0
        self._broken: Stamp | None = None
        #: notAfter (Unix time) of the certificate being served.
        self.not_after = _not_after(self.cert)
        self.context = new_context(self.cert, self.key, client_ca)
        self.context.sni_callback = self._on_handshake

    def _files(self) -> tuple[Path, ...]:
        return (self.cert, self.key, *([self.client_ca] if self.client_ca else []))

    def _read_stamp(self) -> Stamp:
        stamps: list[tuple[int, int, int] | None] = []
        for path in self._files():
            try:
                st = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def maybe_reload(self) -> None:
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return
        try:
            fresh = new_context(self.cert, self.key, self.client_ca)
            not_after = _not_after(self.cert)
        except (OSError, ssl.SSLError, ValueError) as exc:
            # Every handshake comes here while the files stay broken: one warning and one count per
            # distinct state of the files, not per connection. A rotation that replaces the key and
            # then the certificate can show a mismatched pair for an instant (one warning, followed
            # by the "loaded" line); a pair that stays broken keeps the old certificate served until
            # it expires, hence a warning and the counter rather than debug.
            if stamp != self._broken:
                self._broken = stamp
                self.reload_failures += 1
                log.warning("cannot load %s together (%s); still serving the certificate loaded before, which "
                            "expires at %s", ", ".join(map(str, self._files())), exc, _utc(self.not_after))
            return
        self._current = fresh
        self._stamp = stamp
        self._broken = None
        self.not_after = not_after
        self.reloads += 1
        log.info("loaded new serving certificate from %s (expires at %s)", self.cert, _utc(self.not_after))

    def _on_handshake(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        try:
            self.maybe_reload()
            sslobj.context = self._current
        except Exception:  # an exception here would abort the handshake
            log.exception("certificate reload failed; serving the previous certificate")


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")
