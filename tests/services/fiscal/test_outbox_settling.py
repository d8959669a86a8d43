"""Two dispatchers settling entries of one invoice at once: the last to commit
sees the others' deliveries and marks the document posted. Driven by the locks
themselves (each waiter is seen waiting in pg_stat_activity), not by sleeps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from zoneinfo import ZoneInfo

import asyncpg

from services.fiscal import outbox_queue
from services.fiscal.app import MIGRATIONS
from services.fiscal.use_cases import FiscalService, Policy, ProcessCommand
from services.fiscal.xml_input import Limits
from services.platform import database
from services.platform.migrations import upgrade
from tooling.fiscal_documents import ISSUER, Signer, invoice

THREE = [
    ("1", "2018-08-24", "100.00"),
    ("2", "2018-09-24", "100.00"),
    ("3", "2018-10-24", "147.28"),
]


async def _waiting_on_a_lock(watcher: asyncpg.Connection, pid: int) -> None:
    deadline = time.monotonic() + 10
    while await watcher.fetchval(
        "SELECT wait_event_type IS DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
    ):
        assert time.monotonic() < deadline, f"backend {pid} never waited on a lock"
        await asyncio.sleep(0.01)


async def test_the_last_of_two_dispatchers_marks_the_document_posted(
    make_database: Callable[[str], str],
) -> None:
    url = await asyncio.to_thread(make_database, "fiscal_settling")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    engine = database.create_engine(url, pool_size=2)
    service = FiscalService(engine, Policy(ZoneInfo("America/Sao_Paulo"), Limits()))
    service.start()
    try:
        data = invoice(Signer.self_signed(), installments=THREE)
        booked = await service.process(ProcessCommand("m-settle", ISSUER, data))
        assert booked.status == "accepted" and len(booked.entries) == 3
    finally:
        await service.stop()
        await engine.dispose()
    dsn = database.asyncpg_dsn(url)
    watcher, *dispatchers = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        claims = []
        for conn in dispatchers:  # each claims one entry, as SKIP LOCKED spreads them
            await conn.execute("BEGIN")
            claims.append(await outbox_queue.claim(conn, 1))
        assert sorted(c[0]["posting_id"] for c in claims) == sorted(
            {c[0]["posting_id"] for c in claims}
        )
        first, second, third = dispatchers
        await outbox_queue.delivered(first, claims[0], [uuid.uuid4()])
        # One after the other, so that they queue on the document's lock in order.
        later = []
        for conn, items in zip((second, third), claims[1:], strict=True):
            later.append(asyncio.ensure_future(outbox_queue.delivered(conn, items, [uuid.uuid4()])))
            await _waiting_on_a_lock(watcher, conn.get_server_pid())
        await first.execute("COMMIT")
        await later[0]
        await second.execute("COMMIT")
        await later[1]
        await third.execute("COMMIT")
        status = await watcher.fetchval(
            "SELECT status FROM documents WHERE merchant_id = 'm-settle'"
        )
        assert status == "posted"
    finally:
        for conn in (watcher, *dispatchers):
            await conn.close()
