"""For random entry streams, the three views of the ledger agree: the totals
consolidado built incrementally, the totals rebuilt from the change feed, and
the totals computed directly from lancamentos. Plus reconciliation."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lancamentos.v1 import lancamentos_pb2 as lpb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.consolidado.lancamentos_client import LancamentosLedger
from services.consolidado.rebuild import rebuild
from services.platform.database import sqlalchemy_url
from services.platform.migrations import upgrade
from tests.support.services import (
    Mesh,
    consolidado_totals,
    lancamentos_totals,
    truncate,
)

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

START = date(2026, 1, 1)

create_op = st.tuples(
    st.just("create"),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([lpb.KIND_CREDIT, lpb.KIND_DEBIT]),
    st.integers(1, 10**9),
    st.integers(0, 40),
)
reverse_op = st.tuples(st.just("reverse"), st.integers(0, 1000), st.integers(0, 40))
operations = st.lists(st.one_of(create_op, create_op, reverse_op), min_size=1, max_size=30)


@pytest.fixture(scope="session")
async def rebuild_engine(make_database: Callable[[str], str]) -> AsyncIterator[AsyncEngine]:
    url = await asyncio.to_thread(make_database, "it_rebuilt")
    await asyncio.to_thread(upgrade, CONSOLIDADO_MIGRATIONS, url)
    engine = create_async_engine(sqlalchemy_url(url))
    yield engine
    await engine.dispose()


async def apply_operations(stub: LancamentosServiceAsyncStub, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    created: list[lpb.Lancamento] = []
    for op in ops:
        if op[0] == "create":
            _, merchant, kind, cents, day = op
            created.append(
                await stub.CreateLancamento(
                    lpb.CreateLancamentoRequest(
                        merchant_id=merchant,
                        kind=kind,
                        amount_cents=cents,
                        value_date=(START + timedelta(days=day)).isoformat(),
                        request_id=str(uuid.uuid4()),
                    )
                )
            )
        elif created:
            _, index, day = op
            original = created[index % len(created)]
            try:
                created.append(
                    await stub.ReverseLancamento(
                        lpb.ReverseLancamentoRequest(
                            merchant_id=original.merchant_id,
                            lancamento_id=original.lancamento_id,
                            request_id=str(uuid.uuid4()),
                            value_date=(START + timedelta(days=day)).isoformat(),
                        )
                    )
                )
            except grpc.aio.AioRpcError as error:
                # Reversing twice, or reversing a reversal, is refused; nothing else is.
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


@settings(
    max_examples=int(os.environ.get("CAIXA_PROPERTY_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_incremental_equals_rebuilt_equals_direct(
    mesh: Mesh,
    lancamentos_stub: LancamentosServiceAsyncStub,
    rebuild_engine: AsyncEngine,
    ops: list[tuple],  # type: ignore[type-arg]
) -> None:
    await truncate(mesh)
    await apply_operations(lancamentos_stub, ops)
    await mesh.wait_delivered()
    consolidado = mesh.consolidados[0]
    assert consolidado is not None

    direct = await lancamentos_totals(mesh.lancamentos[0].engine)
    incremental = await consolidado_totals(consolidado.engine)
    await rebuild(rebuild_engine, LancamentosLedger(lancamentos_stub), batch_size=7)
    rebuilt = await consolidado_totals(rebuild_engine)
    assert incremental == direct
    assert rebuilt == direct

    # The served balances agree with the oracle too: closing = sum of all nets.
    assert consolidado.server is not None
    async with grpc.aio.insecure_channel(consolidado.server.address) as channel:
        balances = cpb_grpc.ConsolidadoServiceStub(channel)
        for merchant in ("a", "b", "c"):
            last = START + timedelta(days=40)
            served = await balances.GetDailyBalance(
                cpb.GetDailyBalanceRequest(merchant_id=merchant, date=last.isoformat())
            )
            expected = sum(c - d for (m, _), (c, d, _n) in direct.items() if m == merchant)
            assert served.closing_balance_cents == expected


async def test_reconcile_reports_drift_and_rebuild_repairs_it(
    mesh: Mesh, lancamentos_stub: LancamentosServiceAsyncStub
) -> None:
    for day, cents in [(1, 500), (2, 700), (2, 300)]:
        await lancamentos_stub.CreateLancamento(
            lpb.CreateLancamentoRequest(
                merchant_id="r",
                kind=lpb.KIND_CREDIT,
                amount_cents=cents,
                value_date=f"2026-02-{day:02d}",
                request_id=str(uuid.uuid4()),
            )
        )
    await mesh.wait_delivered()
    consolidado = mesh.consolidados[0]
    assert consolidado is not None and consolidado.server is not None
    request = cpb.ReconcileRequest(merchant_id="r", from_date="2026-02-01", to_date="2026-02-28")
    async with grpc.aio.insecure_channel(consolidado.server.address) as channel:
        ingest = cpb_grpc.ConsolidadoIngestServiceStub(channel)
        clean = await ingest.Reconcile(request)
        assert list(clean.drifts) == []
        assert clean.days_checked == 28

        async with consolidado.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE daily_totals SET credits_cents = credits_cents + 1 "
                    "WHERE merchant_id = 'r' AND value_date = '2026-02-02'"
                )
            )
        drifted = await ingest.Reconcile(request)
        assert [
            (d.date, d.expected_credits_cents, d.actual_credits_cents) for d in drifted.drifts
        ] == [("2026-02-02", 1000, 1001)]

        # The CLI reports the same drift and exits 1.
        settings_env = {
            **os.environ,
            "DATABASE_URL": mesh.consolidado_db,
            "REDIS_URL": mesh.redis_url,
            "REDIS_KEY_PREFIX": mesh.key_prefix,
            "LANCAMENTOS_TARGET": mesh.lancamentos_address,
        }
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.consolidado",
            "reconcile",
            "--merchant",
            "r",
            "--from",
            "2026-02-01",
            "--to",
            "2026-02-28",
            env=settings_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 1, err.decode()
        assert "2026-02-02" in out.decode()

        # Rebuilding the merchant from the feed repairs it.
        rebuilt = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.consolidado",
            "rebuild",
            "--merchant",
            "r",
            env=settings_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(rebuilt.communicate(), 60)
        assert rebuilt.returncode == 0, err.decode()
        assert list((await ingest.Reconcile(request)).drifts) == []
        balance = await cpb_grpc.ConsolidadoServiceStub(channel).GetDailyBalance(
            cpb.GetDailyBalanceRequest(merchant_id="r", date="2026-02-02")
        )
        assert balance.closing_balance_cents == 1500
