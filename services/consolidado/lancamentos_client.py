"""consolidado's adapter to lancamentos: the per-day sums that reconcile checks
and the change feed that rebuild replays, in plain types, so that the use
cases see neither gRPC nor protobuf."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from services.consolidado.drifts import DaySums
from services.consolidado.entries import IngestEntry
from services.consolidado.queries import DayRange
from services.consolidado.requests import ingest_batch
from services.domain.errors import Unavailable

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

log = logging.getLogger(__name__)

# Codes that mean "lancamentos can't answer now", worth a retry by the caller.
_UNREACHABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


# Codes that mean "lancamentos does not accept who we are": a deployment problem.
_REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def open_channel(target: str, interceptors: Sequence[Any] = ()) -> grpc.aio.Channel:
    """`interceptors`: e.g. this workload's identity (platform.workload_identity)."""
    return grpc.aio.insecure_channel(target, interceptors=list(interceptors))


def lancamentos_stub(channel: grpc.aio.Channel) -> LancamentosServiceAsyncStub:
    return lpb_grpc.LancamentosServiceStub(channel)


def unreachable(error: grpc.aio.AioRpcError, doing: str) -> Unavailable | None:
    """The Unavailable to raise for `error`, or None when it isn't an outage."""
    if error.code() not in _UNREACHABLE:
        return None
    return Unavailable(
        f"lancamentos could not {doing} ({error.code().name}: {error.details()}); "
        "retry when it is reachable"
    )


@contextlib.contextmanager
def _unreachable_as_unavailable(doing: str) -> Iterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as error:
        outage = unreachable(error, doing)
        if outage is not None:
            raise outage from error
        if error.code() in _REFUSED:
            # Our identity, not the caller's request: a deployment fault, retryable
            # once fixed; the details are for the operator's log only.
            log.error(
                "lancamentos refused this workload's identity (%s: %s); check "
                "WORKLOAD_TOKEN_FILE and lancamentos' AUTH_WORKLOADS",
                error.code().name,
                error.details(),
            )
            raise Unavailable(
                f"lancamentos could not {doing}: it did not accept this service's identity"
            ) from error
        raise


@dataclass(frozen=True)
class LedgerSums:
    """lancamentos' sums per day, how many of its entries await delivery, and
    how many of those are parked (refused by consolidado, awaiting an operator)."""

    days: dict[date, DaySums]
    undelivered_count: int
    parked_count: int


class LancamentosLedger:
    """lancamentos as reconcile and rebuild read it."""

    def __init__(self, stub: LancamentosServiceAsyncStub, *, timeout: float | None = None) -> None:
        self._stub = stub
        self._timeout = timeout

    async def sums(self, query: DayRange) -> LedgerSums:
        request = lpb.SummarizeLancamentosRequest(
            merchant_id=query.merchant_id,
            from_date=query.start.isoformat(),
            to_date=query.end.isoformat(),
        )
        with _unreachable_as_unavailable("summarize its entries"):
            summary = await self._stub.SummarizeLancamentos(request, timeout=self._timeout)
        return LedgerSums(
            days={
                date.fromisoformat(day.date): DaySums(
                    day.credits_cents, day.debits_cents, day.lancamentos_count
                )
                for day in summary.days
            },
            undelivered_count=summary.undelivered_count,
            parked_count=summary.parked_count,
        )

    async def feed(
        self, merchant_id: str | None, batch_size: int
    ) -> AsyncGenerator[list[IngestEntry]]:
        """The change feed from sequence 0 (one merchant's, or all), in validated
        batches of up to `batch_size`; Unavailable while lancamentos can't answer."""
        call = self._stub.StreamLancamentos(
            lpb.StreamLancamentosRequest(after_sequence=0, merchant_id=merchant_id or "")
        )
        try:
            batch: list[lpb.Lancamento] = []
            with _unreachable_as_unavailable("stream its entries"):
                async for entry in call:
                    batch.append(entry)
                    if len(batch) >= batch_size:
                        yield ingest_batch(batch)
                        batch = []
            if batch:
                yield ingest_batch(batch)
        finally:
            call.cancel()  # a no-op once the feed has ended
