"""SQL of a rebuild: shadow copies of the live tables, filled from the feed, and
the swap that makes them live in one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.consolidado import store
from services.consolidado.entries import IngestEntry, Kind

SHADOW = store.Tables("rebuild_applied", "rebuild_totals", versioned=False)
# Held for a whole rebuild (session lock): two rebuilds would share the shadow.
REBUILD_LOCK_KEY = 0x7265626C  # "rebl"

_SHADOWS = {SHADOW.applied: "applied_lancamentos", SHADOW.totals: "daily_totals"}


async def try_lock_rebuild(conn: AsyncConnection) -> bool:
    found = await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REBUILD_LOCK_KEY})
    return bool(found.scalar_one())


async def unlock_rebuild(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REBUILD_LOCK_KEY})


async def create_shadow(conn: AsyncConnection) -> None:
    """Empty copies of the live tables (constraints and keys, so the apply's
    ON CONFLICT works); unlogged: a crash loses only a rebuild to run again."""
    for shadow, live in _SHADOWS.items():
        await conn.execute(text(f"DROP TABLE IF EXISTS {shadow}"))
        await conn.execute(
            text(
                f"CREATE UNLOGGED TABLE {shadow} (LIKE {live} INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
            )
        )


async def drop_shadow(conn: AsyncConnection) -> None:
    for shadow in _SHADOWS:
        await conn.execute(text(f"DROP TABLE IF EXISTS {shadow}"))


def _only(merchant_id: str | None, alias: str = "") -> str:
    column = f"{alias}.merchant_id" if alias else "merchant_id"
    return "TRUE" if merchant_id is None else f"{column} = :merchant_id"


async def database_now(conn: AsyncConnection) -> datetime:
    """The transaction's start time, the clock `applied_at` is stamped with."""
    return (await conn.execute(text("SELECT now()"))).scalar_one()  # type: ignore[no-any-return]


async def swap(
    conn: AsyncConnection, merchant_id: str | None, *, started: datetime
) -> frozenset[str]:
    """Makes the shadow live for `merchant_id` (all when None), in the caller's
    transaction; returns the merchants it rebuilt (those with entries).

    Ingest is held off until commit; readers are not, and see the old totals or
    the new ones, never a mix. Entries ingest applied since `started` (when the
    feed was opened) that the feed did not bring, because lancamentos committed
    them after the feed read past them, are first copied into the shadow, so none
    is lost. One applied before `started` was committed before it, so the feed
    has it unless lancamentos never had it: that one is forgotten."""
    params = {"merchant_id": merchant_id, "started": started}
    await conn.execute(text("LOCK TABLE applied_lancamentos, daily_totals IN EXCLUSIVE MODE"))
    late = await conn.execute(
        text(
            "SELECT l.lancamento_id, l.merchant_id, l.value_date, l.kind, l.amount_cents, "
            "l.created_at FROM applied_lancamentos l "
            f"WHERE {_only(merchant_id, 'l')} AND l.applied_at >= :started AND NOT EXISTS "
            f"(SELECT 1 FROM {SHADOW.applied} s WHERE s.lancamento_id = l.lancamento_id)"
        ),
        params,
    )
    entries = [IngestEntry(r[0], r[1], r[2], Kind(r[3]), r[4], r[5]) for r in late]
    if entries:
        await store.apply_entries(conn, entries, SHADOW)
    rebuilt = frozenset(
        row[0]
        for row in await conn.execute(text(f"SELECT DISTINCT merchant_id FROM {SHADOW.totals}"))
    )
    current = await conn.execute(
        text(f"SELECT DISTINCT merchant_id FROM daily_totals WHERE {_only(merchant_id)}"), params
    )
    # Both: a merchant whose live totals go away has its cached balances orphaned too.
    touched = rebuilt | {str(row[0]) for row in current}
    # DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe for concurrent readers.
    for shadow, live in _SHADOWS.items():
        await conn.execute(text(f"DELETE FROM {live} WHERE {_only(merchant_id)}"), params)
        await conn.execute(text(f"INSERT INTO {live} SELECT * FROM {shadow}"))
    await conn.execute(
        text(
            "INSERT INTO balance_versions AS v (merchant_id, version) "
            "SELECT m, 1 FROM unnest(CAST(:merchants AS varchar[])) AS m ORDER BY m "
            "ON CONFLICT (merchant_id) DO UPDATE SET version = v.version + 1"
        ),
        {"merchants": sorted(touched)},
    )
    return rebuilt
