"""How a lapse of leadership in one term counts against the heartbeats the controller observed. No
call reaches an apiserver here: _lapse and _resume only account for time."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from webhook.cluster.store import ClusterStore
from webhook.controller import decide
from webhook.controller.controller import Controller, ControllerConfig

TERM = ("2026-03-01T11:00:00.000000Z", 0)


def controller() -> Controller:
    return Controller(client.ApiClient(), ControllerConfig(identity="a"), ClusterStore())


def test_the_lapse_counts_from_when_leadership_ended_not_from_the_last_pass() -> None:
    """Renewals that take most of the renew deadline leave windows of leadership shorter than the time
    between two passes. Measured from the last pass, a lapse also took in the rest of the window the
    controller led in, so each window counted as no more than a pass, and a dead agent's heartbeat
    (counted only while it leads) never went stale."""
    c = controller()
    now = time.monotonic()
    c._term = TERM
    c._acted_at = now - 9.95  # its one pass in the window, 50ms after the window opened
    c.elector._renewed_at = now - 10 - c.config.renew_deadline + 1.5  # leading until 8.5s ago
    c.heartbeats = {"n": decide.Heartbeat("t0", now - 20, True)}
    c._lapse()
    c._resume(TERM, now)
    # The 1.45s it led after its pass count as silence; the 8.5s since it stopped leading do not.
    assert c.heartbeats["n"].since == pytest.approx(now - 20 + 8.5, abs=1e-6)


def test_a_lapse_of_no_leadership_before_the_first_pass_counts_nothing() -> None:
    c = controller()
    c._lapse()
    assert c._lapsed_at is None
    c._resume(TERM, time.monotonic())
    assert c._term == TERM
    assert not c.heartbeats
