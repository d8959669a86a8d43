"""SQL for the outbox as a queue: claim, delete what was delivered, park what
consolidado refused for good, and let an operator list and retry the parked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.lancamentos.tables import lancamentos, outbox
from services.platform import audit
from services.platform.outbox.dispatcher import Backlog

REQUEUED = "requeued"  # the audit outcome of a parked entry queued again

# Raw SQL on the driver connection: the dispatcher moves every entry once,
# and SQLAlchemy's row handling was a quarter of its CPU during bulk imports.
_CLAIM = """
WITH claimed AS (
    SELECT outbox_id, lancamento_id, traceparent FROM outbox
    WHERE parked_at IS NULL
    ORDER BY outbox_id LIMIT $1 FOR UPDATE SKIP LOCKED
)
SELECT claimed.outbox_id, claimed.traceparent, l.lancamento_id, l.sequence, l.merchant_id,
       l.kind, l.amount_cents, l.currency, l.value_date, l.description, l.request_id,
       l.created_at, l.reverses_lancamento_id
FROM claimed JOIN lancamentos AS l USING (lancamento_id)
ORDER BY claimed.outbox_id
"""


async def claim_outbox(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Locks the oldest undelivered rows, with their entries, until the
    transaction ends; rows another dispatcher holds are skipped."""
    return list(await conn.fetch(_CLAIM, limit))


async def delete_outbox(conn: asyncpg.Connection, outbox_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM outbox WHERE outbox_id = ANY($1::bigint[])", outbox_ids)


async def vacuum_outbox(conn: asyncpg.Connection) -> None:
    """Reclaims delivered rows now. Every claim scans the outbox index from its
    oldest end, so after a bulk backlog the dead rows left there slow each
    batch until autovacuum's next visit (up to a minute away)."""
    await conn.execute("VACUUM (SKIP_LOCKED) outbox")


async def park(conn: asyncpg.Connection, outbox_id: int, reason: str) -> None:
    """Takes the row out of the queue (claims skip it) until `retry_parked`."""
    await conn.execute(
        "UPDATE outbox SET parked_at = now(), parked_reason = $2 WHERE outbox_id = $1",
        outbox_id,
        reason,
    )


@dataclass(frozen=True)
class Parked:
    outbox_id: int
    lancamento_id: UUID
    merchant_id: str
    value_date: date
    amount_cents: int
    parked_at: datetime
    reason: str


async def parked(conn: AsyncConnection) -> list[Parked]:
    query = (
        select(
            outbox.c.outbox_id,
            outbox.c.lancamento_id,
            lancamentos.c.merchant_id,
            lancamentos.c.value_date,
            lancamentos.c.amount_cents,
            outbox.c.parked_at,
            outbox.c.parked_reason,
        )
        .join(lancamentos, lancamentos.c.lancamento_id == outbox.c.lancamento_id)
        .where(outbox.c.parked_at.is_not(None))
        .order_by(outbox.c.outbox_id)
    )
    return [Parked(*row) for row in (await conn.execute(query)).all()]


async def retry_parked(
    conn: AsyncConnection, outbox_ids: Sequence[int] | None, actor: audit.Actor
) -> int:
    """Puts parked rows (all of them when `outbox_ids` is None) back in the
    queue, auditing each in the same transaction; returns how many.
    Redelivery is harmless: consolidado dedupes."""
    statement = (
        update(outbox)
        .where(outbox.c.parked_at.is_not(None))
        .where(lancamentos.c.lancamento_id == outbox.c.lancamento_id)
    )
    if outbox_ids is not None:
        statement = statement.where(outbox.c.outbox_id.in_(list(outbox_ids)))
    rows = await conn.execute(
        statement.values(parked_at=None, parked_reason=None).returning(
            lancamentos.c.merchant_id, lancamentos.c.request_id, lancamentos.c.lancamento_id
        )
    )
    mutations = [
        audit.Mutation(merchant, request_id, [entry_id], REQUEUED, actor)
        for merchant, request_id, entry_id in rows
    ]
    await audit.append(conn, mutations)
    return len(mutations)


async def backlog(conn: AsyncConnection) -> Backlog:
    """One scan of the outbox, which delivery keeps short."""
    waiting = outbox.c.parked_at.is_(None)
    row = (
        await conn.execute(
            select(
                func.count().filter(waiting),
                func.extract("epoch", func.now() - func.min(outbox.c.created_at).filter(waiting)),
                func.count().filter(outbox.c.parked_at.is_not(None)),
            )
        )
    ).one()
    return Backlog(int(row[0]), max(0.0, float(row[1] or 0.0)), int(row[2]))


async def parked_count(conn: AsyncConnection, merchant_id: str | None = None) -> int:
    query = select(func.count()).select_from(outbox).where(outbox.c.parked_at.is_not(None))
    if merchant_id:
        query = query.join(lancamentos, lancamentos.c.lancamento_id == outbox.c.lancamento_id)
        query = query.where(lancamentos.c.merchant_id == merchant_id)
    return int((await conn.execute(query)).scalar_one())
