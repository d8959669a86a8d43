"""lancamentos.v1.LancamentosService over gRPC: requests in, domain calls, messages out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc

from caixa.domain.errors import InvalidArgument, ViolationCollector
from caixa.lancamentos import requests
from caixa.lancamentos.conversions import to_proto
from caixa.lancamentos.domain import NewLancamento
from caixa.lancamentos.service import LancamentosService

Context = grpc.aio.ServicerContext[Any, Any]

# A bad chunk reports up to this many violations, then the call ends.
MAX_REPORTED_VIOLATIONS = 100


class LancamentosServicer(pb_grpc.LancamentosServiceServicer):
    def __init__(self, service: LancamentosService, *, import_chunk_size: int) -> None:
        self._service = service
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
        created = duplicates = 0
        chunk: list[NewLancamento] = []
        chunk_start = 0
        errors = ViolationCollector()
        row = -1
        async for row_request in request_iterator:
            row += 1
            if row - chunk_start == self._chunk_size:
                if errors.violations:
                    break
                written = await self._service.import_chunk(chunk, chunk_start)
                created, duplicates = created + written, duplicates + len(chunk) - written
                chunk, chunk_start = [], row
            prefixed = ViolationCollector(f"row[{row}].lancamento.")
            entry = requests.new_lancamento(row_request.lancamento, today, prefixed)
            errors.violations.extend(prefixed.violations)
            if entry is not None:
                chunk.append(entry)
            if len(errors.violations) >= MAX_REPORTED_VIOLATIONS:
                break
        if errors.violations:
            raise InvalidArgument(
                errors.violations,
                f"the chunk of rows from {chunk_start} was rejected and nothing of it was "
                f"written; {created + duplicates} earlier rows were committed "
                f"({created} new, {duplicates} duplicates); fix the rows named in the "
                "field violations and resend: resending committed rows is safe",
            )
        if chunk:
            written = await self._service.import_chunk(chunk, chunk_start)
            created, duplicates = created + written, duplicates + len(chunk) - written
        return pb.ImportLancamentosResponse(created_count=created, duplicate_count=duplicates)

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
        )
