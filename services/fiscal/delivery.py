"""Delivers fiscal's postings to lancamentos: CreateLancamento for an entry,
ReverseLancamento for a cancellation's, nothing else. Through fiscal's own
sidecar, with fiscal's workload identity, never a user's token.

Each posting is its own call (lancamentos has no batch create that answers
the entries' ids), made concurrently within a batch. lancamentos dedupes on
the request_id, so a batch sent again after a crash books nothing twice. A
refusal for good parks that posting alone; anything else fails the batch and
the dispatcher retries it with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc
from sqlalchemy.ext.asyncio import AsyncConnection

from services.fiscal import outbox_queue
from services.fiscal.settings import FiscalSettings
from services.platform.outbox.dispatcher import (
    Backlog,
    Sent,
    delivery_channel,
    describe,
)
from services.platform.tracing import Tracing

# lancamentos would answer these again: park, don't retry. ALREADY_EXISTS is a
# request_id reused with another payload, which only an operator can sort out.
REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
    }
)


class LancamentosDelivery:
    """fiscal's postings as an OutboxQueue."""

    receiver = "lancamentos"

    def __init__(self, settings: FiscalSettings, tracing: Tracing) -> None:
        self._channel = delivery_channel(settings.require("lancamentos_target"), settings, tracing)
        self._stub = lpb_grpc.LancamentosServiceStub(self._channel)

    async def claim(self, driver: asyncpg.Connection, limit: int) -> Sequence[asyncpg.Record]:
        return await outbox_queue.claim(driver, limit)

    async def _send_one(self, item: asyncpg.Record, rpc_timeout: float) -> Sent:
        if item["reversal"] and item["reverses_lancamento_id"] is None:
            return Sent(refusal="the entry it reverses is parked: nothing to reverse yet")
        try:
            if item["reversal"]:
                entry = await self._stub.ReverseLancamento(
                    lpb.ReverseLancamentoRequest(
                        merchant_id=item["merchant_id"],
                        lancamento_id=str(item["reverses_lancamento_id"]),
                        request_id=item["request_id"],
                        value_date=item["value_date"].isoformat(),
                        description=item["description"],
                    ),
                    timeout=rpc_timeout,
                )
            else:
                entry = await self._stub.CreateLancamento(
                    lpb.CreateLancamentoRequest(
                        merchant_id=item["merchant_id"],
                        kind=item["kind"],
                        amount_cents=item["amount_cents"],
                        currency="BRL",
                        value_date=item["value_date"].isoformat(),
                        description=item["description"],
                        request_id=item["request_id"],
                    ),
                    timeout=rpc_timeout,
                )
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in REFUSALS:
                raise
            return Sent(refusal=describe(exc))
        return Sent(reference=entry.lancamento_id)

    async def send(self, items: Sequence[asyncpg.Record], rpc_timeout: float) -> list[Sent]:
        return list(await asyncio.gather(*(self._send_one(i, rpc_timeout) for i in items)))

    def name(self, item: asyncpg.Record) -> str:
        return f"posting {item['request_id']} of merchant {item['merchant_id']}"

    async def settle(
        self, driver: asyncpg.Connection, items: Sequence[asyncpg.Record], sent: Sequence[Sent]
    ) -> None:
        done = [(i, s) for i, s in zip(items, sent, strict=True) if s.refusal is None]
        await outbox_queue.delivered(
            driver, [i for i, _ in done], [UUID(s.reference) for _, s in done]
        )
        for item, outcome in zip(items, sent, strict=True):
            if outcome.refusal is not None:
                await outbox_queue.park(driver, item["posting_id"], outcome.refusal)

    async def backlog(self, conn: AsyncConnection) -> Backlog:
        return await outbox_queue.backlog(conn)

    async def vacuum(self, driver: asyncpg.Connection) -> None:
        await driver.execute("VACUUM (SKIP_LOCKED) postings")

    async def close(self) -> None:
        await self._channel.close(None)
