"""The lancamentos outbox's delivery: batches to consolidado's ApplyLancamentos.

A batch consolidado refuses for good (INVALID_ARGUMENT, FAILED_PRECONDITION,
OUT_OF_RANGE: it would refuse it again) is split in halves until the refused
entries stand alone; those are parked with the reason, the rest delivered, so
one bad entry never holds up the others. Anything else fails the batch, which
the dispatcher (services.platform.outbox) retries with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import grpc
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

from services.lancamentos import outbox_queue
from services.lancamentos.conversions import record_to_proto
from services.lancamentos.settings import LancamentosSettings
from services.platform.outbox.dispatcher import (
    Backlog,
    Sent,
    delivery_channel,
    describe,
)
from services.platform.tracing import Tracing

REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


class ConsolidadoDelivery:
    """The lancamentos outbox as an OutboxQueue."""

    receiver = "consolidado"

    def __init__(self, settings: LancamentosSettings, tracing: Tracing) -> None:
        self._channel = delivery_channel(settings.require("consolidado_target"), settings, tracing)
        self._stub = cpb_grpc.ConsolidadoIngestServiceStub(self._channel)

    async def claim(self, driver: asyncpg.Connection, limit: int) -> Sequence[asyncpg.Record]:
        return await outbox_queue.claim_outbox(driver, limit)

    async def send(self, items: Sequence[asyncpg.Record], rpc_timeout: float) -> list[Sent]:
        request = cpb.ApplyLancamentosRequest(lancamentos=[record_to_proto(i) for i in items])
        try:
            await self._stub.ApplyLancamentos(request, timeout=rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in REFUSALS:
                raise
            if len(items) == 1:
                return [Sent(refusal=describe(exc))]
            half = len(items) // 2
            return [
                *await self.send(items[:half], rpc_timeout),
                *await self.send(items[half:], rpc_timeout),
            ]
        return [Sent()] * len(items)

    def name(self, item: asyncpg.Record) -> str:
        return f"lancamento {item['lancamento_id']}"

    async def settle(
        self, driver: asyncpg.Connection, items: Sequence[asyncpg.Record], sent: Sequence[Sent]
    ) -> None:
        delivered = [i["outbox_id"] for i, s in zip(items, sent, strict=True) if s.refusal is None]
        await outbox_queue.delete_outbox(driver, delivered)
        for item, outcome in zip(items, sent, strict=True):
            if outcome.refusal is not None:
                await outbox_queue.park(driver, item["outbox_id"], outcome.refusal)

    async def backlog(self, conn: AsyncConnection) -> Backlog:
        return await outbox_queue.backlog(conn)

    async def vacuum(self, driver: asyncpg.Connection) -> None:
        await outbox_queue.vacuum_outbox(driver)

    async def close(self) -> None:
        await self._channel.close(None)
