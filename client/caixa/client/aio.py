"""Typed asyncio (`grpc.aio`) clients of every service: the blocking clients'
methods, arguments, defaults and docstrings, awaited.

    async with AsyncLancamentosClient("localhost:8080") as client:
        entry = await client.create_lancamento("m1", "credit", 1500)
        async for change in client.stream_lancamentos(follow=True):
            ...

Unary methods are coroutines; `iter_lancamentos`, `stream_lancamentos` and
fiscal's `validate_documents` and `summarize_documents` are async iterators.
Make a client inside the running event loop that uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable

from consolidado.v1 import consolidado_pb2_grpc
from fiscal.v1 import fiscal_pb2_grpc
from lancamentos.v1 import lancamentos_pb2, lancamentos_pb2_grpc

from caixa.client import calls, fiscal_calls
from caixa.client.channel import AsyncServiceClient
from caixa.client.methods import async_call, async_feed, async_pages
from caixa.client.request_fields import ImportRow, async_import_requests, import_requests
from caixa.client.service_config import (
    CONSOLIDADO_SERVICE,
    FISCAL_SERVICE,
    LANCAMENTOS_SERVICE,
)


class AsyncLancamentosClient(AsyncServiceClient):
    """`LancamentosClient` on `grpc.aio`: the same methods, deadlines and retries,
    awaited (`iter_lancamentos` and `stream_lancamentos` with `async for`).
    Every failure raises `CaixaError`."""

    _service = LANCAMENTOS_SERVICE
    _stub_type = lancamentos_pb2_grpc.LancamentosServiceStub

    create_lancamento = async_call(calls.create_lancamento)
    get_lancamento = async_call(calls.get_lancamento)
    list_lancamentos = async_call(calls.list_lancamentos)
    iter_lancamentos = async_pages(calls.iter_lancamentos)
    reverse_lancamento = async_call(calls.reverse_lancamento)
    stream_lancamentos = async_feed(calls.stream_lancamentos)
    summarize_lancamentos = async_call(calls.summarize_lancamentos)
    list_audit_records = async_call(calls.list_audit_records)

    async def import_lancamentos(
        self,
        rows: Iterable[ImportRow] | AsyncIterable[ImportRow],
        *,
        # The gRPC deadline sent with the call, as in the blocking client.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> lancamentos_pb2.ImportLancamentosResponse:
        """Streams `rows` (an iterable or an async iterable) in one bulk import. Not
        retried by the channel; re-sending the same rows (same `request_id`s) is
        safe. `timeout` bounds the whole stream."""
        messages = (
            async_import_requests(rows)
            if isinstance(rows, AsyncIterable)
            else import_requests(rows)
        )
        return await self._run(calls.import_lancamentos(messages, timeout))


class AsyncConsolidadoClient(AsyncServiceClient):
    """`ConsolidadoClient` on `grpc.aio`: both reads, awaited, retried on
    `UNAVAILABLE` within the call's deadline. Every failure raises `CaixaError`."""

    _service = CONSOLIDADO_SERVICE
    _stub_type = consolidado_pb2_grpc.ConsolidadoServiceStub

    get_daily_balance = async_call(calls.get_daily_balance)
    list_daily_balances = async_call(calls.list_daily_balances)
    list_audit_records = async_call(calls.list_audit_records)


class AsyncFiscalClient(AsyncServiceClient):
    """`FiscalClient` on `grpc.aio`: the same methods, deadlines and retries,
    awaited; the two streams take an iterable or an async iterable of documents
    and answer with `async for`. Every failure raises `CaixaError`."""

    _service = FISCAL_SERVICE
    _stub_type = fiscal_pb2_grpc.FiscalServiceStub

    validate_document = async_call(fiscal_calls.validate_document)
    summarize_document = async_call(fiscal_calls.summarize_document)
    process_document = async_call(fiscal_calls.process_document)
    get_document = async_call(fiscal_calls.get_document)
    register_merchant = async_call(fiscal_calls.register_merchant)
    list_audit_records = async_call(calls.list_audit_records)
    validate_documents = async_feed(fiscal_calls.validate_documents)
    summarize_documents = async_feed(fiscal_calls.summarize_documents)
