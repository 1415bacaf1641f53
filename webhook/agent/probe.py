"""What the node agent looks at on the host, and what it concludes from it.

``read_host`` is the only function here that touches the filesystem or a socket; it collects raw
facts into a ``HostSnapshot``. ``evaluate`` turns a snapshot into the conditions the agent reports;
it is pure, so every verdict can be tested without a host."""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import socket
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from webhook.cni.gojson import go_field
from webhook.names import DHCP_DAEMON, DHCP_SOCKET
from webhook.node.hostfs import INSTALL_MULTUS_TEMPORARY, whole_executable

log = logging.getLogger(__name__)

#: The config extensions the runtime reads from the conf dir (containerd's go-cni and CRI-O pass
#: these to libcni.ConfFiles), in this order of no importance: the runtime sorts the names, it does
#: not group them by extension.
CONFIG_EXTENSIONS = (".conf", ".conflist", ".json")

# Condition types, one per check; READY is their conjunction.
BINARIES = "MultusBinaryInstalled"
#: Its reason when the CNI bin directory cannot be read: the inventory is then not known (none is
#: published; webhook.cluster.nodes reads an empty one written with it by older agents as none).
BIN_DIR_UNREADABLE = "BinDirUnreadable"
CONFIG_FIRST = "MultusConfigFirst"
PRIMARY = "PrimaryConfigPresent"
DAEMON = "MultusDaemonAnswering"
BOOT_ID = "BootIDKnown"
READY = "Ready"
CHECKS = (BINARIES, CONFIG_FIRST, PRIMARY, DAEMON, BOOT_ID)
#: The reasons the checks are False or Unknown for, which Ready takes the first of: the controller
#: counts nodes by them in a metric, where any other (a newer agent's) is clamped to keep its series
#: bounded.
CHECK_FALSE_REASONS = frozenset({
    "BinDirReplaced", BIN_DIR_UNREADABLE, "Missing", "ConfDirReplaced", "ConfDirUnreadable", "NoConfig",
    "ConfigEmpty", "ConfigUnparsable", "ConfigUnreadable", "NotFirst", "DelegateUnknown", "Unreadable", "NotFound",
    "SocketDirReplaced", "NotAnswering"})
