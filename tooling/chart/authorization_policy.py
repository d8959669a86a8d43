"""Whether Istio's AuthorizationPolicies let a request through: a small evaluator over
plain manifests (security.istio.io/v1).

Semantics (istio.io/latest/docs/reference/config/security/authorization-policy/):

- The policies of a workload are those in its namespace, and those in the mesh's root
  namespace (istio-system unless told otherwise), whose `selector.matchLabels` match its
  labels; a policy without a selector applies to every workload it can reach.
- DENY is evaluated first: any matching DENY rule denies. Then, if no ALLOW policy applies,
  the request is allowed; if one does, it must match one of their rules (an ALLOW policy
  without rules matches nothing, so it denies everything else).
- A rule matches when one of its `from` sources (if any) and one of its `to` operations
  (if any) match; the fields of a source or an operation are ANDed; `x` must match one of
  the values of a field, `notX` none of them. An empty list is no constraint, as in Istio.
- Strings match exactly, by prefix `x*`, by suffix `*x`, or `*` = present (non-empty).
  Hosts match case-insensitively. `source.namespaces` is the namespace of the peer's
  SPIFFE id (`<trust domain>/ns/<namespace>/sa/<account>`); plain text has none.
- On TCP traffic (no HTTP seen), a rule with an HTTP-only field (paths, methods, hosts,
  requestPrincipals and their `not` forms) is dropped from ALLOW policies (it can never
  match) and loses those fields in DENY policies (so it matches more): fail closed.

What it does not model, deliberately: CUSTOM policies are skipped — they delegate to an
external authorizer it cannot see, so it answers what the ALLOW and DENY policies let
through, an upper bound; AUDIT policies, `when` conditions, `targetRef(s)`, ipBlocks and
other source/operation fields, path templates (`{*}`, `{**}`) and `*` inside a string
raise NotImplementedError, as does any other field it does not know, so nothing is
silently ignored. Principals are compared as given (no `spiffe://`, no trust-domain
aliases).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tooling.chart.network_policy import require_known

ROOT_NAMESPACE = "istio-system"
ACTIONS = frozenset({"ALLOW", "DENY", "CUSTOM"})
PROTOCOLS = frozenset({"http", "tcp"})

SPEC_FIELDS = frozenset({"selector", "action", "rules", "provider"})
RULE_FIELDS = frozenset({"from", "to"})
SOURCE_FIELDS = frozenset(
    {
        "principals",
        "notPrincipals",
        "requestPrincipals",
        "notRequestPrincipals",
        "namespaces",
        "notNamespaces",
    }
)
OPERATION_FIELDS = frozenset(
    {"paths", "notPaths", "methods", "notMethods", "ports", "notPorts", "hosts", "notHosts"}
)
HTTP_ONLY_FIELDS = frozenset(
    {
        "paths",
        "notPaths",
        "methods",
        "notMethods",
        "hosts",
        "notHosts",
        "requestPrincipals",
        "notRequestPrincipals",
    }
)

Rule = Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """What the workload's sidecar knows of a request (by default an HTTP POST, as gRPC)."""

    principal: str  # the peer's SPIFFE id; "" without mTLS
    path: str
    method: str = "POST"
    port: int = 80
    host: str = ""
    request_principal: str = ""  # iss/sub of a validated JWT
    # "tcp" when the sidecar sees plain TCP (e.g. a plain-text scrape it cannot parse).
    protocol: str = "http"


def _check_pattern(pattern: str) -> None:
    if "{" in pattern:
        raise NotImplementedError(f"path template {pattern!r} is not modelled")
    if pattern != "*" and ("*" in pattern[1:-1] or pattern[:1] == pattern[-1:] == "*"):
        raise NotImplementedError(f"{pattern!r}: only a leading or a trailing * is modelled")


def string_match(pattern: str, value: str) -> bool:
    """Istio's string match: exact, prefix `x*`, suffix `*x`, or `*` for any non-empty."""
    _check_pattern(pattern)
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: Sequence[str], value: str) -> bool:
    return any(string_match(p, value) for p in patterns)


def _field_pair(spec: Mapping[str, Any], name: str, value: str) -> bool:
    """`name` must match if given, `notName` must not (hosts: whatever the case)."""
    fold = name == "hosts"
    if fold:
        value = value.lower()
    include = [p.lower() if fold else p for p in spec.get(name) or []]
    negated = "not" + name[0].upper() + name[1:]
    exclude = [p.lower() if fold else p for p in spec.get(negated) or []]
    if include and not _any(include, value):
        return False
    return not _any(exclude, value)


