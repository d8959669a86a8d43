"""Typed blocking client of `lancamentos.v1.LancamentosService`."""

from __future__ import annotations

from collections.abc import Iterable

from lancamentos.v1 import lancamentos_pb2, lancamentos_pb2_grpc

from caixa.client import calls
from caixa.client.channel import ServiceClient
from caixa.client.methods import blocking_call, blocking_feed, blocking_pages
from caixa.client.request_fields import ImportRow, import_requests
from caixa.client.service_config import LANCAMENTOS_SERVICE

Lancamento = lancamentos_pb2.Lancamento


class LancamentosClient(ServiceClient):
    """Records and reads a merchant's entries. Every failure raises `CaixaError`.

    Each call has a deadline (`timeout` seconds, overridable per call); the
    channel itself retries `UNAVAILABLE` for the idempotent unary methods.
    """

    _service = LANCAMENTOS_SERVICE
    _stub_type = lancamentos_pb2_grpc.LancamentosServiceStub

    create_lancamento = blocking_call(calls.create_lancamento)
    get_lancamento = blocking_call(calls.get_lancamento)
    list_lancamentos = blocking_call(calls.list_lancamentos)
    iter_lancamentos = blocking_pages(calls.iter_lancamentos)
    reverse_lancamento = blocking_call(calls.reverse_lancamento)
    stream_lancamentos = blocking_feed(calls.stream_lancamentos)
    summarize_lancamentos = blocking_call(calls.summarize_lancamentos)
    list_audit_records = blocking_call(calls.list_audit_records)

    def import_lancamentos(
        self, rows: Iterable[ImportRow], *, timeout: float | None = None
    ) -> lancamentos_pb2.ImportLancamentosResponse:
        """Streams `rows` in one bulk import. Not retried by the channel; re-sending
        the same rows (same `request_id`s) is safe. `timeout` bounds the whole stream."""
        return self._run(calls.import_lancamentos(import_requests(rows), timeout))
