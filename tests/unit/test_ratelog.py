"""FailureLog: a failure that repeats is logged once per interval with the count left out, its end once."""

from __future__ import annotations

import logging

import pytest

from webhook.ratelog import FailureLog, RateLimit


def test_a_repeating_failure_is_logged_once_per_interval_with_the_count_left_out_and_its_end_once(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    failures = FailureLog(logging.getLogger("test.ratelog"), RateLimit(interval=60.0, clock=lambda: now[0]))
    caplog.set_level(logging.INFO, logger="test.ratelog")
    for second in range(0, 125, 5):  # every 5s for two minutes: 25 failures
        now[0] = float(second)
        failures.failed("Node", "watching Node failed: refused")
        failures.failed("lease", "lease x: refused")
    failures.recovered("Pod", "watching Pod works again")  # never failed: nothing to say
    now[0] = 130.0
    failures.recovered("Node", "watching Node works again")
    failures.recovered("Node", "watching Node works again")  # said once
    assert [(r.levelname, r.getMessage()) for r in caplog.records if "Node" in r.getMessage()] == [
        ("WARNING", "watching Node failed: refused"),
        ("WARNING", "watching Node failed: refused (and 11 more like it since the last such line, not logged)"),
        ("WARNING", "watching Node failed: refused (and 11 more like it since the last such line, not logged)"),
        ("INFO", "watching Node works again after 25 failures in 130s"),
    ]
    assert len([r for r in caplog.records if "lease" in r.getMessage()]) == 3
    # A new run starts over: its first failure is logged at once.
    failures.failed("Node", "watching Node failed: again")
    assert caplog.records[-1].getMessage() == "watching Node failed: again"
