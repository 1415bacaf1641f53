"""The pod selection-annotation rules: what each allows and refuses, through the real engine."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.multus.selection import DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, DefaultNetworks
from webhook.rules import Finding, Policy, Severity, Subject, evaluate, registered
from webhook.rules.pod_cluster import _BACKEND_PROTOCOLS

NET = f'metadata.annotations["{NETWORKS_ANNOTATION}"]'
DEF = f'metadata.annotations["{DEFAULT_NETWORK_ANNOTATION}"]'
POD_RULES = {
    "pod-networks-syntax": Severity.DENY,
    "pod-networks-empty": Severity.WARN,
    "pod-networks-field-names": Severity.WARN,
    "pod-networks-interface-names": Severity.DENY,
    "pod-networks-default-route": Severity.DENY,
    "pod-default-network-syntax": Severity.DENY,
    "pod-networks-changed-after-start": Severity.WARN,
}


def pod(annotations: dict[str, Any] | None = None, node: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if node:
        obj["spec"]["nodeName"] = node
    return obj


def findings(obj: dict[str, Any], **subject: Any) -> list[Finding]:
    return [f for f in evaluate(Subject(obj, "Pod", **subject), Policy()) if f.rule in POD_RULES]


def only(obj: dict[str, Any], **subject: Any) -> Finding:
    found = findings(obj, **subject)
    assert len(found) == 1, found
    return found[0]


def test_rules_are_registered_with_their_severities() -> None:
    rules = registered()
    for rule_id, severity in POD_RULES.items():
        assert rules[rule_id].severity is severity
        assert rules[rule_id].kinds == frozenset({"Pod"})
        assert rules[rule_id].doc


@pytest.mark.parametrize(
    "annotations",
    [
        None,
        {},
        {NETWORKS_ANNOTATION: "a"},
        {NETWORKS_ANNOTATION: "other/a@data0, b, c"},
        {
            NETWORKS_ANNOTATION: '[{"name": "a", "ips": ["10.0.0.5/24"], "mac": "02:00:00:00:00:01"}, '
            '{"name": "b"}]'
        },
        {DEFAULT_NETWORK_ANNOTATION: "primary"},
        {DEFAULT_NETWORK_ANNOTATION: '[{"name": "primary", "namespace": "net"}]', NETWORKS_ANNOTATION: "a"},
    ],
)
def test_good_pods_are_allowed(annotations: dict[str, Any] | None) -> None:
    assert findings(pod(annotations)) == []


# --- pod-networks-syntax ---


@pytest.mark.parametrize(
    ("value", "field", "text"),
    [
        ("a/b/c", f"{NET}[0]", 'more than one "/"'),
        ("a,b@x@y", f"{NET}[1]", 'more than one "@"'),
        ("My_Net", f"{NET}[0].name", "is not valid in the short form"),
        ("a,", f"{NET}[1]", 'remove the extra ","'),
        ("a@averyverylongname", f"{NET}[0].interface", "at most 15"),
        ('[{"name": "a"', NET, "not valid JSON"),
        ('[{"name": "a", "mac": "nope"}]', f"{NET}[0].mac", "write six hex pairs"),
        ('[{"name": "a", "ips": ["10.0.0.300"]}]', f"{NET}[0].ips[0]", "write one like 10.1.2.3"),
        (
            '[{"name": "a", "portMappings": [{"hostPort": "80"}]}]',
            f"{NET}[0].portMappings[0].hostPort",
            "integer",
        ),
    ],
)
def test_networks_syntax_denies(value: str, field: str, text: str) -> None:
    f = only(pod({NETWORKS_ANNOTATION: value}))
    assert (f.rule, f.severity, f.field) == ("pod-networks-syntax", Severity.DENY, field)
    assert f.message.startswith(NETWORKS_ANNOTATION)
    assert text in f.message


def test_networks_syntax_denies_a_non_string_value() -> None:
    f = only(pod({NETWORKS_ANNOTATION: ["a"]}))
    assert (f.rule, f.field) == ("pod-networks-syntax", NET)
    assert "annotation values are strings: quote the value" in f.message


def test_fields_of_a_pod_template_carry_the_prefix() -> None:
    template = {"metadata": {"annotations": {NETWORKS_ANNOTATION: "a@x:y"}}, "spec": {}}
    f = only(template, field_prefix="spec.template.")
    assert f.field == f"spec.template.{NET}[0].interface"


# --- pod-networks-default-route ---

# Go answers from multus-cni v4.3.0 (parsePodNetworkAnnotation, LoadDelegateNetConf, then
# CheckGatewayConfig over the default network's and the networks' delegates, as TryLoadPodDelegates
# does): "multus does not support ECMP for default-route" for each refused case.


@pytest.mark.parametrize(
    ("annotations", "field", "family"),
    [
        ({NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["10.0.0.1", "10.0.0.2"]}]'},
         f"{NET}[0].default-route[1]", "IPv4"),
        ({NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["10.0.0.1"]}, '
                               '{"name": "b", "default-route": ["10.0.0.2"]}]'},
         f"{NET}[1].default-route[0]", "IPv4"),
        ({DEFAULT_NETWORK_ANNOTATION: '[{"name": "d", "default-route": ["10.0.0.1"]}]',
          NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["10.0.0.2"]}]'},
         f"{NET}[0].default-route[0]", "IPv4"),
        ({NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["fd00::1"]}, '
                               '{"name": "b", "Default-Route": ["fd00::2"]}]'},
         f"{NET}[1].Default-Route[0]", "IPv6"),
        # An IPv4-mapped IPv6 address is IPv4 to Go's To4.
        ({NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["::ffff:10.0.0.1", "10.0.0.2"]}]'},
         f"{NET}[0].default-route[1]", "IPv4"),
    ],
)
def test_more_than_one_default_route_per_family_is_denied(
    annotations: dict[str, Any], field: str, family: str
) -> None:
    found = [f for f in findings(pod(annotations)) if f.rule == "pod-networks-default-route"]
    assert len(found) == 1, found
    f = found[0]
    assert (f.severity, f.field) == (Severity.DENY, field)
    assert f"2 {family} default-route gateways" in f.message
    assert "at most one default-route gateway per IP family across all of a pod's attachments" in f.message
    assert "never start" in f.message
    # Every gateway of the family is named.
    assert f.message.count(".default-route[") + f.message.count(".Default-Route[") == 2


@pytest.mark.parametrize(
    "annotations",
    [
        {NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["10.0.0.1", "fd00::1"]}]'},
        {NETWORKS_ANNOTATION: '[{"name": "a", "default-route": []}, {"name": "b", "default-route": ["10.0.0.2"]}]'},
        {DEFAULT_NETWORK_ANNOTATION: '[{"name": "d", "default-route": ["10.0.0.1"]}]',
         NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["fd00::1"]}]'},
        # Go keeps only the last value of a repeated key.
        {NETWORKS_ANNOTATION: '[{"name": "a", "default-route": ["10.0.0.1"], "default-route": ["10.0.0.2"]}]'},
    ],
)
def test_one_default_route_per_family_is_allowed(annotations: dict[str, Any]) -> None:
    assert [f for f in findings(pod(annotations)) if f.severity is Severity.DENY] == []


TWO_GATEWAYS = '[{"name": "d", "default-route": ["10.0.0.1", "10.0.0.2"]}]'


@pytest.mark.parametrize("networks", [None, ""])
def test_default_network_gateways_alone_are_not_counted_without_networks(networks: str | None) -> None:
    # TryLoadPodDelegates runs CheckGatewayConfig only when GetPodNetwork gives a non-nil list, which it
    # does not for an absent or "" networks annotation (the Go harness: DEF=<two gateways> NETS="" starts).
    annotations = {DEFAULT_NETWORK_ANNOTATION: TWO_GATEWAYS}
    if networks is not None:
        annotations[NETWORKS_ANNOTATION] = networks
    assert [f for f in findings(pod(annotations)) if f.rule == "pod-networks-default-route"] == []


@pytest.mark.parametrize("networks", ["[]", "a"])
def test_default_network_gateways_are_counted_once_networks_are_present(networks: str) -> None:
    # NETS="[]" is a non-nil empty list in Go, and "a" a list of one: both fail with the ECMP error.
    found = [f for f in findings(pod({DEFAULT_NETWORK_ANNOTATION: TWO_GATEWAYS, NETWORKS_ANNOTATION: networks}))
             if f.rule == "pod-networks-default-route"]
    assert [f.field for f in found] == [f"{DEF}[0].default-route[1]"]


# --- pod-networks-empty ---


@pytest.mark.parametrize("value", ["", "[]"])
def test_empty_networks_warns(value: str) -> None:
    f = only(pod({NETWORKS_ANNOTATION: value}))
    assert (f.rule, f.severity, f.field) == ("pod-networks-empty", Severity.WARN, NET)
    assert "attaches no extra network" in f.message
    assert "or remove the annotation" in f.message


# --- pod-networks-field-names ---


def test_unknown_and_miscased_keys_warn() -> None:
    value = '[{"name": "a", "ip": ["10.0.0.1"], "Interface": "data0"}]'
    found = findings(pod({NETWORKS_ANNOTATION: value}))
    assert [(f.rule, f.severity, f.field) for f in found] == [
        ("pod-networks-field-names", Severity.WARN, f"{NET}[0].ip"),
        ("pod-networks-field-names", Severity.WARN, f"{NET}[0].Interface"),
    ]
    assert "is not a field Multus reads, so it is ignored: remove it or use one of" in found[0].message
    assert 'spell it "interface"' in found[1].message


def test_legacy_interface_request_warns() -> None:
    f = only(pod({NETWORKS_ANNOTATION: '[{"name": "a", "interfaceRequest": "data0"}]'}))
    assert (f.rule, f.field) == ("pod-networks-field-names", f"{NET}[0].interfaceRequest")
    assert 'rename the key to "interface"' in f.message


def test_field_names_also_checks_the_default_network() -> None:
    f = only(pod({DEFAULT_NETWORK_ANNOTATION: '[{"name": "p", "namespce": "x"}]'}))
    assert (f.rule, f.field) == ("pod-networks-field-names", f"{DEF}[0].namespce")


# --- pod-networks-interface-names ---


@pytest.mark.parametrize("ifname", ["eth0", "lo"])
def test_reserved_interface_names_are_denied(ifname: str) -> None:
    f = only(pod({NETWORKS_ANNOTATION: f"a,b@{ifname}"}))
    assert (f.rule, f.severity, f.field) == (
        "pod-networks-interface-names",
        Severity.DENY,
        f"{NET}[1].interface",
    )
    assert f"requests interface {ifname}, which the pod already has" in f.message
    assert "choose another name" in f.message


def test_duplicate_explicit_interfaces_are_denied() -> None:
    f = only(pod({NETWORKS_ANNOTATION: "a@data0,b@data0"}))
    assert (f.rule, f.field) == ("pod-networks-interface-names", f"{NET}[1].interface")
    assert f"{NETWORKS_ANNOTATION}[1] (team/b@data0) requests interface data0" in f.message
    assert f"{NETWORKS_ANNOTATION}[0] (team/a@data0) also gets" in f.message
    assert "give each element its own interface" in f.message


def test_explicit_name_clashing_with_a_positional_name_is_denied() -> None:
    # a is delegate 1, so Multus names it net1; b asks for net1 too.
    f = only(pod({NETWORKS_ANNOTATION: "a,b@net1"}))
    assert f.field == f"{NET}[1].interface"
    assert f"{NETWORKS_ANNOTATION}[0] (team/a) also gets" in f.message
    # ...and the other way round: b, unnamed at position 1, is net2, which a asked for.
    f = only(pod({NETWORKS_ANNOTATION: '[{"name": "a", "interface": "net2"}, {"name": "b"}]'}))
    assert f.field == f"{NET}[1].interface"
    assert "gets interface (by its position) net2" in f.message


def test_same_network_twice_with_distinct_interfaces_is_allowed() -> None:
    assert findings(pod({NETWORKS_ANNOTATION: "a,a,a@net5"})) == []


# --- pod-default-network-syntax ---


@pytest.mark.parametrize(
    ("value", "field", "text"),
    [
        ("", DEF, "is empty, which Multus refuses"),
        ("a,b", DEF, "exactly one default network"),
        ("[]", DEF, "exactly one default network"),
        ("x/y/z", f"{DEF}[0]", 'more than one "/"'),
        ('[{"name": 1}]', f"{DEF}[0].name", "a string"),
        # Multus would give the primary network this interface instead of eth0: every sandbox fails.
        ("kube-system/ovn@data0", f"{DEF}[0].interface", "requests interface data0"),
        ('[{"name": "ovn", "interface": "net1"}]', f"{DEF}[0].interface", "expects as eth0"),
    ],
)
def test_default_network_syntax_denies(value: str, field: str, text: str) -> None:
    f = only(pod({DEFAULT_NETWORK_ANNOTATION: value}))
    assert (f.rule, f.severity, f.field) == ("pod-default-network-syntax", Severity.DENY, field)
    assert f.message.startswith(DEFAULT_NETWORK_ANNOTATION)
    assert text in f.message


def test_default_network_may_name_eth0_itself() -> None:
    assert findings(pod({DEFAULT_NETWORK_ANNOTATION: "kube-system/ovn@eth0"})) == []


def test_default_network_non_string() -> None:
    f = only(pod({DEFAULT_NETWORK_ANNOTATION: 3}))
    assert (f.rule, f.field) == ("pod-default-network-syntax", DEF)


# --- pod-networks-changed-after-start ---


def test_changing_networks_of_a_placed_pod_warns() -> None:
    old = pod({NETWORKS_ANNOTATION: "a"}, node="node-1")
    new = pod({NETWORKS_ANNOTATION: "a,b"}, node="node-1")
    f = only(new, operation="UPDATE", old_object=old)
    assert (f.rule, f.severity, f.field) == ("pod-networks-changed-after-start", Severity.WARN, NET)
    assert "already running on node node-1" in f.message
    assert "delete and recreate the pod" in f.message


def test_adding_or_removing_the_default_network_of_a_placed_pod_warns() -> None:
    old = pod({}, node="node-1")
    new = pod({DEFAULT_NETWORK_ANNOTATION: "p"}, node="node-1")
    assert only(new, operation="UPDATE", old_object=old).field == DEF
    assert only(old, operation="UPDATE", old_object=new).field == DEF


@pytest.mark.parametrize(
    ("old", "new", "operation"),
    [
        # Not yet placed: Multus has not read it yet.
        (pod({NETWORKS_ANNOTATION: "a"}), pod({NETWORKS_ANNOTATION: "a,b"}), "UPDATE"),
        # Unchanged annotation, other changes.
        (
            pod({NETWORKS_ANNOTATION: "a", "x": "1"}, node="n"),
            pod({NETWORKS_ANNOTATION: "a", "x": "2"}, node="n"),
            "UPDATE",
        ),
        (None, pod({NETWORKS_ANNOTATION: "a"}, node="n"), "CREATE"),
        # A null value (a manifest file can hold one) is no network, as an absent one.
        (pod({}, node="n"), pod({NETWORKS_ANNOTATION: None, DEFAULT_NETWORK_ANNOTATION: None}, node="n"), "UPDATE"),
        (pod({NETWORKS_ANNOTATION: None}, node="n"), pod(None, node="n"), "UPDATE"),
    ],
)
def test_changes_that_do_not_warn(old: dict[str, Any] | None, new: dict[str, Any], operation: str) -> None:
    assert findings(new, operation=operation, old_object=old) == []


def test_policy_can_turn_a_rule_off_and_audit_caps_it() -> None:
    obj = pod({NETWORKS_ANNOTATION: "a/b/c"})
    off = Policy(severities={"pod-networks-syntax": Severity.OFF})
    assert [f for f in evaluate(Subject(obj, "Pod"), off) if f.rule in POD_RULES] == []
    audit = [f for f in evaluate(Subject(obj, "Pod"), Policy(audit=True)) if f.rule in POD_RULES]
    assert [f.severity for f in audit] == [Severity.WARN]


def test_multus_default_networks_take_the_first_positional_names() -> None:
    """With defaultNetworks in Multus's config (and the policy), every pod outside its system namespaces
    gets them as net1..netK, and its own elements are numbered after them."""
    policy = Policy(default_networks=DefaultNetworks(("mgmt", "storage")))

    def judged(annotations: dict[str, Any], namespace: str = "team") -> list[Finding]:
        obj = pod(annotations)
        obj["metadata"]["namespace"] = namespace
        return [f for f in evaluate(Subject(obj, "Pod"), policy) if f.rule == "pod-networks-interface-names"]

    [f] = judged({NETWORKS_ANNOTATION: "a@net2"})
    assert f.field == f"{NET}[0].interface"
    assert "requests interface net2, which Multus gives default network storage (defaultNetworks" in f.message
    # a is net3 now, not net1: b asking for net1 meets the default network, c asking for net3 meets a.
    [f] = judged({NETWORKS_ANNOTATION: "a,c@net3"})
    assert f"{NETWORKS_ANNOTATION}[0] (team/a) also gets" in f.message
    assert judged({NETWORKS_ANNOTATION: "a,c@net1"})[0].message.endswith(
        "which Multus gives default network mgmt (defaultNetworks in its config and in the policy): the attachment "
        "would fail and the pod never start; choose another name")
    # Pods in Multus's systemNamespaces get no default networks.
    assert judged({NETWORKS_ANNOTATION: "a@net2"}, "kube-system") == []
    assert len(judged({NETWORKS_ANNOTATION: "a,c@net1"}, "kube-system")) == 1
    assert findings(pod({NETWORKS_ANNOTATION: "a@net2"})) == []  # without them in the policy


def test_a_profiles_networks_are_named_after_multus_default_networks() -> None:
    """The pods using a profile are in its namespace: [b@net2, a] is fine behind one default network
    (a is net3), [a, b, c@net3] is not (b is net3 too), and net1 is the default network's."""
    policy = Policy(default_networks=DefaultNetworks(("mgmt",)))

    def judged(networks: list[dict[str, str]]) -> list[str]:
        profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
                   "metadata": {"name": "p", "namespace": "team"}, "spec": {"networks": networks}}
        return [f.message for f in evaluate(Subject(profile, "NetworkProfile"), policy)
                if f.rule == "networkprofile-networks"]

    assert judged([{"name": "b", "interface": "net2"}, {"name": "a"}]) == []
    assert judged([{"name": "a"}, {"name": "b"}, {"name": "c", "interface": "net3"}]) == [
        "spec.networks gives interface 'net3' to 2 networks: each needs a name of its own (set 'interface')"]
    assert judged([{"name": "a", "interface": "net1"}]) == [
        "spec.networks uses interface 'net1', which Multus gives default network mgmt (defaultNetworks in its "
        "config and in the policy)"]


