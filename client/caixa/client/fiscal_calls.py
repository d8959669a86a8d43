"""Every method of the fiscal clients, defined once for the blocking and the asyncio
clients, as `caixa.client.calls` does for lancamentos and consolidado.

A document is the NF-e XML as bytes: an `nfeProc` (the invoice with its
authorization protocol), a bare `NFe`, or a cancellation's `procEventoNFe`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TypeVar

from fiscal.v1 import fiscal_pb2
from google.api.httpbody_pb2 import HttpBody

from caixa.client.calls import Feed, Rpc

XML = "application/xml"

# fiscal's servers take gRPC messages of up to 16 MiB, and its document limit
# (FISCAL_MAX_DOCUMENT_BYTES, 5 MiB by default) is at most that. A larger
# document can never be accepted, and in a stream it would fail the whole call
# (RESOURCE_EXHAUSTED), so callers check this first; the KiB is the request's
# own fields.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_DOCUMENT_BYTES = MAX_MESSAGE_BYTES - 1024

Documents = Iterable[bytes] | AsyncIterable[bytes]
Message = TypeVar("Message")


def xml_body(document: bytes) -> HttpBody:
    """The `HttpBody` every fiscal request carries its document in."""
    return HttpBody(content_type=XML, data=document)


def validate_document(
    document: bytes, *, timeout: float | None = None
) -> Rpc[fiscal_pb2.ValidationReport]:
    """The document's findings (official XSD, SEFAZ's rules) and its signature's
    status. Findings are the answer, not an error; INVALID_ARGUMENT (field
    `document`) when it is no NF-e XML at all."""
    request = fiscal_pb2.ValidateDocumentRequest(document=xml_body(document))
    return Rpc("ValidateDocument", request, timeout)


def summarize_document(
    document: bytes, *, timeout: float | None = None
) -> Rpc[fiscal_pb2.DocumentSummary]:
    """What the invoice says: parties, totals, payments, installments, protocol.
    INVALID_ARGUMENT (field `document`) when it lacks what every NF-e has."""
    request = fiscal_pb2.SummarizeDocumentRequest(document=xml_body(document))
    return Rpc("SummarizeDocument", request, timeout)


def process_document(
    merchant_id: str,
    document: bytes,
    *,
    merchant_document: str = "",
    timeout: float | None = None,
) -> Rpc[fiscal_pb2.FiscalDocument]:
    """Books an authorized invoice as the merchant's lancamentos, or reverses them
    for an authorized cancellation. `merchant_document`: the merchant's CNPJ or
    CPF, which says whether it sold or bought ("": the one fiscal has on record).
    Idempotent on the access key, so the channel retries it: the same document
    sent twice books once. A document that may not be booked is an answer with
    status REJECTED and its `reason`."""
    request = fiscal_pb2.ProcessDocumentRequest(
        merchant_id=merchant_id,
        merchant_document=merchant_document,
        document=xml_body(document),
    )
    return Rpc("ProcessDocument", request, timeout)


def get_document(
    merchant_id: str, access_key: str, *, timeout: float | None = None
) -> Rpc[fiscal_pb2.FiscalDocument]:
    """A processed document of the merchant: its status and its entries."""
    request = fiscal_pb2.GetDocumentRequest(merchant_id=merchant_id, access_key=access_key)
    return Rpc("GetDocument", request, timeout)


def register_merchant(
    merchant_id: str, document: str, *, timeout: float | None = None
) -> Rpc[fiscal_pb2.MerchantRegistration]:
    """Records the merchant's CNPJ (or CPF), which process_document then uses when
    given none and requires when given one (scope admin). An upsert: retried."""
    request = fiscal_pb2.RegisterMerchantRequest(merchant_id=merchant_id, document=document)
    return Rpc("RegisterMerchant", request, timeout)


def _messages(
    documents: Documents, message: Callable[[HttpBody], Message]
) -> Iterator[Message] | AsyncIterator[Message]:
    """The stream's requests, made as the stream asks for them."""
    if isinstance(documents, bytes | bytearray):
        raise TypeError("documents: expected an iterable of documents, not one document")
    if isinstance(documents, AsyncIterable):
        return _async_messages(documents, message)
    return (message(xml_body(document)) for document in documents)


async def _async_messages(
    documents: AsyncIterable[bytes], message: Callable[[HttpBody], Message]
) -> AsyncIterator[Message]:
    async for document in documents:
        yield message(xml_body(document))


def validate_documents(
    documents: Documents, *, timeout: float | None = None
) -> Feed[fiscal_pb2.ValidationReport]:
    """One report per document, in order, on one stream. A document that is no
    NF-e gets a report saying so (finding `caixa:document`) and the stream goes
    on. Not retried by the channel; `timeout` bounds the whole stream."""
    requests = _messages(documents, lambda body: fiscal_pb2.ValidateDocumentsRequest(document=body))
    return Feed("ValidateDocuments", requests, timeout)


def summarize_documents(
    documents: Documents, *, timeout: float | None = None
) -> Feed[fiscal_pb2.SummarizeDocumentsResponse]:
    """One answer per document, in order, on one stream: its `summary`, or the
    `error` saying why it has none. Not retried by the channel; `timeout` bounds
    the whole stream."""
    requests = _messages(
        documents, lambda body: fiscal_pb2.SummarizeDocumentsRequest(document=body)
    )
    return Feed("SummarizeDocuments", requests, timeout)
