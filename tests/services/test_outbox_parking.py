"""One entry consolidado refuses for good does not stop delivery: the dispatcher
splits the batch down to it, parks it with its reason, and delivers everything
before and after it. The parked entry shows in a metric, in SummarizeLancamentos
and in reconcile, and an operator's retry applies it exactly once.

The refusal is real: a CHECK constraint on consolidado's table, for one merchant."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.consolidado.queries import DayRange
from tests.support.services import Mesh, scalar

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub

POISON = "parked-merchant"
DAY = "2026-06-10"
THE_DAY = DayRange(POISON, date.fromisoformat(DAY), date.fromisoformat(DAY))


def create(merchant: str, cents: int = 100) -> lpb.CreateLancamentoRequest:
    return lpb.CreateLancamentoRequest(
        merchant_id=merchant,
        kind=lpb.KIND_CREDIT,
        amount_cents=cents,
        value_date=DAY,
        request_id=str(uuid.uuid4()),
    )


@pytest.fixture
async def refusing(mesh: Mesh) -> AsyncIterator[Mesh]:
    """consolidado refuses every entry of POISON until the constraint goes."""
    await mesh.start_consolidado(0)
    await mesh.start_consolidado(1)
    app = mesh.consolidados[0]
    assert app is not None
    async with app.engine.begin() as conn:
        await conn.execute(
            text(
                f"ALTER TABLE daily_totals ADD CONSTRAINT refuse CHECK (merchant_id <> '{POISON}')"
            )
        )
    try:
        yield mesh
    finally:
        async with app.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE daily_totals DROP CONSTRAINT IF EXISTS refuse"))


async def outbox(mesh: Mesh, where: str = "TRUE") -> int:
    return await scalar(mesh.lancamentos[0], f"SELECT count(*) FROM outbox WHERE {where}")


async def wait_for(condition: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.1)


async def applied(mesh: Mesh, merchant: str) -> int:
    app = mesh.consolidados[0]
    assert app is not None
    return await scalar(
        app, f"SELECT count(*) FROM applied_lancamentos WHERE merchant_id = '{merchant}'"
    )


async def test_a_refused_entry_is_parked_and_the_rest_delivered(refusing: Mesh) -> None:
    mesh = refusing
    app = await mesh.add_lancamentos(serve=True, dispatch=True, dispatch_batch_size=64)
    mesh.gate.close()  # let a backlog build, so the refusal lands inside a batch
    async with grpc.aio.insecure_channel(app.server.address) as channel:
        stub: Stub = lpb_grpc.LancamentosServiceStub(channel)
        for i in range(20):
            await stub.CreateLancamento(create(f"before{i % 2}"))
        await stub.CreateLancamento(create(POISON, 7))
        for i in range(20):
            await stub.CreateLancamento(create(f"after{i % 2}"))
        mesh.gate.open()

        async def only_the_parked_one_left() -> bool:
            return await outbox(mesh) == 1 and await outbox(mesh, "parked_at IS NOT NULL") == 1

        await wait_for(only_the_parked_one_left)
        for merchant in ("before0", "before1", "after0", "after1"):
            assert await applied(mesh, merchant) == 10
        assert await applied(mesh, POISON) == 0

        reason = await scalar_text(mesh, "SELECT parked_reason FROM outbox")
        assert "INVALID_ARGUMENT" in reason and "refuse" in reason
        assert REGISTRY.get_sample_value("caixa_outbox_parked", {"receiver": "consolidado"}) == 1

        summary = await stub.SummarizeLancamentos(
            lpb.SummarizeLancamentosRequest(merchant_id=POISON, from_date=DAY, to_date=DAY)
        )
        assert (summary.undelivered_count, summary.parked_count) == (1, 1)
        consolidado = mesh.consolidados[0]
        assert consolidado is not None
        report = await consolidado.reconciler.reconcile(THE_DAY)
        assert report.parked_count == 1 and len(report.drifts) == 1

        # The cause goes; the operator retries; it is applied exactly once.
        async with consolidado.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE daily_totals DROP CONSTRAINT refuse"))
        for _ in range(2):
            result = retry_parked(mesh)
            assert result.returncode == 0, result.stderr
        await mesh.wait_delivered()
        assert await applied(mesh, POISON) == 1

        async def gauge_cleared() -> bool:
            return (
                REGISTRY.get_sample_value("caixa_outbox_parked", {"receiver": "consolidado"}) == 0
            )

        await wait_for(gauge_cleared)
        report = await consolidado.reconciler.reconcile(THE_DAY)
        assert report.drifts == [] and report.parked_count == 0


async def scalar_text(mesh: Mesh, sql: str) -> str:
    async with mesh.lancamentos[0].engine.connect() as conn:
        return str((await conn.execute(text(sql))).scalar_one())


def retry_parked(mesh: Mesh) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.lancamentos", "parked", "--retry-all"],
        env={**os.environ, "DATABASE_URL": mesh.lancamentos_db},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
