"""Runs a service's main coroutine on uvloop: asyncpg and redis I/O were a
large share of the CPU profile on asyncio's default selector loop."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import uvloop


def run(main: Coroutine[Any, Any, None]) -> None:
    uvloop.run(main)
