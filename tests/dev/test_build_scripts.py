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


FAKE_GO = """#!/bin/sh
# go as far as build.sh uses it: `go version`, and `go build ... -o OUT PKG`, which writes a stand-in
# binary and logs the package.
case $1 in
  version) echo "go version $FAKE_GO_VERSION linux/amd64" ;;
  build)
    for arg; do pkg=$arg; done
    echo "$pkg" >> "$FAKE_GO_LOG"
    while [ $# -gt 0 ]; do
      case $1 in -o) printf '#!/bin/sh\\n' > "$2"; chmod +x "$2" ;; esac
      shift
    done ;;
  *) exit 2 ;;
esac
"""


class Builds:
    """hack/ copied into ``tmp_path`` (its go.mod files there to change), run with a fake go into a cache
    of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.hack = tmp_path / "hack"
        shutil.copytree(REPO / "hack", self.hack, ignore=shutil.ignore_patterns("__pycache__"))
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "go").write_text(FAKE_GO)
        (bin_dir / "go").chmod(0o755)
        self.log = tmp_path / "go.log"
        self.env = {**fresh_go_env(tmp_path / "cache"), "PATH": f"{bin_dir}:{os.environ['PATH']}",
                    "FAKE_GO_LOG": str(self.log), "FAKE_GO_VERSION": "go1.26.8"}

    def run(self, script: str) -> tuple[Path, list[str]]:
        """The cache directory ``script`` prints, and the packages it built."""
        self.log.write_text("")
        result = subprocess.run(["bash", str(self.hack / script)], capture_output=True, text=True, env=self.env)
        assert result.returncode == 0, result.stderr
        assert not [p.name for p in Path(result.stdout.strip()).glob(".*") if p.is_dir()], "a temporary dir is left"
        return Path(result.stdout.strip()), sorted(self.log.read_text().split())


KUBE = ["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl"]
ETCD = "go.etcd.io/etcd/server/v3"


def test_a_bumped_dependency_rebuilds_the_binaries_built_from_it(tmp_path: Path) -> None:
    """The cache directory is named by the versions (k8s-v1.37.2-etcd-v3.6.16): a go.mod bump of
    k8s.io/kubernetes, or a replace for a CVE, reused the binaries built before it."""
    builds = Builds(tmp_path)
    cache, built = builds.run("controlplane/build.sh")
    assert cache.name == "k8s-v1.37.2-etcd-v3.6.16"
    assert built == [ETCD, *KUBE]
    assert builds.run("controlplane/build.sh")[1] == []
    with (builds.hack / "controlplane" / "kube" / "go.mod").open("a") as go_mod:
        go_mod.write("replace golang.org/x/net => golang.org/x/net v0.99.0\n")
    assert builds.run("controlplane/build.sh") == (cache, KUBE)
    builds.env["FAKE_GO_VERSION"] = "go1.26.9"
    assert builds.run("controlplane/build.sh")[1] == [ETCD, *KUBE]


def test_a_cache_built_before_the_stamps_is_used_as_it_is(tmp_path: Path) -> None:
    """Every warm cache so far holds binaries without a stamp: rebuilding them all is many minutes."""
    builds = Builds(tmp_path)
    cache, _ = builds.run("controlplane/build.sh")
    for stamp in cache.glob(".*.sum"):
        stamp.unlink()
    assert builds.run("controlplane/build.sh")[1] == []
    with (builds.hack / "controlplane" / "etcd" / "go.sum").open("a") as go_sum:
        go_sum.write("example.com/cve v1.0.1 h1:AAAA=\n")
    assert builds.run("controlplane/build.sh")[1] == [ETCD]


def test_the_cni_plugins_and_multus_add_are_rebuilt_from_what_changed(tmp_path: Path) -> None:
    builds = Builds(tmp_path)
    cache, built = builds.run("cniplugins/build.sh")
    assert (cache.name, len(built)) == ("v1.10.0", 18)  # 16 plugins, dhcp, multus-add
    assert "./multus-add" in built
    (builds.hack / "cniplugins" / "multus-add" / "main.go").write_text("package main\n")
    assert builds.run("cniplugins/build.sh")[1] == ["./multus-add"]
    with (builds.hack / "cniplugins" / "go.mod").open("a") as go_mod:
        go_mod.write("replace golang.org/x/sys => golang.org/x/sys v0.99.0\n")
    assert builds.run("cniplugins/build.sh")[1] == built


def test_the_readme_names_the_go_the_build_modules_need() -> None:
    """It said Go 1.26+ while the CNI plugins module says go 1.26.8: a go 1.26.0 with GOTOOLCHAIN=local
    cannot build it."""
    needed = max(tuple(int(n) for n in line.split()[1].split("."))
                   for go_mod in (REPO / "hack").glob("**/go.mod") for line in go_mod.read_text().splitlines()
                   if line.startswith("go "))
    assert f"Go {'.'.join(map(str, needed))}+ " in (REPO / "README.md").read_text()
