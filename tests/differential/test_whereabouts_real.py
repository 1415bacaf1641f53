"""Differential test: our whereabouts rules against the real whereabouts IPAM plugin (v0.9.4).

whereabouts is built from the Go module proxy (hack/whereabouts) and keeps its pools in a real
kube-apiserver: the module's ``cluster``, into which this test applies the version's own CRDs (IPPool,
OverlappingRangeIPReservation, NodeSlicePool, copied from the module's doc/crds by the build script).
Each config is macvlan + whereabouts, judged by the rules and then ADDed through the real libcni in a
pair of network namespaces (webhook.dev.cnisandbox, the ``sandbox`` fixture). A config the
rules admit must give the pod exactly the addresses the case names (the first free ones of its range,
excluded ones skipped); one they deny must be refused for the reason the case names, or, where the rule
denies because whereabouts silently ignores a field, must give the addresses the rule says it gives
instead. Every case has a range of its own: whereabouts hands a pod ref the address it already holds in
a pool, and every ADD here is the same pod. The plugins run in the sandbox's "node" namespace, so the
test forwards the apiserver's port into it (``apiserver_reachable_from``), and writes the node's
whereabouts.conf, without which whereabouts refuses every ADD. Needs root, `ip netns`, Go and the
control plane.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from webhook.dev.cnisandbox import MASTER, Sandbox, our_findings, run_add
from webhook.dev.controlplane import ControlPlane, eventually
from webhook.rules import Severity

pytestmark = pytest.mark.slow

RULE = "nad-ipam-whereabouts"
NO_RANGE = "whereabouts has nothing to allocate from unless the node's whereabouts.conf"


@pytest.fixture(scope="session")
def plugin_dir(cni_bin: Path, whereabouts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CNI_PATH holding the reference plugins, multus-add and whereabouts (links to the builds)."""
    directory = tmp_path_factory.mktemp("cni-path")
    for binary in [*cni_bin.iterdir(), whereabouts_dir / "whereabouts"]:
        if binary.is_file() and not binary.name.startswith("."):
            (directory / binary.name).symlink_to(binary)
    return directory


