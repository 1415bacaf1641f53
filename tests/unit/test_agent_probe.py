"""The agent's checks: the host read from a temporary root (with a real unix socket for the daemon),
and the verdicts computed from snapshots directly."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from webhook.agent.probe import (
    BINARIES,
    BOOT_ID,
    BOOT_TIME,
    CAPABILITIES,
    CONFIG_FIRST,
    DAEMON,
    DHCP,
    MAX_LINK_HOPS,
    PRIMARY,
    READY,
    REBOOT_RACE,
    REREAD_PAUSE,
    Condition,
    HostLayout,
    HostSnapshot,
    Report,
    capabilities_of,
    delegate_in,
    evaluate,
    primary_config_name,
    read_host,
    resolve_on_host,
)
from webhook.agent.standin import (
    MULTUS_CONFIG,
    PORTMAP_CHAINED,
    PRIMARY_CONFIG,
    StandInHost,
    multus_config_delegating_to,
)


@pytest.fixture
def host() -> Iterator[StandInHost]:
    h = StandInHost()
    yield h
    h.cleanup()


def conditions(report: Report) -> dict[str, Condition]:
    return {c.type: c for c in report.conditions}


def look(host: StandInHost) -> dict[str, Condition]:
    return conditions(evaluate(read_host(host.layout), host.layout))


def test_a_ready_host_passes_every_check(host: StandInHost) -> None:
    host.make_ready("boot-1")
    report = evaluate(read_host(host.layout), host.layout)
    assert report.ready
    assert report.boot_id == "boot-1"
    assert report.binaries == ("bridge", "macvlan", "multus-shim")
    # Beside the checks, not one of them: the stand-in's primary is at the top level, and its
    # 00-multus.conf names no delegate.
    # Nor is the dhcp daemon, which the stand-in does not run.
    assert all(c.status for c in report.conditions if c.type not in (REBOOT_RACE, DHCP))
    assert [c.type for c in report.conditions] == [BINARIES, CONFIG_FIRST, PRIMARY, DAEMON, BOOT_ID, BOOT_TIME,
                                                   REBOOT_RACE, CAPABILITIES, DHCP, READY]


BOOTED = datetime(2026, 3, 1, 11, 58, 7, tzinfo=UTC)


def test_the_boot_time_is_the_btime_of_the_hosts_proc_stat(host: StandInHost) -> None:
    host.make_ready("boot-1")
    host.set_boot_time(BOOTED)
    report = evaluate(read_host(host.layout), host.layout)
    assert report.boot_time == BOOTED
    c = conditions(report)[BOOT_TIME]
    assert (c.status, c.reason, c.message) == (True, "Read", "the host booted at 2026-03-01T11:58:07+00:00")


def test_the_boot_time_of_a_real_proc_stat(host: StandInHost) -> None:
    """The kernel's own format, as the machine running the test writes it."""
    host.path(host.layout.stat_file).write_bytes(Path("/proc/stat").read_bytes())
    snapshot = read_host(host.layout)
    assert snapshot.boot_time_error is None
    assert snapshot.boot_time is not None
    assert datetime(2000, 1, 1, tzinfo=UTC) < snapshot.boot_time <= datetime.now(UTC)


@pytest.mark.parametrize(("content", "error"), [
    (None, "No such file or directory"),
    ("cpu  1 2 3\nintr 0\n", "it has no btime line"),
    ("btime\n", "its btime line is not seconds since the epoch: ''"),
    ("btime soon\n", "its btime line is not seconds since the epoch: 'soon'"),
    (b"btime \xff\n", "'utf-8' codec can't decode byte 0xff in position 6: invalid start byte"),
])
def test_an_unreadable_boot_time_is_reported_but_multus_is_ready_all_the_same(
        host: StandInHost, content: str | bytes | None, error: str) -> None:
    """Only the pod repair needs it, which without it judges pods as before the agent reported it."""
    host.make_ready("boot-1")
    stat_file = host.path(host.layout.stat_file)
    if content is None:
        stat_file.unlink()
    elif isinstance(content, bytes):
        stat_file.write_bytes(content)
    else:
        stat_file.write_text(content)
    report = evaluate(read_host(host.layout), host.layout)
    assert report.boot_time is None
    c = conditions(report)
    assert (c[BOOT_TIME].status, c[BOOT_TIME].reason) == (False, "Unreadable")
    assert c[BOOT_TIME].message.startswith(f"cannot read the boot time from /proc/stat: {error}; ")
    assert report.ready
    assert (c[READY].status, c[READY].reason) == (True, "AllChecksPassed")


def test_each_condition_flips_as_files_appear_and_disappear(host: StandInHost) -> None:
    host.make_ready("boot-1")

    host.remove_binary("multus-shim")
    c = look(host)
    assert (c[BINARIES].status, c[BINARIES].reason) == (False, "Missing")
    assert c[BINARIES].message == "multus-shim is not an executable file in /opt/cni/bin"
    assert (c[READY].status, c[READY].reason) == (False, "Missing")
    host.add_binary("multus-shim")
    assert look(host)[BINARIES].status

    host.remove_config("00-multus.conf")
    c = look(host)
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (False, "NotFirst")
    assert "00-multus.conf is missing and the runtime uses 05-cilium.conflist" in c[CONFIG_FIRST].message
    assert not c[READY].status
    host.write_config("00-multus.conf", MULTUS_CONFIG)
    assert look(host)[CONFIG_FIRST].status

    host.remove_config("05-cilium.conflist")
    c = look(host)
    assert (c[PRIMARY].status, c[PRIMARY].reason) == (False, "NotFound")
    host.write_config("05-cilium.conflist")
    assert look(host)[PRIMARY].status

    host.stop_daemon()
    c = look(host)
    assert (c[DAEMON].status, c[DAEMON].reason) == (False, "NotAnswering")
    assert c[DAEMON].message.startswith("the Multus daemon does not answer on /run/multus/multus.sock: ")
    host.start_daemon()
    assert look(host)[DAEMON].status

    host.path(host.layout.boot_id_file).unlink()
    c = look(host)
    assert (c[BOOT_ID].status, c[BOOT_ID].reason) == (False, "Unreadable")
    host.set_boot_id("boot-2")
    assert look(host)[BOOT_ID].message == "boot id boot-2"
    assert look(host)[READY].status


# A hidden file too: libcni lists it, and a dot sorts first.
@pytest.mark.parametrize("first", ["00-cilium.conflist", ".00-x.conf"])
def test_a_config_sorted_before_multus_is_what_the_runtime_uses(host: StandInHost, first: str) -> None:
    host.make_ready("b")
    host.write_config(first)
    c = look(host)
    assert not c[CONFIG_FIRST].status
    assert f"00-multus.conf is present but the runtime uses {first}" in c[CONFIG_FIRST].message
    assert not c[READY].status


def test_primary_config_in_a_subdirectory() -> None:
    host = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    try:
        host.make_ready("b")
        snapshot = read_host(host.layout)
        # The subdirectory is invisible to the runtime: only Multus's file is a top-level config.
        assert snapshot.configs == ("00-multus.conf",)
        assert snapshot.primary_config == "cilium/05-cilium.conflist"
        assert look(host)[PRIMARY].message == "the primary config /etc/cni/net.d/cilium/05-cilium.conflist exists"
        host.remove_config("cilium/05-cilium.conflist")
        c = look(host)
        assert (c[PRIMARY].status, c[PRIMARY].reason) == (False, "Missing")
        assert c[CONFIG_FIRST].status
    finally:
        host.cleanup()


