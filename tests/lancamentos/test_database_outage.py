"""A database outage gives a retryable UNAVAILABLE, never a write, and the
service heals by itself when the database comes back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from sqlalchemy.engine import make_url

from caixa.lancamentos.app import LancamentosApp
from tests.helpers import expect_error
from tests.lancamentos.conftest import lancamentos_settings
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def proxied_app(lancamentos_db: str) -> AsyncIterator[tuple[LancamentosApp, TcpProxy]]:
    url = make_url(lancamentos_db)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied_url = url.set(port=proxy.port).render_as_string(hide_password=False)
    app = LancamentosApp(
        lancamentos_settings(proxied_url, health_probe_interval_seconds=0.2),
        serve=True,
        dispatch=False,
    )
    await app.start()
    yield app, proxy
    await app.stop()
    await proxy.cut()


def _create(request_id: str) -> pb.CreateLancamentoRequest:
    return pb.CreateLancamentoRequest(
        merchant_id="outage", kind=pb.KIND_CREDIT, amount_cents=10, request_id=request_id
    )


async def _health(channel: grpc.aio.Channel) -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="lancamentos.v1.LancamentosService")
    )
    return int(response.status)


async def test_outage_is_unavailable_and_heals(
    proxied_app: tuple[LancamentosApp, TcpProxy],
) -> None:
    app, proxy = proxied_app
    assert app.server is not None
    async with grpc.aio.insecure_channel(app.server.address) as channel:
        stub = pb_grpc.LancamentosServiceStub(channel)
        await stub.CreateLancamento(_create(str(uuid.uuid4())))

        await proxy.cut()
        key = str(uuid.uuid4())
        error = await expect_error(stub.CreateLancamento(_create(key)), grpc.StatusCode.UNAVAILABLE)
        assert "retry" in (error.details() or "")
        await expect_error(
            stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="outage")),
            grpc.StatusCode.UNAVAILABLE,
        )
        await asyncio.sleep(0.6)
        assert await _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

        await proxy.restore()
        # The pool discards dead connections; the first calls after the outage succeed.
        created = await stub.CreateLancamento(_create(key))
        assert created.request_id == key
        page = await stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="outage"))
        assert key in {e.request_id for e in page.lancamentos}
        await asyncio.sleep(0.6)
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
