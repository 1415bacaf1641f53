"""What the differential tests share: the real Multus v4.3.0, built from hack/multus."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest

MULTUS_BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "multus" / "build.sh"

#: Runs a pod's networks annotation (pod "pod" in namespace "default") and the NADs it selects (each
#: {"namespace", "name", "config"}) through Multus: its "networks", and with NADs its "delegates", each
#: with the "config" it hands to libcni; or its "error" and the "stage" ("parse", "delegates") that failed.
RealMultus = Callable[[str, list[dict[str, str]]], dict[str, Any]]


@pytest.fixture(scope="session")
def real_multus(require: Callable[[str], NoReturn]) -> RealMultus:
    try:
        out = subprocess.run(["bash", str(MULTUS_BUILD_SCRIPT)], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        # build.sh reuses a built binary without Go; only a build needs the toolchain.
        if shutil.which("go") is None:
            require("no Go toolchain to build Multus v4.3.0")
        require(f"{MULTUS_BUILD_SCRIPT} failed: {exc.stderr.strip()[-2000:]}")
    tool = Path(out.stdout.strip().splitlines()[-1]) / "multus-delegates"

    def run(annotation: str, nads: list[dict[str, str]]) -> dict[str, Any]:
        proc = subprocess.run([str(tool)], input=json.dumps({"annotation": annotation, "nads": nads}),
                              capture_output=True, text=True, timeout=60, check=True)
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    return run
