"""Domain values → consolidado.v1 messages."""

from __future__ import annotations

from collections.abc import Iterable

from consolidado.v1 import consolidado_pb2 as pb
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from services.consolidado.balances import DailyBalance
from services.consolidado.drifts import ReconcileReport
from services.domain.rules import CURRENCY


def daily_balance(merchant_id: str, balance: DailyBalance) -> pb.DailyBalance:
    message = pb.DailyBalance(
        merchant_id=merchant_id,
        date=balance.day.isoformat(),
        currency=CURRENCY,
        credits_cents=balance.credits_cents,
        debits_cents=balance.debits_cents,
        net_cents=balance.net_cents,
        opening_balance_cents=balance.opening_balance_cents,
        closing_balance_cents=balance.closing_balance_cents,
        lancamentos_count=balance.lancamentos_count,
    )
    if balance.as_of is not None:
        as_of = Timestamp()
        as_of.FromDatetime(balance.as_of)
        message.as_of.CopyFrom(as_of)
    return message


def list_response(
    merchant_id: str, balances: Iterable[DailyBalance]
) -> pb.ListDailyBalancesResponse:
    return pb.ListDailyBalancesResponse(
        daily_balances=[daily_balance(merchant_id, b) for b in balances]
    )


class ProtoBalances:
    """The reader's codec: balances as the ListDailyBalancesResponse the servicer
    returns, cached as its wire bytes, so a cache hit is one parse."""

    def build(
        self, merchant_id: str, balances: Iterable[DailyBalance]
    ) -> pb.ListDailyBalancesResponse:
        return list_response(merchant_id, balances)

    def encode(self, value: pb.ListDailyBalancesResponse) -> bytes:
        return value.SerializeToString()

    def decode(self, data: bytes) -> pb.ListDailyBalancesResponse | None:
        try:
            return pb.ListDailyBalancesResponse.FromString(data)
        except DecodeError:
            return None


def reconcile_response(report: ReconcileReport) -> pb.ReconcileResponse:
    return pb.ReconcileResponse(
        drifts=[
            pb.Drift(
                date=d.day.isoformat(),
                expected_credits_cents=d.expected.credits_cents,
                expected_debits_cents=d.expected.debits_cents,
                expected_lancamentos_count=d.expected.lancamentos_count,
                actual_credits_cents=d.actual.credits_cents,
                actual_debits_cents=d.actual.debits_cents,
                actual_lancamentos_count=d.actual.lancamentos_count,
            )
            for d in report.drifts
        ],
        undelivered_count=report.undelivered_count,
        days_checked=report.days_checked,
        parked_count=report.parked_count,
    )
