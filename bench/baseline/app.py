"""The baseline service: FastAPI on uvicorn (uvloop, httptools) over one asyncpg
pool, with no handicaps. Creates are idempotent on (merchant_id, request_id)
and durable at the default synchronous_commit; a daily balance is one SQL
statement over the (merchant_id, value_date) index.

`uvicorn bench.baseline.app:app`, with BASELINE_DATABASE_URL set."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import FastAPI, Path
from pydantic import BaseModel, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id bigserial PRIMARY KEY,
    merchant_id text NOT NULL,
    request_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('KIND_CREDIT', 'KIND_DEBIT')),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    value_date date NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, request_id)
);
CREATE INDEX IF NOT EXISTS entries_merchant_day ON entries (merchant_id, value_date);
"""

INSERT = """
INSERT INTO entries (merchant_id, request_id, kind, amount_cents, value_date, description)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (merchant_id, request_id) DO NOTHING
RETURNING id, kind, amount_cents, value_date, description, created_at
"""

# A replay answers with the entry as first written.
EXISTING = """
SELECT id, kind, amount_cents, value_date, description, created_at
FROM entries WHERE merchant_id = $1 AND request_id = $2
"""

# sum(bigint) is numeric in PostgreSQL: cast back, or asyncpg hands out Decimals.
BALANCE = """
SELECT
    coalesce(sum(CASE kind WHEN 'KIND_CREDIT' THEN amount_cents ELSE -amount_cents END)
             FILTER (WHERE value_date < $2), 0)::bigint AS opening,
    coalesce(sum(amount_cents) FILTER (WHERE value_date = $2 AND kind = 'KIND_CREDIT'), 0)
        ::bigint AS credits,
    coalesce(sum(amount_cents) FILTER (WHERE value_date = $2 AND kind = 'KIND_DEBIT'), 0)
        ::bigint AS debits,
    count(*) FILTER (WHERE value_date = $2) AS entries,
    max(created_at) AS as_of
FROM entries
WHERE merchant_id = $1 AND value_date <= $2
"""

MerchantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class NewEntry(BaseModel):
    kind: Literal["KIND_CREDIT", "KIND_DEBIT"]
    amount_cents: int = Field(gt=0, le=10**15)
    value_date: date
    request_id: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=256)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("BASELINE_POOL_SIZE", "20"))
    pool = await asyncpg.create_pool(
        os.environ["BASELINE_DATABASE_URL"], min_size=size, max_size=size
    )
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/merchants/{merchant_id}/lancamentos")
async def create(merchant_id: MerchantId, entry: NewEntry) -> dict[str, Any]:
    async with app.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            INSERT,
            merchant_id,
            entry.request_id,
            entry.kind,
            entry.amount_cents,
            entry.value_date,
            entry.description,
        )
        if row is None:
            row = await conn.fetchrow(EXISTING, merchant_id, entry.request_id)
    return {
        "lancamento_id": str(row["id"]),
        "merchant_id": merchant_id,
        "kind": row["kind"],
        "amount_cents": row["amount_cents"],
        "currency": "BRL",
        "value_date": row["value_date"].isoformat(),
        "description": row["description"],
        "request_id": entry.request_id,
        "created_at": row["created_at"].isoformat(),
    }


@app.get("/v1/merchants/{merchant_id}/daily-balances/{day}")
async def daily_balance(merchant_id: MerchantId, day: date) -> dict[str, Any]:
    async with app.state.pool.acquire() as conn:
        row = await conn.fetchrow(BALANCE, merchant_id, day)
    net = row["credits"] - row["debits"]
    return {
        "merchant_id": merchant_id,
        "date": day.isoformat(),
        "currency": "BRL",
        "credits_cents": row["credits"],
        "debits_cents": row["debits"],
        "net_cents": net,
        "opening_balance_cents": row["opening"],
        "closing_balance_cents": row["opening"] + net,
        "lancamentos_count": row["entries"],
        "as_of": row["as_of"].isoformat() if row["as_of"] else None,
    }
