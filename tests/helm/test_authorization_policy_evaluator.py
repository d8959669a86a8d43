"""The AuthorizationPolicy evaluator (tooling.chart.authorization_policy) against the
documented Istio semantics, on small hand-written policies.

istio.io/latest/docs/reference/config/security/authorization-policy/ and
istio.io/latest/docs/concepts/security/#authorization is the source of each expectation.
"""

from __future__ import annotations

from typing import Any

import pytest

from mesh.chart import Object
from tooling.chart.authorization_policy import (
    ROOT_NAMESPACE,
    Request,
    allowed,
    applies,
    for_protocol,
    operation_matches,
    peer_namespace,
    rule_matches,
    source_matches,
    string_match,
)

NAMESPACE = "caixa"
LABELS = {"app": "x"}
CALLER = "cluster.local/ns/a/sa/x"
CALL = Request(principal=CALLER, path="/pkg.S/M")


def policy(spec: dict[str, Any], namespace: str = NAMESPACE) -> Object:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def allow(*rules: dict[str, Any], **spec: Any) -> Object:
    return policy({"action": "ALLOW", "rules": list(rules), **spec})


def deny(*rules: dict[str, Any], **spec: Any) -> Object:
    return policy({"action": "DENY", "rules": list(rules), **spec})


def source(**fields: list[str]) -> dict[str, Any]:
    return {"from": [{"source": fields}]}


def operation(**fields: list[str]) -> dict[str, Any]:
    return {"to": [{"operation": fields}]}


def admits(
    policies: list[Object], request: Request = CALL, root_namespace: str = ROOT_NAMESPACE
) -> bool:
    return allowed(policies, NAMESPACE, LABELS, request, root_namespace=root_namespace)


def test_evaluator_semantics() -> None:
    req = Request(principal="cluster.local/ns/a/sa/x", path="/pkg.S/M")
    labels = {"app": "x"}
    assert allowed([], NAMESPACE, labels, req)
    assert not allowed([policy({})], NAMESPACE, labels, req)  # ALLOW nothing
    assert allowed([policy({})], "elsewhere", labels, req)
    allow_prefix = {"rules": [{"to": [{"operation": {"paths": ["/pkg.S/*"]}}]}]}
    assert allowed([policy({}), policy(allow_prefix)], NAMESPACE, labels, req)
    deny = {"action": "DENY", "rules": [{"from": [{"source": {"principals": ["*/sa/x"]}}]}]}
    assert not allowed([policy(allow_prefix), policy(deny)], NAMESPACE, labels, req)
    other_selector = {**deny, "selector": {"matchLabels": {"app": "y"}}}
    assert allowed([policy(allow_prefix), policy(other_selector)], NAMESPACE, labels, req)
    # TCP: an ALLOW rule with an HTTP-only field never matches; a DENY rule matches wider.
    tcp = Request(principal="cluster.local/ns/a/sa/x", path="", protocol="tcp")
    assert not allowed([policy(allow_prefix)], NAMESPACE, labels, tcp)
    deny_path = {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/other"]}}]}]}
    assert allowed([policy(deny_path)], NAMESPACE, labels, req)
    assert not allowed([policy(deny_path)], NAMESPACE, labels, tcp)
    custom = {"action": "CUSTOM", "rules": [{}]}
    assert allowed([policy(custom)], NAMESPACE, labels, req)
    with pytest.raises(NotImplementedError):
        allowed(
            [policy({"rules": [{"when": [{"key": "k", "values": ["v"]}]}]})], NAMESPACE, labels, req
        )


# --- The order of evaluation -------------------------------------------------------------


def test_no_allow_policy_allows() -> None:
    assert admits([])
    assert admits([deny(source(principals=["cluster.local/ns/b/sa/y"]))])
    assert admits([deny()])  # a DENY policy without rules denies nothing


def test_an_allow_policy_that_matches_nothing_denies() -> None:
    assert not admits([policy({})])
    assert not admits([allow()])
    assert not admits([allow(operation(paths=["/other"]))])
    # Another ALLOW policy of the workload is enough.
    assert admits([allow(operation(paths=["/other"])), allow(operation(paths=["/pkg.S/M"]))])
    assert admits([allow({})])  # an empty rule matches every request


def test_deny_is_evaluated_before_allow() -> None:
    allow_all = allow({})
    deny_caller = deny(source(principals=[CALLER]))
    assert admits([allow_all])
    assert not admits([allow_all, deny_caller])
    assert not admits([deny_caller, allow_all])
    # A DENY rule that does not match leaves the ALLOW decision alone.
    assert admits([allow_all, deny(source(principals=["cluster.local/ns/b/sa/y"]))])


# --- String matches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("/pkg.S/M", "/pkg.S/M", True),
        ("/pkg.S/M", "/pkg.S/MM", False),
        ("/pkg.S/M", "/pkg.s/m", False),
        ("/pkg.S/*", "/pkg.S/M", True),
        ("/pkg.S/*", "/pkg.S/", True),
        ("/pkg.S/*", "/pkg.T/M", False),
        ("*/sa/x", "cluster.local/ns/a/sa/x", True),
        ("*/sa/x", "cluster.local/ns/a/sa/y", False),
        ("*", "anything", True),
        ("*", "", False),
        ("", "", True),
    ],
)
def test_string_match(pattern: str, value: str, expected: bool) -> None:
    assert string_match(pattern, value) is expected


