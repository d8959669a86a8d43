"""ApplyLancamentos over a real server and database: totals, dedupe, validation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado.app import ConsolidadoApp
from services.domain.errors import Unavailable
from services.platform.conflicts import is_transient_conflict
from tests.support.consolidado import (
    batch,
    consolidado_settings,
    debit,
    entry,
    open_channel,
    timestamp,
)
from tests.support.grpc_errors import expect_error, field_violations

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub as Stub,
    )


async def totals(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT merchant_id, value_date::text, credits_cents, debits_cents, "
                "lancamentos_count, as_of FROM daily_totals ORDER BY merchant_id, value_date"
            )
        )
        return [tuple(row) for row in rows]


async def applied_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(text("SELECT count(*) FROM applied_lancamentos"))).scalar_one()
        )


async def test_batch_sums_per_merchant_and_day(ingest_stub: Stub, engine: AsyncEngine) -> None:
    late = datetime(2024, 3, 2, 9, 30, tzinfo=UTC)
    response = await ingest_stub.ApplyLancamentos(
        batch(
            entry(1000),
            debit(300),
            entry(50, created_at=late),
            entry(7, value_date="2024-03-02"),
            entry(9, merchant_id="m2"),
        )
    )
    assert (response.applied_count, response.duplicate_count) == (5, 0)
    assert await totals(engine) == [
        ("m1", "2024-03-01", 1050, 300, 3, late),
        ("m1", "2024-03-02", 7, 0, 1, datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("m2", "2024-03-01", 9, 0, 1, datetime(2024, 3, 1, 12, tzinfo=UTC)),
    ]


async def test_redelivered_batch_changes_nothing(ingest_stub: Stub, engine: AsyncEngine) -> None:
    request = batch(entry(100), debit(40))
    await ingest_stub.ApplyLancamentos(request)
    again = await ingest_stub.ApplyLancamentos(request)
    assert (again.applied_count, again.duplicate_count) == (0, 2)
    # Mixed: one old, one new.
    mixed = await ingest_stub.ApplyLancamentos(batch(request.lancamentos[0], entry(1)))
    assert (mixed.applied_count, mixed.duplicate_count) == (1, 1)
    assert [row[2:5] for row in await totals(engine)] == [(101, 40, 3)]


async def test_repeats_within_a_batch_count_once(ingest_stub: Stub, engine: AsyncEngine) -> None:
    once = entry(100)
    response = await ingest_stub.ApplyLancamentos(batch(once, once, entry(5), once))
    assert (response.applied_count, response.duplicate_count) == (2, 2)
    assert [row[2:5] for row in await totals(engine)] == [(105, 0, 2)]


async def test_concurrent_identical_batches_apply_once(
    ingest_stub: Stub, engine: AsyncEngine
) -> None:
    days = [f"2024-03-{d:02d}" for d in range(1, 11)]
    request = batch(
        *[entry(10, merchant_id=m, value_date=d) for m in ("a", "b", "c") for d in days],
        *[debit(3, merchant_id=m, value_date=d) for m in ("a", "b") for d in days],
    )
    responses = await asyncio.gather(*[ingest_stub.ApplyLancamentos(request) for _ in range(20)])
    assert sum(r.applied_count for r in responses) == 50
    assert sum(r.duplicate_count for r in responses) == 19 * 50
    rows = await totals(engine)
    assert len(rows) == 30
    assert sum(int(row[2]) for row in rows) == 300  # type: ignore[call-overload]
    assert sum(int(row[3]) for row in rows) == 60  # type: ignore[call-overload]
    assert await applied_rows(engine) == 50


async def test_overlapping_concurrent_batches_in_any_order(
    ingest_stub: Stub, engine: AsyncEngine
) -> None:
    pool = [
        entry(i + 1, merchant_id=f"m{i % 4}", value_date=f"2024-03-{i % 7 + 1:02d}")
        for i in range(80)
    ]
    # Each batch is a different, reversed or shuffled slice sharing rows with others.
    batches = [batch(*pool[i : i + 30][:: 1 if i % 2 else -1]) for i in range(0, 60, 5)]
    responses = await asyncio.gather(*[ingest_stub.ApplyLancamentos(b) for b in batches])
    assert sum(r.applied_count for r in responses) == 80
    rows = await totals(engine)
    assert sum(int(row[2]) for row in rows) == sum(range(1, 81))  # type: ignore[call-overload]


async def test_empty_batch_is_a_no_op(ingest_stub: Stub, engine: AsyncEngine) -> None:
    response = await ingest_stub.ApplyLancamentos(batch())
    assert (response.applied_count, response.duplicate_count) == (0, 0)


async def test_every_bad_entry_is_named_by_index_and_field(
    ingest_stub: Stub, engine: AsyncEngine
) -> None:
    no_created_at = entry(1)
    no_created_at.ClearField("created_at")
    error = await expect_error(
        ingest_stub.ApplyLancamentos(
            batch(
                entry(1),
                entry(0, lancamento_id="not-a-uuid", merchant_id="bad merchant"),
                entry(10**13, kind=lpb.KIND_UNSPECIFIED, value_date="2024-02-30"),
                no_created_at,
                lpb.Lancamento(
                    lancamento_id=entry().lancamento_id,
                    merchant_id="m1",
                    kind=lpb.KIND_DEBIT,
                    amount_cents=1,
                    currency="USD",
                    value_date="2024-03-01",
                    created_at=timestamp(datetime(2024, 3, 1, tzinfo=UTC)),
                ),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(field_violations(error)) == {
        "lancamentos[1].lancamento_id",
        "lancamentos[1].merchant_id",
        "lancamentos[1].amount_cents",
        "lancamentos[2].kind",
        "lancamentos[2].amount_cents",
        "lancamentos[2].value_date",
        "lancamentos[3].created_at",
        "lancamentos[4].currency",
    }
    # All or nothing: the good entry was not applied either.
    assert await applied_rows(engine) == 0


async def test_a_repeated_id_with_another_payload_is_rejected(
    ingest_stub: Stub, engine: AsyncEngine
) -> None:
    first = entry(100)
    changed = entry(101, lancamento_id=first.lancamento_id)
    error = await expect_error(
        ingest_stub.ApplyLancamentos(batch(first, changed)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "lancamentos[0]" in field_violations(error)["lancamentos[1].lancamento_id"]


async def test_a_deadlock_is_recognised_as_retryable(engine: AsyncEngine) -> None:
    """Provokes a real deadlock between two transactions and classifies the
    exception SQLAlchemy raises for it."""
    locks = ["SELECT pg_advisory_xact_lock(:a)", "SELECT pg_advisory_xact_lock(:b)"]
    both_hold_one = asyncio.Barrier(2)

    async def take(first: int, second: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text(locks[0]), {"a": first})
            await both_hold_one.wait()
            await conn.execute(text(locks[1]), {"b": second})

    results = await asyncio.gather(take(1, 2), take(2, 1), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], DBAPIError)
    assert is_transient_conflict(errors[0])
    assert not is_transient_conflict(ValueError("no"))


async def test_before_apply_hook_can_fail_ingest(
    consolidado_db: str, redis_url: str, key_prefix: str, engine: AsyncEngine
) -> None:
    calls = 0

    async def fail() -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("injected")

    settings = consolidado_settings(consolidado_db, redis_url, key_prefix)
    async with (
        ConsolidadoApp(settings, before_apply=fail) as app,
        await open_channel(app) as channel,
    ):
        stub = pb_grpc.ConsolidadoIngestServiceStub(channel)
        await expect_error(stub.ApplyLancamentos(batch(entry(1))), grpc.StatusCode.UNAVAILABLE)
        # Validation runs first: a bad batch never reaches the hook.
        await expect_error(stub.ApplyLancamentos(batch(entry(0))), grpc.StatusCode.INVALID_ARGUMENT)
    assert calls == 1
    assert await applied_rows(engine) == 0