#: Reported beside the checks, not one of them: only the pod repair needs the boot time, and without it
#: the repair judges pods as it did before the agent reported it (see webhook.controller.repair).
BOOT_TIME = "BootTimeKnown"
#: Reported beside the checks too, not one of them: whether, with Multus's config gone (after every
#: reboot until the daemon writes it again; while its pod is replaced), the runtime would find no
#: other config at the top level of the conf dir. False is a warning about the next reboot, not about
#: now: while 00-multus.conf is first, another config beside it is harmless, and the node stays ready
#: (its pods would otherwise all be held back for a file that does no harm until Multus stops).
REBOOT_RACE = "RebootRaceGuarded"
#: RebootRaceGuarded's reasons for a config the runtime would use in place of Multus's whenever that is
#: absent: the finding worth a warning. Its other False reasons say only that it cannot be told yet
#: (every reboot, until the daemon writes its config) or that the conf dir cannot be read (Ready says so).
REBOOT_RACE_EXPOSED = frozenset({"OtherTopLevelConfig", "PrimaryAtTopLevel"})
#: Beside the checks as well, and only when the two can be compared: whether 00-multus.conf carries
#: every capability the primary config it delegates to enables now. Multus copies them at its start,
#: and with the primary in a subdirectory never again while it runs (see ``capabilities_of``).
CAPABILITIES = "DelegateCapabilitiesCurrent"
#: Beside the checks too: whether the CNI dhcp daemon answers on its default socket. Only pods on dhcp
#: networks need it (their readiness gate requires its label, see names.DHCP_DAEMON), so Multus's
#: readiness does not wait for it.
DHCP = "DHCPDaemonAnswering"
#: The reasons of the conditions that find a directory this agent mounted removed from the host: only
#: a restart of its container (a new mount) shows the host's (Report.restart).
DIR_REPLACED = frozenset({"BinDirReplaced", "ConfDirReplaced", "SocketDirReplaced"})
#: Symbolic links followed in resolving one path before giving up, as Linux does (MAXSYMLINKS, ELOOP).
MAX_LINK_HOPS = 40
#: What keeps the runtime from loading Multus's config although it is there: it is empty, it does not
#: parse as a JSON object (or names no plugin), or it cannot be read (see ``read_multus_config``).
MultusConfigFault = Literal["empty", "unparsable", "unreadable"]
#: HostLayout.multus_autoconfig_dir's default.
MULTUS_AUTOCONFIG_DIR = "/host/etc/cni/net.d"
#: Seconds between the two reads of a Multus config the first read found empty or not parsing (see
#: ``read_host``).
REREAD_PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class HostLayout:
    """Where things are on the node, as absolute host paths, and the host's root as seen by the agent."""

    root: Path = Path("/host")
    cni_bin_dir: str = "/opt/cni/bin"
    cni_conf_dir: str = "/etc/cni/net.d"
    multus_socket: str = "/run/multus/multus.sock"
    dhcp_socket: str = DHCP_SOCKET
    boot_id_file: str = "/proc/sys/kernel/random/boot_id"
    #: Its ``btime`` line is when the host booted. /proc/stat is not namespaced per container (a time
    #: namespace would shift it, which Kubernetes does not use): read in the agent's container, it is
    #: the host's.
    stat_file: str = "/proc/stat"
    #: The file Multus writes into the conf dir (``multusConfigFile: auto`` writes 00-multus.conf).
    multus_config: str = "00-multus.conf"
    #: The binary the runtime calls for Multus (the thick plugin's shim).
    multus_binary: str = "multus-shim"
    #: The primary CNI's config relative to the conf dir (Multus's multusMasterCNI, the chart's
    #: primaryCniConfigFile, e.g. cilium/05-cilium.conflist); None: the one Multus names in its own
    #: config (see ``delegate_in``), else Multus's ``auto`` choice; none while that config cannot be
    #: loaded (see ``read_host``). The manifests leave it None.
    primary_config: str | None = None
    #: Not a host path: the conf dir as the Multus daemon's container mounts it, its multusAutoconfigDir
    #: (manifests/base/multus/daemon-config.json, and every upstream Multus manifest), which begins
    #: every clusterNetwork it writes whatever host directory is mounted there (see ``delegate_in``).
    multus_autoconfig_dir: str = MULTUS_AUTOCONFIG_DIR

    def on_host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def mounted(self) -> tuple[str, ...]:
        """The host paths the agent's pod mounts (manifests/base/agent/agent.yaml): what is in them is
        the host's."""
        return tuple(posixpath.normpath(p) for p in (
            self.cni_bin_dir, self.cni_conf_dir, posixpath.dirname(self.multus_socket),
            posixpath.dirname(self.dhcp_socket), self.boot_id_file, self.stat_file))

    def unseen_below(self, host_dir: str) -> bool:
        """Whether the host may hold in ``host_dir`` what the agent does not see there: the host root
        and the directories above a mount are made for the mounts and hold none of the host's files.
        A host root that is the real / hides nothing."""
        host_dir = posixpath.normpath("/" + host_dir.lstrip("/"))
        if self.root.resolve() == Path("/"):
            return False
        return host_dir == "/" or any(
            m != host_dir and posixpath.commonpath([host_dir, m]) == host_dir for m in self.mounted)


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """Raw facts read from the host. A ``*_error`` is set when the thing could not be read at all."""

    binaries: tuple[str, ...] = ()
    #: Links in the bin dir that lead where the agent cannot see the host: (name, the host path the
    #: agent loses sight at), sorted. Whether the host resolves them to a plugin is not known.
    unverified_binaries: tuple[tuple[str, str], ...] = ()
    bin_dir_error: str | None = None
    #: Plugins whose names are not UTF-8, their other bytes escaped as \\xNN: left out of ``binaries``.
    not_utf8_binaries: tuple[str, ...] = ()
    #: Top-level config file names in the conf dir, sorted as the runtime sorts them.
    configs: tuple[str, ...] = ()
    conf_dir_error: str | None = None
    #: Why the runtime cannot load Multus's config, which is among ``configs`` (None: it can, or it is
    #: not there), and the detail (the parse or read error).
    multus_config_fault: MultusConfigFault | None = None
    multus_config_detail: str | None = None
    #: The primary config that was looked for (relative to the conf dir), and whether it is a file.
    #: None too when Multus's config, which names it, cannot be loaded (``multus_config_fault``) and the
    #: layout names none.
    primary_config: str | None = None
    #: The primary config was the one Multus's own config names as its delegate.
    primary_named_by_multus: bool = False
    #: The path Multus's config names as its delegate (clusterNetwork) when it does not map to the conf
    #: dir (see ``delegate_in``): the agent sees no other config directory of the host.
    delegate_outside: str | None = None
    primary_exists: bool = False
    primary_error: str | None = None
    #: The directory Multus was pointed at, when its delegate is the first config in one (then
    #: ``primary_config`` is that config, None when the directory holds none Multus would use).
    primary_directory: str | None = None
    #: The capabilities the primary config enables, as Multus reads them (``capabilities_of``), and
    #: those Multus's config carries; None when either is not read (no Multus config, a primary config
    #: that is not there or not a JSON object).
    primary_capabilities: tuple[str, ...] | None = None
    multus_capabilities: tuple[str, ...] | None = None
    #: None when a connect to the daemon's socket succeeded.
    daemon_error: str | None = None
    #: The same for the CNI dhcp daemon's socket, which the plugin reaches by the same connect (a stream
    #: socket's). A snapshot made by hand has found no daemon.
    dhcp_daemon_error: str | None = "not probed"
    #: The socket's, the bin and the conf directory, and the dhcp daemon's socket's, as this agent sees
    #: them, were removed from the host (see ``_removed``).
    socket_dir_removed: bool = False
    bin_dir_removed: bool = False
    conf_dir_removed: bool = False
    dhcp_socket_dir_removed: bool = False
    #: When the daemon's socket was made (its ctime, seconds since the epoch on the node's clock) and
    #: when Multus's config was last written (mtime); None when they cannot be stat'ed.
    socket_changed: float | None = None
    multus_config_modified: float | None = None
    boot_id: str | None = None
    boot_id_error: str | None = None
    boot_time: datetime | None = None
    boot_time_error: str | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    #: None is "Unknown": the agent cannot tell (what it would look at cannot be read, or its mount no
    #: longer shows the host's directory), as Kubernetes' conventions have it; Ready counts it as failing.
    status: bool | None
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Report:
    """What the agent publishes in its MultusNodeState (apart from times)."""

    boot_id: str | None
    binaries: tuple[str, ...]
    conditions: tuple[Condition, ...] = field(default=())
    #: Names in the bin dir whose links the agent cannot follow (see HostSnapshot.unverified_binaries):
    #: reported apart, but counted as present by the NAD rules and the node's binary labels alike.
    unverified_binaries: tuple[str, ...] = ()
    #: When the host booted, to the second (by its clock); None when it cannot be read.
    boot_time: datetime | None = None
    #: The CNI dhcp daemon answers on the layout's dhcp_socket.
    dhcp_daemon: bool = False

    #: The agent's view of the host is stale: only a restart of its container (a new mount) helps.
    restart: bool = False
    #: When Multus became ready, as far as the host tells (see ``ready_since``); None when it is not
    #: ready or the host does not tell. Not part of what makes two reports differ: it changes nothing
    #: the agent publishes but the first readiness on a boot, which is recorded once.
    ready_since: datetime | None = field(default=None, compare=False)
    #: When the current run of readiness began: when the Multus daemon made its socket, which it does
    #: each time it starts (a restart on the same boot begins another run). Not its config's time:
    #: with the primary config at the top level of the conf dir the daemon also writes its config again
    #: whenever the primary's is written, with no gap (with it in a subdirectory, as the manifests have
    #: it, Multus v4.3.0 never does: its watcher drops every event of the readiness indicator file,
    #: which is the primary's, but a removal). None when it is not ready or the host does not tell.
    run_since: datetime | None = field(default=None, compare=False)
    #: The host's evidence of readiness is later than the agent's clock: the node's clock was stepped
    #: back since Multus became ready, so times written before and after the step cannot be compared.
    clock_stepped: bool = field(default=False, compare=False)

    @property
    def ready(self) -> bool:
        return all(c.status for c in self.conditions if c.type == READY)


