"""The log of HTTP error answers: one line per endpoint and code per interval, and the next line says
how many went unlogged."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from webhook.ratelog import RateLimit
from webhook.server import ErrorLog, ParserErrors


def test_one_line_per_endpoint_and_code_per_interval_and_the_next_counts_those_not_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    errors = ErrorLog(RateLimit(interval=60.0, clock=lambda: now[0]))
    caplog.set_level(logging.WARNING, logger="webhook.server")
    for _ in range(100):
        errors.answered("POST", "/validate", 415, "junk")
    errors.answered("POST", "/mutate", 415, "junk")
    errors.answered("POST", "/validate", 400, "junk")
    now[0] = 59.9
    errors.answered("POST", "/validate", 415, "junk")
    now[0] = 60.0
    errors.answered("POST", "/validate", 415, "junk")
    errors.answered("POST", "/validate", 415, "junk")
    now[0] = 200.0
    errors.answered("POST", "/validate", 415, "junk")
    assert [r.getMessage() for r in caplog.records] == [
        "POST /validate answered 415: junk",
        "POST /mutate answered 415: junk",
        "POST /validate answered 400: junk",
        "POST /validate answered 415: junk (and 100 more like it since the last such line, not logged)",
        "POST /validate answered 415: junk (and 1 more like it since the last such line, not logged)",
    ]


def record_of(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord("webhook.server.aiohttp", logging.ERROR, __file__, 1, "Error handling request from %s",
                             ("127.0.0.1",), (type(exc), exc, None))


def test_aiohttp_logs_malformed_requests_in_the_error_log_and_errors_of_ours_as_they_are(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="webhook.server")
    parser_errors = ParserErrors(ErrorLog())
    assert parser_errors.filter(record_of(ValueError("a bug of ours that escaped the middlewares"))) is True
    caret = BadHttpMessage("Invalid character in chunk size:\n\n  b'ZZ'\n    ^")
    assert parser_errors.filter(record_of(caret)) is False
    assert parser_errors.filter(record_of(BadHttpMessage("again"))) is False
    assert [r.getMessage() for r in caplog.records] == [
        "malformed request answered 400: Invalid character in chunk size: b'ZZ' ^"]
