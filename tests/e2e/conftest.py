"""Fixtures shared by the e2e modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from webhook.agent.standin import StandInHost


@pytest.fixture
def host() -> Iterator[StandInHost]:
    """A temporary directory standing for a node's root file system."""
    h = StandInHost()
    yield h
    h.cleanup()
