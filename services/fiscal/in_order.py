"""A stream's answers computed several at a time, sent in the order asked.

A batch stream handled one document after the other leaves a process's worker
threads idle while the event loop waits; `in_order` keeps up to `depth`
documents of one stream in flight and still answers them in order, answering
each as soon as it and those before it are done (a caller that sends one and
waits is never stalled).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from services.platform.tasks import cancel_and_wait

T = TypeVar("T")
R = TypeVar("R")


async def in_order(
    requests: AsyncIterator[T], work: Callable[[T], Awaitable[R]], *, depth: int
) -> AsyncGenerator[R, None]:
    room = asyncio.Semaphore(depth)  # taken before a document starts, given back when answered
    started: asyncio.Queue[asyncio.Future[R] | None] = asyncio.Queue()

    async def read() -> None:
        try:
            async for request in requests:
                await room.acquire()
                started.put_nowait(asyncio.ensure_future(work(request)))
        finally:
            started.put_nowait(None)

    reader = asyncio.ensure_future(read())
    try:
        while (answer := await started.get()) is not None:
            try:
                result = await answer
            finally:
                room.release()
            yield result
        await reader  # a failed read fails the stream
    finally:
        await cancel_and_wait(reader)
        while not started.empty():
            left = started.get_nowait()
            if left is not None:
                left.cancel()
