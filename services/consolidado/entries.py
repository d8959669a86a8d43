"""What ingest applies: one delivered entry, reduced to what the totals need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from uuid import UUID


class Kind(IntEnum):
    """Stored as smallint; the values are lancamentos.v1.Kind's."""

    CREDIT = 1
    DEBIT = 2


@dataclass(frozen=True)
class IngestEntry:
    lancamento_id: UUID
    merchant_id: str
    value_date: date
    kind: Kind
    amount_cents: int
    created_at: datetime


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    duplicates: int
    # Merchants whose totals changed: their cached balances are stale.
    merchants: frozenset[str]
