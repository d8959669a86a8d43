"""Every LancamentosService RPC over a real server and database: happy paths and errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.rules import business_today
from tests.support.grpc_errors import expect_error, field_violations
from tests.support.lancamentos import batches, count_rows, create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub


async def test_create_returns_the_recorded_entry(stub: Stub, engine: AsyncEngine) -> None:
    created = await stub.CreateLancamento(create_request())
    uuid.UUID(created.lancamento_id)
    assert created.merchant_id == "m1"
    assert created.kind == pb.KIND_CREDIT
    assert created.amount_cents == 1050
    assert created.currency == "BRL"
    assert created.value_date == "2026-03-10"
    assert created.description == "venda balcão"
    assert created.sequence > 0
    assert created.created_at.seconds > 0
    assert created.reverses_lancamento_id == created.reversed_by_lancamento_id == ""
    assert await count_rows(engine, "outbox") == 1


async def test_value_date_defaults_to_business_today(stub: Stub) -> None:
    created = await stub.CreateLancamento(create_request(value_date=""))
    assert created.value_date == business_today("America/Sao_Paulo").isoformat()


async def test_get_returns_entry_and_unknown_is_not_found(stub: Stub) -> None:
    created = await stub.CreateLancamento(create_request())
    got = await stub.GetLancamento(
        pb.GetLancamentoRequest(merchant_id="m1", lancamento_id=created.lancamento_id)
    )
    assert got == created
    await expect_error(
        stub.GetLancamento(
            pb.GetLancamentoRequest(merchant_id="other", lancamento_id=created.lancamento_id)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    error = await expect_error(
        stub.GetLancamento(pb.GetLancamentoRequest(merchant_id="m1", lancamento_id="nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "lancamento_id" in field_violations(error)


async def test_every_malformed_field_is_named(stub: Stub, engine: AsyncEngine) -> None:
    bad = pb.CreateLancamentoRequest(
        merchant_id="x" * 65,
        kind=pb.KIND_UNSPECIFIED,
        amount_cents=0,
        currency="USD",
        value_date="2026-02-30",
        description="d" * 256,
        request_id="",
    )
    error = await expect_error(stub.CreateLancamento(bad), grpc.StatusCode.INVALID_ARGUMENT)
    violations = field_violations(error)
    assert set(violations) == {
        "merchant_id",
        "kind",
        "amount_cents",
        "currency",
        "value_date",
        "description",
        "request_id",
    }
    assert "not a real calendar day" in violations["value_date"]
    assert "BRL" in violations["currency"]
    assert await count_rows(engine, "lancamentos") == 0


async def test_amount_rules(stub: Stub) -> None:
    for amount, phrase in [(-5, "positive"), (1_000_000_000_001, "overflow")]:
        error = await expect_error(
            stub.CreateLancamento(create_request(amount_cents=amount)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert phrase in field_violations(error)["amount_cents"]
    ok = await stub.CreateLancamento(create_request(amount_cents=1_000_000_000_000))
    assert ok.amount_cents == 1_000_000_000_000


async def test_bad_ids_and_dates(stub: Stub) -> None:
    cases = {
        "merchant_id": create_request(merchant_id="has space"),
        "request_id": create_request(request_id="r" * 129),
        "value_date": create_request(value_date="10/03/2026"),
    }
    for field, request in cases.items():
        error = await expect_error(stub.CreateLancamento(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert list(field_violations(error)) == [field]
    error = await expect_error(
        stub.CreateLancamento(create_request(value_date="1900-01-01")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "year" in field_violations(error)["value_date"]


async def test_same_request_id_twenty_times_concurrently_is_one_entry(
    stub: Stub, engine: AsyncEngine
) -> None:
    request = create_request()
    results = await asyncio.gather(*(stub.CreateLancamento(request) for _ in range(20)))
    assert len({r.lancamento_id for r in results}) == 1
    assert await count_rows(engine, "lancamentos") == 1
    assert await count_rows(engine, "outbox") == 1


async def test_reused_request_id_with_other_payload_is_already_exists(
    stub: Stub, engine: AsyncEngine
) -> None:
    first = await stub.CreateLancamento(create_request(request_id="key-1"))
    again = await stub.CreateLancamento(create_request(request_id="key-1"))
    assert again == first
    error = await expect_error(
        stub.CreateLancamento(create_request(request_id="key-1", amount_cents=999)),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert "key-1" in (error.details() or "")
    # Keys are scoped per merchant.
    other = await stub.CreateLancamento(create_request(merchant_id="m2", request_id="key-1"))
    assert other.lancamento_id != first.lancamento_id
    assert await count_rows(engine, "lancamentos") == 2


async def test_concurrent_conflicting_payloads_one_wins(stub: Stub, engine: AsyncEngine) -> None:
    requests = [create_request(request_id="race", amount_cents=100 + i) for i in range(10)]
    outcomes = await asyncio.gather(
        *(stub.CreateLancamento(r) for r in requests), return_exceptions=True
    )
    successes = [o for o in outcomes if isinstance(o, pb.Lancamento)]
    failures = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(successes) == 1
    assert all(f.code() == grpc.StatusCode.ALREADY_EXISTS for f in failures)
    assert len(failures) == 9
    assert await count_rows(engine, "lancamentos") == 1


async def test_reversal_rules(stub: Stub) -> None:
    original = await stub.CreateLancamento(create_request(amount_cents=700))
    reverse = pb.ReverseLancamentoRequest(
        merchant_id="m1",
        lancamento_id=original.lancamento_id,
        request_id="rev-1",
        value_date="2026-03-11",
    )
    reversal = await stub.ReverseLancamento(reverse)
    assert reversal.kind == pb.KIND_DEBIT
    assert reversal.amount_cents == 700
    assert reversal.value_date == "2026-03-11"
    assert reversal.reverses_lancamento_id == original.lancamento_id
    assert reversal.description == f"Estorno de {original.lancamento_id}"
    # Idempotent retry returns the same reversal.
    assert await stub.ReverseLancamento(reverse) == reversal
    # The original now links to its reversal.
    got = await stub.GetLancamento(
        pb.GetLancamentoRequest(merchant_id="m1", lancamento_id=original.lancamento_id)
    )
    assert got.reversed_by_lancamento_id == reversal.lancamento_id
    # Reversed at most once.
    error = await expect_error(
        stub.ReverseLancamento(
            pb.ReverseLancamentoRequest(
                merchant_id="m1", lancamento_id=original.lancamento_id, request_id="rev-2"
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "already reversed" in (error.details() or "")
    # A reversal is never reversed.
    error = await expect_error(
        stub.ReverseLancamento(
            pb.ReverseLancamentoRequest(
                merchant_id="m1", lancamento_id=reversal.lancamento_id, request_id="rev-3"
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "is itself a reversal" in (error.details() or "")
    # Same key, other payload.
    await expect_error(
        stub.ReverseLancamento(
            pb.ReverseLancamentoRequest(
                merchant_id="m1",
                lancamento_id=original.lancamento_id,
                request_id="rev-1",
                value_date="2026-03-12",
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_reverse_unknown_or_other_merchant_is_not_found(stub: Stub) -> None:
    original = await stub.CreateLancamento(create_request())
    for merchant, entry_id in [("m1", str(uuid.uuid4())), ("m2", original.lancamento_id)]:
        await expect_error(
            stub.ReverseLancamento(
                pb.ReverseLancamentoRequest(
                    merchant_id=merchant, lancamento_id=entry_id, request_id="r"
                )
            ),
            grpc.StatusCode.NOT_FOUND,
        )


async def test_concurrent_reversals_reverse_once(stub: Stub, engine: AsyncEngine) -> None:
    original = await stub.CreateLancamento(create_request())
    outcomes = await asyncio.gather(
        *(
            stub.ReverseLancamento(
                pb.ReverseLancamentoRequest(
                    merchant_id="m1", lancamento_id=original.lancamento_id, request_id=f"r{i}"
                )
            )
            for i in range(10)
        ),
        return_exceptions=True,
    )
    successes = [o for o in outcomes if isinstance(o, pb.Lancamento)]
    failures = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(successes) == 1
    assert {f.code() for f in failures} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert await count_rows(engine, "lancamentos") == 2


async def test_concurrent_same_key_reversals_return_the_same_entry(stub: Stub) -> None:
    original = await stub.CreateLancamento(create_request())
    request = pb.ReverseLancamentoRequest(
        merchant_id="m1", lancamento_id=original.lancamento_id, request_id="same"
    )
    results = await asyncio.gather(*(stub.ReverseLancamento(request) for _ in range(10)))
    assert len({r.lancamento_id for r in results}) == 1


async def test_list_filters_and_orders(stub: Stub) -> None:
    for day, kind in [("2026-03-03", pb.KIND_DEBIT), ("2026-03-01", pb.KIND_CREDIT)]:
        await stub.CreateLancamento(create_request(value_date=day, kind=kind))
    await stub.CreateLancamento(create_request(value_date="2026-03-02"))
    await stub.CreateLancamento(create_request(merchant_id="m2"))
    page = await stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="m1"))
    assert [e.value_date for e in page.lancamentos] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert page.next_page_token == ""
    credits = await stub.ListLancamentos(
        pb.ListLancamentosRequest(merchant_id="m1", kind=pb.KIND_CREDIT)
    )
    assert len(credits.lancamentos) == 2
    ranged = await stub.ListLancamentos(
        pb.ListLancamentosRequest(merchant_id="m1", from_date="2026-03-02", to_date="2026-03-02")
    )
    assert [e.value_date for e in ranged.lancamentos] == ["2026-03-02"]


async def test_list_errors(stub: Stub) -> None:
    cases = {
        "page_size": pb.ListLancamentosRequest(merchant_id="m1", page_size=-1),
        "page_token": pb.ListLancamentosRequest(merchant_id="m1", page_token="garbage!"),
        "from_date": pb.ListLancamentosRequest(
            merchant_id="m1", from_date="2026-03-05", to_date="2026-03-01"
        ),
        "kind": pb.ListLancamentosRequest(merchant_id="m1", kind=7),  # type: ignore[arg-type]
    }
    for field, request in cases.items():
        error = await expect_error(stub.ListLancamentos(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert field in field_violations(error), field


async def test_page_token_is_bound_to_its_query(stub: Stub) -> None:
    for _ in range(3):
        await stub.CreateLancamento(create_request())
    first = await stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="m1", page_size=1))
    assert first.next_page_token
    error = await expect_error(
        stub.ListLancamentos(
            pb.ListLancamentosRequest(
                merchant_id="m1", kind=pb.KIND_DEBIT, page_size=1, page_token=first.next_page_token
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "other merchant_id or filters" in field_violations(error)["page_token"]


async def test_pagination_while_inserts_happen_sees_every_entry_once(stub: Stub) -> None:
    existing = {
        (await stub.CreateLancamento(create_request(value_date=f"2026-04-{d:02d}"))).lancamento_id
        for d in range(1, 29)
        for _ in range(2)
    }
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListLancamentos(
            pb.ListLancamentosRequest(merchant_id="m1", page_size=7, page_token=token)
        )
        seen.extend(e.lancamento_id for e in page.lancamentos)
        # Inserts before and after the cursor while paging.
        await stub.CreateLancamento(create_request(value_date="2026-04-01"))
        await stub.CreateLancamento(create_request(value_date="2026-04-28"))
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)), "an entry was returned twice"
    assert existing <= set(seen), "an entry that existed before paging was skipped"


async def test_import_writes_chunks_and_counts_duplicates(stub: Stub, engine: AsyncEngine) -> None:
    rows = batches([create_request(request_id=f"imp-{i}") for i in range(250)])
    result = await stub.ImportLancamentos(iter(rows))
    assert (result.created_count, result.duplicate_count) == (250, 0)
    again = await stub.ImportLancamentos(iter(rows))
    assert (again.created_count, again.duplicate_count) == (0, 250)
    assert await count_rows(engine, "lancamentos") == 250
    assert await count_rows(engine, "outbox") == 250


async def test_import_bad_row_rejects_its_chunk_only(stub: Stub, engine: AsyncEngine) -> None:
    # Chunks of 100 (the test app's import_chunk_size); row 150 is bad.
    entries = [create_request(request_id=f"bad-{i}") for i in range(250)]
    entries[150].amount_cents = -1
    entries[160].value_date = "2026-13-01"
    rows = batches(entries)
    error = await expect_error(stub.ImportLancamentos(iter(rows)), grpc.StatusCode.INVALID_ARGUMENT)
    violations = field_violations(error)
    assert set(violations) == {
        "row[150].amount_cents",
        "row[160].value_date",
    }
    assert "100 earlier rows were committed" in (error.details() or "")
    assert await count_rows(engine, "lancamentos") == 100


async def test_import_reused_key_rejects_chunk(stub: Stub, engine: AsyncEngine) -> None:
    await stub.CreateLancamento(create_request(request_id="taken", amount_cents=1))
    entries = [create_request(request_id=f"k-{i}") for i in range(10)]
    entries[4].request_id = "taken"
    rows = batches(entries, size=3)
    error = await expect_error(stub.ImportLancamentos(iter(rows)), grpc.StatusCode.ALREADY_EXISTS)
    assert "row 4" in (error.details() or "")
    assert await count_rows(engine, "lancamentos") == 1


async def test_stream_delivers_in_sequence_and_follows(stub: Stub) -> None:
    created = [await stub.CreateLancamento(create_request()) for _ in range(5)]
    streamed = [
        e async for e in stub.StreamLancamentos(pb.StreamLancamentosRequest(after_sequence=0))
    ]
    assert [e.lancamento_id for e in streamed] == [c.lancamento_id for c in created]
    after = [
        e
        async for e in stub.StreamLancamentos(
            pb.StreamLancamentosRequest(after_sequence=created[2].sequence)
        )
    ]
    assert [e.lancamento_id for e in after] == [c.lancamento_id for c in created[3:]]

    call = stub.StreamLancamentos(
        pb.StreamLancamentosRequest(after_sequence=created[-1].sequence, follow=True)
    )
    later = await stub.CreateLancamento(create_request())
    first = await asyncio.wait_for(call.read(), timeout=5)
    assert isinstance(first, pb.Lancamento)  # not grpc.aio.EOF: read() is typed as either
    assert first.lancamento_id == later.lancamento_id
    call.cancel()


async def test_stream_rejects_negative_sequence(stub: Stub) -> None:
    call = stub.StreamLancamentos(pb.StreamLancamentosRequest(after_sequence=-1))
    error = await expect_error(call.read(), grpc.StatusCode.INVALID_ARGUMENT)
    assert "after_sequence" in field_violations(error)


async def test_summarize_per_day(stub: Stub) -> None:
    await stub.CreateLancamento(create_request(value_date="2026-05-01", amount_cents=100))
    await stub.CreateLancamento(
        create_request(value_date="2026-05-01", amount_cents=30, kind=pb.KIND_DEBIT)
    )
    await stub.CreateLancamento(create_request(value_date="2026-05-03", amount_cents=5))
    summary = await stub.SummarizeLancamentos(
        pb.SummarizeLancamentosRequest(
            merchant_id="m1", from_date="2026-05-01", to_date="2026-05-31"
        )
    )
    assert [
        (d.date, d.credits_cents, d.debits_cents, d.lancamentos_count) for d in summary.days
    ] == [
        ("2026-05-01", 100, 30, 2),
        ("2026-05-03", 5, 0, 1),
    ]
    assert summary.undelivered_count == 3
    error = await expect_error(
        stub.SummarizeLancamentos(
            pb.SummarizeLancamentosRequest(
                merchant_id="m1", from_date="2026-01-01", to_date="2027-06-01"
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "366" in field_violations(error)["from_date"]
