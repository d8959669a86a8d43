"""lancamentos.v1.LancamentosService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from audit.v1 import audit_pb2 as audit_pb
from lancamentos.v1 import lancamentos_pb2 as pb
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain.errors import InvalidArgument, ViolationCollector
from services.lancamentos import requests
from services.lancamentos.conversions import to_proto
from services.lancamentos.domain import NewLancamento
from services.lancamentos.use_cases import LancamentosService
from services.platform.audit_api import list_audit_records

Context = grpc.aio.ServicerContext[Any, Any]

# A bad chunk reports up to this many violations, then the call ends.
MAX_REPORTED_VIOLATIONS = 100


class LancamentosServicer(pb_grpc.LancamentosServiceServicer):
    def __init__(
        self, service: LancamentosService, engine: AsyncEngine, *, import_chunk_size: int
    ) -> None:
        self._service = service
        self._engine = engine
        self._chunk_size = import_chunk_size

    async def CreateLancamento(
        self, request: pb.CreateLancamentoRequest, context: Context
    ) -> pb.Lancamento:
        command = requests.create_command(request, self._service.today())
        return to_proto(await self._service.create(command))

    async def GetLancamento(
        self, request: pb.GetLancamentoRequest, context: Context
    ) -> pb.Lancamento:
        ref = requests.entry_ref(request.merchant_id, request.lancamento_id)
        return to_proto(await self._service.get(ref))

    async def ListLancamentos(
        self, request: pb.ListLancamentosRequest, context: Context
    ) -> pb.ListLancamentosResponse:
        page = await self._service.list(requests.list_query(request))
        return pb.ListLancamentosResponse(
            lancamentos=[to_proto(e) for e in page.lancamentos],
            next_page_token=page.next_page_token,
        )

    async def ReverseLancamento(
        self, request: pb.ReverseLancamentoRequest, context: Context
    ) -> pb.Lancamento:
        command = requests.reverse_command(request, self._service.today())
        return to_proto(await self._service.reverse(command))

    async def ImportLancamentos(
        self, request_iterator: AsyncIterator[pb.ImportLancamentosRequest], context: Context
    ) -> pb.ImportLancamentosResponse:
        today = self._service.today()
        writer = _ChunkWriter(self._service)
        chunk: list[NewLancamento] = []
        chunk_start = 0
        errors = ViolationCollector()
        try:
            async for row, row_request in _numbered_rows(request_iterator):
                if row - chunk_start == self._chunk_size:
                    if errors.violations:
                        break
                    # Written while the next chunk is read and validated.
                    await writer.submit(chunk, chunk_start)
                    chunk, chunk_start = [], row
                prefixed = ViolationCollector(f"row[{row}].")
                entry = requests.new_lancamento(row_request, today, prefixed)
                errors.violations.extend(prefixed.violations)
                if entry is not None:
                    chunk.append(entry)
                if len(errors.violations) >= MAX_REPORTED_VIOLATIONS:
                    break
            await writer.flush()
            if errors.violations:
                raise InvalidArgument(
                    errors.violations,
                    f"the chunk of rows from {chunk_start} was rejected and nothing of it was "
                    f"written; {writer.created + writer.duplicates} earlier rows were "
                    f"committed ({writer.created} new, {writer.duplicates} duplicates); fix "
                    "the rows named in the field violations and resend: resending committed "
                    "rows is safe",
                )
            if chunk:
                await writer.submit(chunk, chunk_start)
                await writer.flush()
        finally:
            writer.abandon()
        return pb.ImportLancamentosResponse(
            created_count=writer.created, duplicate_count=writer.duplicates
        )

    async def StreamLancamentos(
        self, request: pb.StreamLancamentosRequest, context: Context
    ) -> AsyncIterator[pb.Lancamento]:
        after, merchant_id = requests.stream_start(request)
        async for entry in self._service.feed(after, merchant_id, follow=request.follow):
            yield to_proto(entry)

    async def SummarizeLancamentos(
        self, request: pb.SummarizeLancamentosRequest, context: Context
    ) -> pb.SummarizeLancamentosResponse:
        summary = await self._service.summarize(requests.summary_query(request))
        return pb.SummarizeLancamentosResponse(
            days=[
                pb.DaySummary(
                    date=d.value_date.isoformat(),
                    credits_cents=d.credits_cents,
                    debits_cents=d.debits_cents,
                    lancamentos_count=d.count,
                )
                for d in summary.days
            ],
            undelivered_count=summary.undelivered,
            parked_count=summary.parked,
        )

    async def ListAuditRecords(
        self, request: audit_pb.ListAuditRecordsRequest, context: Context
    ) -> audit_pb.ListAuditRecordsResponse:
        return await list_audit_records(self._engine, request)


async def _numbered_rows(
    messages: AsyncIterator[pb.ImportLancamentosRequest],
) -> AsyncIterator[tuple[int, pb.CreateLancamentoRequest]]:
    """Rows across the whole stream, numbered from 0 in the order sent."""
    row = 0
    async for message in messages:
        for entry in message.lancamentos:
            yield row, entry
            row += 1


class _ChunkWriter:
    """Writes import chunks one at a time, in the background, in order."""

    def __init__(self, service: LancamentosService) -> None:
        self._service = service
        self._task: asyncio.Task[int] | None = None
        self._size = 0
        self.created = 0
        self.duplicates = 0

    async def submit(self, chunk: list[NewLancamento], first_row: int) -> None:
        await self.flush()
        self._size = len(chunk)
        self._task = asyncio.create_task(self._service.import_chunk(chunk, first_row))

    async def flush(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        written = await task
        self.created += written
        self.duplicates += self._size - written

    def abandon(self) -> None:
        """A call that ends early (cancelled, failed) cancels its unfinished chunk:
        its transaction rolls back and nothing of it is written."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
