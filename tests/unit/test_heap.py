"""The process's malloc arenas, counted by glibc itself (malloc_stats prints one "Arena N:" block each)."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import textwrap
import weakref

import pytest

from webhook import heap

#: Threads that each allocate, as the live cache's reflectors do; glibc gives each its own arena by default.
THREADS = 6

SCRIPT = textwrap.dedent(f"""
    import ctypes, sys, threading
    if sys.argv[1] == "cli":  # what every command does first, before it starts any thread
        import contextlib, io
        from webhook.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["rules"]) == 0
    def work():
        kept = [bytes(4096) for _ in range(2000)]
        del kept
    threads = [threading.Thread(target=work) for _ in range({THREADS})]
    for t in threads: t.start()
    for t in threads: t.join()
    ctypes.CDLL(None).malloc_stats()
""")


def arenas(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return len(re.findall(r"^Arena \d+:", run.stderr, re.MULTILINE))


@pytest.mark.skipif(heap._mallopt is None, reason="not glibc: the arenas are the C library's own business")
def test_every_command_has_its_threads_share_two_arenas() -> None:
    # Without the limit each thread has its own: what the test would see if the call did nothing.
    assert arenas("default") > heap.ARENAS
    assert arenas("cli") <= heap.ARENAS


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_cycle_frozen_alive_is_collected_at_the_next_freeze_once_dead() -> None:
    """A relist froze whatever was alive, an in-flight request's cycles too: once they died they were
    out of the collector's reach for ever, and memory grew with every relist."""
    cycle = Cycle()
    dead = weakref.ref(cycle)
    try:
        heap.freeze_long_lived()  # the first sync's
        del cycle
        heap.freeze_long_lived()  # a relist's
        assert dead() is None
    finally:
        gc.unfreeze()