class Unseen(Exception):
    """A path leads where the agent does not see the host (see ``HostLayout.unseen_below``)."""


def resolve_on_host(layout: HostLayout, host_path: str, hops: int = MAX_LINK_HOPS) -> Path:
    """The agent's path of what ``host_path`` names on the host, every symbolic link along it resolved
    as the host resolves it: an absolute target from the host's root (not the agent's), a relative one
    from the link's directory. A path that does not exist comes back as it would be (its stat then
    fails); Unseen when it leads where the agent does not see the host; OSError(ELOOP) past ``hops``
    links, as the host's kernel gives up."""
    pending = [p for p in reversed(host_path.split("/")) if p]  # a stack: the next component last
    resolved: list[str] = []  # no links in it: ".." is its parent
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        here = layout.root.joinpath(*resolved, part)
        try:
            mode = os.lstat(here).st_mode
        except (FileNotFoundError, NotADirectoryError):
            if layout.unseen_below("/".join(resolved)):
                raise Unseen("/" + "/".join([*resolved, part, *reversed(pending)])) from None
            return here
        if not stat.S_ISLNK(mode):
            resolved.append(part)
            continue
        links += 1
        if links > hops:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), host_path)
        target = os.readlink(here)
        if target.startswith("/"):
            resolved = []
        pending.extend(p for p in reversed(target.split("/")) if p)
    return layout.root.joinpath(*resolved)


def is_config_name(name: str) -> bool:
    """libcni.ConfFiles's test: the extension, from the last dot on (Go's filepath.Ext), is one of
    CONFIG_EXTENSIONS. A hidden file passes (".00-x.conf" sorts before "00-multus.conf", and the
    runtime then uses it); the temporary files of webhook.atomicfile end in ".tmp" and do not."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:] in CONFIG_EXTENSIONS


def config_names(conf_dir: Path) -> tuple[str, ...]:
    """The configs the runtime finds in ``conf_dir``, sorted as it sorts them (go-cni sorts the paths
    libcni.ConfFiles lists; Go compares bytes, Python code points: the same order). ConfFiles skips
    directories only, not following symlinks: a symlink or a file that will not load is still the
    runtime's first config. Raises OSError when ``conf_dir`` cannot be listed."""
    with os.scandir(conf_dir) as entries:
        return tuple(sorted(e.name for e in entries if is_config_name(e.name) and not e.is_dir(follow_symlinks=False)))


#: The extensions a directory named as Multus's delegate must hold a config of for Multus to use it
#: (getNetDelegate's "search directory": it lists these first, then loads the first of CONFIG_EXTENSIONS).
_DIRECTORY_DELEGATE_EXTENSIONS = (".conf", ".conflist")


def first_config_in(directory: Path) -> str | None:
    """The config Multus delegates to when its clusterNetwork names ``directory`` (multus-cni
    pkg/k8sclient/k8sclient.go, getNetDelegate, "search directory"): the first of ``config_names``
    (GetCNIConfigFromFile with no name takes the first of libcni.ConfFiles with CONFIG_EXTENSIONS, which
    lists them sorted), but None when the directory holds no .conf or .conflist, as Multus then finds no
    network. Raises OSError when ``directory`` cannot be listed."""
    names = config_names(directory)
    return names[0] if any(n.endswith(_DIRECTORY_DELEGATE_EXTENSIONS) for n in names) else None


#: More than any config Multus writes; a bigger file is not read whole.
_MULTUS_CONFIG_LIMIT = 1 << 20


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_multus_config(text: str, *, conflist: bool = False) -> dict[str, Any] | str | None:
    """The config in ``text`` as a JSON object, or why the runtime cannot load it: libcni's
    ConfFromBytes (and ConfListFromBytes) unmarshals the file into a struct and fails on anything but a
    JSON object, and containerd's go-cni then loads no config at all. A single config (a file not named
    .conflist) must also name its plugin: NetworkPluginConfFromBytes refuses an empty or missing
    ``type``. Python's json accepts NaN and Infinity, Go's does not. None when this parser cannot judge
    text Go reads (nested deeper than Python's recursion allows; Go's limit is 10,000)."""
    if not text:
        return "it is empty"
    try:
        # Integers as floats, as Go reads numbers it skips or puts in an interface{}: Python's int()
        # refuses more than 4,300 digits, Go does not.
        config = json.loads(text, parse_constant=_no_constant, parse_int=float)
    except RecursionError:
        return None
    except ValueError as exc:
        return str(exc)
    if not isinstance(config, dict):
        return f"it holds a JSON {_JSON_KINDS.get(type(config), 'value')}, not an object"
    if not conflist:
        plugin = go_field(config, "type")
        if plugin is None or plugin[1] in ("", None):  # null leaves a Go string empty
            return 'it names no plugin ("type" is missing or empty), which libcni refuses'
        if not isinstance(plugin[1], str):
            return f'its "{plugin[0]}" is a JSON {_JSON_KINDS.get(type(plugin[1]), "value")}, not a string'
    return config


def delegate_in(config: dict[str, Any], layout: HostLayout) -> str | None:
    """The config the thick daemon delegates to, relative to the conf dir, from the config it wrote
    (00-multus.conf, parsed), or None when that config does not tell or names a path the agent cannot
    map to the conf dir.

    The daemon writes its delegate's path as ``clusterNetwork``: its multusAutoconfigDir joined with
    the multusMasterCNI it was given or the name its ``auto`` search found (multus-cni v4.3.0,
    pkg/server/config/manager.go, newManager and loadPrimaryCNIConfigurationData). That directory is
    the conf dir as the daemon's container mounts it, the same path whatever host directory is mounted
    there (k3s: /var/lib/rancher/k3s/agent/etc/cni/net.d), and 00-multus.conf does not say it
    (Generate drops it): the agent is told (``HostLayout.multus_autoconfig_dir``). A Multus that mounts
    the host's conf dir at its host path, or under a prefix of it, is recognised by the host path's
    own components. Reading it, the agent checks the file Multus really uses, and needs no copy of
    primaryCniConfigFile, which lives in the Multus DaemonSet's namespace."""
    network = config.get("clusterNetwork")
    if not isinstance(network, str) or not network.startswith("/"):
        return None  # a NAD's name (the thin plugin's form), or nothing
    parts = PurePosixPath(network).parts
    autoconfig = PurePosixPath(posixpath.normpath(layout.multus_autoconfig_dir)).parts
    if parts[:len(autoconfig)] == autoconfig:
        return _inside(parts[len(autoconfig):])
    conf = PurePosixPath(layout.cni_conf_dir).parts[1:]
    for i in range(1, len(parts) - len(conf)):
        if parts[i:i + len(conf)] == conf:
            return _inside(parts[i + len(conf):])
    return None


