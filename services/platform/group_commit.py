"""Group commit: concurrent callers' writes coalesced into one transaction.

Each caller awaits its own result, which is set only after the shared
transaction commits, so an acknowledgement always means durable. One commit
(one WAL flush) then pays for a whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from services.domain.errors import Unavailable
from services.platform.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Returns one outcome per item: a result, or the exception for that item alone.
Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommitter(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], *, max_batch: int) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self, within: float = 10.0) -> None:
        """Flushes what is queued, for up to `within` seconds, then stops. A
        caller whose item was not committed by then gets Unavailable: nothing
        of it was acknowledged, and its retry (same request id) is safe."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()
        await cancel_and_wait(self._task)
        self._task = None
        _fail(self._pending, Unavailable("the service stopped before this write; retry it"))
        self._pending.clear()

    async def submit(self, item: T) -> R:
        if self._task is None:
            raise RuntimeError("GroupCommitter is not started")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._idle.clear()
        self._wake.set()
        # shield: a caller that gives up must not cancel the batch it is in.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._flush_batch(batch)
            self._idle.set()

    async def _flush_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        # Whatever goes wrong is this batch's alone: the loop must go on, or
        # every later caller waits forever and `stop` with them.
        try:
            outcomes = await self._flush([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"flush gave {len(outcomes)} outcomes for {len(batch)} items")
        except asyncio.CancelledError:
            _fail(batch, Unavailable("the write was interrupted; retry it"))
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # `stop` cancelled the loop
            return  # something the flush awaited was cancelled, not the loop
        except Exception as exc:
            _fail(batch, exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
