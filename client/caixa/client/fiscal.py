"""Typed blocking client of `fiscal.v1.FiscalService`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fiscal.v1 import fiscal_pb2, fiscal_pb2_grpc

from caixa.client import calls, fiscal_calls
from caixa.client.channel import ServiceClient
from caixa.client.methods import blocking_call
from caixa.client.service_config import FISCAL_SERVICE


class FiscalClient(ServiceClient):
    """Validates, summarizes and books NF-e documents (the XML, as bytes). Every
    failure raises `CaixaError`; a document with findings, or one that may not
    be booked, is an answer, not a failure.

    Each call has a deadline (`timeout` seconds, overridable per call); the
    channel retries `UNAVAILABLE` for the unary methods, which are all
    idempotent, never for the two streams.
    """

    _service = FISCAL_SERVICE
    _stub_type = fiscal_pb2_grpc.FiscalServiceStub

    validate_document = blocking_call(fiscal_calls.validate_document)
    summarize_document = blocking_call(fiscal_calls.summarize_document)
    process_document = blocking_call(fiscal_calls.process_document)
    get_document = blocking_call(fiscal_calls.get_document)
    register_merchant = blocking_call(fiscal_calls.register_merchant)
    list_audit_records = blocking_call(calls.list_audit_records)

    def validate_documents(
        self, documents: Iterable[bytes], *, timeout: float | None = None
    ) -> Iterator[fiscal_pb2.ValidationReport]:
        """One report per document, in order, on one stream; `documents` is read
        as the stream sends them. A document that is no NF-e gets a report saying
        so (finding `caixa:document`). Not retried by the channel; `timeout`
        bounds the whole stream. Abandoning the iterator cancels the call."""
        return self._feed(fiscal_calls.validate_documents(documents, timeout=timeout))

    def summarize_documents(
        self, documents: Iterable[bytes], *, timeout: float | None = None
    ) -> Iterator[fiscal_pb2.SummarizeDocumentsResponse]:
        """One answer per document, in order, on one stream: its `summary`, or the
        `error` saying why it has none. Not retried by the channel; `timeout`
        bounds the whole stream. Abandoning the iterator cancels the call."""
        return self._feed(fiscal_calls.summarize_documents(documents, timeout=timeout))
