"""The outbox path: lancamentos keeps accepting writes whatever consolidado
does, and every acknowledged entry reaches consolidado exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine

from services.platform.database import sqlalchemy_url
from tests.support.services import Mesh, assert_sum_invariant, scalar

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub


def entry(
    merchant: str, cents: int, day: str, kind: int = lpb.KIND_CREDIT
) -> lpb.CreateLancamentoRequest:
    return lpb.CreateLancamentoRequest(
        merchant_id=merchant,
        kind=kind,  # type: ignore[arg-type]
        amount_cents=cents,
        value_date=day,
        request_id=str(uuid.uuid4()),
    )


async def create_many(stub: Stub, count: int, merchants: int = 3) -> list[float]:
    """Creates `count` entries, concurrently; returns each call's latency."""

    async def one(i: int) -> float:
        kind = lpb.KIND_DEBIT if i % 3 == 0 else lpb.KIND_CREDIT
        started = time.perf_counter()
        await stub.CreateLancamento(
            entry(f"m{i % merchants}", 100 + i, f"2026-06-{1 + i % 28:02d}", kind), timeout=5
        )
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def test_consolidado_down_creates_succeed_then_converge(
    mesh: Mesh, lancamentos_stub: Stub
) -> None:
    await create_many(lancamentos_stub, 30)
    await mesh.wait_delivered()

    await mesh.stop_consolidado(0)
    await mesh.stop_consolidado(1)
    latencies = await create_many(lancamentos_stub, 60)  # any failure raises
    assert max(latencies) < 2.0
    dispatcher = mesh.lancamentos[0].dispatcher
    assert dispatcher is not None
    await asyncio.sleep(1.0)
    assert dispatcher.consecutive_failures >= 2, "the dispatcher should be backing off"
    assert await mesh.undelivered() == 60
    # What an SRE sees meanwhile: the backlog, its age growing, the backoff.
    await dispatcher.refresh_gauges()
    assert gauge("caixa_outbox_backlog") == 60
    first_age = gauge("caixa_outbox_oldest_age_seconds")
    assert first_age >= 1.0
    assert gauge("caixa_outbox_consecutive_failures") >= 2
    await asyncio.sleep(0.5)
    await dispatcher.refresh_gauges()
    assert gauge("caixa_outbox_oldest_age_seconds") >= first_age + 0.4

    lagged_before = _lag_over_one_second()
    await mesh.start_consolidado(0)
    await mesh.start_consolidado(1)
    await mesh.wait_delivered()
    # Each of the 60 waited over a second to be applied, and the histogram says so.
    assert _lag_over_one_second() - lagged_before >= 60
    consolidado = mesh.consolidados[0]
    assert consolidado is not None
    await assert_sum_invariant(mesh, consolidado.engine)
    assert dispatcher.consecutive_failures == 0
    await dispatcher.refresh_gauges()
    assert gauge("caixa_outbox_backlog") == gauge("caixa_outbox_oldest_age_seconds") == 0
    assert gauge("caixa_outbox_consecutive_failures") == 0


def _lag_over_one_second() -> float:
    """Entries applied more than 1 s after their booking, so far in this process."""
    name = "caixa_consolidation_lag_seconds"
    count = REGISTRY.get_sample_value(f"{name}_count") or 0.0
    within = REGISTRY.get_sample_value(f"{name}_bucket", {"le": "1.0"}) or 0.0
    return count - within


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name, {"receiver": "consolidado"})
    assert value is not None, name
    return value


async def test_consolidado_hanging_does_not_slow_creates(
    mesh: Mesh, lancamentos_stub: Stub
) -> None:
    mesh.gate.close()
    latencies = await create_many(lancamentos_stub, 40)
    assert max(latencies) < 2.0
    await asyncio.sleep(0.5)
    assert await mesh.undelivered() == 40
    mesh.gate.open()
    await mesh.wait_delivered()
    consolidado = mesh.consolidados[0]
    assert consolidado is not None
    await assert_sum_invariant(mesh, consolidado.engine)


