"""A replay is judged on what the request means once defaults apply: an omitted
value_date is today, the same as naming today; naming another day is a conflict;
and an omitted date still replays its original after midnight."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.grpc_errors import expect_error
from tests.support.lancamentos import create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub


async def test_an_omitted_date_and_todays_date_are_one_request(stub: Stub) -> None:
    first = await stub.CreateLancamento(create_request(request_id="k1", value_date=""))
    again = await stub.CreateLancamento(
        create_request(request_id="k1", value_date=first.value_date)
    )
    assert again.lancamento_id == first.lancamento_id
    named = await stub.CreateLancamento(
        create_request(request_id="k2", value_date=first.value_date)
    )
    omitted = await stub.CreateLancamento(create_request(request_id="k2", value_date=""))
    assert omitted.lancamento_id == named.lancamento_id


async def test_another_day_under_the_same_key_is_a_conflict(stub: Stub) -> None:
    await stub.CreateLancamento(create_request(request_id="k3", value_date="2026-03-10"))
    await expect_error(
        stub.CreateLancamento(create_request(request_id="k3", value_date="2026-03-11")),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_an_omitted_date_replays_after_midnight(stub: Stub, engine: AsyncEngine) -> None:
    first = await stub.CreateLancamento(create_request(request_id="k4", value_date=""))
    # As if it had been booked yesterday: today's retry omits the date too.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE lancamentos SET value_date = value_date - 1 WHERE request_id = 'k4'")
        )
    again = await stub.CreateLancamento(create_request(request_id="k4", value_date=""))
    assert again.lancamento_id == first.lancamento_id


async def test_a_reversal_replay_follows_the_same_rule(stub: Stub) -> None:
    original = await stub.CreateLancamento(create_request())
    reverse = pb.ReverseLancamentoRequest(
        merchant_id="m1", lancamento_id=original.lancamento_id, request_id="r1"
    )
    first = await stub.ReverseLancamento(reverse)
    reverse.value_date = first.value_date
    again = await stub.ReverseLancamento(reverse)
    assert again.lancamento_id == first.lancamento_id
