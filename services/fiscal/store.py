"""SQL of the fiscal database: documents under a row lock, their postings, and
the registry of merchants' CNPJs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.fiscal.booking import Kind, Posting
from services.fiscal.tables import documents, merchant_documents, postings

NOTIFY_CHANNEL = "fiscal_postings"

PENDING = "pending"
POSTED = "posted"
PARKED = "parked"


@dataclass(frozen=True)
class StoredEntry:
    installment: str
    reversal: bool
    kind: Kind
    amount_cents: int
    value_date: date
    request_id: str
    state: str  # pending, posted, parked
    lancamento_id: UUID | None
    parked_reason: str


@dataclass(frozen=True)
class StoredDocument:
    merchant_id: str
    access_key: str
    document_type: str
    status: str
    reason: str
    kind: Kind | None
    total_cents: int
    issued_at: datetime | None
    issuer_document: str
    authorization_protocol: str
    findings: list[dict[str, str]]
    updated_at: datetime
    entries: list[StoredEntry] = field(default_factory=list)


async def lock_document(
    conn: AsyncConnection, merchant_id: str, access_key: str
) -> StoredDocument | None:
    """The document, locked until the transaction ends (concurrent processing of
    the same key waits here, then sees what the first one did)."""
    row = (
        await conn.execute(
            select(documents)
            .where(documents.c.merchant_id == merchant_id)
            .where(documents.c.access_key == access_key)
            .with_for_update()
        )
    ).one_or_none()
    return None if row is None else _document(row._mapping)


async def claim_key(conn: AsyncConnection, merchant_id: str, access_key: str, kind: str) -> None:
    """Makes sure the row exists so that `lock_document` has something to lock:
    two first submissions serialize on the primary key."""
    await conn.execute(
        insert(documents)
        .values(
            merchant_id=merchant_id, access_key=access_key, document_type=kind, status="rejected"
        )
        .on_conflict_do_nothing()
    )


async def insert_document(
    conn: AsyncConnection, merchant_id: str, access_key: str, values: Mapping[str, Any]
) -> bool:
    """Writes a document not seen before, and says whether it was new: when it was,
    this transaction holds its row (the first submission needs no other lock)."""
    inserted = await conn.execute(
        insert(documents)
        .values(merchant_id=merchant_id, access_key=access_key, **values)
        .on_conflict_do_nothing()
        .returning(documents.c.access_key)
    )
    return inserted.first() is not None


async def save_document(
    conn: AsyncConnection, merchant_id: str, access_key: str, **values: Any
) -> None:
    await conn.execute(
        update(documents)
        .where(documents.c.merchant_id == merchant_id)
        .where(documents.c.access_key == access_key)
        .values(updated_at=func.now(), **values)
    )


async def add_postings(
    conn: AsyncConnection,
    merchant_id: str,
    access_key: str,
    found: Sequence[Posting],
    traceparent: str | None,
) -> None:
    if not found:
        return
    await conn.execute(
        insert(postings)
        .values(
            [
                {
                    "merchant_id": merchant_id,
                    "access_key": access_key,
                    "installment": p.installment,
                    "reversal": p.reversal,
                    "kind": int(p.kind),
                    "amount_cents": p.amount_cents,
                    "value_date": p.value_date,
                    "description": p.description,
                    "request_id": p.request_id,
                    "traceparent": traceparent,
                }
                for p in found
            ]
        )
        .on_conflict_do_nothing(constraint="postings_request_id")
    )


async def entries_of(conn: AsyncConnection, merchant_id: str, access_key: str) -> list[StoredEntry]:
    rows = await conn.execute(
        select(postings)
        .where(postings.c.merchant_id == merchant_id)
        .where(postings.c.access_key == access_key)
        .order_by(postings.c.posting_id)
    )
    return [_entry(row._mapping) for row in rows]


async def get_document(
    conn: AsyncConnection, merchant_id: str, access_key: str
) -> StoredDocument | None:
    row = (
        await conn.execute(
            select(documents)
            .where(documents.c.merchant_id == merchant_id)
            .where(documents.c.access_key == access_key)
        )
    ).one_or_none()
    if row is None:
        return None
    found = _document(row._mapping)
    found.entries.extend(await entries_of(conn, merchant_id, access_key))
    return found


async def registered_document(conn: AsyncConnection, merchant_id: str) -> str | None:
    return (
        await conn.execute(
            select(merchant_documents.c.document).where(
                merchant_documents.c.merchant_id == merchant_id
            )
        )
    ).scalar_one_or_none()


async def register(conn: AsyncConnection, merchant_id: str, document: str) -> None:
    statement = insert(merchant_documents).values(merchant_id=merchant_id, document=document)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["merchant_id"], set_={"document": statement.excluded.document}
        )
    )


def _document(row: Any) -> StoredDocument:
    return StoredDocument(
        merchant_id=row["merchant_id"],
        access_key=row["access_key"],
        document_type=row["document_type"],
        status=row["status"],
        reason=row["reason"],
        kind=Kind(row["kind"]) if row["kind"] else None,
        total_cents=row["total_cents"],
        issued_at=row["issued_at"],
        issuer_document=row["issuer_document"],
        authorization_protocol=row["authorization_protocol"],
        findings=list(row["findings"]),
        updated_at=row["updated_at"],
    )


def _entry(row: Any) -> StoredEntry:
    state = POSTED if row["delivered_at"] else PARKED if row["parked_at"] else PENDING
    return StoredEntry(
        installment=row["installment"],
        reversal=row["reversal"],
        kind=Kind(row["kind"]),
        amount_cents=row["amount_cents"],
        value_date=row["value_date"],
        request_id=row["request_id"],
        state=state,
        lancamento_id=row["lancamento_id"],
        parked_reason=row["parked_reason"] or "",
    )
