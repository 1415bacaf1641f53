"""Property: any JSON value in any position of a NAD config yields findings, never an exception.

The engine turns a rule's exception into an "internal error in rule" finding instead of raising;
such a finding fails this test just as an exception would.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.rules import Finding, Policy, Subject, evaluate

NAD = "NetworkAttachmentDefinition"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["10.0.0.0/24", "10.0.0.1", "fd00::/64", "fd00::1-fd00::9/64", "net.x", "", "l2", "eth0"]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

PLUGIN_TYPES = [
    "bridge", "macvlan", "ipvlan", "vlan", "host-device", "ptp", "dummy", "tuning",
    "portmap", "bandwidth", "firewall", "sbr", "vrf", "unknown",
]  # fmt: skip
IPAM_TYPES = ["host-local", "whereabouts", "static", "dhcp", "other"]

PLUGIN_FIELDS = [
    "master", "mode", "mtu", "vlan", "vlanId", "bridge", "hairpinMode", "promiscMode", "device",
    "hwaddr", "kernelpath", "pciBusID", "runtimeConfig", "vrfname", "ingressRate", "ingressBurst",
    "egressRate", "egressBurst", "sysctl", "capabilities", "name", "cniVersion", "dns", "ipam", "type",
]  # fmt: skip
IPAM_FIELDS = [
    "subnet", "rangeStart", "rangeEnd", "gateway", "ranges", "range", "range_start", "range_end",
    "exclude", "ipRanges", "addresses", "routes", "network_name", "enable_overlapping_ranges", "type",
]  # fmt: skip


@st.composite
def ipam_sections(draw: st.DrawFn) -> Any:
    ipam: dict[str, Any] = {"type": draw(st.sampled_from(IPAM_TYPES))}
    for key in draw(st.lists(st.sampled_from(IPAM_FIELDS), max_size=5)):
        ipam[key] = draw(json_values)
    if draw(st.booleans()):
        # Well-formed shapes with arbitrary leaves reach deeper into the parsers.
        ipam["ranges"] = [[{"subnet": draw(json_values), "rangeStart": draw(json_values)}]]
        ipam["ipRanges"] = [{"range": draw(json_values), "exclude": [draw(json_values)]}]
        ipam["addresses"] = [{"address": draw(json_values), "gateway": draw(json_values)}]
        ipam["routes"] = [{"dst": draw(json_values), "gw": draw(json_values)}]
    return draw(st.one_of(st.just(ipam), json_values))


@st.composite
def plugins(draw: st.DrawFn) -> Any:
    plugin: dict[str, Any] = {"type": draw(st.sampled_from(PLUGIN_TYPES) | json_values)}
    for key in draw(st.lists(st.sampled_from(PLUGIN_FIELDS), max_size=6)):
        plugin[key] = draw(json_values)
    plugin["ipam"] = draw(ipam_sections())
    return draw(st.one_of(st.just(plugin), json_values))


@st.composite
def configs(draw: st.DrawFn) -> Any:
    top: dict[str, Any]
    if draw(st.booleans()):
        top = {"plugins": draw(st.lists(plugins(), max_size=4) | json_values)}
    else:
        plugin = draw(plugins())
        top = plugin if isinstance(plugin, dict) else {"type": plugin}
    for key in draw(
        st.lists(st.sampled_from(["cniVersion", "cniVersions", "name", "disableCheck"]), max_size=3)
    ):
        top[key] = draw(json_values)
    return draw(st.one_of(st.just(top), json_values))


def _check(config_text: Any, metadata: Any) -> list[Finding]:
    obj = {"metadata": metadata, "spec": {"config": config_text}}
    found = evaluate(Subject(obj, NAD), Policy())
    assert isinstance(found, list)
    assert all(isinstance(f, Finding) for f in found)
    internal = [f for f in found if f.message.startswith("internal error in rule")]
    assert internal == [], internal
    for f in found:
        assert f.field, f
    return found


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.sampled_from(["net1", "a.b", "Bad_Name", ""]) | json_values)
def test_any_json_in_any_position_gives_findings(config: Any, name: Any) -> None:
    _check(json.dumps(config), {"name": name, "annotations": {"k8s.v1.cni.cncf.io/resourceName": "x"}})


@settings(max_examples=200, deadline=None)
@given(json_values, json_values)
def test_any_spec_config_and_metadata(config: Any, metadata: Any) -> None:
    # spec.config itself may be any JSON value (the CRD schema is not always enforced, e.g. in the CLI).
    _check(config, metadata)
