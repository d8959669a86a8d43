"""ProcessDocument end to end into a real lancamentos: installments booked on their
due dates, credits for sales and debits for purchases, once whatever the replays,
reversed by a cancellation, and never lost while lancamentos is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from fiscal.v1 import fiscal_pb2 as pb
from lancamentos.v1 import lancamentos_pb2 as lpb
from sqlalchemy import text

from services.fiscal.app import FiscalApp
from services.platform.outbox.dispatcher import OutboxDispatcher
from tests.support.fiscal import process_request, xml
from tests.support.grpc_errors import expect_error, field_violations
from tests.support.tcp_proxy import TcpProxy
from tooling.fiscal_documents import (
    ACCESS_KEY,
    ISSUER,
    RECIPIENT,
    Signer,
    cancellation,
    invoice,
)

if TYPE_CHECKING:
    from fiscal.v1.fiscal_pb2_grpc import FiscalServiceAsyncStub
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

THREE = [
    ("1", "2018-08-24", "100.00"),
    ("2", "2018-09-24", "100.00"),
    ("3", "2018-10-24", "147.28"),
]


async def _settled(
    fiscal: FiscalServiceAsyncStub, merchant: str, within: float = 10.0
) -> pb.FiscalDocument:
    """The document once no entry of it is pending any more."""
    deadline = time.monotonic() + within
    while True:
        found = await fiscal.GetDocument(
            pb.GetDocumentRequest(merchant_id=merchant, access_key=ACCESS_KEY)
        )
        if all(e.state != pb.ENTRY_STATE_PENDING for e in found.entries):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def _ledger(ledger: LancamentosServiceAsyncStub, merchant: str) -> list[lpb.Lancamento]:
    page = await ledger.ListLancamentos(
        lpb.ListLancamentosRequest(merchant_id=merchant, page_size=100)
    )
    return sorted(page.lancamentos, key=lambda e: (e.value_date, e.sequence))


async def test_an_outgoing_invoice_with_three_installments_is_three_credits_on_their_dates(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    booked = await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=THREE), ISSUER)
    )
    assert booked.status in (pb.DOCUMENT_STATUS_ACCEPTED, pb.DOCUMENT_STATUS_POSTED), booked
    assert booked.kind == pb.KIND_CREDIT and booked.total_cents == 34728
    assert [e.request_id for e in booked.entries] == [f"nfe:{ACCESS_KEY}:{n}" for n in "123"]
    settled = await _settled(fiscal, merchant)
    assert settled.status == pb.DOCUMENT_STATUS_POSTED
    entries = await _ledger(ledger, merchant)
    assert [(e.kind, e.value_date, e.amount_cents) for e in entries] == [
        (lpb.KIND_CREDIT, "2018-08-24", 10000),
        (lpb.KIND_CREDIT, "2018-09-24", 10000),
        (lpb.KIND_CREDIT, "2018-10-24", 14728),
    ]
    assert {e.lancamento_id for e in settled.entries} == {e.lancamento_id for e in entries}


async def test_an_invoice_the_merchant_received_is_a_debit(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    booked = await fiscal.ProcessDocument(process_request(merchant, invoice(signer), RECIPIENT))
    assert booked.kind == pb.KIND_DEBIT
    await _settled(fiscal, merchant)
    entries = await _ledger(ledger, merchant)
    assert [(e.kind, e.value_date, e.amount_cents) for e in entries] == [
        (lpb.KIND_DEBIT, "2018-08-24", 34728)
    ]


async def test_replays_and_concurrent_duplicates_book_once(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    document = invoice(signer, installments=THREE)
    answers = await asyncio.gather(
        *(fiscal.ProcessDocument(process_request(merchant, document, ISSUER)) for _ in range(8))
    )
    assert {tuple(e.request_id for e in a.entries) for a in answers} == {
        tuple(f"nfe:{ACCESS_KEY}:{n}" for n in "123")
    }
    await _settled(fiscal, merchant)
    again = await fiscal.ProcessDocument(process_request(merchant, document, ISSUER))
    assert again.status == pb.DOCUMENT_STATUS_POSTED and len(again.entries) == 3
    assert len(await _ledger(ledger, merchant)) == 3


async def test_a_crash_after_lancamentos_answered_books_nothing_twice(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    fiscal_app: FiscalApp,
    signer: Signer,
    merchant: str,
) -> None:
    """The dispatcher died after lancamentos booked the entries but before its own
    commit: the postings are pending again, are sent again, and lancamentos'
    dedupe on the derived request_id answers the same entries."""
    await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=THREE), ISSUER)
    )
    first = await _settled(fiscal, merchant)
    async with fiscal_app.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE postings SET delivered_at = NULL, lancamento_id = NULL"
                " WHERE merchant_id = :m"
            ),
            {"m": merchant},
        )
    await dispatcher_of(fiscal_app).dispatch_once()
    second = await _settled(fiscal, merchant)
    assert [e.lancamento_id for e in second.entries] == [e.lancamento_id for e in first.entries]
    assert len(await _ledger(ledger, merchant)) == 3


def dispatcher_of(app: FiscalApp) -> OutboxDispatcher:
    assert app.dispatcher is not None
    return app.dispatcher


async def test_a_cancellation_reverses_every_entry(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=THREE), ISSUER)
    )
    await _settled(fiscal, merchant)
    cancelled = await fiscal.ProcessDocument(
        process_request(merchant, cancellation(signer), ISSUER)
    )
    assert cancelled.status == pb.DOCUMENT_STATUS_CANCELLED
    settled = await _settled(fiscal, merchant)
    reversals = [e for e in settled.entries if e.reversal]
    assert len(reversals) == 3 and all(e.state == pb.ENTRY_STATE_POSTED for e in reversals)
    entries = await _ledger(ledger, merchant)
    credits = sum(e.amount_cents for e in entries if e.kind == lpb.KIND_CREDIT)
    debits = sum(e.amount_cents for e in entries if e.kind == lpb.KIND_DEBIT)
    assert len(entries) == 6 and credits == debits == 34728
    # Future installments vanish on their own dates; the cancellation is on 2018-08-07.
    assert sorted(e.value_date for e in entries if e.reverses_lancamento_id) == [
        "2018-08-24",
        "2018-09-24",
        "2018-10-24",
    ]
    # A second copy of the event changes nothing.
    again = await fiscal.ProcessDocument(process_request(merchant, cancellation(signer), ISSUER))
    assert len(again.entries) == 6
    assert len(await _ledger(ledger, merchant)) == 6


async def test_a_cancellation_before_its_invoice_keeps_it_from_being_booked(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    first = await fiscal.ProcessDocument(process_request(merchant, cancellation(signer), ISSUER))
    assert first.status == pb.DOCUMENT_STATUS_CANCELLED and not first.entries
    late = await fiscal.ProcessDocument(process_request(merchant, invoice(signer), ISSUER))
    assert late.status == pb.DOCUMENT_STATUS_CANCELLED and not late.entries
    assert await _ledger(ledger, merchant) == []


async def test_with_lancamentos_down_the_document_is_accepted_then_posted(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    ledger_proxy: TcpProxy,
    signer: Signer,
    merchant: str,
) -> None:
    await ledger_proxy.cut()
    booked = await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=THREE), ISSUER)
    )
    assert booked.status == pb.DOCUMENT_STATUS_ACCEPTED
    # A cancellation meanwhile waits behind the entries it reverses.
    await fiscal.ProcessDocument(process_request(merchant, cancellation(signer), ISSUER))
    await asyncio.sleep(0.5)  # the dispatcher fails and backs off meanwhile
    pending = await fiscal.GetDocument(
        pb.GetDocumentRequest(merchant_id=merchant, access_key=ACCESS_KEY)
    )
    assert [e.state for e in pending.entries] == [pb.ENTRY_STATE_PENDING] * 6
    await ledger_proxy.restore()
    settled = await _settled(fiscal, merchant, within=15)
    assert all(e.state == pb.ENTRY_STATE_POSTED for e in settled.entries)
    assert len(await _ledger(ledger, merchant)) == 6


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda s: invoice(s, status="110"), "not authorized: cStat 110"),
        (lambda s: invoice(s, wrapped=False), "no authorization protocol"),
        (lambda s: invoice(Signer.self_signed("11222333000181")), "SEFAZ 213"),
    ],
    ids=["denied", "bare-nfe", "other-certificate"],
)
async def test_unbookable_documents_are_rejected_with_the_reason(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str, build: object, reason: str
) -> None:
    data = build(signer)  # type: ignore[operator]
    rejected = await fiscal.ProcessDocument(process_request(merchant, data, ISSUER))
    assert rejected.status == pb.DOCUMENT_STATUS_REJECTED and reason in rejected.reason
    assert not rejected.entries
    stored = await fiscal.GetDocument(
        pb.GetDocumentRequest(merchant_id=merchant, access_key=ACCESS_KEY)
    )
    assert stored.status == pb.DOCUMENT_STATUS_REJECTED


async def test_a_tampered_invoice_is_rejected(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str
) -> None:
    data = invoice(signer).replace(b"FULANO DOS SANTOS", b"FULANO DOS SANTOX")
    rejected = await fiscal.ProcessDocument(process_request(merchant, data, ISSUER))
    assert rejected.status == pb.DOCUMENT_STATUS_REJECTED and "signature invalid" in rejected.reason


async def test_bad_requests_name_their_fields(
    fiscal: FiscalServiceAsyncStub, signer: Signer
) -> None:
    error = await expect_error(
        fiscal.ProcessDocument(process_request("", b"<not xml", "123")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert {"merchant_id"} <= set(field_violations(error))
    error = await expect_error(
        fiscal.ProcessDocument(process_request("m1", invoice(signer), "11222333000181")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "neither the issuer" in field_violations(error)["merchant_document"]
    error = await expect_error(
        fiscal.ProcessDocument(
            process_request("m1", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", ISSUER)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "DTD" in field_violations(error)["document"]
    error = await expect_error(
        fiscal.ProcessDocument(process_request("m-unregistered", invoice(signer))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "no CNPJ is registered" in field_violations(error)["merchant_document"]


async def test_an_unregistered_cancellation_is_refused(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str
) -> None:
    error = await expect_error(
        fiscal.ProcessDocument(
            process_request(merchant, cancellation(signer, status="573"), ISSUER)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "cStat 573" in (error.details() or "")


async def test_a_registered_cnpj_is_used_and_enforced(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str
) -> None:
    registered = await fiscal.RegisterMerchant(
        pb.RegisterMerchantRequest(merchant_id=merchant, document=ISSUER)
    )
    assert (registered.merchant_id, registered.document) == (merchant, ISSUER)
    # No merchant_document: the registered one, so the invoice is a sale.
    booked = await fiscal.ProcessDocument(process_request(merchant, invoice(signer)))
    assert booked.kind == pb.KIND_CREDIT and booked.entries
    # Another valid document than the registered one is refused, naming the field.
    error = await expect_error(
        fiscal.ProcessDocument(process_request(merchant, invoice(signer), RECIPIENT)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "registered" in field_violations(error)["merchant_document"]
    error = await expect_error(
        fiscal.RegisterMerchant(pb.RegisterMerchantRequest(merchant_id=merchant, document="123")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "not a valid CNPJ" in field_violations(error)["document"]


async def test_an_entry_lancamentos_cannot_hold_rejects_the_invoice_at_once(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str
) -> None:
    huge = [("1", "2018-08-24", "100.00"), ("2", "2018-09-24", "20000000000.00")]
    rejected = await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=huge), ISSUER)
    )
    assert rejected.status == pb.DOCUMENT_STATUS_REJECTED and not rejected.entries
    assert "installment 2 is over R$ 10 bi" in rejected.reason


async def test_an_entry_lancamentos_refuses_is_parked_and_the_others_post(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    """Installment 2's request_id is already taken in lancamentos by another
    payload (ALREADY_EXISTS, for good): that entry is parked with the reason, the
    others are delivered, and the document waits, accepted, for an operator."""
    taken = f"nfe:{ACCESS_KEY}:2"
    await ledger.CreateLancamento(
        lpb.CreateLancamentoRequest(
            merchant_id=merchant,
            kind=lpb.KIND_CREDIT,
            amount_cents=1,
            value_date="2018-09-24",
            request_id=taken,
        )
    )
    await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=THREE), ISSUER)
    )
    settled = await _settled(fiscal, merchant)
    states = {e.request_id: e for e in settled.entries}
    assert states[taken].state == pb.ENTRY_STATE_PARKED
    assert states[taken].parked_reason.startswith("ALREADY_EXISTS")
    assert [e.state for r, e in states.items() if r != taken] == [pb.ENTRY_STATE_POSTED] * 2
    assert settled.status == pb.DOCUMENT_STATUS_ACCEPTED
    assert len(await _ledger(ledger, merchant)) == 3  # the taken one, and the two delivered
    # Cancelled: the parked entry's reversal has nothing to reverse, so it is parked
    # too; the two others are reversed.
    await fiscal.ProcessDocument(process_request(merchant, cancellation(signer), ISSUER))
    after = await _settled(fiscal, merchant)
    reversals = {e.request_id: e for e in after.entries if e.reversal}
    assert reversals[f"{taken}:reversal"].state == pb.ENTRY_STATE_PARKED
    assert "nothing to reverse" in reversals[f"{taken}:reversal"].parked_reason
    others = [e.state for r, e in reversals.items() if r != f"{taken}:reversal"]
    assert others == [pb.ENTRY_STATE_POSTED] * 2


async def test_installments_sharing_an_ndup_are_each_booked(
    fiscal: FiscalServiceAsyncStub,
    ledger: LancamentosServiceAsyncStub,
    signer: Signer,
    merchant: str,
) -> None:
    """nDup is optional and nothing makes it unique: keys come from the position."""
    twins = [("001", "2018-08-24", "100.00"), ("001", "2018-09-24", "247.28")]
    booked = await fiscal.ProcessDocument(
        process_request(merchant, invoice(signer, installments=twins), ISSUER)
    )
    assert [e.request_id for e in booked.entries] == [f"nfe:{ACCESS_KEY}:{n}" for n in "12"]
    await _settled(fiscal, merchant)
    entries = await _ledger(ledger, merchant)
    assert [e.amount_cents for e in entries] == [10000, 24728]


async def test_a_hostile_protocol_is_rejected_alone_in_its_batch(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str
) -> None:
    """The protocol lies outside the signature: anyone can make it say anything.
    Stored as rejected; a good invoice booked in the same group commit is not hurt."""
    hostile = invoice(signer).replace(b"<nProt>135180527657478<", b"<nProt>" + b"9" * 25 + b"<")
    other = f"{merchant}-b"
    bad, good = await asyncio.gather(
        fiscal.ProcessDocument(process_request(merchant, hostile, ISSUER)),
        fiscal.ProcessDocument(process_request(other, invoice(signer), ISSUER)),
    )
    assert bad.status == pb.DOCUMENT_STATUS_REJECTED and "xsd" in bad.reason
    assert good.status in (pb.DOCUMENT_STATUS_ACCEPTED, pb.DOCUMENT_STATUS_POSTED)


async def test_amounts_that_are_no_numbers_are_findings_not_failures(
    fiscal: FiscalServiceAsyncStub, signer: Signer, merchant: str
) -> None:
    nan = invoice(signer).replace(b"<vNF>347.28</vNF>", b"<vNF>NaN</vNF>")
    report = await fiscal.ValidateDocument(pb.ValidateDocumentRequest(document=xml(nan)))
    assert not report.valid and "xsd" in {f.code for f in report.findings}
    rejected = await fiscal.ProcessDocument(process_request(merchant, nan, ISSUER))
    assert rejected.status == pb.DOCUMENT_STATUS_REJECTED
    huge = invoice(signer).replace(b"<vNF>347.28</vNF>", b"<vNF>" + b"9" * 20 + b"</vNF>")

    async def requests() -> AsyncIterator[pb.SummarizeDocumentsRequest]:
        for data in (huge, invoice(signer)):
            yield pb.SummarizeDocumentsRequest(document=xml(data))

    answers = [a async for a in fiscal.SummarizeDocuments(requests())]
    assert [a.WhichOneof("result") for a in answers] == ["summary", "summary"]
    assert "vNF" not in answers[0].summary.totals_cents  # no amount of the layout
    assert answers[1].summary.totals_cents["vNF"] == 34728
