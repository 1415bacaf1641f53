"""ReloadingTLS behind a real TLS listener: a broken certificate pair on disk keeps the previous
certificate served, is warned about once per broken state of the files (not once per handshake), and
shows in the metrics with the served certificate's expiry."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry

from webhook import certs
from webhook.atomicfile import write_atomic
from webhook.server import TLSMetrics
from webhook.tls import ReloadingTLS

Served = Callable[[], Awaitable[x509.Certificate]]


def leaf(ca: certs.KeyPair, days: int) -> certs.KeyPair:
    return certs.issue(ca, "127.0.0.1", ip_addresses=["127.0.0.1"], validity=dt.timedelta(days=days))


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[tuple[ReloadingTLS, certs.KeyPair, Served]]:
    """A TLS listener on ReloadingTLS(tmp_path), the CA of its certificates, and what a new
    connection is served."""
    ca = certs.new_ca()
    certs.write_bundle(tmp_path, ca, leaf(ca, 30))
    tls = ReloadingTLS(tmp_path)

    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=tls.context)
    port = server.sockets[0].getsockname()[1]
    trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))

    async def served() -> x509.Certificate:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusted, server_hostname="127.0.0.1")
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return x509.load_der_x509_certificate(der)

    try:
        yield tls, ca, served
    finally:
        server.close()
        await server.wait_closed()


async def test_a_broken_pair_is_warned_once_per_state_and_counted(
        listener: tuple[ReloadingTLS, certs.KeyPair, Served], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    tls, ca, served = listener
    registry = CollectorRegistry()
    registry.register(TLSMetrics(tls))

    def metric(name: str) -> float | None:
        value: float | None = registry.get_sample_value(name)
        return value

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    first = await served()
    assert metric("multus_webhook_certificate_reload_failures_total") == 0
    assert metric("multus_webhook_certificate_expiry_timestamp_seconds") == first.not_valid_after_utc.timestamp()
    caplog.set_level(logging.INFO, logger="webhook.tls")

    # The key of another certificate: the pair does not load.
    second = leaf(ca, 60)
    write_atomic(tmp_path / "tls.key", second.key_pem, 0o600)
    for _ in range(3):
        assert await served() == first
    assert len(warnings()) == 1, warnings()
    assert str(tmp_path / "tls.key") in warnings()[0]
    assert first.not_valid_after_utc.isoformat() in warnings()[0]  # until when the old one still serves
    assert metric("multus_webhook_certificate_reload_failures_total") == 1

    # Another broken state: the key gone. Warned about and counted again, once.
    os.remove(tmp_path / "tls.key")
    for _ in range(3):
        assert await served() == first
    assert len(warnings()) == 2, warnings()
    assert metric("multus_webhook_certificate_reload_failures_total") == 2
    # A scrape looks at the files too, without a handshake: still the same state, not counted again.
    assert metric("multus_webhook_certificate_reload_failures_total") == 2

    # Whole again: served, the expiry follows, and the count of failures stays.
    write_atomic(tmp_path / "tls.key", second.key_pem, 0o600)
    write_atomic(tmp_path / "tls.crt", second.cert_pem)
    assert await served() == second.cert
    assert metric("multus_webhook_certificate_expiry_timestamp_seconds") == \
        second.cert.not_valid_after_utc.timestamp()
    assert metric("multus_webhook_certificate_reload_failures_total") == 2
    assert len(warnings()) == 2
    assert any(r.getMessage().startswith("loaded new serving certificate") for r in caplog.records)


async def test_a_scrape_sees_a_new_pair_without_a_handshake(
        listener: tuple[ReloadingTLS, certs.KeyPair, Served], tmp_path: Path) -> None:
    tls, ca, served = listener
    registry = CollectorRegistry()
    registry.register(TLSMetrics(tls))
    renewed = leaf(ca, 90)
    certs.write_bundle(tmp_path, ca, renewed, force=True)
    assert registry.get_sample_value("multus_webhook_certificate_expiry_timestamp_seconds") == \
        renewed.cert.not_valid_after_utc.timestamp()
    assert await served() == renewed.cert
