"""Drop the outbox's foreign key to lancamentos.

An outbox row is only ever written by the statement that writes its entry,
and entries are never deleted, so the key protects nothing; its per-row
check was a measurable share of bulk-import time.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("outbox_lancamento_id_fkey", "outbox", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "outbox_lancamento_id_fkey", "outbox", "lancamentos", ["lancamento_id"], ["lancamento_id"]
    )
