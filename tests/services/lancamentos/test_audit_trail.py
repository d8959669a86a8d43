"""The audit trail of lancamentos: one record per mutation, in the mutation's own
transaction, hash-chained per merchant and append-only. A real server and a
real PostgreSQL; the chain is checked by the client's independent verifier."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from audit.v1 import audit_pb2
from lancamentos.v1 import lancamentos_pb2 as pb
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from caixa.cli.main import main as cli
from caixa.client import audit_chain
from services.domain.rules import MAX_MERCHANT_VOLUME_CENTS
from services.lancamentos import outbox_queue
from services.lancamentos.app import LancamentosApp
from services.platform.audit import operator
from services.platform.database import driver_connection
from tests.support.grpc_errors import expect_error, field_violations
from tests.support.lancamentos import batches, create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub

CREATE = "lancamentos.v1.LancamentosService/CreateLancamento"
REVERSE = "lancamentos.v1.LancamentosService/ReverseLancamento"
IMPORT = "lancamentos.v1.LancamentosService/ImportLancamentos"


def merchant() -> str:
    return f"audit-{uuid.uuid4().hex[:10]}"


async def pages(stub: Stub, merchant_id: str) -> list[audit_pb2.ListAuditRecordsResponse]:
    """Every page of the merchant's chain, the empty one that ends it included."""
    found: list[audit_pb2.ListAuditRecordsResponse] = []
    while not found or found[-1].audit_records:
        after = found[-1].audit_records[-1].position if found else 0
        request = audit_pb2.ListAuditRecordsRequest(
            merchant_id=merchant_id,
            after_position=after,
            page_size=7,  # several pages in most tests
        )
        found.append(await stub.ListAuditRecords(request))
    return found


async def trail(stub: Stub, merchant_id: str) -> list[audit_pb2.AuditRecord]:
    return [r for page in await pages(stub, merchant_id) for r in page.audit_records]


async def verdict(stub: Stub, merchant_id: str) -> audit_chain.Verdict:
    return audit_chain.verify(merchant_id, await pages(stub, merchant_id))


async def test_create_and_its_replay_are_recorded_once_each(stub: Stub) -> None:
    m = merchant()
    request = create_request(merchant_id=m)
    created = await stub.CreateLancamento(request)
    again = await stub.CreateLancamento(request)
    assert again.lancamento_id == created.lancamento_id
    # The same key with another payload is refused: nothing was done, nothing recorded.
    changed = create_request(merchant_id=m, request_id=request.request_id, amount_cents=7)
    await expect_error(stub.CreateLancamento(changed), grpc.StatusCode.ALREADY_EXISTS)

    first, replay = await trail(stub, m)
    assert (first.position, first.outcome, replay.position, replay.outcome) == (
        1,
        "created",
        2,
        "replayed",
    )
    for record in (first, replay):
        assert record.rpc == CREATE
        assert record.request_id == request.request_id
        assert list(record.entry_ids) == [created.lancamento_id]
        assert record.subject == "anonymous"  # this server runs without JWKS
    assert (await verdict(stub, m)).intact


async def test_a_reversal_names_both_entries_and_its_replay_is_recorded(stub: Stub) -> None:
    m = merchant()
    original = await stub.CreateLancamento(create_request(merchant_id=m))
    reverse = pb.ReverseLancamentoRequest(
        merchant_id=m, lancamento_id=original.lancamento_id, request_id=str(uuid.uuid4())
    )
    reversal = await stub.ReverseLancamento(reverse)
    await stub.ReverseLancamento(reverse)
    _, done, replayed = await trail(stub, m)
    assert (done.rpc, done.outcome, replayed.outcome) == (REVERSE, "created", "replayed")
    for record in (done, replayed):
        assert list(record.entry_ids) == [reversal.lancamento_id, original.lancamento_id]
        assert record.request_id == reverse.request_id


