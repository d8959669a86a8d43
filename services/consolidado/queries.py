"""The use cases' queries: plain types, free of protobuf (`requests` parses them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DayRange:
    """One merchant's inclusive range of days."""

    merchant_id: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1
