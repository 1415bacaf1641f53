"""Merging a NetworkProfile's networks into a pod's networks annotation, case by case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.multus.profiles import ProfileMergeError, merge_profile_networks


def merge(existing: str | None, profile: Any, namespace: str = "team", **kw: Any) -> str | None:
    return merge_profile_networks(existing, profile, namespace, **kw)


def refusal(existing: str | None, profile: Any, **kw: Any) -> ProfileMergeError:
    with pytest.raises(ProfileMergeError) as info:
        merge(existing, profile, **kw)
    return info.value


def test_pod_without_annotation_gets_the_profile_in_short_form() -> None:
    assert merge(None, [{"name": "a"}, {"name": "b", "namespace": "shared", "interface": "data0"}]) == (
        "a,shared/b@data0"
    )


def test_empty_annotation_gets_the_profile() -> None:
    assert merge("", [{"name": "a"}]) == "a"


def test_profile_elements_are_appended_after_the_users() -> None:
    # The pod's own value stays character for character; the profile's elements follow it.
    assert merge(" x , y@data0 ", [{"name": "a"}]) == " x , y@data0 ,a"


def test_nothing_to_add_returns_the_same_object() -> None:
    for existing in (None, "", " a ,b", '[{"name": "a", "comment": "mine"}]'):
        assert merge(existing, []) is existing
    existing = " team/a , b"
    assert merge(existing, [{"name": "a"}, {"name": "b", "namespace": "team"}]) is existing


def test_presence_resolves_namespaces_against_the_pod() -> None:
    assert merge("a", [{"name": "a", "namespace": "team"}], namespace="team") == "a"
    assert merge("a", [{"name": "a", "namespace": "other"}], namespace="team") == "a,other/a"


def test_same_network_on_another_interface_is_another_attachment() -> None:
    assert merge("a@data0", [{"name": "a"}]) == "a@data0,a"


def test_a_network_the_profile_names_twice_is_attached_twice_as_multus_would() -> None:
    # Two VFs from one SR-IOV NAD: Multus makes one attachment per element, so does the merge.
    assert merge(None, [{"name": "a"}, {"name": "a"}]) == "a,a"
    # A pod that has one of them gets the other; one that has both gets nothing (idempotent).
    assert merge("a", [{"name": "a"}, {"name": "a"}]) == "a,a"
    existing = "a,a"
    assert merge(existing, [{"name": "a"}, {"name": "a"}]) is existing
    # The pod's own duplicates cover only as many of the profile's.
    assert merge("a,a", [{"name": "a"}]) == "a,a"


def test_json_form_when_an_element_needs_it() -> None:
    merged = merge("x@data0", [{"name": "a", "ips": ["10.0.0.5/24"]}])
    assert merged is not None
    assert json.loads(merged) == [{"name": "x", "interface": "data0"}, {"name": "a", "ips": ["10.0.0.5/24"]}]


def test_users_json_is_kept_verbatim_including_keys_multus_ignores() -> None:
    existing = '[{"name": "x", "comment": "mine", "interfaceRequest": "data0"}]'
    merged = merge(existing, [{"name": "a"}])
    assert merged is not None
    assert json.loads(merged) == [
        {"name": "x", "comment": "mine", "interfaceRequest": "data0"},
        {"name": "a"},
    ]


def test_users_json_stays_json_when_the_short_form_could_say_it_too() -> None:
    """The pod's author picked the form: the merge adds to it and does not rewrite it."""
    merged = merge('[{"name": "x", "namespace": "other"}]', [{"name": "a"}])
    assert merged is not None
    assert json.loads(merged) == [{"name": "x", "namespace": "other"}, {"name": "a"}]


def test_short_form_stays_short_and_nothing_written_becomes_short() -> None:
    assert merge("other/x", [{"name": "a"}]) == "other/x,a"
    assert merge(None, [{"name": "a", "interface": "data0"}]) == "a@data0"


def test_merging_again_changes_nothing() -> None:
    profile = [{"name": "a", "mac": "02:00:00:00:00:01"}, {"name": "b"}]
    once = merge('[{"name": "x"}]', profile)
    assert merge(once, profile) is once


def test_interface_clash_names_both() -> None:
    err = refusal("x@data0", [{"name": "a", "interface": "data0"}], profile_name="db")
    assert err.field == "spec.networks[0].interface"
    assert "NetworkProfile db spec.networks[0] (team/a@data0) requests interface data0" in err.message
    assert "the pod's own element k8s.v1.cni.cncf.io/networks[0] (team/x@data0) already uses" in err.message
    assert "give one of them another interface name" in err.message


def test_positional_name_clash_is_refused() -> None:
    # x is net1 by position; the profile asks for net1 explicitly.
    err = refusal("x", [{"name": "a", "interface": "net1"}])
    assert "already uses" in err.message
    # The profile's unnamed element would be net2, which the user took explicitly for x.
    err = refusal('[{"name": "y"}, {"name": "x", "interface": "net3"}]', [{"name": "a"}])
    assert "would be given interface (by its position) net3" in err.message


def test_first_index_shifts_positional_names() -> None:
    assert merge("x@net2", [{"name": "a"}], first_index=2) is not None
    err = refusal("x@net3", [{"name": "a"}], first_index=2)
    assert "net3" in err.message


def test_clash_within_the_profile_is_refused() -> None:
    err = refusal(
        None, [{"name": "a", "interface": "data0"}, {"name": "b", "interface": "data0"}], profile_name="p"
    )
    assert err.field == "spec.networks[1].interface"
    assert "which NetworkProfile p spec.networks[0] (team/a@data0) already uses" in err.message


