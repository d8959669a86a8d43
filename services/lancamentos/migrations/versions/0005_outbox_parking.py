"""Park outbox rows consolidado refuses for good, so they stop blocking the queue.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("parked_at", TIMESTAMP(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("parked_reason", sa.Text, nullable=True))
    op.create_index(
        "outbox_queued", "outbox", ["outbox_id"], postgresql_where=sa.text("parked_at IS NULL")
    )


def downgrade() -> None:
    op.drop_index("outbox_queued", "outbox")
    op.drop_column("outbox", "parked_reason")
    op.drop_column("outbox", "parked_at")
