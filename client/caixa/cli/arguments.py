"""argparse `type=` adapters: they turn our parsers' messages into usage errors."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from caixa.cli.dates import parse_iso_date, parse_timezone
from caixa.cli.money import check_amount_cents, parse_brl_amount

T = TypeVar("T")


def _usage_error_on_value_error(parse: Callable[[str], T]) -> Callable[[str], T]:
    # argparse shows an ArgumentTypeError's own text; a ValueError only as
    # "invalid <function name> value", which hides our explanation.
    def adapter(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    adapter.__name__ = parse.__name__
    return adapter


def _parse_cents(text: str) -> int:
    try:
        cents = int(text)
    except ValueError:
        raise ValueError(f"invalid centavos {text!r}: expected a whole number") from None
    return check_amount_cents(cents)


def _parse_non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"invalid number {text!r}: expected a whole number") from None
    if value < 0:
        raise ValueError(f"invalid number {text!r}: must not be negative")
    return value


def _parse_trace_limit(text: str) -> int:
    value = _parse_non_negative_int(text)
    if not 1 <= value <= 1000:
        raise ValueError(f"invalid number {text!r}: expected 1 to 1000")
    return value


def _parse_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"invalid timeout {text!r}: expected seconds, e.g. 5 or 0.5") from None
    if not value > 0:
        raise ValueError(f"invalid timeout {text!r}: must be positive")
    return value


# The forms fiscal takes (the check digits are its to verify): a CNPJ, whose
# first 12 characters may be letters since July 2026, or a CPF.
_CNPJ_RE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_CPF_RE = re.compile(r"[0-9]{11}")


def _parse_cnpj_or_cpf(text: str) -> str:
    """`34.128.745/0001-52` → `34128745000152`: the punctuation people copy goes."""
    value = re.sub(r"[.\-/\s]", "", text).upper()
    if not (_CNPJ_RE.fullmatch(value) or _CPF_RE.fullmatch(value)):
        raise ValueError(f"invalid CNPJ or CPF {text!r}: expected 14 characters or 11 digits")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `1h` or `7d`."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 90s, 30m, 1h") from None
    if not seconds > 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return seconds


brl_amount: Callable[[str], int] = _usage_error_on_value_error(parse_brl_amount)
amount_cents: Callable[[str], int] = _usage_error_on_value_error(_parse_cents)
iso_date: Callable[[str], date] = _usage_error_on_value_error(parse_iso_date)
non_negative_int: Callable[[str], int] = _usage_error_on_value_error(_parse_non_negative_int)
trace_limit: Callable[[str], int] = _usage_error_on_value_error(_parse_trace_limit)
timeout_seconds: Callable[[str], float] = _usage_error_on_value_error(_parse_timeout)
time_zone: Callable[[str], str] = _usage_error_on_value_error(parse_timezone)
duration_seconds: Callable[[str], float] = _usage_error_on_value_error(_parse_duration)
cnpj_or_cpf: Callable[[str], str] = _usage_error_on_value_error(_parse_cnpj_or_cpf)
