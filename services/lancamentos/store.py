"""SQL for the lancamentos database. Functions take an open connection so the
caller decides the transaction boundary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Select, and_, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from services.lancamentos.domain import Kind, Lancamento, NewLancamento
from services.lancamentos.tables import lancamentos, outbox
from services.platform.audit import Actor
from services.platform.database import driver_connection

# Held from the insert until commit by every writer, so feed sequence numbers
# become visible in order and StreamLancamentos never skips a late commit.
FEED_LOCK_KEY = 0x6C616E63  # "lanc"
NOTIFY_CHANNEL = "caixa_lancamentos"

Key = tuple[str, str]  # (merchant_id, request_id)

_reversal = aliased(lancamentos, name="reversal")
_COLUMNS = (*lancamentos.c, _reversal.c.lancamento_id.label("reversed_by"))


def _base_select() -> Select[Any]:
    return select(*_COLUMNS).select_from(
        lancamentos.outerjoin(
            _reversal, _reversal.c.reverses_lancamento_id == lancamentos.c.lancamento_id
        )
    )


def _to_domain(row: Any) -> Lancamento:
    return Lancamento(
        lancamento_id=row.lancamento_id,
        sequence=row.sequence,
        merchant_id=row.merchant_id,
        kind=Kind(row.kind),
        amount_cents=row.amount_cents,
        currency=row.currency,
        value_date=row.value_date,
        description=row.description,
        request_id=row.request_id,
        created_at=row.created_at,
        reverses_lancamento_id=row.reverses_lancamento_id,
        reversed_by_lancamento_id=row.reversed_by,
        fingerprint=row.fingerprint,
    )


# One statement, so a batch costs one round trip: take the feed lock, insert
# the entries whose idempotency key is new, add them to their merchants'
# volumes, queue them in the outbox, wake the dispatchers (NOTIFY is
# delivered at commit) and audit them. Run alone it is its own
# transaction; inside a transaction it joins it.
_INSERT = """
WITH feed_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($11)),
inserted AS (
    INSERT INTO lancamentos (lancamento_id, merchant_id, kind, amount_cents, currency,
                             value_date, description, request_id, fingerprint,
                             reverses_lancamento_id)
    SELECT u.* FROM feed_lock,
         unnest($1::uuid[], $2::text[], $3::smallint[], $4::bigint[], $5::text[],
                $6::date[], $7::text[], $8::text[], $9::text[], $10::uuid[]) AS u
    ON CONFLICT (merchant_id, request_id) DO NOTHING
    RETURNING lancamento_id, sequence, created_at, merchant_id, amount_cents, request_id,
              reverses_lancamento_id
),
-- Fails the statement (merchant_volumes_bounded) if a merchant's sums could overflow.
volumes AS (
    INSERT INTO merchant_volumes (merchant_id, booked_cents)
    SELECT merchant_id, sum(amount_cents) FROM inserted GROUP BY merchant_id
    ON CONFLICT (merchant_id)
    DO UPDATE SET booked_cents = merchant_volumes.booked_cents + EXCLUDED.booked_cents
),
queued AS (
    INSERT INTO outbox (lancamento_id, traceparent)
    SELECT inserted.lancamento_id, t.traceparent
    FROM inserted JOIN unnest($1::uuid[], $12::text[]) AS t(lancamento_id, traceparent)
         USING (lancamento_id)
),
woken AS (SELECT pg_notify($13, '') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_row),
-- One audit record per new entry, in this same statement (see services.platform.audit).
audited AS (
    SELECT audit_append(
        array_agg(i.merchant_id ORDER BY i.sequence), array_agg(a.subject ORDER BY i.sequence),
        array_agg(a.rpc ORDER BY i.sequence), array_agg(i.request_id ORDER BY i.sequence),
        array_agg(concat_ws(' ', i.lancamento_id, i.reverses_lancamento_id) ORDER BY i.sequence),
        array_agg('created'::text ORDER BY i.sequence), array_agg(a.trace_id ORDER BY i.sequence)
    ) AS appended
    FROM inserted AS i
    JOIN unnest($1::uuid[], $14::text[], $15::text[], $16::text[])
         AS a(lancamento_id, subject, rpc, trace_id) USING (lancamento_id)
)
SELECT lancamento_id, sequence, created_at, (SELECT count(*) FROM woken) AS woken,
       (SELECT appended FROM audited) AS audited
