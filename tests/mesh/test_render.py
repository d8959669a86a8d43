"""What the rendered local Envoy configs contain (the real Envoy validates them elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.policy import MeshPolicy
from mesh.render import LocalEnvoy, local_envoys
from mesh.render.common import OTEL_TRACER, TRACE_COLLECTOR
from mesh.values import load_policy
from tests.support.paths import DESCRIPTOR, VALUES, VALUES_LOCAL
from tooling.devstack.auth import gateway_jwt_sets


@pytest.fixture(scope="module")
def envoys(policy: MeshPolicy, descriptor: Path) -> dict[str, LocalEnvoy]:
    return {e.name: e for e in local_envoys(policy, descriptor)}


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    typed: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return typed


def routes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    virtual_host = hcm(config)["route_config"]["virtual_hosts"][0]
    return {r["name"]: r for r in virtual_host["routes"]}


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        c for c in config["static_resources"]["clusters"] if c["name"] == name
    )
    return found


def ports(cluster_config: dict[str, Any]) -> list[int]:
    endpoints = cluster_config["load_assignment"]["endpoints"][0]["lb_endpoints"]
    return [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints]


def test_every_admin_is_on_loopback(envoys: dict[str, LocalEnvoy]) -> None:
    assert set(envoys) == {
        "gateway",
        "egress-dispatcher",
        "egress-fiscal",
        "inbound-lancamentos-0",
        "inbound-consolidado-0",
        "inbound-consolidado-1",
        "inbound-fiscal-0",
        "inbound-fiscal-1",
    }
    for envoy in envoys.values():
        address = envoy.config["admin"]["address"]["socket_address"]
        assert address == {"address": "127.0.0.1", "port_value": envoy.admin_port}


def test_gateway_transcoder(envoys: dict[str, LocalEnvoy], descriptor: Path) -> None:
    filters = hcm(envoys["gateway"].config)["http_filters"]
    assert [f["name"] for f in filters] == [
        "envoy.filters.http.lua",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.grpc_stats",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.router",
    ]
    transcoder = filters[1]["typed_config"]
    assert transcoder["services"] == [
        "lancamentos.v1.LancamentosService",
        "consolidado.v1.ConsolidadoService",
        "fiscal.v1.FiscalService",
    ]
    assert transcoder["max_request_body_size"] == 5 * 1024 * 1024
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["print_options"] == {
        "always_print_primitive_fields": True,
        "preserve_proto_field_names": True,
    }
    assert transcoder["request_validation_options"] == {
        "reject_unknown_method": True,
        "reject_unknown_query_parameters": True,
        "reject_binding_body_field_collisions": True,
    }
    assert transcoder["proto_descriptor"] == str(descriptor)
    stats = filters[2]["typed_config"]
    assert stats["emit_filter_state"] is True
    assert stats["enable_upstream_stats"] is True


def test_gateway_routes(envoys: dict[str, LocalEnvoy]) -> None:
    table = routes(envoys["gateway"].config)
    assert list(table)[-1] == "not-found"
    assert table["not-found"]["direct_response"]["status"] == 404
    assert not any("Ingest" in str(r.get("match")) for r in table.values())
    reads = table["consolidado.reads"]
    limit = reads["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
    assert limit["token_bucket"] == {
        "max_tokens": 10000,
        "tokens_per_fill": 250,
        "fill_interval": "0.050s",
    }
    assert limit["rate_limited_as_resource_exhausted"] is True
    assert reads["route"]["retry_policy"]["num_retries"] == 2
    assert "retry_policy" not in table["lancamentos.import"]["route"]
    assert table["lancamentos.change-feed"]["route"]["timeout"] == "0s"
    limited = [name for name, r in table.items() if "typed_per_filter_config" in r]
    assert limited == ["consolidado.reads"]


def test_gateway_reaches_replicas_through_inbound_sidecars(
    envoys: dict[str, LocalEnvoy],
) -> None:
    assert ports(cluster(envoys["gateway"].config, "consolidado")) == [15052, 15053]
    assert ports(cluster(envoys["gateway"].config, "lancamentos")) == [15051]


def test_access_log_is_json_on_stdout(envoys: dict[str, LocalEnvoy]) -> None:
    for envoy in envoys.values():
        [log] = hcm(envoy.config)["access_log"]
        assert log["name"] == "envoy.access_loggers.stdout"
        assert "grpc_status" in log["typed_config"]["log_format"]["json_format"]


def test_dispatcher_egress(envoys: dict[str, LocalEnvoy]) -> None:
    config = envoys["egress-dispatcher"].config
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener == {"address": "127.0.0.1", "port_value": 15001}
    consolidado = cluster(config, "consolidado")
    assert ports(consolidado) == [15052, 15053]
    assert consolidado["circuit_breakers"]["thresholds"][0]["max_requests"] == 512
    assert consolidado["outlier_detection"]["enforcing_consecutive_gateway_failure"] == 100
    [health] = consolidado["health_checks"]
    assert health["grpc_health_check"] == {"service_name": ""}
    ingest = routes(config)["consolidado.ingest"]
    assert ingest["match"] == {"path": "/consolidado.v1.ConsolidadoIngestService/ApplyLancamentos"}
    assert ingest["route"]["retry_policy"]["per_try_timeout"] == "1.500s"
    # Besides the upstream: only where its spans go (see test_every_envoy_traces_...).
    names = [c["name"] for c in config["static_resources"]["clusters"]]
    assert names == ["consolidado", TRACE_COLLECTOR]


def test_inbound_sidecar_is_istio_inbound(envoys: dict[str, LocalEnvoy]) -> None:
    config = envoys["inbound-consolidado-1"].config
    table = routes(config)
    assert list(table) == ["health", "default"]
    to_app = {"cluster": "inbound|50053||", "timeout": "0s", "max_grpc_timeout": "0s"}
    assert table["default"]["route"] == to_app
    # Probes bypass the app's pool, as kubelet's do through pilot-agent.
    assert table["health"]["match"] == {"prefix": "/grpc.health.v1.Health/"}
    assert table["health"]["route"] == {**to_app, "priority": "HIGH"}
    app = cluster(config, "inbound|50053||")
    assert ports(app) == [50053]
    assert "outlier_detection" not in app
    assert app["circuit_breakers"]["thresholds"][0]["max_connections"] == 64


def test_gateway_local_replies_are_json_for_rest_only(envoys: dict[str, LocalEnvoy]) -> None:
    mappers = hcm(envoys["gateway"].config)["local_reply_config"]["mappers"]
    bodies = [m["body_format_override"]["json_format"]["code"] for m in mappers]
    assert bodies == [3, 16, 7, 5, 8, 8, 14, 14, 4, 2]
    assert "local_reply_config" not in hcm(envoys["egress-dispatcher"].config)


def test_the_gateway_checks_tokens_when_given_a_jwks(tmp_path: Path) -> None:
    policy = load_policy([VALUES, VALUES_LOCAL], gateway_jwt_sets(tmp_path / ".devstack"))
    envoys = {e.name: e for e in local_envoys(policy, DESCRIPTOR)}
    filters = hcm(envoys["gateway"].config)["http_filters"]
    assert filters[0]["name"] == "envoy.filters.http.jwt_authn", [f["name"] for f in filters]
    config = filters[0]["typed_config"]
    [provider] = config["providers"].values()
    assert provider["local_jwks"] == {"filename": str(tmp_path / ".devstack/auth/jwks.json")}
    assert provider["forward"] is True  # the services verify the token again
    # The Authorization header only: never an access_token query parameter.
    assert provider["from_headers"] == [{"name": "authorization", "value_prefix": "Bearer "}]
    assert (provider["issuer"], provider["audiences"]) == ("caixa-dev", ["caixa"])
    # A token everywhere but health and the document, where one is checked if sent.
    required = [r["match"] for r in config["rules"] if "provider_name" in r["requires"]]
    assert required == [{"prefix": "/"}]
    optional = [r["match"] for r in config["rules"] if "requires_any" in r["requires"]]
    assert optional == [{"prefix": "/grpc.health.v1.Health/"}, {"path": "/openapi.json"}]
    for rule in config["rules"]:
        if "requires_any" in rule["requires"]:
            assert {"allow_missing": {}} in rule["requires"]["requires_any"]["requirements"]
    # Without a JWKS no token is checked at the gateway (the services still check).
    plain = {e.name: e for e in local_envoys(load_policy([VALUES, VALUES_LOCAL]), DESCRIPTOR)}
    names = [f["name"] for f in hcm(plain["gateway"].config)["http_filters"]]
    assert "envoy.filters.http.jwt_authn" not in names


def test_every_envoy_traces_to_the_local_receiver(envoys: dict[str, LocalEnvoy]) -> None:
    """Each local Envoy names itself in its spans, samples as the policy says
    (100 % locally), exports to the receiver's OTLP port within half a second,
    and the front Envoys' health checks through the inbound sidecars are never
    traced."""
    for name, envoy in envoys.items():
        tracing = hcm(envoy.config)["tracing"]
        assert tracing["random_sampling"] == {"value": 100.0}, name
        provider = tracing["provider"]
        assert provider["name"] == OTEL_TRACER
        assert provider["typed_config"]["service_name"] == name
        assert provider["typed_config"]["grpc_service"]["envoy_grpc"] == {
            "cluster_name": TRACE_COLLECTOR
        }
        assert ports(cluster(envoy.config, TRACE_COLLECTOR)) == [15017], name
        layers = {x["name"]: x["static_layer"] for x in envoy.config["layered_runtime"]["layers"]}
        assert layers["tracing"] == {"tracing.opentelemetry.flush_interval_ms": 500}
        # As Istio's bootstrap: a route class's regex of several methods loads.
        assert layers["regex"] == {"re2.max_program_size.error_level": 32768}
    for name in ("inbound-lancamentos-0", "inbound-consolidado-0", "inbound-consolidado-1"):
        health = routes(envoys[name].config)["health"]
        assert health["tracing"] == {"overall_sampling": {"numerator": 0}}, name
    # The gateway tells every caller its trace; the egress sidecar's spans say egress.
    added = hcm(envoys["gateway"].config)["route_config"]["response_headers_to_add"]
    assert added == [{"header": {"key": "x-trace-id", "value": "%TRACE_ID%"}}]
    [listener] = envoys["egress-dispatcher"].config["static_resources"]["listeners"]
    assert listener["traffic_direction"] == "OUTBOUND"


def test_without_a_receiver_no_envoy_traces() -> None:
    policy = load_policy([VALUES, VALUES_LOCAL], ["mesh.localTopology.traces=null"])
    for envoy in local_envoys(policy, DESCRIPTOR):
        assert "tracing" not in hcm(envoy.config), envoy.name
        layers = [x["name"] for x in envoy.config["layered_runtime"]["layers"]]
        assert layers == ["regex"], envoy.name
        names = [c["name"] for c in envoy.config["static_resources"]["clusters"]]
        assert TRACE_COLLECTOR not in names
    route_config = hcm(local_envoys(policy, DESCRIPTOR)[0].config)["route_config"]
    assert "response_headers_to_add" not in route_config
