"""Field rules shared by every service: ids, money, currency, dates, text."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.domain.errors import ViolationCollector

MERCHANT_ID_MAX = 64
REQUEST_ID_MAX = 128
DESCRIPTION_MAX = 255
CURRENCY = "BRL"
# Per-entry ceiling (R$ 10 bi).
MAX_AMOUNT_CENTS = 1_000_000_000_000
# A merchant's booked volume, every amount credit or debit, stays within a signed
# 64-bit integer (lancamentos enforces it in the statement that books). Every sum
# the services compute or return (a day's credits or debits, net, opening and
# closing balances, summaries) is bounded by it, so none can overflow.
MAX_MERCHANT_VOLUME_CENTS = 2**63 - 1
MIN_YEAR = 1970
MAX_YEAR = 2199
MAX_RANGE_DAYS = 366

# Matched with fullmatch: `$` would also match before a trailing newline.
_MERCHANT_RE = re.compile(r"[A-Za-z0-9_-]+")
_PRINTABLE_ASCII_RE = re.compile(r"[\x21-\x7e]+")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A description is one line of printable text: no C0/C1 controls (NUL, which
# PostgreSQL text cannot hold, ESC, which would replay into a terminal, tabs,
# newlines), no DEL, no Unicode line or paragraph separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_merchant_id(errors: ViolationCollector, field: str, value: str) -> None:
    if not value:
        errors.add(field, "is required")
    elif len(value) > MERCHANT_ID_MAX:
        errors.add(field, f"must be at most {MERCHANT_ID_MAX} characters, got {len(value)}")
    elif not _MERCHANT_RE.fullmatch(value):
        errors.add(field, "may contain only letters, digits, '-' and '_'")


def check_request_id(errors: ViolationCollector, field: str, value: str) -> None:
    if not value:
        errors.add(field, "is required: it is the idempotency key that makes retries safe")
    elif len(value) > REQUEST_ID_MAX:
        errors.add(field, f"must be at most {REQUEST_ID_MAX} characters, got {len(value)}")
    elif not _PRINTABLE_ASCII_RE.fullmatch(value):
        errors.add(field, "must be printable ASCII without spaces")


def check_uuid(errors: ViolationCollector, field: str, value: str) -> None:
    if not value:
        errors.add(field, "is required")
    elif not _UUID_RE.fullmatch(value):
        errors.add(field, "must be a lowercase UUID such as 0b7e9c3a-5d1f-4e8a-9c2b-6f1d2e3a4b5c")


def check_amount(errors: ViolationCollector, field: str, value: int) -> None:
    if value <= 0:
        errors.add(field, f"must be a positive number of centavos, got {value}")
    elif value > MAX_AMOUNT_CENTS:
        errors.add(
            field,
            f"must be at most {MAX_AMOUNT_CENTS} centavos (R$ 10 bi) so that balances "
            f"cannot overflow a 64-bit integer, got {value}",
        )


def normalize_currency(errors: ViolationCollector, field: str, value: str) -> str:
    if value in ("", CURRENCY):
        return CURRENCY
    errors.add(field, f"only {CURRENCY} is supported, got {value!r}")
    return value


def check_description(errors: ViolationCollector, field: str, value: str) -> None:
    if len(value) > DESCRIPTION_MAX:
        errors.add(field, f"must be at most {DESCRIPTION_MAX} characters, got {len(value)}")
    elif found := _CONTROL_RE.search(value):
        errors.add(
            field,
            f"must be one line of printable text; found the control character "
            f"U+{ord(found.group()):04X} at position {found.start()}",
        )


def parse_date(errors: ViolationCollector, field: str, value: str) -> date | None:
    """Parses a required `YYYY-MM-DD`; records a violation and returns None if bad."""
    if not value:
        errors.add(field, "is required, as YYYY-MM-DD")
        return None
    if not _DATE_RE.fullmatch(value):
        errors.add(field, f"must be a date as YYYY-MM-DD, got {value!r}")
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        errors.add(field, f"{value!r} is not a real calendar day")
        return None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        errors.add(field, f"year must be between {MIN_YEAR} and {MAX_YEAR}, got {parsed.year}")
        return None
    return parsed


def parse_optional_date(errors: ViolationCollector, field: str, value: str) -> date | None:
    return parse_date(errors, field, value) if value else None


def check_range(
    errors: ViolationCollector, from_field: str, start: date | None, end: date | None
) -> None:
    """Checks an inclusive day range; both ends already parsed (None when bad)."""
    if start is None or end is None:
        return
    if end < start:
        errors.add(from_field, f"must not be after to_date ({start} > {end})")
    elif (end - start).days + 1 > MAX_RANGE_DAYS:
        errors.add(from_field, f"the range may span at most {MAX_RANGE_DAYS} days")


def business_today(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()
