"""Failure isolation: lancamentos keeps taking creates while consolidado is down or hung.

Creates go through the gateway as gRPC; the dispatcher delivers through its egress
sidecar. The create p99 bound is 250 ms: generous, since this 2-core machine runs the
services, PostgreSQL, Redis, five Envoys and the load generator at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from tests.mesh.faults.load import Outcomes, steady
from tests.support.services import assert_sum_invariant
from tests.support.stack import StackFactory

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Lancamentos

pytestmark = pytest.mark.slow

CREATE_RATE = 30.0  # per second
PHASE_SECONDS = 3.0
P99_BOUND = 0.250
EGRESS = "cluster.consolidado."


def create_request(merchant: str) -> lpb.CreateLancamentoRequest:
    return lpb.CreateLancamentoRequest(
        merchant_id=merchant,
        kind=lpb.KIND_CREDIT,
        amount_cents=100,
        value_date="2026-03-10",
        description="venda",
        request_id=str(uuid.uuid4()),
    )


async def test_creates_unaffected_by_consolidado_outage_and_hang(
    fault_stack: StackFactory, merchant: str
) -> None:
    async with fault_stack([]) as stack:
        mesh = stack.mesh
        async with grpc.aio.insecure_channel(stack.gateway_target) as channel:
            lancamentos: Lancamentos = lpb_grpc.LancamentosServiceStub(channel)
            await lancamentos.CreateLancamento(create_request(merchant), timeout=5)  # warm-up
            await mesh.wait_delivered(within_seconds=10)
            before = await stack.egress_stats(EGRESS)

            stop = asyncio.Event()
            load = asyncio.create_task(
                steady(
                    lambda: lancamentos.CreateLancamento(create_request(merchant), timeout=5),
                    CREATE_RATE,
                    stop,
                    max_seconds=4 * PHASE_SECONDS + 10,
                )
            )
            try:
                await asyncio.sleep(0.5)
                # (a) Both replicas down.
                await asyncio.gather(mesh.stop_consolidado(0), mesh.stop_consolidado(1))
                await asyncio.sleep(PHASE_SECONDS)
                outage_failures = stack.dispatcher.consecutive_failures
                during_outage = await stack.egress_stats(EGRESS)
                # (b) Back up, but ingest hangs.
                mesh.gate.close()
                await asyncio.gather(mesh.start_consolidado(0), mesh.start_consolidado(1))
                await asyncio.sleep(PHASE_SECONDS)
                hang_failures = stack.dispatcher.consecutive_failures
                during_hang = await stack.egress_stats(EGRESS)
                # (c) Healthy again.
                mesh.gate.open()
                await asyncio.sleep(PHASE_SECONDS)
            finally:
                stop.set()
                outcomes: Outcomes = await load

        after = await stack.egress_stats(EGRESS)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        print("egress deltas:", {k: v for k, v in sorted(delta.items()) if v})
        print("outage:", {k: v for k, v in sorted(during_outage.items()) if v})
        print("hang:", {k: v for k, v in sorted(during_hang.items()) if v})
        print(
            f"creates sent={outcomes.sent} failed={len(outcomes.failures)} "
            f"p99={outcomes.p99() * 1000:.1f}ms dispatcher failures outage={outage_failures} "
            f"hang={hang_failures}"
        )

        assert outcomes.failures == []
        assert outcomes.sent >= CREATE_RATE * 3 * PHASE_SECONDS * 0.8
        assert outcomes.p99() <= P99_BOUND, f"create p99 {outcomes.p99() * 1000:.1f} ms"
        # The sidecar handled the outage: active health checks took both replicas out
        # (below minHealthPercent 50 it balanced over both anyway, panic mode, and their
        # sidecars answered UNAVAILABLE at once), outlier detection ejected one (never
        # both: maxEjectionPercent 50), and retries were attempted.
        for stat in [
            "health_check.failure",
            "lb_healthy_panic",
            "outlier_detection.ejections_enforced_total",
            "upstream_rq_retry",
        ]:
            assert delta.get(EGRESS + stat, 0) > 0, stat
        # The dispatcher backed off: it was failing at the end of the outage and still
        # (not reset) at the end of the hang, and its attempts stayed few. Without backoff,
        # fast 503s from the sidecar would make thousands of attempts in the outage.
        assert 0 < outage_failures < 60
        assert hang_failures > outage_failures

        started = time.monotonic()
        await mesh.wait_delivered(within_seconds=20)
        print(f"delivered {time.monotonic() - started:.1f}s after recovery")
        assert stack.dispatcher.consecutive_failures == 0
        await assert_sum_invariant(mesh, stack.consolidado_engine)
