"""Turns the friendly Python values callers pass into proto request fields."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from lancamentos.v1 import lancamentos_pb2

KindLike = lancamentos_pb2.Kind | str
DateLike = date | str | None

_KINDS_BY_NAME: dict[str, lancamentos_pb2.Kind] = {
    "credit": lancamentos_pb2.KIND_CREDIT,
    "debit": lancamentos_pb2.KIND_DEBIT,
    "kind_credit": lancamentos_pb2.KIND_CREDIT,
    "kind_debit": lancamentos_pb2.KIND_DEBIT,
}


def to_kind(kind: KindLike) -> lancamentos_pb2.Kind:
    """`"credit"`, `"KIND_DEBIT"` or a `Kind` value → the `Kind` value."""
    if isinstance(kind, str):
        try:
            return _KINDS_BY_NAME[kind.strip().lower()]
        except KeyError:
            raise ValueError(f"kind must be 'credit' or 'debit', got {kind!r}") from None
    return kind


def to_date_field(value: DateLike) -> str:
    """A `date` or `YYYY-MM-DD` string → the proto's string; None → "" (server default)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def new_request_id() -> str:
    """A fresh idempotency key; reuse the returned value when retrying by hand."""
    return str(uuid.uuid4())


def create_request(
    merchant_id: str,
    kind: KindLike,
    amount_cents: int,
    *,
    value_date: DateLike = None,
    description: str = "",
    currency: str = "BRL",
    request_id: str | None = None,
) -> lancamentos_pb2.CreateLancamentoRequest:
    """A `CreateLancamentoRequest`, with a new `request_id` when none is given."""
    return lancamentos_pb2.CreateLancamentoRequest(
        merchant_id=merchant_id,
        kind=to_kind(kind),
        amount_cents=amount_cents,
        currency=currency,
        value_date=to_date_field(value_date),
        description=description,
        request_id=request_id or new_request_id(),
    )


ImportRow = lancamentos_pb2.CreateLancamentoRequest | Mapping[str, Any]


# Rows per stream message: per-message cost dominates a stream of single rows.
IMPORT_BATCH_ROWS = 500


def import_row(row: ImportRow) -> lancamentos_pb2.CreateLancamentoRequest:
    """One import row: a `CreateLancamentoRequest`, or a mapping with its field names.

    Unlike `create_request`, no `request_id` is made up: re-sending an import is
    only safe when each row keeps its key across attempts, so the caller owns it.
    """
    if isinstance(row, lancamentos_pb2.CreateLancamentoRequest):
        return row
    fields = dict(row)
    if "kind" in fields:
        fields["kind"] = to_kind(fields["kind"])
    if "value_date" in fields:
        fields["value_date"] = to_date_field(fields["value_date"])
    return lancamentos_pb2.CreateLancamentoRequest(**fields)


class ImportBatches:
    """Groups import rows into stream messages: rows in order, `batch_rows` per message."""

    def __init__(self, batch_rows: int = IMPORT_BATCH_ROWS) -> None:
        self._batch_rows = batch_rows
        self._batch: list[lancamentos_pb2.CreateLancamentoRequest] = []

    def add(self, row: ImportRow) -> lancamentos_pb2.ImportLancamentosRequest | None:
        """Adds `row`; returns the message it fills, if it fills one."""
        self._batch.append(import_row(row))
        return self.rest() if len(self._batch) == self._batch_rows else None

    def rest(self) -> lancamentos_pb2.ImportLancamentosRequest | None:
        """The message of the rows added since the last one returned, if any."""
        if not self._batch:
            return None
        message = lancamentos_pb2.ImportLancamentosRequest(lancamentos=self._batch)
        self._batch = []
        return message


def import_requests(
    rows: Iterable[ImportRow], batch_rows: int = IMPORT_BATCH_ROWS
) -> Iterator[lancamentos_pb2.ImportLancamentosRequest]:
    """The stream messages of an import: rows in order, `batch_rows` per message."""
    batches = ImportBatches(batch_rows)
    for row in rows:
        if (message := batches.add(row)) is not None:
            yield message
    if (message := batches.rest()) is not None:
        yield message


async def async_import_requests(
    rows: AsyncIterable[ImportRow], batch_rows: int = IMPORT_BATCH_ROWS
) -> AsyncIterator[lancamentos_pb2.ImportLancamentosRequest]:
    """`import_requests` of rows that arrive asynchronously."""
    batches = ImportBatches(batch_rows)
    async for row in rows:
        if (message := batches.add(row)) is not None:
            yield message
    if (message := batches.rest()) is not None:
        yield message
