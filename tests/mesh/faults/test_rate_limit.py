"""The gateway's local rate limit on consolidado reads, with the real services behind it.

Rendered with 5 tokens a second and a burst of 5: a burst of 30 concurrent reads gets
some RESOURCE_EXHAUSTED (429 over REST), and a steady 2 reads a second is never limited.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc

from tests.mesh.faults.load import rest_status, steady
from tests.support.stack import CONSOLIDADO, StackFactory

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado

pytestmark = pytest.mark.slow

RATE, BURST = 5, 5
LOW_LIMIT = [
    f"{CONSOLIDADO}.routeClasses.reads.rateLimit.tokensPerSecond={RATE}",
    f"{CONSOLIDADO}.routeClasses.reads.rateLimit.burst={BURST}",
]
LIMITED = "http_local_rate_limit.rate_limited"


async def _read(consolidado: Consolidado, request: cpb.GetDailyBalanceRequest) -> grpc.StatusCode:
    try:
        await consolidado.GetDailyBalance(request, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_burst_is_limited_and_slow_rate_is_not(
    fault_stack: StackFactory, merchant: str
) -> None:
    async with (
        fault_stack(LOW_LIMIT) as stack,
        grpc.aio.insecure_channel(stack.gateway_target) as channel,
    ):
        consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
        request = cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-03-10")
        await asyncio.sleep(1.5)  # a full bucket
        limited_before = sum((await stack.gateway_stats(LIMITED)).values())

        codes = await asyncio.gather(*(_read(consolidado, request) for _ in range(30)))
        counts = {c.name: codes.count(c) for c in set(codes)}
        print("burst:", counts)
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 30 - 2 * BURST
        assert codes.count(grpc.StatusCode.OK) >= 1
        # REST clients get 429 from the same bucket. A burst of its own, not one
        # call: on a loaded machine a token may refill before a single probe lands.
        path = f"/v1/merchants/{merchant}/daily-balances/2026-03-10"
        statuses = await asyncio.gather(
            *(asyncio.to_thread(rest_status, stack.gateway_port, path) for _ in range(2 * BURST))
        )
        assert set(statuses) <= {200, 429} and 429 in statuses, statuses
        limited_burst = sum((await stack.gateway_stats(LIMITED)).values())
        assert limited_burst - limited_before >= 30 - 2 * BURST

        await asyncio.sleep(1.5)  # refill
        stop = asyncio.Event()
        slow = await steady(
            lambda: consolidado.GetDailyBalance(request, timeout=5),
            rate=2.0,
            stop=stop,
            max_seconds=3.0,
        )
        print(f"slow: sent={slow.sent} failures={slow.failures}")
        assert slow.failures == []
        assert slow.sent >= 5
        assert sum((await stack.gateway_stats(LIMITED)).values()) == limited_burst
