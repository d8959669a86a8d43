"""Outlier detection ejects replicas that cannot answer, never for what they answer.

One tenant's requests that end INTERNAL (a fault injected into both consolidado
replicas for that merchant alone) eject nothing with the default policy, where the
old one (5 consecutive 5xx) ejected healthy replicas. With every host ejectable, as
locality failover needs (maxEjectionPercent 100), a dead replica is ejected and the
other keeps every read served.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc

from services.consolidado import requests as balance_requests
from tests.support.stack import LocalStack, StackFactory

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado

pytestmark = pytest.mark.slow

CLUSTER = "cluster.consolidado."
UPSTREAM = "mesh.upstreams.consolidado"
# Health checks off: only outlier detection may take a replica out here.
NO_HEALTH_CHECK = [f"{UPSTREAM}.healthCheck=null"]
OLD_POLICY = [
    *NO_HEALTH_CHECK,
    f"{UPSTREAM}.outlierDetection.consecutive5xxErrors=5",
    f"{UPSTREAM}.outlierDetection.enforcingConsecutive5xxErrors=100",
]
EVERY_HOST_EJECTABLE = [*NO_HEALTH_CHECK, f"{UPSTREAM}.outlierDetection.maxEjectionPercent=100"]
TENANT = "ft-breaks-things"
CALLS, WITHIN = 60, 3.0


@pytest.fixture
def internal_for_one_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both replicas (in this process) fail TENANT's reads with an unexpected error."""
    original: Callable[..., Any] = balance_requests.single_day

    def single_day(request: cpb.GetDailyBalanceRequest) -> Any:
        if request.merchant_id == TENANT:
            raise RuntimeError("injected: a bug this tenant's data triggers")
        return original(request)

    monkeypatch.setattr(balance_requests, "single_day", single_day)


async def _reads(consolidado: Consolidado, merchant: str) -> list[grpc.StatusCode]:
    request = cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-03-10")
    codes = []
    deadline = time.monotonic() + WITHIN
    for _ in range(CALLS):
        try:
            await consolidado.GetDailyBalance(request, timeout=5)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
        if time.monotonic() > deadline:
            break
    return codes


async def _ejections_after_one_tenants_errors(stack: LocalStack, merchant: str) -> int:
    async with grpc.aio.insecure_channel(stack.gateway_target) as channel:
        consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
        assert set(await _reads(consolidado, merchant)) == {grpc.StatusCode.OK}
        before = await stack.gateway_stats(CLUSTER)
        codes = await _reads(consolidado, TENANT)
        assert set(codes) == {grpc.StatusCode.INTERNAL}, set(codes)
        after = await stack.gateway_stats(CLUSTER)
    stat = CLUSTER + "outlier_detection.ejections_enforced_total"
    return after.get(stat, 0) - before.get(stat, 0)


@pytest.mark.usefixtures("internal_for_one_tenant")
async def test_one_tenants_internal_errors_eject_nothing(
    fault_stack: StackFactory, merchant: str
) -> None:
    async with fault_stack(OLD_POLICY) as stack:
        old = await _ejections_after_one_tenants_errors(stack, merchant)
    async with fault_stack(NO_HEALTH_CHECK) as stack:
        now = await _ejections_after_one_tenants_errors(stack, merchant)
        # Every other merchant is still served by both replicas.
        async with grpc.aio.insecure_channel(stack.gateway_target) as channel:
            codes = await _reads(cpb_grpc.ConsolidadoServiceStub(channel), merchant)
        assert set(codes) == {grpc.StatusCode.OK}
    print("ejections: old policy", old, "now", now)
    assert old >= 1, "the old policy ejected on INTERNAL: the contrast this test relies on"
    assert now == 0


async def test_a_dead_replica_is_ejected_and_the_other_serves_everything(
    fault_stack: StackFactory, merchant: str
) -> None:
    async with (
        fault_stack(EVERY_HOST_EJECTABLE) as stack,
        grpc.aio.insecure_channel(stack.gateway_target) as channel,
    ):
        consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
        assert set(await _reads(consolidado, merchant)) == {grpc.StatusCode.OK}
        before = await stack.gateway_stats(CLUSTER)
        await stack.mesh.stop_consolidado(0)
        # Reads are retried on another host: every one succeeds.
        assert set(await _reads(consolidado, merchant)) == {grpc.StatusCode.OK}
        after = await stack.gateway_stats(CLUSTER)
    ejected = CLUSTER + "outlier_detection.ejections_enforced_consecutive_gateway_failure"
    assert after.get(ejected, 0) - before.get(ejected, 0) >= 1, after
    # Only the dead one: the healthy replica was never ejected, though 100 % could be.
    assert after[CLUSTER + "outlier_detection.ejections_active"] == 1, after
