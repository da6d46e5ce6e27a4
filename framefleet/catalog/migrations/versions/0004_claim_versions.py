"""Claims remember the version of the file they were made for (its source key).

A file whose video, timestamps or sidecar changed gets a new source key at ingest; its claims
then no longer match and the watcher enqueues it again. Claims made before this revision have no
version: they are adopted (given the file's current key) by the watcher's next poll.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("claims", sa.Column("version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.drop_column("version")
