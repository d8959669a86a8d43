"""Retries are real, and only where the policy allows them.

Replica 0's app is stopped while its inbound sidecar stays up, so an attempt sent to
replica 0 fails with 503 / UNAVAILABLE from that sidecar until health checks or outlier
detection take it out. Reads (retried class) through the gateway all succeed, the
gateway counting the failed first attempts and the successful retries. Reconcile
(`retries: {attempts: 0}`) through the egress sidecar is never retried: a call that lands
on replica 0 fails with UNAVAILABLE, and the sidecar counts no retry.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc

from tests.support.stack import StackFactory

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub as Ingest,
    )
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado

pytestmark = pytest.mark.slow

CLUSTER = "cluster.consolidado."
CALLS, WITHIN = 40, 1.0  # bounded: at most this many calls, for at most this long


def _delta(before: dict[str, int], after: dict[str, int], stat: str) -> int:
    return after.get(CLUSTER + stat, 0) - before.get(CLUSTER + stat, 0)


async def test_reads_are_retried_on_unavailable(fault_stack: StackFactory, merchant: str) -> None:
    async with (
        fault_stack([]) as stack,
        grpc.aio.insecure_channel(stack.gateway_target) as channel,
    ):
        consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
        request = cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-03-10")
        await consolidado.GetDailyBalance(request, timeout=5)  # warm-up
        await stack.mesh.stop_consolidado(0)
        before = await stack.gateway_stats(CLUSTER)
        deadline = time.monotonic() + WITHIN
        for _ in range(CALLS):
            # Any failure here fails the test: every read must succeed.
            await consolidado.GetDailyBalance(request, timeout=5)
            if time.monotonic() > deadline:
                break
        after = await stack.gateway_stats(CLUSTER)
    print("gateway:", {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)})
    assert _delta(before, after, "upstream_rq_retry") > 0
    assert _delta(before, after, "upstream_rq_retry_success") > 0
    # More attempts went upstream than calls came in: the failed first attempts, which
    # Envoy saw as gateway failures (its gRPC 503 answers are HTTP 200 + grpc-status 14,
    # so `upstream_rq_503` does not move).
    calls = _delta(before, after, "grpc.consolidado.v1.ConsolidadoService.GetDailyBalance.total")
    assert _delta(before, after, "upstream_rq_total") > calls
    assert _delta(before, after, "outlier_detection.ejections_detected_consecutive_gateway_failure")


# The dispatcher's sidecar carries the reconcile route class here; its RBAC lets the
# dispatcher deliver only, so this test grants it Reconcile too.
RECONCILE_CALLER = [
    "mesh.localTopology.egress[0].calls[1]=consolidado.v1.ConsolidadoIngestService/Reconcile"
]


async def test_reconcile_is_never_retried(fault_stack: StackFactory, merchant: str) -> None:
    async with (
        fault_stack(RECONCILE_CALLER) as stack,
        grpc.aio.insecure_channel(stack.egress_target) as channel,
    ):
        ingest: Ingest = cpb_grpc.ConsolidadoIngestServiceStub(channel)
        request = cpb.ReconcileRequest(
            merchant_id=merchant, from_date="2026-03-10", to_date="2026-03-10"
        )
        await ingest.Reconcile(request, timeout=5)  # warm-up
        await stack.mesh.stop_consolidado(0)
        before = await stack.egress_stats(CLUSTER)
        codes: list[grpc.StatusCode] = []
        deadline = time.monotonic() + WITHIN
        for _ in range(CALLS):
            try:
                await ingest.Reconcile(request, timeout=5)
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
            else:
                codes.append(grpc.StatusCode.OK)
            if time.monotonic() > deadline:
                break
        after = await stack.egress_stats(CLUSTER)
    print("codes:", {c.name: codes.count(c) for c in set(codes)})
    print("egress:", {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)})
    assert grpc.StatusCode.UNAVAILABLE in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    assert _delta(before, after, "upstream_rq_retry") == 0
    # One attempt per call, and the failures the caller saw are the sidecar's too.
    method = "grpc.consolidado.v1.ConsolidadoIngestService.Reconcile."
    assert _delta(before, after, "upstream_rq_total") == len(codes)
    assert _delta(before, after, method + "14") == codes.count(grpc.StatusCode.UNAVAILABLE)
