"""The server's standard surface: health per service, reflection, and
readiness that depends on PostgreSQL only."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from consolidado.v1 import consolidado_pb2 as pb
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado.app import SERVICE_NAMES, ConsolidadoApp
from tests.support.consolidado import batch, consolidado_settings, entry, open_channel
from tests.support.grpc_errors import expect_error
from tests.support.tcp_proxy import TcpProxy

SERVING = health_pb2.HealthCheckResponse.SERVING


async def statuses(channel: grpc.aio.Channel) -> set[int]:
    stub = health_pb2_grpc.HealthStub(channel)
    return {
        (await stub.Check(health_pb2.HealthCheckRequest(service=name))).status
        for name in ["", *SERVICE_NAMES]
    }


async def test_both_services_are_healthy_and_reflected(
    consolidado_channel: grpc.aio.Channel,
) -> None:
    assert SERVICE_NAMES == [
        "consolidado.v1.ConsolidadoService",
        "consolidado.v1.ConsolidadoIngestService",
    ]
    assert await statuses(consolidado_channel) == {SERVING}
    stub = reflection_pb2_grpc.ServerReflectionStub(consolidado_channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    listed = {s.name async for r in call for s in r.list_services_response.service}
    assert set(SERVICE_NAMES) <= listed


async def test_redis_down_is_still_ready(
    consolidado_db: str, key_prefix: str, engine: AsyncEngine
) -> None:
    settings = consolidado_settings(consolidado_db, "redis://127.0.0.1:1/0", key_prefix)
    async with ConsolidadoApp(settings) as app, await open_channel(app) as channel:
        assert await statuses(channel) == {SERVING}


async def test_a_database_outage_is_unavailable_and_heals(
    consolidado_db: str, redis_url: str, key_prefix: str, engine: AsyncEngine
) -> None:
    url = make_url(consolidado_db)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    settings = consolidado_settings(
        proxied, redis_url, key_prefix, health_probe_interval_seconds=0.1
    )
    day = pb.GetDailyBalanceRequest(merchant_id="outage", date="2024-03-01")
    try:
        async with ConsolidadoApp(settings) as app, await open_channel(app) as channel:
            balances = pb_grpc.ConsolidadoServiceStub(channel)
            ingest = pb_grpc.ConsolidadoIngestServiceStub(channel)
            await ingest.ApplyLancamentos(batch(entry(5, merchant_id="outage")))

            await proxy.cut()
            await expect_error(
                ingest.ApplyLancamentos(batch(entry(1, merchant_id="outage"))),
                grpc.StatusCode.UNAVAILABLE,
            )
            # Not cached yet: the read needs PostgreSQL.
            await expect_error(balances.GetDailyBalance(day), grpc.StatusCode.UNAVAILABLE)
            for _ in range(100):  # the probe runs every 0.2 s; a loaded machine is slower
                if await statuses(channel) == {health_pb2.HealthCheckResponse.NOT_SERVING}:
                    break
                await asyncio.sleep(0.1)
            assert await statuses(channel) == {health_pb2.HealthCheckResponse.NOT_SERVING}

            await proxy.restore()
            for _ in range(50):
                if await statuses(channel) == {SERVING}:
                    break
                await asyncio.sleep(0.1)
            assert await statuses(channel) == {SERVING}
            for _ in range(3):  # the first statements may still meet dead connections
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await balances.GetDailyBalance(day)
            assert (await balances.GetDailyBalance(day)).closing_balance_cents == 5
    finally:
        await proxy.cut()
