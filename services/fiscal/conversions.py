"""fiscal's domain results → fiscal.v1 messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from fiscal.v1 import fiscal_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from services.fiscal.booking import cents
from services.fiscal.inspection import CANCELLATION, NFCE, NFE, Inspection
from services.fiscal.rules import Severity
from services.fiscal.store import PARKED, POSTED, StoredDocument
from services.fiscal.summary import Party, Summary

DOCUMENT_TYPES = {
    NFE: pb.DOCUMENT_TYPE_NFE,
    NFCE: pb.DOCUMENT_TYPE_NFCE,
    CANCELLATION: pb.DOCUMENT_TYPE_CANCELLATION,
}
SEVERITIES = {Severity.ERROR: pb.SEVERITY_ERROR, Severity.WARNING: pb.SEVERITY_WARNING}
STATUSES = {
    "accepted": pb.DOCUMENT_STATUS_ACCEPTED,
    "posted": pb.DOCUMENT_STATUS_POSTED,
    "cancelled": pb.DOCUMENT_STATUS_CANCELLED,
    "rejected": pb.DOCUMENT_STATUS_REJECTED,
}
ENTRY_STATES = {POSTED: pb.ENTRY_STATE_POSTED, PARKED: pb.ENTRY_STATE_PARKED}


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def report(found: Inspection) -> pb.ValidationReport:
    signature = found.signature
    return pb.ValidationReport(
        valid=found.valid,
        document_type=DOCUMENT_TYPES.get(found.document_type, pb.DOCUMENT_TYPE_UNSPECIFIED),
        access_key=found.access_key,
        findings=[
            pb.Finding(code=f.code, severity=SEVERITIES[f.severity], path=f.path, message=f.message)
            for f in found.findings
        ],
        signature=pb.Signature(
            status=f"SIGNATURE_STATUS_{signature.status.name}",
            message=signature.message,
            certificate_cnpj=signature.certificate_cnpj,
            issuer_matches=bool(signature.issuer_matches),
        ),
    )


def _party(party: Party | None) -> pb.Party | None:
    return (
        None if party is None else pb.Party(document=party.document, name=party.name, uf=party.uf)
    )


def _cents(values: Mapping[str, Decimal]) -> dict[str, int]:
    return {name: cents(value) for name, value in values.items()}


def summary_message(read: Summary) -> pb.DocumentSummary:
    protocol = read.protocol
    return pb.DocumentSummary(
        access_key=read.access_key,
        document_type=DOCUMENT_TYPES.get(
            {"55": NFE, "65": NFCE}.get(read.model, ""), pb.DOCUMENT_TYPE_UNSPECIFIED
        ),
        model=read.model,
        series=read.series,
        number=read.number,
        issued_at=_timestamp(read.issued_at),
        direction=read.direction,
        nature=read.nature,
        environment=read.environment,
        issuer=_party(read.issuer),
        recipient=_party(read.recipient),
        totals_cents=_cents(read.totals),
        ibs_cbs_totals_cents=_cents(read.ibs_cbs_totals),
        item_count=read.item_count,
        payments=[
            pb.Payment(kind=p.kind, label=p.label, amount_cents=cents(p.amount))
            for p in read.payments
        ],
        change_cents=cents(read.change),
        installments=[
            pb.Installment(
                number=i.number, due_date=i.due.isoformat(), amount_cents=cents(i.amount)
            )
            for i in read.installments
        ],
        protocol=None
        if protocol is None
        else pb.AuthorizationProtocol(
            status=protocol.status,
            number=protocol.number,
            received_at=_timestamp(protocol.received_at),
            reason=protocol.reason,
            authorized=protocol.authorized,
        ),
    )


def document_message(found: StoredDocument) -> pb.FiscalDocument:
    return pb.FiscalDocument(
        merchant_id=found.merchant_id,
        access_key=found.access_key,
        document_type=DOCUMENT_TYPES.get(found.document_type, pb.DOCUMENT_TYPE_UNSPECIFIED),
        status=STATUSES[found.status],
        reason=found.reason,
        kind=int(found.kind) if found.kind else pb.KIND_UNSPECIFIED,  # type: ignore[arg-type]
        total_cents=found.total_cents,
        issued_at=_timestamp(found.issued_at),
        updated_at=_timestamp(found.updated_at),
        entries=[
            pb.Entry(
                installment=e.installment,
                reversal=e.reversal,
                kind=int(e.kind),  # type: ignore[arg-type]
                amount_cents=e.amount_cents,
                value_date=e.value_date.isoformat(),
                request_id=e.request_id,
                state=ENTRY_STATES.get(e.state, pb.ENTRY_STATE_PENDING),
                lancamento_id=str(e.lancamento_id or ""),
                parked_reason=e.parked_reason,
            )
            for e in found.entries
        ],
        findings=[
            pb.Finding(
                code=f["code"],
                severity=f"SEVERITY_{f['severity']}",
                path=f["path"],
                message=f["message"],
            )
            for f in found.findings
        ],
    )
