"""Balance reads: cache-aside over PostgreSQL."""

from __future__ import annotations

from consolidado.v1 import consolidado_pb2 as pb
from google.protobuf.message import DecodeError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.balances import dense_balances
from services.consolidado.cache import BalanceCache
from services.consolidado.conversions import list_response
from services.consolidado.requests import DayRange


class BalanceReader:
    def __init__(self, engine: AsyncEngine, cache: BalanceCache) -> None:
        self._engine = engine
        self._cache = cache

    async def balances(self, query: DayRange) -> pb.ListDailyBalancesResponse:
        """Every day of the range; a single day is a one-day range."""
        # The version first: see services.consolidado.cache.
        lookup = await self._cache.lookup(query.merchant_id, query.start, query.end)
        if lookup.value is not None:
            try:
                return pb.ListDailyBalancesResponse.FromString(lookup.value)
            except DecodeError:
                pass  # Unreadable entry: recompute and overwrite it.
        async with self._engine.connect() as conn:
            opening, days = await store.balance_inputs(
                conn, query.merchant_id, query.start, query.end
            )
        response = list_response(
            query.merchant_id, dense_balances(opening, days, query.start, query.end)
        )
        if lookup.version is not None:
            await self._cache.store(
                query.merchant_id,
                lookup.version,
                query.start,
                query.end,
                response.SerializeToString(),
            )
        return response
