"""Delivers a service's outbox to the service downstream, whatever it holds.

Rows are claimed with FOR UPDATE SKIP LOCKED, so several dispatchers share the
work, and settled in the same transaction only after the receiver answered. A
dispatcher that dies mid-batch releases its claim with its connection; the rows
are sent again and the receiver's dedupe makes that harmless.

What is delivered and how lives in the service's `OutboxQueue`: its claim, its
RPC, what an acknowledgement and a refusal for good change in its tables. This
loop owns the rest, the same for every service: batching behind NOTIFY and a
linger, retrying with full-jitter backoff, parking what the receiver refused
for good, the gauges, and a drain on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import grpc
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.platform.database import pooled_driver
from services.platform.outbox.backoff import full_jitter_delay
from services.platform.outbox.notifier import CommitNotifier
from services.platform.outbox.settings import OutboxSettings
from services.platform.settings import ServiceSettings
from services.platform.tasks import cancel_and_wait
from services.platform.tracing import Tracing
from services.platform.workload_identity import identity_interceptors

log = logging.getLogger(__name__)

# Labelled by receiver (consolidado for lancamentos' outbox, lancamentos for
# fiscal's): one process may run both in tests, and a dashboard tells them apart.
RECEIVER = ["receiver"]
DELIVERED = Counter("caixa_outbox_delivered_total", "Entries the receiver acknowledged", RECEIVER)
FAILURES = Counter(
    "caixa_outbox_delivery_failures_total", "Batches the receiver did not ack", RECEIVER
)
BACKING_OFF = Gauge(
    "caixa_outbox_consecutive_failures", "Failed batches since the last ack", RECEIVER
)
PARKED = Gauge("caixa_outbox_parked", "Entries refused for good, awaiting an operator", RECEIVER)
BACKLOG = Gauge(
    "caixa_outbox_backlog", "Entries waiting for delivery (parked ones aside)", RECEIVER
)
OLDEST_AGE = Gauge(
    "caixa_outbox_oldest_age_seconds",
    "Age of the oldest entry waiting for delivery; 0 with none",
    RECEIVER,
)
PARKINGS = Counter("caixa_outbox_parkings_total", "Entries this process parked", RECEIVER)


@dataclass(frozen=True)
class Sent:
    """What became of one claimed row: delivered (with what the receiver
    answered, e.g. the id it gave the entry), or refused for good, and why."""

    reference: str = ""
    refusal: str | None = None


@dataclass(frozen=True)
class Backlog:
    """The outbox at a glance: what waits for delivery, and for how long."""

    waiting: int  # not yet delivered, parked ones aside
    oldest_age_seconds: float  # of the oldest waiting entry; 0 with none
    parked: int


class OutboxQueue(Protocol):
    """One service's outbox. Rows are asyncpg records with a `traceparent`."""

    receiver: str  # the service it delivers to, the metrics' label

    async def claim(self, driver: asyncpg.Connection, limit: int) -> Sequence[asyncpg.Record]:
        """Locks up to `limit` deliverable rows until the transaction ends."""

    async def send(self, items: Sequence[asyncpg.Record], rpc_timeout: float) -> Sequence[Sent]:
        """Delivers `items`, one Sent each; raises when the batch should be retried."""

    def name(self, item: asyncpg.Record) -> str:
        """What an operator looks the row up by (its entry's id)."""

    async def settle(
        self, driver: asyncpg.Connection, items: Sequence[asyncpg.Record], sent: Sequence[Sent]
    ) -> None:
        """Records the outcome: the delivered leave the queue, the refused are parked."""

    async def backlog(self, conn: AsyncConnection) -> Backlog: ...

    async def vacuum(self, driver: asyncpg.Connection) -> None: ...

    async def close(self) -> None: ...


def delivery_channel(target: str, settings: ServiceSettings, tracing: Tracing) -> grpc.aio.Channel:
    """The channel a queue delivers on: to the receiver's sidecar, traced, with this
    workload's identity; gRPC's own retries off, as the dispatcher owns retrying."""
    return grpc.aio.insecure_channel(
        target,
        options=[("grpc.lb_policy_name", "round_robin"), ("grpc.enable_retries", 0)],
        interceptors=[*tracing.client_interceptors(), *identity_interceptors(settings)],
    )


class OutboxDispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        notifier: CommitNotifier,
        queue: OutboxQueue,
        settings: OutboxSettings,
        *,
        rng: random.Random | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._engine = engine
        self._notifier = notifier
        self._queue = queue
        self._settings = settings
        self._rng = rng or random.Random()
        self._tracing = tracing or Tracing(None)
        receiver = queue.receiver
        self._delivered = DELIVERED.labels(receiver)
        self._failures = FAILURES.labels(receiver)
        self._backing_off = BACKING_OFF.labels(receiver)
        self._parked = PARKED.labels(receiver)
        self._backlog = BACKLOG.labels(receiver)
        self._oldest_age = OLDEST_AGE.labels(receiver)
        self._parkings = PARKINGS.labels(receiver)
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
        async with pooled_driver(self._engine) as driver, driver.transaction():
            items = await self._queue.claim(driver, self._settings.dispatch_batch_size)
            if not items:
                return 0
            # Each row holds the trace of the request that wrote it.
            traces = [item["traceparent"] for item in items]
            with self._tracing.consumer_span("outbox deliver", traces):
                sent = await self._queue.send(items, self._settings.dispatch_timeout_seconds)
            await self._queue.settle(driver, items, sent)
        parked = [(item, s.refusal) for item, s in zip(items, sent, strict=True) if s.refusal]
        delivered = len(items) - len(parked)
        self._delivered.inc(delivered)
        self.delivered += delivered
        if parked:
            for item, reason in parked:
                log.error(
                    "the receiver refused an entry; parked it",
                    extra={"entry": self._queue.name(item), "reason": reason},
                )
            self._parkings.inc(len(parked))
            await self.refresh_gauges()
        self._since_vacuum += delivered
        every = self._settings.dispatch_vacuum_every
        if every and self._since_vacuum >= every:
            self._since_vacuum = 0
            await self._vacuum()
        return len(items)

    async def refresh_gauges(self) -> None:
        """Sets the backlog and parked gauges from the table (an operator may
        have retried parked entries, another dispatcher delivered some)."""
        try:
            async with self._engine.connect() as conn:
                seen = await self._queue.backlog(conn)
        except Exception as exc:  # a metric must not stop delivery
            log.warning("could not measure the outbox: %s", describe(exc))
            return
        self._backlog.set(seen.waiting)
        self._oldest_age.set(seen.oldest_age_seconds)
        self._parked.set(seen.parked)

    async def _observe(self) -> None:
        """The gauges, kept fresh whatever delivery does: while the receiver is
        down the backlog and its age grow, and that is when they matter."""
        while not self._stopping.is_set():
            await self.refresh_gauges()
            await self._sleep(self._settings.outbox_metrics_seconds)

    async def _vacuum(self) -> None:
        try:
            async with pooled_driver(self._engine) as driver:
                await self._queue.vacuum(driver)
        except Exception as exc:  # best effort: autovacuum remains the backstop
            log.warning("outbox vacuum failed: %s", describe(exc))

    async def _run(self) -> None:
        settings = self._settings
        while not self._stopping.is_set():
            try:
                sent = await self.dispatch_once()
            except Exception as exc:
                self.consecutive_failures += 1
                self._failures.inc()
                self._backing_off.set(self.consecutive_failures)
                delay = full_jitter_delay(
                    self.consecutive_failures,
                    base=settings.dispatch_backoff_base_seconds,
                    cap=settings.dispatch_backoff_max_seconds,
                    rng=self._rng,
                )
                log.warning(
                    "outbox delivery failed; backing off",
                    extra={
                        "error": describe(exc),
                        "consecutive_failures": self.consecutive_failures,
                        "delay_seconds": round(delay, 3),
                    },
                )
                await self._sleep(delay)
                continue
            if self.consecutive_failures:
                log.info("outbox delivery recovered", extra={"after": self.consecutive_failures})
            self.consecutive_failures = 0
            self._backing_off.set(0)
            if sent < settings.dispatch_batch_size:
                await self._notifier.wait(settings.dispatch_poll_seconds)
                # Per-batch costs dominate at small batches; a short linger
                # trades a little lag for much less CPU.
                await self._sleep(settings.dispatch_linger_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def stop(self, drain_seconds: float) -> None:
        """Stops the loop, then keeps delivering for up to `drain_seconds`
        so a rolling restart leaves little behind (what's left stays safe
        in the outbox for the next dispatcher)."""
        self._stopping.set()
        for task in (self._task, self._observer):
            if task is not None:
                await cancel_and_wait(task)
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:
            try:
                if await self.dispatch_once() == 0:
                    break
            except Exception as exc:
                log.warning("drain stopped: %s", describe(exc))
                break
        await self._queue.close()


def describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
