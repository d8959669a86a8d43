"""An application that retries after a failure cannot double-book: the key the
client used is on the result and on the error, and resending with it replays."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from caixa.client import AsyncLancamentosClient, CaixaError, LancamentosClient
from tests.support.services import Mesh


@pytest.fixture
async def serving(mesh: Mesh, lancamentos_stub: lpb_grpc.LancamentosServiceStub) -> str:
    return mesh.lancamentos_address


def entries_of(client: LancamentosClient, merchant: str) -> int:
    return len(list(client.iter_lancamentos(merchant)))


async def test_a_deadline_then_a_retry_with_the_errors_key_books_once(serving: str) -> None:
    merchant = f"retry-{uuid.uuid4().hex[:8]}"

    def scenario() -> None:
        with LancamentosClient(serving) as client:
            with pytest.raises(CaixaError) as raised:
                # Too short to get an answer, maybe not to get booked.
                client.create_lancamento(merchant, "credit", 100, timeout=0.0005)
            error = raised.value
            assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED
            assert error.request_id and error.request_id in str(error)
            entry = client.create_lancamento(merchant, "credit", 100, request_id=error.request_id)
            assert entry.request_id == error.request_id
            again = client.create_lancamento(merchant, "credit", 100, request_id=entry.request_id)
            assert again.lancamento_id == entry.lancamento_id
            assert entries_of(client, merchant) == 1

    await asyncio.to_thread(scenario)


async def test_the_key_is_on_errors_of_reversals_and_of_the_asyncio_client(serving: str) -> None:
    merchant = f"retry-{uuid.uuid4().hex[:8]}"
    async with AsyncLancamentosClient(serving) as client:
        with pytest.raises(CaixaError) as raised:
            await client.create_lancamento(merchant, "credit", 0)
        assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.request_id
        with pytest.raises(CaixaError) as raised:
            await client.reverse_lancamento(merchant, str(uuid.uuid4()), request_id="estorno-9")
        assert raised.value.code is grpc.StatusCode.NOT_FOUND
        assert raised.value.request_id == "estorno-9"
        with pytest.raises(CaixaError) as raised:
            await client.get_lancamento(merchant, str(uuid.uuid4()))
        assert raised.value.request_id is None  # a read has no key
