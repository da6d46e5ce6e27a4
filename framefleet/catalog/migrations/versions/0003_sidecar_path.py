"""Remember which sidecar described each file, so a second sidecar cannot silently relabel it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before this revision, and videos added without a sidecar, have none.
    op.add_column("files", sa.Column("sidecar_path", sa.String(length=4096), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("sidecar_path")
