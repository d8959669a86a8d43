"""Each merchant's booked volume, bounded so that no sum can overflow.

Backfilled from the entries already booked.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

MAX_MERCHANT_VOLUME_CENTS = 2**63 - 1  # services.domain.rules, as of this revision


def upgrade() -> None:
    op.create_table(
        "merchant_volumes",
        sa.Column("merchant_id", sa.String(64), primary_key=True),
        sa.Column("booked_cents", sa.Numeric(20, 0), nullable=False),
        sa.CheckConstraint(
            f"booked_cents <= {MAX_MERCHANT_VOLUME_CENTS}", name="merchant_volumes_bounded"
        ),
    )
    op.execute(
        "INSERT INTO merchant_volumes (merchant_id, booked_cents) "
        "SELECT merchant_id, sum(amount_cents) FROM lancamentos GROUP BY merchant_id"
    )


def downgrade() -> None:
    op.drop_table("merchant_volumes")
