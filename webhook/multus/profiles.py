"""Merging a NetworkProfile's networks into a pod's ``k8s.v1.cni.cncf.io/networks`` annotation.

Pure: the /mutate handler decides when to call it and turns a changed value into a patch. The merge
adds, never edits: the pod's own elements stay as written, character for character, and a profile
element the pod already has (same namespace, name and interface, namespaces resolved against the
pod's) is not added again. The lists count as multisets, as Multus reads them: a profile naming one
network twice (two SR-IOV VFs from one NAD) gives the pod two attachments, and a pod that has one of
them gets the other. A profile element that would take an interface name the pod's own elements use
is an error naming both, since two attachments with one name make the second CNI ADD fail; so is a
profile element that would give the pod a second default-route gateway of one IP family (its own
annotations' and the profile's together), which Multus refuses. The result is idempotent, which the
apiserver's ``reinvocationPolicy: IfNeeded`` requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.multus.selection import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    RESERVED_INTERFACES,
    Gateway,
    NetworkSelection,
    ParsedNetworks,
    Where,
    checks_default_routes,
    default_route_gateways,
    dump_json_form,
    excess_default_routes,
    excess_default_routes_message,
    fits_text_form,
    interface_names,
    parse_default_network,
    parse_elements,
    parse_networks,
    to_json_element,
    to_text_item,
)

_TEXT_KEYS = frozenset({"name", "namespace", "interface"})


class ProfileMergeError(ValueError):
    """The profile cannot be merged; ``field`` is the path of the offending element."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ProfileMerge:
    """The outcome of merging a NetworkProfile object into one annotation value: what
    merge_profile_networks returned, or the ProfileMergeError it raised."""

    merged: str | None
    error: ProfileMergeError | None = None
    #: What the merge left out that the pod's author may have wanted (see merge_profile_networks).
    notes: tuple[str, ...] = ()


def merge_profile(existing: str | None, profile: Mapping[str, Any], pod_namespace: str,
                  profile_name: str, first_index: int = 1, default_network: str | None = None) -> ProfileMerge:
    """merge_profile_networks of a NetworkProfile object's spec.networks, as a value (to be cached)."""
    spec = profile.get("spec")
    notes: list[str] = []
    try:
        merged = merge_profile_networks(existing, spec.get("networks") if isinstance(spec, Mapping) else None,
                                        pod_namespace, profile_name=profile_name, first_index=first_index,
                                        notes=notes, default_network=default_network)
    except ProfileMergeError as exc:
        return ProfileMerge(None, exc)
    return ProfileMerge(merged, notes=tuple(notes))


def merge_profile_networks(
    existing: str | None,
    profile_networks: Any,
    pod_namespace: str,
    *,
    profile_name: str = "",
    first_index: int = 1,
    notes: list[str] | None = None,
    default_network: str | None = None,
) -> str | None:
    """The pod's new ``networks`` annotation value after adding ``profile_networks`` (a
    NetworkProfile's ``spec.networks``: a list of JSON-form selection elements).

    Returns ``existing`` itself (byte-identical, None included) when nothing needs adding, so that the
    mutation produces no patch. Raises ProfileMergeError when the pod's value cannot be parsed (it is
    never dropped or rewritten), when the profile's elements are invalid, on an interface clash, or when
    the merged pod would have more than one default-route gateway of an IP family (counting the pod's
    ``default_network`` annotation value, None when absent) that the pod without the profile has not.
    ``first_index`` is as for ``interface_names``. A profile element the pod already has but with other
    options (ips, mac, ...) is not added, the pod's own being kept as written; ``notes`` gets a line
    saying which options were not applied."""
    profile_label = (
        f"NetworkProfile {profile_name} spec.networks"
        if profile_name
        else "the network profile's spec.networks"
    )
    user = parse_networks(existing, pod_namespace) if existing is not None else None
    if user is not None and not user.ok:
        problem = user.problems[0]
        raise ProfileMergeError(
            problem.field,
            f"{problem.message}. The pod's {NETWORKS_ANNOTATION} annotation cannot be read, so "
            f"{profile_label} was not applied and the annotation was left as written",
        )
    profile = parse_elements(profile_networks, pod_namespace, Where("spec.networks", profile_label))
    if not profile.ok:
        problem = profile.problems[0]
        raise ProfileMergeError(problem.field, f"{problem.message}; the profile was not applied")

    own = user.selections if user is not None else ()
    # The pod's elements not yet matched to a profile element, by key, first written first.
    unmatched: dict[Any, list[int]] = {}
    for j, s in enumerate(own):
        unmatched.setdefault(s.key, []).append(j)
    added: list[tuple[int, NetworkSelection]] = []
    for i, selection in enumerate(profile.selections):
        if not unmatched.get(selection.key):
            added.append((i, selection))
            continue
        j = unmatched[selection.key].pop(0)
        if notes is not None:
            options = _other_options(selection, own[j])
            if options:
                notes.append(f"{profile_label}[{i}] ({selection.describe()}) is the pod's own element "
                             f"{NETWORKS_ANNOTATION}[{j}], which is kept as written: what the profile sets for "
                             f"{', '.join(options)} is not applied")
    if not added:
        return existing

    merged = [*own, *(s for _, s in added)]
    _check_interfaces(merged, own, added, profile_label, first_index)
    _check_default_routes(default_network, user, profile, added, profile_label)
    # The pod's own form is kept: the short form only when the pod wrote it (or nothing) and every
    # element fits it.
    if (user is None or user.form != "json") and all(fits_text_form(s) for s in merged):
        new = ",".join(to_text_item(s) for _, s in added)
        return f"{existing},{new}" if existing is not None and existing.strip() else new
    kept: list[Any] = (
        list(user.raw) if user is not None and user.form == "json" else [to_json_element(s) for s in own]
    )
    return dump_json_form(kept + [to_json_element(s) for _, s in added])


