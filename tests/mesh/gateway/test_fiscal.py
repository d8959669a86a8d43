"""fiscal through the gateway: raw XML in over REST (google.api.HttpBody), JSON out;
gRPC too; and an invoice's whole path, gateway → fiscal → fiscal's sidecar →
lancamentos → the dispatcher → consolidado, ending in the daily balances."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from fiscal.v1 import fiscal_pb2 as pb
from fiscal.v1 import fiscal_pb2_grpc as pb_grpc

from tests.support.fiscal import xml
from tests.support.rest import Reply, rest
from tests.support.stack import LocalStack
from tooling.fiscal_documents import ACCESS_KEY, ISSUER, Signer, cancellation, invoice

XML = {"content-type": "application/xml"}
THREE = [
    ("1", "2018-08-24", "100.00"),
    ("2", "2018-09-24", "100.00"),
    ("3", "2018-10-24", "147.28"),
]
SIGNER = Signer.self_signed()


async def _post(gateway: LocalStack, action: str, data: bytes, query: str = "") -> Reply:
    return await rest(gateway, "POST", f"/v1/fiscal/documents:{action}{query}", data, headers=XML)


async def test_validate_takes_raw_xml_and_answers_json(gateway: LocalStack) -> None:
    reply = await _post(gateway, "validate", invoice(SIGNER))
    assert reply.status == 200, reply.body
    assert reply.body["valid"] is True and reply.body["access_key"] == ACCESS_KEY
    assert reply.body["document_type"] == "DOCUMENT_TYPE_NFE"
    assert reply.body["signature"]["status"] == "SIGNATURE_STATUS_INTEGRITY_ONLY"


async def test_a_broken_invoice_is_200_with_its_findings(gateway: LocalStack) -> None:
    wrong = ACCESS_KEY[:-1] + str((int(ACCESS_KEY[-1]) + 1) % 10)
    data = invoice(SIGNER).replace(f"NFe{ACCESS_KEY}".encode(), f"NFe{wrong}".encode())
    reply = await _post(gateway, "validate", data)
    assert reply.status == 200, reply.body
    assert reply.body.get("valid", False) is False
    assert "253" in {f["code"] for f in reply.body["findings"]}


async def test_hostile_xml_is_a_400_naming_the_document(gateway: LocalStack) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><NFe>&b;</NFe>'
    reply = await _post(gateway, "validate", laughs)
    assert reply.status == 400, reply.body
    [violation] = reply.body["details"][0]["field_violations"]
    assert violation["field"] == "document" and "DTD" in violation["description"]


async def test_summarize_over_rest(gateway: LocalStack) -> None:
    reply = await _post(gateway, "summarize", invoice(SIGNER, installments=THREE))
    assert reply.status == 200, reply.body
    body = reply.body
    assert body["issuer"]["document"] == ISSUER and body["totals_cents"]["vNF"] == "34728"
    assert [i["due_date"] for i in body["installments"]] == [
        "2018-08-24",
        "2018-09-24",
        "2018-10-24",
    ]


async def _document(gateway: LocalStack, merchant: str) -> dict[str, Any]:
    reply = await rest(gateway, "GET", f"/v1/merchants/{merchant}/fiscal-documents/{ACCESS_KEY}")
    assert reply.status == 200, reply.body
    return dict(reply.body)


async def _posted(gateway: LocalStack, merchant: str, within: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        found = await _document(gateway, merchant)
        if all(e["state"] == "ENTRY_STATE_POSTED" for e in found.get("entries", [])):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.1)


async def _closing(gateway: LocalStack, merchant: str, day: str) -> int:
    reply = await rest(gateway, "GET", f"/v1/merchants/{merchant}/daily-balances/{day}")
    assert reply.status == 200, reply.body
    return int(reply.body["closing_balance_cents"])


async def test_an_invoice_reaches_the_daily_balances_and_its_cancellation_undoes_it(
    gateway: LocalStack, merchant: str
) -> None:
    query = f"?merchant_id={merchant}&merchant_document={ISSUER}"
    reply = await _post(gateway, "process", invoice(SIGNER, installments=THREE), query)
    assert reply.status == 200, reply.body
    assert reply.body["status"] in ("DOCUMENT_STATUS_ACCEPTED", "DOCUMENT_STATUS_POSTED")
    posted = await _posted(gateway, merchant)
    assert posted["status"] == "DOCUMENT_STATUS_POSTED"
    await gateway.mesh.wait_delivered(within_seconds=15)
    assert await _closing(gateway, merchant, "2018-08-24") == 10000
    assert await _closing(gateway, merchant, "2018-10-24") == 34728
    reply = await _post(gateway, "process", cancellation(SIGNER), query)
    assert reply.status == 200 and reply.body["status"] == "DOCUMENT_STATUS_CANCELLED", reply.body
    await _posted(gateway, merchant)
    await gateway.mesh.wait_delivered(within_seconds=15)
    assert await _closing(gateway, merchant, "2018-10-24") == 0


async def test_grpc_through_the_gateway(gateway: LocalStack, merchant: str) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        stub = pb_grpc.FiscalServiceStub(channel)
        report = await stub.ValidateDocument(
            pb.ValidateDocumentRequest(document=xml(invoice(SIGNER))), timeout=10
        )
        assert report.valid

        async def documents() -> Any:
            for _ in range(5):
                yield pb.ValidateDocumentsRequest(document=xml(invoice(SIGNER)))

        reports = [r async for r in stub.ValidateDocuments(documents(), timeout=10)]
        assert len(reports) == 5 and all(r.valid for r in reports)


async def test_a_large_invoice_passes_and_an_oversized_one_is_413(gateway: LocalStack) -> None:
    """Up to fiscal's 5 MiB a document is judged on its content (whitespace after the
    root is still XML); beyond, the gateway refuses it before anything buffers it."""
    large = invoice(SIGNER) + b" " * (3 << 20)
    reply = await _post(gateway, "validate", large)
    assert reply.status == 200 and reply.body["valid"] is True, reply.status
    reply = await _post(gateway, "validate", invoice(SIGNER) + b" " * (6 << 20))
    assert reply.status == 413, (reply.status, reply.body)


PROCESS = "/fiscal.v1.FiscalService/ProcessDocument"
CREATE = "/lancamentos.v1.LancamentosService/CreateLancamento"


def _has(trace: dict[str, Any], service: str, name: str | None = None) -> bool:
    return any(
        s["service"].startswith(service) and (name is None or s["name"] == name)
        for s in [*trace["spans"], *trace["linked"]]
    )


async def test_one_processed_invoice_is_one_trace_into_lancamentos(
    gateway: LocalStack, merchant: str
) -> None:
    """The request, fiscal's outbox delivery it causes, fiscal's egress sidecar and
    lancamentos' create: one trace, as for a create's way into consolidado."""
    query = f"?merchant_id={merchant}&merchant_document={ISSUER}"
    reply = await _post(gateway, "process", invoice(SIGNER, number=77), query)
    assert reply.status == 200, reply.body
    trace_id = reply.headers["x-trace-id"]
    wanted = [
        ("gateway", None),
        ("inbound-fiscal", None),
        ("fiscal", PROCESS),
        ("fiscal", "outbox deliver"),
        ("egress-fiscal", None),
        ("inbound-lancamentos", None),
        ("lancamentos", CREATE),
    ]
    assert gateway.traces is not None
    deadline = time.monotonic() + 15
    while True:
        trace = gateway.traces.store.trace(trace_id)
        missing = [w for w in wanted if trace is None or not _has(trace, *w)]
        if not missing:
            break
        assert time.monotonic() < deadline, (missing, trace)
        await asyncio.sleep(0.2)
