"""fiscal's postings as an outbox towards lancamentos: claim, settle, park.

A reversal is claimed only once the entry it reverses is in lancamentos (it
needs that entry's id), so a cancellation that arrives while its invoice's
entries are still pending waits for them, in order, without a special case. One
whose entry was parked is claimed to be parked too: there is nothing to reverse
until an operator has dealt with the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.fiscal.tables import postings
from services.platform.outbox.dispatcher import Backlog

_CLAIM = """
SELECT p.posting_id, p.merchant_id, p.access_key, p.reversal, p.kind, p.amount_cents,
       p.value_date, p.description, p.request_id, p.traceparent,
       original.lancamento_id AS reverses_lancamento_id
FROM postings AS p
LEFT JOIN postings AS original
  ON p.reversal AND original.merchant_id = p.merchant_id
 AND original.request_id = left(p.request_id, -length(':reversal'))
WHERE p.delivered_at IS NULL AND p.parked_at IS NULL
  AND (NOT p.reversal OR original.lancamento_id IS NOT NULL OR original.parked_at IS NOT NULL)
ORDER BY p.posting_id LIMIT $1
FOR UPDATE OF p SKIP LOCKED
"""

# A document is posted once every entry it books (reversals aside) is delivered.
# Its row is locked first, in key order as bookings lock them (no cycle), and the
# check runs after, in its own statement: a snapshot taken once the lock is held,
# so it sees what another dispatcher delivered of the same document meanwhile.
_LOCK_DOCUMENTS = """
SELECT 1 FROM documents AS d
WHERE (d.merchant_id, d.access_key) IN (
    SELECT merchant_id, access_key
    FROM unnest($1::text[], $2::text[]) AS k(merchant_id, access_key))
ORDER BY d.merchant_id COLLATE "C", d.access_key COLLATE "C"
FOR UPDATE
"""
_MARK_POSTED = """
UPDATE documents AS d SET status = 'posted', updated_at = now()
WHERE d.status = 'accepted'
  AND (d.merchant_id, d.access_key) IN (
      SELECT merchant_id, access_key
    FROM unnest($1::text[], $2::text[]) AS k(merchant_id, access_key))
  AND NOT EXISTS (
      SELECT 1 FROM postings AS p
      WHERE p.merchant_id = d.merchant_id AND p.access_key = d.access_key
        AND NOT p.reversal AND p.delivered_at IS NULL)
"""


async def claim(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_CLAIM, limit))


async def delivered(
    conn: asyncpg.Connection,
    items: Sequence[asyncpg.Record],
    lancamento_ids: Sequence[UUID],
) -> None:
    await conn.execute(
        "UPDATE postings AS p SET delivered_at = now(), lancamento_id = d.lancamento_id "
        "FROM unnest($1::bigint[], $2::uuid[]) AS d(posting_id, lancamento_id) "
        "WHERE p.posting_id = d.posting_id",
        [item["posting_id"] for item in items],
        lancamento_ids,
    )
    keys = ([item["merchant_id"] for item in items], [item["access_key"] for item in items])
    await conn.execute(_LOCK_DOCUMENTS, *keys)
    await conn.execute(_MARK_POSTED, *keys)


async def park(conn: asyncpg.Connection, posting_id: int, reason: str) -> None:
    await conn.execute(
        "UPDATE postings SET parked_at = now(), parked_reason = $2 WHERE posting_id = $1",
        posting_id,
        reason,
    )


async def backlog(conn: AsyncConnection) -> Backlog:
    waiting = postings.c.delivered_at.is_(None) & postings.c.parked_at.is_(None)
    row = (
        await conn.execute(
            select(
                func.count().filter(waiting),
                func.extract("epoch", func.now() - func.min(postings.c.created_at).filter(waiting)),
                func.count().filter(postings.c.parked_at.is_not(None)),
            )
        )
    ).one()
    return Backlog(int(row[0]), max(0.0, float(row[1] or 0.0)), int(row[2]))
