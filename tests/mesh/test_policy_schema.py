"""The schema rejects what a typo or a wrong type would otherwise turn into a default."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mesh.durations import Duration
from mesh.policy import MeshPolicy
from mesh.values import PolicyError, Values, policy_from_values


def problems(values: Values) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as raised:
        policy_from_values(values)
    return raised.value.problems


def test_default_values_load(policy: MeshPolicy) -> None:
    consolidado = policy.upstreams["consolidado"]
    assert consolidado.timeout == Duration(2000)
    assert consolidado.retries.per_try_timeout == Duration(500)
    assert list(consolidado.route_classes) == ["reads", "ingest", "reconcile"]
    assert len(policy.topology.services["consolidado"].replicas) == 2


def test_unknown_key_is_an_error(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.upstreams.consolidado.outlierDetection.consecutive5xxError=3")
    found = problems(values)
    assert (
        "mesh.upstreams.consolidado.outlierDetection.consecutive5xxError",
        "Extra inputs are not permitted",
    ) in found


def test_snake_case_spelling_is_not_accepted(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.upstreams.consolidado.connectionPool.max_retries=10")
    assert any(path.endswith("connectionPool.max_retries") for path, _ in problems(values))


def test_wrong_type_is_an_error(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.upstreams.consolidado.connectionPool.maxRequests=lots")
    [(path, message)] = problems(values)
    assert path == "mesh.upstreams.consolidado.connectionPool.maxRequests"
    assert "integer" in message


def test_numeric_string_is_not_silently_an_int(values_with: Callable[..., Values]) -> None:
    values = values_with('mesh.upstreams.consolidado.connectionPool.maxRequests="512"')
    assert problems(values)


@pytest.mark.parametrize("bad", ["5", "250", "5 s", "fast", "1.0001ms", "-1s"])
def test_bad_duration_is_an_error(values_with: Callable[..., Values], bad: str) -> None:
    values = values_with(f"mesh.upstreams.consolidado.timeout={bad}")
    [(path, message)] = problems(values)
    assert path == "mesh.upstreams.consolidado.timeout"
    assert "duration" in message or "millisecond" in message


def test_unknown_retry_condition_is_an_error(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.upstreams.consolidado.retries.retryOn[0]=unavailible")
    [(path, _)] = problems(values)
    assert path == "mesh.upstreams.consolidado.retries.retryOn[0]"


def test_method_must_be_a_full_grpc_name(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.upstreams.consolidado.routeClasses.reads.methods[0]=GetDailyBalance")
    [(path, message)] = problems(values)
    assert path == "mesh.upstreams.consolidado.routeClasses.reads.methods[0]"
    assert "package.Service/Method" in message


def test_a_method_belongs_to_one_class(values_with: Callable[..., Values]) -> None:
    values = values_with(
        "mesh.upstreams.consolidado.routeClasses.ingest.methods[0]="
        "consolidado.v1.ConsolidadoService/GetDailyBalance"
    )
    [(_, message)] = problems(values)
    assert "belongs to one class" in message


def test_public_service_must_be_served(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.gateway.publicServices[1]=estoque.v1.EstoqueService")
    [(_, message)] = problems(values)
    assert "estoque.v1.EstoqueService" in message


def test_zero_max_ejection_percent_is_rejected(values_with: Callable[..., Values]) -> None:
    # Istio drops 0 and Envoy then uses 10%: the value would not mean what it says.
    values = values_with("mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent=0")
    [(path, _)] = problems(values)
    assert path == "mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent"


def test_local_ports_must_be_distinct(values_with: Callable[..., Values]) -> None:
    values = values_with("mesh.localTopology.gateway.adminPort=15001")
    [(_, message)] = problems(values)
    assert "15001" in message
