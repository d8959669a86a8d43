"""The NetworkPolicy evaluator (tooling.chart.network_policy) against the documented
Kubernetes semantics, on small hand-written policies.

kubernetes.io/docs/concepts/services-networking/network-policies/ and the
networking.k8s.io/v1 API reference are the source of each expectation.
"""

from __future__ import annotations

from typing import Any

import pytest

from mesh.chart import Object
from tooling.chart.network_policy import (
    Endpoint,
    Network,
    peer_matches,
    policy_types,
    port_matches,
    selects,
)

NAMESPACE = "shop"
WEB = Endpoint("web", NAMESPACE, {"app": "web", "tier": "front"})
DB = Endpoint("db", NAMESPACE, {"app": "db", "tier": "back"})
CACHE = Endpoint("cache", NAMESPACE, {"app": "cache"})
# The same labels as WEB, in other namespaces.
MONITOR = Endpoint("monitor", "monitoring", {"app": "web"})
OUTSIDE = Endpoint("outside", "other", {"app": "web"})
INTERNET = Endpoint("internet", ip="8.8.8.8")


def policy(spec: dict[str, Any], namespace: str | None = None) -> Object:
    metadata: dict[str, Any] = {"name": "p"}
    if namespace:
        metadata["namespace"] = namespace
    return {"kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


def network(*specs: dict[str, Any]) -> Network:
    return Network([policy(s) for s in specs], namespace=NAMESPACE)


def only_into_db(peers: list[dict[str, Any]], **rule: Any) -> dict[str, Any]:
    """Ingress to db from `peers` only."""
    return {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": peers, **rule}],
    }


DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
APP_WEB = {"podSelector": {"matchLabels": {"app": "web"}}}
NS_MONITORING = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
}


def test_the_evaluator_follows_kubernetes_semantics() -> None:
    namespace = "caixa"
    web = Endpoint("web", namespace, {"app": "web"})
    db = Endpoint("db", namespace, {"app": "db"})
    outside = Endpoint("outside", "other", {"app": "web"})

    def net(*policies: Object) -> Network:
        return Network(policies, namespace=namespace)

    # No policy: everything flows.
    assert net().allows(web, db, 5432)
    deny = policy({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert not net(deny).allows(web, db, 5432)
    # Egress alone is not enough while the destination is isolated for ingress.
    out = policy(
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}],
        }
    )
    assert not net(deny, out).allows(web, db, 5432)
    into = policy(
        {
            "podSelector": {
                "matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]
            },
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 5432}]}],
        }
    )
    assert net(deny, out, into).allows(web, db, 5432)
    assert not net(deny, out, into).allows(web, db, 5433)
    # A podSelector alone means this namespace; the outsider's egress is not ours.
    assert not net(deny, into).allows(outside, db, 5432)
    # An empty `to` means every destination.
    anywhere = policy({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": []}]})
    assert net(anywhere).allows(web, INTERNET, 443)
    block = policy(
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "8.8.0.0/16", "except": ["8.8.8.0/24"]}}]}],
        }
    )
    assert not net(block).allows(web, INTERNET, 443)
    assert net(block).allows(web, Endpoint("dns", ip="8.8.4.4"), 443)
    assert not net(block).allows(web, db, 5432)  # pods are not in ipBlocks here


# --- Isolation ---------------------------------------------------------------------------


def test_a_pod_no_policy_selects_is_not_isolated() -> None:
    # The policy isolates db only: web and cache talk freely, in both directions.
    net = network(only_into_db([{"podSelector": {"matchLabels": {"app": "web"}}}]))
    assert net.allows(CACHE, WEB, 8080)
    assert net.allows(WEB, CACHE, 8080)
    assert net.allows(OUTSIDE, WEB, 8080)
    assert net.allows(WEB, INTERNET, 443)
    assert net.allows(WEB, DB, 5432)
    assert not net.allows(CACHE, DB, 5432)


