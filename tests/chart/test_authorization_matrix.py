"""Who may call what, computed from the RENDERED AuthorizationPolicies with a small
evaluator of Istio's semantics, for every caller × RPC × workload, against an explicit
intended table.

Semantics (istio.io/latest/docs/reference/config/security/authorization-policy/): the
policies of a workload are those in its namespace whose selector matches its labels (none =
all). CUSTOM is ignored. Any matching DENY rule denies; then, if any ALLOW policy applies,
the request must match one of its rules (an ALLOW policy without rules matches nothing).
Strings match exactly, by prefix `x*`, by suffix `*x`, or `*` = present. Fields this
chart does not use raise, so a new field cannot be silently ignored here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mesh.methods import load_method_shapes
from tests.support.paths import CHART_DIR
from tooling.chart.render import Object, Rendered

from .istio_render import render_with

NAMESPACE = "caixa"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_LABELS = {"istio": "ingressgateway"}
GATEWAY = "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
# iss/sub of a token the gateway validated and forwarded, which the workload validates too.
END_USER = "https://auth.example.com//user-1"
UNRELATED = "cluster.local/ns/other/sa/default"
GRPC_PORT, METRICS_PORT = 50051, 9464
HEALTH_CHECK = "grpc.health.v1.Health/Check"

RPCS = [*sorted(load_method_shapes(CHART_DIR.parents[1] / "build" / "caixa.pb")), HEALTH_CHECK]


@dataclass(frozen=True)
class Request:
    principal: str  # "" without mTLS
    path: str
    method: str = "POST"
    port: int = GRPC_PORT
    host: str = "caixa.example.com"
    request_principal: str = ""  # iss/sub of a validated JWT
    # "tcp" when the sidecar sees plain TCP (e.g. a plain-text scrape it cannot parse).
    protocol: str = "http"


def string_match(pattern: str, value: str) -> bool:
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: list[str], value: str) -> bool:
    return any(string_match(p, value) for p in patterns)


def _field_pair(spec: dict[str, Any], name: str, value: str, fold: bool = False) -> bool:
    """`name` must match if given, `notName` must not."""
    if fold:
        value = value.lower()
    include = [p.lower() if fold else p for p in spec.get(name, [])]
    exclude = [p.lower() if fold else p for p in spec.get("not" + name[0].upper() + name[1:], [])]
    if name in spec and not _any(include, value):
        return False
    return not _any(exclude, value)


SOURCE_FIELDS = {"principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals"}
SOURCE_FIELDS |= {"namespaces", "notNamespaces"}


def peer_namespace(principal: str) -> str:
    """Istio takes source.namespace from the peer's SPIFFE id; plain text has none."""
    parts = principal.split("/")
    return parts[2] if len(parts) == 5 and parts[1] == "ns" else ""


OPERATION_FIELDS = {"paths", "notPaths", "methods", "notMethods", "ports", "notPorts"}
OPERATION_FIELDS |= {"hosts", "notHosts"}


def source_matches(source: dict[str, Any], request: Request) -> bool:
    unknown = set(source) - SOURCE_FIELDS
    if unknown:
        raise NotImplementedError(f"source fields {unknown}")
    return (
        _field_pair(source, "principals", request.principal)
        and _field_pair(source, "requestPrincipals", request.request_principal)
        and _field_pair(source, "namespaces", peer_namespace(request.principal))
    )


def operation_matches(operation: dict[str, Any], request: Request) -> bool:
    unknown = set(operation) - OPERATION_FIELDS
    if unknown:
        raise NotImplementedError(f"operation fields {unknown}")
    return (
        _field_pair(operation, "paths", request.path)
        and _field_pair(operation, "methods", request.method)
        and _field_pair(operation, "ports", str(request.port))
        and _field_pair(operation, "hosts", request.host, fold=True)
    )


def rule_matches(rule: dict[str, Any], request: Request) -> bool:
    if "when" in rule:
        raise NotImplementedError("when conditions")
    sources = [entry["source"] for entry in rule.get("from", [])]
    operations = [entry["operation"] for entry in rule.get("to", [])]
    return (not sources or any(source_matches(s, request) for s in sources)) and (
        not operations or any(operation_matches(o, request) for o in operations)
    )


def applies(policy: Object, namespace: str, labels: dict[str, str]) -> bool:
    if policy["metadata"]["namespace"] != namespace:
        return False
    spec = policy.get("spec") or {}
    if "targetRef" in spec or "targetRefs" in spec:
        raise NotImplementedError("targetRef")
    selector = (spec.get("selector") or {}).get("matchLabels", {})
    return all(labels.get(k) == v for k, v in selector.items())


HTTP_ONLY_FIELDS = {
    "paths",
    "notPaths",
    "methods",
    "notMethods",
    "hosts",
    "notHosts",
    "requestPrincipals",
    "notRequestPrincipals",
}