def _inside(rest: tuple[str, ...]) -> str | None:
    """``rest``, the components after the conf dir, as a path relative to it; None when they name no
    file in it."""
    return str(PurePosixPath(*rest)) if rest and ".." not in rest else None


@dataclass(frozen=True, slots=True)
class MultusConfigRead:
    """Multus's config as read once: the object, or the fault and its detail; neither when it is not
    judged (and not read for its delegate): bigger than Multus ever writes, nested deeper than this
    parser goes. ``modified``: the file's mtime, of the file read (a link's target on the host)."""

    config: dict[str, Any] | None = None
    fault: MultusConfigFault | None = None
    detail: str | None = None
    modified: float | None = None


def read_multus_config(layout: HostLayout) -> MultusConfigRead:
    """Read Multus's config once, and judge it as the runtime's loader would. A symbolic link is
    followed as the host follows it (resolve_on_host): an absolute target names the host's file, not
    one in the agent's container."""
    try:
        path = resolve_on_host(layout, posixpath.join(layout.cni_conf_dir, layout.multus_config))
        with path.open("rb") as f:
            modified = os.fstat(f.fileno()).st_mtime
            data = f.read(_MULTUS_CONFIG_LIMIT + 1)
    except Unseen as unseen:
        # Multus writes a regular file: a link is someone's own setup, and one the agent cannot follow
        # (perhaps dangling on the host too) is not taken on trust for a node's readiness.
        return MultusConfigRead(fault="unreadable", detail=f"it links to {unseen}, where the agent does not see "
                                                           "the host: mount that directory into the agent")
    except OSError as exc:
        return MultusConfigRead(fault="unreadable", detail=_error(exc))
    return replace(_judged(data, layout), modified=modified)


def _judged(data: bytes, layout: HostLayout) -> MultusConfigRead:
    if len(data) > _MULTUS_CONFIG_LIMIT:
        return MultusConfigRead()
    if not data:
        return MultusConfigRead(fault="empty")
    # Go's json replaces bytes that are not UTF-8 inside strings and fails on them elsewhere; so does
    # json.loads once they are replaced here.
    config = parse_multus_config(data.decode(errors="replace"), conflist=layout.multus_config.endswith(".conflist"))
    if config is None:
        return MultusConfigRead()
    if isinstance(config, str):
        return MultusConfigRead(fault="unparsable", detail=config)
    return MultusConfigRead(config=config)


def capabilities_of(config: Any) -> tuple[str, ...]:
    """The capabilities Multus v4.3.0 copies from a primary config into 00-multus.conf
    (pkg/server/config/generator.go, setCapabilities): those set true in each plugin's
    ``capabilities`` of a non-empty ``plugins`` list, else in the config's own ``capabilities``.
    (Multus panics on a value that is not a boolean; it counts for nothing here.) Multus only adds
    them, at its start and, with the primary at the top level of the conf dir, when it is written;
    with the primary in a subdirectory its watcher drops the primary's writes (manager.go,
    shouldRegenerateConfig: the readiness indicator file, which is the primary, counts only when
    removed), and a capability enabled later reaches 00-multus.conf only when the daemon restarts."""
    if not isinstance(config, dict):
        return ()
    plugins = config.get("plugins")
    sources = plugins if isinstance(plugins, list) and plugins else [config]
    found: set[str] = set()
    for plugin in sources:
        capabilities = plugin.get("capabilities") if isinstance(plugin, dict) else None
        if isinstance(capabilities, dict):
            found.update(name for name, on in capabilities.items() if on is True)
    return tuple(sorted(found))


def _primary_capabilities(path: Path) -> tuple[str, ...] | None:
    """``capabilities_of`` the primary config at ``path``; None when it cannot be read as JSON."""
    try:
        with path.open("rb") as f:
            data = f.read(_MULTUS_CONFIG_LIMIT + 1)
        if len(data) > _MULTUS_CONFIG_LIMIT:
            return None
        config = json.loads(data.decode(errors="replace"))
    except (OSError, ValueError, RecursionError):
        return None
    return capabilities_of(config) if isinstance(config, dict) else None


def primary_config_name(configs: Sequence[str], multus_config: str, explicit: str | None) -> str | None:
    """The config Multus delegates to: the explicit one, else (``multusConfigFile: auto``) the first
    sorted config that is not Multus's own."""
    if explicit:
        return explicit
    return next((name for name in sorted(configs) if name != multus_config), None)