def test_without_a_setting_the_primary_is_the_one_multus_names_in_its_config(host: StandInHost) -> None:
    """The manifests give the agent no primaryCniConfigFile (it lives in the Multus DaemonSet's
    namespace): the agent checks the file the daemon says it delegates to, a subdirectory's too."""
    host.make_ready("b")
    host.remove_config("05-cilium.conflist")
    host.write_config("calico/10-calico.conflist")
    host.write_config("00-multus.conf", multus_config_delegating_to("calico/10-calico.conflist"))
    snapshot = read_host(host.layout)
    assert snapshot.configs == ("00-multus.conf",)
    assert (snapshot.primary_config, snapshot.primary_named_by_multus) == ("calico/10-calico.conflist", True)
    c = look(host)
    assert c[PRIMARY].message == ("the primary config /etc/cni/net.d/calico/10-calico.conflist (Multus's delegate, "
                                  "named in 00-multus.conf) exists")
    assert c[READY].status
    host.remove_config("calico/10-calico.conflist")
    c = look(host)
    assert (c[PRIMARY].status, c[PRIMARY].reason, c[READY].status) == (False, "Missing", False)
    # An explicit setting still wins over what Multus names.
    explicit = replace(host.layout, primary_config="cilium/05-cilium.conflist")
    assert read_host(explicit).primary_config == "cilium/05-cilium.conflist"
    assert not read_host(explicit).primary_named_by_multus


def test_a_directory_multus_names_is_searched_for_its_first_config_as_multus_searches_it(
        host: StandInHost) -> None:
    """A clusterNetwork naming a directory: Multus uses the first config in it, sorted, of .conf,
    .conflist and .json, once the directory holds a .conf or .conflist at all (getNetDelegate's
    "search directory")."""
    host.make_ready("b")
    host.remove_config("05-cilium.conflist")
    host.write_config("calico/20-other.conf")
    host.write_config("calico/10-calico.conflist")
    host.write_config("calico/05-notes.txt", "not a config")
    (host.path(host.layout.cni_conf_dir) / "calico" / "01-sub").mkdir()
    host.write_config("00-multus.conf", multus_config_delegating_to("calico"))
    snapshot = read_host(host.layout)
    assert (snapshot.primary_config, snapshot.primary_directory) == ("calico/10-calico.conflist", "calico")
    c = look(host)
    assert c[PRIMARY].message == (
        "the primary config /etc/cni/net.d/calico/10-calico.conflist (the first config in /etc/cni/net.d/calico, "
        "where Multus looks) (Multus's delegate, named in 00-multus.conf) exists")
    assert c[READY].status
    host.write_config("calico/07-first.json")  # a .json counts once a .conf or .conflist is there
    assert read_host(host.layout).primary_config == "calico/07-first.json"
    for name in ("20-other.conf", "10-calico.conflist"):
        host.remove_config(f"calico/{name}")
    c = look(host)  # a .json alone: Multus finds no network there
    assert (c[PRIMARY].status, c[PRIMARY].reason, c[READY].status) == (False, "Missing", False)
    assert c[PRIMARY].message == ("/etc/cni/net.d/calico, the directory Multus delegates to, holds no .conf or "
                                  ".conflist config")
    # The explicit setting may name a directory too.
    host.write_config("calico/30-late.conflist")
    explicit = replace(host.layout, primary_config="calico")
    assert read_host(explicit).primary_config == "calico/07-first.json"


@pytest.mark.parametrize(("config", "expected"), [
    ({"clusterNetwork": "/host/etc/cni/net.d/cilium/05-cilium.conflist"}, "cilium/05-cilium.conflist"),
    ({"clusterNetwork": "/host/etc/cni/net.d/05-cilium.conflist"}, "05-cilium.conflist"),
    ({"clusterNetwork": "/etc/cni/net.d/10-calico.conflist"}, "10-calico.conflist"),
    ({"clusterNetwork": "/host/etc/cni/net.d"}, None),  # no file after the conf dir
    ({"clusterNetwork": "/host/etc/cni/net.d/../x.conflist"}, None),
    ({"clusterNetwork": "/var/lib/cni/x.conflist"}, None),
    ({"clusterNetwork": "default-network-nad"}, None),  # the thin plugin's NAD name
    ({"name": "multus-cni-network"}, None),
    ({"clusterNetwork": 5}, None),
])
def test_delegate_in(config: dict[str, Any], expected: str | None) -> None:
    assert delegate_in(config, HostLayout()) == expected


K3S_CONF_DIR = "/var/lib/rancher/k3s/agent/etc/cni/net.d"


@pytest.mark.parametrize(("network", "layout", "expected"), [
    # k3s/RKE2: the host's conf dir elsewhere, mounted where every Multus manifest mounts it.
    ("/host/etc/cni/net.d/10-flannel.conflist", HostLayout(cni_conf_dir=K3S_CONF_DIR), "10-flannel.conflist"),
    ("/host/etc/cni/net.d/cilium/05-cilium.conflist", HostLayout(cni_conf_dir=K3S_CONF_DIR),
     "cilium/05-cilium.conflist"),
    # A Multus that mounts it at its host path, or under /host as the agent does.
    (f"{K3S_CONF_DIR}/10-flannel.conflist", HostLayout(cni_conf_dir=K3S_CONF_DIR), "10-flannel.conflist"),
    (f"/host{K3S_CONF_DIR}/10-flannel.conflist", HostLayout(cni_conf_dir=K3S_CONF_DIR), "10-flannel.conflist"),
    # A Multus mounting it at a path of its own, which the agent is told.
    ("/cni/conf/10-flannel.conflist", HostLayout(multus_autoconfig_dir="/cni/conf/"), "10-flannel.conflist"),
    ("/cni/conf/10-flannel.conflist", HostLayout(), None),
    ("/host/etc/cni/net.d/../x.conflist", HostLayout(cni_conf_dir=K3S_CONF_DIR), None),
    ("/host/etc/cni/multus/net.d/x.conflist", HostLayout(cni_conf_dir=K3S_CONF_DIR), None),
])
def test_delegate_in_maps_the_daemons_container_path_to_the_conf_dir(
        network: str, layout: HostLayout, expected: str | None) -> None:
    assert delegate_in({"clusterNetwork": network}, layout) == expected


@pytest.mark.parametrize("conf_dir", ["/etc/cni/net.d", K3S_CONF_DIR])
@pytest.mark.parametrize("primary", ["10-flannel.conflist", "cilium/05-cilium.conflist"])
def test_the_delegate_multus_names_is_checked_in_the_conf_dir_wherever_the_host_keeps_it(
        conf_dir: str, primary: str) -> None:
    """The daemon names its delegate by its multusAutoconfigDir, /host/etc/cni/net.d in its container
    whatever host directory is mounted there (k3s: /var/lib/rancher/k3s/agent/etc/cni/net.d): the file
    is the one in the agent's conf dir, found there and missed there."""
    host = StandInHost(HostLayout(cni_conf_dir=conf_dir))
    try:
        host.make_ready("b")
        host.remove_config("05-cilium.conflist")
        host.write_config(primary)
        host.write_config("00-multus.conf", multus_config_delegating_to(primary))
        snapshot = read_host(host.layout)
        assert (snapshot.primary_config, snapshot.primary_named_by_multus, snapshot.delegate_outside) == (
            primary, True, None)
        c = look(host)
        assert (c[PRIMARY].status, c[PRIMARY].reason, c[READY].status) == (True, "Found", True), c[READY].message
        assert c[PRIMARY].message == (f"the primary config {conf_dir}/{primary} (Multus's delegate, named in "
                                      "00-multus.conf) exists")
        host.remove_config(primary)
        c = look(host)
        assert (c[PRIMARY].status, c[PRIMARY].reason, c[READY].status) == (False, "Missing", False)
    finally:
        host.cleanup()


