"""Who may call what, computed from the RENDERED AuthorizationPolicies with the evaluator
of Istio's semantics (tooling.chart.authorization_policy, tested on its own in
test_authorization_policy_evaluator), for every caller × RPC × workload, against an
explicit intended table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pytest

from mesh.chart import Object, Rendered
from mesh.methods import load_method_shapes
from tests.support.chart import render_with
from tests.support.paths import DESCRIPTOR
from tooling.chart.authorization_policy import Request as IstioRequest
from tooling.chart.authorization_policy import allowed

NAMESPACE = "caixa"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_LABELS = {"istio": "ingressgateway"}
GATEWAY = "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
# iss/sub of a token the gateway validated and forwarded, which the workload validates too.
END_USER = "https://auth.example.com//user-1"
UNRELATED = "cluster.local/ns/other/sa/default"
GRPC_PORT, METRICS_PORT = 50051, 9464
HEALTH_CHECK = "grpc.health.v1.Health/Check"

RPCS = [*sorted(load_method_shapes(DESCRIPTOR)), HEALTH_CHECK]


@dataclass(frozen=True)
class Request(IstioRequest):
    """A call to a Caixa workload: on its gRPC port, to its public host."""

    port: int = GRPC_PORT
    host: str = "caixa.example.com"


# --- the intended table ---

LANCAMENTOS = "lancamentos.v1.LancamentosService"
CONSOLIDADO = "consolidado.v1.ConsolidadoService"
INGEST = "consolidado.v1.ConsolidadoIngestService"
FISCAL = "fiscal.v1.FiscalService"
# What fiscal's outbox calls: an invoice's entries and a cancellation's reversals.
FISCAL_BOOKS = {f"{LANCAMENTOS}/CreateLancamento", f"{LANCAMENTOS}/ReverseLancamento"}

# target workload → caller → the RPCs it may call (health checks: see HEALTH_CALLERS).
INTENDED: dict[str, dict[str, set[str]]] = {
    "lancamentos": {
        "gateway": {rpc for rpc in RPCS if rpc.startswith(f"{LANCAMENTOS}/")},
        # Reconciliation: per-day sums and the change feed, nothing that writes.
        "consolidado": {
            f"{LANCAMENTOS}/SummarizeLancamentos",
            f"{LANCAMENTOS}/StreamLancamentos",
        },
        # fiscal's outbox books invoices: creates and reversals, nothing that reads.
        "fiscal": FISCAL_BOOKS,
        # `helm test`'s Pod: the one read its script makes of each service.
        "helm-test": {f"{LANCAMENTOS}/ListLancamentos"},
    },
    "consolidado": {
        "gateway": {rpc for rpc in RPCS if rpc.startswith(f"{CONSOLIDADO}/")},
        "dispatcher": {f"{INGEST}/ApplyLancamentos"},
        "helm-test": {f"{CONSOLIDADO}/GetDailyBalance"},
    },
    "dispatcher": {},
    # Users only, through the gateway: no workload calls fiscal.
    "fiscal": {"gateway": {rpc for rpc in RPCS if rpc.startswith(f"{FISCAL}/")}},
}
CALLERS = (
    "gateway",
    "dispatcher",
    "lancamentos",
    "consolidado",
    "fiscal",
    "unrelated",
    "monitoring",
    "istio-system",
    "helm-test",
)
# Callers whose requests carry the end user's token (which the workload validates).
WITH_TOKEN = {"gateway", "helm-test"}
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
    for component in ("dispatcher", "lancamentos", "consolidado", "fiscal", "helm-test"):
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
HEALTH_CALLERS = {
    "gateway",
    "dispatcher",
    "lancamentos",
    "consolidado",
    "fiscal",
    "monitoring",
    "helm-test",
}


def _intended(target: str, caller: str, rpc: str) -> bool:
    if rpc == HEALTH_CHECK:
        return caller in HEALTH_CALLERS
    return rpc in INTENDED[target].get(caller, set())


def test_matrix_equals_the_intended_table(topology: str, rendered: Rendered) -> None:
    policies = rendered.of_kind("AuthorizationPolicy")
    principals = _principals(rendered)
    workloads = _workloads(rendered)
    assert set(workloads) == {"lancamentos", "dispatcher", "consolidado", "fiscal"} or (
        topology == "cloud"
    )
    assert "consolidado" in workloads
    actual, expected = {}, {}
    for target, labels in workloads.items():
        for caller in CALLERS:
            for rpc in RPCS:
                # Requests through the gateway carry the end user's token.
                token = END_USER if caller in WITH_TOKEN else ""
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


def test_helm_tests_reads_need_a_token(rendered: Rendered) -> None:
    """Its ServiceAccount alone, without the operator's token, reads nothing."""
    policies = rendered.of_kind("AuthorizationPolicy")
    principal = _principals(rendered)["helm-test"]
    workloads = _workloads(rendered)
    for target, rpcs in INTENDED.items():
        if target not in workloads:
            continue
        for rpc in rpcs.get("helm-test", set()):
            request = Request(principal, f"/{rpc}")
            assert not allowed(policies, NAMESPACE, workloads[target], request), (target, rpc)


def _admitted(policies: list[Object], labels: dict[str, str], caller: str, token: str) -> set[str]:
    """Every RPC of the descriptor (and health) that `caller` may call on those pods."""
    return {
        rpc
        for rpc in RPCS
        if rpc != HEALTH_CHECK
        and allowed(
            policies, NAMESPACE, labels, Request(caller, f"/{rpc}", request_principal=token)
        )
    }


@pytest.mark.parametrize("token", ["", END_USER], ids=["own-identity", "with-a-user-token"])
def test_fiscal_books_in_lancamentos_and_calls_nothing_else(
    topology: str, rendered: Rendered, token: str
) -> None:
    """fiscal's principal reaches CreateLancamento and ReverseLancamento, on lancamentos,
    and no other RPC of any service (a user's token it carried would change nothing)."""
    policies = rendered.of_kind("AuthorizationPolicy")
    fiscal = _principals(rendered)["fiscal"]
    workloads = _workloads(rendered)
    if topology == "cloud":
        assert "lancamentos" not in workloads
    for target, labels in workloads.items():
        expected = FISCAL_BOOKS if target == "lancamentos" else set()
        assert _admitted(policies, labels, fiscal, token) == expected, target


def test_the_fiscal_check_sees_a_wider_grant(renders: dict[str, Rendered]) -> None:
    """The check above fails for a policy that lets fiscal import or read too."""
    rendered = renders["default"]
    fiscal = _principals(rendered)["fiscal"]
    labels = _workloads(rendered)["lancamentos"]
    policies = copy.deepcopy(rendered.of_kind("AuthorizationPolicy"))
    [policy] = [p for p in policies if p["metadata"]["name"] == "caixa-lancamentos"]
    [rule] = [
        r for r in policy["spec"]["rules"] if r["from"][0]["source"].get("principals") == [fiscal]
    ]
    rule["to"][0]["operation"]["paths"].append(f"/{LANCAMENTOS}/ImportLancamentos")
    wider = _admitted(policies, labels, fiscal, "")
    assert wider == FISCAL_BOOKS | {f"{LANCAMENTOS}/ImportLancamentos"}
