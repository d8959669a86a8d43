"""The egress sidecar's circuit breaker: overload fails fast instead of queueing.

The policy is rendered with a one-request connection pool for consolidado. With ingest
hung (the test gate), concurrent ApplyLancamentos sent straight to the dispatcher's
egress sidecar overflow it: most answer UNAVAILABLE at once, well under the 5 s route
timeout. Creates through the gateway, meanwhile, are untouched.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from tests.support.stack import CONSOLIDADO, StackFactory

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub as Ingest,
    )
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Lancamentos

pytestmark = pytest.mark.slow

TINY_POOL = [
    f"{CONSOLIDADO}.connectionPool.maxRequests=1",
    f"{CONSOLIDADO}.connectionPool.maxPendingRequests=1",
    f"{CONSOLIDADO}.connectionPool.maxRetries=1",
]
CONCURRENT = 20
FAST = 0.5  # seconds; the ingest route timeout is 5 s
EGRESS = "cluster.consolidado."


async def _apply(ingest: Ingest) -> tuple[grpc.StatusCode, float, bool]:
    """Status, seconds taken, and whether Envoy marked the answer as its overflow."""
    started = time.perf_counter()
    try:
        await ingest.ApplyLancamentos(cpb.ApplyLancamentosRequest(), timeout=2)
    except grpc.aio.AioRpcError as error:
        metadata = [*(error.initial_metadata() or ()), *(error.trailing_metadata() or ())]
        overloaded = ("x-envoy-overloaded", "true") in [(k, v) for k, v in metadata]
        return error.code(), time.perf_counter() - started, overloaded
    return grpc.StatusCode.OK, time.perf_counter() - started, False


async def test_overflow_fails_fast_and_lancamentos_unaffected(
    fault_stack: StackFactory, merchant: str
) -> None:
    async with fault_stack(TINY_POOL) as stack:
        # Fire only with both replicas healthy, so that the fast answers below are the
        # circuit breaker's, not "no healthy upstream".
        await stack.wait_healthy(stack.egress_admin, "consolidado", 2, within=10)
        before = await stack.egress_stats(EGRESS)
        stack.mesh.gate.close()
        async with (
            grpc.aio.insecure_channel(stack.egress_target) as egress,
            grpc.aio.insecure_channel(stack.gateway_target) as gateway,
        ):
            ingest: Ingest = cpb_grpc.ConsolidadoIngestServiceStub(egress)
            lancamentos: Lancamentos = lpb_grpc.LancamentosServiceStub(gateway)
            applies = [asyncio.create_task(_apply(ingest)) for _ in range(CONCURRENT)]
            created = 0
            for _ in range(10):
                await lancamentos.CreateLancamento(
                    lpb.CreateLancamentoRequest(
                        merchant_id=merchant,
                        kind=lpb.KIND_CREDIT,
                        amount_cents=100,
                        value_date="2026-03-10",
                        request_id=str(uuid.uuid4()),
                    ),
                    timeout=1,
                )
                created += 1
            answers = await asyncio.gather(*applies)
            after = await stack.egress_stats(EGRESS)
        stack.mesh.gate.open()
        await stack.mesh.wait_delivered(within_seconds=20)

    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    print("egress deltas:", {k: v for k, v in sorted(delta.items()) if v})
    print("answers:", sorted((code.name, round(took, 3), o) for code, took, o in answers))

    # Overflow: UNAVAILABLE at once, marked by Envoy as its circuit breaker's answer.
    fast_unavailable = [
        took
        for code, took, overloaded in answers
        if code is grpc.StatusCode.UNAVAILABLE and took < FAST and overloaded
    ]
    assert len(fast_unavailable) >= CONCURRENT * 0.75, (answers, delta)
    assert delta.get(EGRESS + "upstream_rq_pending_overflow", 0) > 0
    # The inbound pools are full too (Istio applies the pool inbound), yet health checks
    # pass: they take the inbound sidecar's HIGH-priority route, as kubelet's probes skip
    # the pool through pilot-agent. A replica is never marked down for its pool being full.
    assert delta.get(EGRESS + "health_check.failure", 0) == 0, delta
    assert delta.get(EGRESS + "upstream_cx_none_healthy", 0) == 0, delta
    assert created == 10
