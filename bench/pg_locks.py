"""Samples one advisory lock in pg_locks while a load runs: how often it is
held, and how many transactions queue behind it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg

# pg_advisory_xact_lock(bigint) shows as classid = high 32 bits, objid = low
# 32 bits, objsubid = 1.
_QUERY = """
SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
FROM pg_locks
WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 1
"""


class LockSampler:
    """Polls every `interval` seconds on its own thread and connection, from
    `start()` until `stop()`, which returns the summary."""

    def __init__(self, url: str, key: int, *, interval: float = 0.01) -> None:
        self._url = url
        self._key = key
        self._interval = interval
        self._stopping = threading.Event()
        self._samples: list[tuple[int, int]] = []
        self._thread = threading.Thread(target=lambda: asyncio.run(self._poll()), daemon=True)
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    async def _poll(self) -> None:
        try:
            conn = await asyncpg.connect(self._url)
        except Exception as error:  # reported by stop()
            self._error = error
            return
        try:
            while not self._stopping.is_set():
                row = await conn.fetchrow(_QUERY, self._key >> 32, self._key & 0xFFFFFFFF)
                assert row is not None
                self._samples.append((int(row[0]), int(row[1])))
                await asyncio.sleep(self._interval)
        finally:
            await conn.close()

    def stop(self) -> dict[str, Any]:
        self._stopping.set()
        self._thread.join(timeout=10)
        if self._error is not None:
            return {"error": repr(self._error)}
        samples = self._samples
        if not samples:
            return {"samples": 0}
        waiting = [w for _, w in samples]
        return {
            "samples": len(samples),
            "held_pct": round(100 * sum(1 for h, _ in samples if h) / len(samples), 1),
            "with_waiter_pct": round(100 * sum(1 for w in waiting if w) / len(samples), 1),
            "waiting_mean": round(sum(waiting) / len(samples), 2),
            "waiting_max": max(waiting),
        }
