"""Reconciliation's comparison: lancamentos' per-day sums against our totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DaySums:
    credits_cents: int = 0
    debits_cents: int = 0
    lancamentos_count: int = 0


NO_ENTRIES = DaySums()


@dataclass(frozen=True)
class Drift:
    day: date
    expected: DaySums
    actual: DaySums


@dataclass(frozen=True)
class ReconcileReport:
    drifts: list[Drift]
    undelivered_count: int
    days_checked: int
    parked_count: int = 0


def find_drifts(expected: Mapping[date, DaySums], actual: Mapping[date, DaySums]) -> list[Drift]:
    """Every day, in date order, whose sums differ; a missing day has no entries."""
    return [
        Drift(day, expected.get(day, NO_ENTRIES), actual.get(day, NO_ENTRIES))
        for day in sorted(expected.keys() | actual.keys())
        if expected.get(day, NO_ENTRIES) != actual.get(day, NO_ENTRIES)
    ]
