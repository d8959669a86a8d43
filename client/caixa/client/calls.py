"""Every client method, defined once for the blocking and the asyncio clients.

Each function here takes a method's arguments (same names, defaults and
docstring as the client method it becomes) and returns what that method sends:
which RPC, the request, and the caller's `timeout`. `caixa.client.methods`
turns each one into a blocking or an asyncio method, so both clients have the
same API by construction and neither builds a request of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from audit.v1 import audit_pb2
from consolidado.v1 import consolidado_pb2
from lancamentos.v1 import lancamentos_pb2

from caixa.client.request_fields import (
    DateLike,
    KindLike,
    create_request,
    new_request_id,
    to_date_field,
    to_kind,
)

Lancamento = lancamentos_pb2.Lancamento
ListPage = lancamentos_pb2.ListLancamentosResponse

Response = TypeVar("Response")


@dataclass(frozen=True)
class Rpc(Generic[Response]):
    """A call with one `Response`: the stub's method name, what it sends (a
    request, or an iterator of them for a client stream), and the caller's
    `timeout` (None: the client's default deadline)."""

    method: str
    request: object
    timeout: float | None

    @property
    def bounded(self) -> bool:
        """Whether the call gets the client's default deadline when `timeout` is None."""
        return True

    @property
    def request_id(self) -> str | None:
        """The idempotency key a mutation is sent with, which its errors carry."""
        key = getattr(self.request, "request_id", "")
        return key if isinstance(key, str) and key else None


@dataclass(frozen=True)
class Feed(Rpc[Response]):
    """A server stream of `Response`s. A `follow` feed is meant to stay open,
    so it has no deadline unless the caller gives a `timeout`."""

    follow: bool = False

    @property
    def bounded(self) -> bool:
        return not self.follow


# --- lancamentos.v1.LancamentosService ---------------------------------------


def create_lancamento(
    merchant_id: str,
    kind: KindLike,
    amount_cents: int,
    *,
    value_date: DateLike = None,
    description: str = "",
    currency: str = "BRL",
    request_id: str | None = None,
    timeout: float | None = None,
) -> Rpc[Lancamento]:
    """Records one entry. Without `request_id` a new key is generated once, so
    the channel's retries of this call reuse it and cannot double-book."""
    request = create_request(
        merchant_id,
        kind,
        amount_cents,
        value_date=value_date,
        description=description,
        currency=currency,
        request_id=request_id,
    )
    return Rpc("CreateLancamento", request, timeout)


def get_lancamento(
    merchant_id: str, lancamento_id: str, *, timeout: float | None = None
) -> Rpc[Lancamento]:
    """One entry of the merchant, with its reversal links."""
    request = lancamentos_pb2.GetLancamentoRequest(
        merchant_id=merchant_id, lancamento_id=lancamento_id
    )
    return Rpc("GetLancamento", request, timeout)


def list_lancamentos(
    merchant_id: str,
    *,
    from_date: DateLike = None,
    to_date: DateLike = None,
    kind: KindLike | None = None,
    page_size: int = 0,
    page_token: str = "",
    timeout: float | None = None,
) -> Rpc[ListPage]:
    """One page of entries; pass its `next_page_token` back for the next one."""
    request = lancamentos_pb2.ListLancamentosRequest(
        merchant_id=merchant_id,
        from_date=to_date_field(from_date),
        to_date=to_date_field(to_date),
        kind=lancamentos_pb2.KIND_UNSPECIFIED if kind is None else to_kind(kind),
        page_size=page_size,
        page_token=page_token,
    )
    return Rpc("ListLancamentos", request, timeout)


def iter_lancamentos(
    merchant_id: str,
    *,
    from_date: DateLike = None,
    to_date: DateLike = None,
    kind: KindLike | None = None,
    page_size: int = 0,
    timeout: float | None = None,
) -> Rpc[ListPage]:
    """Every matching entry, fetching pages lazily; `timeout` bounds each page."""
    return list_lancamentos(
        merchant_id,
        from_date=from_date,
        to_date=to_date,
        kind=kind,
        page_size=page_size,
        timeout=timeout,
    )


def next_page(first: Rpc[ListPage], page: ListPage) -> Rpc[ListPage] | None:
    """The call for the page after `page` (same filters and timeout), or None at the end."""
    if not page.next_page_token:
        return None
    previous = first.request
    assert isinstance(previous, lancamentos_pb2.ListLancamentosRequest)
    request = lancamentos_pb2.ListLancamentosRequest()
    request.CopyFrom(previous)
    request.page_token = page.next_page_token
    return replace(first, request=request)


def reverse_lancamento(
    merchant_id: str,
    lancamento_id: str,
    *,
    request_id: str | None = None,
    value_date: DateLike = None,
    description: str = "",
    timeout: float | None = None,
) -> Rpc[Lancamento]:
    """Records the reversal (estorno) of an entry; idempotent on `request_id`."""
    request = lancamentos_pb2.ReverseLancamentoRequest(
        merchant_id=merchant_id,
        lancamento_id=lancamento_id,
        request_id=request_id or new_request_id(),
        value_date=to_date_field(value_date),
        description=description,
    )
    return Rpc("ReverseLancamento", request, timeout)


ImportMessages = (
    Iterator[lancamentos_pb2.ImportLancamentosRequest]
    | AsyncIterator[lancamentos_pb2.ImportLancamentosRequest]
)


def import_lancamentos(
    messages: ImportMessages, timeout: float | None
) -> Rpc[lancamentos_pb2.ImportLancamentosResponse]:
    """The bulk import of already batched `messages` (see `request_fields.import_requests`)."""
    return Rpc("ImportLancamentos", messages, timeout)


def stream_lancamentos(
    after_sequence: int = 0,
    merchant_id: str = "",
    follow: bool = False,
    *,
    timeout: float | None = None,
) -> Feed[Lancamento]:
    """The change feed after `after_sequence`. Not retried by the channel: resume
    with the last `sequence` seen. With `follow` the stream has no deadline
    unless `timeout` is given, since it is meant to stay open. Abandoning the
    iterator cancels the call, which stops the server side."""
    request = lancamentos_pb2.StreamLancamentosRequest(
        after_sequence=after_sequence, merchant_id=merchant_id, follow=follow
    )
    return Feed("StreamLancamentos", request, timeout, follow=follow)


def summarize_lancamentos(
    merchant_id: str,
    from_date: DateLike,
    to_date: DateLike,
    *,
    timeout: float | None = None,
) -> Rpc[lancamentos_pb2.SummarizeLancamentosResponse]:
    """Per-day sums of the merchant's entries, for reconciliation."""
    request = lancamentos_pb2.SummarizeLancamentosRequest(
        merchant_id=merchant_id,
        from_date=to_date_field(from_date),
        to_date=to_date_field(to_date),
    )
    return Rpc("SummarizeLancamentos", request, timeout)


# --- both services -----------------------------------------------------------


def list_audit_records(
    merchant_id: str,
    *,
    after_position: int = 0,
    page_size: int = 0,
    timeout: float | None = None,
) -> Rpc[audit_pb2.ListAuditRecordsResponse]:
    """Admin: a page of the service's audit trail for `merchant_id` (`*`: the
    operations on every merchant), after `after_position`, with the chain's head."""
    request = audit_pb2.ListAuditRecordsRequest(
        merchant_id=merchant_id, after_position=after_position, page_size=page_size
    )
    return Rpc("ListAuditRecords", request, timeout)


# --- consolidado.v1.ConsolidadoService ---------------------------------------


def get_daily_balance(
    merchant_id: str, date: DateLike, *, timeout: float | None = None
) -> Rpc[consolidado_pb2.DailyBalance]:
    """The merchant's balance on `date`; a day without entries carries the previous one's."""
    request = consolidado_pb2.GetDailyBalanceRequest(
        merchant_id=merchant_id, date=to_date_field(date)
    )
    return Rpc("GetDailyBalance", request, timeout)


def list_daily_balances(
    merchant_id: str,
    from_date: DateLike,
    to_date: DateLike,
    *,
    timeout: float | None = None,
) -> Rpc[consolidado_pb2.ListDailyBalancesResponse]:
    """One balance per calendar day of the range (at most 366 days)."""
    request = consolidado_pb2.ListDailyBalancesRequest(
        merchant_id=merchant_id,
        from_date=to_date_field(from_date),
        to_date=to_date_field(to_date),
    )
    return Rpc("ListDailyBalances", request, timeout)