def test_a_multus_config_that_names_no_delegate_falls_back_to_the_auto_choice(host: StandInHost) -> None:
    host.make_ready("b")
    host.write_config("00-multus.conf", MULTUS_CONFIG)  # no clusterNetwork
    snapshot = read_host(host.layout)
    assert (snapshot.primary_config, snapshot.primary_named_by_multus) == ("05-cilium.conflist", False)
    assert look(host)[READY].status


@pytest.mark.parametrize("conf_dir", ["/etc/cni/net.d", K3S_CONF_DIR])
@pytest.mark.parametrize("there", [False, True])
def test_a_delegate_outside_the_conf_dir_is_unverified_not_replaced_by_the_auto_choice_and_keeps_the_node_ready(
        conf_dir: str, there: bool) -> None:
    """Multus stats the path it names (getNetDelegate) in its own container; the agent mounts no other
    config directory, and its auto choice is not Multus's. What it cannot see does not keep the node
    not ready (Multus fails every ADD when the file is not there), nor is it reported as verified."""
    host = StandInHost(HostLayout(cni_conf_dir=conf_dir))
    try:
        host.make_ready("b")
        host.write_config("00-multus.conf", multus_config_delegating_to(
            "gone.conflist", autoconfig_dir="/host/etc/cni/multus/net.d"))
        outside = host.path("/etc/cni/multus/net.d/gone.conflist")
        if there:
            outside.parent.mkdir(parents=True)
            outside.write_text(PRIMARY_CONFIG)
        snapshot = read_host(host.layout)
        assert (snapshot.primary_config, snapshot.delegate_outside) == (
            None, "/host/etc/cni/multus/net.d/gone.conflist")
        c = look(host)
        assert (c[PRIMARY].status, c[PRIMARY].reason) == (True, "DelegateOutsideConfDir")
        assert c[PRIMARY].message == (
            "00-multus.conf names /host/etc/cni/multus/net.d/gone.conflist (as the Multus daemon's container sees "
            f"it) as the config Multus delegates to, which is not in {conf_dir} as the agent knows it mounted there "
            "(/host/etc/cni/net.d, Multus's multusAutoconfigDir): counted as present, unverified (Multus fails "
            "every pod's ADD when it is not there); give the agent Multus's multusAutoconfigDir "
            f"(--multus-autoconfig-dir), or have the primary config in {conf_dir} or a subdirectory of it "
            "(Multus's primaryCniConfigFile, docs/install.md, step 2)")
        assert c[READY].status, c[READY].message
        assert (c[REBOOT_RACE].reason, c[REBOOT_RACE].message) == ("DelegateUnknown", (
            f"cannot tell whether the primary CNI config is in a subdirectory of {conf_dir}: 00-multus.conf names "
            f"/host/etc/cni/multus/net.d/gone.conflist, outside {conf_dir} (see PrimaryConfigPresent)"))
        assert CAPABILITIES not in c
    finally:
        host.cleanup()


class Pauses:
    """read_host's ``pause``: records each pause, and runs ``during`` in the first (what the host does
    meanwhile)."""

    def __init__(self, during: Callable[[], None] | None = None) -> None:
        self.during = during
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if self.during is not None and len(self.seconds) == 1:
            self.during()


def look_pausing(host: StandInHost, pauses: Pauses, layout: HostLayout | None = None) -> dict[str, Condition]:
    layout = layout or host.layout
    return conditions(evaluate(read_host(layout, pause=pauses), layout))


def test_an_empty_multus_config_is_not_ready_and_names_no_delegate(host: StandInHost) -> None:
    """Multus v4.3.0 writes an empty 00-multus.conf when it cannot read the primary config
    (GenerateConfig's ("", nil)); the runtime's loader fails on it, so the node wires no sandbox."""
    host.make_ready("b")
    host.write_config("00-multus.conf", "")
    pauses = Pauses()
    c = look_pausing(host, pauses)
    assert pauses.seconds == [REREAD_PAUSE]  # read again before judging, then judged
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (False, "ConfigEmpty")
    assert c[CONFIG_FIRST].message == (
        "/etc/cni/net.d/00-multus.conf, the first config, is empty (Multus writes it so when it cannot read the "
        "primary CNI config): the runtime cannot load it, and new sandboxes on the node fail")
    # 05-cilium.conflist is there, but which config Multus delegates to is not known: not guessed.
    assert (c[PRIMARY].status, c[PRIMARY].reason) == (None, "DelegateUnknown")
    assert c[PRIMARY].message == ("cannot tell which config Multus delegates to: 00-multus.conf, which names it, "
                                  "is empty (see MultusConfigFirst)")
    assert (c[READY].status, c[READY].reason) == (False, "ConfigEmpty")
    host.write_config("00-multus.conf", multus_config_delegating_to("05-cilium.conflist"))
    assert look(host)[READY].status


@pytest.mark.parametrize(("content", "detail"), [
    (multus_config_delegating_to("05-cilium.conflist")[:40], "Unterminated string starting at: line 1 column 33"),
    ('{"cniVersion": "1.0.0", "type": "multus-shim", ', "Expecting property name enclosed in double quotes"),
    ("\n", "Expecting value: line 2 column 1 (char 1)"),
    ("[]", "it holds a JSON array, not an object"),
    ('"multus"', "it holds a JSON string, not an object"),
    ('{"type": "multus-shim", "mtu": NaN}', "NaN is not JSON"),
    (b"\xff\xfe", "Expecting value: line 1 column 1 (char 0)"),  # not UTF-8, outside a string
    # A single config names its plugin, or libcni refuses it (NetworkPluginConfFromBytes).
    ('{"cniVersion": "0.3.1", "name": "multus-cni-network", "plugins": [{"type": "multus-shim"}]}',
     'it names no plugin ("type" is missing or empty), which libcni refuses'),
    ('{"cniVersion": "0.3.1", "name": "multus-cni-network", "type": ""}',
     'it names no plugin ("type" is missing or empty), which libcni refuses'),
    ('{"cniVersion": "0.3.1", "name": "multus-cni-network", "Type": 5}', 'its "Type" is a JSON number, not a string'),
])
def test_a_multus_config_that_does_not_parse_is_not_ready(host: StandInHost, content: str | bytes,
                                                          detail: str) -> None:
    host.make_ready("b")
    path = host.path(host.layout.cni_conf_dir) / "00-multus.conf"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    pauses = Pauses()
    c = look_pausing(host, pauses)
    assert pauses.seconds == [REREAD_PAUSE]
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (False, "ConfigUnparsable")
    assert c[CONFIG_FIRST].message.startswith(
        f"/etc/cni/net.d/00-multus.conf, the first config, is no config the runtime can load: {detail}")
    assert c[CONFIG_FIRST].message.endswith("; the runtime cannot load it, and new sandboxes on the node fail")
    assert (c[PRIMARY].status, c[PRIMARY].reason) == (None, "DelegateUnknown")
    assert c[PRIMARY].message.endswith("00-multus.conf, which names it, does not parse (see MultusConfigFirst)")
    assert (c[READY].status, c[READY].reason) == (False, "ConfigUnparsable")


