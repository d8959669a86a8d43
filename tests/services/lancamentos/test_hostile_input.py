"""Input the database cannot store, or that a loose pattern lets through, is an
INVALID_ARGUMENT naming the field: never INTERNAL, never another caller's failure."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from lancamentos.v1 import lancamentos_pb2 as pb
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.grpc_errors import expect_error, field_violations
from tests.support.lancamentos import count_rows, create_request

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub as Stub


@pytest.mark.parametrize(
    "description",
    ["a\x00b", "bell\x07", "\x1b[31mred\x1b[0m", "line\nbreak", "tab\there", "del\x7f", "c1\x9b"],
)
async def test_control_characters_in_a_description_are_refused(
    stub: Stub, engine: AsyncEngine, description: str
) -> None:
    error = await expect_error(
        stub.CreateLancamento(create_request(description=description)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "control character" in field_violations(error)["description"]
    assert await count_rows(engine, "lancamentos") == 0


async def test_printable_unicode_is_kept(stub: Stub) -> None:
    text = "Ação nº 7 — café ☕ 50% €"
    created = await stub.CreateLancamento(create_request(description=text))
    assert created.description == text


async def test_a_nul_create_fails_alone_among_concurrent_creates(
    stub: Stub, engine: AsyncEngine
) -> None:
    valid = [create_request(merchant_id=f"m{i % 5}") for i in range(40)]
    poisoned = create_request(description="a\x00b")
    outcomes = await asyncio.gather(
        *(stub.CreateLancamento(r) for r in [*valid, poisoned]), return_exceptions=True
    )
    assert all(isinstance(o, pb.Lancamento) for o in outcomes[:-1]), outcomes[:-1]
    assert isinstance(outcomes[-1], grpc.aio.AioRpcError)
    assert outcomes[-1].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await count_rows(engine, "lancamentos") == 40


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_id", "loja-1\n"),
        ("request_id", "r-1\n"),
        ("value_date", "2026-03-10\n"),
        ("value_date", "٢٠٢٦-٠٣-١٠"),
    ],
)
async def test_a_trailing_newline_or_foreign_digits_fail_the_pattern(
    stub: Stub, field: str, value: str
) -> None:
    error = await expect_error(
        stub.CreateLancamento(create_request(**{field: value})),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert list(field_violations(error)) == [field]


async def test_an_id_with_a_trailing_newline_is_invalid_not_internal(stub: Stub) -> None:
    entry_id = f"{uuid.uuid4()}\n"
    error = await expect_error(
        stub.GetLancamento(pb.GetLancamentoRequest(merchant_id="m1", lancamento_id=entry_id)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert list(field_violations(error)) == ["lancamento_id"]
    error = await expect_error(
        stub.ReverseLancamento(
            pb.ReverseLancamentoRequest(merchant_id="m1", lancamento_id=entry_id, request_id="r")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert list(field_violations(error)) == ["lancamento_id"]


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b'{"v":1,"q":"x","d":"2026-03-10","s":1e999}').decode(),
        base64.urlsafe_b64encode(
            b'{"v":1,"q":"x","d":"2026-03-10","s":100000000000000000000}'
        ).decode(),
        base64.urlsafe_b64encode(b'{"v":1,"q":"x","d":"2026-03-10","s":-1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"q":"x","d":"2026-03-10","s":1.5}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"q":"x","d":"2026-03-10","s":true}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"q":"x","d":20260310,"s":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"q":"x","d":"9999-12-31","s":1}').decode(),
    ],
)
async def test_a_forged_page_token_out_of_range_is_invalid(stub: Stub, token: str) -> None:
    error = await expect_error(
        stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="m1", page_token=token)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert list(field_violations(error)) == ["page_token"]


async def test_a_forged_token_that_matches_its_query_is_still_range_checked(stub: Stub) -> None:
    # The digest of a real token's query, with a sequence past any bigint.
    for i in range(3):
        await stub.CreateLancamento(create_request(value_date=f"2026-03-1{i}"))
    page = await stub.ListLancamentos(pb.ListLancamentosRequest(merchant_id="m1", page_size=1))
    padded = page.next_page_token + "=" * (-len(page.next_page_token) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded))
    for sequence in ("100000000000000000000", "1e999"):
        raw = f'{{"v":1,"q":"{data["q"]}","d":"{data["d"]}","s":{sequence}}}'
        token = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        error = await expect_error(
            stub.ListLancamentos(
                pb.ListLancamentosRequest(merchant_id="m1", page_size=1, page_token=token)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert list(field_violations(error)) == ["page_token"]
