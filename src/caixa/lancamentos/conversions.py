"""Domain entries → lancamentos.v1 messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from lancamentos.v1 import lancamentos_pb2 as pb

from caixa.lancamentos.domain import Lancamento


def to_proto(entry: Lancamento) -> pb.Lancamento:
    created_at = Timestamp()
    created_at.FromDatetime(entry.created_at)
    return pb.Lancamento(
        lancamento_id=str(entry.lancamento_id),
        merchant_id=entry.merchant_id,
        kind=int(entry.kind),  # type: ignore[arg-type]
        amount_cents=entry.amount_cents,
        currency=entry.currency,
        value_date=entry.value_date.isoformat(),
        description=entry.description,
        request_id=entry.request_id,
        created_at=created_at,
        sequence=entry.sequence,
        reverses_lancamento_id=str(entry.reverses_lancamento_id or ""),
        reversed_by_lancamento_id=str(entry.reversed_by_lancamento_id or ""),
    )