def test_bytes_that_are_not_utf8_inside_a_string_parse_as_go_parses_them(host: StandInHost) -> None:
    """Go's json replaces them (with U+FFFD), and the runtime loads the config."""
    host.make_ready("b")
    config = multus_config_delegating_to("05-cilium.conflist").replace("multus-cni-network", "multus-\xff")
    (host.path(host.layout.cni_conf_dir) / "00-multus.conf").write_bytes(config.encode("latin-1"))
    assert look(host)[READY].status


@pytest.mark.parametrize("first_read", ["", multus_config_delegating_to("05-cilium.conflist")[:60]])
def test_a_multus_config_read_while_multus_writes_it_is_read_again(host: StandInHost, first_read: str) -> None:
    """Multus writes its config with os.WriteFile, truncate then write: a read in between sees it empty or
    half written. Completed before the second read, the node stays ready."""
    host.make_ready("b")
    whole = multus_config_delegating_to("05-cilium.conflist")
    host.write_config("00-multus.conf", first_read)
    pauses = Pauses(lambda: host.write_config("00-multus.conf", whole))
    c = look_pausing(host, pauses)
    assert pauses.seconds == [REREAD_PAUSE]
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (True, "First")
    assert c[PRIMARY].message == ("the primary config /etc/cni/net.d/05-cilium.conflist (Multus's delegate, named "
                                  "in 00-multus.conf) exists")
    assert c[READY].status


def test_a_whole_multus_config_is_read_once(host: StandInHost) -> None:
    host.make_ready("b")
    pauses = Pauses()
    assert look_pausing(host, pauses)[READY].status
    assert pauses.seconds == []


def test_a_multus_config_broken_on_both_reads_is_judged_by_the_second(host: StandInHost) -> None:
    """Emptied, then half written by the time of the second read: what the second read saw is reported."""
    host.make_ready("b")
    host.write_config("00-multus.conf", "")
    pauses = Pauses(lambda: host.write_config("00-multus.conf", "{"))
    c = look_pausing(host, pauses)
    assert pauses.seconds == [REREAD_PAUSE]
    assert c[CONFIG_FIRST].reason == "ConfigUnparsable"


@pytest.mark.parametrize("content", ["", multus_config_delegating_to("cilium/05-cilium.conflist")[:60]])
def test_an_unloadable_multus_config_with_the_primary_in_a_subdirectory(host: StandInHost, content: str) -> None:
    """Cilium's layout: its config only in cilium/, named by 00-multus.conf. With 00-multus.conf empty or
    half written the agent must not say the conf dir holds no config to delegate to."""
    host.make_ready("b")
    host.remove_config("05-cilium.conflist")
    host.write_config("cilium/05-cilium.conflist")
    host.write_config("00-multus.conf", multus_config_delegating_to("cilium/05-cilium.conflist"))
    assert look(host)[READY].status
    host.write_config("00-multus.conf", content)
    c = look_pausing(host, Pauses())
    assert (c[PRIMARY].status, c[PRIMARY].reason) == (None, "DelegateUnknown")
    assert "holds no config besides" not in c[PRIMARY].message
    assert c[PRIMARY].message.startswith("cannot tell which config Multus delegates to: 00-multus.conf, which names "
                                         "it, ")
    assert c[READY].reason == ("ConfigEmpty" if content == "" else "ConfigUnparsable")
    assert "holds no config besides" not in c[READY].message


def test_an_unloadable_multus_config_with_the_primary_set_explicitly(host: StandInHost) -> None:
    """The layout names the primary config: it is checked as ever, and the node is not ready all the same."""
    host.make_ready("b")
    host.write_config("00-multus.conf", "")
    layout = replace(host.layout, primary_config="05-cilium.conflist")
    c = look_pausing(host, Pauses(), layout)
    assert (c[PRIMARY].status, c[PRIMARY].reason) == (True, "Found")
    assert (c[READY].status, c[READY].reason) == (False, "ConfigEmpty")


def test_a_multus_config_the_agent_cannot_read_is_not_ready(host: StandInHost) -> None:
    host.make_ready("b")
    host.remove_config("00-multus.conf")
    (host.path(host.layout.cni_conf_dir) / "00-multus.conf").symlink_to("gone.conf")  # listed, not openable
    pauses = Pauses()
    c = look_pausing(host, pauses)
    assert pauses.seconds == []  # not a write in progress
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (None, "ConfigUnreadable")
    assert c[CONFIG_FIRST].message == ("cannot read /etc/cni/net.d/00-multus.conf, the first config: "
                                       "No such file or directory")
    assert c[PRIMARY].message.endswith("00-multus.conf, which names it, cannot be read (see MultusConfigFirst)")


def test_a_multus_config_not_first_is_reported_not_first_whatever_it_holds(host: StandInHost) -> None:
    host.make_ready("b")
    host.write_config("00-multus.conf", "")
    host.write_config("00-aaa.conflist")
    c = look_pausing(host, Pauses())
    assert c[CONFIG_FIRST].reason == "NotFirst"


def test_only_executable_regular_files_count_as_binaries(host: StandInHost) -> None:
    bin_dir = host.path(host.layout.cni_bin_dir)
    host.add_binary("macvlan")
    (bin_dir / "README").write_text("not a plugin")
    (bin_dir / "subdir").mkdir()
    host.add_binary(".multus-shim.tmp")
    (bin_dir / "linked").symlink_to("macvlan")
    (bin_dir / "dangling").symlink_to("nothing")
    assert read_host(host.layout).binaries == ("linked", "macvlan")


def test_an_empty_or_headerless_executable_is_not_a_binary(host: StandInHost) -> None:
    """The kernel runs neither (Exec format error): a copy cut short before its first bytes, or a crash.
    A link to one counts no more than the file itself."""
    bin_dir = host.path(host.layout.cni_bin_dir)
    host.add_binary("bridge")  # a script: "#!"
    # The magic then a header of no ELF class (tests/differential/test_truncated_binaries.py cuts real ones).
    for name, content in (("macvlan", b""), ("ipvlan", b"\x7fEL"), ("tap", b"\0\0\0\0rest of a copy"),
                          ("vlan", b"\x7fELF" + bytes(60))):
        (bin_dir / name).write_bytes(content)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "linked-empty").symlink_to("macvlan")
    assert read_host(host.layout).binaries == ("bridge",)


def test_install_multus_temporary_copies_are_not_binaries(host: StandInHost) -> None:
    """Upstream install_multus writes "<binary>.temp<digits>" (Go's os.CreateTemp) and renames it:
    executable for a moment before the rename, never a plugin anything names."""
    for name in ("multus-shim", "multus-shim.temp4145155578", "passthru.temp1", "bridge.temp12"):
        host.add_binary(name)
    assert read_host(host.layout).binaries == ("bridge.temp12", "multus-shim")


def test_a_file_named_as_the_dhcp_daemon_is_counted_is_no_binary(host: StandInHost) -> None:
    """The dhcp daemon's answer is counted, and labelled, under names.DHCP_DAEMON beside the binaries: a
    file of that name in the bin dir would otherwise get a node the label with no daemon answering."""
    for name in ("dhcp", "dhcp-daemon"):
        host.add_binary(name)
    assert read_host(host.layout).binaries == ("dhcp",)


