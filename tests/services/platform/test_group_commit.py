"""GroupCommitter: whatever one batch's flush does, later callers are served and
`stop` returns. Before, a flush that raised outside `Exception` or gave the
wrong number of outcomes killed the loop: its callers and every later one
waited forever, and so did `stop`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.domain.errors import Unavailable
from services.platform.group_commit import GroupCommitter
from tests.support.stopping import stops_promptly


async def test_each_caller_gets_its_own_outcome_after_one_flush() -> None:
    flushed: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        flushed.append(list(items))
        return [ValueError(i) if i < 0 else i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_batch=8)
    committer.start()
    calls = [asyncio.ensure_future(committer.submit(i)) for i in (1, -2, 3)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError)
    assert flushed == [[1, -2, 3]]
    await stops_promptly(committer.stop())


async def test_a_cancellation_inside_a_flush_fails_that_batch_only() -> None:
    """E.g. a driver call cancelled under the flush: the loop itself was not
    cancelled, so it must go on."""
    first = True

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal first
        if first:
            first = False
            raise asyncio.CancelledError
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_batch=8)
    committer.start()
    async with asyncio.timeout(5):
        with pytest.raises(Unavailable):
            await committer.submit(1)
        assert await committer.submit(2) == 2
    await stops_promptly(committer.stop())


async def test_a_flush_that_miscounts_its_outcomes_fails_its_callers() -> None:
    short = True

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal short
        outcomes: list[int | BaseException] = list(items)
        if short:
            short = False
            return outcomes[1:]
        return outcomes

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_batch=8)
    committer.start()
    async with asyncio.timeout(5):
        calls = [asyncio.ensure_future(committer.submit(i)) for i in (1, 2)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
        assert await committer.submit(3) == 3
    await stops_promptly(committer.stop())


async def test_stop_ends_even_when_a_flush_never_does() -> None:
    """A flush stuck past the stop's budget is cancelled; its caller is told to
    retry (nothing was acknowledged), as is one still queued behind it."""
    entered, never = asyncio.Event(), asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        entered.set()
        await never.wait()
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_batch=1)
    committer.start()
    stuck = asyncio.ensure_future(committer.submit(1))
    queued = asyncio.ensure_future(committer.submit(2))
    await entered.wait()
    await stops_promptly(committer.stop(within=0.2))
    for call in (stuck, queued):
        with pytest.raises(Unavailable):
            await call
