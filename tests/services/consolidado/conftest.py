"""A real consolidado server on a free port, over real PostgreSQL and Redis.

Every test session gets its own database and its own Redis key prefix, so it
never touches data it didn't write.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado.app import MIGRATIONS, ConsolidadoApp
from services.consolidado.settings import ConsolidadoSettings
from services.platform.migrations import upgrade
from tests.support.consolidado import consolidado_settings, forget_cached, open_channel

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub,
        ConsolidadoServiceAsyncStub,
    )


@pytest.fixture(scope="session")
async def consolidado_db(make_database: Callable[[str], str]) -> str:
    url = await asyncio.to_thread(make_database, "consolidado")
    # Alembic's env calls asyncio.run: it needs a thread without a running loop.
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    return url


@pytest.fixture(scope="session")
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}:bal"


@pytest.fixture(scope="session")
def settings(consolidado_db: str, redis_url: str, key_prefix: str) -> ConsolidadoSettings:
    return consolidado_settings(consolidado_db, redis_url, key_prefix)


@pytest.fixture(scope="session")
async def consolidado_app(settings: ConsolidadoSettings) -> AsyncIterator[ConsolidadoApp]:
    async with ConsolidadoApp(settings) as app:
        yield app


@pytest.fixture(scope="session")
async def consolidado_channel(consolidado_app: ConsolidadoApp) -> AsyncIterator[grpc.aio.Channel]:
    async with await open_channel(consolidado_app) as channel:
        yield channel


@pytest.fixture(scope="session")
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[Redis]:
    """A client of the session's Redis; the session's keys go when it ends."""
    client: Redis = Redis.from_url(redis_url)
    yield client
    await forget_cached(client, key_prefix)
    await client.aclose()


@pytest.fixture
async def engine(
    consolidado_app: ConsolidadoApp,
    redis: Redis,
    key_prefix: str,
) -> AsyncEngine:
    """The app's engine, over empty tables and an empty cache."""
    async with consolidado_app.engine.begin() as conn:
        await conn.execute(text("TRUNCATE applied_lancamentos, daily_totals, balance_versions"))
    await forget_cached(redis, key_prefix)
    return consolidado_app.engine


@pytest.fixture
def balances_stub(
    consolidado_channel: grpc.aio.Channel, engine: AsyncEngine
) -> ConsolidadoServiceAsyncStub:
    return pb_grpc.ConsolidadoServiceStub(consolidado_channel)


@pytest.fixture
def ingest_stub(
    consolidado_channel: grpc.aio.Channel, engine: AsyncEngine
) -> ConsolidadoIngestServiceAsyncStub:
    return pb_grpc.ConsolidadoIngestServiceStub(consolidado_channel)
