"""The balance cache against a real Redis: hits, invalidation by ingest (the
merchant's version in PostgreSQL moves with its totals), and Redis outages
(refused, cut, hung, everything evicted) that never fail a read or make it stale."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from consolidado.v1 import consolidado_pb2 as pb
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado.app import ConsolidadoApp
from services.consolidado.settings import ConsolidadoSettings
from tests.support.consolidado import (
    batch,
    consolidado_settings,
    entry,
    forget_cached,
    open_channel,
)
from tests.support.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub as IngestStub,
    )
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoServiceAsyncStub as BalancesStub,
    )

RANGE = pb.ListDailyBalancesRequest(merchant_id="m1", from_date="2024-03-01", to_date="2024-03-03")


def requests_counted(result: str) -> float:
    value = REGISTRY.get_sample_value("caixa_consolidado_cache_requests_total", {"result": result})
    return value or 0.0


def fallbacks(op: str) -> float:
    value = REGISTRY.get_sample_value("caixa_consolidado_cache_fallbacks_total", {"op": op})
    return value or 0.0


async def version_of(engine: AsyncEngine, merchant_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT version FROM balance_versions WHERE merchant_id = :m"), {"m": merchant_id}
        )
        return int(found.scalar_one_or_none() or 0)


def closing(response: pb.ListDailyBalancesResponse) -> int:
    return response.daily_balances[-1].closing_balance_cents


@contextlib.asynccontextmanager
async def app_with(
    settings: ConsolidadoSettings,
) -> AsyncIterator[tuple[ConsolidadoApp, BalancesStub, IngestStub]]:
    async with ConsolidadoApp(settings) as app, await open_channel(app) as channel:
        yield (
            app,
            pb_grpc.ConsolidadoServiceStub(channel),
            pb_grpc.ConsolidadoIngestServiceStub(channel),
        )


async def test_second_read_is_a_hit_and_ingest_invalidates(
    balances_stub: BalancesStub,
    ingest_stub: IngestStub,
    redis: Redis,
    key_prefix: str,
    engine: AsyncEngine,
) -> None:
    await ingest_stub.ApplyLancamentos(batch(entry(100)))
    hits, misses = requests_counted("hit"), requests_counted("miss")

    first = await balances_stub.ListDailyBalances(RANGE)
    assert (requests_counted("hit"), requests_counted("miss")) == (hits, misses + 1)
    second = await balances_stub.ListDailyBalances(RANGE)
    assert second == first
    assert (requests_counted("hit"), requests_counted("miss")) == (hits + 1, misses + 1)
    version = await version_of(engine, "m1")
    assert await redis.exists(f"{key_prefix}:m1:{version}:2024-03-01:2024-03-03")
    assert 0 < await redis.ttl(f"{key_prefix}:m1:{version}:2024-03-01:2024-03-03") <= 300

    # Visible right after the ingest returns: the version moved on.
    await ingest_stub.ApplyLancamentos(batch(entry(5, value_date="2024-03-02")))
    assert await version_of(engine, "m1") == version + 1
    third = await balances_stub.ListDailyBalances(RANGE)
    assert closing(third) == 105
    assert requests_counted("miss") == misses + 2
    # Another merchant's ingest leaves m1's cache alone.
    await ingest_stub.ApplyLancamentos(batch(entry(5, merchant_id="m2")))
    await balances_stub.ListDailyBalances(RANGE)
    assert requests_counted("hit") == hits + 2


async def test_a_redelivery_does_not_invalidate(
    ingest_stub: IngestStub, engine: AsyncEngine
) -> None:
    request = batch(entry(100))
    await ingest_stub.ApplyLancamentos(request)
    version = await version_of(engine, "m1")
    await ingest_stub.ApplyLancamentos(request)
    assert await version_of(engine, "m1") == version


async def test_redis_refusing_connections_serves_from_postgres(
    consolidado_db: str, key_prefix: str, engine: AsyncEngine
) -> None:
    settings = consolidado_settings(consolidado_db, "redis://127.0.0.1:1/0", key_prefix)
    async with app_with(settings) as (_app, balances, ingest):
        reads, writes = fallbacks("read"), fallbacks("write")
        applied = await ingest.ApplyLancamentos(batch(entry(100)))
        assert applied.applied_count == 1
        assert closing(await balances.ListDailyBalances(RANGE)) == 100
        assert closing(await balances.ListDailyBalances(RANGE)) == 100
        got = await balances.GetDailyBalance(
            pb.GetDailyBalanceRequest(merchant_id="m2", date="2024-03-01")
        )
        assert got.closing_balance_cents == 0
        assert fallbacks("read") >= reads + 3
        # A value read from PostgreSQL is not offered to a Redis known to be down.
        assert fallbacks("write") == writes


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(
    consolidado_db: str, key_prefix: str, engine: AsyncEngine
) -> None:
    """A Redis that accepts connections and never answers: the first read waits
    for the short timeout, the following ones skip Redis during the cool-down."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = consolidado_settings(
        consolidado_db,
        f"redis://127.0.0.1:{port}/0",
        key_prefix,
        redis_timeout_seconds=0.2,
        redis_cooldown_seconds=30,
    )
    try:
        async with app_with(settings) as (_app, balances, _ingest):
            started = time.perf_counter()
            await balances.ListDailyBalances(RANGE)
            first = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(10):
                await balances.ListDailyBalances(RANGE)
            following = time.perf_counter() - started
    finally:
        server.close()
        for writer in held:
            writer.transport.abort()
    assert 0.2 <= first < 1.0
    assert following < 0.2  # ten reads, none waiting on Redis


