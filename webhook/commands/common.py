"""Helpers shared by several subcommands."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

from webhook.rules import Policy, registered


def load_policy(path: str | None) -> Policy:
    """The policy file given with --policy, or the defaults."""
    return Policy.from_file(Path(path), set(registered())) if path else Policy()


def stop_on_signals() -> threading.Event:
    """An Event that SIGTERM or SIGINT sets. The handler sets it from a thread of its own: Event.set
    takes a lock, and a second signal arriving while the first handler holds that lock would deadlock
    the main thread."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=stop.set, name="signal", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    return stop
