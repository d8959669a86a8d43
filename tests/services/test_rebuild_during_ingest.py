"""A rebuild while entries are created and delivered: readers see complete
balances throughout, and afterwards nothing is lost or counted twice. The
interleaving is forced through the rebuild's hook: entries arrive after its
first feed batch, and again after the feed ended, just before the swap."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING

from lancamentos.v1 import lancamentos_pb2 as lpb

from services.consolidado.queries import DayRange
from services.consolidado.rebuild import rebuild
from tests.support.services import Mesh, scalar

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub

DAY = date(2026, 6, 10)


async def test_a_rebuild_during_creates_and_deliveries_loses_nothing(
    mesh: Mesh, lancamentos_stub: Stub
) -> None:
    merchant = f"rb-{uuid.uuid4().hex[:8]}"
    consolidado = mesh.consolidados[0]
    assert consolidado is not None
    created = 0

    async def create(count: int) -> None:
        nonlocal created
        for _ in range(count):
            await lancamentos_stub.CreateLancamento(
                lpb.CreateLancamentoRequest(
                    merchant_id=merchant,
                    kind=lpb.KIND_CREDIT,
                    amount_cents=100,
                    value_date=DAY.isoformat(),
                    request_id=str(uuid.uuid4()),
                )
            )
        created += count
        await mesh.wait_delivered()

    async def served() -> int:
        balances = await consolidado.reader.balances(DayRange(merchant, DAY, DAY))
        return int(balances.daily_balances[0].lancamentos_count)

    seen_during: list[int] = []

    async def hook(step: str) -> None:
        seen_during.append(await served())
        if step == "batch" and len(seen_during) == 1:
            await create(3)
        elif step == "swap":
            await create(2)  # after the feed ended: only the swap can bring them in

    await create(10)
    report = await rebuild(
        consolidado.engine, consolidado.lancamentos, merchant_id=merchant, batch_size=2, hook=hook
    )
    # Readers saw the live totals, never a partial replay.
    assert seen_during[0] == 10 and all(seen >= 13 for seen in seen_during[1:])
    assert report.merchants == frozenset({merchant})
    assert await served() == created == 15
    applied = await scalar(
        consolidado,
        f"SELECT count(*) FROM applied_lancamentos WHERE merchant_id = '{merchant}'",
    )
    assert applied == 15
    report_after = await consolidado.reconciler.reconcile(DayRange(merchant, DAY, DAY))
    assert report_after.drifts == []
    await create(1)  # ingest still works on the swapped tables
    assert await served() == 16
