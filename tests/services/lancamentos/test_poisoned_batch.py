"""One entry the database refuses fails alone: the group commit's other callers get
their own outcomes. The poison is real: a CHECK constraint the validation knows
nothing about, added to this test's own database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2 as pb
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from sqlalchemy import text

from services.lancamentos.app import MIGRATIONS, LancamentosApp
from services.platform.migrations import upgrade
from tests.support.lancamentos import lancamentos_settings

POISON = "poison"


@pytest.fixture
async def poisonable(make_database: Callable[[str], str]) -> AsyncIterator[LancamentosApp]:
    url = await asyncio.to_thread(make_database, "poison")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    app = LancamentosApp(lancamentos_settings(url), serve=True, dispatch=False)
    async with app.engine.begin() as conn:
        await conn.execute(
            text(
                "ALTER TABLE lancamentos ADD CONSTRAINT no_poison "
                f"CHECK (description <> '{POISON}')"
            )
        )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def create(merchant: str, description: str = "") -> pb.CreateLancamentoRequest:
    return pb.CreateLancamentoRequest(
        merchant_id=merchant,
        kind=pb.KIND_CREDIT,
        amount_cents=100,
        value_date="2026-03-10",
        description=description,
        request_id=str(uuid.uuid4()),
    )


async def test_a_poisoned_create_fails_alone(poisonable: LancamentosApp) -> None:
    async with grpc.aio.insecure_channel(poisonable.server.address) as channel:
        stub = pb_grpc.LancamentosServiceStub(channel)
        requests = [create(f"m{i % 7}") for i in range(100)]
        requests.insert(50, create("m-bad", POISON))
        outcomes = await asyncio.gather(
            *(stub.CreateLancamento(r) for r in requests), return_exceptions=True
        )
    poisoned = outcomes.pop(50)
    assert [o for o in outcomes if not isinstance(o, pb.Lancamento)] == []
    assert isinstance(poisoned, grpc.aio.AioRpcError)
    assert poisoned.code() == grpc.StatusCode.INVALID_ARGUMENT, poisoned.details()
    assert "cannot store" in (poisoned.details() or "")
    async with poisonable.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM lancamentos"))).scalar_one()
        queued = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    assert stored == queued == 100