def test_a_selecting_policy_without_rules_denies_its_directions() -> None:
    ingress_only = network({"podSelector": {"matchLabels": {"app": "db"}}})
    assert not ingress_only.allows(WEB, DB, 5432)
    assert ingress_only.allows(DB, WEB, 8080)  # db's egress is not isolated
    egress_only = network(
        {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"]}
    )
    assert egress_only.allows(WEB, DB, 5432)
    assert not egress_only.allows(DB, WEB, 8080)
    assert not egress_only.allows(DB, INTERNET, 443)


def test_an_empty_rule_allows_everything_in_its_direction() -> None:
    net = network(DENY_ALL, {"podSelector": {}, "ingress": [{}]})
    assert net.admits(DB, OUTSIDE, "Ingress", "TCP", 1)
    assert net.admits(DB, INTERNET, "Ingress", "UDP", 53)
    assert not net.admits(DB, OUTSIDE, "Egress", "TCP", 1)


def test_policies_add_up() -> None:
    from_web = only_into_db([{"podSelector": {"matchLabels": {"app": "web"}}}])
    from_cache = only_into_db([{"podSelector": {"matchLabels": {"app": "cache"}}}])
    assert not network(from_web).allows(CACHE, DB, 5432)
    assert network(from_web, from_cache).allows(CACHE, DB, 5432)
    assert network(from_web, from_cache).allows(WEB, DB, 5432)


def test_a_connection_needs_both_egress_and_ingress() -> None:
    web_out = {**APP_WEB, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {}}]}]}
    db_in = only_into_db([{"podSelector": {}}])
    assert network(DENY_ALL, web_out, db_in).allows(WEB, DB, 5432)
    assert not network(DENY_ALL, web_out).allows(WEB, DB, 5432)
    assert not network(DENY_ALL, db_in).allows(WEB, DB, 5432)


# --- policyTypes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"podSelector": {}}, ["Ingress"]),
        ({"podSelector": {}, "ingress": []}, ["Ingress"]),
        ({"podSelector": {}, "egress": [{}]}, ["Ingress", "Egress"]),
        ({"podSelector": {}, "ingress": [], "egress": [{}]}, ["Ingress", "Egress"]),
        # An empty egress list is no egress section: the API server defaults by its length.
        ({"podSelector": {}, "egress": []}, ["Ingress"]),
        ({"podSelector": {}, "policyTypes": ["Egress"]}, ["Egress"]),
        ({"podSelector": {}, "policyTypes": [], "egress": [{}]}, ["Ingress", "Egress"]),
    ],
)
def test_policy_types_default_from_the_sections(spec: dict[str, Any], expected: list[str]) -> None:
    assert policy_types(spec) == expected


