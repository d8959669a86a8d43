"""Calendar days as the CLI reads them, and "today" for the business."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

# Value dates are business days in Brazil, whatever the operator's machine says.
BUSINESS_TIMEZONE = "America/Sao_Paulo"

# fromisoformat alone also takes 20240102 and 2024-W01-1.
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_iso_date(text: str) -> date:
    """`YYYY-MM-DD` → `date`; `ValueError` naming the expected form otherwise."""
    try:
        if not _DATE_RE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date {text!r}: expected a real day as YYYY-MM-DD") from None


def business_today() -> date:
    return datetime.now(ZoneInfo(BUSINESS_TIMEZONE)).date()