def _executables(layout: HostLayout) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The plugins in the CNI bin dir: executable regular files, and links the host resolves to one;
    and apart, the links whose target the agent cannot see (e.g. /usr/libexec/cni/bridge, outside its
    mounts), each with where it loses sight. Multus runs plugins on the host, so a link is followed as
    the host follows it (resolve_on_host), not in the agent's container, where an absolute target names
    the container's own files. An unseen target may well be a plugin (reporting it missing would keep
    every NAD that needs it refused) or nothing at all: it is reported apart, and counted as present.
    Third, the names that are not UTF-8, escaped (see ``_not_utf8``)."""
    names = []
    unverified = []
    not_utf8 = []
    for entry in os.scandir(layout.on_host(layout.cni_bin_dir)):
        # Dot files are the temporary copies install-cni writes and then renames (webhook.atomicfile),
        # executable before the rename; upstream install_multus's are not hidden.
        # DHCP_DAEMON is the name the dhcp daemon's answer is counted under: a file of that name must not
        # stand for it.
        if entry.name.startswith(".") or INSTALL_MULTUS_TEMPORARY.fullmatch(entry.name) or entry.name == DHCP_DAEMON:
            continue
        escaped = _not_utf8(entry.name)
        try:
            if entry.is_symlink():
                path = resolve_on_host(layout, posixpath.join(layout.cni_bin_dir, entry.name))
                mode = os.stat(path).st_mode
            else:
                path, mode = Path(entry.path), entry.stat(follow_symlinks=False).st_mode
        except Unseen as unseen:
            if escaped is None:
                unverified.append((entry.name, str(unseen)))
            else:
                not_utf8.append(escaped)
            continue
        except OSError as exc:
            if entry.is_symlink():
                log.debug("%s is a link the host cannot resolve to a file: %s",
                          posixpath.join(layout.cni_bin_dir, entry.name), _error(exc))
            continue
        if not (stat.S_ISREG(mode) and mode & 0o111 and _runnable(path)):
            continue
        if escaped is None:
            names.append(entry.name)
        else:
            not_utf8.append(escaped)
    return tuple(sorted(names)), tuple(sorted(unverified)), tuple(sorted(not_utf8))


def _runnable(path: Path) -> bool:
    """Whether an executable file is one the kernel can run, as far as its headers tell (see
    whole_executable); one the agent may not read counts, as the mode alone did."""
    try:
        return whole_executable(path)
    except OSError:
        return True


def _not_utf8(name: str) -> str | None:
    """``name`` with its bytes that are not UTF-8 escaped as \\xNN, or None when it is UTF-8. Such a
    file cannot be a plugin a config names (configs are JSON, UTF-8), nor a label; published as it is,
    the apiserver replaces those bytes with U+FFFD, and two names that differ only in them become one,
    which the status's list (a set) refuses, and the whole status with it."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return name.encode(errors="surrogateescape").decode(errors="backslashreplace")
    return None


def _daemon_error(path: Path, timeout: float) -> str | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _removed(directory: Path) -> bool:
    """Whether ``directory`` was deleted while this process could still see it. The Multus daemon
    removes and re-creates its socket directory each time it starts; a container that mounted the
    old directory keeps seeing the deleted one (no links left), never the new socket."""
    try:
        return os.stat(directory).st_nlink == 0
    except OSError:
        return False


def _changed(path: Path, which: str) -> float | None:
    try:
        result: float = getattr(os.stat(path), which)
    except OSError:
        return None
    return result


def ready_since(snapshot: HostSnapshot) -> datetime | None:
    """When Multus became ready on the host, from the host's own evidence: the later of the moments
    its daemon made its socket and wrote its config. The thick daemon makes the socket directory
    afresh each time it starts (after its wait for the primary CNI), and /run is a tmpfs, so the
    socket is of this boot and this daemon; the config may be left from an earlier boot (the daemon
    removes it only on a clean stop), which the later of the two leaves out. The runtime sends new
    sandboxes to Multus from the moment both are there, whenever an agent looks (an agent may have
    been waiting out a restart back-off then)."""
    if snapshot.socket_changed is None or snapshot.multus_config_modified is None:
        return None
    return datetime.fromtimestamp(max(snapshot.socket_changed, snapshot.multus_config_modified), UTC)


