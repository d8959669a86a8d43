"""The Istio→Envoy mapping gives the documented Envoy fields (mesh/README.md's table)."""

from __future__ import annotations

from typing import Any

from mesh import envoy_fields
from mesh.durations import Duration
from mesh.policy import ConnectionPool, OutlierDetection, Retries
from tests.support.paths import REPO_ROOT

POOL = ConnectionPool.model_validate(
    {
        "maxConnections": 10,
        "maxPendingRequests": 20,
        "maxRequests": 30,
        "maxRetries": 40,
        "connectTimeout": "250ms",
    }
)
DETECTION = OutlierDetection.model_validate(
    {
        "consecutive5xxErrors": 5,
        "enforcingConsecutive5xxErrors": 100,
        "consecutiveGatewayErrors": 2,
        "enforcingConsecutiveGatewayErrors": 100,
        "interval": "1s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 50,
    }
)


def retries(**fields: Any) -> Retries:
    return Retries.model_validate({"attempts": 2, **fields})


def test_connection_pool_to_circuit_breakers() -> None:
    assert envoy_fields.connection_pool_fields(POOL) == {
        "connect_timeout": "0.250s",
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": 10,
                    "max_pending_requests": 20,
                    "max_requests": 30,
                    "max_retries": 40,
                    "track_remaining": True,
                }
            ]
        },
    }


def test_outlier_detection_fields() -> None:
    assert envoy_fields.outlier_detection(DETECTION) == {
        "consecutive_5xx": 5,
        "enforcing_consecutive_5xx": 100,
        "consecutive_gateway_failure": 2,
        "enforcing_consecutive_gateway_failure": 100,
        "interval": "1s",
        "base_ejection_time": "30s",
        "max_ejection_percent": 50,
        "enforcing_success_rate": 0,
    }


def test_outlier_detection_turns_panic_routing_off() -> None:
    fields = envoy_fields.outbound_cluster_fields(POOL, DETECTION, None)
    assert fields["common_lb_config"] == {"healthy_panic_threshold": {"value": 0}}
    assert fields["lb_policy"] == "LEAST_REQUEST"
    assert "health_checks" not in fields


def test_istio_enforcing_rule() -> None:
    assert envoy_fields.istio_enforcing(3) == 100
    assert envoy_fields.istio_enforcing(0) == 0


def test_route_timeout_caps_grpc_timeout_header() -> None:
    assert envoy_fields.route_timeout_fields(Duration(2000)) == {
        "timeout": "2s",
        "max_grpc_timeout": "2s",
    }


def test_retry_policy_as_istio_converts_it() -> None:
    policy = envoy_fields.retry_policy(
        retries(
            perTryTimeout="500ms",
            retryOn=["unavailable", "reset"],
            backoff={"baseInterval": "25ms"},
            retryRemoteLocalities=True,
        )
    )
    assert policy == {
        "num_retries": 2,
        "retry_on": "unavailable,reset",
        "per_try_timeout": "0.500s",
        "host_selection_retry_max_attempts": 5,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": envoy_fields.PREVIOUS_HOSTS_TYPE},
            }
        ],
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {"@type": envoy_fields.PREVIOUS_PRIORITIES_TYPE, "update_frequency": 2},
        },
        "retry_back_off": {"base_interval": "0.025s"},
    }


def test_retry_on_defaults_to_istios() -> None:
    policy = envoy_fields.retry_policy(retries(perTryTimeout="1s"))
    assert policy is not None
    assert policy["retry_on"] == envoy_fields.ISTIO_DEFAULT_RETRY_ON
    assert policy["retriable_status_codes"] == [503]


def test_no_previous_hosts_predicate_when_asked() -> None:
    policy = envoy_fields.retry_policy(retries(retryOtherHosts=False))
    assert policy is not None
    assert "retry_host_predicate" not in policy
    assert policy["host_selection_retry_max_attempts"] == 5


def test_zero_attempts_means_no_retry_policy() -> None:
    assert envoy_fields.retry_policy(Retries.model_validate({"attempts": 0})) is None
    fields = envoy_fields.route_action_fields(Duration(0), Retries.model_validate({"attempts": 0}))
    assert fields == {"timeout": "0s", "max_grpc_timeout": "0s"}


def test_backoff_cap_is_local_only() -> None:
    policy = envoy_fields.retry_policy(
        retries(backoff={"baseInterval": "25ms", "maxInterval": "250ms"})
    )
    assert policy is not None
    assert policy["retry_back_off"] == {"base_interval": "0.025s", "max_interval": "0.250s"}


def _keys(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        return {k for k in tree if not k.startswith("@")} | {
            key for value in tree.values() for key in _keys(value)
        }
    if isinstance(tree, list):
        return {key for item in tree for key in _keys(item)}
    return set()


def test_readme_table_names_every_mapped_field() -> None:
    readme = (REPO_ROOT / "mesh" / "README.md").read_text()
    full_retries = retries(
        perTryTimeout="1s",
        backoff={"baseInterval": "25ms", "maxInterval": "250ms"},
        retryRemoteLocalities=True,
    )
    produced = (
        _keys(envoy_fields.outbound_cluster_fields(POOL, DETECTION, None))
        | _keys(envoy_fields.route_action_fields(Duration(1000), full_retries))
        | _keys(envoy_fields.retry_policy(retries()))
    )
    missing = sorted(
        k for k in produced - {"thresholds", "value", "name", "typed_config"} if k not in readme
    )
    assert missing == []
