"""The asyncio typed clients (`caixa.client.aio`) against the real services."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from caixa.client import AsyncConsolidadoClient, AsyncLancamentosClient, CaixaError
from tests.support.services import Mesh

MERCHANT = "aio"


@pytest.fixture
async def lancamentos(
    mesh: Mesh, lancamentos_stub: lpb_grpc.LancamentosServiceStub
) -> AsyncIterator[AsyncLancamentosClient]:
    """A client of the serving lancamentos (`lancamentos_stub` starts the whole mesh)."""
    async with AsyncLancamentosClient(mesh.lancamentos_address) as client:
        yield client


async def failure(call: Any) -> CaixaError:
    """The `CaixaError` that awaiting `call` raises."""
    with pytest.raises(CaixaError) as raised:
        await call
    return raised.value


async def test_create_then_get_round_trip(lancamentos: AsyncLancamentosClient) -> None:
    created = await lancamentos.create_lancamento(
        MERCHANT, "credit", 1500, value_date=date(2026, 7, 1), description="venda"
    )
    assert (created.kind, created.amount_cents, created.value_date) == (
        lpb.KIND_CREDIT,
        1500,
        "2026-07-01",
    )
    assert created.description == "venda" and created.currency == "BRL"
    assert created.lancamento_id and created.request_id

    fetched = await lancamentos.get_lancamento(MERCHANT, created.lancamento_id)
    assert fetched == created


async def test_create_is_idempotent_on_request_id(lancamentos: AsyncLancamentosClient) -> None:
    first = await lancamentos.create_lancamento(MERCHANT, "debit", 700, request_id="key-1")
    again = await lancamentos.create_lancamento(MERCHANT, "debit", 700, request_id="key-1")
    assert again.lancamento_id == first.lancamento_id
    assert again == first
    page = await lancamentos.list_lancamentos(MERCHANT)
    assert [e.lancamento_id for e in page.lancamentos] == [first.lancamento_id]


async def test_invalid_argument_names_every_bad_field(
    lancamentos: AsyncLancamentosClient,
) -> None:
    error = await failure(lancamentos.create_lancamento("", "credit", 0))
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.message
    # Decoded from the aio error's trailers: the BadRequest detail, field by field.
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)
    fields = dict(error.field_violations)
    assert set(fields) == {"merchant_id", "amount_cents"}
    assert all(fields.values())


async def test_unknown_entry_is_not_found(lancamentos: AsyncLancamentosClient) -> None:
    error = await failure(lancamentos.get_lancamento(MERCHANT, str(uuid.uuid4())))
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.field_violations == []


async def test_iter_lancamentos_fetches_every_page(lancamentos: AsyncLancamentosClient) -> None:
    created = [
        await lancamentos.create_lancamento(
            MERCHANT, "credit", 100 + day, value_date=f"2026-07-{day:02d}"
        )
        for day in range(1, 8)
    ]
    first_page = await lancamentos.list_lancamentos(MERCHANT, page_size=2)
    assert len(first_page.lancamentos) == 2 and first_page.next_page_token

    listed = [e async for e in lancamentos.iter_lancamentos(MERCHANT, page_size=2)]
    assert [e.lancamento_id for e in listed] == [e.lancamento_id for e in created]
    # The filters go with every page, not only the first.
    credits = lancamentos.iter_lancamentos(
        MERCHANT, from_date="2026-07-03", to_date="2026-07-06", kind="credit", page_size=3
    )
    assert [e.value_date async for e in credits] == [f"2026-07-0{d}" for d in range(3, 7)]


async def test_import_from_an_async_generator(lancamentos: AsyncLancamentosClient) -> None:
    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(5):
            await asyncio.sleep(0)
            yield {
                "merchant_id": MERCHANT,
                "kind": "debit" if i % 2 else "credit",
                "amount_cents": 10 * (i + 1),
                "value_date": date(2026, 7, 10),
                "request_id": f"import-{i}",
            }

    response = await lancamentos.import_lancamentos(rows())
    assert (response.created_count, response.duplicate_count) == (5, 0)
    imported = [e async for e in lancamentos.iter_lancamentos(MERCHANT)]
    assert [e.request_id for e in imported] == [f"import-{i}" for i in range(5)]
    assert [e.amount_cents for e in imported] == [10, 20, 30, 40, 50]
    # Re-sending the same rows is safe: every row is a duplicate.
    again = await lancamentos.import_lancamentos(rows())
    assert (again.created_count, again.duplicate_count) == (0, 5)


async def test_stream_yields_in_sequence_order(lancamentos: AsyncLancamentosClient) -> None:
    created = [await lancamentos.create_lancamento(MERCHANT, "credit", n) for n in (1, 2, 3)]
    streamed = [e async for e in lancamentos.stream_lancamentos(merchant_id=MERCHANT)]
    assert [e.lancamento_id for e in streamed] == [e.lancamento_id for e in created]
    sequences = [e.sequence for e in streamed]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3
    after_first = lancamentos.stream_lancamentos(after_sequence=sequences[0])
    assert [e.sequence async for e in after_first] == sequences[1:]


async def test_abandoning_a_stream_cancels_it_on_the_server(
    mesh: Mesh, lancamentos: AsyncLancamentosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `follow` feed never ends by itself: the server's feed only closes when
    the client cancels the call, so its closing proves the cancellation."""
    service = mesh.lancamentos[0].service
    feed = service.feed
    opened, closed = asyncio.Event(), asyncio.Event()

    async def watched_feed(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        opened.set()
        try:
            async for entry in feed(*args, **kwargs):
                yield entry
        finally:
            closed.set()

    monkeypatch.setattr(service, "feed", watched_feed)
    await lancamentos.create_lancamento(MERCHANT, "credit", 1)
    await lancamentos.create_lancamento(MERCHANT, "credit", 2)

    seen = []
    async for entry in lancamentos.stream_lancamentos(follow=True):
        seen.append(entry.amount_cents)
        break
    assert seen == [1]
    assert opened.is_set()
    await asyncio.wait_for(closed.wait(), timeout=5)


async def test_follow_stream_has_no_default_deadline(
    mesh: Mesh, lancamentos_stub: lpb_grpc.LancamentosServiceStub
) -> None:
    """The client's default deadline bounds every call but a `follow` feed."""
    async with AsyncLancamentosClient(mesh.lancamentos_address, timeout=0.3) as client:
        stream = client.stream_lancamentos(follow=True)
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.8)  # well past the default deadline
        assert not waiting.done()
        created = await client.create_lancamento(MERCHANT, "credit", 42)
        delivered = await asyncio.wait_for(waiting, timeout=5)
        assert delivered.lancamento_id == created.lancamento_id
        await stream.aclose()


