"""`ListAuditRecords`, as both services serve it over their own trail."""

from __future__ import annotations

from audit.v1 import audit_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncEngine

from services.domain import rules
from services.domain.errors import ViolationCollector
from services.platform import audit
from services.platform.auth import ALL_MERCHANTS

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


async def list_audit_records(
    engine: AsyncEngine, request: pb.ListAuditRecordsRequest
) -> pb.ListAuditRecordsResponse:
    errors = ViolationCollector()
    if request.merchant_id != ALL_MERCHANTS:
        rules.check_merchant_id(errors, "merchant_id", request.merchant_id)
    if request.after_position < 0:
        errors.add("after_position", f"must be 0 or more, got {request.after_position}")
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        errors.add("page_size", f"must be between 0 and {MAX_PAGE_SIZE}, got {request.page_size}")
    errors.raise_if_any()
    async with engine.connect() as conn:
        records, head = await audit.page(
            conn,
            request.merchant_id,
            request.after_position,
            request.page_size or DEFAULT_PAGE_SIZE,
        )
    return pb.ListAuditRecordsResponse(
        audit_records=[_to_proto(r) for r in records],
        head_position=head.position,
        head_hash=head.hash,
    )


def _to_proto(record: audit.Record) -> pb.AuditRecord:
    recorded_at = Timestamp()
    recorded_at.FromDatetime(record.recorded_at)
    return pb.AuditRecord(
        merchant_id=record.merchant_id,
        position=record.position,
        recorded_at=recorded_at,
        subject=record.subject,
        rpc=record.rpc,
        request_id=record.request_id,
        entry_ids=[str(i) for i in record.entry_ids],
        outcome=record.outcome,
        trace_id=record.trace_id,
        hash=record.hash,
    )
