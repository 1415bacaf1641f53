"""Coverage-guided fuzzing of the server with atheris (see atheris_server.py), a bounded run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

# atheris is in the test extras; only a machine where its wheel cannot be built goes without it, and
# CI must not silently be such a machine.
if importlib.util.find_spec("atheris") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("atheris is not installed (CI=true: the fuzz test must run)")
    pytest.skip("atheris is not installed", allow_module_level=True)
pytestmark = pytest.mark.slow


def test_atheris_finds_no_500_and_no_malformed_answer(tmp_path: Path) -> None:
    harness = Path(__file__).with_name("atheris_server.py")
    result = subprocess.run(
        [sys.executable, str(harness), "-runs=8000", "-max_len=2048", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done 8000 runs" in result.stderr