def profile_findings(networks: list[dict[str, Any]]) -> list[Finding]:
    profile = {"apiVersion": "multus-webhook.io/v1alpha1", "kind": "NetworkProfile",
               "metadata": {"name": "p", "namespace": "team"}, "spec": {"networks": networks}}
    return [f for f in evaluate(Subject(profile, "NetworkProfile"), Policy()) if f.rule == "networkprofile-networks"]


def test_a_profile_with_two_default_routes_of_one_family_is_denied() -> None:
    # Every pod using it gets both in its networks annotation, which Multus refuses (ECMP).
    [f] = profile_findings([{"name": "a", "default-route": ["10.0.0.2"]},
                            {"name": "b", "interface": "net9", "default-route": ["10.0.0.3"]}])
    assert (f.severity, f.field) == (Severity.DENY, "spec.networks[1].default-route[0]")
    assert "NetworkProfile p spec.networks[0].default-route[0] (10.0.0.2)" in f.message
    assert "2 IPv4 default-route gateways" in f.message
    assert "no pod using this profile would start" in f.message
    assert profile_findings([{"name": "a", "default-route": ["10.0.0.2"]},
                             {"name": "b", "interface": "net9", "default-route": ["fd00::1"]}]) == []


#: Protocols some portmap backend writes a rule for, and ones none does (pod-networks-port-mappings).
SOME_BACKEND_TAKES = ["tcp", "UDP", "Sctp", "dccp", "udplite", "6", "17", "132", "33"]
NO_BACKEND_TAKES = ["icmp", "", "UDPLITE", "tcp ", "1", "all"]