@pytest.mark.parametrize("ifname", ["eth0", "lo"])
def test_reserved_interface_in_profile_is_refused(ifname: str) -> None:
    err = refusal(None, [{"name": "a", "interface": ifname}])
    assert f"requests interface {ifname}, which every pod already has" in err.message


@pytest.mark.parametrize("existing", ["a/b/c", "a,,b", '[{"name": 5}]', "[oops", '{"name": "a"}'])
def test_unparsable_user_value_is_an_error_and_left_alone(existing: str) -> None:
    err = refusal(existing, [{"name": "a"}], profile_name="p")
    assert err.field.startswith('metadata.annotations["k8s.v1.cni.cncf.io/networks"]')
    assert (
        "NetworkProfile p spec.networks was not applied and the annotation was left as written" in err.message
    )


@pytest.mark.parametrize(
    ("profile", "field", "text"),
    [
        ("a", "spec.networks", "must be a list of objects"),
        ([{"name": "a", "mac": "x"}], "spec.networks[0].mac", "is not a MAC address"),
        ([{"interface": "data0"}], "spec.networks[0].name", "is empty"),
        (["a"], "spec.networks[0]", "must be an object"),
    ],
)
def test_invalid_profile_is_an_error(profile: Any, field: str, text: str) -> None:
    err = refusal("x", profile, profile_name="p")
    assert err.field == field
    assert err.message.startswith("NetworkProfile p spec.networks")
    assert text in err.message
    assert err.message.endswith("the profile was not applied")


def test_yaml_non_string_keys_in_a_profile_are_an_error_not_a_crash() -> None:
    # YAML 1.1 reads an unquoted `yes:` key as True; JSON never gives such keys.
    err = refusal("x", [{True: "a"}])
    assert err.field == "spec.networks[0]"
    assert "a key that is not a string" in err.message
    err = refusal("x", [{"name": "a", "bandwidth": {1: 2}}])
    assert err.field == "spec.networks[0].bandwidth"
    err = refusal("x", [{"name": "a", "portMappings": [{1: 2}]}])
    assert err.field == "spec.networks[0].portMappings[0]"


# --- default-route gateways: at most one per IP family across the pod's and the profile's (Multus's ECMP) ---

ROUTE_1 = '[{"name": "a", "default-route": ["10.0.0.1"]}]'
PROFILE_ROUTE_2 = [{"name": "b", "default-route": ["10.0.0.2"]}]


def test_a_profile_adding_a_second_gateway_of_a_family_is_refused_naming_it() -> None:
    error = refusal(ROUTE_1, PROFILE_ROUTE_2, profile_name="egress")
    assert error.field == "spec.networks[0].default-route[0]"
    assert "k8s.v1.cni.cncf.io/networks[0].default-route[0] (10.0.0.1)" in error.message
    assert "NetworkProfile egress spec.networks[0].default-route[0] (10.0.0.2)" in error.message
    assert "2 IPv4 default-route gateways" in error.message
    assert "NetworkProfile egress spec.networks adds 1 of them, so the profile was not applied" in error.message


def test_the_default_networks_gateway_counts_against_the_profiles() -> None:
    error = refusal(None, PROFILE_ROUTE_2, profile_name="egress",
                    default_network='[{"name": "d", "default-route": ["10.0.0.1"]}]')
    assert "v1.multus-cni.io/default-network[0].default-route[0] (10.0.0.1)" in error.message
    assert "NetworkProfile egress spec.networks adds 1 of them" in error.message


def test_a_profile_with_two_gateways_of_a_family_is_refused_for_every_pod() -> None:
    error = refusal(None, [*PROFILE_ROUTE_2, {"name": "c", "interface": "net9", "default-route": ["10.0.0.3"]}],
                    profile_name="two")
    assert error.field == "spec.networks[1].default-route[0]"
    assert "NetworkProfile two spec.networks adds all of them" in error.message


def test_a_profile_giving_the_pod_networks_makes_multus_count_the_default_networks_gateways() -> None:
    # Without a networks annotation Multus counts no gateway (the pod starts); the profile gives it one.
    error = refusal(None, [{"name": "b"}], default_network='[{"name": "d", "default-route": ["10.0.0.1", "10.0.0.2"]}]')
    # The gateways are the pod's: the finding points at the last of them, and the advice at where they are.
    assert error.field == 'metadata.annotations["v1.multus-cni.io/default-network"][0].default-route[1]'
    assert "which the network profile's spec.networks would give it" in error.message
    assert error.message.endswith(
        "keep one IPv4 default-route in the pod's v1.multus-cni.io/default-network annotation")


@pytest.mark.parametrize(
    ("existing", "default_network"),
    [
        # One gateway per family.
        ('[{"name": "a", "default-route": ["fd00::1"]}]', None),
        (None, '[{"name": "d", "default-route": ["fd00::1"]}]'),
        # The profile's element is the pod's own, so not added: one gateway.
        ('[{"name": "b", "default-route": ["10.0.0.2"]}]', None),
        # The pod is refused for its own two gateways (pod-networks-default-route), not for the profile.
        ('[{"name": "a", "default-route": ["10.0.0.1", "10.0.0.3"]}]', None),
    ],
)
def test_gateways_the_profile_does_not_make_too_many_are_merged(existing: str | None,
                                                                default_network: str | None) -> None:
    assert merge(existing, PROFILE_ROUTE_2, default_network=default_network) is not None
