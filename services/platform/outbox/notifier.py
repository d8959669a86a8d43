"""Wakes waiters when a service commits work for them, via PostgreSQL LISTEN/NOTIFY.

One dedicated asyncpg connection per process; if it drops, waiters fall back
to their polling interval until it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from services.platform.database import asyncpg_dsn
from services.platform.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class CommitNotifier:
    def __init__(self, database_url: str, channel: str, *, reconnect_seconds: float = 1.0) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._reconnect_seconds = reconnect_seconds
        self._generation = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="commit-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def wait(self, poll_seconds: float) -> None:
        """Returns on the next notification, or after `poll_seconds` (the fallback)."""
        async with self._changed:
            seen = self._generation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_seconds):
                    await self._changed.wait_for(lambda: self._generation != seen)

    async def _bump(self) -> None:
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _on_notify(self, *_: Any) -> None:
        asyncio.get_running_loop().create_task(self._bump())

    async def _listen_forever(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("LISTEN connection failed, polling meanwhile: %s", exc)
                await asyncio.sleep(self._reconnect_seconds)
                continue
            try:
                await conn.add_listener(self._channel, self._on_notify)
                # A commit may have happened while disconnected.
                await self._bump()
                while not conn.is_closed():
                    await asyncio.sleep(self._reconnect_seconds * 5)
                    await conn.execute("SELECT 1")  # detects a half-open connection
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection lost: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