@pytest.mark.parametrize("pattern", ["/a/*/b", "*middle*", "**", "/a/{*}/b", "/a/{**}"])
def test_patterns_it_does_not_model_raise(pattern: str) -> None:
    with pytest.raises(NotImplementedError):
        string_match(pattern, "/a/x/b")
    with pytest.raises(NotImplementedError):
        admits([deny(operation(paths=[pattern]))])


# --- Sources -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "namespace"),
    [
        ("cluster.local/ns/a/sa/x", "a"),
        ("other.domain/ns/b/sa/y", "b"),
        ("", ""),  # plain text: no peer identity
        ("cluster.local/sa/x", ""),
        ("cluster.local/ns/a/sa/x/extra", ""),
    ],
)
def test_the_source_namespace_comes_from_the_principal(principal: str, namespace: str) -> None:
    assert peer_namespace(principal) == namespace


def test_principals_and_not_principals() -> None:
    assert source_matches({"principals": [CALLER]}, CALL)
    assert source_matches({"principals": ["cluster.local/ns/b/sa/y", CALLER]}, CALL)
    assert not source_matches({"principals": ["cluster.local/ns/b/sa/y"]}, CALL)
    assert not source_matches({"notPrincipals": [CALLER]}, CALL)
    assert source_matches({"notPrincipals": ["cluster.local/ns/b/sa/y"]}, CALL)
    # Both: in the first list and not in the second.
    both = {"principals": ["cluster.local/ns/a/*"], "notPrincipals": ["*/sa/x"]}
    assert not source_matches(both, CALL)
    assert source_matches(both, Request("cluster.local/ns/a/sa/z", "/"))
    # `*` needs an identity: plain text has none.
    assert source_matches({"principals": ["*"]}, CALL)
    assert not source_matches({"principals": ["*"]}, Request("", "/"))


def test_namespaces_and_not_namespaces() -> None:
    assert source_matches({"namespaces": ["a"]}, CALL)
    assert not source_matches({"namespaces": ["b"]}, CALL)
    assert not source_matches({"notNamespaces": ["a"]}, CALL)
    assert not source_matches({"namespaces": ["a"]}, Request("", "/"))
    net = [allow(source(namespaces=["a"]))]
    assert admits(net)
    assert not admits(net, Request("cluster.local/ns/b/sa/x", "/pkg.S/M"))


def test_request_principals() -> None:
    token = Request(CALLER, "/pkg.S/M", request_principal="https://issuer/user-1")
    assert source_matches({"requestPrincipals": ["*"]}, token)
    assert not source_matches({"requestPrincipals": ["*"]}, CALL)
    assert source_matches({"requestPrincipals": ["https://issuer/*"]}, token)
    assert not source_matches({"requestPrincipals": ["https://other/*"]}, token)
    # The usual "require a JWT": deny requests without any request principal.
    require_jwt = [deny(source(notRequestPrincipals=["*"]))]
    assert not admits(require_jwt)
    assert admits(require_jwt, token)


