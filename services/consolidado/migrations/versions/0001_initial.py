"""Applied entries (dedupe) and daily totals.

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
    op.create_table(
        "applied_lancamentos",
        sa.Column("lancamento_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column(
            "applied_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.CheckConstraint("kind IN (1, 2)", name="applied_lancamentos_kind_valid"),
        sa.CheckConstraint("amount_cents > 0", name="applied_lancamentos_amount_positive"),
    )
    op.create_index(
        "applied_lancamentos_by_merchant",
        "applied_lancamentos",
        ["merchant_id", "value_date"],
    )
    op.create_table(
        "daily_totals",
        sa.Column("merchant_id", sa.String(64), primary_key=True),
        sa.Column("value_date", sa.Date, primary_key=True),
        sa.Column("credits_cents", sa.BigInteger, nullable=False),
        sa.Column("debits_cents", sa.BigInteger, nullable=False),
        sa.Column("lancamentos_count", sa.BigInteger, nullable=False),
        sa.Column("as_of", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint("credits_cents >= 0", name="daily_totals_credits_not_negative"),
        sa.CheckConstraint("debits_cents >= 0", name="daily_totals_debits_not_negative"),
        sa.CheckConstraint("lancamentos_count > 0", name="daily_totals_count_positive"),
    )


def downgrade() -> None:
    op.drop_table("daily_totals")
    op.drop_table("applied_lancamentos")