def _http_only(rule: dict[str, Any]) -> bool:
    entries = [e["source"] for e in rule.get("from", [])]
    entries += [e["operation"] for e in rule.get("to", [])]
    return any(HTTP_ONLY_FIELDS & set(entry) for entry in entries)


def _without_http_fields(rule: dict[str, Any]) -> dict[str, Any]:
    def strip(entries: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return [
            {key: {k: v for k, v in e[key].items() if k not in HTTP_ONLY_FIELDS}} for e in entries
        ]

    stripped = dict(rule)
    for section, key in (("from", "source"), ("to", "operation")):
        if section in rule:
            stripped[section] = strip(rule[section], key)
    return stripped


def for_protocol(rules: list[dict[str, Any]], action: str, protocol: str) -> list[dict[str, Any]]:
    """Istio on TCP traffic: an ALLOW rule with an HTTP-only field is dropped (it can never
    match), a DENY rule loses those fields (so it matches more), to fail closed."""
    if protocol == "http":
        return rules
    if action == "ALLOW":
        return [r for r in rules if not _http_only(r)]
    return [_without_http_fields(r) for r in rules]


def allowed(policies: list[Object], namespace: str, labels: dict[str, str], req: Request) -> bool:
    mine = [p for p in policies if applies(p, namespace, labels)]
    by_action: dict[str, list[dict[str, Any]]] = {"ALLOW": [], "DENY": []}
    has_allow = False
    for policy in mine:
        spec = policy.get("spec") or {}
        action = spec.get("action", "ALLOW")
        if action == "CUSTOM":
            continue
        if action == "AUDIT":
            raise NotImplementedError("AUDIT")
        has_allow |= action == "ALLOW"
        by_action[action] += for_protocol(spec.get("rules", []), action, req.protocol)
    if any(rule_matches(rule, req) for rule in by_action["DENY"]):
        return False
    return not has_allow or any(rule_matches(rule, req) for rule in by_action["ALLOW"])


# --- the intended table ---

LANCAMENTOS = "lancamentos.v1.LancamentosService"
CONSOLIDADO = "consolidado.v1.ConsolidadoService"
INGEST = "consolidado.v1.ConsolidadoIngestService"

# target workload → caller → the RPCs it may call (health checks: see HEALTH_CALLERS).
INTENDED: dict[str, dict[str, set[str]]] = {
    "lancamentos": {
        "gateway": {rpc for rpc in RPCS if rpc.startswith(f"{LANCAMENTOS}/")},
        # Reconciliation: per-day sums and the change feed, nothing that writes.
        "consolidado": {
            f"{LANCAMENTOS}/SummarizeLancamentos",
            f"{LANCAMENTOS}/StreamLancamentos",
        },
    },
    "consolidado": {
        "gateway": {f"{CONSOLIDADO}/GetDailyBalance", f"{CONSOLIDADO}/ListDailyBalances"},
        "dispatcher": {f"{INGEST}/ApplyLancamentos"},
    },
    "dispatcher": {},
}
CALLERS = (
    "gateway",
    "dispatcher",
    "lancamentos",
    "consolidado",
    "unrelated",
    "monitoring",
    "istio-system",
)
# Outside callers with their SPIFFE ids: a blackbox prober, and any workload of Istio's own
# namespace (the east-west gateway forwards the original caller's identity, never its own).
OUTSIDERS = {
    "gateway": GATEWAY,
    "unrelated": UNRELATED,
    "monitoring": "cluster.local/ns/monitoring/sa/prometheus",
    "istio-system": "cluster.local/ns/istio-system/sa/istio-eastwestgateway-service-account",
}


def _principals(rendered: Rendered) -> dict[str, str]:
    """Callers' SPIFFE ids. A caller may run in the other cluster (the cloud has no
    dispatcher) with the same identity: one trust domain, same namespace and names."""
    principals = dict(OUTSIDERS)
    for component in ("dispatcher", "lancamentos", "consolidado"):
        principals[component] = f"cluster.local/ns/{NAMESPACE}/sa/caixa-{component}"
    for deployment in rendered.of_kind("Deployment"):
        component = deployment["metadata"]["name"].removeprefix("caixa-")
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        assert principals[component].endswith(f"/sa/{account}")
    return principals


def _workloads(rendered: Rendered) -> dict[str, dict[str, str]]:
    """Target workload → its pods' labels, from the rendered Deployments."""
    return {
        d["metadata"]["name"].removeprefix("caixa-"): d["spec"]["template"]["metadata"]["labels"]
        for d in rendered.of_kind("Deployment")
    }


# Health through the mesh: the release's own workloads and the gateway, not strangers.
HEALTH_CALLERS = {"gateway", "dispatcher", "lancamentos", "consolidado", "monitoring"}


def _intended(target: str, caller: str, rpc: str) -> bool:
    if rpc == HEALTH_CHECK:
        return caller in HEALTH_CALLERS
    return rpc in INTENDED[target].get(caller, set())


def test_matrix_equals_the_intended_table(topology: str, rendered: Rendered) -> None:
    policies = rendered.of_kind("AuthorizationPolicy")
    principals = _principals(rendered)
    workloads = _workloads(rendered)
    assert set(workloads) == {"lancamentos", "dispatcher", "consolidado"} or topology == "cloud"
    assert "consolidado" in workloads
    actual, expected = {}, {}
    for target, labels in workloads.items():
        for caller in CALLERS:
            for rpc in RPCS:
                # Requests through the gateway carry the end user's token.
                token = END_USER if caller == "gateway" else ""
                request = Request(principals[caller], f"/{rpc}", request_principal=token)
                key = (target, caller, rpc)
                actual[key] = allowed(policies, NAMESPACE, labels, request)
                expected[key] = _intended(target, caller, rpc)
    wrong = sorted(k for k in actual if actual[k] != expected[k])
    assert wrong == [], wrong


def test_the_gateway_reaches_nothing_without_a_token(rendered: Rendered) -> None:
    """Another app's route on the same gateway pods carries the gateway's identity but no
    Caixa token: the workloads' own JWT check keeps it out of every public RPC."""
    policies = rendered.of_kind("AuthorizationPolicy")
    for target, labels in _workloads(rendered).items():
        for rpc in INTENDED[target].get("gateway", set()):
            assert allowed(policies, NAMESPACE, labels, Request(GATEWAY, f"/{rpc}")) is False
            with_token = Request(GATEWAY, f"/{rpc}", request_principal=END_USER)
            assert allowed(policies, NAMESPACE, labels, with_token)


def test_reconcile_only_for_listed_principals(tmp_path: Path) -> None:
    operator = "cluster.local/ns/ops/sa/reconciler"
    rendered = render_with(
        "default", {"istio": {"authorization": {"reconcilePrincipals": [operator]}}}, tmp_path
    )
    policies = rendered.of_kind("AuthorizationPolicy")
    labels = _workloads(rendered)["consolidado"]
    reconcile = f"/{INGEST}/Reconcile"
    assert allowed(policies, NAMESPACE, labels, Request(operator, reconcile))
    assert not allowed(
        policies, NAMESPACE, labels, Request(operator, f"/{INGEST}/ApplyLancamentos")
    )
    assert not allowed(policies, NAMESPACE, labels, Request(GATEWAY, reconcile))


def test_only_the_mesh_reaches_grpc_but_anyone_scrapes_metrics(rendered: Rendered) -> None:
    policies = rendered.of_kind("AuthorizationPolicy")
    for labels in _workloads(rendered).values():
        plain = Request(principal="", path=f"/{CONSOLIDADO}/GetDailyBalance")
        assert not allowed(policies, NAMESPACE, labels, plain)
        scrape = Request(principal="", path="/metrics", method="GET", port=METRICS_PORT)
        assert allowed(policies, NAMESPACE, labels, scrape)
        # The port-only rule holds when the sidecar sees the scrape as plain TCP, too.
        tcp_scrape = Request(principal="", path="", port=METRICS_PORT, protocol="tcp")
        assert allowed(policies, NAMESPACE, labels, tcp_scrape)
        tcp_grpc = Request(principal="", path="", port=GRPC_PORT, protocol="tcp")
        assert not allowed(policies, NAMESPACE, labels, tcp_grpc)
        # Plain text gets nothing but the metrics port, health included.
        assert not allowed(policies, NAMESPACE, labels, Request("", f"/{HEALTH_CHECK}"))


@pytest.mark.parametrize(
    ("request_principal", "path", "host", "expected"),
    [
        ("", f"/{CONSOLIDADO}/GetDailyBalance", "caixa.example.com", False),
        ("", "/v1/merchants/m1/daily-balances/2024-01-02", "CAIXA.example.com:443", False),
        # Nothing is public: the cluster gateway does not serve /openapi.json either.
        ("", "/openapi.json", "caixa.example.com", False),
        (
            END_USER,
            f"/{CONSOLIDADO}/GetDailyBalance",
            "caixa.example.com",
            True,
        ),
        # Another app on the same gateway is not Caixa's to police.
        ("", "/anything", "other.example.com", True),
    ],
)
def test_gateway_rejects_requests_without_a_token(
    rendered: Rendered, request_principal: str, path: str, host: str, expected: bool
) -> None:
    policies = rendered.of_kind("AuthorizationPolicy")
    request = Request(
        principal="", path=path, port=443, host=host, request_principal=request_principal
    )
    assert allowed(policies, GATEWAY_NAMESPACE, GATEWAY_LABELS, request) is expected


def test_evaluator_semantics() -> None:
    def policy(spec: dict[str, Any], namespace: str = NAMESPACE) -> Object:
        return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}

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
