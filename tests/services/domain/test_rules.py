"""Pure field rules, page tokens, fingerprints, reversal rules and backoff."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import rules
from services.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    ViolationCollector,
)
from services.lancamentos import page_tokens
from services.lancamentos.domain import (
    Kind,
    Lancamento,
    ensure_same_request,
    fingerprint,
    reversal_of,
)
from services.platform.outbox.backoff import full_jitter_delay


def violations_of(check: object, *args: object) -> list[str]:
    errors = ViolationCollector()
    check(errors, "f", *args)  # type: ignore[operator]
    return [v.description for v in errors.violations]


@pytest.mark.parametrize("value", ["", "x" * 65, "a b", "ação", "m/1"])
def test_bad_merchant_ids(value: str) -> None:
    assert violations_of(rules.check_merchant_id, value)


@pytest.mark.parametrize("value", ["m", "M-1_x", "x" * 64])
def test_good_merchant_ids(value: str) -> None:
    assert not violations_of(rules.check_merchant_id, value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "required"),
        ("2024-02-30", "not a real calendar day"),
        ("2023-02-29", "not a real calendar day"),
        ("2024-1-01", "YYYY-MM-DD"),
        ("20240101", "YYYY-MM-DD"),
        ("1969-12-31", "year"),
        ("2200-01-01", "year"),
    ],
)
def test_bad_dates(value: str, fragment: str) -> None:
    (message,) = violations_of(rules.parse_date, value)
    assert fragment in message


def test_leap_day_is_a_real_day() -> None:
    errors = ViolationCollector()
    assert rules.parse_date(errors, "d", "2024-02-29") == date(2024, 2, 29)
    assert not errors.violations


@pytest.mark.parametrize("amount", [0, -1, rules.MAX_AMOUNT_CENTS + 1])
def test_bad_amounts(amount: int) -> None:
    assert violations_of(rules.check_amount, amount)


def test_max_amount_cannot_overflow_a_day_of_millions() -> None:
    assert rules.MAX_AMOUNT_CENTS * 9_000_000 < 2**63 - 1


def test_currency_defaults_and_rejects() -> None:
    errors = ViolationCollector()
    assert rules.normalize_currency(errors, "c", "") == "BRL"
    rules.normalize_currency(errors, "c", "usd")
    assert [v.field for v in errors.violations] == ["c"]


def test_range_rules() -> None:
    errors = ViolationCollector()
    rules.check_range(errors, "from_date", date(2026, 1, 2), date(2026, 1, 1))
    rules.check_range(errors, "from_date", date(2026, 1, 1), date(2027, 1, 2))
    rules.check_range(errors, "from_date", date(2026, 1, 1), date(2027, 1, 1))
    assert len(errors.violations) == 2


def test_collector_raises_all_violations_at_once() -> None:
    errors = ViolationCollector("row[3].")
    errors.add("a", "bad")
    errors.add("b", "worse")
    with pytest.raises(InvalidArgument) as caught:
        errors.raise_if_any()
    assert [v.field for v in caught.value.violations] == ["row[3].a", "row[3].b"]


@given(st.dates(date(1970, 1, 1), date(2199, 12, 31)), st.integers(0, 2**62))
def test_page_token_round_trip(day: date, sequence: int) -> None:
    digest = page_tokens.query_digest("m", "", "", 0)
    token = page_tokens.encode(page_tokens.PagePosition(day, sequence), digest)
    errors = ViolationCollector()
    assert page_tokens.decode(errors, "page_token", token, digest) == page_tokens.PagePosition(
        day, sequence
    )
    assert not errors.violations


@given(st.text(min_size=1, max_size=80))
def test_garbage_page_tokens_are_invalid_argument_not_crashes(token: str) -> None:
    errors = ViolationCollector()
    page_tokens.decode(errors, "page_token", token, "digest")
    assert [v.field for v in errors.violations] == ["page_token"]


def test_fingerprint_is_order_independent_and_payload_sensitive() -> None:
    assert fingerprint("create", {"a": 1, "b": 2}) == fingerprint("create", {"b": 2, "a": 1})
    assert fingerprint("create", {"a": 1}) != fingerprint("create", {"a": 2})
    assert fingerprint("create", {"a": 1}) != fingerprint("reverse", {"a": 1})


def _entry(**overrides: object) -> Lancamento:
    values: dict[str, object] = {
        "lancamento_id": uuid4(),
        "sequence": 1,
        "merchant_id": "m",
        "kind": Kind.CREDIT,
        "amount_cents": 10,
        "currency": "BRL",
        "value_date": date(2026, 1, 1),
        "description": "",
        "request_id": "r",
        "created_at": datetime.now(UTC),
        "reverses_lancamento_id": None,
        "reversed_by_lancamento_id": None,
        "fingerprint": "fp",
    }
    values.update(overrides)
    return Lancamento(**values)  # type: ignore[arg-type]


def test_reversal_is_opposite_kind_same_amount() -> None:
    original = _entry()
    reversal = reversal_of(
        original,
        request_id="x",
        value_date=date(2026, 1, 2),
        description="",
        fingerprint="f",
        requested_value_date=None,
    )
    assert reversal.kind is Kind.DEBIT
    assert reversal.amount_cents == original.amount_cents
    assert reversal.reverses_lancamento_id == original.lancamento_id


def test_reversal_rules() -> None:
    with pytest.raises(FailedPrecondition, match="already reversed"):
        reversal_of(
            _entry(reversed_by_lancamento_id=uuid4()),
            request_id="x",
            value_date=date(2026, 1, 2),
            description="",
            fingerprint="f",
            requested_value_date=None,
        )
    with pytest.raises(FailedPrecondition, match="itself a reversal"):
        reversal_of(
            _entry(reverses_lancamento_id=uuid4()),
            request_id="x",
            value_date=date(2026, 1, 2),
            description="",
            fingerprint="f",
            requested_value_date=None,
        )


def test_idempotency_rule() -> None:
    entry = _entry(fingerprint="same")
    assert ensure_same_request(entry, "same", None) is entry
    assert ensure_same_request(entry, "same", entry.value_date) is entry
    with pytest.raises(AlreadyExists, match="'r'"):
        ensure_same_request(entry, "other", None)
    with pytest.raises(AlreadyExists, match="'r'"):
        ensure_same_request(entry, "same", date(1999, 1, 1))


@given(st.integers(1, 100))
def test_backoff_is_bounded_and_grows(attempt: int) -> None:
    rng = random.Random(attempt)
    delay = full_jitter_delay(attempt, base=0.05, cap=5.0, rng=rng)
    assert 0 <= delay <= min(5.0, 0.05 * 2 ** (attempt - 1))
