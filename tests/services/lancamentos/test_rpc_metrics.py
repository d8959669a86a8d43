"""Per-RPC metrics under the gRPC ecosystem's names and labels, as stock gRPC
dashboards query them: they move as calls start, end, fail and are cancelled."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.platform import database
from tests.support.lancamentos import create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

SERVICE = "lancamentos.v1.LancamentosService"


def sample(name: str, method: str, grpc_type: str, **extra: str) -> float:
    labels = {"grpc_type": grpc_type, "grpc_service": SERVICE, "grpc_method": method, **extra}
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_call_is_started_handled_and_timed(stub: LancamentosServiceAsyncStub) -> None:
    def counts() -> tuple[float, ...]:
        return (
            sample("grpc_server_started_total", "CreateLancamento", "unary"),
            sample("grpc_server_handled_total", "CreateLancamento", "unary", grpc_code="OK"),
            sample(
                "grpc_server_handled_total",
                "CreateLancamento",
                "unary",
                grpc_code="INVALID_ARGUMENT",
            ),
            sample("grpc_server_handling_seconds_count", "CreateLancamento", "unary"),
        )

    before = counts()
    await stub.CreateLancamento(create_request())
    try:
        await stub.CreateLancamento(create_request(amount_cents=0))
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = counts()
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 1, 1, 2]
    assert sample("grpc_server_in_flight", "CreateLancamento", "unary") == 0


async def test_an_open_stream_is_in_flight_and_a_cancelled_one_counted(
    stub: LancamentosServiceAsyncStub,
) -> None:
    cancelled = sample(
        "grpc_server_handled_total", "StreamLancamentos", "server_stream", grpc_code="CANCELLED"
    )
    call = stub.StreamLancamentos(pb.StreamLancamentosRequest(merchant_id="m1", follow=True))
    for _ in range(100):
        if sample("grpc_server_in_flight", "StreamLancamentos", "server_stream") == 1:
            break
        await asyncio.sleep(0.02)
    assert sample("grpc_server_in_flight", "StreamLancamentos", "server_stream") == 1
    call.cancel()
    for _ in range(100):
        if sample("grpc_server_in_flight", "StreamLancamentos", "server_stream") == 0:
            break
        await asyncio.sleep(0.02)
    assert sample("grpc_server_in_flight", "StreamLancamentos", "server_stream") == 0
    assert (
        sample(
            "grpc_server_handled_total",
            "StreamLancamentos",
            "server_stream",
            grpc_code="CANCELLED",
        )
        == cancelled + 1
    )


async def test_the_database_pool_in_use_is_exported(lancamentos_db: str) -> None:
    name = f"test-{uuid.uuid4().hex[:6]}"
    engine = database.create_engine(lancamentos_db, pool_size=3, pool_name=name)

    def in_use() -> float:
        return REGISTRY.get_sample_value("caixa_db_pool_connections_in_use", {"pool": name}) or 0

    try:
        assert REGISTRY.get_sample_value("caixa_db_pool_connections_limit", {"pool": name}) == 6
        assert in_use() == 0
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("SELECT 1"))
            await second.execute(text("SELECT 1"))
            assert in_use() == 2
        assert in_use() == 0
    finally:
        await engine.dispose()
