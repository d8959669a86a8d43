"""The idempotent-write protocol on its own, against the real database: the
seams create, import and reverse share."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.errors import AlreadyExists, FailedPrecondition
from services.lancamentos.domain import Kind, Lancamento, NewLancamento, fingerprint
from services.lancamentos.idempotent_writes import IdempotentWrites


def entry(request_id: str, amount_cents: int = 100, **overrides: Any) -> NewLancamento:
    values: dict[str, Any] = {
        "merchant_id": "m1",
        "kind": Kind.CREDIT,
        "amount_cents": amount_cents,
        "currency": "BRL",
        "value_date": date(2026, 3, 10),
        "description": "",
        "request_id": request_id,
        "fingerprint": fingerprint("create", {"amount": amount_cents, "key": request_id}),
        **overrides,
    }
    return NewLancamento(**values)


async def count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def write(engine: AsyncEngine, entries: list[NewLancamento]) -> list[object]:
    async with engine.begin() as conn:
        return list((await IdempotentWrites(conn).write(entries)).outcomes)


async def test_a_replay_returns_the_original_and_another_payload_is_refused(
    engine: AsyncEngine,
) -> None:
    [first] = await write(engine, [entry("k")])
    async with engine.begin() as conn:
        written = await IdempotentWrites(conn).write([entry("k"), entry("k", amount_cents=7)])
    replay, conflict = written.outcomes
    assert written.new == 0
    assert isinstance(first, Lancamento) and replay == first
    assert isinstance(conflict, AlreadyExists)
    assert await count(engine, "SELECT count(*) FROM lancamentos") == 1


async def test_a_key_repeated_in_one_batch_resolves_against_its_first(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        written = await IdempotentWrites(conn).write([entry("k"), entry("k", amount_cents=7)])
    first, second = written.outcomes
    assert written.new == 1
    assert isinstance(first, Lancamento) and first.amount_cents == 100
    assert isinstance(second, AlreadyExists)


async def test_the_write_joins_a_transaction_begun_before_it(engine: AsyncEngine) -> None:
    # SQLAlchemy begins lazily, and the insert goes through the driver: without
    # care it would commit on its own and survive this rollback.
    with pytest.raises(RuntimeError, match="roll back"):
        async with engine.begin() as conn:
            await IdempotentWrites(conn).write([entry("k")])
            raise RuntimeError("roll back")
    assert await count(engine, "SELECT count(*) FROM lancamentos") == 0
    assert await count(engine, "SELECT count(*) FROM outbox") == 0


async def test_a_second_reversal_past_the_row_lock_is_a_failed_precondition(
    engine: AsyncEngine,
) -> None:
    [original] = await write(engine, [entry("original")])
    assert isinstance(original, Lancamento)
    reverses: dict[str, Any] = {
        "reverses_lancamento_id": original.lancamento_id,
        "kind": Kind.DEBIT,
    }
    await write(engine, [entry("r1", **reverses)])
    # The use case's row lock is skipped here: the unique index must still hold.
    with pytest.raises(FailedPrecondition, match=str(original.lancamento_id)):
        await write(engine, [entry("r2", **reverses)])
    assert await count(engine, "SELECT count(*) FROM lancamentos") == 2


async def test_a_concurrent_writer_of_the_same_key_waits_and_replays(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as holder:
        await holder.begin()
        [mine] = (await IdempotentWrites(holder).write([entry("k")])).outcomes
        waiting = asyncio.create_task(write(engine, [entry("k")]))
        # The other writer blocks on this uncommitted insert (no sleep-based guess).
        for _ in range(500):
            blocked = await count(
                engine,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()",
            )
            if blocked:
                break
            await asyncio.sleep(0.01)
        assert blocked and not waiting.done()
        await holder.commit()
    [theirs] = await waiting
    assert theirs == mine
    assert await count(engine, "SELECT count(*) FROM lancamentos") == 1
