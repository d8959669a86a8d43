"""SQL over the consolidado tables; callers own connections and transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
from sqlalchemy import TextClause, and_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.consolidado.balances import DayTotals, Opening
from services.consolidado.drifts import DaySums
from services.consolidado.entries import IngestEntry
from services.consolidado.tables import daily_totals


@dataclass(frozen=True)
class Tables:
    """Where an apply writes: the live tables, or a rebuild's shadow copies."""

    applied: str
    totals: str
    versioned: bool  # bump the merchants' balance versions in the same statement


LIVE = Tables("applied_lancamentos", "daily_totals", versioned=True)

# One statement, so the dedupe rows, the totals they feed and the merchants'
# balance versions commit together, and take their locks in one global order
# (dedupe rows by lancamento_id, then totals by merchant and day, then versions
# by merchant): concurrent batches queue, they don't deadlock. Only rows this
# statement inserted reach the totals, so a redelivered entry changes nothing.
_APPLY = """
WITH incoming AS (
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:merchants AS varchar[]), CAST(:dates AS date[]),
        CAST(:kinds AS smallint[]), CAST(:amounts AS bigint[]),
        CAST(:created AS timestamptz[])
    ) AS t(lancamento_id, merchant_id, value_date, kind, amount_cents, created_at)
),
inserted AS (
    INSERT INTO {applied}
        (lancamento_id, merchant_id, value_date, kind, amount_cents, created_at)
    SELECT lancamento_id, merchant_id, value_date, kind, amount_cents, created_at
    FROM incoming
    ORDER BY lancamento_id
    ON CONFLICT (lancamento_id) DO NOTHING
    RETURNING merchant_id, value_date, kind, amount_cents, created_at
),
day_sums AS (
    SELECT merchant_id, value_date,
        coalesce(sum(amount_cents) FILTER (WHERE kind = 1), 0) AS credits_cents,
        coalesce(sum(amount_cents) FILTER (WHERE kind = 2), 0) AS debits_cents,
        count(*) AS lancamentos_count,
        max(created_at) AS as_of
    FROM inserted
    GROUP BY merchant_id, value_date
),
upserted AS (
    INSERT INTO {totals} AS d
        (merchant_id, value_date, credits_cents, debits_cents, lancamentos_count, as_of)
    SELECT merchant_id, value_date, credits_cents, debits_cents, lancamentos_count, as_of
    FROM day_sums
    ORDER BY merchant_id, value_date
    ON CONFLICT (merchant_id, value_date) DO UPDATE SET
        credits_cents = d.credits_cents + excluded.credits_cents,
        debits_cents = d.debits_cents + excluded.debits_cents,
        lancamentos_count = d.lancamentos_count + excluded.lancamentos_count,
        as_of = greatest(d.as_of, excluded.as_of)
    RETURNING merchant_id
){bump}
SELECT
    (SELECT count(*) FROM inserted) AS applied,
    ARRAY(SELECT DISTINCT merchant_id FROM upserted) AS merchants
"""
_BUMP = """,
bumped AS (
    INSERT INTO balance_versions AS v (merchant_id, version)
    SELECT DISTINCT merchant_id, 1 FROM upserted ORDER BY merchant_id
    ON CONFLICT (merchant_id) DO UPDATE SET version = v.version + 1
)"""


def _apply_statement(tables: Tables) -> TextClause:
    return text(
        _APPLY.format(
            applied=tables.applied, totals=tables.totals, bump=_BUMP if tables.versioned else ""
        )
    )


async def apply_entries(
    conn: AsyncConnection, entries: Sequence[IngestEntry], tables: Tables = LIVE
) -> tuple[int, frozenset[str]]:
    """Applies entries not applied before; returns how many and their merchants."""
    row = (
        await conn.execute(
            _apply_statement(tables),
            {
                "ids": [e.lancamento_id for e in entries],
                "merchants": [e.merchant_id for e in entries],
                "dates": [e.value_date for e in entries],
                "kinds": [int(e.kind) for e in entries],
                "amounts": [e.amount_cents for e in entries],
                "created": [e.created_at for e in entries],
            },
        )
    ).one()
    return int(row.applied), frozenset(row.merchants)


# The read path's two queries run on the driver connection: one prepared
# statement each and no transaction, where SQLAlchemy's statement layer wrapped
# each in BEGIN and ROLLBACK (three round trips) and rebuilt it per call. A
# single statement reads one snapshot either way.
_BALANCE_VERSION = "SELECT version FROM balance_versions WHERE merchant_id = $1"

# The opening aggregate (value_date NULL) and the stored days of the range.
_BALANCE_INPUTS = """
SELECT NULL::date AS value_date,
    coalesce(sum(credits_cents - debits_cents), 0) AS opening_cents,
    NULL::bigint AS credits_cents,
    NULL::bigint AS debits_cents,
    NULL::bigint AS lancamentos_count,
    max(as_of) AS as_of
FROM daily_totals
WHERE merchant_id = $1 AND value_date < $2
UNION ALL
SELECT value_date, NULL, credits_cents, debits_cents, lancamentos_count, as_of
FROM daily_totals
WHERE merchant_id = $1 AND value_date BETWEEN $2 AND $3
"""


async def balance_version(driver: asyncpg.Connection, merchant_id: str) -> int:
    """The merchant's balance version: 0 before anything was applied to it."""
    return int(await driver.fetchval(_BALANCE_VERSION, merchant_id) or 0)


async def balance_inputs(
    driver: asyncpg.Connection, merchant_id: str, start: date, end: date
) -> tuple[Opening, list[DayTotals]]:
    """The opening aggregate before `start` and the stored days in range, read in
    one statement so both come from the same snapshot."""
    opening = Opening()
    days: list[DayTotals] = []
    for row in await driver.fetch(_BALANCE_INPUTS, merchant_id, start, end):
        if row["value_date"] is None:
            # A sum comes back as numeric (Decimal).
            opening = Opening(int(row["opening_cents"]), row["as_of"])
        else:
            days.append(
                DayTotals(
                    row["value_date"],
                    row["credits_cents"],
                    row["debits_cents"],
                    row["lancamentos_count"],
                    row["as_of"],
                )
            )
    days.sort(key=lambda d: d.day)
    return opening, days


async def day_sums(
    conn: AsyncConnection, merchant_id: str, start: date, end: date
) -> dict[date, DaySums]:
    t = daily_totals.c
    rows = await conn.execute(
        select(t.value_date, t.credits_cents, t.debits_cents, t.lancamentos_count).where(
            and_(t.merchant_id == merchant_id, t.value_date.between(start, end))
        )
    )
    return {
        row.value_date: DaySums(row.credits_cents, row.debits_cents, row.lancamentos_count)
        for row in rows
    }
