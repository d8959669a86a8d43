"""What kubelet's gRPC probes see: every process, the dispatch-only one too, answers
grpc.health.v1; `liveness` stays SERVING while the overall status follows the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.lancamentos.app import SERVICE_NAME, LancamentosApp
from services.platform.grpc_server import LIVENESS_SERVICE
from tests.support.lancamentos import lancamentos_settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(address: str, service: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


async def test_dispatch_only_process_serves_health(lancamentos_db: str) -> None:
    app = LancamentosApp(lancamentos_settings(lancamentos_db), serve=False, dispatch=True)
    await app.start()
    try:
        assert await _status(app.server.address, "") == SERVING
        assert await _status(app.server.address, LIVENESS_SERVICE) == SERVING
        # It serves no ledger RPCs, so it doesn't claim the ledger service's health.
        try:
            await _status(app.server.address, SERVICE_NAME)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("the dispatcher must not report the ledger service")
    finally:
        await app.stop()


async def test_dead_database_fails_readiness_not_liveness() -> None:
    # Nothing listens on port 1: the readiness probe fails, the process lives on.
    settings = lancamentos_settings(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", health_probe_interval_seconds=0.2
    )
    app = LancamentosApp(settings, serve=True, dispatch=False)
    await app.server.start()
    try:
        assert await _status(app.server.address, "") == NOT_SERVING
        assert await _status(app.server.address, SERVICE_NAME) == NOT_SERVING
        assert await _status(app.server.address, LIVENESS_SERVICE) == SERVING
    finally:
        await app.server.stop(0)
        await app.engine.dispose()


async def test_unmigrated_database_fails_readiness(make_database: Callable[[str], str]) -> None:
    url = await asyncio.to_thread(make_database, "unmigrated")
    app = LancamentosApp(lancamentos_settings(url), serve=True, dispatch=False)
    await app.server.start()
    try:
        assert await _status(app.server.address, "") == NOT_SERVING
        assert await _status(app.server.address, LIVENESS_SERVICE) == SERVING
    finally:
        await app.server.stop(0)
        await app.engine.dispose()
