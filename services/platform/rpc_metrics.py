"""Per-RPC Prometheus metrics under the gRPC ecosystem's names and labels
(`grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code}`,
as go-grpc-prometheus and py-grpc-prometheus export them), so stock gRPC
dashboards work. Recorded by the error-mapping wrapper, which is where every
call's final status is known. Benchmarks count successes here, by grpc-status,
never by HTTP status."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_LABELS = ["grpc_type", "grpc_service", "grpc_method"]
STARTED = Counter("grpc_server_started_total", "RPCs started on the server", _LABELS)
HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, whatever their status",
    [*_LABELS, "grpc_code"],
)
IN_FLIGHT = Gauge("grpc_server_in_flight", "RPCs being handled now", _LABELS)
LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time from the call's start to its status, by method",
    _LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@dataclass(frozen=True)
class MethodMetrics:
    """One method's series, their labels resolved once."""

    labels: tuple[str, str, str]

    def started(self) -> float:
        STARTED.labels(*self.labels).inc()
        IN_FLIGHT.labels(*self.labels).inc()
        return time.perf_counter()

    def handled(self, code: str, started: float) -> None:
        HANDLED.labels(*self.labels, code).inc()
        LATENCY.labels(*self.labels).observe(time.perf_counter() - started)
        IN_FLIGHT.labels(*self.labels).dec()


def for_method(method: str, grpc_type: str) -> MethodMetrics:
    """`method` is the gRPC path, `/package.Service/Method`; `grpc_type` one of
    unary, client_stream, server_stream, bidi_stream."""
    service, _, name = method.lstrip("/").partition("/")
    return MethodMetrics((grpc_type, service, name))


def serve_metrics(host: str, port: int) -> int:
    """Starts the /metrics HTTP endpoint; returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_address[1])
