"""GetDailyBalance and ListDailyBalances over a real server: dense ranges,
carry-over, back-dated entries, freshness and every error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as pb

from tests.support.consolidado import batch, debit, entry
from tests.support.grpc_errors import expect_error, field_violations

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub as IngestStub,
    )
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoServiceAsyncStub as BalancesStub,
    )

T1 = datetime(2024, 3, 1, 10, tzinfo=UTC)
T2 = datetime(2024, 3, 5, 10, tzinfo=UTC)
T3 = datetime(2024, 3, 9, 10, tzinfo=UTC)


def list_request(
    from_date: str, to_date: str, merchant_id: str = "m1"
) -> pb.ListDailyBalancesRequest:
    return pb.ListDailyBalancesRequest(
        merchant_id=merchant_id, from_date=from_date, to_date=to_date
    )


def closings(response: pb.ListDailyBalancesResponse) -> list[int]:
    return [b.closing_balance_cents for b in response.daily_balances]


async def test_every_day_is_listed_and_empty_days_carry_over(
    balances_stub: BalancesStub, ingest_stub: IngestStub
) -> None:
    await ingest_stub.ApplyLancamentos(
        batch(
            entry(500, value_date="2024-02-20", created_at=T1),
            entry(1000, value_date="2024-03-02", created_at=T1),
            debit(300, value_date="2024-03-02", created_at=T2),
            entry(70, value_date="2024-03-04", created_at=T1),
            entry(1, value_date="2024-03-10", created_at=T3),
        )
    )
    response = await balances_stub.ListDailyBalances(list_request("2024-03-01", "2024-03-05"))
    days = response.daily_balances
    assert [d.date for d in days] == [f"2024-03-0{i}" for i in range(1, 6)]
    assert [d.opening_balance_cents for d in days] == [500, 500, 1200, 1200, 1270]
    assert closings(response) == [500, 1200, 1200, 1270, 1270]
    assert [(d.credits_cents, d.debits_cents, d.net_cents) for d in days[1:3]] == [
        (1000, 300, 700),
        (0, 0, 0),
    ]
    assert [d.lancamentos_count for d in days] == [0, 2, 0, 1, 0]
    assert {d.merchant_id for d in days} == {"m1"}
    assert {d.currency for d in days} == {"BRL"}
    # Newest entry counted so far; the 03-10 entry (T3) is not counted yet.
    assert [d.as_of.ToDatetime(tzinfo=UTC) for d in days] == [T1, T2, T2, T2, T2]


async def test_get_is_one_day_of_the_list(
    balances_stub: BalancesStub, ingest_stub: IngestStub
) -> None:
    await ingest_stub.ApplyLancamentos(
        batch(entry(10, value_date="2024-01-01"), debit(4, value_date="2024-01-15"))
    )
    listed = await balances_stub.ListDailyBalances(list_request("2024-01-01", "2024-01-31"))
    for day in ("2024-01-01", "2024-01-14", "2024-01-15", "2024-01-31"):
        got = await balances_stub.GetDailyBalance(
            pb.GetDailyBalanceRequest(merchant_id="m1", date=day)
        )
        assert got == listed.daily_balances[int(day[-2:]) - 1]
    later = await balances_stub.GetDailyBalance(
        pb.GetDailyBalanceRequest(merchant_id="m1", date="2030-06-01")
    )
    assert (later.opening_balance_cents, later.closing_balance_cents) == (6, 6)


async def test_a_merchant_without_entries_has_zero_balances(
    balances_stub: BalancesStub,
) -> None:
    response = await balances_stub.ListDailyBalances(
        list_request("2024-01-01", "2024-12-31", merchant_id="nobody")
    )
    assert len(response.daily_balances) == 366
    assert set(closings(response)) == {0}
    assert not any(d.HasField("as_of") for d in response.daily_balances)
    one = await balances_stub.GetDailyBalance(
        pb.GetDailyBalanceRequest(merchant_id="nobody", date="2024-02-29")
    )
    assert one.closing_balance_cents == 0 and not one.HasField("as_of")


async def test_a_back_dated_entry_changes_every_later_closing(
    balances_stub: BalancesStub, ingest_stub: IngestStub
) -> None:
    await ingest_stub.ApplyLancamentos(batch(entry(100, value_date="2024-03-10", created_at=T1)))
    before = await balances_stub.ListDailyBalances(list_request("2024-03-01", "2024-03-15"))
    assert closings(before) == [0] * 9 + [100] * 6

    await ingest_stub.ApplyLancamentos(batch(debit(30, value_date="2024-03-03", created_at=T3)))
    after = await balances_stub.ListDailyBalances(list_request("2024-03-01", "2024-03-15"))
    assert closings(after) == [0, 0] + [-30] * 7 + [70] * 6
    assert after.daily_balances[0].HasField("as_of") is False
    assert after.daily_balances[2].as_of.ToDatetime(tzinfo=UTC) == T3
    # A range starting after both entries sees them in its opening balance.
    tail = await balances_stub.ListDailyBalances(list_request("2024-03-12", "2024-03-13"))
    assert tail.daily_balances[0].opening_balance_cents == 70
    assert tail.daily_balances[0].as_of.ToDatetime(tzinfo=UTC) == T3


async def test_the_range_may_span_exactly_366_days(balances_stub: BalancesStub) -> None:
    response = await balances_stub.ListDailyBalances(list_request("2023-03-01", "2024-02-29"))
    assert len(response.daily_balances) == 366


@pytest.mark.parametrize(
    ("request_fields", "expected_fields"),
    [
        ({"merchant_id": "", "date": "2024-01-01"}, {"merchant_id"}),
        ({"merchant_id": "bad id!", "date": "2024-01-01"}, {"merchant_id"}),
        ({"merchant_id": "x" * 65, "date": "2024-01-01"}, {"merchant_id"}),
        ({"merchant_id": "m1", "date": "2024-02-30"}, {"date"}),
        ({"merchant_id": "m1", "date": "01/02/2024"}, {"date"}),
        ({"merchant_id": "m1", "date": ""}, {"date"}),
        ({"merchant_id": "", "date": "2024-13-01"}, {"merchant_id", "date"}),
    ],
)
async def test_get_names_each_bad_field(
    balances_stub: BalancesStub, request_fields: dict[str, str], expected_fields: set[str]
) -> None:
    error = await expect_error(
        balances_stub.GetDailyBalance(pb.GetDailyBalanceRequest(**request_fields)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(field_violations(error)) == expected_fields


@pytest.mark.parametrize(
    ("merchant_id", "from_date", "to_date", "expected"),
    [
        ("m1", "2024-01-01", "2025-01-01", {"from_date": "366"}),
        ("m1", "2024-03-02", "2024-03-01", {"from_date": "after to_date"}),
        ("m1", "2024-02-30", "2024-03-01", {"from_date": "real calendar day"}),
        ("m1", "2024-03-01", "", {"to_date": "required"}),
        ("", "", "", {"merchant_id": "required", "from_date": "", "to_date": ""}),
    ],
)
async def test_list_names_each_bad_field(
    balances_stub: BalancesStub,
    merchant_id: str,
    from_date: str,
    to_date: str,
    expected: dict[str, str],
) -> None:
    error = await expect_error(
        balances_stub.ListDailyBalances(list_request(from_date, to_date, merchant_id)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    violations = field_violations(error)
    assert set(violations) == set(expected)
    for field, words in expected.items():
        assert words in violations[field]
