"""Cache-aside for balances in Redis, keyed by the merchant's balance version.

Every value key embeds the version (`{prefix}:{merchant}:{version}:{from}:{to}`)
that PostgreSQL holds for the merchant (tables.balance_versions), bumped in the
statement that changes its totals. A commit thus orphans every cached range of
that merchant at once, and orphans expire by TTL. Readers take the version
BEFORE reading the totals, so a value computed across a concurrent commit is
stored under the old version, where no one looks any more.

Redis holds nothing but values: no bump can be lost after a commit (there is
none to make in Redis), and any eviction policy is safe, since an evicted
value is a miss. The devstack runs Valkey with allkeys-lru.

Redis is optional. Any failure serves from PostgreSQL, counts a fallback, and
skips Redis for a short cool-down so a dead Redis doesn't cost every request
its timeout.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import TYPE_CHECKING

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
        self, client: Redis, *, prefix: str, ttl_seconds: int, cooldown_seconds: float
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._cooldown = cooldown_seconds
        self._down_until = 0.0
        self._healthy = True

    @classmethod
    def from_settings(cls, settings: ConsolidadoSettings) -> BalanceCache:
        return cls(
            redis_client(settings),
            prefix=settings.redis_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            cooldown_seconds=settings.redis_cooldown_seconds,
        )

    def value_key(self, merchant_id: str, version: int, start: date, end: date) -> str:
        return f"{self._prefix}:{merchant_id}:{version}:{start}:{end}"

    def usable(self) -> bool:
        """False during the cool-down after a failure: don't ask, don't store."""
        return time.monotonic() >= self._down_until

    async def lookup(self, merchant_id: str, version: int, start: date, end: date) -> bytes | None:
        if not self.usable():
            FALLBACKS.labels("read").inc()
            return None
        try:
            found = await self._client.get(self.value_key(merchant_id, version, start, end))
            # The client is made without decode_responses: values are bytes.
            value = found.encode() if isinstance(found, str) else found
        except _FAILURES as exc:
            self._failed("read", exc)
            return None
        self._succeeded()
        REQUESTS.labels("hit" if value is not None else "miss").inc()
        return value

    async def store(
        self, merchant_id: str, version: int, start: date, end: date, value: bytes
    ) -> None:
        if not self.usable():
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

    async def close(self) -> None:
        # types-redis predates aclose(); close() is deprecated in redis-py 5+.
        await self._client.aclose()

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
