"""in_order: a stream's answers computed several at a time and sent in the order
asked; driven by events, not sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.fiscal.in_order import in_order


async def _requests(items: list[int], gate: asyncio.Event | None = None) -> AsyncIterator[int]:
    for item in items:
        yield item
    if gate is not None:
        await gate.wait()  # the caller holds the stream open


async def test_answers_keep_the_order_asked_whatever_finishes_first() -> None:
    done = {i: asyncio.Event() for i in range(4)}
    running: set[int] = set()
    peak = 0

    async def work(i: int) -> int:
        nonlocal peak
        running.add(i)
        peak = max(peak, len(running))
        await done[i].wait()
        running.discard(i)
        return i * 10

    answers = in_order(_requests([0, 1, 2, 3]), work, depth=2)
    first = asyncio.ensure_future(answers.__anext__())
    await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    # The last ones finish first; nothing is answered before the first.
    done[1].set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not first.done()
    done[0].set()
    assert await first == 0
    for i in (2, 3):
        done[i].set()
    assert [a async for a in answers] == [10, 20, 30]
    assert peak <= 2  # never more than depth at once


async def test_one_request_is_answered_while_the_stream_stays_open() -> None:
    """A caller that sends one document and waits for its answer is not stalled."""
    gate = asyncio.Event()

    async def work(i: int) -> int:
        return i + 1

    answers = in_order(_requests([41], gate), work, depth=4)
    assert await asyncio.wait_for(answers.__anext__(), timeout=5) == 42
    gate.set()
    assert [a async for a in answers] == []


async def test_a_failure_fails_the_stream_and_cancels_the_rest() -> None:
    cancelled = asyncio.Event()
    blocked = asyncio.Event()

    async def work(i: int) -> int:
        if i == 0:
            raise RuntimeError("boom")
        try:
            await blocked.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return i

    answers = in_order(_requests([0, 1, 2]), work, depth=2)
    with pytest.raises(RuntimeError, match="boom"):
        await answers.__anext__()
    await answers.aclose()
    await asyncio.wait_for(cancelled.wait(), timeout=5)
