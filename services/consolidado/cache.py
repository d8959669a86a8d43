"""Cache-aside for balances in Redis, with O(1) invalidation per merchant.

Every value key embeds the merchant's current version
(`{prefix}:{merchant}:{version}:{from}:{to}`); ingest bumps the version
(`INCR {prefix}:ver:{merchant}`) after its commit, which orphans every cached
range of that merchant at once; orphans expire by TTL. Readers take the version
BEFORE reading PostgreSQL, so a value computed before a concurrent commit is
stored under the old version, where no one looks any more.

Version keys have no TTL: with a `volatile-*` eviction policy Redis never
evicts them, so a version never goes back to one that has values cached.

Redis is optional. Any failure serves from PostgreSQL, counts a fallback, and
skips Redis for a short cool-down so a dead Redis doesn't cost every request
its timeout. An invalidation that fails is retried in the background until
Redis answers; meanwhile this replica reads that merchant from PostgreSQL, and
the TTL bounds what other replicas may serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from services.consolidado.settings import ConsolidadoSettings

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "caixa_consolidado_cache_requests_total",
    "Balance reads that asked the cache, by result",
    ["result"],
)
FALLBACKS = Counter(
    "caixa_consolidado_cache_fallbacks_total",
    "Cache operations skipped or failed because Redis was unavailable, by operation",
    ["op"],
)

_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError, ValueError)

# Version and value in one round trip. It builds the value key from ARGV, so it
# suits a standalone Redis (or one where a merchant's keys share a slot).
_READ_SCRIPT = """
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('GET', ARGV[1] .. version .. ARGV[2])}
"""


@dataclass(frozen=True)
class Lookup:
    """`version` is None when the cache can't be used now: don't store."""

    version: int | None
    value: bytes | None


UNUSABLE = Lookup(None, None)


def redis_client(settings: ConsolidadoSettings) -> Redis:
    # Bounded and blocking (briefly): a burst of reads queues for a connection
    # instead of opening hundreds, or failing at once with "too many connections".
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        # One try: the fallback to PostgreSQL is the retry.
        retry=Retry(NoBackoff(), 0),
    )
    # The client owns the pool and closes it.
    return Redis.from_pool(pool)


class BalanceCache:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        cooldown_seconds: float,
        retry_interval_seconds: float = 0.5,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._cooldown = cooldown_seconds
        self._retry_interval = retry_interval_seconds
        self._read_script: Any = client.register_script(_READ_SCRIPT)
        self._down_until = 0.0
        self._healthy = True
        self._pending: set[str] = set()
        # Taken out of _pending while their retried INCR is in flight; still stale.
        self._in_flight: frozenset[str] = frozenset()
        self._retry_task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: ConsolidadoSettings) -> BalanceCache:
        return cls(
            redis_client(settings),
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            cooldown_seconds=settings.redis_cooldown_seconds,
        )

    @property
    def pending_invalidations(self) -> frozenset[str]:
        """Merchants whose cached balances this replica knows are stale."""
        return self._in_flight | self._pending

    def version_key(self, merchant_id: str) -> str:
        return f"{self._prefix}:ver:{merchant_id}"

    def value_key(self, merchant_id: str, version: int, start: date, end: date) -> str:
        return f"{self._prefix}:{merchant_id}:{version}:{start}:{end}"

    async def lookup(self, merchant_id: str, start: date, end: date) -> Lookup:
        # Two set lookups rather than building the union on every read.
        if not self._usable() or merchant_id in self._pending or merchant_id in self._in_flight:
            FALLBACKS.labels("read").inc()
            return UNUSABLE
        try:
            version, value = await self._read_script(
                keys=[self.version_key(merchant_id)],
                args=[f"{self._prefix}:{merchant_id}:", f":{start}:{end}"],
            )
            lookup = Lookup(int(version), value)
        except _FAILURES as exc:
            self._failed("read", exc)
            return UNUSABLE
        self._succeeded()
        REQUESTS.labels("hit" if lookup.value is not None else "miss").inc()
        return lookup

    async def store(
        self, merchant_id: str, version: int, start: date, end: date, value: bytes
    ) -> None:
        if not self._usable():
            FALLBACKS.labels("write").inc()
            return
        try:
            await self._client.set(
                self.value_key(merchant_id, version, start, end), value, ex=self._ttl
            )
        except _FAILURES as exc:
            self._failed("write", exc)
            return
        self._succeeded()

    async def invalidate(self, merchant_ids: Iterable[str]) -> None:
        """Bumps each merchant's version; never raises (retries in background)."""
        merchants = set(merchant_ids)
        if not merchants:
            return
        if self._usable():
            try:
                await self._bump(merchants)
            except _FAILURES as exc:
                self._failed("invalidate", exc)
            else:
                self._succeeded()
                return
        else:
            FALLBACKS.labels("invalidate").inc()
        self._pending |= merchants
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.create_task(
                self._retry_pending(), name="cache-invalidation-retry"
            )

    async def close(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
        if self.pending_invalidations:
            log.warning(
                "closing with cache invalidations undelivered; the TTL bounds their staleness",
                extra={"merchants": len(self.pending_invalidations), "ttl_seconds": self._ttl},
            )
        # types-redis predates aclose(); close() is deprecated in redis-py 5+.
        await self._client.aclose()

    async def _bump(self, merchants: Iterable[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for merchant_id in sorted(merchants):
            pipe.incr(self.version_key(merchant_id))
        await pipe.execute()

    async def _retry_pending(self) -> None:
        while self._pending:
            wait = max(self._retry_interval, self._down_until - time.monotonic())
            await asyncio.sleep(wait)
            # Taken out first, so that an invalidation queued while this INCR is in
            # flight stays queued; in flight, they are still stale for lookups.
            self._in_flight, self._pending = frozenset(self._pending), set()
            try:
                await self._bump(self._in_flight)
            except BaseException as exc:
                # Undelivered, whatever stopped it (close() cancels this task): queued again.
                self._pending |= self._in_flight
                if not isinstance(exc, _FAILURES):
                    raise
                self._failed("invalidate", exc)
            else:
                self._succeeded()
                log.info(
                    "delayed cache invalidations delivered",
                    extra={"merchants": len(self._in_flight)},
                )
            finally:
                self._in_flight = frozenset()

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, op: str, exc: BaseException) -> None:
        FALLBACKS.labels(op).inc()
        self._down_until = time.monotonic() + self._cooldown
        if self._healthy:
            self._healthy = False
            log.warning(
                "redis unavailable; serving balances from PostgreSQL",
                extra={"op": op, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _succeeded(self) -> None:
        if not self._healthy:
            self._healthy = True
            log.info("redis available again")
