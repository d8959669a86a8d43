"""The fiscal database: each document with its status, and the entries it books
(which are also the outbox towards lancamentos)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID

metadata = MetaData()

STATUSES = ("accepted", "posted", "cancelled", "rejected")

documents = Table(
    "documents",
    metadata,
    # Per merchant: the seller and the buyer may both be merchants here.
    Column("merchant_id", String(64), primary_key=True),
    Column("access_key", String(44), primary_key=True),
    Column("document_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("kind", SmallInteger, nullable=True),
    Column("total_cents", BigInteger, nullable=False, server_default="0"),
    Column("issued_at", TIMESTAMP(timezone=True), nullable=True),
    Column("issuer_document", String(20), nullable=False, server_default=""),
    # nProt of the authorization a cancellation must name.
    Column("authorization_protocol", String(20), nullable=False, server_default=""),
    Column("findings", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("xml", LargeBinary, nullable=True),
    Column("cancellation_xml", LargeBinary, nullable=True),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('accepted', 'posted', 'cancelled', 'rejected')", name="documents_status_known"
    ),
)

postings = Table(
    "postings",
    metadata,
    Column("posting_id", BigInteger, Identity(), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("access_key", String(44), nullable=False),
    Column("installment", String(60), nullable=False),
    Column("reversal", Boolean, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("description", String(255), nullable=False),
    Column("request_id", String(128), nullable=False),
    # W3C trace context of the request that booked it, for the dispatcher.
    Column("traceparent", Text, nullable=True),
    # What lancamentos answered: set once delivered.
    Column("lancamento_id", UUID(as_uuid=True), nullable=True),
    Column("delivered_at", TIMESTAMP(timezone=True), nullable=True),
    Column("parked_at", TIMESTAMP(timezone=True), nullable=True),
    Column("parked_reason", Text, nullable=True),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["merchant_id", "access_key"], ["documents.merchant_id", "documents.access_key"]
    ),
    # The idempotency key lancamentos dedupes on, unique here too.
    UniqueConstraint("merchant_id", "request_id", name="postings_request_id"),
    CheckConstraint("kind IN (1, 2)", name="postings_kind_valid"),
    CheckConstraint("amount_cents > 0", name="postings_amount_positive"),
    Index(
        "postings_pending",
        "posting_id",
        postgresql_where=text("delivered_at IS NULL AND parked_at IS NULL"),
    ),
    Index("postings_of_document", "merchant_id", "access_key"),
)

# The CNPJ (or CPF) each merchant books invoices under, when a request names none.
merchant_documents = Table(
    "merchant_documents",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("document", String(20), nullable=False),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False, server_default=func.now()),
)
