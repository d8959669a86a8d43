"""No sum the services compute can overflow: a merchant's booked volume (every
amount, credits and debits) stays within a signed 64-bit integer, which bounds
each day's totals, every opening and closing balance and every summary. The entry
that would pass the bound is refused and says why; others are unaffected."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.rules import MAX_MERCHANT_VOLUME_CENTS
from tests.support.grpc_errors import expect_error, field_violations
from tests.support.lancamentos import batches, count_rows, create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub


async def nearly_full(engine: AsyncEngine, merchant: str, room: int) -> None:
    """As if the merchant had booked all but `room` centavos already: 9.2 million
    entries of the largest amount are too many to write in a test."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO merchant_volumes (merchant_id, booked_cents) VALUES (:m, :v) "
                "ON CONFLICT (merchant_id) DO UPDATE SET booked_cents = EXCLUDED.booked_cents"
            ),
            {"m": merchant, "v": MAX_MERCHANT_VOLUME_CENTS - room},
        )


async def test_the_entry_that_would_overflow_is_refused(stub: Stub, engine: AsyncEngine) -> None:
    await nearly_full(engine, "m1", room=150)
    ok = await stub.CreateLancamento(create_request(amount_cents=100))
    error = await expect_error(
        stub.CreateLancamento(create_request(amount_cents=51)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "overflow" in field_violations(error)["amount_cents"]
    # Debits count too: a balance swings by both.
    await stub.CreateLancamento(create_request(amount_cents=50, kind=pb.KIND_DEBIT))
    await expect_error(
        stub.CreateLancamento(create_request(amount_cents=1)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await count_rows(engine, "lancamentos") == 2
    assert ok.amount_cents == 100


async def test_only_the_overflowing_create_fails_among_concurrent_ones(
    stub: Stub, engine: AsyncEngine
) -> None:
    await nearly_full(engine, "full", room=0)
    requests = [create_request(merchant_id=f"other{i % 3}") for i in range(30)]
    requests.append(create_request(merchant_id="full"))
    outcomes = await asyncio.gather(
        *(stub.CreateLancamento(r) for r in requests), return_exceptions=True
    )
    assert all(isinstance(o, pb.Lancamento) for o in outcomes[:-1])
    assert isinstance(outcomes[-1], grpc.aio.AioRpcError)
    assert outcomes[-1].code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_import_past_the_bound_rejects_its_chunk(stub: Stub, engine: AsyncEngine) -> None:
    await nearly_full(engine, "m1", room=250)
    rows = [create_request(amount_cents=100) for _ in range(3)]
    await expect_error(
        stub.ImportLancamentos(iter(batches(rows))), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await count_rows(engine, "lancamentos") == 0


async def test_the_volume_counts_every_entry_once(stub: Stub, engine: AsyncEngine) -> None:
    request = create_request(amount_cents=700)
    await stub.CreateLancamento(request)
    await stub.CreateLancamento(request)  # a replay books nothing
    await stub.ImportLancamentos(iter(batches([create_request(amount_cents=5)])))
    async with engine.connect() as conn:
        booked = (
            await conn.execute(
                text("SELECT booked_cents FROM merchant_volumes WHERE merchant_id = 'm1'")
            )
        ).scalar_one()
    assert booked == 705
