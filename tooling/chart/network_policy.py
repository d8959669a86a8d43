"""What Kubernetes NetworkPolicies let through: a small evaluator over plain manifests.

Semantics (kubernetes.io/docs/concepts/services-networking/network-policies/, API
networking.k8s.io/v1):

- A policy selects, by `spec.podSelector`, pods of its own namespace (`metadata.namespace`,
  else the namespace the Network is told the manifests are applied in). The empty selector
  selects every pod of the namespace; `matchLabels` and `matchExpressions` (In, NotIn,
  Exists, DoesNotExist) are ANDed.
- `policyTypes` defaults to Ingress, plus Egress when the policy has `egress` rules (the
  API server cannot tell an empty `egress` list from none).
- A pod no policy selects for a direction is not isolated in it: everything is allowed.
  A selected pod admits only what some rule of the selecting policies allows, so a
  selecting policy with no rules denies that direction. Policies are additive.
- A connection is allowed when the source's egress allows it and the destination's
  ingress allows it.
- A rule with no (or an empty) `from`/`to` matches every peer; with no `ports`, every port.
- Peers: `podSelector` alone means pods of the policy's namespace; `namespaceSelector`
  alone every pod of the selected namespaces; both in one peer mean pods selected by both
  (AND); separate peers are alternatives (OR). Namespaces carry only the label
  `kubernetes.io/metadata.name`. `ipBlock` matches addresses in `cidr` outside its
  `except` blocks.
- Ports: `protocol` (TCP when omitted, UDP or SCTP), numeric `port`, and `endPort` for a
  range; an entry without `port` means every port of its protocol.

What it does not model, deliberately: named ports (a string `port`) raise
NotImplementedError; pod IPs (a pod given without an `ip` never matches an ipBlock, which
the API leaves to the implementation for pod traffic); traffic the node always lets
through (kubelet probes); reply traffic of an allowed connection (implicitly allowed);
AdminNetworkPolicy and implementation-specific policies. Any field of the manifest it
does not know raises NotImplementedError, and what the API server would reject (an empty
peer, an ipBlock beside a selector, an unknown selector operator) raises ValueError, so
that nothing is silently ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
DIRECTIONS = ("Ingress", "Egress")

SPEC_FIELDS = frozenset({"podSelector", "policyTypes", "ingress", "egress"})
SELECTOR_FIELDS = frozenset({"matchLabels", "matchExpressions"})
PEER_FIELDS = frozenset({"podSelector", "namespaceSelector", "ipBlock"})
IP_BLOCK_FIELDS = frozenset({"cidr", "except"})
PORT_FIELDS = frozenset({"protocol", "port", "endPort"})
EXPRESSION_FIELDS = frozenset({"key", "operator", "values"})
OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


def require_known(fields: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    """Raise NotImplementedError for a field of a manifest the evaluator does not model."""
    unknown = set(fields) - known
    if unknown:
        raise NotImplementedError(f"{where} fields {sorted(unknown)} are not modelled")


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels) or, with no namespace, an address outside the cluster."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {NAMESPACE_NAME_LABEL: self.namespace} if self.namespace else {}


def _check_selector(selector: Mapping[str, Any]) -> None:
    require_known(selector, SELECTOR_FIELDS, "label selector")
    for expression in selector.get("matchExpressions") or []:
        require_known(expression, EXPRESSION_FIELDS, "matchExpressions")
        key, operator = expression["key"], expression["operator"]
        if operator not in OPERATORS:
            raise ValueError(f"unknown selector operator {operator!r}")
        if bool(expression.get("values")) != (operator in ("In", "NotIn")):
            raise ValueError(f"{operator} on {key!r}: In/NotIn need values, the others none")


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector; the empty selector selects everything."""
    _check_selector(selector)
    match_labels: Mapping[str, str] = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        present = key in labels
        if operator == "In":
            matched = present and labels[key] in expression["values"]
        elif operator == "NotIn":
            matched = not present or labels[key] not in expression["values"]
        else:
            matched = present == (operator == "Exists")
        if not matched:
            return False
    return True


def _check_peer(peer: Mapping[str, Any]) -> None:
    require_known(peer, PEER_FIELDS, "peer")
    if not peer:
        raise ValueError("a peer needs a podSelector, a namespaceSelector or an ipBlock")
    if "ipBlock" in peer:
        if len(peer) > 1:
            raise ValueError("an ipBlock peer takes no selector")
        require_known(peer["ipBlock"], IP_BLOCK_FIELDS, "ipBlock")
        for block in (peer["ipBlock"]["cidr"], *(peer["ipBlock"].get("except") or [])):
            ipaddress.ip_network(block, strict=False)
    for selector in ("podSelector", "namespaceSelector"):
        _check_selector(peer.get(selector) or {})


def peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    """Whether `other` is this peer of a policy that lives in `policy_namespace`."""
    _check_peer(peer)
    if "ipBlock" in peer:
        if other.ip is None:
            return False  # a pod: its IP is not modelled
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        excepted = (ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
        return address in ipaddress.ip_network(block["cidr"], strict=False) and not any(
            address in e for e in excepted
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False  # a podSelector alone means the policy's own namespace
    return selects(peer.get("podSelector") or {}, other.labels)


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")


def _check_port(entry: Mapping[str, Any]) -> None:
    require_known(entry, PORT_FIELDS, "port")
    _check_protocol(entry.get("protocol", "TCP"))
    if "port" not in entry:
        if "endPort" in entry:
            raise ValueError("endPort needs a port")
        return
    if not isinstance(entry["port"], int):
        raise NotImplementedError(f"named port {entry['port']!r} is not modelled")
    if entry.get("endPort", entry["port"]) < entry["port"]:
        raise ValueError(f"endPort {entry['endPort']} is below port {entry['port']}")


def port_matches(ports: Sequence[Mapping[str, Any]] | None, protocol: str, port: int) -> bool:
    """Whether a rule's `ports` admit `protocol`/`port`; none listed admit every port."""
    _check_protocol(protocol)
    for entry in ports or []:
        _check_port(entry)
    if not ports:
        return True
    return any(
        entry.get("protocol", "TCP") == protocol
        and ("port" not in entry or entry["port"] <= port <= entry.get("endPort", entry["port"]))
        for entry in ports
    )


def policy_types(spec: Mapping[str, Any]) -> list[str]:
    """The directions a policy constrains, defaulted as the API server does: an empty list
    is no list, and an empty `egress` no egress section."""
    types: list[str] = spec.get("policyTypes") or (
        ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    )
    unknown = set(types) - set(DIRECTIONS)
    if unknown:
        raise ValueError(f"unknown policyTypes {sorted(unknown)}")
    return types


def _peer_key(direction: str) -> str:
    return "to" if direction == "Egress" else "from"


@dataclass(frozen=True)
class Policy:
    """A NetworkPolicy's spec and the namespace it lives in; every field is checked."""

    name: str
    namespace: str
    spec: Mapping[str, Any]

    def __post_init__(self) -> None:
        require_known(self.spec, SPEC_FIELDS, f"NetworkPolicy {self.name!r} spec")
        if "podSelector" not in self.spec:
            raise ValueError(f"NetworkPolicy {self.name!r} has no podSelector")
        _check_selector(self.spec["podSelector"])
        policy_types(self.spec)
        for direction in DIRECTIONS:
            key = _peer_key(direction)
            for rule in self.rules(direction):
                require_known(rule, frozenset({key, "ports"}), f"{direction.lower()} rule")
                for peer in rule.get(key) or []:
                    _check_peer(peer)
                for entry in rule.get("ports") or []:
                    _check_port(entry)

    def rules(self, direction: str) -> list[Mapping[str, Any]]:
        rules: list[Mapping[str, Any]] = self.spec.get(direction.lower()) or []
        return rules


class Network:
    """The NetworkPolicies of a cluster, asked whether one endpoint may reach another.

    `namespace` is where manifests without `metadata.namespace` are applied (as
    `kubectl apply -n` or `helm install -n` would).
    """

    def __init__(self, manifests: Iterable[Mapping[str, Any]], *, namespace: str) -> None:
        self.policies: list[Policy] = []
        for manifest in manifests:
            if manifest.get("kind", "NetworkPolicy") != "NetworkPolicy":
                raise ValueError(f"not a NetworkPolicy: {manifest['kind']!r}")
            metadata = manifest.get("metadata") or {}
            name, in_namespace = metadata.get("name", ""), metadata.get("namespace") or namespace
            self.policies.append(Policy(name, in_namespace, manifest.get("spec") or {}))

    def admits(
        self, pod: Endpoint, other: Endpoint, direction: str, protocol: str, port: int
    ) -> bool:
        """Whether `pod`'s policies let it talk to (Egress) / hear from (Ingress) `other`."""
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}")
        _check_protocol(protocol)
        selecting = [
            policy
            for policy in self.policies
            if policy.namespace == pod.namespace
            and direction in policy_types(policy.spec)
            and selects(policy.spec["podSelector"], pod.labels)
        ]
        if not selecting:
            return True  # not isolated in this direction (and addresses never are)
        key = _peer_key(direction)
        return any(
            (not rule.get(key) or any(peer_matches(p, other, policy.namespace) for p in rule[key]))
            and port_matches(rule.get("ports"), protocol, port)
            for policy in selecting
            for rule in policy.rules(direction)
        )

    def allows(
        self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
    ) -> bool:
        """A connection: the source's egress and the destination's ingress both admit it."""
        return self.admits(source, destination, "Egress", protocol, port) and self.admits(
            destination, source, "Ingress", protocol, port
        )