def test_names_that_are_not_utf8_are_left_out_and_named_escaped(host: StandInHost) -> None:
    """No config names them (JSON is UTF-8) and the apiserver would fold tap\\xff and tap\\xfe into one
    name (U+FFFD), refusing the whole status: they are left out, and the condition says which."""
    host.make_ready("b")
    bin_dir = os.fsencode(host.path(host.layout.cni_bin_dir))
    for raw in (b"tap\xff", b"tap\xfe"):
        with open(os.path.join(bin_dir, raw), "wb") as f:
            f.write(b"#!/bin/sh\n")
        os.chmod(os.path.join(bin_dir, raw), 0o755)
    os.symlink(b"/usr/libexec/cni/tap", os.path.join(bin_dir, b"tap\xfd"))  # unseen: not reported apart either
    report = evaluate(read_host(host.layout), host.layout)
    assert report.binaries == ("bridge", "macvlan", "multus-shim")
    assert report.unverified_binaries == ()
    assert report.ready
    assert conditions(report)[BINARIES].message == (
        "multus-shim is in /opt/cni/bin; left out, their names not UTF-8 (no CNI config, which is JSON, can name "
        "them): /opt/cni/bin/tap\\xfd, /opt/cni/bin/tap\\xfe, /opt/cni/bin/tap\\xff")


def test_linked_plugins_are_followed_as_the_host_follows_them(host: StandInHost) -> None:
    """Multus runs plugins on the host: a link's absolute target is a host path, resolved from the host
    root (here the temporary directory), not from the agent's own /; a relative one from the link's
    directory, through further links. In the agent's pod only the CNI dirs are mounted under the host
    root: a target elsewhere may exist on the host unseen, and a link to it is reported apart, as not
    verified."""
    bin_dir = host.path(host.layout.cni_bin_dir)
    libexec = host.path("/usr/libexec/cni")
    libexec.mkdir(parents=True)
    for name in ("bridge", "vlan"):
        (libexec / name).write_text("#!/bin/sh\n")
        (libexec / name).chmod(0o755)
    (libexec / "readme").write_text("not a plugin")
    host.path("/usr/lib").symlink_to("libexec")  # a directory link along the way
    (bin_dir / "bridge").symlink_to("/usr/libexec/cni/bridge")  # absolute, from the host root
    (bin_dir / "vlan").symlink_to("../../../usr/lib/cni/vlan")  # relative, through /usr/lib -> libexec
    (bin_dir / "again").symlink_to("bridge")  # a link to a link in the same directory
    (bin_dir / "text").symlink_to("/usr/libexec/cni/readme")  # seen, and not executable
    (bin_dir / "gone").symlink_to("/usr/libexec/cni/gone")  # dangling: /usr/libexec/cni is seen
    (bin_dir / "old").symlink_to("/opt/cni/bin/old-v1")  # dangling in the bin dir itself
    (bin_dir / "loop-a").symlink_to("loop-b")
    (bin_dir / "loop-b").symlink_to("/opt/cni/bin/loop-a")
    (bin_dir / "self").symlink_to("self")
    (bin_dir / "elsewhere").symlink_to("/nix/store/abc-cni-plugins/bin/tap")  # not mounted: unseen
    (bin_dir / "beside").symlink_to("../firmware/tuning")  # /opt/cni holds only the mount: unseen
    snapshot = read_host(host.layout)
    assert snapshot.binaries == ("again", "bridge", "vlan")
    assert snapshot.unverified_binaries == (("beside", "/opt/cni/firmware/tuning"),
                                            ("elsewhere", "/nix/store/abc-cni-plugins/bin/tap"))


def test_a_link_the_agent_cannot_follow_gets_no_label_but_is_named_with_what_to_mount(host: StandInHost) -> None:
    """A link to a target outside the agent's mounts may be a plugin on the host or nothing at all (a
    target under the agent's own /host prefix, which the host does not have): the node is not labelled
    for it, and the condition says which link leads where."""
    host.make_ready("b")
    bin_dir = host.path(host.layout.cni_bin_dir)
    host.remove_binary("macvlan")
    (bin_dir / "macvlan").symlink_to("/host/opt/cni/bin/macvlan.real")
    (bin_dir / "ipvlan").symlink_to("/usr/libexec/cni/ipvlan")
    report = evaluate(read_host(host.layout), host.layout)
    assert report.binaries == ("bridge", "multus-shim")
    assert report.unverified_binaries == ("ipvlan", "macvlan")
    c = conditions(report)
    assert (c[BINARIES].status, c[READY].status) == (True, True)
    assert c[BINARIES].message == (
        "multus-shim is in /opt/cni/bin; links the agent cannot follow: /opt/cni/bin/ipvlan -> "
        "/usr/libexec/cni/ipvlan, /opt/cni/bin/macvlan -> /host/opt/cni/bin/macvlan.real: counted as present, "
        "unverified (the node is labelled for them); mount the directory they lead to into the "
        "agent's pod, at the same path under its host root, to have them verified, or fix a link that leads "
        "nowhere on the host")
    # The shim itself behind such a link still counts as installed.
    host.remove_binary("multus-shim")
    (bin_dir / "multus-shim").symlink_to("/usr/libexec/multus/multus-shim")
    c = look(host)
    assert (c[BINARIES].status, c[BINARIES].reason) == (True, "Installed")


def test_a_link_is_not_followed_into_the_agents_own_file_system() -> None:
    """/usr/bin/env exists where the agent runs, not on this host: a link to it is dangling there."""
    assert Path("/usr/bin/env").is_file()
    host = StandInHost(HostLayout(cni_bin_dir="/usr/bin"))
    try:
        bin_dir = host.path("/usr/bin")
        (bin_dir / "env-link").symlink_to("/usr/bin/env")
        host.add_binary("tap")
        assert read_host(host.layout).binaries == ("tap",)
    finally:
        host.cleanup()


def test_link_resolution_stops_after_as_many_links_as_the_kernel_follows(host: StandInHost) -> None:
    bin_dir = host.path(host.layout.cni_bin_dir)
    host.add_binary("tap")
    (bin_dir / f"hop{MAX_LINK_HOPS}").symlink_to("tap")
    for n in range(MAX_LINK_HOPS):
        (bin_dir / f"hop{n}").symlink_to(f"hop{n + 1}")
    assert resolve_on_host(host.layout, "/opt/cni/bin/hop1") == bin_dir / "tap"  # 40 links
    with pytest.raises(OSError, match="Too many levels of symbolic links") as raised:
        resolve_on_host(host.layout, "/opt/cni/bin/hop0")  # 41
    assert raised.value.errno == errno.ELOOP
    assert "hop0" not in read_host(host.layout).binaries
    assert "hop1" in read_host(host.layout).binaries


def test_configs_are_what_libcni_lists(host: StandInHost) -> None:
    """libcni.ConfFiles (which containerd's go-cni calls) keeps every entry but directories whose
    extension after the last dot is .conf, .conflist or .json: hidden files too."""
    for name in ("10-a.conf", "20-b.conflist", "30-c.json", "40-d.yaml", ".00-hidden.conf", ".conf",
                 "50-e.conf.bak", "60-f.CONF", "cilium/05-cilium.conflist"):
        host.write_config(name)
    conf_dir = host.path(host.layout.cni_conf_dir)
    (conf_dir / "70-dir.conf").mkdir()
    (conf_dir / "80-link.conflist").symlink_to(conf_dir / "nowhere")  # listed: the runtime fails on it
    (conf_dir / "00-multus.conf.0123456789abcdef.tmp").write_text("")
    (conf_dir / ".00-multus.conf.0123456789abcdef.tmp").write_text("")  # webhook.atomicfile's
    assert read_host(host.layout).configs == (".00-hidden.conf", ".conf", "10-a.conf", "20-b.conflist",
                                              "30-c.json", "80-link.conflist")