async def test_an_import_records_each_row_and_each_replayed_row(stub: Stub) -> None:
    m, other = merchant(), merchant()
    rows = [create_request(merchant_id=m if i % 3 else other) for i in range(250)]
    rows.append(rows[5])  # the same row twice in one import: a replay of itself
    response = await stub.ImportLancamentos(iter(batches(rows)))
    assert (response.created_count, response.duplicate_count) == (250, 1)
    await stub.ImportLancamentos(iter(batches(rows[:40])))  # resent

    mine, theirs = await trail(stub, m), await trail(stub, other)
    expected = {r.request_id for r in rows if r.merchant_id == m}
    assert {r.request_id for r in mine} == expected
    assert {r.rpc for r in mine + theirs} == {IMPORT}
    created = [r for r in mine + theirs if r.outcome == "created"]
    assert len(created) == 250
    assert len({r.entry_ids[0] for r in created}) == 250
    replayed = [r for r in mine + theirs if r.outcome == "replayed"]
    assert sorted(r.request_id for r in replayed) == sorted(
        [rows[5].request_id] + [r.request_id for r in rows[:40]]
    )
    assert (await verdict(stub, m)).intact
    assert (await verdict(stub, other)).intact


async def test_a_failed_transaction_records_nothing(stub: Stub, engine: AsyncEngine) -> None:
    m = merchant()
    first = create_request(merchant_id=m)
    await stub.CreateLancamento(first)
    # An import chunk with one row reusing a key with another payload is
    # rolled back whole: its good rows are not recorded either.
    bad = [create_request(merchant_id=m) for _ in range(5)]
    bad.append(create_request(merchant_id=m, request_id=first.request_id, amount_cents=3))
    await expect_error(stub.ImportLancamentos(iter(batches(bad))), grpc.StatusCode.ALREADY_EXISTS)
    # A create the database refuses (the volume bound) records nothing.
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE merchant_volumes SET booked_cents = :v WHERE merchant_id = :m"),
            {"m": m, "v": MAX_MERCHANT_VOLUME_CENTS},
        )
    error = await expect_error(
        stub.CreateLancamento(create_request(merchant_id=m)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "amount_cents" in field_violations(error)
    assert [r.request_id for r in await trail(stub, m)] == [first.request_id]


async def test_concurrent_writers_keep_one_unbroken_chain(stub: Stub) -> None:
    m = merchant()
    creates = [create_request(merchant_id=m) for _ in range(60)]
    imports = [create_request(merchant_id=m) for _ in range(120)]
    await asyncio.gather(
        *(stub.CreateLancamento(r) for r in creates),
        *(stub.CreateLancamento(r) for r in creates[:20]),  # replays racing their originals
        stub.ImportLancamentos(iter(batches(imports[:60], size=13))),
        stub.ImportLancamentos(iter(batches(imports[60:], size=17))),
    )
    records = await trail(stub, m)
    assert [r.position for r in records] == list(range(1, 60 + 20 + 120 + 1))
    assert sum(r.outcome == "created" for r in records) == 180
    result = await verdict(stub, m)
    assert result.intact, result.breaks
    assert (result.records, result.head_position) == (200, 200)


async def test_a_parked_entry_queued_again_is_recorded(
    stub: Stub, lancamentos_app: LancamentosApp
) -> None:
    m = merchant()
    entry = await stub.CreateLancamento(create_request(merchant_id=m))
    async with lancamentos_app.engine.begin() as conn:
        driver = await driver_connection(conn)
        outbox_id = await driver.fetchval(
            "SELECT outbox_id FROM outbox WHERE lancamento_id = $1", uuid.UUID(entry.lancamento_id)
        )
        await outbox_queue.park(driver, outbox_id, "refused for good")
    async with lancamentos_app.engine.begin() as conn:
        count = await outbox_queue.retry_parked(
            conn, [outbox_id], operator("caixa-lancamentos parked --retry")
        )
    assert count == 1
    _, requeued = await trail(stub, m)
    assert requeued.outcome == "requeued"
    assert requeued.rpc == "caixa-lancamentos parked --retry"
    assert requeued.subject.startswith("operator:")
    assert list(requeued.entry_ids) == [entry.lancamento_id]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET outcome = 'created' WHERE merchant_id = :m",
        "DELETE FROM audit_records WHERE merchant_id = :m",
        "TRUNCATE audit_records",
        "UPDATE audit_heads SET position = 0 WHERE merchant_id = :m",
        "DELETE FROM audit_heads WHERE merchant_id = :m",
    ],
)
async def test_no_path_updates_or_deletes_a_record(
    stub: Stub, engine: AsyncEngine, statement: str
) -> None:
    m = merchant()
    await stub.CreateLancamento(create_request(merchant_id=m))
    with pytest.raises(DBAPIError) as raised:
        async with engine.begin() as conn:
            await conn.execute(text(statement), {"m": m})
    assert isinstance(
        getattr(raised.value.orig, "__cause__", None), asyncpg.InsufficientPrivilegeError
    )
    assert "audit" in str(raised.value)
    assert len(await trail(stub, m)) == 1


