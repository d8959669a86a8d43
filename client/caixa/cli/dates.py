"""Calendar days as the CLI reads them, and "today" for the business."""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Value dates are business days in the services' BUSINESS_TIMEZONE, whatever the
# operator's machine says; the CLI cannot ask the server, so it is told.
TIMEZONE_ENV = "CAIXA_TIMEZONE"
DEFAULT_TIMEZONE = "America/Sao_Paulo"

# fromisoformat alone also takes 20240102 and 2024-W01-1.
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(text: str) -> date:
    """`YYYY-MM-DD` → `date`; `ValueError` naming the expected form otherwise."""
    try:
        if not _DATE_RE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date {text!r}: expected a real day as YYYY-MM-DD") from None


def default_timezone() -> str:
    """`$CAIXA_TIMEZONE`, else the services' default zone."""
    return os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE


def parse_timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r}: give an IANA name such as {DEFAULT_TIMEZONE} "
            "(pip install tzdata if this system has no zone files)"
        ) from None
    return text


def business_today(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()
