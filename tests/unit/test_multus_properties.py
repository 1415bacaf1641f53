"""Properties of rendering and of the profile merge, over random selection elements.

- render: parsing what ``render_networks`` produces gives the same selections back.
- merge: for random existing values and random profiles, the merge never removes or changes an
  element the user wrote, merging twice equals merging once, and the result parses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.multus.profiles import ProfileMergeError, merge_profile_networks
from webhook.multus.selection import (
    RESERVED_INTERFACES,
    Bandwidth,
    NetworkSelection,
    PortMapping,
    dump_json_form,
    fits_text_form,
    interface_problem,
    parse_networks,
    render_networks,
    to_json_element,
    to_text_item,
)

POD_NS = "team"
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

text_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?", fullmatch=True)
# The JSON form takes any non-empty name; keep a few text-valid ones so both forms get exercised.
any_names = text_names | st.text(min_size=1, max_size=8)
interfaces = (
    st.just("")
    | st.sampled_from(["net1", "net2", "net3", "data0", "data1"])
    | st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=8
    )
).filter(lambda s: interface_problem(s) is None and s not in RESERVED_INTERFACES)
# What the short form can carry: no separators or JSON markers.
text_interfaces = interfaces.filter(lambda s: not any(c in s for c in '@,[{"'))
ips = st.ip_addresses().map(str)
cidrs = st.ip_addresses().flatmap(lambda ip: st.integers(0, ip.max_prefixlen).map(lambda p: f"{ip}/{p}"))
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
port_mappings = st.builds(PortMapping, INT64, INT64, st.text(max_size=5), st.text(max_size=8))
bandwidths = st.builds(Bandwidth, INT64, INT64, INT64, INT64)


@st.composite
def selections(draw: st.DrawFn, *, simple: bool = False, namespace: str = POD_NS) -> NetworkSelection:
    """A valid selection; ``simple`` ones have only name, namespace and interface."""
    name = draw(text_names if simple else any_names)
    explicit = draw(st.booleans())
    ns = (
        draw(st.sampled_from([namespace, "other", "shared"]) if simple else any_names)
        if explicit
        else namespace
    )
    sel = NetworkSelection(
        name, ns, draw(text_interfaces if simple else interfaces), namespace_explicit=explicit
    )
    if simple or draw(st.booleans()):
        return sel
    return NetworkSelection(
        name=sel.name,
        namespace=sel.namespace,
        interface=sel.interface,
        namespace_explicit=sel.namespace_explicit,
        ips=tuple(draw(st.lists(ips | cidrs, max_size=2))),
        mac=draw(st.just("") | macs),
        infiniband_guid=draw(st.just("") | macs),
        default_route=draw(st.none() | st.lists(ips, max_size=2).map(tuple)),
        cni_args=draw(st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        port_mappings=tuple(draw(st.lists(port_mappings, max_size=2))),
        bandwidth=draw(st.none() | bandwidths),
        device_id=draw(st.text(max_size=6)),
        ipam_claim_reference=draw(st.text(max_size=6)),
    )


# --- render ---


@settings(deadline=None)
@given(st.lists(selections(), max_size=5))
def test_render_round_trips(sels: list[NetworkSelection]) -> None:
    value = render_networks(sels)
    parsed = parse_networks(value, POD_NS)
    assert parsed.ok, (value, parsed.problems)
    assert parsed.selections == tuple(sels)


@settings(deadline=None)
@given(st.lists(selections(simple=True), min_size=1, max_size=5))
def test_render_uses_the_short_form_when_everything_fits(sels: list[NetworkSelection]) -> None:
    # Simple selections always fit the short form.
    assert all(fits_text_form(s) for s in sels)
    assert parse_networks(render_networks(sels), POD_NS).form == "text"


# --- merge ---

# Keys a user may write that the merge must carry over verbatim.
odd_keys = st.dictionaries(
    st.sampled_from(["x-note", "Interfaces", "comment"]), st.text(max_size=4), max_size=2
)


@st.composite
def existing_values(draw: st.DrawFn) -> tuple[str | None, list[NetworkSelection]]:
    """A valid user value, in either form, and the selections it stands for."""
    kind = draw(st.sampled_from(["none", "empty", "text", "json", "json-extra"]))
    if kind == "none":
        return None, []
    if kind == "empty":
        return "", []
    if kind == "text":
        sels = draw(st.lists(selections(simple=True), min_size=1, max_size=4))
        sep = draw(st.sampled_from([",", ", ", " , "]))
        return sep.join(to_text_item(s) for s in sels), sels
    sels = draw(st.lists(selections(), min_size=0, max_size=4))
    elements: list[dict[str, Any]] = []
    for s in sels:
        element = to_json_element(s)
        if kind == "json-extra":
            element.update(draw(odd_keys))
        elements.append(element)
    return json.dumps(elements, indent=draw(st.sampled_from([None, 2]))), sels


@st.composite
def profiles(draw: st.DrawFn, user: list[NetworkSelection]) -> list[dict[str, Any]]:
    """Profile elements, some of them the same attachments as the user's."""
    pool = selections(simple=draw(st.booleans()))
    if user:
        pool = pool | st.sampled_from(user)
    return [to_json_element(s) for s in draw(st.lists(pool, max_size=4))]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_merge_keeps_the_users_elements_and_is_idempotent(data: st.DataObject) -> None:
    existing, user = data.draw(existing_values())
    profile = data.draw(profiles(user))
    try:
        merged = merge_profile_networks(existing, profile, POD_NS)
    except ProfileMergeError as exc:
        refusal = exc
    else:
        refusal = None
    if refusal is not None:
        # The only refusals a valid value and a valid profile can meet: an interface clash, or a second
        # default-route gateway of one IP family (Multus's ECMP refusal).
        assert refusal.field.endswith(".interface") or "ECMP" in refusal.message, refusal
        return
    if merged == existing:
        assert merged is existing  # byte-identical: no patch
    if merged is None:
        assert not profile
        return
    parsed = parse_networks(merged, POD_NS)
    assert parsed.ok, (merged, parsed.problems)
    # Never removes or changes an element the user wrote...
    assert parsed.selections[: len(user)] == tuple(user)
    if existing and parsed.form == "json" and existing.lstrip().startswith("["):
        assert list(parsed.raw[: len(user)]) == json.loads(existing)
    # ...adds every attachment of the profile...
    keys = {s.key for s in parsed.selections}
    assert all(s.key in keys for s in parse_networks(dump_json_form(profile), POD_NS).selections)
    # ...and merging again changes nothing.
    assert merge_profile_networks(merged, profile, POD_NS) is merged


@settings(deadline=None)
@given(st.text(max_size=30), st.lists(selections(simple=True), max_size=2))
def test_merge_never_touches_an_unparsable_value(value: str, sels: list[NetworkSelection]) -> None:
    if parse_networks(value, POD_NS).ok:
        return
    with pytest.raises(ProfileMergeError, match="was left as written"):
        merge_profile_networks(value, [to_json_element(s) for s in sels], POD_NS)
