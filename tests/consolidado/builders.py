"""Builders of the entries lancamentos delivers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from consolidado.v1 import consolidado_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from lancamentos.v1 import lancamentos_pb2 as lpb

DEFAULT_CREATED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def entry(
    amount_cents: int = 100,
    *,
    merchant_id: str = "m1",
    kind: int = lpb.KIND_CREDIT,
    value_date: str = "2024-03-01",
    created_at: datetime = DEFAULT_CREATED,
    lancamento_id: str | None = None,
) -> lpb.Lancamento:
    return lpb.Lancamento(
        lancamento_id=lancamento_id or str(uuid.uuid4()),
        merchant_id=merchant_id,
        kind=kind,  # type: ignore[arg-type]
        amount_cents=amount_cents,
        currency="BRL",
        value_date=value_date,
        created_at=timestamp(created_at),
    )


def debit(amount_cents: int, **fields: object) -> lpb.Lancamento:
    return entry(amount_cents, kind=lpb.KIND_DEBIT, **fields)  # type: ignore[arg-type]


def batch(*entries: lpb.Lancamento) -> pb.ApplyLancamentosRequest:
    return pb.ApplyLancamentosRequest(lancamentos=list(entries))