@pytest.fixture
async def proxied(
    consolidado_db: str, redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[TcpProxy, ConsolidadoSettings]]:
    """Settings whose Redis is behind a proxy the test can cut, hold and restore."""
    port = int(redis_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    proxy = TcpProxy("127.0.0.1", port)
    await proxy.start()
    settings = consolidado_settings(
        consolidado_db,
        f"redis://127.0.0.1:{proxy.port}/0",
        key_prefix,
        redis_cooldown_seconds=0.1,
    )
    try:
        yield proxy, settings
    finally:
        proxy.release()
        await proxy.cut()


async def test_an_ingest_while_its_redis_is_cut_leaves_no_replica_stale(
    proxied: tuple[TcpProxy, ConsolidadoSettings],
    settings: ConsolidadoSettings,
    engine: AsyncEngine,
) -> None:
    """The lost bump of a Redis version counter: replica A ingests while it cannot
    reach Redis, and replica B, which can, has the old balance cached."""
    proxy, cut_off = proxied
    async with (
        app_with(cut_off) as (_a, _a_balances, a_ingest),
        app_with(settings) as (
            _b,
            b_balances,
            _b_ingest,
        ),
    ):
        await a_ingest.ApplyLancamentos(batch(entry(100)))
        assert closing(await b_balances.ListDailyBalances(RANGE)) == 100  # cached by B
        hits = requests_counted("hit")
        assert closing(await b_balances.ListDailyBalances(RANGE)) == 100
        assert requests_counted("hit") == hits + 1

        await proxy.cut()
        await a_ingest.ApplyLancamentos(batch(entry(1)))
        assert closing(await b_balances.ListDailyBalances(RANGE)) == 101


async def test_evicting_every_key_never_serves_a_stale_balance(
    balances_stub: BalancesStub,
    ingest_stub: IngestStub,
    redis: Redis,
    key_prefix: str,
) -> None:
    """What allkeys-lru may do at any moment: nothing in Redis is load-bearing."""
    await ingest_stub.ApplyLancamentos(batch(entry(100)))
    assert closing(await balances_stub.ListDailyBalances(RANGE)) == 100
    for step in (1, 2, 3):
        await forget_cached(redis, key_prefix)
        await ingest_stub.ApplyLancamentos(batch(entry(step)))
        assert closing(await balances_stub.ListDailyBalances(RANGE)) == 100 + sum(
            range(1, step + 1)
        )
        assert closing(await balances_stub.ListDailyBalances(RANGE)) == 100 + sum(
            range(1, step + 1)
        )
