"""The same contract over gRPC, through the gateway Envoy rather than to the services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from tests.mesh.gateway.raw_h2 import shape, unary_frames
from tests.support.grpc_errors import expect_error, field_violations
from tests.support.stack import LocalStack

if TYPE_CHECKING:
    # Only in the generated .pyi: what the stubs are over a grpc.aio channel.
    from consolidado.v1.consolidado_pb2_grpc import ConsolidadoServiceAsyncStub as Consolidado
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Lancamentos

pytestmark = pytest.mark.slow

INGEST = "consolidado.v1.ConsolidadoIngestService"


@pytest.fixture(scope="module")
async def channel(gateway: LocalStack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        yield channel


@pytest.fixture
def lancamentos(channel: grpc.aio.Channel) -> Lancamentos:
    return lpb_grpc.LancamentosServiceStub(channel)


@pytest.fixture
def consolidado(channel: grpc.aio.Channel) -> Consolidado:
    return cpb_grpc.ConsolidadoServiceStub(channel)


def create_request(merchant: str, **overrides: object) -> lpb.CreateLancamentoRequest:
    values: dict[str, object] = {
        "merchant_id": merchant,
        "kind": lpb.KIND_CREDIT,
        "amount_cents": 1050,
        "value_date": "2026-03-10",
        "description": "venda balcão",
        "request_id": str(uuid.uuid4()),
    }
    values.update(overrides)
    return lpb.CreateLancamentoRequest(**values)  # type: ignore[arg-type]


def grpc_counter(gateway: LocalStack, cluster: str, method: str, status: str) -> int:
    name = f"cluster.{cluster}.grpc.{method.replace('/', '.')}.{status}"
    return gateway.stats(name).get(name, 0)


async def test_create_get_list_reverse(
    gateway: LocalStack, lancamentos: Lancamentos, merchant: str
) -> None:
    method = "lancamentos.v1.LancamentosService/CreateLancamento"
    before = grpc_counter(gateway, "lancamentos", method, "success")
    created = await lancamentos.CreateLancamento(create_request(merchant), timeout=5)
    # It went through the gateway, which counted it per method.
    assert grpc_counter(gateway, "lancamentos", method, "success") == before + 1
    uuid.UUID(created.lancamento_id)
    assert (created.merchant_id, created.kind, created.amount_cents) == (
        merchant,
        lpb.KIND_CREDIT,
        1050,
    )
    assert (created.currency, created.value_date) == ("BRL", "2026-03-10")
    assert created.sequence > 0
    assert created.created_at.seconds > 0

    got = await lancamentos.GetLancamento(
        lpb.GetLancamentoRequest(merchant_id=merchant, lancamento_id=created.lancamento_id)
    )
    assert got == created

    second = await lancamentos.CreateLancamento(
        create_request(merchant, kind=lpb.KIND_DEBIT, value_date="2026-03-09", amount_cents=5)
    )
    page = await lancamentos.ListLancamentos(
        lpb.ListLancamentosRequest(merchant_id=merchant, page_size=1)
    )
    assert list(page.lancamentos) == [second]
    assert page.next_page_token
    rest = await lancamentos.ListLancamentos(
        lpb.ListLancamentosRequest(
            merchant_id=merchant, page_size=1, page_token=page.next_page_token
        )
    )
    assert list(rest.lancamentos) == [created]
    assert rest.next_page_token == ""
    credits = await lancamentos.ListLancamentos(
        lpb.ListLancamentosRequest(
            merchant_id=merchant,
            kind=lpb.KIND_CREDIT,
            from_date="2026-03-10",
            to_date="2026-03-10",
        )
    )
    assert list(credits.lancamentos) == [created]

    reverse = lpb.ReverseLancamentoRequest(
        merchant_id=merchant,
        lancamento_id=created.lancamento_id,
        request_id="rev-1",
        value_date="2026-03-11",
    )
    reversal = await lancamentos.ReverseLancamento(reverse)
    assert (reversal.kind, reversal.amount_cents) == (lpb.KIND_DEBIT, 1050)
    assert reversal.reverses_lancamento_id == created.lancamento_id
    assert await lancamentos.ReverseLancamento(reverse) == reversal
    got = await lancamentos.GetLancamento(
        lpb.GetLancamentoRequest(merchant_id=merchant, lancamento_id=created.lancamento_id)
    )
    assert got.reversed_by_lancamento_id == reversal.lancamento_id


async def test_idempotent_retry_and_already_exists(lancamentos: Lancamentos, merchant: str) -> None:
    request = create_request(merchant, request_id="key-1")
    first = await lancamentos.CreateLancamento(request)
    assert await lancamentos.CreateLancamento(request) == first
    error = await expect_error(
        lancamentos.CreateLancamento(create_request(merchant, request_id="key-1", amount_cents=9)),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert "key-1" in (error.details() or "")


async def test_invalid_argument_carries_field_violations(
    lancamentos: Lancamentos, consolidado: Consolidado, merchant: str
) -> None:
    bad = lpb.CreateLancamentoRequest(
        merchant_id=merchant,
        kind=lpb.KIND_UNSPECIFIED,
        amount_cents=0,
        value_date="2026-02-30",
        request_id=str(uuid.uuid4()),
    )
    error = await expect_error(lancamentos.CreateLancamento(bad), grpc.StatusCode.INVALID_ARGUMENT)
    violations = field_violations(error)
    assert set(violations) == {"kind", "amount_cents", "value_date"}
    assert "not a real calendar day" in violations["value_date"]

    error = await expect_error(
        lancamentos.ListLancamentos(
            lpb.ListLancamentosRequest(merchant_id=merchant, page_size=1001, page_token="x")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(field_violations(error)) == {"page_size", "page_token"}

    error = await expect_error(
        consolidado.GetDailyBalance(cpb.GetDailyBalanceRequest(merchant_id="a b", date="x")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(field_violations(error)) == {"merchant_id", "date"}
    error = await expect_error(
        consolidado.ListDailyBalances(
            cpb.ListDailyBalancesRequest(
                merchant_id=merchant, from_date="2026-04-12", to_date="2026-04-10"
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert list(field_violations(error)) == ["from_date"]


async def test_not_found(gateway: LocalStack, lancamentos: Lancamentos, merchant: str) -> None:
    method = "lancamentos.v1.LancamentosService/GetLancamento"
    before = grpc_counter(gateway, "lancamentos", method, "5")
    unknown = str(uuid.uuid4())
    error = await expect_error(
        lancamentos.GetLancamento(
            lpb.GetLancamentoRequest(merchant_id=merchant, lancamento_id=unknown)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert unknown in (error.details() or "")
    assert grpc_counter(gateway, "lancamentos", method, "5") == before + 1
    await expect_error(
        lancamentos.ReverseLancamento(
            lpb.ReverseLancamentoRequest(
                merchant_id=merchant, lancamento_id=unknown, request_id="r"
            )
        ),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_failed_precondition(lancamentos: Lancamentos, merchant: str) -> None:
    original = await lancamentos.CreateLancamento(create_request(merchant))
    reversal = await lancamentos.ReverseLancamento(
        lpb.ReverseLancamentoRequest(
            merchant_id=merchant, lancamento_id=original.lancamento_id, request_id="rev-a"
        )
    )
    for target, request_id in [(original, "rev-b"), (reversal, "rev-c")]:
        error = await expect_error(
            lancamentos.ReverseLancamento(
                lpb.ReverseLancamentoRequest(
                    merchant_id=merchant,
                    lancamento_id=target.lancamento_id,
                    request_id=request_id,
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert error.details()


async def test_balances_after_delivery(
    gateway: LocalStack, lancamentos: Lancamentos, consolidado: Consolidado, merchant: str
) -> None:
    await lancamentos.CreateLancamento(
        create_request(merchant, value_date="2026-05-02", amount_cents=1000)
    )
    debit = await lancamentos.CreateLancamento(
        create_request(merchant, value_date="2026-05-02", amount_cents=250, kind=lpb.KIND_DEBIT)
    )
    await gateway.mesh.wait_delivered(within_seconds=10)
    day = await consolidado.GetDailyBalance(
        cpb.GetDailyBalanceRequest(merchant_id=merchant, date="2026-05-02")
    )
    assert (day.merchant_id, day.date, day.currency) == (merchant, "2026-05-02", "BRL")
    assert (day.credits_cents, day.debits_cents, day.net_cents) == (1000, 250, 750)
    assert (day.opening_balance_cents, day.closing_balance_cents) == (0, 750)
    assert day.lancamentos_count == 2
    assert day.as_of == debit.created_at

    listed = await consolidado.ListDailyBalances(
        cpb.ListDailyBalancesRequest(
            merchant_id=merchant, from_date="2026-05-01", to_date="2026-05-03"
        )
    )
    assert [d.date for d in listed.daily_balances] == ["2026-05-01", "2026-05-02", "2026-05-03"]
    before, same, after = listed.daily_balances
    assert (before.closing_balance_cents, before.lancamentos_count) == (0, 0)
    assert not before.HasField("as_of")
    assert same == day
    assert (after.opening_balance_cents, after.closing_balance_cents) == (750, 750)
    assert after.as_of == debit.created_at


@pytest.mark.parametrize("method", ["ApplyLancamentos", "Reconcile"])
async def test_ingest_service_is_not_routed(channel: grpc.aio.Channel, method: str) -> None:
    # Raw bytes both ways: the empty message is valid for any request type.
    call = channel.unary_unary(
        f"/{INGEST}/{method}", request_serializer=None, response_deserializer=None
    )
    await expect_error(call(b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED)


async def test_service_errors_arrive_trailers_only(gateway: LocalStack, merchant: str) -> None:
    """The services send an error before any message, so Envoy sees grpc-status in the
    response headers (what the transcoder and grpc_stats read first) and passes the
    trailers-only response on unchanged."""
    method = "/lancamentos.v1.LancamentosService/GetLancamento"
    missing = lpb.GetLancamentoRequest(merchant_id=merchant, lancamento_id=str(uuid.uuid4()))
    frames = await unary_frames(gateway.grpc_target, method, missing.SerializeToString())
    assert shape(frames) == ["HEADERS+END_STREAM"]
    invalid = lpb.GetLancamentoRequest(merchant_id=merchant, lancamento_id="nope")
    frames = await unary_frames(gateway.grpc_target, method, invalid.SerializeToString())
    assert shape(frames) == ["HEADERS+END_STREAM"]
    # A success, for contrast: headers, the message, then trailers.
    created = create_request(merchant).SerializeToString()
    frames = await unary_frames(
        gateway.grpc_target, "/lancamentos.v1.LancamentosService/CreateLancamento", created
    )
    assert shape(frames) == ["HEADERS", "DATA", "HEADERS+END_STREAM"]
