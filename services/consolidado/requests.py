"""Turns consolidado.v1 requests into validated values, naming every bad field."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from uuid import UUID

from consolidado.v1 import consolidado_pb2 as pb
from lancamentos.v1 import lancamentos_pb2 as lpb

from services.consolidado.entries import IngestEntry, Kind
from services.consolidado.queries import DayRange
from services.domain import rules
from services.domain.errors import ViolationCollector

# Far above what the outbox dispatcher sends; bounds one transaction's size.
MAX_BATCH = 10_000
# A bad batch reports this many violations at most.
MAX_REPORTED_VIOLATIONS = 100


def day_range(merchant_id: str, from_date: str, to_date: str) -> DayRange:
    """For ListDailyBalances and Reconcile: at most MAX_RANGE_DAYS days."""
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", merchant_id)
    start = rules.parse_date(errors, "from_date", from_date)
    end = rules.parse_date(errors, "to_date", to_date)
    rules.check_range(errors, "from_date", start, end)
    errors.raise_if_any()
    assert start is not None and end is not None
    return DayRange(merchant_id, start, end)


def single_day(request: pb.GetDailyBalanceRequest) -> DayRange:
    errors = ViolationCollector()
    rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    day = rules.parse_date(errors, "date", request.date)
    errors.raise_if_any()
    assert day is not None
    return DayRange(request.merchant_id, day, day)


def ingest_entry(entry: lpb.Lancamento, errors: ViolationCollector) -> IngestEntry | None:
    """Validates one delivered entry; records violations and returns None if bad."""
    start = len(errors.violations)
    rules.check_uuid(errors, "lancamento_id", entry.lancamento_id)
    rules.check_merchant_id(errors, "merchant_id", entry.merchant_id)
    if entry.kind not in (lpb.KIND_CREDIT, lpb.KIND_DEBIT):
        errors.add("kind", "must be KIND_CREDIT or KIND_DEBIT")
    rules.check_amount(errors, "amount_cents", entry.amount_cents)
    rules.normalize_currency(errors, "currency", entry.currency)
    value_date = rules.parse_date(errors, "value_date", entry.value_date)
    created_at = None
    if not entry.HasField("created_at"):
        errors.add("created_at", "is required: it dates the balance (as_of)")
    else:
        try:
            created_at = entry.created_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            errors.add("created_at", "is not a valid timestamp")
    if len(errors.violations) > start or value_date is None or created_at is None:
        return None
    return IngestEntry(
        lancamento_id=UUID(entry.lancamento_id),
        merchant_id=entry.merchant_id,
        value_date=value_date,
        kind=Kind(entry.kind),
        amount_cents=entry.amount_cents,
        created_at=created_at,
    )


def ingest_batch(entries: Sequence[lpb.Lancamento]) -> list[IngestEntry]:
    """Validates a whole batch: either every entry is good or nothing is applied.

    A lancamento_id may repeat (a redelivery), but only with the same payload.
    """
    errors = ViolationCollector()
    if len(entries) > MAX_BATCH:
        errors.add("lancamentos", f"at most {MAX_BATCH} per batch, got {len(entries)}")
        errors.raise_if_any()
    parsed: list[IngestEntry] = []
    first_seen: dict[UUID, tuple[int, IngestEntry]] = {}
    for index, message in enumerate(entries):
        prefix = f"lancamentos[{index}]."
        entry_errors = ViolationCollector(prefix)
        entry = ingest_entry(message, entry_errors)
        errors.violations.extend(entry_errors.violations)
        if entry is not None:
            seen_index, seen = first_seen.setdefault(entry.lancamento_id, (index, entry))
            if seen != entry:
                errors.add(
                    prefix + "lancamento_id",
                    f"repeats lancamentos[{seen_index}] with a different payload",
                )
            parsed.append(entry)
        if len(errors.violations) >= MAX_REPORTED_VIOLATIONS:
            break
    errors.raise_if_any()
    return parsed
