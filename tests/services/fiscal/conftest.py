"""A real fiscal server over its own PostgreSQL database, delivering to a real
lancamentos server over its own; between them a proxy the tests can cut."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from fiscal.v1 import fiscal_pb2_grpc as pb_grpc
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from services.fiscal.app import MIGRATIONS as FISCAL_MIGRATIONS
from services.fiscal.app import FiscalApp
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.lancamentos.app import LancamentosApp
from services.platform.migrations import upgrade
from tests.support.fiscal import fiscal_settings
from tests.support.lancamentos import lancamentos_settings
from tests.support.tcp_proxy import TcpProxy
from tooling.fiscal_documents import Signer

if TYPE_CHECKING:
    from fiscal.v1.fiscal_pb2_grpc import FiscalServiceAsyncStub
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer.self_signed()


@pytest.fixture(scope="session")
async def ledger_app(make_database: Callable[[str], str]) -> AsyncIterator[LancamentosApp]:
    url = await asyncio.to_thread(make_database, "fiscal_ledger")
    await asyncio.to_thread(upgrade, LANCAMENTOS_MIGRATIONS, url)
    app = LancamentosApp(lancamentos_settings(url), serve=True, dispatch=False)
    await app.start()
    yield app
    await app.stop()


@pytest.fixture(scope="session")
async def ledger_proxy(ledger_app: LancamentosApp) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", ledger_app.server.port)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture(scope="session")
async def fiscal_app(
    make_database: Callable[[str], str], ledger_proxy: TcpProxy
) -> AsyncIterator[FiscalApp]:
    url = await asyncio.to_thread(make_database, "fiscal")
    await asyncio.to_thread(upgrade, FISCAL_MIGRATIONS, url)
    settings = fiscal_settings(url, lancamentos_target=f"127.0.0.1:{ledger_proxy.port}")
    app = FiscalApp(settings, serve=True, dispatch=True)
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
async def fiscal(
    fiscal_app: FiscalApp, ledger_proxy: TcpProxy
) -> AsyncIterator[FiscalServiceAsyncStub]:
    await ledger_proxy.restore()
    async with grpc.aio.insecure_channel(fiscal_app.server.address) as channel:
        yield pb_grpc.FiscalServiceStub(channel)


@pytest.fixture
async def ledger(ledger_app: LancamentosApp) -> AsyncIterator[LancamentosServiceAsyncStub]:
    async with grpc.aio.insecure_channel(ledger_app.server.address) as channel:
        yield lpb_grpc.LancamentosServiceStub(channel)


@pytest.fixture
def merchant() -> str:
    """A merchant of its own per test: documents and entries never collide."""
    return f"m-{uuid.uuid4().hex[:12]}"
