"""ValidateDocument, SummarizeDocument and their streams over real gRPC: the reports
and summaries of nfelib's samples, and hostile XML refused fast with the field named."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from fiscal.v1 import fiscal_pb2 as pb

from tests.services.fiscal.samples import sample_paths
from tests.support.fiscal import xml
from tests.support.grpc_errors import expect_error, field_violations
from tooling.fiscal_documents import ACCESS_KEY, ISSUER, Signer, cancellation, invoice

if TYPE_CHECKING:
    from fiscal.v1.fiscal_pb2_grpc import FiscalServiceAsyncStub

LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<NFe xmlns="http://www.portalfiscal.inf.br/nfe">&lol3;</NFe>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE NFe [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<NFe xmlns="http://www.portalfiscal.inf.br/nfe">&x;</NFe>"""
DEEP = (
    b"<NFe xmlns='http://www.portalfiscal.inf.br/nfe'>" + b"<a>" * 100 + b"</a>" * 100 + b"</NFe>"
)


async def test_a_signed_invoice_is_valid_and_integrity_only(
    fiscal: FiscalServiceAsyncStub, signer: Signer
) -> None:
    report = await fiscal.ValidateDocument(
        pb.ValidateDocumentRequest(document=xml(invoice(signer)))
    )
    assert report.valid and not report.findings
    assert report.document_type == pb.DOCUMENT_TYPE_NFE and report.access_key == ACCESS_KEY
    assert report.signature.status == pb.SIGNATURE_STATUS_INTEGRITY_ONLY
    assert report.signature.certificate_cnpj == ISSUER and report.signature.issuer_matches


async def test_a_cancellation_validates_as_one(
    fiscal: FiscalServiceAsyncStub, signer: Signer
) -> None:
    report = await fiscal.ValidateDocument(
        pb.ValidateDocumentRequest(document=xml(cancellation(signer)))
    )
    assert report.valid and report.document_type == pb.DOCUMENT_TYPE_CANCELLATION
    assert report.signature.status == pb.SIGNATURE_STATUS_INTEGRITY_ONLY


async def test_a_broken_key_digit_is_253(fiscal: FiscalServiceAsyncStub, signer: Signer) -> None:
    wrong = ACCESS_KEY[:-1] + str((int(ACCESS_KEY[-1]) + 1) % 10)
    data = invoice(signer).replace(f"NFe{ACCESS_KEY}".encode(), f"NFe{wrong}".encode())
    report = await fiscal.ValidateDocument(pb.ValidateDocumentRequest(document=xml(data)))
    assert not report.valid and "253" in {f.code for f in report.findings}
    assert report.signature.status == pb.SIGNATURE_STATUS_INVALID


async def _stream(paths: list[bytes]) -> AsyncIterator[pb.ValidateDocumentsRequest]:
    for data in paths:
        yield pb.ValidateDocumentsRequest(document=xml(data))


async def test_the_stream_reports_every_sample_in_order(fiscal: FiscalServiceAsyncStub) -> None:
    documents = [p.read_bytes() for p in sample_paths()]
    documents.insert(3, b"not xml at all")  # one bad document does not end the stream
    reports = [r async for r in fiscal.ValidateDocuments(_stream(documents))]
    assert len(reports) == len(documents)
    assert reports[3].findings[0].code == "caixa:document" and not reports[3].valid
    # nfelib's samples were edited after signing: none of their signatures holds.
    signed = [
        r
        for i, r in enumerate(reports)
        if i != 3 and r.signature.status != pb.SIGNATURE_STATUS_ABSENT
    ]
    assert signed and all(r.signature.status == pb.SIGNATURE_STATUS_INVALID for r in signed)
    keys = [r.access_key for i, r in enumerate(reports) if i != 3]
    assert all(len(k) == 44 for k in keys)


async def test_a_summary_says_what_the_invoice_says(
    fiscal: FiscalServiceAsyncStub, signer: Signer
) -> None:
    data = invoice(
        signer, installments=[("1", "2018-08-24", "100.00"), ("2", "2018-09-24", "247.28")]
    )
    read = await fiscal.SummarizeDocument(pb.SummarizeDocumentRequest(document=xml(data)))
    assert (read.model, read.series, read.number, read.direction) == ("55", "1", "47428", "1")
    assert read.issuer.document == ISSUER and read.recipient.uf == "MG"
    assert read.totals_cents["vNF"] == 34728 and read.item_count >= 1
    assert [(p.kind, p.label, p.amount_cents) for p in read.payments] == [
        ("15", "Boleto Bancário", 34728)
    ]
    assert [(i.number, i.due_date, i.amount_cents) for i in read.installments] == [
        ("1", "2018-08-24", 10000),
        ("2", "2018-09-24", 24728),
    ]
    assert read.protocol.authorized and read.protocol.number == "135180527657478"


async def test_the_summary_stream_answers_each_document(
    fiscal: FiscalServiceAsyncStub, signer: Signer
) -> None:
    async def requests() -> AsyncIterator[pb.SummarizeDocumentsRequest]:
        for data in (invoice(signer), b"<broken", cancellation(signer)):
            yield pb.SummarizeDocumentsRequest(document=xml(data))

    answers = [a async for a in fiscal.SummarizeDocuments(requests())]
    assert [a.WhichOneof("result") for a in answers] == ["summary", "error", "error"]
    assert "not well-formed" in answers[1].error and "cancellation" in answers[2].error


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (LAUGHS, "DTD"),
        (XXE, "DTD"),
        (DEEP, "deeper"),
        (b"\x00\xffnot xml", "not well-formed"),
        (b"<html><body/></html>", "root element"),
        (b"", "required"),
    ],
    ids=["billion-laughs", "xxe", "deep", "binary", "wrong-root", "empty"],
)
async def test_hostile_xml_is_refused_fast_naming_the_document(
    fiscal: FiscalServiceAsyncStub, data: bytes, words: str
) -> None:
    started = time.monotonic()
    error = await expect_error(
        fiscal.ValidateDocument(pb.ValidateDocumentRequest(document=xml(data))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert time.monotonic() - started < 2.0
    assert words in field_violations(error)["document"]


async def test_a_50_mb_document_is_refused(fiscal: FiscalServiceAsyncStub) -> None:
    """Above the server's 16 MiB message cap gRPC refuses it; between the document cap
    (5 MiB) and that, fiscal does, naming the size."""
    started = time.monotonic()
    huge = await expect_error(
        fiscal.ValidateDocument(pb.ValidateDocumentRequest(document=xml(b"<" * (50 << 20)))),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "larger than max" in (huge.details() or "")
    error = await expect_error(
        fiscal.ValidateDocument(pb.ValidateDocumentRequest(document=xml(b" " * (6 << 20)))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "at most" in field_violations(error)["document"]
    assert time.monotonic() - started < 5.0


async def test_a_document_of_another_content_type_is_refused(
    fiscal: FiscalServiceAsyncStub,
) -> None:
    request = pb.ValidateDocumentRequest()
    request.document.content_type = "application/pdf"
    request.document.data = b"%PDF-1.7"
    error = await expect_error(fiscal.ValidateDocument(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert "application/xml" in field_violations(error)["document"]
