"""Domain entries → lancamentos.v1 messages."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from lancamentos.v1 import lancamentos_pb2 as pb

from services.lancamentos.domain import Lancamento


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


def record_to_proto(record: Mapping[str, Any]) -> pb.Lancamento:
    """A claimed outbox row (see outbox_queue.claim_outbox) as the message
    consolidado ingests; built field by field because it runs per entry."""
    created_at: datetime = record["created_at"]
    reverses = record["reverses_lancamento_id"]
    return pb.Lancamento(
        lancamento_id=str(record["lancamento_id"]),
        merchant_id=record["merchant_id"],
        kind=record["kind"],
        amount_cents=record["amount_cents"],
        currency=record["currency"],
        value_date=record["value_date"].isoformat(),
        description=record["description"],
        request_id=record["request_id"],
        created_at=Timestamp(
            seconds=calendar.timegm(created_at.utctimetuple()),
            nanos=created_at.microsecond * 1000,
        ),
        sequence=record["sequence"],
        reverses_lancamento_id=str(reverses) if reverses else "",
    )
