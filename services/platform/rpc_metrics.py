"""Per-RPC Prometheus metrics, recorded by the error-mapping wrapper, which is
where every call's final status is known. Benchmarks count successes here,
by grpc-status, never by HTTP status."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

HANDLED = Counter(
    "caixa_grpc_server_handled_total",
    "RPCs completed, by method and gRPC status code",
    ["method", "code"],
)
LATENCY = Histogram(
    "caixa_grpc_server_handling_seconds",
    "Time from handler start to its last message, by method",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe(method: str, code: str, seconds: float) -> None:
    HANDLED.labels(method, code).inc()
    LATENCY.labels(method).observe(seconds)


def serve_metrics(host: str, port: int) -> int:
    """Starts the /metrics HTTP endpoint; returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_address[1])
