"""The typed fiscal clients, blocking and asyncio, against a real fiscal server;
and against one that checks tokens, through the CLI, the caller's token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from fiscal.v1 import fiscal_pb2 as pb

from caixa.cli.exit_codes import OK, REQUEST_REJECTED
from caixa.client import AsyncFiscalClient, CaixaError, FiscalClient
from services.fiscal.app import MIGRATIONS, FiscalApp
from services.platform.migrations import upgrade
from tests.support.auth import Issuer
from tests.support.cli_fiscal import THREE, FiscalFiles, run_caixa
from tests.support.fiscal import fiscal_settings
from tooling.fiscal_documents import ACCESS_KEY, ISSUER, RECIPIENT, Signer, cancellation, invoice


def merchant() -> str:
    return f"client-{uuid.uuid4().hex[:10]}"


def failure(call: Callable[[], object]) -> CaixaError:
    with pytest.raises(CaixaError) as raised:
        call()
    return raised.value


async def test_the_blocking_client_answers_every_rpc(
    fiscal_server: str, nfe_signer: Signer
) -> None:
    document = invoice(nfe_signer, installments=THREE)
    buyer = merchant()

    def scenario() -> None:
        with FiscalClient(fiscal_server) as client:
            report = client.validate_document(document)
            assert report.valid and report.access_key == ACCESS_KEY
            assert report.signature.status == pb.SIGNATURE_STATUS_INTEGRITY_ONLY
            summary = client.summarize_document(document)
            assert [i.amount_cents for i in summary.installments] == [10000, 10000, 14728]

            booked = client.process_document(buyer, document, merchant_document=RECIPIENT)
            assert (booked.status, booked.kind) == (pb.DOCUMENT_STATUS_ACCEPTED, pb.KIND_DEBIT)
            assert client.process_document(buyer, document, merchant_document=RECIPIENT) == booked
            assert client.get_document(buyer, ACCESS_KEY) == booked

            reports = list(
                client.validate_documents(iter([document, b"not xml", cancellation(nfe_signer)]))
            )
            assert [(r.valid, r.document_type) for r in reports] == [
                (True, pb.DOCUMENT_TYPE_NFE),
                (False, pb.DOCUMENT_TYPE_UNSPECIFIED),
                (True, pb.DOCUMENT_TYPE_CANCELLATION),
            ]
            answers = list(client.summarize_documents([b"<broken", document]))
            assert [a.WhichOneof("result") for a in answers] == ["error", "summary"]

    await asyncio.to_thread(scenario)


async def test_the_blocking_clients_errors_name_the_field(fiscal_server: str) -> None:
    def scenario() -> None:
        with FiscalClient(fiscal_server) as client:
            error = failure(lambda: client.validate_document(b"<broken"))
            assert error.code is grpc.StatusCode.INVALID_ARGUMENT
            assert [field for field, _ in error.field_violations] == ["document"]
            error = failure(lambda: client.get_document("m", "short"))
            assert [field for field, _ in error.field_violations] == ["access_key"]
            error = failure(lambda: client.get_document(merchant(), ACCESS_KEY))
            assert error.code is grpc.StatusCode.NOT_FOUND
            with pytest.raises(TypeError, match="not one document"):
                client.validate_documents(b"<NFe/>")  # type: ignore[arg-type]

    await asyncio.to_thread(scenario)


async def test_the_asyncio_client_streams_an_async_iterable_in_order(
    fiscal_server: str, nfe_signer: Signer
) -> None:
    seller = merchant()

    async def documents() -> AsyncIterator[bytes]:
        for data in (invoice(nfe_signer), b"", invoice(nfe_signer, wrapped=False)):
            yield data

    async with AsyncFiscalClient(fiscal_server) as client:
        reports = [r async for r in client.validate_documents(documents())]
        assert [r.valid for r in reports] == [True, False, True]
        assert "required" in reports[1].findings[0].message
        answers = [a async for a in client.summarize_documents([invoice(nfe_signer)])]
        assert answers[0].summary.totals_cents["vNF"] == 34728

        booked = await client.process_document(
            seller, invoice(nfe_signer), merchant_document=ISSUER
        )
        assert booked.kind == pb.KIND_CREDIT and len(booked.entries) == 1
        assert await client.get_document(seller, ACCESS_KEY) == booked
        with pytest.raises(CaixaError) as raised:
            await client.summarize_document(cancellation(nfe_signer))
        assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT


# --- a fiscal that checks tokens ------------------------------------------------


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer.create(tmp_path_factory.mktemp("fiscal-auth"))


@pytest.fixture(scope="module")
async def guarded_fiscal(issuer: Issuer, make_database: Callable[[str], str]) -> AsyncIterator[str]:
    url = await asyncio.to_thread(make_database, "client_fiscal_auth")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    app = FiscalApp(fiscal_settings(url, **issuer.settings()), serve=True, dispatch=False)
    await app.start()
    yield app.server.address
    await app.stop()


async def test_the_cli_sends_the_callers_token(
    guarded_fiscal: str,
    issuer: Issuer,
    fiscal_files: FiscalFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = merchant()
    files = [fiscal_files.invoice(), fiscal_files.invoice("again.xml")]
    validate = ("--fiscal-target", guarded_fiscal, "fiscal", "validate", *files)
    process = (
        "--fiscal-target",
        guarded_fiscal,
        "fiscal",
        "process",
        "--merchant",
        shop,
        "--document",
        ISSUER,
        files[0],
    )
    monkeypatch.delenv("CAIXA_TOKEN", raising=False)

    anonymous = await run_caixa(capsys, *validate)
    assert anonymous.code == REQUEST_REJECTED
    assert anonymous.err.startswith("error: UNAUTHENTICATED")

    reader = issuer.token([shop], ["fiscal:read"])
    read_only = await run_caixa(capsys, "--token", reader, *validate)
    assert read_only.code == REQUEST_REJECTED
    assert read_only.err.startswith("error: PERMISSION_DENIED")

    monkeypatch.setenv("CAIXA_TOKEN", issuer.token(["another-shop"], ["fiscal:write"]))
    run = await run_caixa(capsys, *validate)
    assert run.code == OK, run.err
    assert [r["verdict"] for r in run.rows().values()] == ["valid", "valid"]
    # Processing books for a merchant: only one the token names.
    elsewhere = await run_caixa(capsys, *process)
    assert elsewhere.code == REQUEST_REJECTED
    assert elsewhere.err.startswith("error: PERMISSION_DENIED")

    monkeypatch.setenv("CAIXA_TOKEN", issuer.token([shop], ["fiscal:write", "fiscal:read"]))
    booked = await run_caixa(capsys, *process)
    assert booked.code == OK, booked.err
    assert [r["status"] for r in booked.rows().values()] == ["accepted"]
