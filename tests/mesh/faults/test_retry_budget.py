"""Retries cannot become a storm: with every consolidado replica failing, the gateway's
retry budget (20 % of requests in flight, 3 at least) keeps attempts per call near 1,
where without it every call costs 1 + attempts (here 3).

Both replicas' apps are stopped while their inbound sidecars answer, so every attempt
fails fast with UNAVAILABLE. Health checks and outlier detection are off here, so that
nothing takes the replicas out and every attempt really goes upstream. Both stacks get
the same load, 32 callers for at most 2 s (and at most 400 calls each).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc

from tests.support.stack import LocalStack, StackFactory

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado

pytestmark = pytest.mark.slow

CLUSTER = "cluster.consolidado."
CALLERS, SECONDS, MAX_CALLS = 32, 2.0, 400
UPSTREAM = "mesh.upstreams.consolidado"
ALWAYS_UPSTREAM = [f"{UPSTREAM}.healthCheck=null", f"{UPSTREAM}.outlierDetection=null"]
NO_BUDGET = [*ALWAYS_UPSTREAM, f"{UPSTREAM}.retryBudget=null"]


async def _calls_against_a_dead_upstream(stack: LocalStack, merchant: str) -> dict[str, int]:
    """Stops both replicas, loads the gateway, returns the cluster's stat deltas."""
    async with grpc.aio.insecure_channel(stack.gateway_target) as channel:
        consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
        request = cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-03-10")
        await consolidado.GetDailyBalance(request, timeout=5)  # warm-up
        for index in range(len(stack.plan.consolidado)):
            await stack.mesh.stop_consolidado(index)
        before = await stack.gateway_stats(CLUSTER)
        deadline = time.monotonic() + SECONDS
        codes: list[grpc.StatusCode] = []

        async def caller() -> None:
            while time.monotonic() < deadline and len(codes) < MAX_CALLS:
                try:
                    await consolidado.GetDailyBalance(request, timeout=5)
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())

        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        after = await stack.gateway_stats(CLUSTER)
    assert set(codes) == {grpc.StatusCode.UNAVAILABLE}, set(codes)
    delta = {k.removeprefix(CLUSTER): after[k] - before.get(k, 0) for k in after}
    delta["calls"] = len(codes)
    return delta


async def test_with_every_replica_down_the_budget_keeps_attempts_near_one(
    fault_stack: StackFactory, merchant: str
) -> None:
    async with fault_stack(ALWAYS_UPSTREAM) as stack:
        budgeted = await _calls_against_a_dead_upstream(stack, merchant)
    async with fault_stack(NO_BUDGET) as stack:
        unbounded = await _calls_against_a_dead_upstream(stack, merchant)
    per_call = {
        name: run["upstream_rq_total"] / run["calls"]
        for name, run in (("budget", budgeted), ("none", unbounded))
    }
    print("attempts per call:", per_call)
    print(
        "budget:",
        {k: budgeted[k] for k in ("calls", "upstream_rq_retry", "upstream_rq_retry_overflow")},
    )
    # Without a budget every failed call is tried 1 + attempts (2) times.
    assert per_call["none"] >= 2.5, unbounded
    assert unbounded.get("upstream_rq_retry_overflow", 0) == 0
    # With it, retries beyond 20 % of what is in flight (or 3) are not sent.
    assert budgeted["upstream_rq_retry_overflow"] > 0, budgeted
    assert per_call["budget"] <= 1.5, budgeted
