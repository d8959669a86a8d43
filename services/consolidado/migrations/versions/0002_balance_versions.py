"""Merchants' balance versions live in PostgreSQL, bumped with the totals.

They were Redis counters bumped after the commit: a bump lost to a
cancellation or a killed pod left a merchant stale until the TTL, and an
evicted counter could reuse a version.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "balance_versions",
        sa.Column("merchant_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("balance_versions")