async def test_expired_deadline_is_deadline_exceeded(lancamentos: AsyncLancamentosClient) -> None:
    started = time.monotonic()
    with pytest.raises(CaixaError) as raised:
        async with asyncio.timeout(10):  # fails, rather than hangs, without a deadline
            async for _ in lancamentos.stream_lancamentos(follow=True, timeout=0.3):
                pass
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0.25 <= time.monotonic() - started < 5


async def test_consolidated_balance_after_delivery(
    mesh: Mesh, lancamentos: AsyncLancamentosClient
) -> None:
    await lancamentos.create_lancamento(MERCHANT, "credit", 1500, value_date="2026-07-01")
    debit = await lancamentos.create_lancamento(MERCHANT, "debit", 500, value_date="2026-07-01")
    reversal = await lancamentos.reverse_lancamento(
        MERCHANT, debit.lancamento_id, value_date="2026-07-02"
    )
    assert reversal.reverses_lancamento_id == debit.lancamento_id
    assert (reversal.kind, reversal.amount_cents) == (lpb.KIND_CREDIT, 500)
    await mesh.wait_delivered()

    # Both replicas behind one target, as the mesh fixture names them.
    async with AsyncConsolidadoClient(mesh.consolidado_target) as consolidado:
        day = await consolidado.get_daily_balance(MERCHANT, date(2026, 7, 1))
        days = await consolidado.list_daily_balances(MERCHANT, "2026-07-01", "2026-07-03")
        error = await failure(consolidado.get_daily_balance("bad merchant", "2026-02-30"))
    assert (day.credits_cents, day.debits_cents, day.closing_balance_cents) == (1500, 500, 1000)
    assert [(d.date, d.closing_balance_cents) for d in days.daily_balances] == [
        ("2026-07-01", 1000),
        ("2026-07-02", 1500),
        ("2026-07-03", 1500),  # no entries: carried over
    ]
    assert set(dict(error.field_violations)) == {"merchant_id", "date"}
    summary = await lancamentos.summarize_lancamentos(MERCHANT, "2026-07-01", "2026-07-03")
    assert [(d.date, d.credits_cents, d.debits_cents) for d in summary.days] == [
        ("2026-07-01", 1500, 500),
        ("2026-07-02", 500, 0),
    ]


def dead_target() -> str:
    """A loopback address nothing listens on: a port just bound and released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_dead_target_is_unavailable() -> None:
    dead = dead_target()
    async with AsyncLancamentosClient(dead, timeout=5) as lancamentos:
        error = await failure(lancamentos.get_lancamento(MERCHANT, str(uuid.uuid4())))
    assert error.code is grpc.StatusCode.UNAVAILABLE
    async with AsyncConsolidadoClient(dead, timeout=5) as consolidado:
        error = await failure(consolidado.get_daily_balance(MERCHANT, "2026-07-01"))
    assert error.code is grpc.StatusCode.UNAVAILABLE
