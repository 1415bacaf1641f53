"""Uninstall mode: take off the hosts what Multus and our installer put there, logging each step."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from webhook.agent.probe import config_names, is_config_name
from webhook.node.hostfs import (
    CNI_BIN_DIR,
    CNI_CONF_DIR,
    INSTALL_MULTUS_BINARIES,
    INSTALL_MULTUS_TEMPORARY,
    loudly,
    on_host,
    remove_empty_dirs,
    remove_path,
)
from webhook.node.installer import InstallError, release_all

# Multus's cache: a record of each sandbox it set up (saved at ADD, read and removed at DEL) and
# libcni's cache of its delegates' results.
MULTUS_CACHE_DIR = PurePosixPath("var/lib/cni/multus")
# What the thick plugin leaves behind: its config (the daemon removes it on a clean shutdown, not
# on a crash), the shim and passthru binaries its init container copies, and its state directory.
MULTUS_PATHS = (
    CNI_CONF_DIR / "00-multus.conf",
    CNI_CONF_DIR / "multus.d",
    *(CNI_BIN_DIR / name for name in INSTALL_MULTUS_BINARIES),
    MULTUS_CACHE_DIR,
)
# Where containerd and CRI-O mount the sandboxes' network namespaces (/var/run is /run on most hosts,
# not on Talos); the cleanup DaemonSet mounts it here, so that a record whose namespace is gone shows
# as stale. The runtime removes the file when it removes the sandbox.
NETNS_DIRS = (PurePosixPath("/var/run/netns"), PurePosixPath("/run/netns"))
NETNS_DIR = PurePosixPath("var/run/netns")
# Directories the DaemonSet's hostPath mounts create; removed only when nothing was put in them.
MULTUS_DIRS_IF_EMPTY = (PurePosixPath("etc/cni/multus"),)

log = logging.getLogger("multus-webhook.uninstall")
#: What lets the cleanup remove the records of sandboxes whose secondary networks were never torn down.
DISCARD_ENV = "DISCARD_MULTUS_ATTACHMENTS"


@dataclass(frozen=True)
class Attached:
    """A sandbox Multus attached secondary networks to and never tore down: its record in
    /var/lib/cni/multus (named by the container ID, a list of the delegates to DEL, the first the
    pod's default network) is the one place on the node that says which delegates, and so which
    IPAM addresses, a DEL must release."""
    container_id: str
    #: "namespace/name" from libcni's cache of the delegates' results, empty when it has none.
    pod: str
    #: The secondary delegates' names.
    networks: str
    #: The sandbox's network namespace (from libcni's cache), when the cleanup sees where it was
    #: mounted: True when that file is gone (the pod is gone and the record is stale), False when it is
    #: still there, None when the cleanup cannot tell.
    netns_gone: bool | None = None
    netns: str = ""


@dataclass
class CleanupReport:
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: No CNI config is left where the container runtime reads it: the node starts no new pod.
    without_config: bool = False
    #: Sandboxes whose secondary networks Multus has not torn down: nothing was removed.
    attached: list[Attached] = field(default_factory=list)

    @property
    def node_left_working(self) -> bool:
        """Whether the cleanup did all it had to and the node can still start pods: what lets the
        cleanup DaemonSet's rollout go on to the next node."""
        return not self.errors and not self.without_config and not self.attached

    def step(self, message: str) -> None:
        self.steps.append(message)
        log.info("%s", message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        loudly(log, logging.WARNING, message)

    def error(self, message: str) -> None:
        self.errors.append(message)
        log.error("%s", message)


def top_level_configs(host_root: Path) -> list[str]:
    """CNI config files directly in /etc/cni/net.d, the only ones the container runtime reads, as
    the runtime (and the node agent) finds and sorts them."""
    conf_dir = on_host(host_root, CNI_CONF_DIR)
    if not conf_dir.is_dir():
        return []
    return list(config_names(conf_dir))


def subdirectory_configs(host_root: Path) -> list[str]:
    conf_dir = on_host(host_root, CNI_CONF_DIR)
    if not conf_dir.is_dir():
        return []
    return sorted(str(p.relative_to(conf_dir)) for sub in conf_dir.iterdir() if sub.is_dir()
                  for p in sub.rglob("*") if p.is_file() and is_config_name(p.name))


def install_multus_leftovers(host_root: Path) -> list[PurePosixPath]:
    bin_dir = on_host(host_root, CNI_BIN_DIR)
    if not bin_dir.is_dir():
        return []
    return [CNI_BIN_DIR / p.name for p in sorted(bin_dir.iterdir()) if INSTALL_MULTUS_TEMPORARY.fullmatch(p.name)]


def attached_sandboxes(host_root: Path) -> list[Attached]:
    """The records in Multus's cache that still list secondary delegates. Every sandbox Multus set
    up has a record; one with the default network alone loses nothing when the primary CNI tears it
    down by itself, so only the others count."""
    cache = on_host(host_root, MULTUS_CACHE_DIR)
    if not cache.is_dir():
        return []
    sandboxes = sandboxes_by_container(cache / "results")
    netns_dir: Path | None = on_host(host_root, NETNS_DIR)
    netns_dir = netns_dir if netns_dir and netns_dir.is_dir() else None
    found = []
    for path in sorted(p for p in cache.iterdir() if p.is_file()):
        try:
            delegates = json.loads(path.read_bytes())
        except ValueError:
            continue  # Multus's DEL cannot use a record that is not JSON either: it tears down nothing more
        if isinstance(delegates, list) and len(delegates) > 1:
            names = [str(d.get("Name") or "?") if isinstance(d, dict) else "?" for d in delegates[1:]]
            pod, netns = sandboxes.get(path.name, ("", ""))
            found.append(Attached(path.name, pod, ", ".join(names), netns_gone(netns_dir, netns), netns))
    return found


def netns_gone(netns_dir: Path | None, netns: str) -> bool | None:
    """Whether the namespace file ``netns`` is gone, when it is one of the runtime's and ``netns_dir``
    (the host's directory of them, if mounted) shows it; None when the cleanup cannot tell."""
    where = PurePosixPath(netns)
    # A NUL byte: nothing the runtime made, and exists() would say gone.
    if netns_dir is None or where.parent not in NETNS_DIRS or where.name in ("", ".", "..") or "\0" in netns:
        return None
    try:
        os.lstat(netns_dir / where.name)
    except FileNotFoundError:
        return True
    except OSError:  # not readable: says nothing about the sandbox
        return None
    return False


def sandboxes_by_container(results: Path) -> dict[str, tuple[str, str]]:
    """Container ID to ("namespace/name", network namespace path), from the CNI_ARGS and netns that
    libcni cached with each delegate's result: Multus's own record holds neither."""
    sandboxes: dict[str, tuple[str, str]] = {}
    if not results.is_dir():
        return sandboxes
    for path in results.iterdir():
        try:
            cached = json.loads(path.read_bytes())
            args = dict(cached.get("cniArgs") or ())
            netns = cached.get("netns")
            sandboxes[str(cached["containerId"])] = (f"{args['K8S_POD_NAMESPACE']}/{args['K8S_POD_NAME']}",
                                                     netns if isinstance(netns, str) else "")
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue  # a help to the reader only; the record itself still counts
    return sandboxes


def warn_attached(report: CleanupReport, attached: list[Attached]) -> None:
    report.attached = attached
    lines = "\n".join(f"  container {a.container_id}" + (f" (pod {a.pod})" if a.pod else "") + f": {a.networks}"
                      + sandbox_state(a) for a in attached)
    report.warn(
        f"{len(attached)} sandbox(es) still have secondary networks Multus never tore down; their records in "
        f"/{MULTUS_CACHE_DIR} are all that says which delegates, and which IPAM addresses, to release:\n"
        f"{lines}\n"
        "Nothing was removed. Tell a live record from a stale one (where not said above): the sandbox of a live "
        "one is listed on this node by `crictl pods --id <container>` (from a `kubectl debug node/...` pod) or "
        "`talosctl containers -k`.\n"
        "- Live: abort the uninstall (apply the install overlay again), delete those pods while Multus runs on this "
        "node, then apply the uninstall again. If Multus's config has defaultNetworks, every pod outside its "
        "systemNamespaces has such a record, annotated or not: take defaultNetworks out of that config and roll "
        "those pods first (or delete them), or discard.\n"
        "- Stale (crictl lists no such sandbox: the pod is gone, or runs again in a sandbox with another ID): its "
        "DEL ran while the Multus daemon was down, which the shim reports as done, so no DEL comes again; the "
        "addresses it holds were never released, and deleting pods frees nothing. Release them in the IPAM, then "
        f"discard the records: set {DISCARD_ENV}=true on the cleanup (docs/install.md, Uninstall).\n"
        f"{DISCARD_ENV}=true discards every record listed here; the addresses of all of them stay allocated."
    )


def sandbox_state(a: Attached) -> str:
    if a.netns_gone:
        return (f"\n    stale: its pod is gone ({a.netns} no longer exists), the addresses it holds were never "
                f"released: {a.networks}; discard with {DISCARD_ENV}=true after releasing them")
    if a.netns_gone is False:
        return f"\n    live: its network namespace {a.netns} is still there"
    return ""


def uninstall(host_root: Path, primary_cni_config_file: str = "", *,
              discard_attachments: bool = False) -> CleanupReport:
    report = CleanupReport()
    if not any(on_host(host_root, d).is_dir() for d in (CNI_CONF_DIR.parent, CNI_BIN_DIR)):
        # A mistyped --host-root or a missing mount would otherwise report every path absent and succeed.
        report.error(f"{host_root} holds neither /{CNI_CONF_DIR.parent} nor /{CNI_BIN_DIR}: it is not a node's file "
                     "system (check --host-root and the mounts); nothing was removed")
        return report
    # Checked before anything is removed: the way out (Multus back, the pods deleted) needs the node
    # as Multus left it, and a run that stops here has changed nothing a rerun depends on.
    try:
        attached = attached_sandboxes(host_root)
    except OSError as exc:
        report.error(f"could not read /{MULTUS_CACHE_DIR}: {failure(host_root, exc)}; nothing was removed")
        return report
    if attached and not discard_attachments:
        warn_attached(report, attached)
        return report
    for a in attached:
        report.step(f"discarding the record of container {a.container_id}" + (f" (pod {a.pod})" if a.pod else "")
                    + f": {a.networks} ({DISCARD_ENV})")
    try:
        leftovers = install_multus_leftovers(host_root)
    except OSError as exc:
        leftovers = []
        report.error(f"could not read /{CNI_BIN_DIR}: {failure(host_root, exc)}")
    for rel in (*MULTUS_PATHS, *leftovers):
        path = on_host(host_root, rel)
        try:
            report.step(f"removed /{rel}" if remove_path(path) else f"absent  /{rel}")
        except OSError as exc:
            report.error(f"could not remove /{rel}: {failure(host_root, exc)}")
    for rel in MULTUS_DIRS_IF_EMPTY:
        path = on_host(host_root, rel)
        try:
            if remove_empty_dirs(path):
                report.step(f"removed /{rel} (empty)")
            elif path.exists():
                report.step(f"kept    /{rel}: it holds files multus-webhook did not put there")
        except OSError as exc:
            report.error(f"could not remove /{rel}: {failure(host_root, exc)}")
    try:
        for change in release_all(host_root):
            report.step(f"{change.action:<7} {change.path} (installed by multus-webhook install-cni)")
    except InstallError as exc:
        report.error(f"CNI plugins of install-cni: {exc}")
    except OSError as exc:
        report.error(f"CNI plugins of install-cni: {failure(host_root, exc)}")
    # Judged from the disk, not from primaryCniConfigFile: an operator who has already reverted the
    # primary CNI (docs/install.md, step 1) still has the setting pointing into the subdirectory.
    try:
        remaining = top_level_configs(host_root)
        nested = subdirectory_configs(host_root)
    except OSError as exc:
        report.error(f"could not tell which CNI config is left in /{CNI_CONF_DIR}: {failure(host_root, exc)}")
    else:
        warn_without_config(report, remaining, nested, primary_cni_config_file)
    report.step("cleanup finished" + (f" with {len(report.errors)} error(s)" if report.errors else ""))
    return report


def warn_without_config(report: CleanupReport, remaining: list[str], nested: list[str],
                        primary_cni_config_file: str) -> None:
    if not remaining:
        report.without_config = True
        setting = (f"\nprimaryCniConfigFile is {primary_cni_config_file}, in a subdirectory: revert the primary CNI "
                   "(Cilium: cni.confPath back to /etc/cni/net.d) and let it write its config again."
                   if "/" in primary_cni_config_file else "")
        report.warn(
            "No CNI config is left directly in /etc/cni/net.d"
            + (f" (only in subdirectories: {', '.join(nested)})" if nested else "")
            + ".\nThe container runtime reads only the top level: this node cannot start new pods until the "
            "primary CNI writes its config there again (Cilium: cni.confPath=/etc/cni/net.d)." + setting
        )
    else:
        report.step(f"the node's CNI config is now {remaining[0]}")
        # Cilium's copy of install step 2 (or another's file), not ours to remove; named so that it is
        # not forgotten, as nothing reads a subdirectory once Multus is gone.
        for name in nested:
            report.step(f"kept    /{CNI_CONF_DIR / name}: not multus-webhook's, and the container runtime does "
                        "not read it (docs/install.md, Uninstall step 7)")


def failure(host_root: Path, exc: OSError) -> str:
    """``exc`` with the host path it is about: the reason alone would not say which file inside a
    directory tree failed."""
    name = exc.filename
    if isinstance(name, str) and Path(name).is_relative_to(host_root):
        name = "/" + str(Path(name).relative_to(host_root))
    return f"{exc.strerror or exc}: {name}" if name else str(exc.strerror or exc)
