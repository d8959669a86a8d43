"""Checks a merchant's audit chain from its records alone, independently of
the service that wrote it (which hashes in SQL: services.platform.audit_schema).

Record n's hash is sha256(hash of record n-1, or 64 zeros, || canonical(n));
the canonical form is each field, in a fixed order, as `<octet length>:<value>`.
A record edited, deleted or moved breaks the chain at that point; records
cut off the end leave the chain short of its head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC

from audit.v1 import audit_pb2

AuditRecord = audit_pb2.AuditRecord
GENESIS = "0" * 64


def canonical(record: AuditRecord) -> str:
    recorded_at = record.recorded_at.ToDatetime(tzinfo=UTC)
    fields = [
        str(record.position),
        record.merchant_id,
        recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        record.subject,
        record.rpc,
        record.request_id,
        " ".join(record.entry_ids),
        record.outcome,
        record.trace_id,
    ]
    return "".join(f"{len(f.encode())}:{f}" for f in fields)


def chained_hash(previous: str, record: AuditRecord) -> str:
    return hashlib.sha256((previous + canonical(record)).encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    position: int
    reason: str


@dataclass
class Verdict:
    merchant_id: str
    records: int = 0
    head_position: int = 0
    head_hash: str = ""
    breaks: list[Break] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify(merchant_id: str, pages: Iterable[audit_pb2.ListAuditRecordsResponse]) -> Verdict:
    """Walks every page of one merchant's chain, in order, and reports each
    place where it does not hold; the head is the last page's."""
    verdict = Verdict(merchant_id)
    previous, expected = GENESIS, 1
    for page in pages:
        verdict.head_position, verdict.head_hash = page.head_position, page.head_hash
        for record in page.audit_records:
            verdict.records += 1
            if record.merchant_id != merchant_id:
                verdict.breaks.append(
                    Break(record.position, f"belongs to merchant {record.merchant_id!r}")
                )
            if record.position != expected:
                verdict.breaks.append(
                    Break(
                        record.position,
                        f"expected position {expected}: records were deleted or reordered",
                    )
                )
            if chained_hash(previous, record) != record.hash:
                verdict.breaks.append(
                    Break(
                        record.position,
                        "its hash does not match its contents and the record before it: "
                        "it, or the chain before it, was edited",
                    )
                )
            # Go on from what is stored, so one edit is reported once.
            previous, expected = record.hash, record.position + 1
    last = expected - 1
    if last != verdict.head_position:
        verdict.breaks.append(
            Break(
                last,
                f"the chain ends at position {last} but its head is at "
                f"{verdict.head_position}: records were deleted or the head was moved",
            )
        )
    elif last and previous != verdict.head_hash:
        verdict.breaks.append(Break(last, "the last record is not the one the head names"))
    return verdict