def _fields_match(spec: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """Each field pair of `spec` against the request's value for it."""
    return all(_field_pair(spec, name, value) for name, value in values.items())


def peer_namespace(principal: str) -> str:
    """Istio takes source.namespace from the peer's SPIFFE id; plain text has none."""
    parts = principal.split("/")
    return parts[2] if len(parts) == 5 and parts[1] == "ns" else ""


def _check_fields(fields: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    """Known fields, each a list of patterns (ports: of port numbers)."""
    require_known(fields, known, where)
    for name, patterns in fields.items():
        for pattern in patterns or []:
            if name in ("ports", "notPorts") and not str(pattern).isdigit():
                raise ValueError(f"port {pattern!r} is not a number")
            _check_pattern(str(pattern))


def source_matches(source: Mapping[str, Any], request: Request) -> bool:
    _check_fields(source, SOURCE_FIELDS, "source")
    principal, namespace = request.principal, peer_namespace(request.principal)
    values = {"principals": principal, "namespaces": namespace}
    return _fields_match(source, {**values, "requestPrincipals": request.request_principal})


def operation_matches(operation: Mapping[str, Any], request: Request) -> bool:
    _check_fields(operation, OPERATION_FIELDS, "operation")
    values = {"paths": request.path, "methods": request.method, "hosts": request.host}
    return _fields_match(operation, {**values, "ports": str(request.port)})


def _entries(rule: Rule, section: str, key: str) -> list[Mapping[str, Any]]:
    """The sources (`from`/`source`) or operations (`to`/`operation`) of a rule."""
    entries = rule.get(section) or []
    for entry in entries:
        require_known(entry, frozenset({key}), section)
    return [entry.get(key) or {} for entry in entries]


def _check_rule(rule: Rule) -> None:
    if "when" in rule:
        raise NotImplementedError("when conditions are not modelled")
    require_known(rule, RULE_FIELDS, "rule")
    for source in _entries(rule, "from", "source"):
        _check_fields(source, SOURCE_FIELDS, "source")
    for operation in _entries(rule, "to", "operation"):
        _check_fields(operation, OPERATION_FIELDS, "operation")


def rule_matches(rule: Rule, request: Request) -> bool:
    _check_rule(rule)
    sources = _entries(rule, "from", "source")
    operations = _entries(rule, "to", "operation")
    return (not sources or any(source_matches(s, request) for s in sources)) and (
        not operations or any(operation_matches(o, request) for o in operations)
    )


def check(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    """The policy's spec, once every field of it is known to this evaluator."""
    if policy.get("kind", "AuthorizationPolicy") != "AuthorizationPolicy":
        raise ValueError(f"not an AuthorizationPolicy: {policy['kind']!r}")
    if "namespace" not in (policy.get("metadata") or {}):
        raise ValueError("an AuthorizationPolicy needs metadata.namespace")
    spec: Mapping[str, Any] = policy.get("spec") or {}
    if "targetRef" in spec or "targetRefs" in spec:
        raise NotImplementedError("targetRef is not modelled")
    require_known(spec, SPEC_FIELDS, "AuthorizationPolicy spec")
    require_known(spec.get("selector") or {}, frozenset({"matchLabels"}), "selector")
    action = spec.get("action", "ALLOW")
    if action == "AUDIT":
        raise NotImplementedError("AUDIT policies are not modelled")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action != "CUSTOM":
        for rule in spec.get("rules") or []:
            _check_rule(rule)
    return spec


def applies(
    policy: Mapping[str, Any],
    namespace: str,
    labels: Mapping[str, str],
    *,
    root_namespace: str = ROOT_NAMESPACE,
) -> bool:
    """Whether `policy` is one of the policies of a workload in `namespace` with `labels`."""
    spec = check(policy)
    if policy["metadata"]["namespace"] not in (namespace, root_namespace):
        return False
    match_labels: Mapping[str, str] = (spec.get("selector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in match_labels.items())


def _http_only(rule: Rule) -> bool:
    entries = _entries(rule, "from", "source") + _entries(rule, "to", "operation")
    return any(HTTP_ONLY_FIELDS & set(entry) for entry in entries)


def _without_http_fields(rule: Rule) -> Rule:
    stripped = dict(rule)
    for section, key in (("from", "source"), ("to", "operation")):
        if section in rule:
            stripped[section] = [
                {key: {k: v for k, v in entry.items() if k not in HTTP_ONLY_FIELDS}}
                for entry in _entries(rule, section, key)
            ]
    return stripped


def for_protocol(rules: Sequence[Rule], action: str, protocol: str) -> list[Rule]:
    """Istio on TCP traffic: an ALLOW rule with an HTTP-only field is dropped (it can never
    match), a DENY rule loses those fields (so it matches more), to fail closed."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    if protocol == "http":
        return list(rules)
    if action == "ALLOW":
        return [r for r in rules if not _http_only(r)]
    return [_without_http_fields(r) for r in rules]


def allowed(
    policies: Iterable[Mapping[str, Any]],
    namespace: str,
    labels: Mapping[str, str],
    req: Request,
    *,
    root_namespace: str = ROOT_NAMESPACE,
) -> bool:
    """Whether a workload in `namespace` with `labels` accepts `req` under `policies`.

    Every policy is checked, whether it applies or not, so an unmodelled field fails
    whichever workload is asked about."""
    if req.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {req.protocol!r}")
    by_action: dict[str, list[Rule]] = {"ALLOW": [], "DENY": []}
    has_allow = False
    for policy in policies:
        spec = check(policy)
        action = spec.get("action", "ALLOW")
        if action == "CUSTOM" or not applies(
            policy, namespace, labels, root_namespace=root_namespace
        ):
            continue  # CUSTOM: the external authorizer's answer is not modelled
        has_allow |= action == "ALLOW"
        by_action[action] += for_protocol(spec.get("rules") or [], action, req.protocol)
    if any(rule_matches(rule, req) for rule in by_action["DENY"]):
        return False
    return not has_allow or any(rule_matches(rule, req) for rule in by_action["ALLOW"])
