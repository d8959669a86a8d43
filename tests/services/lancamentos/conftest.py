"""A real lancamentos server on a free port, over a real PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.lancamentos.app import MIGRATIONS, LancamentosApp
from services.platform.migrations import upgrade
from tests.support.lancamentos import lancamentos_settings

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub


@pytest.fixture(scope="session")
async def lancamentos_db(make_database: Callable[[str], str]) -> str:
    url = await asyncio.to_thread(make_database, "lancamentos")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    return url


@pytest.fixture(scope="session")
async def lancamentos_app(lancamentos_db: str) -> AsyncIterator[LancamentosApp]:
    app = LancamentosApp(
        lancamentos_settings(lancamentos_db, import_chunk_size=100), serve=True, dispatch=False
    )
    await app.start()
    yield app
    await app.stop()


@pytest.fixture(scope="session")
async def lancamentos_channel(lancamentos_app: LancamentosApp) -> AsyncIterator[grpc.aio.Channel]:
    assert lancamentos_app.server is not None
    async with grpc.aio.insecure_channel(lancamentos_app.server.address) as channel:
        yield channel


@pytest.fixture
async def engine(lancamentos_app: LancamentosApp) -> AsyncEngine:
    async with lancamentos_app.engine.begin() as conn:
        await conn.execute(text("TRUNCATE outbox, lancamentos, merchant_volumes"))
    return lancamentos_app.engine


@pytest.fixture
async def stub(
    lancamentos_channel: grpc.aio.Channel, engine: AsyncEngine
) -> LancamentosServiceAsyncStub:
    return pb_grpc.LancamentosServiceStub(lancamentos_channel)