def test_an_egress_section_makes_an_egress_policy() -> None:
    # No policyTypes: the egress section isolates web's egress, and ingress too.
    net = network(
        {**APP_WEB, "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]}
    )
    assert net.allows(WEB, DB, 5432)
    assert not net.allows(WEB, CACHE, 6379)
    assert not net.allows(CACHE, WEB, 8080)


def test_policy_types_ignore_the_sections_they_do_not_name() -> None:
    # An ingress section in an Egress-only policy constrains nothing.
    spec = {**APP_WEB, "policyTypes": ["Egress"], "ingress": [{"from": [NS_MONITORING]}]}
    net = network(spec)
    assert net.allows(CACHE, WEB, 8080)
    assert not net.allows(WEB, CACHE, 6379)


# --- Selectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        ({"key": "app", "operator": "In", "values": ["web", "db"]}, {"app": "db"}, True),
        ({"key": "app", "operator": "In", "values": ["web"]}, {"app": "db"}, False),
        ({"key": "app", "operator": "In", "values": ["web"]}, {}, False),
        ({"key": "app", "operator": "NotIn", "values": ["web"]}, {"app": "db"}, True),
        ({"key": "app", "operator": "NotIn", "values": ["web"]}, {"app": "web"}, False),
        ({"key": "app", "operator": "NotIn", "values": ["web"]}, {}, True),
        ({"key": "app", "operator": "Exists"}, {"app": ""}, True),
        ({"key": "app", "operator": "Exists"}, {"tier": "x"}, False),
        ({"key": "app", "operator": "DoesNotExist"}, {"tier": "x"}, True),
        ({"key": "app", "operator": "DoesNotExist"}, {"app": "web"}, False),
    ],
)
def test_match_expressions(
    expression: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selects({"matchExpressions": [expression]}, labels) is expected


def test_selector_terms_are_anded_and_the_empty_selector_selects_all() -> None:
    selector = {
        "matchLabels": {"tier": "front"},
        "matchExpressions": [{"key": "app", "operator": "Exists"}],
    }
    assert selects(selector, {"tier": "front", "app": "web"})
    assert not selects(selector, {"tier": "front"})
    assert not selects(selector, {"tier": "back", "app": "web"})
    assert not selects({"matchLabels": {"app": "web"}}, {})
    assert selects({}, {})
    assert selects({}, {"any": "thing"})


def test_an_empty_pod_selector_selects_the_policy_namespace_only() -> None:
    net = network(DENY_ALL)
    assert not net.allows(WEB, DB, 5432)
    assert not net.allows(WEB, CACHE, 6379)
    # Pods of other namespaces are not selected: their traffic among themselves flows.
    assert net.allows(OUTSIDE, MONITOR, 8080)
    # A policy in another namespace selects nothing here.
    elsewhere = Network([policy(DENY_ALL, namespace="other")], namespace=NAMESPACE)
    assert elsewhere.allows(WEB, DB, 5432)
    assert not elsewhere.allows(OUTSIDE, WEB, 8080)
    assert not elsewhere.allows(WEB, OUTSIDE, 8080)


# --- Peers -------------------------------------------------------------------------------


def test_a_pod_selector_alone_means_the_policy_namespace() -> None:
    net = network(only_into_db([{"podSelector": {"matchLabels": {"app": "web"}}}]))
    assert net.allows(WEB, DB, 5432)
    assert not net.allows(OUTSIDE, DB, 5432)
    assert not net.allows(MONITOR, DB, 5432)


def test_a_namespace_selector_alone_means_every_pod_there() -> None:
    net = network(only_into_db([NS_MONITORING]))
    assert net.allows(MONITOR, DB, 5432)
    assert net.allows(Endpoint("any", "monitoring", {}), DB, 5432)
    assert not net.allows(OUTSIDE, DB, 5432)
    assert not net.allows(WEB, DB, 5432)  # its own namespace is not selected
    assert not net.allows(INTERNET, DB, 5432)
    every_namespace = network(only_into_db([{"namespaceSelector": {}}]))
    assert every_namespace.allows(OUTSIDE, DB, 5432)
    assert every_namespace.allows(WEB, DB, 5432)
    assert not every_namespace.allows(INTERNET, DB, 5432)


def test_selectors_in_one_peer_and_in_separate_peers() -> None:
    pods = {"podSelector": {"matchLabels": {"app": "web"}}}
    both = network(only_into_db([{**NS_MONITORING, **pods}]))
    either = network(only_into_db([NS_MONITORING, pods]))
    prometheus = Endpoint("prometheus", "monitoring", {"app": "prometheus"})
    # One peer: the web pods of the monitoring namespace (AND).
    assert both.allows(MONITOR, DB, 5432)
    assert not both.allows(prometheus, DB, 5432)
    assert not both.allows(WEB, DB, 5432)
    # Two peers: any pod of monitoring, or the web pods of the policy's namespace (OR).
    assert either.allows(MONITOR, DB, 5432)
    assert either.allows(prometheus, DB, 5432)
    assert either.allows(WEB, DB, 5432)
    assert not either.allows(OUTSIDE, DB, 5432)


def test_ip_blocks_match_addresses_outside_their_exceptions() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
    net = network(only_into_db([block]))
    assert net.allows(Endpoint("lan", ip="10.2.3.4"), DB, 5432)
    assert not net.allows(Endpoint("excepted", ip="10.1.2.3"), DB, 5432)
    assert not net.allows(INTERNET, DB, 5432)
    assert not net.allows(WEB, DB, 5432)  # a pod's IP is not modelled
    assert peer_matches(
        {"ipBlock": {"cidr": "2001:db8::/32"}}, Endpoint("v6", ip="2001:db8::1"), NAMESPACE
    )
    assert not peer_matches(
        {"ipBlock": {"cidr": "8.8.8.8/32"}}, Endpoint("v4", ip="8.8.8.9"), NAMESPACE
    )


# --- Ports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ports", "protocol", "port", "expected"),
    [
        (None, "UDP", 53, True),
        ([], "SCTP", 1, True),
        ([{"port": 53}], "TCP", 53, True),  # no protocol: TCP
        ([{"port": 53}], "UDP", 53, False),
        ([{"port": 53}], "TCP", 54, False),
        ([{"protocol": "UDP", "port": 53}], "UDP", 53, True),
        ([{"protocol": "UDP", "port": 53}], "TCP", 53, False),
        ([{"protocol": "UDP"}], "UDP", 9999, True),  # no port: every port of UDP
        ([{"protocol": "UDP"}], "TCP", 9999, False),
        ([{"port": 8000, "endPort": 8010}], "TCP", 8010, True),
        ([{"port": 8000, "endPort": 8010}], "TCP", 8011, False),
        ([{"port": 8000, "endPort": 8010}], "TCP", 7999, False),
        ([{"protocol": "UDP", "port": 53}, {"port": 443}], "TCP", 443, True),
    ],
)
def test_ports(
    ports: list[dict[str, Any]] | None, protocol: str, port: int, expected: bool
) -> None:
    assert port_matches(ports, protocol, port) is expected


