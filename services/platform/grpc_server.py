"""gRPC server bootstrap shared by every service: health, reflection, error
mapping, readiness probing and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.platform import rpc_metrics
from services.platform.error_mapping import ErrorMappingInterceptor
from services.platform.guard import Guard
from services.platform.tasks import cancel_and_wait
from services.platform.tracing import Tracing

log = logging.getLogger(__name__)

Registrar = Callable[[grpc.aio.Server], None]
ReadinessProbe = Callable[[], Awaitable[None]]

# SERVING for as long as the process can answer: what liveness and startup probes ask.
# The overall "" status (readiness) also needs the dependencies, and a dead database must
# take a pod out of the endpoints, not restart it.
LIVENESS_SERVICE = "liveness"

_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
]


class GrpcServer:
    """A grpc.aio server with the standard services every Caixa service exposes.

    `service_names` are the fully-qualified names registered by `registrars`;
    each gets a health status, driven by `readiness_probe` (e.g. a database
    ping): NOT_SERVING while it fails, so the mesh stops routing here.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        service_names: Sequence[str],
        registrars: Sequence[Registrar],
        readiness_probe: ReadinessProbe | None = None,
        probe_interval: float = 2.0,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
        metrics_port: int | None = None,
        guard: Guard | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        # Tracing outermost: its span covers the whole call and sees the status
        # the error mapping sets.
        traced = tracing.server_interceptors() if tracing is not None else []
        self._server = grpc.aio.server(
            interceptors=[*traced, *interceptors, ErrorMappingInterceptor(guard)],
            options=_SERVER_OPTIONS,
        )
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._service_names = list(service_names)
        self._probe = readiness_probe
        self._probe_interval = probe_interval
        self._probe_task: asyncio.Task[None] | None = None
        self._serving: bool | None = None
        for register in registrars:
            register(self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"could not bind gRPC port {host}:{port}")
        self.address = f"{host}:{self.port}"
        self._host = host
        self._metrics_port = metrics_port
        self.metrics_address: str | None = None

    async def start(self) -> None:
        if self._metrics_port is not None:
            port = rpc_metrics.serve_metrics(self._host, self._metrics_port)
            self.metrics_address = f"{self._host}:{port}"
        await self._server.start()
        await self._health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._probe_once()
        self._probe_task = asyncio.create_task(self._probe_loop(), name="readiness-probe")
        log.info(
            "gRPC server listening",
            extra={"address": self.address, "metrics": self.metrics_address},
        )

    async def _set_serving(self, serving: bool) -> None:
        if serving == self._serving:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._service_names]:
            await self._health.set(name, status)
        log.info("health changed", extra={"serving": serving})

    async def _probe_once(self) -> None:
        if self._probe is None:
            await self._set_serving(True)
            return
        try:
            async with asyncio.timeout(self._probe_interval * 2):
                await self._probe()
        except Exception as exc:
            log.warning("readiness probe failed: %s", exc)
            await self._set_serving(False)
        else:
            await self._set_serving(True)

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            await self._probe_once()

    async def stop(self, grace: float) -> None:
        """Reports NOT_SERVING, refuses new RPCs and lets in-flight ones finish."""
        if self._probe_task is not None:
            await cancel_and_wait(self._probe_task)
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
        log.info("gRPC server stopped", extra={"address": self.address})


async def wait_for_termination_signal() -> None:
    """Returns on the first SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