@pytest.fixture(scope="module")
def store(cluster: ControlPlane, whereabouts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The module's apiserver with whereabouts' CRDs established, where the plugin keeps its pools, and
    the node's whereabouts.conf: whereabouts fails every ADD without one ("config file not found"; it looks
    at the NAD's configuration_path, then under /etc/cni/net.d/whereabouts.d and two other places), and
    its installer writes one, naming the kubeconfig, on every node."""
    flat = tmp_path_factory.mktemp("whereabouts.d") / "whereabouts.conf"
    flat.write_text(json.dumps({"datastore": "kubernetes", "kubernetes": {"kubeconfig": str(cluster.kubeconfig)}}))
    cluster.kubectl("apply", "-f", str(whereabouts_dir / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/ippools.whereabouts.cni.cncf.io",
                    "crd/overlappingrangeipreservations.whereabouts.cni.cncf.io",
                    "crd/nodeslicepools.whereabouts.cni.cncf.io")
    return Store(cluster, flat)


@dataclass(frozen=True)
class Store:
    cluster: ControlPlane
    #: The node's whereabouts.conf, which each config names as its configuration_path.
    flat_file: Path


@dataclass(frozen=True)
class Case:
    id: str
    #: The whereabouts section without its type and kubernetes (the test's kubeconfig).
    ipam: dict[str, Any]
    #: The addresses (CIDR notation) the pod's net1 gets, when the plugin accepts the config.
    addresses: frozenset[str] = frozenset()
    #: The rules deny it and the plugin's error contains this text.
    refused_with: str | None = None
    #: The rules deny it because whereabouts ignores a field, and their message contains this text; the
    #: plugin accepts it and gives ``addresses``, as the message says.
    ignored: str | None = None
    #: The rules warn (this text), and the plugin accepts it and gives ``addresses`` (or, with
    #: ``refused_with``, refuses it: a warning of what fails unless the node or the pod make up for it).
    warned: str | None = None
    #: The ips the pod passes in its selection (IP= in CNI_ARGS, as Multus passes them).
    ips: tuple[str, ...] = ()
    #: The rules deny it with this text (and the plugin refuses it: ``refused_with``).
    denied: str | None = None
    #: What the node's whereabouts.conf holds besides the datastore (whereabouts fills the NAD's empty
    #: fields from it).
    flat: dict[str, Any] | None = None
    #: The plugin's fields in place of macvlan's (its type and master).
    plugin: dict[str, Any] | None = None


def a(*cidrs: str) -> frozenset[str]:
    return frozenset(cidrs)


CASES = [
    # --- admitted: the first free addresses of the range ---
    Case("range-cidr", {"range": "10.21.0.0/24"}, a("10.21.0.1/24")),
    Case("range-start-end", {"range": "10.22.0.0/24", "range_start": "10.22.0.50", "range_end": "10.22.0.60"},
         a("10.22.0.50/24")),
    Case("range-first-last-form", {"range": "10.23.0.10-10.23.0.20/24"}, a("10.23.0.10/24")),
    Case("start-at-network-address", {"range": "10.20.0.0/24", "range_start": "10.20.0.0"}, a("10.20.0.1/24")),
    Case("ip-ranges-several", {"ipRanges": [{"range": "10.24.0.0/24"},
                                            {"range": "10.24.8.0/24", "range_start": "10.24.8.9"},
                                            {"range": "fd00:24::/64"}]},
         a("10.24.0.1/24", "10.24.8.9/24", "fd00:24::1/64")),
    Case("range-and-ip-ranges", {"range": "10.29.0.0/24", "ipRanges": [{"range": "10.29.1.0/24"}]},
         a("10.29.0.1/24", "10.29.1.1/24")),
    Case("exclude-cidr-and-address", {"range": "10.25.0.0/24", "exclude": ["10.25.0.0/30", "10.25.0.4"]},
         a("10.25.0.5/24")),
    Case("ip-ranges-exclude", {"ipRanges": [{"range": "10.26.0.0/24", "exclude": ["10.26.0.0/29"]}]},
         a("10.26.0.8/24")),
    Case("ipv6-range-start-exclude", {"range": "fd00:27::/64", "range_start": "fd00:27::10",
                                      "exclude": ["fd00:27::10/127"]}, a("fd00:27::12/64")),
    Case("addresses", {"range": "10.28.0.0/24", "addresses": [{"address": "10.28.9.5/24"}]},
         a("10.28.0.1/24", "10.28.9.5/24")),
    # A first-last range starting at the network address starts at the first usable one (GetIPRange), and
    # one ending at the broadcast address ends at the last usable one: a range_start or range_end beside
    # it that says so asks for the span the range gives.
    Case("first-last-from-network-start-first-usable", {"range": "10.33.0.0-10.33.0.50/24",
                                                        "range_start": "10.33.0.1"}, a("10.33.0.1/24")),
    Case("first-last-to-broadcast-end-last-usable", {"range": "10.34.0.5-10.34.0.255/24",
                                                     "range_end": "10.34.0.254"}, a("10.34.0.5/24")),
    Case("ip-ranges-first-last-from-network-start-first-usable",
         {"ipRanges": [{"range": "10.35.0.0-10.35.0.50/24", "range_start": "10.35.0.1"}]}, a("10.35.0.1/24")),
    Case("ip-ranges-first-last-to-broadcast-end-last-usable",
         {"ipRanges": [{"range": "10.36.0.5-10.36.0.255/24", "range_end": "10.36.0.254"}]}, a("10.36.0.5/24")),
    # An IPv4-mapped range_start is the IPv4 address, as net.IP's To4 reads it.
    Case("mapped-range-start", {"range": "10.104.0.0/24", "range_start": "::ffff:10.104.0.50"}, a("10.104.0.50/24")),
    # whereabouts decodes no runtimeConfig (its types.Net has none): one that is not an object fails only a
    # plugin that decodes it (nad-plugin-field-types); ptp does not.
    Case("runtime-config-not-an-object", {"range": "10.117.0.0/24", "gateway": "10.117.0.254"}, a("10.117.0.1/24"),
         plugin={"type": "ptp", "runtimeConfig": "not an object"}),
    # A network_name starts the names of the IPPool and of the address's reservation.
    Case("ipv6-range-from-zero-named", {"range": "::2:0:0/112", "network_name": "wa-zero"}, a("::2:0:1/112")),
    # whereabouts adds a '0' to an address Go writes ending in "::" (NormalizeIP): its reservation is fd00-1--0.
    Case("ipv6-address-ending-in-double-colon", {"range": "fd00::/16", "range_start": "fd00:1::"}, a("fd00:1::/16")),
    # Without reservations no address names an object.
    Case("ipv6-address-from-zero-without-reservations", {"range": "0:0:0:3::/64", "enable_overlapping_ranges": False},
         a("::3:0:0:0:1/64")),
    # --- warned, and working as the warning says ---
    # An IPv4-mapped CIDR is the network Go's IPNet makes of it: IPv4, the prefix less 96, from /96 on.
    Case("mapped-range", {"range": "::ffff:10.101.0.0/120"}, a("10.101.0.1/24"),
         warned="reads it as the IPv4 network 10.101.0.0/24"),
    Case("mapped-range-short-prefix", {"range": "::ffff:10.102.0.0/104"}, a("10.0.0.1/8"),
         warned="reads it as the IPv4 network 10.0.0.0/8"),
    Case("mapped-ip-ranges", {"ipRanges": [{"range": "::ffff:10.108.0.0/120"}]}, a("10.108.0.1/24"),
         warned="reads it as the IPv4 network 10.108.0.0/24"),
    Case("mapped-first-last", {"range": "10.111.0.10-::ffff:10.111.0.20/120"}, a("10.111.0.10/24"),
         warned="reads it as the IPv4 network 10.111.0.0/24"),
    Case("mapped-exclude", {"range": "10.106.0.0/24", "exclude": ["::ffff:10.106.0.0/126"]}, a("10.106.0.4/24"),
         warned="reads it as the IPv4 network 10.106.0.0/30"),
    Case("mapped-exclude-address", {"range": "10.107.0.0/24", "exclude": ["::ffff:10.107.0.1"]}, a("10.107.0.1/24"),
         warned="so it excludes nothing"),
    # Below /96 the mask drops the ::ffff:, leaving ::/80, whose IPPool name ("---80") the apiserver refuses
    # (without a network_name from the node's whereabouts.conf).
    Case("mapped-range-below-96", {"range": "::ffff:10.115.0.0/80"}, refused_with="a lowercase RFC 1123 subdomain",
         warned="the IPv6 network ::/80, which holds no IPv4 address"),
    Case("range-leading-zeros", {"range": "10.030.0.0/24"}, a("10.30.0.1/24"), warned="leading zeros as decimal"),
    Case("exclude-outside-range", {"range": "10.31.0.0/24", "exclude": ["10.99.0.0/24"]}, a("10.31.0.1/24"),
         warned="excludes nothing"),
    Case("addresses-leading-zeros", {"range": "10.32.0.0/24", "addresses": [{"address": "10.032.9.5/24"}]},
         a("10.32.0.1/24", "10.32.9.5/24"), warned="leading zeros as decimal"),
    # --- denied: the plugin fails ---
    Case("bad-range-prefix", {"range": "10.40.0.0/33"}, refused_with="invalid CIDR"),
    Case("bad-range-text", {"range": "ten.forty.one/24"}, refused_with="invalid CIDR"),
    Case("bad-range-first-last", {"range": "10.41.1.5-10.41.0.20/24"}, refused_with="invalid range start for CIDR"),
    Case("bad-ip-ranges-entry", {"ipRanges": [{"range": "10.42.0.0/24"}, {"range": "10.42.1.0/40"}]},
         refused_with="invalid CIDR"),
    Case("bad-ip-ranges-start", {"ipRanges": [{"range": "10.43.0.0/24", "range_start": "10.43.0.x"}]},
         refused_with="invalid IP address"),
    Case("bad-exclude", {"range": "10.44.0.0/24", "exclude": ["10.44.0.300/30"]},
         refused_with="could not parse exclude range"),
    Case("exclude-leading-zeros", {"range": "10.45.0.0/24", "exclude": ["10.45.0.010"]},
         refused_with="could not parse exclude range"),
    Case("bad-ip-ranges-exclude", {"ipRanges": [{"range": "10.46.0.0/24", "exclude": ["nope"]}]},
         refused_with="could not parse exclude range"),
    Case("addresses-without-prefix", {"range": "10.47.0.0/24", "addresses": [{"address": "10.47.9.5"}]},
         refused_with="invalid CIDR in addresses"),
    Case("bad-gateway", {"range": "10.48.0.0/24", "gateway": "10.48.0.x"}, refused_with="couldn't parse gateway IP"),
    Case("range-too-small", {"range": "10.49.0.0/31"}, refused_with="has no usable IP addresses"),
    Case("ipv6-range-too-small", {"range": "fd00:52::/127"}, refused_with="has no usable IP addresses"),
    Case("ipv6-bad-range", {"range": "fd00:50::/129"}, refused_with="invalid CIDR"),
    # whereabouts names the range's IPPool after it, and the apiserver refuses a name that starts with '-'
    # unless the node's whereabouts.conf gives a network_name, which whereabouts puts first.
    Case("ipv6-range-from-zero", {"range": "::1:0/112"}, refused_with="a lowercase RFC 1123 subdomain",
         warned="an IPPool named after it, '--1-0-112'"),
    # (ip writes ::1:1 the IPv4-compatible way.)
    Case("ipv6-range-from-zero-the-node-names-it", {"range": "::1:0/112"}, a("::0.1.0.1/112"),
         warned="an IPPool named after it, '--1-0-112'", flat={"network_name": "wa-flat"}),
    # The node's network_name fills only an empty one: the NAD's is the one used.
    Case("network-name-not-an-object-name-the-node-names-it", {"range": "10.119.0.0/24", "network_name": "Blue"},
         refused_with="a lowercase RFC 1123 subdomain", flat={"network_name": "wa-flat"},
         denied="whereabouts starts the name of each of its IPPools with it ('Blue-10.119.0.0-24'"),
    Case("network-name-not-an-object-name", {"range": "10.118.0.0/24", "network_name": "Blue"},
         refused_with="a lowercase RFC 1123 subdomain",
         denied="whereabouts starts the name of each of its IPPools with it ('Blue-10.118.0.0-24'"),
    Case("ip-ranges-entry-without-range", {"ipRanges": [{"range": "10.53.0.0/24"}, {"range_start": "10.53.1.5"}]},
         refused_with="invalid CIDR"),
    Case("no-range", {"exclude": ["10.54.0.0/30"]}, refused_with="IPAM plugin returned missing IP config",
         warned=NO_RANGE),
    Case("no-range-at-all", {}, refused_with="IPAM plugin returned missing IP config", warned=NO_RANGE),
    # ...which the node's whereabouts.conf or the pod's ips make up for.
    Case("no-range-the-node-gives-one", {}, a("10.55.0.1/24"), warned=NO_RANGE, flat={"range": "10.55.0.0/24"}),
    Case("no-range-the-pod-passes-ips", {}, a("10.56.0.7/24"), warned=NO_RANGE, ips=("10.56.0.7/24",)),
    Case("addresses-only", {"addresses": [{"address": "10.55.0.5/24"}]}, a("10.55.0.5/24")),
    Case("ipv6-bad-exclude", {"range": "fd00:51::/64", "exclude": ["fd00:51::g/128"]},
         refused_with="could not parse exclude range"),
    # whereabouts reads node_slice_size as "take this node's slice from the NodeSlicePool", which only the
    # node-slice controller writes (test_node_slices_as_the_rules_say runs it).
    Case("node-slice-without-the-controller", {"range": "10.70.0.0/24", "node_slice_size": "/28"},
         # It logs "error getting node slice kube-system/wa-...: ... not found", then runs the leader
         # elector it could not make.
         refused_with="panic: runtime error: invalid memory address or nil pointer dereference",
         warned="without that controller every pod fails (whereabouts finds no NodeSlicePool, and crashes)"),
    # --- denied: whereabouts ignores the field and allocates as the rule says instead ---
    Case("start-outside-range", {"range": "10.60.0.0/24", "range_start": "10.61.0.5"}, a("10.60.0.1/24"),
         ignored="silently ignore it and allocate from 10.60.0.1 on"),
    Case("end-outside-range", {"range": "10.57.0.0/24", "range_start": "10.57.0.100", "range_end": "10.99.0.1"},
         a("10.57.0.100/24"), ignored="silently ignore it and allocate up to 10.57.0.254"),
    Case("start-unparsable", {"range": "10.64.0.0/24", "range_start": "10.64.0.x"}, a("10.64.0.1/24"),
         ignored="silently drop it and allocate from the first usable address of the range on"),
    # The start still applies when the end is dropped: not the whole range.
    Case("end-unparsable", {"range": "10.66.0.0/24", "range_start": "10.66.0.200", "range_end": "10.66.0.x"},
         a("10.66.0.200/24"), ignored="silently drop it and allocate up to the last usable address of the range"),
    # The node's whereabouts.conf fills the range_start whereabouts dropped.
    Case("start-unparsable-the-node-gives-one", {"range": "10.63.0.0/24", "range_start": "10.63.0.x"},
         a("10.63.0.9/24"), ignored="or use the range_start of the node's whereabouts.conf",
         flat={"range_start": "10.63.0.9"}),
    Case("start-of-other-family", {"range": "10.65.0.0/24", "range_start": "fd00:65::5"}, a("10.65.0.1/24"),
         ignored="silently ignore"),
    Case("end-before-start", {"range": "10.62.0.0/24", "range_start": "10.62.0.200", "range_end": "10.62.0.100"},
         a("10.62.0.200/24"), ignored="would ignore the end"),
    # A first-last range sets both ends: range_start and range_end, readable or not, count for nothing.
    Case("start-unparsable-first-last", {"range": "10.67.0.10-10.67.0.20/24", "range_start": "10.67.0.x"},
         a("10.67.0.10/24"), ignored="is written first-last/prefix"),
    Case("start-given-first-last", {"range": "10.68.0.10-10.68.0.20/24", "range_start": "10.68.0.15"},
         a("10.68.0.10/24"), ignored="is written first-last/prefix"),
    Case("ip-ranges-start-given-first-last",
         {"ipRanges": [{"range": "10.69.0.10-10.69.0.20/24", "range_start": "10.69.0.15"}]},
         a("10.69.0.10/24"), ignored="is written first-last/prefix"),
]


_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), f"setns: {os.strerror(ctypes.get_errno())}")


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def apiserver_reachable_from(netns: str, port: int) -> Iterator[None]:
    """127.0.0.1:``port`` inside ``netns`` forwarded to the apiserver on 127.0.0.1:``port`` here. The
    plugins run in the sandbox's "node" namespace, whose loopback is its own, and whereabouts talks to
    the apiserver from there (as on a node, from the node's namespace): the kubeconfig stays as it is.
    The listening socket is made in ``netns`` by a thread of its own, which enters it and leaves again."""
    listener: list[socket.socket] = []

    def listen() -> None:
        with open("/proc/thread-self/ns/net") as here, open(f"/var/run/netns/{netns}") as there:
            _setns(there.fileno())
            try:
                listener.append(socket.create_server(("127.0.0.1", port)))
            finally:
                _setns(here.fileno())

    maker = threading.Thread(target=listen)
    maker.start()
    maker.join()
    if not listener:
        raise RuntimeError(f"could not listen on 127.0.0.1:{port} in {netns}")
    server = listener[0]
    open_sockets: list[socket.socket] = [server]

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                upstream = socket.create_connection(("127.0.0.1", port))
                open_sockets.extend((conn, upstream))
                for src, dst in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield
    finally:
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _config(case: Case, store: Store, tmp_path: Path) -> dict[str, Any]:
    flat = store.flat_file
    if case.flat is not None:
        flat = tmp_path / "whereabouts.conf"
        flat.write_text(json.dumps({**json.loads(store.flat_file.read_text()), **case.flat}))
    ipam = {"type": "whereabouts", **case.ipam, "configuration_path": str(flat),
            "kubernetes": {"kubeconfig": str(store.cluster.kubeconfig)}}
    plugin = {"type": "macvlan", "master": MASTER} if case.plugin is None else case.plugin
    return {"cniVersion": "1.0.0", "name": f"wa-{case.id}", **plugin, "ipam": ipam}


def _addresses(box: Sandbox) -> frozenset[str]:
    """The global addresses on the pod's net1."""
    out = subprocess.run(["ip", "-n", box.pod, "-j", "addr", "show", "dev", "net1"], check=True,
                         capture_output=True, text=True).stdout
    return frozenset(f"{info['local']}/{info['prefixlen']}" for link in json.loads(out)
                     for info in link["addr_info"] if info.get("scope") == "global")


def _judge_and_add(case: Case, config: dict[str, Any], store: Store, sandbox: Sandbox, plugin_dir: Path) -> None:
    """The rules' verdict on ``config`` and then the real ADD, each as ``case`` says."""
    denials = our_findings(config, "net1")
    warnings = our_findings(config, "net1", Severity.WARN)
    if (case.refused_with is None or case.warned is not None) and case.ignored is None and case.denied is None:
        assert denials == [], f"the rules deny a config the case says whereabouts takes: {denials}"
    else:
        assert {d.split(":")[0] for d in denials} == {RULE}, f"not (only) {RULE}: {denials}"
    for said in (case.ignored, case.denied):
        if said is not None:
            assert any(said in d for d in denials), denials
    if case.warned is not None:
        assert any(w.startswith(RULE) and case.warned in w for w in warnings), warnings

    with apiserver_reachable_from(sandbox.host, store.cluster.port):
        outcome = run_add(config, sandbox, plugin_dir, "net1", {"ips": list(case.ips)} if case.ips else None)
    if case.refused_with is not None:
        assert not outcome.accepted, f"whereabouts accepted a config our rules deny: {denials}"
        assert case.refused_with in outcome.error, f"refused for another reason: {outcome.error}"
        return
    assert outcome.accepted, f"whereabouts refused a config the case says it takes: {outcome.error}"
    assert _addresses(sandbox) == case.addresses


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rules_agree_with_real_whereabouts(
    case: Case, plugin_dir: Path, store: Store, sandbox: Sandbox, tmp_path: Path
) -> None:
    _judge_and_add(case, _config(case, store, tmp_path), store, sandbox, plugin_dir)


def test_allocations_are_kept_in_the_apiserver(
    plugin_dir: Path, store: Store, sandbox: Sandbox, tmp_path: Path
) -> None:
    """What a pod is given is an IPPool's allocation in the apiserver, naming its container: the store is
    real."""
    case = Case("kept-in-the-apiserver", {"range": "10.80.0.0/24"}, a("10.80.0.1/24"))
    _judge_and_add(case, _config(case, store, tmp_path), store, sandbox, plugin_dir)
    pool = json.loads(store.cluster.kubectl("get", "ippools.whereabouts.cni.cncf.io", "-n", WHEREABOUTS_NAMESPACE,
                                            "10.80.0.0-24", "-o", "json").stdout)
    assert pool["spec"]["range"] == "10.80.0.0/24"
    # An allocation is keyed by its offset from the range's network address.
    allocation = pool["spec"]["allocations"]["1"]
    assert (allocation["id"], allocation["ifname"]) == (f"ctr-{sandbox.pod}", "net1"), allocation


def test_a_refused_reservation_fails_the_pod_and_keeps_its_address(
    plugin_dir: Path, store: Store, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The range's IPPool (0-0-0-4---64) is a name the apiserver takes, but the reservation of the pod's
    address, ::4:0:0:0:1 (Go writes it from "::"), is not: the pod fails, after whereabouts has kept the
    address in the pool, as the warning says."""
    case = Case("address-from-zero", {"range": "0:0:0:4::/64"}, refused_with="a lowercase RFC 1123 subdomain",
                warned="an OverlappingRangeIPReservation named after it, '--4-0-0-0-1' for ::4:0:0:0:1, which the "
                       "apiserver refuses")
    _judge_and_add(case, _config(case, store, tmp_path), store, sandbox, plugin_dir)
    pool = json.loads(store.cluster.kubectl("get", "ippools.whereabouts.cni.cncf.io", "-n", WHEREABOUTS_NAMESPACE,
                                            "0-0-0-4---64", "-o", "json").stdout)
    assert pool["spec"]["allocations"]["1"]["id"] == f"ctr-{sandbox.pod}", pool["spec"]


@pytest.mark.parametrize(("case", "pool", "reservation"), [
    (Case("named-by-the-node", {"range": "::5:0/112"}, a("::0.5.0.1/112"), flat={"network_name": "wa-flat"},
          warned="an IPPool named after it, '--5-0-112'"), "wa-flat---5-0-112", "wa-flat---5-1"),
    (Case("reserved-ending-in-zero", {"range": "fd06::/16", "range_start": "fd06:5::"}, a("fd06:5::/16")),
     "fd06---16", "fd06-5--0"),
], ids=["named-by-the-node", "reserved-ending-in-zero"])
def test_object_names_as_the_rules_take_them(
    case: Case, pool: str, reservation: str, plugin_dir: Path, store: Store, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The names whereabouts gives the IPPool and the reservation where the rules say the apiserver takes
    them: a network_name from the node's whereabouts.conf first, a '0' after an address ending in '::'."""
    config = _config(case, store, tmp_path)
    warned = our_findings(config, "net1", Severity.WARN)
    assert not any("OverlappingRangeIPReservation" in w for w in warned), warned
    _judge_and_add(case, config, store, sandbox, plugin_dir)
    for kind, name in (("ippools", pool), ("overlappingrangeipreservations", reservation)):
        found = store.cluster.kubectl("get", f"{kind}.whereabouts.cni.cncf.io", "-n", WHEREABOUTS_NAMESPACE, name,
                                      check=False)
        assert found.returncode == 0, found.stderr


# --- node_slice_size, with whereabouts' node-slice controller running --------------------------

#: Where whereabouts keeps its pools when the kubeconfig's context names no namespace (storage/kubernetes
#: wbNamespaceFromCtx), and so where the controller must write its NodeSlicePools.
WHEREABOUTS_NAMESPACE = "kube-system"

NODE_SLICE_CASES = [
    # The node's slice is the range's first /28 (the module's only Node): the pod gets its first address.
    Case("node-slice", {"range": "10.71.0.0/24", "node_slice_size": "/28"}, a("10.71.0.1/24"),
         warned="without that controller every pod fails"),
    # The node's slice takes the place of the range, excludes and all.
    Case("node-slice-exclude-ignored", {"range": "10.76.0.0/24", "node_slice_size": "/28",
                                        "exclude": ["10.76.0.0/30"]}, a("10.76.0.1/24"),
         warned="without that controller every pod fails", ignored="ignores exclude when node_slice_size is set"),
    # ...and so do range_start, range_end and a first-last range: the slice's first and last usable
    # addresses replace the range's, and the controller slices the range's network.
    Case("node-slice-range-start-ignored", {"range": "10.77.0.0/24", "node_slice_size": "/28",
                                            "range_start": "10.77.0.50"}, a("10.77.0.1/24"),
         warned="without that controller every pod fails", ignored="ignores range_start when node_slice_size is set"),
    Case("node-slice-first-last-ignored", {"range": "10.78.0.10-10.78.0.20/24", "node_slice_size": "/28"},
         a("10.78.0.1/24"), warned="without that controller every pod fails",
         ignored="ignores the first-last form of spec.config.ipam.range ('10.78.0.10-10.78.0.20/24') when "
                 "node_slice_size is set"),
    Case("node-slice-ip-ranges-start-end-ignored",
         {"ipRanges": [{"range": "10.79.0.0/24", "range_start": "10.79.0.100", "range_end": "10.79.0.110"}],
          "node_slice_size": "/28"}, a("10.79.0.1/24"), warned="without that controller every pod fails",
         ignored="ignores range_end when node_slice_size is set"),
    # Every range is allocated from the IPPool of the node's slice of the first range, where the pod's
    # allocation is found again: a further range gives the same address under its own mask, which macvlan
    # cannot add twice where the masks are the same...
    Case("node-slice-further-range", {"ipRanges": [{"range": "10.81.0.0/24"}, {"range": "10.82.0.0/24"}],
                                      "node_slice_size": "/28"}, refused_with='to "net1": file exists',
         denied="for 10.82.0.0/24 it hands the pod the address it got from that slice again"),
    # ...and gives the pod twice where they are not (an IPv6 range's mask keeps none of an IPv4 address).
    Case("node-slice-further-range-ipv6", {"range": "10.84.0.0/24", "ipRanges": [{"range": "fd00:84::/64"}],
                                           "node_slice_size": "/28"}, a("10.84.0.1/24", "10.84.0.1/0"),
         ignored="for fd00:84::/64 it hands the pod the address it got from that slice again, under this range's "
                 "mask, and never one of fd00:84::/64"),
    # ...but an IPv6 range of /97 or longer keeps the last bits of its mask for the IPv4 address: /120 is
    # /24 again, the first range's mask.
    Case("node-slice-further-range-ipv6-same-mask", {"range": "10.87.0.0/24", "ipRanges": [{"range": "fd00:87::/120"}],
                                                     "node_slice_size": "/28"}, refused_with='to "net1": file exists',
         denied='for fd00:87::/120 it hands the pod the address it got from that slice again, under this range\'s '
                'mask, and never one of fd00:87::/120: the interface plugin then adds one address twice and fails '
                'every pod ("file exists")'),
    # The controller makes a NodeSlicePool without slices of a size it cannot read...
    Case("node-slice-size-unparsable", {"range": "10.72.0.0/24", "node_slice_size": "abc"},
         refused_with="no allocated node slice for node", denied="not a prefix length"),
    # ...none at all of a slice larger than the range, or of an IPv6 range...
    Case("node-slice-larger-than-range", {"range": "10.73.0.0/24", "node_slice_size": "/20"},
         refused_with="error getting node slice kube-system/wa-node-slice-larger-than-range",
         denied="larger than the range"),
    Case("node-slice-ipv6", {"range": "fd00:75::/64", "node_slice_size": "/120"},
         refused_with="not found", denied="slices IPv4 ranges only"),
    # ...and slices without a usable address of a size past /30.
    Case("node-slice-no-usable-address", {"range": "10.74.0.0/24", "node_slice_size": "/31"},
         refused_with="has no usable IP addresses", denied="use at most /30"),
]


@pytest.fixture(scope="module")
def node_name(store: Store) -> str:
    """The Node the module's plugin runs on: whereabouts names its node from NODENAME, then a nodename
    file, then /etc/hostname (storage/kubernetes getNodeName); the tests' ADD sets neither of the first
    two. The controller gives slices to the Nodes it finds."""
    name = Path("/etc/hostname").read_text().strip()
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    store.cluster.kubectl("create", "-f", "-", input=json.dumps(node))
    return name


@contextlib.contextmanager
def node_slice_controller(whereabouts_dir: Path, store: Store, tmp_path: Path, nad: dict[str, Any]) -> Iterator[str]:
    """whereabouts' node-slice controller, running until it has synced ``nad`` (created here, deleted on the
    way out) or failed to: yields what it logged. A controller of the case's own, as one may crash (an
    IPv6 range), and as it fails every whereabouts NAD when two of one network_name (none counts as one)
    have different ranges."""
    log = tmp_path / "nodeslicecontroller.log"
    key = f"{nad['metadata']['namespace']}/{nad['metadata']['name']}"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(whereabouts_dir / "nodeslicecontroller"), "-kubeconfig",
                                 str(store.cluster.kubeconfig)],
                                env={**os.environ, "WHEREABOUTS_NAMESPACE": WHEREABOUTS_NAMESPACE},
                                stdout=out, stderr=subprocess.STDOUT)
    store.cluster.kubectl("create", "-f", "-", input=json.dumps(nad))
    try:
        def settled() -> str | None:
            said = log.read_text(errors="replace")
            done = f"error syncing '{key}'" in said or (
                "Successfully synced" in said and f'resourceName="{key}"' in said)
            return said if done or proc.poll() is not None else None

        yield eventually(settled, f"the node-slice controller to sync {key}")
    finally:
        store.cluster.kubectl("delete", "-f", "-", "--wait=false", input=json.dumps(nad), check=False)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize("case", NODE_SLICE_CASES, ids=[c.id for c in NODE_SLICE_CASES])
def test_node_slices_as_the_rules_say(
    case: Case, plugin_dir: Path, whereabouts_dir: Path, store: Store, node_name: str, sandbox: Sandbox,
    tmp_path: Path
) -> None:
    config = _config(case, store, tmp_path)
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": config["name"], "namespace": "default"}, "spec": {"config": json.dumps(config)}}
    with node_slice_controller(whereabouts_dir, store, tmp_path, nad):
        _judge_and_add(case, config, store, sandbox, plugin_dir)


#: Said of node_slice_size without a network_name.
HELD_AGAINST_OTHERS = "found IPAM conf mismatch for network-attachment-definitions with same network name"


@pytest.mark.parametrize("case", [
    # The controller holds every NAD without a network_name against every other one, in any namespace,
    # and syncs none while their first ranges differ: no NodeSlicePool, and the plugin crashes.
    Case("node-slice-another-nad", {"range": "10.85.0.0/24", "node_slice_size": "/28"},
         refused_with="panic: runtime error: invalid memory address or nil pointer dereference",
         warned=HELD_AGAINST_OTHERS),
    # A network_name of its own keeps it apart.
    Case("node-slice-another-nad-named", {"range": "10.86.0.0/24", "node_slice_size": "/28", "network_name": "own"},
         a("10.86.0.1/24"), warned="without that controller every pod fails"),
], ids=lambda case: case.id)
def test_node_slices_beside_another_whereabouts_nad(
    case: Case, plugin_dir: Path, whereabouts_dir: Path, store: Store, node_name: str, sandbox: Sandbox,
    tmp_path: Path
) -> None:
    other_config = _config(Case("another-nad", {"range": "10.90.0.0/24"}), store, tmp_path)
    other = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
             "metadata": {"name": "another", "namespace": "kube-public"}, "spec": {"config": json.dumps(other_config)}}
    config = _config(case, store, tmp_path)
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": config["name"], "namespace": "default"}, "spec": {"config": json.dumps(config)}}
    store.cluster.kubectl("create", "-f", "-", input=json.dumps(other))
    try:
        with node_slice_controller(whereabouts_dir, store, tmp_path, nad) as log:
            held = f"error syncing 'default/{config['name']}': {HELD_AGAINST_OTHERS}" in log
            assert held is (case.refused_with is not None), log[-3000:]
            if not held:
                assert not any(HELD_AGAINST_OTHERS in w for w in our_findings(config, "net1", Severity.WARN))
            _judge_and_add(case, config, store, sandbox, plugin_dir)
    finally:
        store.cluster.kubectl("delete", "-f", "-", input=json.dumps(other), check=False)