def test_fields_of_a_source_are_anded_and_sources_ored() -> None:
    anded = {"principals": [CALLER], "namespaces": ["b"]}
    assert not source_matches(anded, CALL)
    ored = {"from": [{"source": {"principals": ["nobody"]}}, {"source": {"namespaces": ["a"]}}]}
    assert rule_matches(ored, CALL)
    assert not rule_matches({"from": [{"source": anded}]}, CALL)


def test_an_empty_list_is_no_constraint() -> None:
    # proto3 cannot tell an empty list from none: Istio treats both as unset.
    assert source_matches({"principals": []}, CALL)
    assert operation_matches({"paths": [], "notPaths": []}, CALL)
    assert rule_matches({"from": [], "to": []}, CALL)


# --- Operations --------------------------------------------------------------------------


def test_paths_and_not_paths() -> None:
    assert operation_matches({"paths": ["/pkg.S/*"]}, CALL)
    assert not operation_matches({"paths": ["/pkg.T/*"]}, CALL)
    assert not operation_matches({"notPaths": ["/pkg.S/M"]}, CALL)
    assert operation_matches({"notPaths": ["/pkg.S/N"]}, CALL)
    assert not operation_matches({"paths": ["/pkg.S/*"], "notPaths": ["*/M"]}, CALL)


def test_methods_ports_and_hosts() -> None:
    get = Request(CALLER, "/metrics", method="GET", port=9464, host="Caixa.Example.com:443")
    assert operation_matches({"methods": ["GET"], "ports": ["9464"]}, get)
    assert not operation_matches({"methods": ["POST"]}, get)
    assert not operation_matches({"notMethods": ["GET"]}, get)
    assert not operation_matches({"ports": ["50051"]}, get)
    assert not operation_matches({"notPorts": ["9464"]}, get)
    # Hosts match case-insensitively, port and all.
    assert operation_matches({"hosts": ["caixa.example.com:*"]}, get)
    assert not operation_matches({"hosts": ["caixa.example.com"]}, get)
    assert not operation_matches({"notHosts": ["CAIXA.EXAMPLE.COM:443"]}, get)
    assert operation_matches({"hosts": ["*.example.com:443"]}, get)


def test_sources_and_operations_of_a_rule_are_anded_and_rules_ored() -> None:
    rule = {**source(principals=[CALLER]), **operation(paths=["/pkg.S/N"])}
    assert not rule_matches(rule, CALL)
    either = [{"operation": {"paths": ["/pkg.S/N"]}}, {"operation": {"paths": ["/pkg.S/M"]}}]
    assert rule_matches({**rule, "to": either}, CALL)
    assert not rule_matches({**source(principals=["nobody"]), "to": either}, CALL)
    assert admits([allow(rule, operation(paths=["/pkg.S/M"]))])
    assert not admits([allow(rule)])


# --- Which policies apply ----------------------------------------------------------------


def test_the_selector_scopes_a_policy_to_workloads() -> None:
    labels = {"app": "x", "version": "v1"}
    assert applies(policy({}), NAMESPACE, labels)
    assert applies(policy({"selector": {"matchLabels": {"app": "x"}}}), NAMESPACE, labels)
    assert applies(policy({"selector": {"matchLabels": {}}}), NAMESPACE, labels)
    both = {"selector": {"matchLabels": {"app": "x", "version": "v2"}}}
    assert not applies(policy(both), NAMESPACE, labels)
    assert not applies(policy({}, namespace="other"), NAMESPACE, labels)
    # A policy for another workload leaves this one open.
    assert admits([allow(selector={"matchLabels": {"app": "y"}})])


def test_root_namespace_policies_apply_to_every_namespace() -> None:
    mesh_wide = policy({}, namespace="istio-system")
    assert applies(mesh_wide, NAMESPACE, LABELS)
    assert applies(mesh_wide, "anywhere", {})
    assert not admits([mesh_wide])
    selected = policy({"selector": {"matchLabels": {"app": "x"}}}, namespace="istio-system")
    assert applies(selected, "anywhere", LABELS)
    assert not applies(selected, "anywhere", {"app": "y"})
    # Another root namespace: istio-system is then an ordinary namespace.
    assert not applies(mesh_wide, NAMESPACE, LABELS, root_namespace="mesh-root")
    assert admits([mesh_wide], root_namespace="mesh-root")
    assert not admits([policy({}, namespace="mesh-root")], root_namespace="mesh-root")