@pytest.fixture
async def tamperable(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """As a database owner could: the append-only triggers off, for the test."""
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        await conn.execute(text("ALTER TABLE audit_heads DISABLE TRIGGER USER"))
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE audit_records ENABLE TRIGGER USER"))
            await conn.execute(text("ALTER TABLE audit_heads ENABLE TRIGGER USER"))


TAMPERING = {
    "edit": [
        "UPDATE audit_records SET subject = 'someone-else' WHERE merchant_id = :m AND position = 3"
    ],
    "delete": ["DELETE FROM audit_records WHERE merchant_id = :m AND position = 3"],
    "delete and renumber": [
        "DELETE FROM audit_records WHERE merchant_id = :m AND position = 3",
        "UPDATE audit_records SET position = position - 1 WHERE merchant_id = :m AND position > 3",
        "UPDATE audit_heads SET position = position - 1 WHERE merchant_id = :m",
    ],
    "reorder": [
        "UPDATE audit_records SET position = -1 WHERE merchant_id = :m AND position = 2",
        "UPDATE audit_records SET position = 2 WHERE merchant_id = :m AND position = 4",
        "UPDATE audit_records SET position = 4 WHERE merchant_id = :m AND position = -1",
    ],
    "cut off the end": ["DELETE FROM audit_records WHERE merchant_id = :m AND position = 5"],
}


@pytest.mark.parametrize("how", TAMPERING)
async def test_verify_detects_tampering(
    stub: Stub, tamperable: AsyncEngine, lancamentos_app: LancamentosApp, how: str
) -> None:
    m = merchant()
    for _ in range(5):
        await stub.CreateLancamento(create_request(merchant_id=m))
    assert (await verdict(stub, m)).intact
    assert lancamentos_app.server is not None
    args = ["--lancamentos-target", lancamentos_app.server.address, "audit", "verify"]
    assert await asyncio.to_thread(cli, [*args, "--merchant", m]) == 0

    async with tamperable.begin() as conn:
        for statement in TAMPERING[how]:
            await conn.execute(text(statement), {"m": m})

    result = await verdict(stub, m)
    assert not result.intact
    assert await asyncio.to_thread(cli, [*args, "--merchant", m]) == 3


async def test_verify_detects_an_edit_whose_hash_was_recomputed(
    stub: Stub, tamperable: AsyncEngine
) -> None:
    m = merchant()
    for _ in range(4):
        await stub.CreateLancamento(create_request(merchant_id=m))
    records = await trail(stub, m)
    forged = audit_pb2.AuditRecord()
    forged.CopyFrom(records[2])
    forged.outcome = "replayed"
    forged.hash = audit_chain.chained_hash(records[1].hash, forged)
    async with tamperable.begin() as conn:
        await conn.execute(
            text(
                "UPDATE audit_records SET outcome = :o, hash = :h "
                "WHERE merchant_id = :m AND position = 3"
            ),
            {"o": forged.outcome, "h": forged.hash, "m": m},
        )
    result = await verdict(stub, m)
    # The forged record is self-consistent; the next one no longer chains to it.
    assert [b.position for b in result.breaks] == [4]


async def test_list_audit_records_names_bad_fields(stub: Stub) -> None:
    error = await expect_error(
        stub.ListAuditRecords(
            audit_pb2.ListAuditRecordsRequest(merchant_id="", after_position=-1, page_size=5000)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(field_violations(error)) == {"merchant_id", "after_position", "page_size"}
