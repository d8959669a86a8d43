"""Each linter rule, caught on a deliberately unsafe values overlay (tests/mesh/unsafe/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.lint import (
    Finding,
    ejectable_hosts,
    lint,
    worst_backoff,
)
from mesh.methods import MethodShape
from mesh.policy import Backoff, MeshPolicy
from mesh.values import load_values, policy_from_values, replica_counts
from tests.support.paths import VALUES, VALUES_LOCAL

UNSAFE = Path(__file__).parent / "unsafe"


def lint_overlay(name: str, shapes: dict[str, MethodShape]) -> list[Finding]:
    values = load_values([VALUES, VALUES_LOCAL, UNSAFE / f"{name}.yaml"])
    policy = policy_from_values(values)
    return lint(policy, replica_counts(values, policy), shapes)


def test_default_values_lint_clean(
    policy: MeshPolicy, shapes: dict[str, MethodShape], base_values: dict[str, object]
) -> None:
    assert lint(policy, replica_counts(base_values, policy), shapes) == []


def test_cloud_values_alone_lint_clean(shapes: dict[str, MethodShape]) -> None:
    values = load_values([VALUES])
    policy = policy_from_values(values)
    assert lint(policy, replica_counts(values, policy), shapes) == []


@pytest.mark.parametrize(
    ("overlay", "rule", "path"),
    [
        ("retry-budget", "retry-budget", "mesh.upstreams.consolidado.retries"),
        (
            "retry-non-idempotent",
            "retry-non-idempotent",
            "mesh.upstreams.lancamentos.routeClasses.import.retries",
        ),
        (
            "per-try-timeout-missing",
            "per-try-timeout-missing",
            "mesh.upstreams.consolidado.routeClasses.ingest.retries.perTryTimeout",
        ),
        (
            "retry-capacity-too-large",
            "retry-capacity-too-large",
            "mesh.upstreams.consolidado.retryBudget.percent",
        ),
        (
            "retry-capacity-without-budget",
            "retry-capacity-too-large",
            "mesh.upstreams.consolidado.connectionPool.maxRetries",
        ),
        (
            "outlier-ejects-all",
            "outlier-ejects-all",
            "mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent",
        ),
        (
            "outlier-ejects-all-single-replica",
            "outlier-ejects-all",
            "mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent",
        ),
        (
            "outlier-never-ejects",
            "outlier-never-ejects",
            "mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent",
        ),
        (
            "rate-limit-below-report-peak",
            "rate-limit-below-report-peak",
            "mesh.upstreams.consolidado.routeClasses.reads.rateLimit",
        ),
        (
            "merchant-rate-limit-below-report-peak",
            "merchant-rate-limit-below-report-peak",
            "mesh.gateway.merchantRateLimit",
        ),
        (
            "merchant-rate-limit-never-binds",
            "merchant-rate-limit-never-binds",
            "mesh.gateway.merchantRateLimit.tokensPerSecond",
        ),
        (
            "outlier-ejects-on-app-errors",
            "outlier-ejects-on-app-errors",
            "mesh.upstreams.consolidado.outlierDetection.consecutive5xxErrors",
        ),
        (
            "min-health-percent-missing",
            "min-health-percent-missing",
            "mesh.upstreams.consolidado.outlierDetection.minHealthPercent",
        ),
        (
            "istio-parity",
            "istio-parity",
            "mesh.upstreams.consolidado.outlierDetection.enforcingConsecutiveGatewayErrors",
        ),
        (
            "unknown-method",
            "unknown-method",
            "mesh.upstreams.consolidado.routeClasses.reads.methods[1]",
        ),
        (
            "locality-failover-needs-outlier-detection",
            "locality-failover-needs-outlier-detection",
            "mesh.upstreams.consolidado.localityFailover",
        ),
        (
            "retry-streaming",
            "retry-streaming",
            "mesh.upstreams.lancamentos.routeClasses.change-feed",
        ),
        (
            "locality-failover-ejection-cap",
            "locality-failover-ejection-cap",
            "mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent",
        ),
        (
            "locality-lb-pins-zone",
            "locality-lb-pins-zone",
            "mesh.upstreams.consolidado.localityFailover",
        ),
    ],
)
def test_unsafe_overlay_is_caught(
    overlay: str, rule: str, path: str, shapes: dict[str, MethodShape]
) -> None:
    findings = lint_overlay(overlay, shapes)
    assert [(f.rule, f.path) for f in findings if f.rule == rule] == [(rule, path)], findings
    for finding in findings:
        assert finding.fix and finding.message
        assert str(finding).startswith(f"{finding.path}: ")
        assert "(fix: " in str(finding)


def test_non_idempotent_and_streaming_both_reported(shapes: dict[str, MethodShape]) -> None:
    rules = {f.rule for f in lint_overlay("retry-non-idempotent", shapes)}
    assert rules == {"retry-non-idempotent", "retry-streaming"}


def test_retry_budget_message_shows_the_arithmetic(shapes: dict[str, MethodShape]) -> None:
    [finding] = [f for f in lint_overlay("retry-budget", shapes) if f.rule == "retry-budget"]
    assert "3 tries × perTryTimeout 1s + up to 100ms backoff = 3100ms" in finding.message


def test_without_descriptor_method_checks_are_skipped() -> None:
    values = load_values([VALUES, VALUES_LOCAL, UNSAFE / "unknown-method.yaml"])
    policy = policy_from_values(values)
    assert lint(policy, replica_counts(values, policy), None) == []


def test_formulas() -> None:
    backoff = Backoff.model_validate({"baseInterval": "25ms", "maxInterval": "100ms"})
    # retry 1 waits ≤ 25ms, retry 2 ≤ 75ms, retry 3 ≤ min(175, 100) = 100ms
    assert worst_backoff(backoff, 3).millis == 200
    assert ejectable_hosts(2, 50) == 1
    assert ejectable_hosts(2, 49) == 0
    assert ejectable_hosts(3, 100) == 3


def test_ranking_by_zone_still_pins_callers_to_their_zone(shapes: dict[str, MethodShape]) -> None:
    values = load_values(
        [VALUES, VALUES_LOCAL],
        [
            "mesh.upstreams.consolidado.localityFailover.failoverPriority[0]=topology.kubernetes.io/zone"
        ],
    )
    policy = policy_from_values(values)
    findings = lint(policy, replica_counts(values, policy), shapes)
    assert [f.rule for f in findings] == ["locality-lb-pins-zone"]
