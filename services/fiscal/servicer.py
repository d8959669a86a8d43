"""fiscal.v1.FiscalService over gRPC: requests in, use cases, messages out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from audit.v1 import audit_pb2 as audit_pb
from fiscal.v1 import fiscal_pb2 as pb
from fiscal.v1 import fiscal_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.errors import InvalidArgument
from services.fiscal import requests
from services.fiscal.conversions import document_message, report, summary_message
from services.fiscal.in_order import in_order
from services.fiscal.use_cases import FiscalService
from services.platform.audit_api import list_audit_records

Context = grpc.aio.ServicerContext[Any, Any]
log = logging.getLogger(__name__)

# Documents of one stream checked at once: enough to keep the worker threads busy,
# few enough that one stream cannot take them all from the unary calls.
STREAM_DEPTH = 4


class FiscalServicer(pb_grpc.FiscalServiceServicer):
    def __init__(self, service: FiscalService, engine: AsyncEngine) -> None:
        self._service = service
        self._engine = engine

    async def ValidateDocument(
        self, request: pb.ValidateDocumentRequest, context: Context
    ) -> pb.ValidationReport:
        return report(await self._service.inspect(requests.document_bytes(request.document)))

    async def SummarizeDocument(
        self, request: pb.SummarizeDocumentRequest, context: Context
    ) -> pb.DocumentSummary:
        data = requests.document_bytes(request.document)
        return summary_message(await self._service.summarize(data))

    async def ProcessDocument(
        self, request: pb.ProcessDocumentRequest, context: Context
    ) -> pb.FiscalDocument:
        return document_message(await self._service.process(requests.process_command(request)))

    async def GetDocument(
        self, request: pb.GetDocumentRequest, context: Context
    ) -> pb.FiscalDocument:
        merchant_id, access_key = requests.document_ref(request)
        return document_message(await self._service.get(merchant_id, access_key))

    async def RegisterMerchant(
        self, request: pb.RegisterMerchantRequest, context: Context
    ) -> pb.MerchantRegistration:
        merchant_id, document = requests.registration(request)
        stored = await self._service.register(merchant_id, document)
        return pb.MerchantRegistration(merchant_id=merchant_id, document=stored)

    async def ListAuditRecords(
        self, request: audit_pb.ListAuditRecordsRequest, context: Context
    ) -> audit_pb.ListAuditRecordsResponse:
        return await list_audit_records(self._engine, request)

    async def ValidateDocuments(
        self, request_iterator: AsyncIterator[pb.ValidateDocumentsRequest], context: Context
    ) -> AsyncIterator[pb.ValidationReport]:
        async for answer in in_order(request_iterator, self._validate_one, depth=STREAM_DEPTH):
            yield answer

    async def _validate_one(self, request: pb.ValidateDocumentsRequest) -> pb.ValidationReport:
        """A document that is no NF-e gets a report saying so; the stream goes on.
        So does one that fails for another reason: one document never ends a batch."""
        try:
            return report(await self._service.inspect(requests.document_bytes(request.document)))
        except InvalidArgument as error:
            message = error.message
        except Exception:
            log.exception("validating a streamed document failed")
            message = "this document could not be checked (the service logged why)"
        return pb.ValidationReport(
            valid=False,
            findings=[
                pb.Finding(
                    code="caixa:document",
                    severity=pb.SEVERITY_ERROR,
                    path="document",
                    message=message,
                )
            ],
        )

    async def SummarizeDocuments(
        self, request_iterator: AsyncIterator[pb.SummarizeDocumentsRequest], context: Context
    ) -> AsyncIterator[pb.SummarizeDocumentsResponse]:
        async for answer in in_order(request_iterator, self._summarize_one, depth=STREAM_DEPTH):
            yield answer

    async def _summarize_one(
        self, request: pb.SummarizeDocumentsRequest
    ) -> pb.SummarizeDocumentsResponse:
        try:
            read = await self._service.summarize(requests.document_bytes(request.document))
            return pb.SummarizeDocumentsResponse(summary=summary_message(read))
        except InvalidArgument as error:
            return pb.SummarizeDocumentsResponse(error=error.message)
        except Exception:
            log.exception("summarizing a streamed document failed")
            return pb.SummarizeDocumentsResponse(
                error="this document could not be summarized (the service logged why)"
            )
