"""Stopping a background task so that the stop always ends.

`task.cancel()` then `await task` under `suppress(CancelledError)` hangs when the
task survives its cancellation, and on Python 3.11 one can: `asyncio.wait_for`
swallows a cancellation that lands in the iteration its awaitable completes in
(CPython gh-86296), and a loop inside such a task just goes round again. The
same `suppress` also swallows the caller's own cancellation. A stop that never
returns stalls a rolling restart until the kubelet's SIGKILL, and a test
session forever.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

# How often a task that went on running is cancelled again.
_RECANCEL_SECONDS = 0.05


async def cancel_and_wait(task: asyncio.Task[Any], *, within: float = 5.0) -> None:
    """Cancels `task` until it ends, for at most `within` seconds. What it ended
    with is not raised: a failure while stopping is logged, one from before is
    the business of whoever awaited it. The caller's own cancellation is never
    swallowed."""
    if task.done():
        _retrieve(task)
        return
    deadline = asyncio.get_running_loop().time() + within
    while not task.done():
        task.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            log.error("task %s outlived its cancellation; leaving it", task.get_name())
            return
        await asyncio.wait([task], timeout=min(_RECANCEL_SECONDS, left))
    if (error := _retrieve(task)) is not None:
        log.warning("task %s failed while stopping: %r", task.get_name(), error)


def _retrieve(task: asyncio.Task[Any]) -> BaseException | None:
    # Retrieved, so asyncio does not also report it as never retrieved.
    return None if task.cancelled() else task.exception()
