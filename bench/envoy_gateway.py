"""A minimal Envoy REST gateway for the benchmarks: gRPC-JSON transcoding in
front of lancamentos and consolidado, so wrk can send creates whose
request_id differs per request (h2load repeats one body).

The full, policy-driven gateway of the local mesh replaces this; the bench
also measures this hop against direct calls to report its cost separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
_TRANSCODER = (
    "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
)
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _cluster(name: str, ports: list[int]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _HTTP_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        # Benchmarks must measure the services, not Envoy's default limit of 1024.
        "circuit_breakers": {
            "thresholds": [{"max_requests": 100000, "max_pending_requests": 100000}]
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": p}
                                }
                            }
                        }
                        for p in ports
                    ]
                }
            ],
        },
    }


def config(
    *, port: int, admin_port: int, descriptor: Path, lancamentos: int, consolidado: list[int]
) -> dict[str, Any]:
    routes = [
        {
            "match": {"prefix": "/lancamentos.v1.LancamentosService/"},
            "route": {"cluster": "lancamentos", "timeout": "10s"},
        },
        {
            "match": {"prefix": "/consolidado.v1.ConsolidadoService/"},
            "route": {"cluster": "consolidado", "timeout": "10s"},
        },
    ]
    return {
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": _HCM,
                                        "stat_prefix": "gateway",
                                        "codec_type": "AUTO",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "caixa",
                                                    "domains": ["*"],
                                                    "routes": routes,
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.grpc_json_transcoder",
                                                "typed_config": {
                                                    "@type": _TRANSCODER,
                                                    "proto_descriptor": str(descriptor),
                                                    "services": [
                                                        "lancamentos.v1.LancamentosService",
                                                        "consolidado.v1.ConsolidadoService",
                                                    ],
                                                    "convert_grpc_status": True,
                                                    "print_options": {
                                                        "always_print_primitive_fields": True,
                                                        "preserve_proto_field_names": True,
                                                    },
                                                },
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {"@type": _ROUTER},
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                _cluster("lancamentos", [lancamentos]),
                _cluster("consolidado", consolidado),
            ],
        },
    }
