"""With synchronous replication, a replayed request is acknowledged only once the standbys
have everything committed before it.

The chart's CloudNativePG clusters use `dataDurability: required`. An entry can still end
up committed on the primary alone: its transaction's wait for the standbys is cut short
when its server process ends, and PostgreSQL keeps the commit locally. A retry with the
same request_id then finds it; answering at once would acknowledge an entry no standby
has. This runs a private embedded PostgreSQL whose `synchronous_standby_names` names a
standby that never connects, so every commit that writes WAL waits, as with both
standbys down.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2 as pb
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc

from services.lancamentos.app import MIGRATIONS, LancamentosApp
from services.platform.migrations import upgrade
from tests.support.lancamentos import lancamentos_settings
from tooling.devstack.postgres import start_embedded_postgres

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub

pytestmark = pytest.mark.slow


@pytest.fixture
async def private_postgres(tmp_path: Path) -> AsyncIterator[str]:
    url, server = await asyncio.to_thread(start_embedded_postgres, tmp_path / "pg")
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        yield url
    finally:
        await asyncio.to_thread(server.stop, 10)


async def _standbys(url: str, names: str) -> None:
    """Sets synchronous_standby_names and waits until new sessions see it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    for _ in range(100):
        conn = await asyncpg.connect(url)
        try:
            if await conn.fetchval("SHOW synchronous_standby_names") == names:
                return
        finally:
            await conn.close()
        await asyncio.sleep(0.05)
    raise AssertionError(f"synchronous_standby_names never became {names!r}")


def _request(request_id: str) -> pb.CreateLancamentoRequest:
    return pb.CreateLancamentoRequest(
        merchant_id="m1",
        kind=pb.KIND_CREDIT,
        amount_cents=500,
        value_date="2026-03-10",
        request_id=request_id,
    )


async def test_a_replay_waits_for_the_standbys_like_the_first_answer(
    private_postgres: str,
) -> None:
    app = LancamentosApp(lancamentos_settings(private_postgres), serve=True, dispatch=False)
    await app.start()
    try:
        assert app.server is not None
        async with grpc.aio.insecure_channel(app.server.address) as channel:
            stub: Stub = pb_grpc.LancamentosServiceStub(channel)
            request_id = str(uuid.uuid4())
            first = await stub.CreateLancamento(_request(request_id), timeout=5)

            # No standby answers from now on: nothing that commits WAL is acknowledged.
            await _standbys(private_postgres, "ANY 1 (nobody)")
            # The replay (alone in flight, so nothing else holds the group commit) is
            # held back, not answered from the primary alone...
            with pytest.raises(grpc.aio.AioRpcError) as replay:
                await stub.CreateLancamento(_request(request_id), timeout=1.5)
            assert replay.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            # ...exactly as a new entry is.
            with pytest.raises(grpc.aio.AioRpcError) as new_entry:
                await stub.CreateLancamento(_request(str(uuid.uuid4())), timeout=1.5)
            assert new_entry.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED

            # A standby again (here: none required): the waiting commits are released.
            await _standbys(private_postgres, "")
            again = await stub.CreateLancamento(_request(request_id), timeout=5)
            assert again.lancamento_id == first.lancamento_id
    finally:
        await app.stop()
