"""BRL amounts as people type and read them; the services only see centavos."""

from __future__ import annotations

import re
from decimal import Decimal

# The contract's limit (protos/lancamentos/v1: "at most 1,000,000,000,000"),
# checked here so a typo fails before a call; the services enforce the same
# number (services.domain.rules), and tests/client hold the two equal.
MAX_AMOUNT_CENTS = 1_000_000_000_000

# Digits with an optional '.' and decimals; the sign is allowed here only so
# that "-1" gets the "must be positive" message rather than "not a number".
_AMOUNT_RE = re.compile(r"^[+-]?\d+(?:\.(?P<decimals>\d+))?$")


def parse_brl_amount(text: str) -> int:
    """`"10.50"` → 1050 centavos, exactly; `ValueError` with a message a person can act on."""
    value = text.strip()
    if "," in value:
        raise ValueError(
            f"invalid amount {text!r}: use '.' for the centavos and no thousands separator, "
            "e.g. 1234.56"
        )
    match = _AMOUNT_RE.match(value)
    if match is None:
        raise ValueError(f"invalid amount {text!r}: expected reais such as 10 or 10.50")
    decimals = match.group("decimals") or ""
    if len(decimals) > 2:
        raise ValueError(
            f"invalid amount {text!r}: at most 2 decimals (centavos); write 1234 for R$ 1.234,00"
        )
    cents = int(Decimal(value) * 100)
    if cents <= 0:
        raise ValueError(f"invalid amount {text!r}: must be positive")
    check_amount_cents(cents)
    return cents


def check_amount_cents(cents: int) -> int:
    """Rejects centavos the services would refuse (and that int64 may not even hold)."""
    if cents <= 0:
        raise ValueError(f"invalid amount: must be a positive number of centavos, got {cents}")
    if cents > MAX_AMOUNT_CENTS:
        raise ValueError(f"invalid amount: at most {format_brl(MAX_AMOUNT_CENTS)} per entry")
    return cents


def format_brl(cents: int) -> str:
    """1234567 → `"R$ 12.345,67"`; negatives as `"-R$ 1,00"` (pt-BR)."""
    sign = "-" if cents < 0 else ""
    reais, centavos = divmod(abs(cents), 100)
    return f"{sign}R$ {reais:,}".replace(",", ".") + f",{centavos:02d}"
