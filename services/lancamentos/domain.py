"""Pure ledger rules: kinds, entries, idempotency fingerprints, reversals."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum
from uuid import UUID

from services.domain.errors import AlreadyExists, FailedPrecondition


class Kind(IntEnum):
    """Values match `lancamentos.v1.Kind` and the stored smallint."""

    CREDIT = 1
    DEBIT = 2

    def opposite(self) -> Kind:
        return Kind.DEBIT if self is Kind.CREDIT else Kind.CREDIT


@dataclass(frozen=True)
class NewLancamento:
    """A validated entry about to be written."""

    merchant_id: str
    kind: Kind
    amount_cents: int
    currency: str
    value_date: date
    description: str
    request_id: str
    fingerprint: str
    reverses_lancamento_id: UUID | None = None
    # The date the request named; None when it let value_date default to today.
    requested_value_date: date | None = None


@dataclass(frozen=True)
class Lancamento:
    """A recorded entry."""

    lancamento_id: UUID
    sequence: int
    merchant_id: str
    kind: Kind
    amount_cents: int
    currency: str
    value_date: date
    description: str
    request_id: str
    created_at: datetime
    reverses_lancamento_id: UUID | None
    reversed_by_lancamento_id: UUID | None
    fingerprint: str


def fingerprint(operation: str, payload: dict[str, object]) -> str:
    """A stable digest of a mutation's payload, defaults applied, value_date
    aside: `ensure_same_request` compares that one itself."""
    canonical = json.dumps([operation, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def ensure_same_request(
    existing: Lancamento, incoming_fingerprint: str, requested_value_date: date | None
) -> Lancamento:
    """The idempotency rule: same key + same payload → the original result. A
    request that names no value_date matches its original's, whatever day it
    was booked on (a retry after midnight); one that names a date must name that one."""
    other_day = requested_value_date not in (None, existing.value_date)
    if existing.fingerprint != incoming_fingerprint or other_day:
        raise AlreadyExists(
            f"request_id {existing.request_id!r} was already used by merchant "
            f"{existing.merchant_id!r} for a different request (lancamento "
            f"{existing.lancamento_id}); use a new request_id for a new entry"
        )
    return existing


def ensure_reversible(original: Lancamento) -> None:
    if original.reverses_lancamento_id is not None:
        raise FailedPrecondition(
            f"lancamento {original.lancamento_id} is itself a reversal (of "
            f"{original.reverses_lancamento_id}) and cannot be reversed"
        )
    if original.reversed_by_lancamento_id is not None:
        raise FailedPrecondition(
            f"lancamento {original.lancamento_id} was already reversed by "
            f"{original.reversed_by_lancamento_id}; an entry is reversed at most once"
        )


def reversal_of(
    original: Lancamento,
    *,
    request_id: str,
    value_date: date,
    description: str,
    fingerprint: str,
    requested_value_date: date | None,
) -> NewLancamento:
    """The estorno: same amount, opposite kind, referencing the original."""
    ensure_reversible(original)
    return NewLancamento(
        merchant_id=original.merchant_id,
        kind=original.kind.opposite(),
        amount_cents=original.amount_cents,
        currency=original.currency,
        value_date=value_date,
        description=description or f"Estorno de {original.lancamento_id}",
        request_id=request_id,
        fingerprint=fingerprint,
        reverses_lancamento_id=original.lancamento_id,
        requested_value_date=requested_value_date,
    )
