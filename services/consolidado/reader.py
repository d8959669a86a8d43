"""Balance reads: cache-aside over PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.balances import DailyBalance, dense_balances
from services.consolidado.cache import BalanceCache
from services.consolidado.queries import DayRange
from services.platform.database import pooled_driver

Balances = TypeVar("Balances")


class BalancesCodec(Protocol[Balances]):
    """How the transport wants balances built, and how they are cached: the
    reader stays free of protobuf while the cache holds ready answers."""

    def build(self, merchant_id: str, balances: Iterable[DailyBalance]) -> Balances: ...

    def encode(self, value: Balances) -> bytes: ...

    def decode(self, data: bytes) -> Balances | None:
        """None when the bytes can't be read (the entry is recomputed)."""
        ...


class BalanceReader(Generic[Balances]):
    def __init__(
        self, engine: AsyncEngine, cache: BalanceCache, codec: BalancesCodec[Balances]
    ) -> None:
        self._engine = engine
        self._cache = cache
        self._codec = codec

    async def balances(self, query: DayRange) -> Balances:
        """Every day of the range; a single day is a one-day range."""
        # The version first: see services.consolidado.cache. The connection goes
        # back before Redis is asked, so a hung Redis cannot drain the pool.
        async with pooled_driver(self._engine) as driver:
            version = await store.balance_version(driver, query.merchant_id)
        cached = await self._cache.lookup(query.merchant_id, version, query.start, query.end)
        if cached is not None:
            decoded = self._codec.decode(cached)
            if decoded is not None:
                return decoded
            # Unreadable entry: recompute and overwrite it.
        async with pooled_driver(self._engine) as driver:
            opening, days = await store.balance_inputs(
                driver, query.merchant_id, query.start, query.end
            )
        response = self._codec.build(
            query.merchant_id, dense_balances(opening, days, query.start, query.end)
        )
        if self._cache.usable():  # not offered to a Redis that just failed
            await self._cache.store(
                query.merchant_id, version, query.start, query.end, self._codec.encode(response)
            )
        return response
