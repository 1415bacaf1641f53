"""The Makefile's venv: made again, from nothing, when the interpreter it was made with is not
$(PYTHON) any more."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS_PYTHON = " ".join(sys.version.split())


def planned(tmp_path: Path, stamp: str, require: Callable[[str], NoReturn]) -> str:
    """What `make install` would run (make -n) in a copy of the checkout's Makefile and inputs, with a
    venv stamp that holds ``stamp``, newer than those inputs."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
        os.utime(tmp_path / name, (1_000_000_000, 1_000_000_000))
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed-stamp").write_text(stamp)
    if shutil.which("make") is None:
        require("no make")
    # Not as a sub-make of `make test`: its MAKEFLAGS and MAKELEVEL would change what make prints.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "-n", "install", f"PYTHON={sys.executable}"], cwd=tmp_path,
                            capture_output=True, text=True, check=True, env=env)
    return result.stdout


def test_a_venv_of_this_python_is_kept(tmp_path: Path, require: Callable[[str], NoReturn]) -> None:
    assert "venv" not in planned(tmp_path, f"{THIS_PYTHON}\n", require)


@pytest.mark.parametrize("stamp", [
    "3.10.12 (main, Nov 20 2023, 15:14:05) [GCC 11.4.0]\n",
    "",  # a stamp from before the interpreter was recorded: which one made that venv is unknown
])
def test_a_venv_of_another_python_is_made_again_from_nothing(tmp_path: Path, stamp: str,
                                                            require: Callable[[str], NoReturn]) -> None:
    plan = planned(tmp_path, stamp, require)
    assert f"{sys.executable} -m venv --clear .venv\n" in plan
    assert plan.endswith(f"echo '{THIS_PYTHON}' > .venv/.installed-stamp\n")
