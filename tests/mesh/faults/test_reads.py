"""Balance reads through the gateway survive losing one of the two consolidado replicas.

The gateway retries a read that fails on the stopped replica's sidecar (503 /
UNAVAILABLE, or a connection reset) on the other host, and health checks and outlier
detection take the stopped replica out; the gateway's stats prove both.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc

from tests.mesh.faults.load import steady
from tests.support.stack import StackFactory

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado

pytestmark = pytest.mark.slow

READ_RATE = 50.0
CLUSTER = "cluster.consolidado."


async def test_reads_survive_one_replica_down(fault_stack: StackFactory, merchant: str) -> None:
    async with fault_stack([]) as stack:
        async with grpc.aio.insecure_channel(stack.gateway_target) as channel:
            consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
            request = cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-03-10")
            await consolidado.GetDailyBalance(request, timeout=5)  # warm-up
            before = await stack.gateway_stats(CLUSTER)
            stop = asyncio.Event()
            load = asyncio.create_task(
                steady(
                    lambda: consolidado.GetDailyBalance(request, timeout=5),
                    READ_RATE,
                    stop,
                    max_seconds=15,
                )
            )
            try:
                await asyncio.sleep(1.0)
                await stack.mesh.stop_consolidado(0)
                # Until the gateway's health checks have taken it out, and a while after.
                await stack.wait_healthy(stack.gateway_admin, "consolidado", 1, within=8)
                await asyncio.sleep(2.0)
            finally:
                stop.set()
                outcomes = await load
        after = await stack.gateway_stats(CLUSTER)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    print("gateway deltas:", {k: v for k, v in sorted(delta.items()) if v})
    print(
        f"reads sent={outcomes.sent} failed={len(outcomes.failures)} "
        f"p99={outcomes.p99() * 1000:.1f}ms"
    )

    assert outcomes.failures == []
    assert outcomes.sent >= READ_RATE * 2
    # Reads that hit the stopped replica were retried, on the other one, successfully.
    assert delta.get(CLUSTER + "upstream_rq_retry", 0) > 0
    assert delta.get(CLUSTER + "upstream_rq_retry_success", 0) > 0
    # And the replica was taken out: by active health checks and/or outlier ejection.
    removed = delta.get(CLUSTER + "health_check.failure", 0) + delta.get(
        CLUSTER + "outlier_detection.ejections_enforced_total", 0
    )
    assert removed > 0