def test_ports_and_peers_of_a_rule_are_anded_and_rules_ored() -> None:
    net = network(
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                    "ports": [{"port": 5432}],
                },
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "cache"}}}],
                    "ports": [{"port": 9187}],
                },
            ],
        }
    )
    assert net.allows(WEB, DB, 5432)
    assert net.allows(CACHE, DB, 9187)
    assert not net.allows(WEB, DB, 9187)
    assert not net.allows(CACHE, DB, 5432)
    assert not net.allows(WEB, DB, 5432, "UDP")


# --- What it refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (only_into_db([{"podSelector": {}}], ports=[{"port": "postgres"}]), NotImplementedError),
        ({"podSelector": {}, "ingress": [{"from": [{}]}]}, ValueError),
        (only_into_db([{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]), ValueError),
        (only_into_db([{"serviceAccount": {}}]), NotImplementedError),
        (only_into_db([{"ipBlock": {"cidr": "not-an-address"}}]), ValueError),
        (only_into_db([{"podSelector": {}}], ports=[{"endPort": 10}]), ValueError),
        (only_into_db([{"podSelector": {}}], ports=[{"port": 10, "endPort": 9}]), ValueError),
        (only_into_db([{"podSelector": {}}], ports=[{"protocol": "ICMP"}]), ValueError),
        (only_into_db([{"podSelector": {}}], action="Deny"), NotImplementedError),
        ({"podSelector": {}, "egress": [{"from": []}]}, NotImplementedError),
        ({"podSelector": {}, "priority": 1}, NotImplementedError),
        ({"policyTypes": ["Ingress"]}, ValueError),
        ({"podSelector": {}, "policyTypes": ["Sideways"]}, ValueError),
        ({"podSelector": {"matchFields": {}}}, NotImplementedError),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}}, ValueError),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, ValueError),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                }
            },
            ValueError,
        ),
    ],
)
def test_what_it_does_not_model_or_the_api_rejects_fails_loudly(
    spec: dict[str, Any], error: type[Exception]
) -> None:
    # At construction, whichever flows would be asked about.
    with pytest.raises(error):
        network(spec)


def test_it_refuses_other_kinds_and_unknown_protocols() -> None:
    with pytest.raises(ValueError):
        Network([{"kind": "Service", "metadata": {"name": "s"}, "spec": {}}], namespace=NAMESPACE)
    with pytest.raises(ValueError):
        network().allows(WEB, DB, 80, "ICMP")
    with pytest.raises(ValueError):
        network().admits(WEB, DB, "Sideways", "TCP", 80)
