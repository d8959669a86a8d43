"""Reconcile and rebuild against a real lancamentos server (its own database)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from audit.v1 import audit_pb2 as apb
from consolidado.v1 import consolidado_pb2 as pb
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from caixa.client import audit_chain
from services.consolidado.app import ConsolidadoApp
from services.consolidado.main import reconcile_command
from services.consolidado.rebuild import rebuild
from services.consolidado.settings import ConsolidadoSettings
from services.domain.errors import Unavailable
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.lancamentos.app import LancamentosApp
from services.lancamentos.settings import LancamentosSettings
from services.platform.migrations import upgrade
from tests.support.consolidado import batch, consolidado_settings, entry, open_channel
from tests.support.grpc_errors import expect_error, field_violations

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub,
        ConsolidadoServiceAsyncStub,
    )
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub


async def lancamentos_database(make_database: Callable[[str], str]) -> str:
    url = await asyncio.to_thread(make_database, "lancamentos")
    await asyncio.to_thread(upgrade, LANCAMENTOS_MIGRATIONS, url)
    return url


def ledger_settings(database_url: str, consolidado_target: str) -> LancamentosSettings:
    return LancamentosSettings.model_validate(
        {
            "database_url": database_url,
            "grpc_port": 0,
            "consolidado_target": consolidado_target,
            "shutdown_grace_seconds": 1.0,
            "dispatch_drain_seconds": 0.0,
            "dispatch_poll_seconds": 0.1,
        }
    )


@pytest.fixture(scope="module")
async def ledger_app(make_database: Callable[[str], str]) -> AsyncIterator[LancamentosApp]:
    """lancamentos without its dispatcher: what it records stays undelivered."""
    url = await lancamentos_database(make_database)
    app = LancamentosApp(ledger_settings(url, "127.0.0.1:1"), serve=True, dispatch=False)
    await app.start()
    yield app
    await app.stop()


@pytest.fixture(scope="module")
async def ledger(ledger_app: LancamentosApp) -> AsyncIterator[LancamentosServiceAsyncStub]:
    assert ledger_app.server is not None
    async with grpc.aio.insecure_channel(ledger_app.server.address) as channel:
        yield lpb_grpc.LancamentosServiceStub(channel)


@pytest.fixture(scope="module")
def reconciling_settings(
    consolidado_db: str, redis_url: str, key_prefix: str, ledger_app: LancamentosApp
) -> ConsolidadoSettings:
    assert ledger_app.server is not None
    return consolidado_settings(
        consolidado_db, redis_url, key_prefix, lancamentos_target=ledger_app.server.address
    )


@pytest.fixture(scope="module")
async def reconciling_app(
    reconciling_settings: ConsolidadoSettings,
) -> AsyncIterator[ConsolidadoApp]:
    async with ConsolidadoApp(reconciling_settings) as app:
        yield app


@pytest.fixture
async def reconcile_stub(
    reconciling_app: ConsolidadoApp, engine: AsyncEngine
) -> AsyncIterator[ConsolidadoIngestServiceAsyncStub]:
    async with await open_channel(reconciling_app) as channel:
        yield pb_grpc.ConsolidadoIngestServiceStub(channel)


def merchant() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


async def record(
    ledger: LancamentosServiceAsyncStub,
    merchant_id: str,
    amount_cents: int,
    value_date: str,
    kind: int = lpb.KIND_CREDIT,
) -> lpb.Lancamento:
    return await ledger.CreateLancamento(
        lpb.CreateLancamentoRequest(
            merchant_id=merchant_id,
            kind=kind,  # type: ignore[arg-type]
            amount_cents=amount_cents,
            value_date=value_date,
            request_id=str(uuid.uuid4()),
        )
    )


def audit_request(merchant_id: str) -> apb.ListAuditRecordsRequest:
    return apb.ListAuditRecordsRequest(merchant_id=merchant_id)


async def audited_count(engine: AsyncEngine, merchant_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM audit_records WHERE merchant_id = :m"), {"m": merchant_id}
        )
        return int(found.scalar_one())


def reconcile_request(merchant_id: str) -> pb.ReconcileRequest:
    return pb.ReconcileRequest(
        merchant_id=merchant_id, from_date="2024-05-01", to_date="2024-05-10"
    )


async def test_reconcile_reports_each_drifting_day(
    ledger: LancamentosServiceAsyncStub,
    reconcile_stub: ConsolidadoIngestServiceAsyncStub,
) -> None:
    m = merchant()
    first = await record(ledger, m, 1000, "2024-05-02")
    second = await record(ledger, m, 250, "2024-05-02", lpb.KIND_DEBIT)
    third = await record(ledger, m, 7, "2024-05-09")
    await record(ledger, m, 1, "2024-06-01")  # outside the range

    report = await reconcile_stub.Reconcile(reconcile_request(m))
    assert report.days_checked == 10
    assert report.undelivered_count == 4
    assert [(d.date, d.expected_credits_cents, d.expected_debits_cents) for d in report.drifts] == [
        ("2024-05-02", 1000, 250),
        ("2024-05-09", 7, 0),
    ]
    assert {d.actual_lancamentos_count for d in report.drifts} == {0}

    await reconcile_stub.ApplyLancamentos(batch(first, second, third))
    assert list((await reconcile_stub.Reconcile(reconcile_request(m))).drifts) == []

    # An entry lancamentos never recorded is drift too.
    await reconcile_stub.ApplyLancamentos(batch(entry(5, merchant_id=m, value_date="2024-05-03")))
    (extra,) = (await reconcile_stub.Reconcile(reconcile_request(m))).drifts
    assert (extra.date, extra.expected_lancamentos_count, extra.actual_credits_cents) == (
        "2024-05-03",
        0,
        5,
    )


async def test_reconcile_errors(
    reconcile_stub: ConsolidadoIngestServiceAsyncStub,
    ingest_stub: ConsolidadoIngestServiceAsyncStub,
) -> None:
    error = await expect_error(
        reconcile_stub.Reconcile(
            pb.ReconcileRequest(merchant_id="m1", from_date="2024-02-30", to_date="2025-06-01")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(field_violations(error)) == {"from_date"}
    # The session's app points at a closed port.
    await expect_error(ingest_stub.Reconcile(reconcile_request("m1")), grpc.StatusCode.UNAVAILABLE)


async def test_reconcile_cli_exits_1_on_drift(
    ledger: LancamentosServiceAsyncStub,
    reconciling_settings: ConsolidadoSettings,
    reconcile_stub: ConsolidadoIngestServiceAsyncStub,
    capsys: pytest.CaptureFixture[str],
) -> None:
    m = merchant()
    recorded = await record(ledger, m, 300, "2024-05-04")
    args = (m, "2024-05-01", "2024-05-10")

    assert await reconcile_command(reconciling_settings, *args) == 1
    assert "2024-05-04" in capsys.readouterr().out
    assert await reconcile_command(reconciling_settings, *args, as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["days_checked"] == "10"  # int64 in the proto3 JSON mapping
    assert report["drifts"][0]["expected_credits_cents"] == "300"

    await reconcile_stub.ApplyLancamentos(batch(recorded))
    assert await reconcile_command(reconciling_settings, *args, as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["drifts"] == []

    assert await reconcile_command(reconciling_settings, m, "2024-05-01", "nope") == 2
    unreachable = reconciling_settings.model_copy(update={"lancamentos_target": "127.0.0.1:1"})
    assert await reconcile_command(unreachable, *args) == 3
    assert "lancamentos" in capsys.readouterr().err


async def test_rebuild_one_merchant_from_the_feed(
    ledger: LancamentosServiceAsyncStub,
    reconciling_app: ConsolidadoApp,
    reconcile_stub: ConsolidadoIngestServiceAsyncStub,
    balances_stub: ConsolidadoServiceAsyncStub,
) -> None:
    m, other = merchant(), merchant()
    kept = await record(ledger, other, 40, "2024-05-01")
    await reconcile_stub.ApplyLancamentos(batch(kept))
    sale = await record(ledger, m, 1000, "2024-05-02")
    await reconcile_stub.ApplyLancamentos(batch(sale))
    await record(ledger, m, 200, "2024-05-05", lpb.KIND_DEBIT)  # never delivered
    await ledger.ReverseLancamento(
        lpb.ReverseLancamentoRequest(
            merchant_id=m,
            lancamento_id=sale.lancamento_id,
            request_id=str(uuid.uuid4()),
            value_date="2024-05-06",
        )
    )
    # Applied here but unknown to lancamentos: rebuild must forget it.
    await reconcile_stub.ApplyLancamentos(batch(entry(9, merchant_id=m, value_date="2024-05-03")))
    day = pb.GetDailyBalanceRequest(merchant_id=m, date="2024-05-10")
    assert (await balances_stub.GetDailyBalance(day)).closing_balance_cents == 1009  # cached

    report = await rebuild(
        reconciling_app.engine,
        reconciling_app.lancamentos,
        merchant_id=m,
        batch_size=2,
    )
    assert (report.applied, report.merchants) == (3, frozenset({m}))
    page = await balances_stub.ListAuditRecords(audit_request(m))
    assert audit_chain.verify(m, [page]).intact
    [audited] = page.audit_records
    assert (audited.rpc, audited.outcome) == (
        "caixa-consolidado rebuild",
        "rebuilt 3 entries of 1 merchants",
    )
    assert audited.subject.startswith("operator:")
    assert list((await reconcile_stub.Reconcile(reconcile_request(m))).drifts) == []
    balance = await balances_stub.GetDailyBalance(day)
    assert (balance.closing_balance_cents, balance.lancamentos_count) == (-200, 0)
    # The other merchant's totals were left alone.
    assert list((await reconcile_stub.Reconcile(reconcile_request(other))).drifts) == []


async def test_rebuild_everything(
    ledger: LancamentosServiceAsyncStub,
    reconciling_app: ConsolidadoApp,
    reconcile_stub: ConsolidadoIngestServiceAsyncStub,
) -> None:
    merchants = [merchant() for _ in range(3)]
    for i, m in enumerate(merchants):
        for day in range(1, 4):
            await record(ledger, m, 100 * (i + 1), f"2024-05-0{day}")
    await reconcile_stub.ApplyLancamentos(
        batch(entry(1, merchant_id="ghost", value_date="2024-05-01"))
    )

    before = await audited_count(reconciling_app.engine, "*")
    report = await rebuild(reconciling_app.engine, reconciling_app.lancamentos)
    assert set(merchants) <= report.merchants
    assert "ghost" not in report.merchants
    for m in [*merchants, "ghost"]:
        assert list((await reconcile_stub.Reconcile(reconcile_request(m))).drifts) == []
    # Rebuilding again is harmless.
    again = await rebuild(reconciling_app.engine, reconciling_app.lancamentos)
    assert again.applied == report.applied
    # Each full rebuild is recorded once, in the chain of operations on every merchant.
    assert await audited_count(reconciling_app.engine, "*") == before + 2


async def test_rebuild_with_lancamentos_down_deletes_nothing(
    consolidado_db: str,
    redis_url: str,
    key_prefix: str,
    ingest_stub: ConsolidadoIngestServiceAsyncStub,
    engine: AsyncEngine,
) -> None:
    await ingest_stub.ApplyLancamentos(batch(entry(5, merchant_id="kept")))
    settings = consolidado_settings(consolidado_db, redis_url, key_prefix)
    async with ConsolidadoApp(settings, serve=False) as app:
        audited = [await audited_count(app.engine, m) for m in ("*", "kept")]
        for merchant_id in (None, "kept"):
            with pytest.raises(Unavailable, match="lancamentos"):
                await rebuild(app.engine, app.lancamentos, merchant_id=merchant_id)
        # A rebuild that failed changed nothing, so it recorded nothing.
        assert [await audited_count(app.engine, m) for m in ("*", "kept")] == audited
    async with engine.connect() as conn:
        kept = await conn.execute(text("SELECT credits_cents FROM daily_totals"))
        assert kept.scalar_one() == 5


async def test_the_outbox_delivers_into_balances(
    make_database: Callable[[str], str],
    consolidado_app: ConsolidadoApp,
    balances_stub: ConsolidadoServiceAsyncStub,
) -> None:
    """End to end: lancamentos' dispatcher delivers to this server's ingest."""
    assert consolidado_app.server is not None
    url = await lancamentos_database(make_database)
    app = LancamentosApp(
        ledger_settings(url, consolidado_app.server.address), serve=True, dispatch=True
    )
    await app.start()
    try:
        assert app.server is not None
        async with grpc.aio.insecure_channel(app.server.address) as channel:
            stub = lpb_grpc.LancamentosServiceStub(channel)
            m = merchant()
            await asyncio.gather(*[record(stub, m, 10, f"2024-05-0{1 + i % 5}") for i in range(30)])
            day = pb.GetDailyBalanceRequest(merchant_id=m, date="2024-05-31")
            for _ in range(100):
                balance = await balances_stub.GetDailyBalance(day)
                if balance.closing_balance_cents == 300:
                    break
                await asyncio.sleep(0.05)
            assert balance.closing_balance_cents == 300
    finally:
        await app.stop()