def test_a_primary_config_that_cannot_be_looked_at_is_reported_not_raised(host: StandInHost) -> None:
    # Path.is_file is False for a missing file only: a name too long (or a directory the agent may
    # not search) raises, which stopped the agent before it wrote anything.
    host.make_ready("b")
    name = "x" * 300 + ".conflist"
    layout = replace(host.layout, primary_config=name)
    snapshot = read_host(layout)
    assert snapshot.primary_error == "File name too long"
    c = conditions(evaluate(snapshot, layout))
    assert (c[PRIMARY].status, c[PRIMARY].reason) == (None, "Unreadable")
    assert c[PRIMARY].message == f"cannot read the primary config /etc/cni/net.d/{name}: File name too long"
    assert not c[READY].status


def test_the_host_tells_when_multus_became_ready(host: StandInHost) -> None:
    """The later of the daemon's socket (made afresh on each start, on this boot's tmpfs) and Multus's
    config (which may be left from an earlier boot)."""
    host.make_ready("b")
    sock = host.path(host.layout.multus_socket)
    conf = host.path(host.layout.cni_conf_dir) / host.layout.multus_config
    made = os.stat(sock).st_ctime
    os.utime(conf, (made - 3600, made - 3600))  # from the boot before
    report = evaluate(read_host(host.layout), host.layout)
    assert report.ready_since == datetime.fromtimestamp(made, UTC)
    os.utime(conf, (made + 5, made + 5))  # written after the socket, as `multusConfigFile: auto` does
    assert evaluate(read_host(host.layout), host.layout).ready_since == datetime.fromtimestamp(made + 5, UTC)
    host.stop_daemon()
    not_ready = evaluate(read_host(host.layout), host.layout)
    assert (not_ready.ready, not_ready.ready_since) == (False, None)


def test_a_missing_host_is_reported_not_raised() -> None:
    layout = HostLayout(root=HostLayout().root / "does-not-exist-anywhere")
    c = conditions(evaluate(read_host(layout), layout))
    # What cannot be read is Unknown; what the agent knows it lacks (the boot id, an answer) is False.
    assert {k: (v.status, v.reason) for k, v in c.items()} == {
        BINARIES: (None, "BinDirUnreadable"), CONFIG_FIRST: (None, "ConfDirUnreadable"), PRIMARY: (False, "NotFound"),
        DAEMON: (False, "NotAnswering"), BOOT_ID: (False, "Unreadable"), BOOT_TIME: (False, "Unreadable"),
        REBOOT_RACE: (None, "ConfDirUnreadable"), DHCP: (False, "NotAnswering"), READY: (False, "BinDirUnreadable")}


def test_an_empty_boot_id_file_is_unreadable(host: StandInHost) -> None:
    host.set_boot_id("")
    snapshot = read_host(host.layout)
    assert snapshot.boot_id is None
    assert snapshot.boot_id_error == "the file is empty"


@pytest.mark.parametrize(
    ("configs", "explicit", "expected"),
    [
        (("00-multus.conf", "05-cilium.conflist", "10-flannel.conflist"), None, "05-cilium.conflist"),
        (("00-multus.conf",), None, None),
        ((), None, None),
        (("05-cilium.conflist", "00-multus.conf"), None, "05-cilium.conflist"),
        (("00-multus.conf", "05-cilium.conflist"), "cilium/05-cilium.conflist", "cilium/05-cilium.conflist"),
    ],
)
def test_primary_config_name(configs: tuple[str, ...], explicit: str | None, expected: str | None) -> None:
    assert primary_config_name(configs, "00-multus.conf", explicit) == expected


READY_SNAPSHOT = HostSnapshot(binaries=("multus-shim",), configs=("00-multus.conf", "05-cilium.conflist"),
                              primary_config="05-cilium.conflist", primary_exists=True, boot_id="b1")


def test_ready_summarises_every_failing_check_and_names_the_first() -> None:
    snapshot = replace(READY_SNAPSHOT, daemon_error="Connection refused", boot_id=None, boot_id_error="gone")
    ready = conditions(evaluate(snapshot, HostLayout()))[READY]
    assert (ready.status, ready.reason) == (False, "NotAnswering")
    assert ready.message == ("the Multus daemon does not answer on /run/multus/multus.sock: Connection refused; "
                             "cannot read /proc/sys/kernel/random/boot_id: gone")


def test_no_config_at_all() -> None:
    c = conditions(evaluate(replace(READY_SNAPSHOT, configs=(), primary_config=None, primary_exists=False),
                            HostLayout()))
    assert c[CONFIG_FIRST].reason == "NoConfig"
    assert c[PRIMARY].reason == "NotFound"
    assert c[PRIMARY].message == ("which config Multus delegates to is not known until it writes 00-multus.conf, "
                                  "which names it (with no other config at the top level of /etc/cni/net.d, its "
                                  "auto choice finds none)")
    with_multus = replace(READY_SNAPSHOT, configs=("00-multus.conf",), primary_config=None, primary_exists=False)
    assert conditions(evaluate(with_multus, HostLayout()))[PRIMARY].message == (
        "/etc/cni/net.d holds no config besides 00-multus.conf for Multus to delegate to")


def test_the_multus_names_are_configurable() -> None:
    layout = HostLayout(multus_config="00-multus.conflist", multus_binary="multus")
    snapshot = replace(READY_SNAPSHOT, binaries=("multus",), configs=("00-multus.conflist", "05-cilium.conflist"))
    assert evaluate(snapshot, layout).ready
    assert not evaluate(snapshot, HostLayout()).ready