async def test_two_dispatchers_deliver_each_entry_once(mesh: Mesh) -> None:
    await mesh.start_consolidado(0)
    await mesh.start_consolidado(1)
    writer = await mesh.add_lancamentos(serve=True, dispatch=False)
    mesh.gate.close()  # let a backlog build so both dispatchers find work
    assert writer.server is not None
    async with grpc.aio.insecure_channel(writer.server.address) as channel:
        await create_many(lpb_grpc.LancamentosServiceStub(channel), 400, merchants=7)
    first = await mesh.add_lancamentos(serve=False, dispatch=True, dispatch_batch_size=25)
    second = await mesh.add_lancamentos(serve=False, dispatch=True, dispatch_batch_size=25)
    mesh.gate.open()
    await mesh.wait_delivered()
    assert first.dispatcher is not None and second.dispatcher is not None
    assert first.dispatcher.delivered + second.dispatcher.delivered == 400
    assert first.dispatcher.delivered > 0 and second.dispatcher.delivered > 0
    consolidado = mesh.consolidados[0]
    assert consolidado is not None
    await assert_sum_invariant(mesh, consolidado.engine)


@pytest.mark.slow
async def test_dispatcher_killed_mid_batch_loses_and_doubles_nothing(mesh: Mesh) -> None:
    await mesh.start_consolidado(0)
    await mesh.start_consolidado(1)
    writer = await mesh.add_lancamentos(serve=True, dispatch=False)
    assert writer.server is not None
    async with grpc.aio.insecure_channel(writer.server.address) as channel:
        await create_many(lpb_grpc.LancamentosServiceStub(channel), 120)

    mesh.gate.close()  # the batch reaches consolidado and hangs there
    env = {
        **os.environ,
        "DATABASE_URL": mesh.lancamentos_db,
        "CONSOLIDADO_TARGET": mesh.consolidado_target,
        "DISPATCH_BATCH_SIZE": "50",
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.lancamentos",
        "dispatch",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Wait until the dispatcher holds a claimed batch (rows locked).
        deadline = time.monotonic() + 20
        locked = 0
        while locked == 0:
            assert process.returncode is None, "the dispatcher exited early"
            assert time.monotonic() < deadline, "dispatcher never claimed a batch"
            await asyncio.sleep(0.1)
            locked = await scalar(
                writer,
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'outbox' AND l.mode = 'RowShareLock'",
            )
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
    assert await mesh.undelivered() == 120, "nothing may be deleted without an ack"

    # The killed batch was never applied nor deleted; a new dispatcher sends it.
    mesh.gate.open()
    survivor = await mesh.add_lancamentos(serve=False, dispatch=True, dispatch_batch_size=50)
    await mesh.wait_delivered()
    assert survivor.dispatcher is not None
    assert survivor.dispatcher.delivered == 120
    consolidado = mesh.consolidados[0]
    assert consolidado is not None
    await assert_sum_invariant(mesh, consolidado.engine)


async def test_redelivery_of_applied_entries_counts_once(
    mesh: Mesh, lancamentos_stub: Stub
) -> None:
    await create_many(lancamentos_stub, 50)
    await mesh.wait_delivered()
    # Replay everything through the feed into ingest again, twice.
    consolidado = mesh.consolidados[0]
    assert consolidado is not None
    feed = [e async for e in lancamentos_stub.StreamLancamentos(lpb.StreamLancamentosRequest())]
    assert consolidado.server is not None
    async with grpc.aio.insecure_channel(consolidado.server.address) as channel:
        ingest = cpb_grpc.ConsolidadoIngestServiceStub(channel)
        for _ in range(2):
            result = await ingest.ApplyLancamentos(cpb.ApplyLancamentosRequest(lancamentos=feed))
            assert (result.applied_count, result.duplicate_count) == (0, 50)
    engine = create_async_engine(sqlalchemy_url(mesh.consolidado_db))
    try:
        await assert_sum_invariant(mesh, engine)
    finally:
        await engine.dispose()