def test_target_refs_are_not_modelled() -> None:
    ref = {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g"}
    for field in ({"targetRef": ref}, {"targetRefs": [ref]}):
        with pytest.raises(NotImplementedError):
            applies(policy(field), NAMESPACE, LABELS)


# --- TCP traffic ------------------------------------------------------------------------


TCP = Request(CALLER, "", port=5432, protocol="tcp")


@pytest.mark.parametrize(
    "http_only",
    [
        operation(paths=["/pkg.S/M"]),
        operation(notPaths=["/x"]),
        operation(methods=["POST"]),
        operation(notMethods=["GET"]),
        operation(hosts=["db"]),
        operation(notHosts=["db"]),
        source(requestPrincipals=["*"]),
        source(notRequestPrincipals=["*"]),
    ],
)
def test_on_tcp_http_only_fields_drop_allow_rules_and_widen_deny_rules(
    http_only: dict[str, Any],
) -> None:
    assert for_protocol([http_only], "ALLOW", "tcp") == []
    assert for_protocol([http_only], "ALLOW", "http") == [http_only]
    # The ALLOW policy is still there: with its rule dropped it allows nothing.
    assert not admits([allow(http_only)], TCP)
    widened = for_protocol([http_only], "DENY", "tcp")
    assert len(widened) == 1 and rule_matches(widened[0], TCP)
    assert not admits([deny(http_only)], TCP)


def test_on_tcp_the_other_fields_still_count() -> None:
    port_only = allow(operation(ports=["5432"]))
    assert admits([port_only], TCP)
    assert not admits([port_only], Request(CALLER, "", port=5433, protocol="tcp"))
    by_principal = allow(source(principals=[CALLER]))
    assert admits([by_principal], TCP)
    assert not admits([by_principal], Request("", "", port=5432, protocol="tcp"))
    # A DENY rule keeps what is not HTTP-only: another principal is not denied.
    mixed = deny({**source(principals=["nobody"]), **operation(paths=["/x"])})
    assert admits([mixed], TCP)
    assert for_protocol(
        [{**source(principals=["nobody"]), **operation(paths=["/x"])}], "DENY", "tcp"
    ) == [{"from": [{"source": {"principals": ["nobody"]}}], "to": [{"operation": {}}]}]


# --- What it refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"action": "AUDIT", "rules": [{}]}, NotImplementedError),
        ({"action": "REJECT"}, ValueError),
        (
            {"rules": [{"when": [{"key": "request.headers[x]", "values": ["y"]}]}]},
            NotImplementedError,
        ),
        ({"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}, NotImplementedError),
        (
            {"rules": [{"from": [{"source": {"remoteIpBlocks": ["10.0.0.0/8"]}}]}]},
            NotImplementedError,
        ),
        ({"rules": [{"from": [{"source": {"serviceAccounts": ["a/x"]}}]}]}, NotImplementedError),
        ({"rules": [{"to": [{"operation": {"headers": {}}}]}]}, NotImplementedError),
        ({"rules": [{"to": [{"operation": {"ports": ["*"]}}]}]}, ValueError),
        ({"rules": [{"to": [{"operation": {"paths": ["/a/{*}"]}}]}]}, NotImplementedError),
        ({"rules": [{"from": [{"principal": {}}]}]}, NotImplementedError),
        ({"rules": [{"fro": []}]}, NotImplementedError),
        ({"selector": {"matchExpressions": []}}, NotImplementedError),
        ({"targetRef": {"kind": "Service", "name": "s"}}, NotImplementedError),
        ({"priority": 1}, NotImplementedError),
    ],
)
def test_what_it_does_not_model_fails_loudly(spec: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        admits([policy(spec)])
    # Even in a policy that does not apply to the workload asked about.
    with pytest.raises(error):
        admits([policy(spec, namespace="other")])


def test_it_refuses_what_it_cannot_place() -> None:
    with pytest.raises(ValueError):
        admits([{"metadata": {"name": "p"}, "spec": {}}])  # no namespace
    with pytest.raises(ValueError):
        admits([{"kind": "PeerAuthentication", "metadata": {"namespace": NAMESPACE}}])
    with pytest.raises(ValueError):
        admits([], Request(CALLER, "/", protocol="udp"))