def _other_options(profile: NetworkSelection, own: NetworkSelection) -> list[str]:
    """The options (JSON-form keys besides the attachment's identity) ``profile`` sets otherwise than
    ``own``."""
    a, b = to_json_element(profile), to_json_element(own)
    return sorted(k for k in a.keys() - _TEXT_KEYS if a[k] != b.get(k))


def _check_interfaces(
    merged: list[NetworkSelection],
    own: tuple[NetworkSelection, ...],
    added: list[tuple[int, NetworkSelection]],
    profile_label: str,
    first_index: int,
) -> None:
    names = interface_names(merged, first_index)
    owners: dict[str, str] = {}
    for j, (selection, ifname) in enumerate(zip(own, names, strict=False)):
        owners.setdefault(
            ifname, f"the pod's own element {NETWORKS_ANNOTATION}[{j}] ({selection.describe()})"
        )
    for k, (i, selection) in enumerate(added):
        ifname = names[len(own) + k]
        how = "requests interface" if selection.interface else "would be given interface (by its position)"
        what = f"{profile_label}[{i}] ({selection.describe()}) {how} {ifname}"
        if ifname in RESERVED_INTERFACES:
            raise ProfileMergeError(
                f"spec.networks[{i}].interface",
                f"{what}, which every pod already has: set another interface name in the profile",
            )
        if ifname in owners:
            raise ProfileMergeError(
                f"spec.networks[{i}].interface",
                f"{what}, which {owners[ifname]} already uses: give one of them another interface name",
            )
        owners[ifname] = f"{profile_label}[{i}] ({selection.describe()})"


def _check_default_routes(
    default_network: str | None,
    user: ParsedNetworks | None,
    profile: ParsedNetworks,
    added: list[tuple[int, NetworkSelection]],
    profile_label: str,
) -> None:
    """Refuses the merge when the merged pod has more than one default-route gateway of an IP family
    that Multus counts, and the pod without the profile is not refused for that family already (its
    own annotations, which pod-networks-default-route reports, are not the profile's doing)."""
    own: list[Gateway] = []
    if default_network is not None:
        parsed = parse_default_network(default_network)
        if parsed.ok:  # else its syntax rule refuses the pod
            own += default_route_gateways(parsed)
    if user is not None:
        own += default_route_gateways(user)
    # Without the profile Multus may count none of them (no networks annotation, or ""); with it, it does.
    before = excess_default_routes(own) if checks_default_routes(user) else {}
    profile_gateways = default_route_gateways(profile, (i for i, _ in added))
    for family, found in excess_default_routes(own + profile_gateways).items():
        if family in before:
            continue
        from_profile = [g for g in found if g in profile_gateways]
        if from_profile:
            field = from_profile[-1].where.field
            how = (f"{profile_label} adds " + ("all of them" if len(from_profile) == len(found)
                                               else f"{len(from_profile)} of them"))
            where = "in the pod's annotations or in the profile"
        else:
            # The pod's default network alone has them; Multus counts them once the pod has networks.
            field = found[-1].where.field
            how = (f"Multus counts these only in a pod with a {NETWORKS_ANNOTATION} annotation, which "
                   f"{profile_label} would give it")
            where = f"in the pod's {DEFAULT_NETWORK_ANNOTATION} annotation"
        raise ProfileMergeError(
            field,
            f"{excess_default_routes_message(family, found)}: {how}, so the profile was not applied and the pod "
            f"would never start with it: keep one IPv{family} default-route {where}",
        )
