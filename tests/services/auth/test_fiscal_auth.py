"""fiscal's access rules against real servers that verify tokens: fiscal:write to
validate and process, fiscal:read to look up, only the token's merchants; and the
entries reach lancamentos under fiscal's own workload identity, never the user's."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from audit.v1 import audit_pb2
from fiscal.v1 import fiscal_pb2 as pb
from fiscal.v1 import fiscal_pb2_grpc as pb_grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from lancamentos.v1 import lancamentos_pb2_grpc as lpb_grpc
from sqlalchemy import text

from services.fiscal.app import MIGRATIONS, FiscalApp
from services.lancamentos.app import LancamentosApp
from services.platform.migrations import upgrade
from tests.support.auth import FISCAL, Issuer, bearer
from tests.support.fiscal import fiscal_settings, process_request, xml
from tests.support.grpc_errors import expect_error
from tooling.fiscal_documents import ACCESS_KEY, ISSUER, Signer, invoice

if TYPE_CHECKING:
    from fiscal.v1.fiscal_pb2_grpc import FiscalServiceAsyncStub
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

WRITE = ("fiscal:write",)
SIGNER = Signer.self_signed()


@pytest.fixture(scope="module")
async def fiscal(
    issuer: Issuer,
    lancamentos: LancamentosApp,
    make_database: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FiscalApp]:
    url = await asyncio.to_thread(make_database, "auth_fiscal")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    token_file = Path(tmp_path_factory.mktemp("fiscal-identity")) / "fiscal.jwt"
    token_file.write_text(issuer.workload_token(FISCAL))
    settings = fiscal_settings(
        url,
        lancamentos_target=lancamentos.server.address,
        workload_token_file=str(token_file),
        **issuer.settings(),
    )
    app = FiscalApp(settings, serve=True, dispatch=True)
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
async def stub(fiscal: FiscalApp) -> AsyncIterator[FiscalServiceAsyncStub]:
    async with grpc.aio.insecure_channel(fiscal.server.address) as channel:
        yield pb_grpc.FiscalServiceStub(channel)


@pytest.fixture
def merchant() -> str:
    return f"fa-{uuid.uuid4().hex[:10]}"


async def test_each_rpc_needs_its_scope(
    stub: FiscalServiceAsyncStub, issuer: Issuer, merchant: str
) -> None:
    validate = pb.ValidateDocumentRequest(document=xml(invoice(SIGNER)))
    await expect_error(stub.ValidateDocument(validate), grpc.StatusCode.UNAUTHENTICATED)
    reader = bearer(issuer.token([merchant], ["fiscal:read"]))
    await expect_error(
        stub.ValidateDocument(validate, metadata=reader), grpc.StatusCode.PERMISSION_DENIED
    )
    writer = bearer(issuer.token([merchant], WRITE))
    report = await stub.ValidateDocument(validate, metadata=writer)
    assert report.valid
    get = pb.GetDocumentRequest(merchant_id=merchant, access_key=ACCESS_KEY)
    await expect_error(stub.GetDocument(get, metadata=writer), grpc.StatusCode.PERMISSION_DENIED)
    await expect_error(stub.GetDocument(get, metadata=reader), grpc.StatusCode.NOT_FOUND)
    audit = audit_pb2.ListAuditRecordsRequest(merchant_id=merchant)
    await expect_error(
        stub.ListAuditRecords(audit, metadata=writer), grpc.StatusCode.PERMISSION_DENIED
    )
    # Saying which CNPJ a merchant is belongs to the back office.
    register = pb.RegisterMerchantRequest(merchant_id=merchant, document=ISSUER)
    await expect_error(
        stub.RegisterMerchant(register, metadata=writer), grpc.StatusCode.PERMISSION_DENIED
    )
    admin = bearer(issuer.token([merchant], ["admin"]))
    assert (await stub.RegisterMerchant(register, metadata=admin)).document == ISSUER


async def test_processing_books_only_for_the_tokens_merchants(
    stub: FiscalServiceAsyncStub, issuer: Issuer, merchant: str
) -> None:
    other = bearer(issuer.token(["someone-else"], WRITE))
    await expect_error(
        stub.ProcessDocument(process_request(merchant, invoice(SIGNER), ISSUER), metadata=other),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # Nothing was written for the merchant.
    reader = bearer(issuer.token([merchant], ["fiscal:read"]))
    get = pb.GetDocumentRequest(merchant_id=merchant, access_key=ACCESS_KEY)
    await expect_error(stub.GetDocument(get, metadata=reader), grpc.StatusCode.NOT_FOUND)


async def test_entries_reach_lancamentos_as_fiscal_not_as_the_user(
    stub: FiscalServiceAsyncStub,
    fiscal: FiscalApp,
    lancamentos: LancamentosApp,
    issuer: Issuer,
    merchant: str,
) -> None:
    """The user's token holds fiscal:write only: lancamentos would refuse it. The
    entries are booked anyway, and lancamentos' audit trail names fiscal."""
    user = bearer(issuer.token([merchant], ("fiscal:write", "fiscal:read"), subject="ana"))
    booked = await stub.ProcessDocument(
        process_request(merchant, invoice(SIGNER), ISSUER), metadata=user
    )
    assert booked.entries
    get = pb.GetDocumentRequest(merchant_id=merchant, access_key=ACCESS_KEY)
    deadline = time.monotonic() + 10
    while (await stub.GetDocument(get, metadata=user)).status != pb.DOCUMENT_STATUS_POSTED:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    async with grpc.aio.insecure_channel(lancamentos.server.address) as channel:
        ledger: LancamentosServiceAsyncStub = lpb_grpc.LancamentosServiceStub(channel)
        listing = lpb.ListLancamentosRequest(merchant_id=merchant)
        await expect_error(
            ledger.ListLancamentos(listing, metadata=user), grpc.StatusCode.PERMISSION_DENIED
        )
        admin = bearer(issuer.token([merchant], ["admin", "lancamentos:read"]))
        assert len((await ledger.ListLancamentos(listing, metadata=admin)).lancamentos) == 1
        trail = await ledger.ListAuditRecords(
            audit_pb2.ListAuditRecordsRequest(merchant_id=merchant), metadata=admin
        )
        assert [r.subject for r in trail.audit_records] == [FISCAL]
    # fiscal's own trail names the user who processed the document.
    records = await stub.ListAuditRecords(
        audit_pb2.ListAuditRecordsRequest(merchant_id=merchant),
        metadata=bearer(issuer.token([merchant], ["admin"])),
    )
    assert [(r.subject, r.outcome, r.request_id) for r in records.audit_records] == [
        ("ana", "booked", f"nfe:{ACCESS_KEY}")
    ]
    async with fiscal.engine.connect() as conn:
        stored = await conn.execute(
            text("SELECT status FROM documents WHERE merchant_id = :m"), {"m": merchant}
        )
        assert stored.scalar_one() == "posted"
