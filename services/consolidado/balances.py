"""Daily balances from stored day totals: the pure domain piece of the reads.

Only days with entries are stored; every other day of a range carries the
previous closing balance over, so the list this builds has no gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class DayTotals:
    """The stored totals of one day that has entries."""

    day: date
    credits_cents: int
    debits_cents: int
    lancamentos_count: int
    as_of: datetime


@dataclass(frozen=True)
class Opening:
    """Everything before the first day of a range, summed up."""

    balance_cents: int = 0
    as_of: datetime | None = None


@dataclass(frozen=True)
class DailyBalance:
    day: date
    credits_cents: int
    debits_cents: int
    opening_balance_cents: int
    lancamentos_count: int
    # Newest entry counted in this balance, on this day or before.
    as_of: datetime | None

    @property
    def net_cents(self) -> int:
        return self.credits_cents - self.debits_cents

    @property
    def closing_balance_cents(self) -> int:
        return self.opening_balance_cents + self.net_cents


def dense_balances(
    opening: Opening, totals: Iterable[DayTotals], start: date, end: date
) -> list[DailyBalance]:
    """One balance per calendar day from `start` to `end` inclusive."""
    if end < start:
        raise ValueError(f"empty range {start}..{end}")
    by_day: dict[date, DayTotals] = {}
    for day_totals in totals:
        if not start <= day_totals.day <= end:
            raise ValueError(f"{day_totals.day} is outside {start}..{end}")
        if day_totals.day in by_day:
            raise ValueError(f"{day_totals.day} is given twice")
        by_day[day_totals.day] = day_totals
    balance, as_of = opening.balance_cents, opening.as_of
    result: list[DailyBalance] = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        found = by_day.get(day)
        if found is not None and (as_of is None or found.as_of > as_of):
            as_of = found.as_of
        daily = DailyBalance(
            day=day,
            credits_cents=found.credits_cents if found else 0,
            debits_cents=found.debits_cents if found else 0,
            opening_balance_cents=balance,
            lancamentos_count=found.lancamentos_count if found else 0,
            as_of=as_of,
        )
        result.append(daily)
        balance = daily.closing_balance_cents
    return result
