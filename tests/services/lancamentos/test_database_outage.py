"""A database outage gives a retryable UNAVAILABLE, never a write, and the
service heals by itself when the database comes back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lancamentos.v1 import lancamentos_pb2 as pb
from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from caixa.client import CaixaError, LancamentosClient
from caixa.client.service_config import RETRY_POLICY
from services.lancamentos.app import LancamentosApp
from tests.support.grpc_errors import expect_error
from tests.support.lancamentos import lancamentos_settings
from tests.support.tcp_proxy import TcpProxy

RETRY_ATTEMPTS = int(RETRY_POLICY["maxAttempts"])


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


async def _await_health(channel: grpc.aio.Channel, expected: int, within: float = 10.0) -> None:
    """The readiness probe runs every 0.2 s; a loaded machine may take longer."""
    deadline = asyncio.get_running_loop().time() + within
    while (status := await _health(channel)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"health stayed {status}"
        await asyncio.sleep(0.1)


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
        await _await_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING)

        await proxy.restore()
        # The pool discards dead connections; the first calls after the outage succeed.
        created = await stub.CreateLancamento(_create(key))
        assert created.request_id == key
        page = await stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="outage"))
        assert key in {e.request_id for e in page.lancamentos}
        await _await_health(channel, health_pb2.HealthCheckResponse.SERVING)


def _handled(method: str, code: str, grpc_type: str = "unary") -> float:
    service, _, name = method.lstrip("/").partition("/")
    labels = {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": name}
    value = REGISTRY.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": code})
    return value or 0.0


async def test_client_retries_idempotent_calls_only(
    proxied_app: tuple[LancamentosApp, TcpProxy],
) -> None:
    """UNAVAILABLE from the server: the typed client retries a create (safe:
    it carries a request_id) but never a client-streaming import."""
    app, proxy = proxied_app
    assert app.server is not None
    await proxy.cut()
    create_method = "/lancamentos.v1.LancamentosService/CreateLancamento"
    import_method = "/lancamentos.v1.LancamentosService/ImportLancamentos"
    creates_before = _handled(create_method, "UNAVAILABLE")
    imports_before = _handled(import_method, "UNAVAILABLE", "client_stream")

    def call_both() -> tuple[CaixaError, CaixaError]:
        with LancamentosClient(app.server.address, timeout=10) as client:
            with pytest.raises(CaixaError) as create_error:
                client.create_lancamento("retry", "credit", 100)
            with pytest.raises(CaixaError) as import_error:
                client.import_lancamentos([_create("import-1")])
        return create_error.value, import_error.value

    create_error, import_error = await asyncio.to_thread(call_both)
    assert create_error.code == import_error.code == grpc.StatusCode.UNAVAILABLE
    # The server counts a call just after sending its status, so the client
    # can be back first; the client has returned, so no attempt is still to come.
    await _settled(lambda: _handled(create_method, "UNAVAILABLE") - creates_before)
    await _settled(lambda: _handled(import_method, "UNAVAILABLE", "client_stream") - imports_before)
    assert _handled(create_method, "UNAVAILABLE") - creates_before == RETRY_ATTEMPTS
    assert _handled(import_method, "UNAVAILABLE", "client_stream") - imports_before == 1


async def _settled(count: Callable[[], float], quiet: float = 0.3, within: float = 5.0) -> None:
    """Until `count` has not changed for `quiet` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last, since = count(), loop.time()
    while loop.time() - since < quiet:
        assert loop.time() < deadline, "the count kept changing"
        await asyncio.sleep(0.05)
        if (now := count()) != last:
            last, since = now, loop.time()
