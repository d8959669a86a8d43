"""The gateway's per-merchant rate limit, keyed on the verified `merchants` claim.

Rendered with 1 token a second and a burst of 3 per merchant: one merchant's burst
is refused while another merchant, with its own bucket, is served in full; a header
a client forges to pick another bucket changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.render.rate_limit import MERCHANT_STAT_PREFIX, MERCHANTS_HEADER
from tests.mesh.faults.load import rest_status
from tests.support.auth import Issuer
from tests.support.stack import StackFactory
from tooling.devstack.auth import gateway_jwt_sets

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado

pytestmark = pytest.mark.slow

BURST = 3
LIMIT = "mesh.gateway.merchantRateLimit"
LIMITED = f"{MERCHANT_STAT_PREFIX}.http_local_rate_limit.rate_limited"


def claim_value(merchants: list[str]) -> str:
    """What jwt_authn would put in the header for this claim (base64 of its JSON)."""
    return base64.b64encode(json.dumps(merchants, separators=(",", ":")).encode()).decode()


async def _reads(
    consolidado: Consolidado, merchant: str, token: str, count: int, forged: str | None = None
) -> list[grpc.StatusCode]:
    metadata = [("authorization", f"Bearer {token}")]
    if forged is not None:
        metadata.append((MERCHANTS_HEADER, forged))
    request = cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-03-10")
    codes = []
    for _ in range(count):
        try:
            await consolidado.GetDailyBalance(request, timeout=5, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
        else:
            codes.append(grpc.StatusCode.OK)
    return codes


async def test_one_merchants_burst_leaves_another_merchant_served(
    fault_stack: StackFactory, tmp_path: Path
) -> None:
    state = tmp_path / ".devstack"
    issuer = Issuer.create(state / "auth")
    sets = [
        *gateway_jwt_sets(state),
        f"{LIMIT}.tokensPerSecond=1",
        f"{LIMIT}.burst={BURST}",
    ]
    noisy, quiet = "ft-noisy", "ft-quiet"
    noisy_token, quiet_token = issuer.token([noisy]), issuer.token([quiet])
    async with (
        fault_stack(sets) as stack,
        grpc.aio.insecure_channel(stack.gateway_target) as channel,
    ):
        consolidado: Consolidado = cpb_grpc.ConsolidadoServiceStub(channel)
        # Without any token, on the paths that need none, a stranger names the quiet
        # merchant's bucket: nothing is taken from it.
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3 * BURST):
            with contextlib.suppress(grpc.aio.AioRpcError):  # the gateway routes no health
                await health.Check(
                    health_pb2.HealthCheckRequest(),
                    timeout=5,
                    metadata=[(MERCHANTS_HEADER, claim_value([quiet]))],
                )
        # The noisy merchant names the quiet one's bucket in a header of its own:
        # jwt_authn drops it, so these take the noisy merchant's tokens.
        started = time.monotonic()
        forged = await _reads(
            consolidado, noisy, noisy_token, 2 * BURST, forged=claim_value([quiet])
        )
        burst = await _reads(consolidado, noisy, noisy_token, 4 * BURST)
        refills = math.ceil(time.monotonic() - started) + 1
        codes = forged + burst
        print("noisy:", {c.name: codes.count(c) for c in set(codes)}, "refills", refills)
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert codes.count(grpc.StatusCode.OK) <= BURST + refills
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= len(codes) - BURST - refills
        # A header naming a bucket never seen does not start a fresh one either.
        fresh = await _reads(consolidado, noisy, noisy_token, BURST, forged=claim_value(["new"]))
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in fresh, fresh
        # REST shares the bucket and answers 429.
        path = f"/v1/merchants/{noisy}/daily-balances/2026-03-10"
        statuses = [rest_status(stack.gateway_port, path, noisy_token) for _ in range(BURST)]
        assert 429 in statuses, statuses

        # The quiet merchant's full burst is served, untouched by the forged headers.
        assert await _reads(consolidado, quiet, quiet_token, BURST) == [grpc.StatusCode.OK] * BURST
        limited = sum((await stack.gateway_stats(LIMITED)).values())
        assert limited >= codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED), limited
        # The route's shared limit saw these reads and refused none of them.
        shared = await stack.gateway_stats("consolidado_reads.http_local_rate_limit")
        assert shared["consolidado_reads.http_local_rate_limit.enabled"] > 0, shared
        assert shared.get("consolidado_reads.http_local_rate_limit.rate_limited", 0) == 0, shared
