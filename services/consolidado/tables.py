"""The consolidado database: one dedupe row per applied entry, daily totals, and
the per-merchant version that names a merchant's cached balances."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

metadata = MetaData()

# Its primary key is what makes ingest exactly-once in effect: an entry whose
# row already exists is a duplicate and changes no total.
applied_lancamentos = Table(
    "applied_lancamentos",
    metadata,
    Column("lancamento_id", UUID(as_uuid=True), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False),
    Column("applied_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN (1, 2)", name="applied_lancamentos_kind_valid"),
    CheckConstraint("amount_cents > 0", name="applied_lancamentos_amount_positive"),
    # Per-merchant rebuild deletes by merchant.
    Index("applied_lancamentos_by_merchant", "merchant_id", "value_date"),
)

daily_totals = Table(
    "daily_totals",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("value_date", Date, primary_key=True),
    Column("credits_cents", BigInteger, nullable=False),
    Column("debits_cents", BigInteger, nullable=False),
    Column("lancamentos_count", BigInteger, nullable=False),
    # The newest created_at applied to this day.
    Column("as_of", TIMESTAMP(timezone=True), nullable=False),
    CheckConstraint("credits_cents >= 0", name="daily_totals_credits_not_negative"),
    CheckConstraint("debits_cents >= 0", name="daily_totals_debits_not_negative"),
    CheckConstraint("lancamentos_count > 0", name="daily_totals_count_positive"),
)

# Bumped in the same statement that changes a merchant's totals (ingest, and a
# rebuild's swap), so a cached balance is named by the state it was read at:
# no bump can be lost after a commit, and Redis evicting anything is harmless.
balance_versions = Table(
    "balance_versions",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
