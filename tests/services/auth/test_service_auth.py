"""Every service verifies the caller's token itself: a call straight to a service
port, bypassing the gateway, meets the same rules. Real lancamentos and
consolidado servers on free ports, over real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from audit.v1 import audit_pb2 as apb
from consolidado.v1 import consolidado_pb2 as cpb
from consolidado.v1 import consolidado_pb2_grpc as cpb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc

from caixa.cli.dev_tokens import dev_key
from services.consolidado.app import ConsolidadoApp
from services.lancamentos.app import LancamentosApp
from tests.support.auth import (
    CONSOLIDADO,
    DISPATCHER,
    WORKLOAD_AUDIENCE,
    WORKLOAD_ISSUER,
    Issuer,
    bearer,
)
from tests.support.lancamentos import count_rows, create_request

if TYPE_CHECKING:
    from consolidado.v1.consolidado_pb2_grpc import (
        ConsolidadoIngestServiceAsyncStub,
        ConsolidadoServiceAsyncStub,
    )
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

A, B = "loja-a", "loja-b"


@pytest.fixture
async def ledger(lancamentos: LancamentosApp) -> AsyncIterator[LancamentosServiceAsyncStub]:
    assert lancamentos.server is not None
    async with grpc.aio.insecure_channel(lancamentos.server.address) as channel:
        yield lpb_grpc.LancamentosServiceStub(channel)


@pytest.fixture
async def balances(
    consolidado: ConsolidadoApp,
) -> AsyncIterator[tuple[ConsolidadoServiceAsyncStub, ConsolidadoIngestServiceAsyncStub]]:
    assert consolidado.server is not None
    async with grpc.aio.insecure_channel(consolidado.server.address) as channel:
        yield (
            cpb_grpc.ConsolidadoServiceStub(channel),
            cpb_grpc.ConsolidadoIngestServiceStub(channel),
        )


async def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def create(merchant: str = A) -> lpb.CreateLancamentoRequest:
    return create_request(merchant_id=merchant)


@pytest.mark.parametrize(
    ("token", "words"),
    [
        (None, "no bearer token"),
        ("not-a-jwt", "not a valid JWT"),
        ("expired", "expired"),
        ("other-key", "key this service does not know"),
        ("other-issuer", "not issued by"),
        ("other-audience", "not meant for"),
        ("forged", "signature is wrong"),
    ],
)
async def test_a_bad_token_is_unauthenticated_on_every_service(
    *,
    issuer: Issuer,
    tmp_path: Path,
    ledger: LancamentosServiceAsyncStub,
    balances: tuple[ConsolidadoServiceAsyncStub, ConsolidadoIngestServiceAsyncStub],
    token: str | None,
    words: str,
) -> None:
    good = issuer.token([A])
    tokens = {
        None: None,
        "not-a-jwt": "not-a-jwt",
        "expired": issuer.token([A], ttl=-120),
        "other-key": issuer.token([A], key=dev_key(tmp_path / "other")),
        "other-issuer": issuer.token([A], issuer="someone-else"),
        "other-audience": issuer.token([A], audience="another-app"),
        # A good token's claims with the last signature bytes changed.
        "forged": good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
    }
    raw = tokens[token]
    metadata = bearer(raw) if raw is not None else ()
    read, _ = balances
    for call in (
        ledger.CreateLancamento(create(), metadata=metadata),
        ledger.ListLancamentos(lpb.ListLancamentosRequest(merchant_id=A), metadata=metadata),
        read.GetDailyBalance(
            cpb.GetDailyBalanceRequest(merchant_id=A, date="2026-03-10"), metadata=metadata
        ),
    ):
        code, details = await code_of(call)
        assert code == grpc.StatusCode.UNAUTHENTICATED and words in details, (code, details)


async def test_merchant_a_cannot_touch_merchant_b(
    issuer: Issuer,
    lancamentos: LancamentosApp,
    ledger: LancamentosServiceAsyncStub,
    balances: tuple[ConsolidadoServiceAsyncStub, ConsolidadoIngestServiceAsyncStub],
) -> None:
    admin = bearer(issuer.token(["*"]))
    of_b = await ledger.CreateLancamento(create(B), metadata=admin)
    mine = bearer(issuer.token([A]))
    read, _ = balances
    denied = grpc.StatusCode.PERMISSION_DENIED
    for call in (
        ledger.CreateLancamento(create(B), metadata=mine),
        ledger.GetLancamento(
            lpb.GetLancamentoRequest(merchant_id=B, lancamento_id=of_b.lancamento_id),
            metadata=mine,
        ),
        ledger.ListLancamentos(lpb.ListLancamentosRequest(merchant_id=B), metadata=mine),
        ledger.ReverseLancamento(
            lpb.ReverseLancamentoRequest(
                merchant_id=B, lancamento_id=of_b.lancamento_id, request_id="rv"
            ),
            metadata=mine,
        ),
        ledger.SummarizeLancamentos(lpb.SummarizeLancamentosRequest(merchant_id=B), metadata=mine),
        read.GetDailyBalance(
            cpb.GetDailyBalanceRequest(merchant_id=B, date="2026-03-10"), metadata=mine
        ),
        read.ListDailyBalances(
            cpb.ListDailyBalancesRequest(
                merchant_id=B, from_date="2026-03-01", to_date="2026-03-02"
            ),
            metadata=mine,
        ),
    ):
        code, details = await code_of(call)
        assert code == denied and B in details, (code, details)
    # Its own merchant works with the same token.
    assert (await ledger.CreateLancamento(create(A), metadata=mine)).merchant_id == A


async def test_an_import_with_one_row_for_another_merchant_writes_nothing_of_it(
    issuer: Issuer, lancamentos: LancamentosApp, ledger: LancamentosServiceAsyncStub
) -> None:
    before = await count_rows(lancamentos.engine, "lancamentos")
    rows = [create(A) for _ in range(5)] + [create(B)]

    async def messages() -> AsyncIterator[lpb.ImportLancamentosRequest]:
        yield lpb.ImportLancamentosRequest(lancamentos=rows)

    code, details = await code_of(
        ledger.ImportLancamentos(messages(), metadata=bearer(issuer.token([A])))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and B in details, details
    assert await count_rows(lancamentos.engine, "lancamentos") == before


async def test_the_change_feed_of_another_or_of_every_merchant_is_denied(
    issuer: Issuer, ledger: LancamentosServiceAsyncStub
) -> None:
    mine = bearer(issuer.token([A]))
    for merchant in (B, ""):
        stream = ledger.StreamLancamentos(
            lpb.StreamLancamentosRequest(merchant_id=merchant), metadata=mine
        )
        try:
            async for _ in stream:
                pass
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, merchant
        else:
            pytest.fail(f"the feed of {merchant or 'every merchant'} was served")
    # A workload granted lancamentos:read (consolidado's rebuild) reads them all.
    feed = bearer(issuer.workload_token(CONSOLIDADO))
    async for _ in ledger.StreamLancamentos(lpb.StreamLancamentosRequest(), metadata=feed):
        break


async def test_a_missing_scope_is_permission_denied(
    issuer: Issuer, ledger: LancamentosServiceAsyncStub
) -> None:
    reader = bearer(issuer.token([A], scopes=["lancamentos:read"]))
    code, details = await code_of(ledger.CreateLancamento(create(A), metadata=reader))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "lancamentos:write" in details
    listed = await ledger.ListLancamentos(
        lpb.ListLancamentosRequest(merchant_id=A), metadata=reader
    )
    assert listed is not None


async def test_the_audit_trail_needs_admin_for_the_merchant_and_records_the_subject(
    issuer: Issuer,
    ledger: LancamentosServiceAsyncStub,
    balances: tuple[ConsolidadoServiceAsyncStub, ConsolidadoIngestServiceAsyncStub],
) -> None:
    merchant = f"loja-{uuid.uuid4().hex[:8]}"
    writer = bearer(issuer.token([merchant], scopes=["lancamentos:write"], subject="caixa-7"))
    entry = await ledger.CreateLancamento(create(merchant), metadata=writer)
    request = apb.ListAuditRecordsRequest(merchant_id=merchant)
    consolidated, _ = balances
    for stub in (ledger, consolidated):
        # Every scope but admin; admin for another merchant; admin for one, asking for all.
        for token in (
            issuer.token([merchant], scopes=["lancamentos:read", "consolidado:read"]),
            issuer.token([A], scopes=["admin"]),
        ):
            code, _ = await code_of(stub.ListAuditRecords(request, metadata=bearer(token)))
            assert code == grpc.StatusCode.PERMISSION_DENIED
        every = apb.ListAuditRecordsRequest(merchant_id="*")
        one = bearer(issuer.token([merchant], scopes=["admin"]))
        code, _ = await code_of(stub.ListAuditRecords(every, metadata=one))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    admin = bearer(issuer.token([merchant], scopes=["admin"]))
    [record] = (await ledger.ListAuditRecords(request, metadata=admin)).audit_records
    assert (record.subject, list(record.entry_ids)) == ("caixa-7", [entry.lancamento_id])


async def test_ingest_takes_the_dispatchers_identity_only(
    issuer: Issuer,
    balances: tuple[ConsolidadoServiceAsyncStub, ConsolidadoIngestServiceAsyncStub],
) -> None:
    _, ingest = balances
    request = cpb.ApplyLancamentosRequest()
    # An end user's token claiming the ingest scope, even for every merchant.
    user = bearer(issuer.token(["*"], scopes=["consolidado:ingest", "admin"]))
    code, details = await code_of(ingest.ApplyLancamentos(request, metadata=user))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "workload" in details
    # Another workload is no dispatcher.
    other = bearer(issuer.workload_token(CONSOLIDADO))
    code, _ = await code_of(ingest.ApplyLancamentos(request, metadata=other))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # A user's token named after the dispatcher: not of the workloads' issuer.
    posing = bearer(issuer.token(["*"], scopes=["consolidado:ingest"], subject=DISPATCHER))
    code, details = await code_of(ingest.ApplyLancamentos(request, metadata=posing))
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    dispatcher = bearer(issuer.workload_token(DISPATCHER))
    assert await ingest.ApplyLancamentos(request, metadata=dispatcher) is not None


async def test_a_workload_acts_for_every_merchant_only_under_its_grant(
    issuer: Issuer, ledger: LancamentosServiceAsyncStub
) -> None:
    """consolidado's identity reads every merchant's feed (its grant), but a
    scope its token claims besides gives it no merchant."""
    claims_write = issuer.token(
        [],
        ["lancamentos:write"],
        subject=CONSOLIDADO,
        issuer=WORKLOAD_ISSUER,
        audience=WORKLOAD_AUDIENCE,
    )
    code, details = await code_of(ledger.CreateLancamento(create(B), metadata=bearer(claims_write)))
    assert code == grpc.StatusCode.PERMISSION_DENIED and B in details, details


async def test_client_supplied_identity_headers_change_nothing(
    issuer: Issuer, ledger: LancamentosServiceAsyncStub
) -> None:
    metadata = (
        *bearer(issuer.token([A])),
        ("x-merchant-id", B),
        ("x-jwt-payload", '{"merchants": ["*"]}'),
        ("x-forwarded-client-cert", f"URI={DISPATCHER}"),
    )
    code, _ = await code_of(ledger.CreateLancamento(create(B), metadata=metadata))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    two = (*bearer(issuer.token([A])), *bearer(issuer.token(["*"])))
    code, details = await code_of(ledger.CreateLancamento(create(B), metadata=two))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "more than one" in details


async def test_health_needs_no_token(lancamentos: LancamentosApp) -> None:
    assert lancamentos.server is not None
    async with grpc.aio.insecure_channel(lancamentos.server.address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_cli_sends_its_token_from_the_flag_or_the_environment(
    issuer: Issuer, lancamentos: LancamentosApp
) -> None:
    assert lancamentos.server is not None
    target = ["--lancamentos-target", lancamentos.server.address]
    command = [sys.executable, "-m", "caixa.cli", *target]
    listing = ["list", "--merchant", A]
    clean = {k: v for k, v in os.environ.items() if k != "CAIXA_TOKEN"}

    # In a thread: the servers share this event loop.
    async def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [*command, *args],
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    anonymous = await run(*listing)
    assert anonymous.returncode == 2 and "UNAUTHENTICATED" in anonymous.stderr
    assert (await run("--token", issuer.token([A]), *listing)).returncode == 0
    assert (await run(*listing, CAIXA_TOKEN=issuer.token([A]))).returncode == 0
    other = await run("list", "--merchant", B, CAIXA_TOKEN=issuer.token([A]))
    assert other.returncode == 2 and "PERMISSION_DENIED" in other.stderr
    # The flag wins over the environment.
    flagged = await run("--token", issuer.token([B]), "list", "--merchant", B, CAIXA_TOKEN="junk")
    assert flagged.returncode == 0, flagged.stderr


async def test_a_live_feed_stops_once_its_token_expires(
    issuer: Issuer, ledger: LancamentosServiceAsyncStub
) -> None:
    """Checked at the start only, a follow feed would stream for ever. A token
    expired 25 s ago is still within the 30 s clock-skew leeway: admitted, and
    cut off about 5 s later, at the next entry it would have sent. (5 s, not 1:
    a loaded machine can take a second to admit the call.)"""
    admin = bearer(issuer.token(["*"]))
    nearly = bearer(issuer.token([A], ttl=-25))
    feed = ledger.StreamLancamentos(
        lpb.StreamLancamentosRequest(merchant_id=A, follow=True), metadata=nearly
    )
    received = 0

    async def keep_creating() -> None:
        for _ in range(40):
            await ledger.CreateLancamento(create(A), metadata=admin)
            await asyncio.sleep(0.25)

    writer = asyncio.create_task(keep_creating())
    try:
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(15):
                async for _ in feed:
                    received += 1
    finally:
        writer.cancel()
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED, ended.value
    assert "expired during the stream" in (ended.value.details() or "")
    assert received >= 1  # it did stream while the token was good
