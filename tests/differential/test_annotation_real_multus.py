"""Differential test: our reading of the networks annotation (webhook.multus.selection) against the real
Multus v4.3.0 parser (k8sclient.GetPodNetwork, run by hack/multus/multus-delegates).

An annotation Multus cannot parse must have problems for us (the pod never starts); one it parses must
parse for us to the same elements (the fields Multus hands on: name, namespace, interface, ips, mac,
cni-args, portMappings, bandwidth), unless we refuse it for a reason Multus only meets later, named
in the case. Needs Go to build the tool (no apiserver: only the parser runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from webhook.multus.selection import NetworkSelection, parse_networks

pytestmark = pytest.mark.slow

def as_multus_element(selection: NetworkSelection) -> dict[str, Any]:
    """Our selection in the terms of Multus's NetworkSelectionElement as it encodes it (omitempty)."""
    element: dict[str, Any] = {"name": selection.name, "namespace": selection.namespace}
    if selection.interface:
        element["interface"] = selection.interface
    if selection.ips:
        element["ips"] = list(selection.ips)
    if selection.mac:
        element["mac"] = selection.mac
    if selection.port_mappings:
        element["portMappings"] = [
            None if p is None else
            {"hostPort": p.host_port, "containerPort": p.container_port,
             **({"protocol": p.protocol} if p.protocol else {}), **({"hostIP": p.host_ip} if p.host_ip else {})}
            for p in selection.port_mappings]
    if selection.bandwidth is not None:
        b = selection.bandwidth
        element["bandwidth"] = {k: v for k, v in (("ingressRate", b.ingress_rate), ("ingressBurst", b.ingress_burst),
                                                  ("egressRate", b.egress_rate), ("egressBurst", b.egress_burst)) if v}
    element["cni-args"] = selection.cni_args
    return element


def multus_fields(element: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "namespace", "interface", "ips", "mac", "portMappings", "bandwidth", "cni-args")
    found = {k: element[k] for k in keep if k in element}
    if "bandwidth" in found:
        found["bandwidth"] = {k: v for k, v in found["bandwidth"].items() if v}
    return found


@dataclass(frozen=True)
class Case:
    id: str
    annotation: str
    #: We refuse what Multus parses, for a reason Multus meets after parsing: this text is in our problem.
    refused_later: str | None = None


CASES = [
    Case("name-then-null", '[{"name":"net1","name":null}]'),
    Case("name-then-other-spelling-null", '[{"name":"net1","Name":null}]'),
    Case("null-name", '[{"name":null}]', refused_later="is empty"),
    Case("mac-then-null", '[{"name":"net1","mac":"02:00:00:00:00:01","mac":null}]'),
    Case("interface-then-null", '[{"name":"net1","interface":"net5","interface":null}]'),
    Case("ips-then-null", '[{"name":"net1","ips":["10.0.0.5"],"ips":null}]'),
    Case("host-port-then-null",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080,"hostPort":null}]}]'),
    Case("host-port-1e400", '[{"name":"net1","portMappings":[{"hostPort":1e400,"containerPort":80}]}]'),
    Case("host-port-1e3", '[{"name":"net1","portMappings":[{"hostPort":1e3,"containerPort":80}]}]'),
    Case("host-port-fraction", '[{"name":"net1","portMappings":[{"hostPort":1.5,"containerPort":80}]}]'),
    Case("bandwidth-1e400", '[{"name":"net1","bandwidth":{"ingressRate":1e400}}]'),
    Case("cni-args-1e400", '[{"name":"net1","cni-args":{"x":1e400}}]'),
    Case("cni-args-1e308", '[{"name":"net1","cni-args":{"x":1e308}}]'),
    Case("cni-args-repeated", '[{"name":"net1","cni-args":{"a":{"x":1}},"cni-args":{"a":{"y":2},"b":3}}]'),
    Case("port-mappings-repeated",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080,"protocol":"udp"}],'
         '"portMappings":[{"hostPort":81}]}]'),
    Case("port-mappings-other-spelling-longer",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080}],'
         '"PortMappings":[{"hostPort":81},{"hostPort":82}]}]'),
    Case("port-mappings-three-lists",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080},{"hostPort":90,"containerPort":9090}],'
         '"portMappings":[{"hostPort":81}],"portMappings":[{"hostPort":82},{"hostPort":83}]}]'),
    Case("port-mappings-null-entry-then-object",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080}],"portMappings":[null],'
         '"portMappings":[{"hostPort":81}]}]'),
    Case("port-mappings-empty-then-object",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080}],"portMappings":[],'
         '"portMappings":[{"hostPort":81}]}]'),
    Case("port-mappings-then-null", '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080}],'
                                    '"portMappings":null}]'),
    Case("port-mappings-mistyped-then-list",
         '[{"name":"net1","portMappings":[{"hostPort":80}],"portMappings":"x","portMappings":[{"hostPort":81}]}]'),
    Case("port-mappings-mistyped-field-merged",
         '[{"name":"net1","portMappings":[{"hostPort":"x"}],"portMappings":[{"containerPort":1}]}]'),
    # Multus keeps a nil entry and passes it on as null: only a plugin with the portMappings capability gets
    # it, which is pod-networks-port-mappings's to judge against the NAD (see test_nad_real_plugins.py).
    Case("port-mappings-null-entry", '[{"name":"net1","portMappings":[null]}]'),
    Case("port-mappings-null-between-entries",
         '[{"name":"net1","portMappings":[{"hostPort":80,"containerPort":8080},null,{"hostPort":81}]}]'),
    Case("bandwidth-repeated", '[{"name":"net1","bandwidth":{"ingressRate":1,"ingressBurst":2},'
                               '"bandwidth":{"egressRate":3}}]'),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_annotation_reads_as_the_real_multus_parser_reads_it(
    case: Case, real_multus_parser: Callable[[str], dict[str, Any]]
) -> None:
    real = real_multus_parser(case.annotation)
    ours = parse_networks(case.annotation, "default")
    if "error" in real:
        assert real["stage"] == "parse", real
        assert not ours.ok, f"Multus fails ({real['error']}) but we admit it"
        return
    if case.refused_later is not None:
        assert not ours.ok, "we admit what the case says we refuse"
        assert any(case.refused_later in p.message for p in ours.problems), ours.problems
        return
    assert ours.ok, f"Multus parses it to {real['networks']} but we refuse it: {ours.problems}"
    assert [multus_fields(as_multus_element(s)) for s in ours.selections] == \
        [multus_fields(e) for e in real["networks"]]
