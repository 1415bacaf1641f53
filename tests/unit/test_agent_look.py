"""The agent's look at a host (a temporary directory standing for the node's root): when Multus became
ready, for the boot and for the current run of readiness, and a clock stepped back since."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from webhook.agent.agent import Agent, AgentConfig
from webhook.agent.probe import Report
from webhook.agent.standin import PORTMAP_CHAINED, StandInHost, multus_config_delegating_to


@pytest.fixture
def host() -> Iterator[StandInHost]:
    h = StandInHost()
    h.make_ready("b1")
    yield h
    h.cleanup()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def written_at(host: StandInHost, moment: datetime) -> None:
    """Multus's config written at ``moment`` (later than its socket: the host's evidence is then it)."""
    conf = host.path(host.layout.cni_conf_dir) / host.layout.multus_config
    os.utime(conf, (moment.timestamp(), moment.timestamp()))


def look(host: StandInHost, clock: Clock, agent: Agent | None = None) -> tuple[Agent, Report]:
    agent = agent or Agent(client.ApiClient(), AgentConfig(node="n", layout=host.layout), clock=clock)
    report = agent.look()
    assert report.ready, report
    return agent, report


def socket_made(host: StandInHost) -> datetime:
    return datetime.fromtimestamp(host.path(host.layout.multus_socket).stat().st_ctime, UTC)


def test_a_run_of_readiness_begins_when_the_daemon_makes_its_socket(host: StandInHost) -> None:
    """Only a daemon that starts again begins another run; its config written again (as the daemon does
    whenever the primary CNI's config is written, with no gap) does not."""
    base = datetime.now(UTC) + timedelta(minutes=1)
    clock = Clock(base)
    agent, first = look(host, clock)
    assert first.run_since == socket_made(host)
    written_at(host, base + timedelta(seconds=10))
    clock.now = base + timedelta(seconds=20)
    _, rewritten = look(host, clock, agent)
    assert rewritten.run_since == first.run_since
    # The first readiness of the boot is never later than this agent first saw Multus ready on it.
    assert rewritten.ready_since == base

    host.restart_daemon()
    clock.now = base + timedelta(seconds=40)
    _, again = look(host, clock, agent)
    assert again.run_since == socket_made(host) != first.run_since
    assert again.ready_since == base
    # A new agent on the same host: the run is the host's, not its look's.
    clock.now = base + timedelta(minutes=5)
    assert look(host, clock)[1].run_since == again.run_since


def test_host_evidence_ahead_of_the_clock_is_a_clock_stepped_back(host: StandInHost,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    base = datetime.now(UTC) + timedelta(minutes=1)
    written_at(host, base)
    clock = Clock(base + timedelta(seconds=0.5))  # file times lag a tick: no step
    agent, report = look(host, clock)
    assert not report.clock_stepped
    clock.now = base - timedelta(seconds=30)  # chrony stepped the clock back
    with caplog.at_level(logging.WARNING, logger="webhook.agent.agent"):
        report = look(host, clock, agent)[1]
        assert look(host, clock, agent)[1].clock_stepped
    assert report.clock_stepped
    assert [r.getMessage() for r in caplog.records if "stepped back" in r.getMessage()] == [
        f"node n: Multus became ready at {base.isoformat()} by the host's files, later than the clock now "
        f"({clock.now.isoformat()}): the clock was stepped back since; sandbox times are not compared with it "
        "on this boot"]


def test_a_config_the_runtime_would_use_at_the_next_reboot_is_logged_once(
        host: StandInHost, caplog: pytest.LogCaptureFixture) -> None:
    host.remove_config("05-cilium.conflist")
    host.write_config("cilium/05-cilium.conflist")
    host.write_config("05-cilium.conflist")  # left from before Cilium's cni.confPath moved it
    host.write_config("00-multus.conf", multus_config_delegating_to("cilium/05-cilium.conflist"))
    clock = Clock(datetime.now(UTC) + timedelta(minutes=1))
    with caplog.at_level(logging.WARNING, logger="webhook.agent.agent"):
        agent, _ = look(host, clock)
        look(host, clock, agent)
        host.remove_config("05-cilium.conflist")
        look(host, clock, agent)
        host.write_config("05-cilium.conflist")
        look(host, clock, agent)
    warned = [r.getMessage() for r in caplog.records if "at the next reboot" in r.getMessage()]
    assert len(warned) == 2
    assert warned[0].startswith("node n: /etc/cni/net.d/05-cilium.conflist is a CNI config at the top level")


def test_a_capability_missing_from_multus_config_is_logged_once_per_transition(
        host: StandInHost, caplog: pytest.LogCaptureFixture) -> None:
    """DelegateCapabilitiesCurrent False holds no readiness back: the log line is the only word of it
    besides the MultusNodeState, once when it turns False (not at every poll), again after it was fixed
    and came back."""
    host.remove_config("05-cilium.conflist")
    host.write_config("cilium/05-cilium.conflist")
    host.write_config("00-multus.conf", multus_config_delegating_to("cilium/05-cilium.conflist"))
    clock = Clock(datetime.now(UTC) + timedelta(minutes=1))
    with caplog.at_level(logging.WARNING, logger="webhook.agent.agent"):
        agent, _ = look(host, clock)
        host.write_config("cilium/05-cilium.conflist", PORTMAP_CHAINED)
        look(host, clock, agent)
        look(host, clock, agent)
        host.write_config("cilium/05-cilium.conflist")
        look(host, clock, agent)
        host.write_config("cilium/05-cilium.conflist", PORTMAP_CHAINED)
        look(host, clock, agent)
    warned = [r for r in caplog.records if "which 00-multus.conf does not carry" in r.getMessage()]
    assert [r.levelname for r in warned] == ["WARNING", "WARNING"]
    assert warned[0].getMessage().startswith(
        "node n: /etc/cni/net.d/cilium/05-cilium.conflist enables portMappings, which 00-multus.conf does not carry")
