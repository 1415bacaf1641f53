"""hack/*/build.sh, which build the control plane and the CNI plugins from Go modules into a cache,
on a machine that is not this one: no go env of ours, a checkout that belongs to someone else."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from webhook.dev.controlplane import REPO

pytestmark = pytest.mark.slow

CNI_BUILD = REPO / "hack" / "cniplugins" / "build.sh"


def fresh_go_env(cache: Path) -> dict[str, str]:
    """The environment of a fresh machine: no go env file (this one's sets GOFLAGS=-buildvcs=false),
    no git config (safe.directory), nothing from the module proxy: only what the module cache holds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "GIT_"))}
    return {**env, "GOENV": "off", "GOPROXY": "off", "GOFLAGS": "", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1", "XDG_CACHE_HOME": str(cache)}


@pytest.fixture(scope="module")
def cni_cache(require: Callable[[str], NoReturn]) -> Path:
    """The built CNI plugins (hack/cniplugins/build.sh's cache)."""
    if shutil.which("go") is None:
        require("no Go toolchain to run hack/cniplugins/build.sh")
    try:
        out = subprocess.run(["bash", str(CNI_BUILD)], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        require(f"{CNI_BUILD} failed: {exc.stderr.strip()[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def test_the_cni_build_works_in_a_checkout_that_belongs_to_another_user(
        cni_cache: Path, tmp_path: Path, require: Callable[[str], NoReturn]) -> None:
    """go stamps VCS information into multus-add (a main package of the build module), and git refuses
    a repository of another owner: the build failed with "error obtaining VCS status"."""
    if os.geteuid() != 0:
        require("needs root to give a checkout to another user")
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "hack", checkout / "hack", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["chown", "-R", "1234:1234", str(checkout)], check=True)
    # The plugins as built already: only multus-add, the module's own package, is built here.
    cache = tmp_path / "cache" / "multus-webhook" / "cni-plugins" / cni_cache.name
    cache.mkdir(parents=True)
    for plugin in cni_cache.iterdir():
        if not plugin.name.startswith(".") and plugin.name != "multus-add":
            (cache / plugin.name).symlink_to(plugin)
    result = subprocess.run(["bash", str(checkout / "hack" / "cniplugins" / "build.sh")], capture_output=True,
                            text=True, env=fresh_go_env(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(cache)
    assert os.access(cache / "multus-add", os.X_OK)
