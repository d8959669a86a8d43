"""Every lancamentos writer takes the feed lock before any row lock, so an import
that replays an entry and a reversal of that entry cannot deadlock. The interleaving
is forced: a third session holds the feed lock until both writers queue on it."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.lancamentos.app import LancamentosApp
from services.lancamentos.commands import EntryRef, ReverseCommand
from services.lancamentos.domain import Lancamento, fingerprint
from services.lancamentos.requests import create_command
from services.lancamentos.store import FEED_LOCK_KEY
from tests.support.lancamentos import create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub

WAITERS = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


async def wait_for_waiters(engine: AsyncEngine, count: int) -> None:
    for _ in range(1000):
        async with engine.connect() as conn:
            if (await conn.execute(text(WAITERS))).scalar_one() >= count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} writers never queued on the feed lock")


async def test_an_import_replay_and_a_reversal_of_one_entry_both_finish(
    stub: Stub, engine: AsyncEngine, lancamentos_app: LancamentosApp
) -> None:
    service = lancamentos_app.service
    request = create_request()
    created = await stub.CreateLancamento(request)
    replay = create_command(request, service.today())
    reverse = ReverseCommand(
        EntryRef("m1", uuid.UUID(created.lancamento_id)),
        request_id="estorno-1",
        value_date=service.today(),
        description="",
        fingerprint=fingerprint("reverse", {"id": created.lancamento_id}),
        requested_value_date=None,
    )
    async with engine.connect() as holder:
        await holder.begin()
        await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_KEY})
        importing = asyncio.create_task(service.import_chunk([replay], 0))
        await wait_for_waiters(engine, 1)
        reversing = asyncio.create_task(service.reverse(reverse))
        await wait_for_waiters(engine, 2)
        await holder.commit()
    new, reversal = await asyncio.wait_for(asyncio.gather(importing, reversing), 30)
    assert new == 0
    assert isinstance(reversal, Lancamento)
    assert reversal.reverses_lancamento_id == uuid.UUID(created.lancamento_id)