def _error(exc: OSError | UnicodeDecodeError) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def read_boot_time(path: Path) -> tuple[datetime | None, str | None]:
    """(when the host booted, None) from the ``btime`` line of ``path`` (a /proc/stat: seconds since the
    epoch, by the host's clock now, so a clock step after the boot moves it), or (None, why not)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return None, _error(exc)
    value = next((line.split()[1:] for line in text.splitlines() if line.split()[:1] == ["btime"]), None)
    if value is None:
        return None, "it has no btime line"
    try:
        return datetime.fromtimestamp(int(value[0]), UTC), None
    except (IndexError, ValueError, OverflowError, OSError):
        return None, f"its btime line is not seconds since the epoch: {' '.join(value)!r}"


def read_host(layout: HostLayout, *, connect_timeout: float = 1.0,
              pause: Callable[[float], None] = time.sleep) -> HostSnapshot:
    """Read the host, read-only. Never raises for what it finds missing: that is what it reports.
    ``pause`` waits between the two reads of a Multus config that the first found empty or not parsing."""
    binaries: tuple[str, ...] = ()
    unverified: tuple[tuple[str, str], ...] = ()
    not_utf8: tuple[str, ...] = ()
    bin_dir_error = conf_dir_error = boot_id = boot_id_error = None
    try:
        binaries, unverified, not_utf8 = _executables(layout)
    except OSError as exc:
        bin_dir_error = _error(exc)
    conf_dir = layout.on_host(layout.cni_conf_dir)
    configs: tuple[str, ...] = ()
    try:
        configs = config_names(conf_dir)
    except OSError as exc:
        conf_dir_error = _error(exc)
    multus = MultusConfigRead()
    if layout.multus_config in configs:
        multus = read_multus_config(layout)
        if multus.fault in ("empty", "unparsable"):
            # The thick daemon writes its config with os.WriteFile (truncate, then write: not atomic)
            # at its start, and whenever the primary CNI's config is written when that is at the top
            # level of the conf dir (not in a subdirectory: see Report.run_since), so a healthy node's
            # file can be read empty or half written. Read once more after a pause far longer than that
            # window (one write of a few hundred bytes), and judge the second read: a single unlucky
            # read would otherwise mark the node not ready, and its pods unschedulable, until the
            # next look. Cheap: only a config found broken costs the pause, which is short against
            # the poll interval. (Judging from two consecutive polls instead would leave a config that
            # stays broken reported ready for a whole poll.)
            pause(REREAD_PAUSE)
            multus = read_multus_config(layout)
    named = outside = None
    if layout.primary_config is None and multus.config is not None:
        named = delegate_in(multus.config, layout)
        network = multus.config.get("clusterNetwork")
        # A path that does not map to the conf dir (Multus stats it, in its own container, at every
        # ADD) is not guessed from either: the agent mounts no other config directory of the host.
        if named is None and isinstance(network, str) and network.startswith("/"):
            outside = network
    # The config Multus delegates to is named in its own; when that cannot be loaded, the agent does
    # not guess Multus's auto choice: with the primary config in a subdirectory (Cilium) it would find
    # nothing, or with several configs the wrong one, and report that instead of the fault.
    unknown = layout.primary_config is None and (multus.fault is not None or outside is not None)
    primary = None if unknown else primary_config_name(configs, layout.multus_config,
                                                       layout.primary_config or named)
    primary_exists, primary_error, primary_directory = False, None, None
    if primary is not None:
        try:
            if (conf_dir / primary).is_dir():
                primary_directory, primary = primary, None
                first = first_config_in(conf_dir / primary_directory)
                primary = None if first is None else posixpath.join(primary_directory, first)
            primary_exists = primary is not None and (conf_dir / primary).is_file()
        except OSError as exc:  # is_file says False only for a missing path; EACCES, ENAMETOOLONG raise
            primary_error = _error(exc)
    primary_capabilities = multus_capabilities = None
    if multus.config is not None and primary is not None and primary_exists:
        primary_capabilities = _primary_capabilities(conf_dir / primary)
        carried = multus.config.get("capabilities")
        multus_capabilities = tuple(sorted(name for name, on in carried.items() if on is True)) \
            if isinstance(carried, dict) else ()
    try:
        boot_id = layout.on_host(layout.boot_id_file).read_text().strip() or None
        boot_id_error = None if boot_id else "the file is empty"
    except (OSError, UnicodeDecodeError) as exc:
        boot_id_error = _error(exc)
    booted, boot_time_error = read_boot_time(layout.on_host(layout.stat_file))
    return HostSnapshot(
        binaries=binaries, unverified_binaries=unverified, bin_dir_error=bin_dir_error,
        not_utf8_binaries=not_utf8, configs=configs, delegate_outside=outside,
        conf_dir_error=conf_dir_error, multus_config_fault=multus.fault, multus_config_detail=multus.detail,
        primary_config=primary, primary_named_by_multus=named is not None, primary_exists=primary_exists,
        primary_error=primary_error, primary_directory=primary_directory,
        primary_capabilities=primary_capabilities,
        multus_capabilities=None if primary_capabilities is None else multus_capabilities,
        daemon_error=_daemon_error(layout.on_host(layout.multus_socket), connect_timeout),
        dhcp_daemon_error=_daemon_error(layout.on_host(layout.dhcp_socket), connect_timeout),
        socket_dir_removed=_removed(layout.on_host(layout.multus_socket).parent),
        bin_dir_removed=_removed(layout.on_host(layout.cni_bin_dir)), conf_dir_removed=_removed(conf_dir),
        dhcp_socket_dir_removed=_removed(layout.on_host(layout.dhcp_socket).parent),
        # ctime: a file's birth is not in os.stat; the socket's ctime moves only with its metadata,
        # which the daemon sets once, right after it binds (chmod).
        socket_changed=_changed(layout.on_host(layout.multus_socket), "st_ctime"),
        multus_config_modified=multus.modified,
        boot_id=boot_id, boot_id_error=boot_id_error, boot_time=booted, boot_time_error=boot_time_error,
    )


def evaluate(snapshot: HostSnapshot, layout: HostLayout) -> Report:
    """One condition per check, and Ready when every check passed; BootTimeKnown and RebootRaceGuarded
    besides, which Ready does not depend on."""
    conditions = [
        _binaries(snapshot, layout),
        _config_first(snapshot, layout),
        _primary(snapshot, layout),
        _daemon(snapshot, layout),
        _boot_id(snapshot, layout),
    ]
    failing = [c for c in conditions if not c.status]
    if failing:
        ready = Condition(READY, False, failing[0].reason, "; ".join(c.message for c in failing))
    else:
        ready = Condition(READY, True, "AllChecksPassed", "Multus is installed, configured first and answering")
    return Report(boot_id=snapshot.boot_id, binaries=snapshot.binaries,
                  unverified_binaries=tuple(name for name, _ in snapshot.unverified_binaries),
                  conditions=(*conditions, _boot_time(snapshot, layout), _reboot_race(snapshot, layout),
                              *_capabilities(snapshot, layout), _dhcp(snapshot, layout), ready),
                  boot_time=snapshot.boot_time, dhcp_daemon=snapshot.dhcp_daemon_error is None,
                  restart=(snapshot.socket_dir_removed or snapshot.bin_dir_removed or snapshot.conf_dir_removed
                           or snapshot.dhcp_socket_dir_removed),
                  ready_since=None if failing else ready_since(snapshot),
                  run_since=None if failing or snapshot.socket_changed is None
                  else datetime.fromtimestamp(snapshot.socket_changed, UTC))


#: How many unverified links the BINARIES condition names before it says "and N more".
_LINKS_SHOWN = 5


def _replaced(path: str | PurePosixPath, how: str) -> str:
    return (f"{path} was removed and created again on the host ({how}) after this agent mounted it; the agent "
            "restarts to see the new one")


#: How a bin or conf directory comes to be removed under the agent, and what it then sees.
_REMOVED_UNDER_MOUNT = ("or replaced by a link; the agent's mount still shows the deleted directory, "
                        "not what the host holds there")


def _binaries(s: HostSnapshot, layout: HostLayout) -> Condition:
    where = layout.cni_bin_dir
    if s.bin_dir_removed:
        return Condition(BINARIES, None, "BinDirReplaced", _replaced(where, _REMOVED_UNDER_MOUNT))
    if s.bin_dir_error:
        return Condition(BINARIES, None, BIN_DIR_UNREADABLE, f"cannot read {where}: {s.bin_dir_error}")
    links = ""
    if s.unverified_binaries:
        shown = ", ".join(f"{posixpath.join(where, name)} -> {target}"
                          for name, target in s.unverified_binaries[:_LINKS_SHOWN])
        more = len(s.unverified_binaries) - _LINKS_SHOWN
        links = (f"; links the agent cannot follow: {shown}{f' and {more} more' if more > 0 else ''}: counted as "
                 "present, unverified (the node is labelled for them); mount the directory they lead "
                 "to into the agent's pod, at the same path under its host root, to have them verified, or fix a link "
                 "that leads nowhere on the host")
    if s.not_utf8_binaries:
        links += (f"; left out, their names not UTF-8 (no CNI config, which is JSON, can name them): "
                  f"{', '.join(posixpath.join(where, name) for name in s.not_utf8_binaries)}")
    # The shim behind an unseen link counts: where the plugins live outside the agent's mounts, a
    # node would otherwise never be Ready.
    if layout.multus_binary in s.binaries or any(name == layout.multus_binary for name, _ in s.unverified_binaries):
        return Condition(BINARIES, True, "Installed", f"{layout.multus_binary} is in {where}{links}")
    return Condition(BINARIES, False, "Missing",
                     f"{layout.multus_binary} is not an executable file in {where}{links}")


def _config_first(s: HostSnapshot, layout: HostLayout) -> Condition:
    where, mine = layout.cni_conf_dir, layout.multus_config
    if s.conf_dir_removed:
        return Condition(CONFIG_FIRST, None, "ConfDirReplaced", _replaced(where, _REMOVED_UNDER_MOUNT))
    if s.conf_dir_error:
        return Condition(CONFIG_FIRST, None, "ConfDirUnreadable", f"cannot read {where}: {s.conf_dir_error}")
    if not s.configs:
        return Condition(CONFIG_FIRST, False, "NoConfig", f"{where} holds no CNI config")
    if s.configs[0] == mine:
        path = PurePosixPath(where) / mine
        unusable = "the runtime cannot load it, and new sandboxes on the node fail"
        if s.multus_config_fault == "empty":
            return Condition(CONFIG_FIRST, False, "ConfigEmpty",
                             f"{path}, the first config, is empty (Multus writes it so when it cannot read the "
                             f"primary CNI config): {unusable}")
        if s.multus_config_fault == "unparsable":
            return Condition(CONFIG_FIRST, False, "ConfigUnparsable",
                             f"{path}, the first config, is no config the runtime can load: {s.multus_config_detail}; "
                             f"{unusable}")
        if s.multus_config_fault == "unreadable":
            return Condition(CONFIG_FIRST, None, "ConfigUnreadable",
                             f"cannot read {path}, the first config: {s.multus_config_detail}")
        return Condition(CONFIG_FIRST, True, "First", f"{mine} is the first config in {where}")
    present = "present but" if mine in s.configs else "missing and"
    return Condition(CONFIG_FIRST, False, "NotFirst",
                     f"{mine} is {present} the runtime uses {s.configs[0]}, the first config in {where}: "
                     "new sandboxes get the primary network only")


def _primary(s: HostSnapshot, layout: HostLayout) -> Condition:
    where = layout.cni_conf_dir
    if layout.primary_config is None and s.multus_config_fault is not None:
        fault = {"empty": "is empty", "unparsable": "does not parse", "unreadable": "cannot be read"}
        return Condition(PRIMARY, None, "DelegateUnknown",
                         f"cannot tell which config Multus delegates to: {layout.multus_config}, which names it, "
                         f"{fault[s.multus_config_fault]} (see {CONFIG_FIRST})")
    if layout.primary_config is None and s.delegate_outside is not None:
        # True, as a link in the bin dir the agent cannot follow counts as a plugin: a node kept not
        # ready for good on what the agent cannot see would be wrong wherever the file is there, and
        # Multus, which stats it at every ADD, fails loudly wherever it is not.
        return Condition(PRIMARY, True, "DelegateOutsideConfDir",
                         f"{layout.multus_config} names {s.delegate_outside} (as the Multus daemon's container sees "
                         f"it) as the config Multus delegates to, which is not in {where} as the agent knows it "
                         f"mounted there ({layout.multus_autoconfig_dir}, Multus's multusAutoconfigDir): counted as "
                         "present, unverified (Multus fails every pod's ADD when it is not there); give the agent "
                         "Multus's multusAutoconfigDir (--multus-autoconfig-dir), or have the primary config in "
                         f"{where} or a subdirectory of it (Multus's primaryCniConfigFile, docs/install.md, step 2)")
    if s.primary_directory is not None and s.primary_config is None:
        directory = PurePosixPath(where) / s.primary_directory
        if s.primary_error:
            return Condition(PRIMARY, None, "Unreadable",
                             f"cannot read {directory}, the directory Multus delegates to: {s.primary_error}")
        return Condition(PRIMARY, False, "Missing",
                         f"{directory}, the directory Multus delegates to, holds no .conf or .conflist config")
    if s.primary_config is None:
        if layout.multus_config not in s.configs:
            # With the primary in a subdirectory (Cilium's layout) the top level holds nothing else, and
            # only Multus's config, not there yet, names the file it delegates to.
            return Condition(PRIMARY, False, "NotFound",
                             f"which config Multus delegates to is not known until it writes {layout.multus_config}, "
                             f"which names it (with no other config at the top level of {where}, its auto choice "
                             "finds none)")
        return Condition(PRIMARY, False, "NotFound",
                         f"{where} holds no config besides {layout.multus_config} for Multus to delegate to")
    path = str(PurePosixPath(where) / s.primary_config)
    if s.primary_directory is not None:
        path += f" (the first config in {PurePosixPath(where) / s.primary_directory}, where Multus looks)"
    if s.primary_named_by_multus:
        path += f" (Multus's delegate, named in {layout.multus_config})"
    if s.primary_error:
        return Condition(PRIMARY, None, "Unreadable", f"cannot read the primary config {path}: {s.primary_error}")
    if s.primary_exists:
        return Condition(PRIMARY, True, "Found", f"the primary config {path} exists")
    return Condition(PRIMARY, False, "Missing", f"the primary config {path} does not exist")


def _daemon(s: HostSnapshot, layout: HostLayout) -> Condition:
    where = layout.multus_socket
    if s.socket_dir_removed:
        return Condition(DAEMON, None, "SocketDirReplaced",
                         _replaced(PurePosixPath(where).parent, "the Multus daemon does so when it starts"))
    if s.daemon_error is None:
        return Condition(DAEMON, True, "Connected", f"the Multus daemon answers on {where}")
    return Condition(DAEMON, False, "NotAnswering", f"the Multus daemon does not answer on {where}: {s.daemon_error}")


def _dhcp(s: HostSnapshot, layout: HostLayout) -> Condition:
    where = layout.dhcp_socket
    if s.dhcp_socket_dir_removed:
        # A daemon started after that listens in the new directory, which this mount never shows: until
        # the restart the node would be kept from dhcp pods for a daemon that answers.
        return Condition(DHCP, None, "SocketDirReplaced", _replaced(PurePosixPath(where).parent, _REMOVED_UNDER_MOUNT))
    if s.dhcp_daemon_error is None:
        return Condition(DHCP, True, "Connected", f"the CNI dhcp daemon answers on {where}")
    return Condition(DHCP, False, "NotAnswering",
                     f"the CNI dhcp daemon does not answer on {where}: {s.dhcp_daemon_error}; pods on NADs with dhcp "
                     "IPAM are kept off this node (only they need it)")


def _boot_id(s: HostSnapshot, layout: HostLayout) -> Condition:
    if s.boot_id:
        return Condition(BOOT_ID, True, "Read", f"boot id {s.boot_id}")
    return Condition(BOOT_ID, False, "Unreadable", f"cannot read {layout.boot_id_file}: {s.boot_id_error}")


def _boot_time(s: HostSnapshot, layout: HostLayout) -> Condition:
    if s.boot_time is not None:
        return Condition(BOOT_TIME, True, "Read", f"the host booted at {s.boot_time.isoformat()}")
    return Condition(BOOT_TIME, False, "Unreadable",
                     f"cannot read the boot time from {layout.stat_file}: {s.boot_time_error}; Multus readiness "
                     "does not depend on it, but the pod repair cannot tell pods whose status the kubelet has "
                     "not rewritten since the boot from the others")


def _reboot_race(s: HostSnapshot, layout: HostLayout) -> Condition:
    """Whether the node is safe from the reboot race once Multus's config is gone: the primary CNI's
    config is in a subdirectory, which the runtime does not read, and no other config is at the top
    level. A file left there (Cilium's 05-cilium.conflist from before its cni.confPath moved it into
    cilium/: Cilium does not remove it, cni.uninstall being false, and on Talos /etc/cni survives a
    reboot) is harmless while 00-multus.conf is there and sorts first, and becomes the runtime's
    config whenever it is not: after each reboot until the daemon writes it, and while the Multus pod
    is replaced, new pods start with that network alone."""
    where, mine = layout.cni_conf_dir, layout.multus_config
    if s.conf_dir_error:
        return Condition(REBOOT_RACE, None, "ConfDirUnreadable", f"cannot read {where}: {s.conf_dir_error}")
    if layout.primary_config is None and not s.primary_named_by_multus:
        # Multus's config, which names the delegate, is not there or cannot be loaded: a top-level
        # config may be Multus's auto choice or a stale one, and which is not known.
        if s.multus_config_fault is not None:
            why = f"{mine}, which names it, cannot be loaded (see {CONFIG_FIRST})"
        elif s.delegate_outside is not None:
            why = f"{mine} names {s.delegate_outside}, outside {where} (see {PRIMARY})"
        elif mine in s.configs:
            why = f"{mine} names no primary config file"
        else:
            why = f"until Multus writes {mine}, which names it"
        return Condition(REBOOT_RACE, None, "DelegateUnknown",
                         f"cannot tell whether the primary CNI config is in a subdirectory of {where}: {why}")
    primary = s.primary_directory or s.primary_config
    if primary is None:  # a directory Multus names that holds none: PrimaryConfigPresent says so
        return Condition(REBOOT_RACE, None, "DelegateUnknown",
                         f"no config Multus would delegate to is found (see {PRIMARY})")
    if s.primary_directory is None and "/" not in primary:
        return Condition(REBOOT_RACE, False, "PrimaryAtTopLevel",
                         f"the primary config {PurePosixPath(where) / primary} is at the top level of {where}: "
                         f"whenever {mine} is absent (after every reboot "
                         "until Multus writes it again, and while its pod is replaced) the runtime uses it and new "
                         "pods start without their Multus networks; have the primary CNI write its config into a "
                         "subdirectory and name it in Multus's primaryCniConfigFile (docs/install.md, step 2)")
    others = [name for name in s.configs if name != mine]
    if not others:
        return Condition(REBOOT_RACE, True, "OnlyMultusAtTopLevel",
                         f"{mine} is the only CNI config at the top level of {where}; the primary config is in "
                         f"{PurePosixPath(where) / PurePosixPath(primary).parts[0]}/, which the runtime does not read")
    files = ", ".join(str(PurePosixPath(where) / name) for name in others)
    which = "it" if len(others) == 1 else f"the first of them, {others[0]}"
    now = ("harmless while Multus runs and its config comes first, but" if s.configs[0] == mine
           else f"the runtime uses {s.configs[0]} now, not {mine} (see {CONFIG_FIRST}), and")
    return Condition(REBOOT_RACE, False, "OtherTopLevelConfig",
                     f"{files} {'is a CNI config' if len(others) == 1 else 'are CNI configs'} at the top level of "
                     f"{where} beside {mine}, while Multus delegates to {PurePosixPath(where) / primary}: "
                     f"{now} at the next reboot (until Multus writes {mine} again) and whenever the Multus pod "
                     f"is replaced the runtime uses {which}, and new pods start without their Multus networks; "
                     f"remove {'it' if len(others) == 1 else 'them'} from the node (docs/install.md, \"A cluster "
                     "that already ran Cilium\"), unless the primary CNI writes it there now, as after uninstall "
                     "step 1")


def _capabilities(s: HostSnapshot, layout: HostLayout) -> tuple[Condition, ...]:
    """DelegateCapabilitiesCurrent, when the two configs can be compared (none otherwise)."""
    if s.primary_capabilities is None or s.multus_capabilities is None or s.primary_config is None:
        return ()
    primary, mine = PurePosixPath(layout.cni_conf_dir) / s.primary_config, layout.multus_config
    missing = sorted(set(s.primary_capabilities) - set(s.multus_capabilities))
    if not missing:
        return (Condition(CAPABILITIES, True, "Current",
                          f"{mine} carries every capability {primary} enables"
                          + (f" ({', '.join(s.primary_capabilities)})" if s.primary_capabilities else "")),)
    return (Condition(CAPABILITIES, False, "CapabilitiesMissing",
                      f"{primary} enables {', '.join(missing)}, which {mine} does not carry: Multus copies them only "
                      "when its daemon starts (with the primary config in a subdirectory it does not write its config "
                      "again when the primary's changes), so pods are set up without them; restart Multus: kubectl "
                      "-n kube-system rollout restart ds/kube-multus-ds"),)
