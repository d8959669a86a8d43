"""The pure pieces: dense balances (properties) and drift detection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.consolidado.balances import DailyBalance, DayTotals, Opening, dense_balances
from services.consolidado.drifts import DaySums, find_drifts

START = date(2024, 1, 1)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
amounts = st.integers(min_value=0, max_value=10**12)


@st.composite
def ranges(draw: st.DrawFn) -> tuple[Opening, list[DayTotals], date, date]:
    length = draw(st.integers(min_value=1, max_value=366))
    end = START + timedelta(days=length - 1)
    offsets = draw(st.sets(st.integers(min_value=0, max_value=length - 1), max_size=40))
    totals = [
        DayTotals(
            day=START + timedelta(days=offset),
            credits_cents=draw(amounts),
            debits_cents=draw(amounts),
            lancamentos_count=draw(st.integers(min_value=1, max_value=1000)),
            as_of=draw(moments),
        )
        for offset in offsets
    ]
    opening = Opening(
        draw(st.integers(min_value=-(10**15), max_value=10**15)),
        draw(st.none() | moments),
    )
    return opening, totals, START, end


@given(ranges())
def test_dense_list_invariants(case: tuple[Opening, list[DayTotals], date, date]) -> None:
    opening, totals, start, end = case
    balances = dense_balances(opening, reversed(totals), start, end)

    assert [b.day for b in balances] == [
        start + timedelta(days=i) for i in range((end - start).days + 1)
    ]
    assert balances[0].opening_balance_cents == opening.balance_cents
    for before, after in pairwise(balances):
        assert before.closing_balance_cents == after.opening_balance_cents
    assert sum(b.net_cents for b in balances) == (
        balances[-1].closing_balance_cents - balances[0].opening_balance_cents
    )
    stored = {t.day: t for t in totals}
    for b in balances:
        found = stored.get(b.day)
        assert b.lancamentos_count == (found.lancamentos_count if found else 0)
        assert b.net_cents == (found.credits_cents - found.debits_cents if found else 0)
    # as_of: the newest moment counted so far, never moving backwards.
    for i, b in enumerate(balances):
        counted = [t.as_of for t in totals if t.day <= b.day]
        if opening.as_of is not None:
            counted.append(opening.as_of)
        assert b.as_of == (max(counted) if counted else None)
        if i and balances[i - 1].as_of is not None:
            assert b.as_of is not None and b.as_of >= balances[i - 1].as_of  # type: ignore[operator]


def test_days_outside_the_range_are_a_bug() -> None:
    day = DayTotals(date(2024, 2, 1), 1, 0, 1, datetime(2024, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="outside"):
        dense_balances(Opening(), [day], START, date(2024, 1, 31))
    with pytest.raises(ValueError, match="twice"):
        dense_balances(Opening(), [day, day], START, date(2024, 2, 2))
    with pytest.raises(ValueError, match="empty"):
        dense_balances(Opening(), [], START, START - timedelta(days=1))


def test_a_single_empty_day() -> None:
    assert dense_balances(Opening(5), [], START, START) == [DailyBalance(START, 0, 0, 5, 0, None)]


def test_drifts_are_days_that_differ_in_date_order() -> None:
    d1, d2, d3, d4 = (date(2024, 1, i) for i in range(1, 5))
    expected = {d1: DaySums(10, 0, 1), d2: DaySums(5, 5, 2), d4: DaySums(1, 0, 1)}
    actual = {d1: DaySums(10, 0, 1), d2: DaySums(5, 0, 1), d3: DaySums(7, 0, 1)}
    drifts = find_drifts(expected, actual)
    assert [(d.day, d.expected, d.actual) for d in drifts] == [
        (d2, DaySums(5, 5, 2), DaySums(5, 0, 1)),
        (d3, DaySums(), DaySums(7, 0, 1)),
        (d4, DaySums(1, 0, 1), DaySums()),
    ]
    assert find_drifts(expected, expected) == []
