"""The gateway Envoy: one listener for gRPC and REST/JSON in front of the public services."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mesh.effective import gateway_routes
from mesh.envoy_fields import JSON
from mesh.policy import LocalJwt, MeshPolicy
from mesh.render import common, mtls, rate_limit
from mesh.render.local_replies import local_reply_config
from mesh.render.rest_fields import rest_fields_filter, rest_fields_source

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
TRANSCODER_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
)
STAT_PREFIX = "gateway"
TRACE_ID_HEADER = "x-trace-id"
FILTER_CONFIG_TYPE = "type.googleapis.com/envoy.config.route.v3.FilterConfig"


def transcoder_filter(descriptor: Path, services: Sequence[str], max_request_bytes: int) -> JSON:
    return {
        "name": TRANSCODER,
        "typed_config": {
            "@type": TRANSCODER_TYPE,
            "proto_descriptor": str(descriptor),
            "services": list(services),
            # Errors reach REST clients as HTTP codes with a google.rpc.Status JSON body.
            "convert_grpc_status": True,
            # Beyond it, 413 before the body reaches a service (fiscal's XML documents).
            "max_request_body_size": max_request_bytes,
            # Stable output: zeros and empty strings are printed, names are the proto's.
            "print_options": {
                "always_print_primitive_fields": True,
                "preserve_proto_field_names": True,
            },
            # Unknown paths get 404 and typo'd query parameters 400, not silent passthrough;
            # a body field may not override the merchant or entry named in the path.
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
                "reject_binding_body_field_collisions": True,
            },
        },
    }


OPENAPI_PATH = "/openapi.json"
OPENAPI_MAX_BYTES = 1024 * 1024
JWT_AUTHN = "envoy.filters.http.jwt_authn"
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
JWT_PROVIDER = "caixa"
# Needing no token: load balancers' health checks and the API's own description.
UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/",)


def jwt_authn_filter(jwt: LocalJwt, *, merchants_header: bool = False) -> JSON:
    """The cluster's RequestAuthentication and require-JWT policy, locally. The
    token is forwarded: every service verifies it again. `merchants_header`: copy
    the verified `merchants` claim for the per-merchant rate limit, as the chart's
    `outputClaimToHeaders` does.

    The open paths still run the provider, with a missing token allowed, as Istio's
    RequestAuthentication does on every path: a rule with no requirement would skip
    the provider, and with it the removal of a client's own copy of the claim header."""
    token_if_any: JSON = {
        "requires_any": {"requirements": [{"provider_name": JWT_PROVIDER}, {"allow_missing": {}}]}
    }
    open_paths: list[JSON] = [
        {"match": {"prefix": p}, "requires": token_if_any} for p in UNAUTHENTICATED_PREFIXES
    ]
    open_paths.append({"match": {"path": OPENAPI_PATH}, "requires": token_if_any})
    claims: JSON = {}
    if merchants_header:
        claims["claim_to_headers"] = [
            {"header_name": rate_limit.MERCHANTS_HEADER, "claim_name": "merchants"}
        ]
    return {
        "name": JWT_AUTHN,
        "typed_config": {
            "@type": JWT_AUTHN_TYPE,
            "providers": {
                JWT_PROVIDER: {
                    "issuer": jwt.issuer,
                    "audiences": list(jwt.audiences),
                    "local_jwks": {"filename": jwt.jwks_file},
                    "forward": True,
                    # The header only: no `access_token` query parameter, which
                    # the services would not accept and logs would keep.
                    "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                    **claims,
                }
            },
            "rules": [
                *open_paths,
                {"match": {"prefix": "/"}, "requires": {"provider_name": JWT_PROVIDER}},
            ],
        },
    }


