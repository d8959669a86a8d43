"""Entries, feed sequence and outbox.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE lancamento_feed_seq")
    op.create_table(
        "lancamentos",
        sa.Column("lancamento_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "sequence",
            sa.BigInteger,
            nullable=False,
            unique=True,
            server_default=sa.text("nextval('lancamento_feed_seq')"),
        ),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "reverses_lancamento_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("lancamentos.lancamento_id"),
            nullable=True,
        ),
        sa.UniqueConstraint("merchant_id", "request_id", name="lancamentos_idempotency_key"),
        sa.CheckConstraint("kind IN (1, 2)", name="lancamentos_kind_valid"),
        sa.CheckConstraint("amount_cents > 0", name="lancamentos_amount_positive"),
        sa.CheckConstraint("currency = 'BRL'", name="lancamentos_currency_brl"),
    )
    op.create_index(
        "lancamentos_by_merchant_date", "lancamentos", ["merchant_id", "value_date", "sequence"]
    )
    op.create_index(
        "lancamentos_reversed_once",
        "lancamentos",
        ["reverses_lancamento_id"],
        unique=True,
        postgresql_where=sa.text("reverses_lancamento_id IS NOT NULL"),
    )
    op.create_table(
        "outbox",
        sa.Column("outbox_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "lancamento_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("lancamentos.lancamento_id"),
            nullable=False,
        ),
        sa.Column("traceparent", sa.Text, nullable=True),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("lancamentos")
    op.execute("DROP SEQUENCE lancamento_feed_seq")
