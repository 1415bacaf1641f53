"""requirements.lock, which the image installs exactly, is what the tests run against: every run-time
dependency (pyproject.toml's, and theirs) at the version installed here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_lock_pins_the_tested_environment() -> None:
    command = [sys.executable, str(ROOT / "hack" / "lock.py"), "--check", str(ROOT / "requirements.lock")]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_image_installs_the_lock_and_nothing_else() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.lock " in dockerfile
    assert "pip install --no-cache-dir --no-compile --no-deps --target /app -r requirements.lock ." in dockerfile