def openapi_route(document: Path) -> JSON:
    """Serves the REST surface's OpenAPI document. The transcoder would reject the
    path as an unknown method, so it is switched off for this route."""
    return {
        "name": "openapi",
        "match": {
            "path": OPENAPI_PATH,
            "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
        },
        "direct_response": {"status": 200, "body": {"filename": str(document)}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": "application/json"}}
        ],
        "typed_per_filter_config": {
            TRANSCODER: {"@type": FILTER_CONFIG_TYPE, "disabled": True},
        },
    }


def gateway_routes_config(policy: MeshPolicy, openapi: Path | None = None) -> list[JSON]:
    routes: list[JSON] = [openapi_route(openapi)] if openapi is not None else []
    for route in gateway_routes(policy):
        extra: JSON = {}
        if route.rate_limit is not None:
            stat_prefix = f"{route.upstream}_{route.name}".replace("-", "_")
            extra["typed_per_filter_config"] = rate_limit.per_route(stat_prefix, route.rate_limit)
        routes.append(common.route_entry(route, route.upstream, extra))
    routes.append(common.not_found_route())
    return routes


def gateway_clusters(policy: MeshPolicy) -> list[JSON]:
    """The gateway reaches each replica through its inbound sidecar, as in Istio."""
    topology = policy.topology
    used = dict.fromkeys(r.upstream for r in gateway_routes(policy))
    return [
        common.outbound_cluster(
            name,
            policy.upstreams[name],
            topology.address,
            [r.inbound_port for r in topology.services[name].replicas],
            mtls.upstream_socket(topology.mtls, mtls.GATEWAY, name) if topology.mtls else None,
        )
        for name in used
    ]


def render_gateway(
    policy: MeshPolicy, descriptor: Path, methods: Sequence[str], openapi: Path | None = None
) -> JSON:
    """`methods`: the public methods to count per grpc-status (see grpc_stats_filter);
    `openapi`: the document to serve at /openapi.json."""
    topology = policy.topology
    # Order matters: a request without a valid token is refused first (grpc_stats
    # does not count those; the jwt_authn stats do); the REST field check reads the
    # JSON the transcoder would drop fields of; the transcoder rewrites REST into a
    # gRPC path, so the route (and its rate limit) is chosen by method; grpc_stats
    # then sees every other answer, local rate-limit replies included. The
    # per-merchant limit keys on the verified claim, so it needs jwt_authn.
    services = policy.gateway.public_services
    per_merchant = policy.gateway.merchant_rate_limit if topology.jwt is not None else None
    checks = []
    if topology.jwt is not None:
        checks.append(jwt_authn_filter(topology.jwt, merchants_header=per_merchant is not None))
    if per_merchant is not None:
        checks.append(rate_limit.merchant_filter(per_merchant))
    filters = [
        *checks,
        rest_fields_filter(rest_fields_source(descriptor, services)),
        transcoder_filter(descriptor, services, policy.gateway.max_request_bytes),
        common.grpc_stats_filter(methods),
        rate_limit.hcm_filter(f"{STAT_PREFIX}_rate_limit"),
        common.router_filter(),
    ]
    traced = common.local_tracing(policy, "gateway")
    hcm = common.http_connection_manager(
        STAT_PREFIX,
        gateway_routes_config(policy, openapi),
        filters,
        edge=True,
        local_replies=local_reply_config(),
        max_direct_response_bytes=OPENAPI_MAX_BYTES if openapi is not None else None,
        traced=traced.hcm if traced else None,
    )
    if per_merchant is not None:
        hcm["typed_config"]["route_config"]["request_headers_to_remove"] = [
            rate_limit.MERCHANTS_HEADER
        ]
    if traced is not None:
        # Every answer names its trace, so a caller can ask `caixa trace ID`.
        hcm["typed_config"]["route_config"]["response_headers_to_add"] = [
            {"header": {"key": TRACE_ID_HEADER, "value": "%TRACE_ID%"}}
        ]
    return common.bootstrap(
        "gateway",
        topology.gateway.admin_port,
        [common.listener("gateway", topology.address, topology.gateway.port, hcm)],
        gateway_clusters(policy),
        traced,
    )