@pytest.mark.parametrize(("entry", "field", "text"), [
    ({"hostPort": 0, "containerPort": 80, "protocol": "tcp"}, "hostPort",
     'hostPort is 0 (or left out): portmap refuses a port number that is not above 0 and fails the ADD with '
     '"Invalid host port number: 0"'),
    ({"containerPort": 80, "protocol": "tcp"}, "hostPort", "hostPort is 0 (or left out)"),
    ({"hostPort": -1, "containerPort": 80, "protocol": "tcp"}, "hostPort", "hostPort is -1"),
    ({"hostPort": 8080, "containerPort": 0, "protocol": "tcp"}, "containerPort", "containerPort is 0 (or left out)"),
    ({"hostPort": 70000, "containerPort": 80, "protocol": "tcp"}, "hostPort", "hostPort is 70000, above 65535"),
    # A hostIP does not soften it: where the pod has no address of its family the entry maps nothing.
    ({"hostPort": 8080, "containerPort": 70000, "protocol": "tcp", "hostIP": "fd00::1"}, "containerPort",
     "containerPort is 70000, above 65535"),
    ({"hostPort": 8080, "containerPort": 80}, "protocol",
     "protocol is missing: portmap writes it as it is into the rule of its backend, and both its backends, "
     "iptables and nftables, refuse it"),
])
def test_without_cluster_state_a_profile_port_mapping_a_portmap_would_fail_is_warned_about(
        entry: dict[str, Any], field: str, text: str) -> None:
    """Not denied: whether it fails depends on the NAD (only a portmap that declares the portMappings
    capability gets it, and its backend only after an IPAM gave an address), which `multus-webhook check`
    without cluster state does not know. The warning names the field and says when it fails."""
    [f] = profile_findings([{"name": "a", "portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "tcp"},
                                                           entry]}])
    assert (f.severity, f.field) == (Severity.WARN, f"spec.networks[0].portMappings[1].{field}")
    assert f.message.startswith(f"spec.networks[0].portMappings[1].{text}"), f.message
    needs_address = field == "protocol" or "above 65535" in text  # what only portmap's backend refuses
    after = " after a plugin whose IPAM gives the pod an address" if needs_address else ""
    assert f.message.endswith("(if NAD team/a, which is not known here (no cluster state), has a portmap plugin that "
                              f'declares "capabilities": {{"portMappings": true}}{after}: it then fails the ADD of '
                              "every pod using this profile)"), f.message


@pytest.mark.parametrize("protocol", SOME_BACKEND_TAKES + NO_BACKEND_TAKES)
def test_without_cluster_state_a_profile_warns_of_the_protocols_no_portmap_backend_takes(protocol: str) -> None:
    """Only those: the profile does not know the NAD's backend, and what one of them takes may work."""
    found = profile_findings([{"name": "a", "portMappings": [{"hostPort": 80, "containerPort": 80,
                                                              "protocol": protocol}]}])
    assert [(f.severity, f.field) for f in found] == (
        [] if protocol in SOME_BACKEND_TAKES else [(Severity.WARN, "spec.networks[0].portMappings[0].protocol")])


def test_the_protocol_lists_agree_with_the_pod_rule() -> None:
    takes = {p for p in SOME_BACKEND_TAKES + NO_BACKEND_TAKES
             if p.lower() in _BACKEND_PROTOCOLS["iptables"] or p in _BACKEND_PROTOCOLS["nftables"]}
    assert takes == set(SOME_BACKEND_TAKES)