FROM inserted
"""


async def insert_entries(
    conn: AsyncConnection,
    entries: Sequence[NewLancamento],
    traceparents: Sequence[str | None],
    actors: Sequence[Actor],
) -> dict[Key, Lancamento]:
    """Inserts entries whose idempotency key is new, each with its outbox row,
    and wakes dispatchers at commit. Returns the inserted ones by key; an entry
    missing from the result had a key that already existed.

    Joins the connection's transaction if it has begun one; otherwise the
    statement is its own transaction."""
    if not entries:
        return {}
    driver = await driver_connection(conn)
    if conn.in_transaction() and not driver.is_in_transaction():
        # SQLAlchemy begins lazily, on its first statement; the raw insert
        # below would run outside the transaction without one.
        await lock_feed(conn)
    ids = [uuid4() for _ in entries]
    rows = await driver.fetch(
        _INSERT,
        ids,
        [e.merchant_id for e in entries],
        [int(e.kind) for e in entries],
        [e.amount_cents for e in entries],
        [e.currency for e in entries],
        [e.value_date for e in entries],
        [e.description for e in entries],
        [e.request_id for e in entries],
        [e.fingerprint for e in entries],
        [e.reverses_lancamento_id for e in entries],
        FEED_LOCK_KEY,
        list(traceparents),
        NOTIFY_CHANNEL,
        [a.subject for a in actors],
        [a.rpc for a in actors],
        [a.trace_id for a in actors],
    )
    written = {row["lancamento_id"]: row for row in rows}
    inserted: dict[Key, Lancamento] = {}
    for entry, new_id in zip(entries, ids, strict=True):
        row = written.get(new_id)
        if row is None:
            continue
        inserted[(entry.merchant_id, entry.request_id)] = Lancamento(
            lancamento_id=new_id,
            sequence=row["sequence"],
            merchant_id=entry.merchant_id,
            kind=entry.kind,
            amount_cents=entry.amount_cents,
            currency=entry.currency,
            value_date=entry.value_date,
            description=entry.description,
            request_id=entry.request_id,
            created_at=row["created_at"],
            reverses_lancamento_id=entry.reverses_lancamento_id,
            reversed_by_lancamento_id=None,
            fingerprint=entry.fingerprint,
        )
    return inserted


async def lock_feed(conn: AsyncConnection) -> None:
    """Takes the feed lock for the rest of the transaction (and so begins it
    on the wire, before any statement sent through the driver connection)."""
    await conn.execute(select(func.pg_advisory_xact_lock(FEED_LOCK_KEY)))


async def hold_until_replicated(conn: AsyncConnection, found: Sequence[Lancamento]) -> None:
    """Makes this transaction's commit wait for the synchronous standbys, as a write does.

    A replayed request finds an entry committed earlier, maybe by a transaction whose
    wait for the standbys was cut short (its server process ended), which PostgreSQL then
    keeps on the primary only. PostgreSQL makes a commit wait for the standbys only if the
    transaction wrote WAL; a row lock does (it marks the tuple), and the commit record then
    comes after that entry's. So the replay is acknowledged only once the entry is on a
    standby, as its first answer would have been. KEY SHARE is the weakest lock: it holds
    off nothing but a concurrent FOR UPDATE (a reversal), and only until this commit."""
    ids = [entry.lancamento_id for entry in found]
    await conn.execute(
        select(lancamentos.c.lancamento_id)
        .where(lancamentos.c.lancamento_id.in_(ids))
        .with_for_update(key_share=True)
    )


async def find_by_keys(conn: AsyncConnection, keys: Sequence[Key]) -> dict[Key, Lancamento]:
    if not keys:
        return {}
    query = _base_select().where(
        tuple_(lancamentos.c.merchant_id, lancamentos.c.request_id).in_(list(set(keys)))
    )
    rows = (await conn.execute(query)).all()
    return {(r.merchant_id, r.request_id): _to_domain(r) for r in rows}


async def lock_entry(conn: AsyncConnection, merchant_id: str, lancamento_id: UUID) -> bool:
    """Row-locks an entry so concurrent reversals of it take turns."""
    result = await conn.execute(
        select(lancamentos.c.lancamento_id)
        .where(
            lancamentos.c.lancamento_id == lancamento_id,
            lancamentos.c.merchant_id == merchant_id,
        )
        .with_for_update()
    )
    return result.first() is not None


async def get(conn: AsyncConnection, merchant_id: str, lancamento_id: UUID) -> Lancamento | None:
    row = (
        await conn.execute(
            _base_select().where(
                lancamentos.c.lancamento_id == lancamento_id,
                lancamentos.c.merchant_id == merchant_id,
            )
        )
    ).first()
    return _to_domain(row) if row else None


@dataclass(frozen=True)
class PageFilter:
    merchant_id: str
    from_date: date | None
    to_date: date | None
    kind: Kind | None
    after: tuple[date, int] | None


async def list_page(conn: AsyncConnection, where: PageFilter, limit: int) -> list[Lancamento]:
    """Keyset page ordered by (value_date, sequence)."""
    conditions = [lancamentos.c.merchant_id == where.merchant_id]
    if where.from_date:
        conditions.append(lancamentos.c.value_date >= where.from_date)
    if where.to_date:
        conditions.append(lancamentos.c.value_date <= where.to_date)
    if where.kind:
        conditions.append(lancamentos.c.kind == int(where.kind))
    if where.after:
        conditions.append(
            tuple_(lancamentos.c.value_date, lancamentos.c.sequence) > tuple_(*where.after)
        )
    query = (
        _base_select()
        .where(and_(*conditions))
        .order_by(lancamentos.c.value_date, lancamentos.c.sequence)
        .limit(limit)
    )
    return [_to_domain(r) for r in (await conn.execute(query)).all()]


async def feed_page(
    conn: AsyncConnection, after_sequence: int, merchant_id: str | None, limit: int
) -> list[Lancamento]:
    query = _base_select().where(lancamentos.c.sequence > after_sequence)
    if merchant_id:
        query = query.where(lancamentos.c.merchant_id == merchant_id)
    query = query.order_by(lancamentos.c.sequence).limit(limit)
    return [_to_domain(r) for r in (await conn.execute(query)).all()]


@dataclass(frozen=True)
class DaySums:
    value_date: date
    credits_cents: int
    debits_cents: int
    count: int


async def day_sums(
    conn: AsyncConnection, merchant_id: str, from_date: date, to_date: date
) -> list[DaySums]:
    credit = func.coalesce(
        func.sum(lancamentos.c.amount_cents).filter(lancamentos.c.kind == int(Kind.CREDIT)), 0
    )
    debit = func.coalesce(
        func.sum(lancamentos.c.amount_cents).filter(lancamentos.c.kind == int(Kind.DEBIT)), 0
    )
    query = (
        select(lancamentos.c.value_date, credit, debit, func.count())
        .where(
            lancamentos.c.merchant_id == merchant_id,
            lancamentos.c.value_date.between(from_date, to_date),
        )
        .group_by(lancamentos.c.value_date)
        .order_by(lancamentos.c.value_date)
    )
    rows = (await conn.execute(query)).all()
    return [DaySums(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]


async def undelivered_count(conn: AsyncConnection, merchant_id: str | None = None) -> int:
    query = select(func.count()).select_from(outbox)
    if merchant_id:
        query = query.join(lancamentos, lancamentos.c.lancamento_id == outbox.c.lancamento_id)
        query = query.where(lancamentos.c.merchant_id == merchant_id)
    return int((await conn.execute(query)).scalar_one())
