"""The audit trail: a hash-chained, append-only record of every mutation.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

from services.platform.audit_schema import AUDIT_DROP_V1, AUDIT_SCHEMA_V1

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    for statement in AUDIT_SCHEMA_V1:
        op.execute(statement)


def downgrade() -> None:
    for statement in AUDIT_DROP_V1:
        op.execute(statement)