def test_a_socket_directory_removed_under_the_agent_asks_for_a_restart(host: StandInHost) -> None:
    # A container's hostPath mount of /run/multus keeps the directory it mounted; the thick daemon
    # deletes and re-creates it on every start. A directory held open after its removal is the same
    # thing seen from one process: a path to it (through /proc/self/fd) that leads to no links.
    host.make_ready("boot-1")
    assert not evaluate(read_host(host.layout), host.layout).restart
    socket_dir = host.path(host.layout.multus_socket).parent
    held = os.open(socket_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        host.restart_daemon()
        stale = host.root / "stale-view"
        stale.symlink_to(f"/proc/self/fd/{held}")
        layout = replace(host.layout, multus_socket="/stale-view/multus.sock")
        report = evaluate(read_host(layout), layout)
        assert report.restart
        assert not report.ready
        daemon = conditions(report)[DAEMON]
        assert (daemon.status, daemon.reason) == (None, "SocketDirReplaced")
        assert daemon.message.startswith("/stale-view was removed and created again on the host")
        # The re-created directory, seen afresh (as after the restart), holds the new socket.
        fresh = evaluate(read_host(host.layout), host.layout)
        assert fresh.ready
        assert not fresh.restart
    finally:
        os.close(held)


@pytest.mark.parametrize("which", ["cni_bin_dir", "cni_conf_dir"])
def test_a_bin_or_conf_directory_replaced_on_the_host_asks_for_a_restart(host: StandInHost, which: str) -> None:
    # As for the socket directory: a hostPath mount keeps the directory it mounted when the host
    # replaces it (rm -rf and mkdir, or a link in its place); one held open after its removal is the
    # same thing seen from one process.
    host.make_ready("boot-1")
    directory = host.path(getattr(host.layout, which))
    held = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        away = directory.with_name(directory.name + ".old")
        directory.rename(away)
        shutil.copytree(away, directory, symlinks=True)
        shutil.rmtree(away)
        stale = host.root / "stale-view"
        stale.symlink_to(f"/proc/self/fd/{held}")
        layout = replace(host.layout, **{which: "/stale-view"})
        report = evaluate(read_host(layout), layout)
        assert report.restart
        assert not report.ready
        kind, reason = {"cni_bin_dir": (BINARIES, "BinDirReplaced"),
                        "cni_conf_dir": (CONFIG_FIRST, "ConfDirReplaced")}[which]
        c = conditions(report)[kind]
        assert (c.status, c.reason) == (None, reason)  # Unknown: the agent cannot see the host's directory
        assert c.message == ("/stale-view was removed and created again on the host (or replaced by a link; the "
                             "agent's mount still shows the deleted directory, not what the host holds there) after "
                             "this agent mounted it; the agent restarts to see the new one")
        fresh = evaluate(read_host(host.layout), host.layout)
        assert fresh.ready
        assert not fresh.restart
    finally:
        os.close(held)


def test_a_multus_config_linked_by_an_absolute_path_is_read_where_the_host_reads_it(host: StandInHost) -> None:
    """The runtime on the host follows the link from the host's root, not from the agent's."""
    host.make_ready("b")
    text = multus_config_delegating_to("05-cilium.conflist")
    host.remove_config("00-multus.conf")
    elsewhere = host.path("/etc/cni/multus")
    elsewhere.mkdir(parents=True)
    (elsewhere / "00-multus.conf").write_text(text)
    (host.path(host.layout.cni_conf_dir) / "00-multus.conf").symlink_to("/etc/cni/multus/00-multus.conf")
    c = look(host)
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (True, "First")
    assert c[READY].status


@pytest.mark.parametrize("content", [
    '{"type": "multus-shim", "x": ' + "[" * 5000 + "]" * 5000 + "}",  # Go reads up to 10,000 levels
    '{"type": "multus-shim", "x": 1' + "0" * 5000 + "}",  # Python's int() stops at 4,300 digits, Go does not
])
def test_a_multus_config_go_reads_but_pythons_json_balks_at_does_not_stop_the_agent(
        host: StandInHost, content: str) -> None:
    host.make_ready("b")
    (host.path(host.layout.cni_conf_dir) / "00-multus.conf").write_text(content)
    c = look(host)  # no RecursionError: the agent would exit and its pod crash-loop
    assert c[CONFIG_FIRST].status


def test_a_linked_multus_config_dates_readiness_by_the_file_the_host_reads(host: StandInHost) -> None:
    """The config's mtime is evidence of when Multus became ready (ready_since): the link's target's,
    not what the link names inside the agent's container (nothing, for an absolute link)."""
    host.make_ready("b")
    text = multus_config_delegating_to("05-cilium.conflist")
    host.remove_config("00-multus.conf")
    target = host.path("/etc/cni/multus/00-multus.conf")
    target.parent.mkdir(parents=True)
    target.write_text(text)
    os.utime(target, (1_700_000_000, 1_700_000_000))
    (host.path(host.layout.cni_conf_dir) / "00-multus.conf").symlink_to("/etc/cni/multus/00-multus.conf")
    assert read_host(host.layout).multus_config_modified == 1_700_000_000


def test_a_multus_config_linked_where_the_agent_does_not_see_is_not_taken_on_trust(host: StandInHost) -> None:
    host.make_ready("b")
    host.remove_config("00-multus.conf")
    (host.path(host.layout.cni_conf_dir) / "00-multus.conf").symlink_to("/nix/store/abc-multus/00-multus.conf")
    c = look(host)
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (None, "ConfigUnreadable")
    assert c[CONFIG_FIRST].message == (
        "cannot read /etc/cni/net.d/00-multus.conf, the first config: it links to "
        "/nix/store/abc-multus/00-multus.conf, where the agent does not see the host: mount that directory into "
        "the agent")
    assert c[PRIMARY].reason == "DelegateUnknown"


def _cilium_host(host: StandInHost) -> None:
    """Cilium's layout as Multus runs on it: the primary only in cilium/, named by 00-multus.conf."""
    host.make_ready("b")
    host.remove_config("05-cilium.conflist")
    host.write_config("cilium/05-cilium.conflist")
    host.write_config("00-multus.conf", multus_config_delegating_to("cilium/05-cilium.conflist"))


def test_the_primary_removed_under_multus_is_not_ready_and_no_reboot_race(host: StandInHost) -> None:
    """Cilium with cni.uninstall: true, its agent restarting: it removes its config, and Multus v4.3.0,
    which watches it as its readinessindicatorfile, removes 00-multus.conf and exits
    (pkg/server/config/manager.go). What docs/failure-modes.md says the agent reports meanwhile."""
    _cilium_host(host)
    host.remove_config("cilium/05-cilium.conflist")
    host.remove_config("00-multus.conf")
    host.stop_daemon()
    c = look(host)
    assert not c[READY].status
    assert {k: (v.status, v.reason) for k, v in c.items() if k in (CONFIG_FIRST, DAEMON, PRIMARY, REBOOT_RACE)} == {
        CONFIG_FIRST: (False, "NoConfig"), DAEMON: (False, "NotAnswering"), PRIMARY: (False, "NotFound"),
        REBOOT_RACE: (None, "DelegateUnknown")}
    assert CAPABILITIES not in c


def test_the_subdirectory_layout_with_nothing_else_at_the_top_level_is_guarded(host: StandInHost) -> None:
    _cilium_host(host)
    c = look(host)
    assert c[READY].status
    assert (c[REBOOT_RACE].status, c[REBOOT_RACE].reason) == (True, "OnlyMultusAtTopLevel")
    assert c[REBOOT_RACE].message == ("00-multus.conf is the only CNI config at the top level of /etc/cni/net.d; the "
                                      "primary config is in /etc/cni/net.d/cilium/, which the runtime does not read")


def test_a_stale_top_level_primary_is_reported_while_multus_runs_without_making_the_node_unready(
        host: StandInHost) -> None:
    """A cluster that ran Cilium before install step 2 keeps its old /etc/cni/net.d/05-cilium.conflist
    (Cilium does not remove it). While 00-multus.conf is there it is harmless and the node is ready;
    the agent says now what happens at the next reboot, not only once Multus has stopped."""
    _cilium_host(host)
    host.write_config("05-cilium.conflist")
    report = evaluate(read_host(host.layout), host.layout)
    c = conditions(report)
    assert report.ready
    assert (c[CONFIG_FIRST].status, c[CONFIG_FIRST].reason) == (True, "First")
    assert (c[REBOOT_RACE].status, c[REBOOT_RACE].reason) == (False, "OtherTopLevelConfig")
    assert c[REBOOT_RACE].message.startswith(
        "/etc/cni/net.d/05-cilium.conflist is a CNI config at the top level of /etc/cni/net.d beside 00-multus.conf, "
        "while Multus delegates to /etc/cni/net.d/cilium/05-cilium.conflist: harmless while Multus runs and its "
        "config comes first, but at the next reboot")
    assert "the runtime uses it, and new pods start without their Multus networks" in c[REBOOT_RACE].message
    assert "05-cilium.conflist" not in c[READY].message
    host.remove_config("05-cilium.conflist")
    assert look(host)[REBOOT_RACE].status


def test_every_other_top_level_config_counts_as_the_runtime_picks_them(host: StandInHost) -> None:
    """libcni's extensions (.conf, .conflist, .json), a hidden one too; not a directory, not another file."""
    _cilium_host(host)
    host.write_config("10-flannel.conflist")
    host.write_config("99-other.json")
    host.write_config("05-cilium.conflist.bak")
    host.write_config("notes.txt", "x")
    c = look(host)[REBOOT_RACE]
    assert c.reason == "OtherTopLevelConfig"
    assert c.message.startswith("/etc/cni/net.d/10-flannel.conflist, /etc/cni/net.d/99-other.json are CNI configs ")
    assert "the runtime uses the first of them, 10-flannel.conflist," in c.message
    host.remove_config("10-flannel.conflist")
    host.remove_config("99-other.json")
    host.write_config(".00-hidden.conf")
    c = look(host)
    assert c[REBOOT_RACE].reason == "OtherTopLevelConfig"
    # Sorted before Multus's: the runtime uses it already, which MultusConfigFirst says.
    assert ("the runtime uses .00-hidden.conf now, not 00-multus.conf (see MultusConfigFirst), and at the next "
            "reboot") in c[REBOOT_RACE].message
    assert not c[CONFIG_FIRST].status


def test_the_primary_at_the_top_level_is_exposed_to_the_reboot_race(host: StandInHost) -> None:
    host.make_ready("b")
    host.write_config("00-multus.conf", multus_config_delegating_to("05-cilium.conflist"))
    c = look(host)
    assert c[READY].status
    assert (c[REBOOT_RACE].status, c[REBOOT_RACE].reason) == (False, "PrimaryAtTopLevel")
    assert c[REBOOT_RACE].message.startswith("the primary config /etc/cni/net.d/05-cilium.conflist is at the top level")


def test_without_multus_config_the_delegate_and_its_place_are_unknown(host: StandInHost) -> None:
    """After a reboot, before the daemon writes 00-multus.conf: only it names the delegate."""
    _cilium_host(host)
    host.remove_config("00-multus.conf")
    c = look(host)
    assert (c[REBOOT_RACE].status, c[REBOOT_RACE].reason) == (None, "DelegateUnknown")
    assert c[REBOOT_RACE].message == ("cannot tell whether the primary CNI config is in a subdirectory of "
                                      "/etc/cni/net.d: until Multus writes 00-multus.conf, which names it")
    # Not "holds no config besides 00-multus.conf": cilium/05-cilium.conflist is there.
    assert c[PRIMARY].message.startswith("which config Multus delegates to is not known until it writes 00-multus.conf")


def test_a_configured_primary_tells_the_layout_without_multus_config() -> None:
    host = StandInHost(HostLayout(primary_config="cilium/05-cilium.conflist"))
    try:
        host.make_ready("b")
        host.write_config("05-cilium.conflist")
        host.remove_config("00-multus.conf")
        c = look(host)
        assert c[REBOOT_RACE].reason == "OtherTopLevelConfig"
        assert ("the runtime uses 05-cilium.conflist now, not 00-multus.conf (see MultusConfigFirst)"
                in c[REBOOT_RACE].message)
    finally:
        host.cleanup()


def test_a_capability_the_primary_enabled_after_multus_started_is_reported(host: StandInHost) -> None:
    """Cilium's portmap chaining turned on while Multus runs: with the primary in a subdirectory Multus
    v4.3.0 never writes 00-multus.conf again, and hostPort pods lose their port mappings until it
    restarts. The node stays ready: pods start, without what the capability gives them."""
    _cilium_host(host)
    assert (look(host)[CAPABILITIES].status, look(host)[CAPABILITIES].reason) == (True, "Current")
    host.write_config("cilium/05-cilium.conflist", PORTMAP_CHAINED)
    c = look(host)
    assert c[READY].status
    assert (c[CAPABILITIES].status, c[CAPABILITIES].reason) == (False, "CapabilitiesMissing")
    assert c[CAPABILITIES].message.startswith(
        "/etc/cni/net.d/cilium/05-cilium.conflist enables portMappings, which 00-multus.conf does not carry")
    assert c[CAPABILITIES].message.endswith("kubectl -n kube-system rollout restart ds/kube-multus-ds")
    # What the restarted daemon writes (generator.go: capabilities beside clusterNetwork).
    multus = json.loads(multus_config_delegating_to("cilium/05-cilium.conflist"))
    multus["capabilities"] = {"portMappings": True}
    host.write_config("00-multus.conf", json.dumps(multus))
    c = look(host)
    assert (c[CAPABILITIES].status, c[CAPABILITIES].message) == (
        True, "00-multus.conf carries every capability /etc/cni/net.d/cilium/05-cilium.conflist enables (portMappings)")


def test_capabilities_are_compared_only_when_both_configs_are_read(host: StandInHost) -> None:
    _cilium_host(host)
    host.write_config("cilium/05-cilium.conflist", "{not json")
    assert CAPABILITIES not in look(host)
    host.write_config("cilium/05-cilium.conflist", PORTMAP_CHAINED)
    host.remove_config("00-multus.conf")
    assert CAPABILITIES not in look(host)


@pytest.mark.parametrize(("config", "expected"), [
    ({"plugins": [{"capabilities": {"portMappings": True}}, {"capabilities": {"bandwidth": True, "mac": False}}]},
     ("bandwidth", "portMappings")),
    ({"type": "bridge", "capabilities": {"ips": True, "mac": "yes"}}, ("ips",)),
    # An empty plugins list: Multus reads the config's own capabilities.
    ({"plugins": [], "capabilities": {"mac": True}}, ("mac",)),
    # A non-empty one: only the plugins'.
    ({"plugins": [{"type": "x"}], "capabilities": {"mac": True}}, ()),
    ([], ()),
])
def test_capabilities_as_multus_copies_them(config: Any, expected: tuple[str, ...]) -> None:
    assert capabilities_of(config) == expected


def test_the_dhcp_daemon_answers_when_its_socket_accepts_a_connect(host: StandInHost) -> None:
    host.make_ready("boot-1")
    host.start_daemon(host.layout.dhcp_socket)
    report = evaluate(read_host(host.layout), host.layout)
    assert report.dhcp_daemon
    assert conditions(report)[DHCP] == Condition(DHCP, True, "Connected",
                                                 "the CNI dhcp daemon answers on /run/cni/dhcp.sock")
    # A socket file left behind by a daemon that stopped, as no socket at all: not answering; and Multus's
    # readiness does not depend on it.
    host.stop_daemon(host.layout.dhcp_socket)
    report = evaluate(read_host(host.layout), host.layout)
    assert (report.dhcp_daemon, report.ready) == (False, True)
    assert conditions(report)[DHCP].message.startswith(
        "the CNI dhcp daemon does not answer on /run/cni/dhcp.sock: Connection refused")
    assert "/run/cni" in host.layout.mounted


def test_the_dhcp_daemons_directory_replaced_on_the_host_asks_for_a_restart(host: StandInHost) -> None:
    """The agent's mount of /run/cni keeps the directory it mounted: a daemon started after the host's was
    removed and made again listens where the agent never looks, and the node would stay unlabelled for
    dhcp pods until someone restarted the agent by hand."""
    host.make_ready("boot-1")
    directory = host.path(host.layout.dhcp_socket).parent
    directory.mkdir(parents=True, exist_ok=True)
    held = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        shutil.rmtree(directory)
        directory.mkdir()
        host.start_daemon(host.layout.dhcp_socket)
        stale = host.root / "stale-view"
        stale.symlink_to(f"/proc/self/fd/{held}")
        layout = replace(host.layout, dhcp_socket="/stale-view/dhcp.sock")
        report = evaluate(read_host(layout), layout)
        assert report.restart
        assert (report.dhcp_daemon, report.ready) == (False, True)  # Multus's readiness does not wait for it
        c = conditions(report)[DHCP]
        assert (c.status, c.reason) == (None, "SocketDirReplaced")
        assert c.message.startswith("/stale-view was removed and created again on the host")
        fresh = evaluate(read_host(host.layout), host.layout)
        assert fresh.dhcp_daemon
        assert not fresh.restart
    finally:
        os.close(held)
