"""Typed blocking client of `lancamentos.v1.LancamentosService`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc
from lancamentos.v1 import lancamentos_pb2, lancamentos_pb2_grpc

from caixa.client.channel import Metadata, ServiceClient
from caixa.client.errors import raising_caixa_errors
from caixa.client.request_fields import (
    DateLike,
    ImportRow,
    KindLike,
    create_request,
    import_requests,
    new_request_id,
    to_date_field,
    to_kind,
)
from caixa.client.service_config import LANCAMENTOS_SERVICE
from caixa.client.targets import default_lancamentos_target

Lancamento = lancamentos_pb2.Lancamento


class LancamentosClient(ServiceClient):
    """Records and reads a merchant's entries. Every failure raises `CaixaError`.

    Each call has a deadline (`timeout` seconds, overridable per call); the
    channel itself retries `UNAVAILABLE` for the idempotent unary methods.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 5.0,
        channel_credentials: grpc.ChannelCredentials | None = None,
        metadata: Metadata = (),
    ) -> None:
        super().__init__(
            target or default_lancamentos_target(),
            LANCAMENTOS_SERVICE,
            timeout=timeout,
            channel_credentials=channel_credentials,
            metadata=metadata,
        )
        self._stub = lancamentos_pb2_grpc.LancamentosServiceStub(self.channel)

    def create_lancamento(
        self,
        merchant_id: str,
        kind: KindLike,
        amount_cents: int,
        *,
        value_date: DateLike = None,
        description: str = "",
        currency: str = "BRL",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Lancamento:
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
        with raising_caixa_errors():
            return self._stub.CreateLancamento(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )

    def get_lancamento(
        self, merchant_id: str, lancamento_id: str, *, timeout: float | None = None
    ) -> Lancamento:
        request = lancamentos_pb2.GetLancamentoRequest(
            merchant_id=merchant_id, lancamento_id=lancamento_id
        )
        with raising_caixa_errors():
            return self._stub.GetLancamento(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )

    def list_lancamentos(
        self,
        merchant_id: str,
        *,
        from_date: DateLike = None,
        to_date: DateLike = None,
        kind: KindLike | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> lancamentos_pb2.ListLancamentosResponse:
        """One page of entries; pass its `next_page_token` back for the next one."""
        request = lancamentos_pb2.ListLancamentosRequest(
            merchant_id=merchant_id,
            from_date=to_date_field(from_date),
            to_date=to_date_field(to_date),
            kind=lancamentos_pb2.KIND_UNSPECIFIED if kind is None else to_kind(kind),
            page_size=page_size,
            page_token=page_token,
        )
        with raising_caixa_errors():
            return self._stub.ListLancamentos(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )

    def iter_lancamentos(
        self,
        merchant_id: str,
        *,
        from_date: DateLike = None,
        to_date: DateLike = None,
        kind: KindLike | None = None,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[Lancamento]:
        """Every matching entry, fetching pages lazily; `timeout` bounds each page."""
        page_token = ""
        while True:
            page = self.list_lancamentos(
                merchant_id,
                from_date=from_date,
                to_date=to_date,
                kind=kind,
                page_size=page_size,
                page_token=page_token,
                timeout=timeout,
            )
            yield from page.lancamentos
            page_token = page.next_page_token
            if not page_token:
                return

    def reverse_lancamento(
        self,
        merchant_id: str,
        lancamento_id: str,
        *,
        request_id: str | None = None,
        value_date: DateLike = None,
        description: str = "",
        timeout: float | None = None,
    ) -> Lancamento:
        """Records the reversal (estorno) of an entry; idempotent on `request_id`."""
        request = lancamentos_pb2.ReverseLancamentoRequest(
            merchant_id=merchant_id,
            lancamento_id=lancamento_id,
            request_id=request_id or new_request_id(),
            value_date=to_date_field(value_date),
            description=description,
        )
        with raising_caixa_errors():
            return self._stub.ReverseLancamento(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )

    def import_lancamentos(
        self, rows: Iterable[ImportRow], *, timeout: float | None = None
    ) -> lancamentos_pb2.ImportLancamentosResponse:
        """Streams `rows` in one bulk import. Not retried by the channel; re-sending
        the same rows (same `request_id`s) is safe. `timeout` bounds the whole stream."""
        requests = import_requests(rows)
        with raising_caixa_errors():
            return self._stub.ImportLancamentos(
                requests, timeout=self._deadline(timeout), metadata=self._call_metadata
            )

    def stream_lancamentos(
        self,
        after_sequence: int = 0,
        merchant_id: str = "",
        follow: bool = False,
        *,
        timeout: float | None = None,
    ) -> Iterator[Lancamento]:
        """The change feed after `after_sequence`. Not retried by the channel: resume
        with the last `sequence` seen. With `follow` the stream has no deadline
        unless `timeout` is given, since it is meant to stay open."""
        request = lancamentos_pb2.StreamLancamentosRequest(
            after_sequence=after_sequence, merchant_id=merchant_id, follow=follow
        )
        deadline = timeout if follow else self._deadline(timeout)
        with raising_caixa_errors():
            call = self._stub.StreamLancamentos(
                request, timeout=deadline, metadata=self._call_metadata
            )
            try:
                yield from call
            finally:
                # Stops the server side when the caller abandons the generator.
                call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs

    def summarize_lancamentos(
        self,
        merchant_id: str,
        from_date: DateLike,
        to_date: DateLike,
        *,
        timeout: float | None = None,
    ) -> lancamentos_pb2.SummarizeLancamentosResponse:
        """Per-day sums of the merchant's entries, for reconciliation."""
        request = lancamentos_pb2.SummarizeLancamentosRequest(
            merchant_id=merchant_id,
            from_date=to_date_field(from_date),
            to_date=to_date_field(to_date),
        )
        with raising_caixa_errors():
            return self._stub.SummarizeLancamentos(
                request, timeout=self._deadline(timeout), metadata=self._call_metadata
            )
