"""Delivers the outbox to consolidado's ApplyLancamentos.

Rows are claimed with FOR UPDATE SKIP LOCKED, so several dispatchers share the
work, and deleted in the same transaction only after consolidado acknowledged
them. A dispatcher that dies mid-batch releases its claim with its connection;
the rows are sent again and consolidado's dedupe makes that harmless.

A batch consolidado refuses for good (INVALID_ARGUMENT, FAILED_PRECONDITION,
OUT_OF_RANGE: it would refuse it again) is split in halves until the refused
entries stand alone; those are parked with the reason, the rest delivered, so
one bad entry never holds up the others. Anything else is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

import asyncpg
import grpc
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from services.lancamentos import outbox_queue, store
from services.lancamentos.conversions import record_to_proto
from services.lancamentos.notifier import CommitNotifier
from services.lancamentos.outbox.backoff import full_jitter_delay
from services.lancamentos.settings import LancamentosSettings
from services.platform.tracing import Tracing
from services.platform.workload_identity import identity_interceptors

log = logging.getLogger(__name__)

DELIVERED = Counter("caixa_outbox_delivered_total", "Entries acknowledged by consolidado")
FAILURES = Counter("caixa_outbox_delivery_failures_total", "Batches consolidado did not ack")
BACKING_OFF = Gauge("caixa_outbox_consecutive_failures", "Failed batches since the last ack")
PARKED = Gauge("caixa_outbox_parked", "Entries consolidado refused for good, awaiting an operator")
BACKLOG = Gauge("caixa_outbox_backlog", "Entries waiting for delivery (parked ones aside)")
OLDEST_AGE = Gauge(
    "caixa_outbox_oldest_age_seconds", "Age of the oldest entry waiting for delivery; 0 with none"
)
PARKINGS = Counter("caixa_outbox_parkings_total", "Entries this process parked")

REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


class OutboxDispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        notifier: CommitNotifier,
        settings: LancamentosSettings,
        *,
        rng: random.Random | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._engine = engine
        self._notifier = notifier
        self._settings = settings
        self._rng = rng or random.Random()
        self._tracing = tracing or Tracing(None)
        self._channel = grpc.aio.insecure_channel(
            settings.require("consolidado_target"),
            options=[
                ("grpc.lb_policy_name", "round_robin"),
                ("grpc.enable_retries", 0),  # this loop owns retrying, with backoff
            ],
            interceptors=[
                *self._tracing.client_interceptors(),
                *identity_interceptors(settings),
            ],
        )
        self._stub = cpb_grpc.ConsolidadoIngestServiceStub(self._channel)
        self.consecutive_failures = 0
        self.delivered = 0
        self._since_vacuum = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._observer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")
        self._observer = asyncio.create_task(self._observe(), name="outbox-metrics")

    async def dispatch_once(self) -> int:
        """Delivers or parks one batch; returns its size (0: nothing to send)."""
        async with self._engine.connect() as conn:
            driver = await store.driver_connection(conn)
            async with driver.transaction():
                items = await outbox_queue.claim_outbox(driver, self._settings.dispatch_batch_size)
                if not items:
                    return 0
                # Each entry's row holds the trace of the request that wrote it.
                traces = [item["traceparent"] for item in items]
                with self._tracing.consumer_span("outbox deliver", traces):
                    delivered, parked = await self._deliver(driver, items)
        DELIVERED.inc(delivered)
        self.delivered += delivered
        if parked:
            PARKINGS.inc(parked)
            await self.refresh_gauges()
        self._since_vacuum += delivered
        every = self._settings.dispatch_vacuum_every
        if every and self._since_vacuum >= every:
            self._since_vacuum = 0
            await self._vacuum()
        return len(items)

    async def _deliver(
        self, driver: asyncpg.Connection, items: Sequence[asyncpg.Record]
    ) -> tuple[int, int]:
        """Sends `items`, halving on a refusal; deletes what was acknowledged and
        parks what was refused alone. Returns (delivered, parked)."""
        request = cpb.ApplyLancamentosRequest(lancamentos=[record_to_proto(i) for i in items])
        try:
            await self._stub.ApplyLancamentos(
                request, timeout=self._settings.dispatch_timeout_seconds
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in REFUSALS:
                raise
            if len(items) > 1:
                half = len(items) // 2
                first = await self._deliver(driver, items[:half])
                second = await self._deliver(driver, items[half:])
                return first[0] + second[0], first[1] + second[1]
            reason = _describe(exc)
            await outbox_queue.park(driver, items[0]["outbox_id"], reason)
            log.error(
                "consolidado refused an entry; parked it",
                extra={"lancamento_id": str(items[0]["lancamento_id"]), "reason": reason},
            )
            return 0, 1
        await outbox_queue.delete_outbox(driver, [item["outbox_id"] for item in items])
        return len(items), 0

    async def refresh_gauges(self) -> None:
        """Sets the backlog and parked gauges from the table (an operator may
        have retried parked entries, another dispatcher delivered some)."""
        try:
            async with self._engine.connect() as conn:
                seen = await outbox_queue.backlog(conn)
        except Exception as exc:  # a metric must not stop delivery
            log.warning("could not measure the outbox: %s", _describe(exc))
            return
        BACKLOG.set(seen.waiting)
        OLDEST_AGE.set(seen.oldest_age_seconds)
        PARKED.set(seen.parked)

    async def _observe(self) -> None:
        """The gauges, kept fresh whatever delivery does: while consolidado is
        down the backlog and its age grow, and that is when they matter."""
        while not self._stopping.is_set():
            await self.refresh_gauges()
            await self._sleep(self._settings.outbox_metrics_seconds)

    async def _vacuum(self) -> None:
        try:
            async with self._engine.connect() as conn:
                await outbox_queue.vacuum_outbox(await store.driver_connection(conn))
        except Exception as exc:  # best effort: autovacuum remains the backstop
            log.warning("outbox vacuum failed: %s", _describe(exc))

    async def _run(self) -> None:
        settings = self._settings
        while not self._stopping.is_set():
            try:
                sent = await self.dispatch_once()
            except Exception as exc:
                self.consecutive_failures += 1
                FAILURES.inc()
                BACKING_OFF.set(self.consecutive_failures)
                delay = full_jitter_delay(
                    self.consecutive_failures,
                    base=settings.dispatch_backoff_base_seconds,
                    cap=settings.dispatch_backoff_max_seconds,
                    rng=self._rng,
                )
                log.warning(
                    "outbox delivery failed; backing off",
                    extra={
                        "error": _describe(exc),
                        "consecutive_failures": self.consecutive_failures,
                        "delay_seconds": round(delay, 3),
                    },
                )
                await self._sleep(delay)
                continue
            if self.consecutive_failures:
                log.info("outbox delivery recovered", extra={"after": self.consecutive_failures})
            self.consecutive_failures = 0
            BACKING_OFF.set(0)
            if sent < settings.dispatch_batch_size:
                await self._notifier.wait(settings.dispatch_poll_seconds)
                # Per-batch costs dominate at small batches; a short linger
                # trades a little consolidation lag for much less CPU.
                await self._sleep(settings.dispatch_linger_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self, drain_seconds: float) -> None:
        """Stops the loop, then keeps delivering for up to `drain_seconds`
        so a rolling restart leaves little behind (what's left stays safe
        in the outbox for the next dispatcher)."""
        self._stopping.set()
        for task in (self._task, self._observer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:
            try:
                if await self.dispatch_once() == 0:
                    break
            except Exception as exc:
                log.warning("drain stopped: %s", _describe(exc))
                break
        await self._channel.close(None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
