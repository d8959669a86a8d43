"""Documents, their postings (the outbox towards lancamentos), the merchant
registry and the audit trail.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.platform.audit_schema import AUDIT_DROP_V1, AUDIT_SCHEMA_V1

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_TS = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("merchant_id", sa.String(64), primary_key=True),
        sa.Column("access_key", sa.String(44), primary_key=True),
        sa.Column("document_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.SmallInteger, nullable=True),
        sa.Column("total_cents", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("issued_at", _TS, nullable=True),
        sa.Column("issuer_document", sa.String(20), nullable=False, server_default=""),
        sa.Column("authorization_protocol", sa.String(20), nullable=False, server_default=""),
        sa.Column(
            "findings", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column("xml", sa.LargeBinary, nullable=True),
        sa.Column("cancellation_xml", sa.LargeBinary, nullable=True),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('accepted', 'posted', 'cancelled', 'rejected')",
            name="documents_status_known",
        ),
    )
    op.create_table(
        "postings",
        sa.Column("posting_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("access_key", sa.String(44), nullable=False),
        sa.Column("installment", sa.String(60), nullable=False),
        sa.Column("reversal", sa.Boolean, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("traceparent", sa.Text, nullable=True),
        sa.Column("lancamento_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("parked_at", _TS, nullable=True),
        sa.Column("parked_reason", sa.Text, nullable=True),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(
            ["merchant_id", "access_key"], ["documents.merchant_id", "documents.access_key"]
        ),
        sa.UniqueConstraint("merchant_id", "request_id", name="postings_request_id"),
        sa.CheckConstraint("kind IN (1, 2)", name="postings_kind_valid"),
        sa.CheckConstraint("amount_cents > 0", name="postings_amount_positive"),
    )
    op.create_index(
        "postings_pending",
        "postings",
        ["posting_id"],
        postgresql_where=sa.text("delivered_at IS NULL AND parked_at IS NULL"),
    )
    op.create_index("postings_of_document", "postings", ["merchant_id", "access_key"])
    op.create_table(
        "merchant_documents",
        sa.Column("merchant_id", sa.String(64), primary_key=True),
        sa.Column("document", sa.String(20), nullable=False),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    for statement in AUDIT_SCHEMA_V1:
        op.execute(statement)


def downgrade() -> None:
    for statement in AUDIT_DROP_V1:
        op.execute(statement)
    op.drop_table("merchant_documents")
    op.drop_table("postings")
    op.drop_table("documents")
