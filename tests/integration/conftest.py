"""lancamentos, its dispatcher and two consolidado replicas, all real, wired
together on loopback; each test starts from empty databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from tests.support.services import Mesh, migrated_databases, truncate
from tooling.devstack.processes import free_port

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub


@pytest.fixture(scope="session")
async def integration_dbs(make_database: Callable[[str], str]) -> tuple[str, str]:
    return await migrated_databases(make_database, "it")


@pytest.fixture
async def mesh(integration_dbs: tuple[str, str], redis_url: str) -> AsyncIterator[Mesh]:
    lanc_db, cons_db = integration_dbs
    mesh = Mesh(
        lancamentos_db=lanc_db,
        consolidado_db=cons_db,
        redis_url=redis_url,
        key_prefix=f"it-{uuid.uuid4().hex[:8]}:bal",
        consolidado_ports=[free_port(), free_port()],
        lancamentos_port=free_port(),
        consolidados=[None, None],
    )
    await truncate(mesh)
    try:
        yield mesh
    finally:
        mesh.gate.open()
        await mesh.close()


@pytest.fixture
async def lancamentos_stub(mesh: Mesh) -> AsyncIterator[LancamentosServiceAsyncStub]:
    """A serving lancamentos with its in-process dispatcher, and both replicas up."""
    await mesh.start_consolidado(0)
    await mesh.start_consolidado(1)
    app = await mesh.add_lancamentos(serve=True, dispatch=True)
    assert app.server is not None
    async with grpc.aio.insecure_channel(app.server.address) as channel:
        yield lpb_grpc.LancamentosServiceStub(channel)
