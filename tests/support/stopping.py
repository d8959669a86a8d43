"""A stop that must end promptly, measured."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def stops_promptly(stop: Coroutine[Any, Any, None]) -> None:
    # Measured, not only bounded: the old stop swallowed even the timeout's
    # cancellation, and returned when it fired as if it had stopped.
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with asyncio.timeout(5):
        await stop
    assert loop.time() - began < 2, "stop waited for the timeout: a loop outlived its cancel"
