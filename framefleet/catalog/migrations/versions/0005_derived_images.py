"""Images a job extracted, registered back in the catalog: a link to their video and their job.

Both columns are nullable: every row written before this revision, and every row ingest writes,
has neither. ``source_file_id`` cascades on delete (a video removed from the catalog takes its
images' rows along); a video that is re-ingested keeps its row id, so the link survives.

On SQLite, adding a foreign key copies the ``files`` table (batch mode); `migrate` runs it with
foreign keys unenforced, so dropping the old copy does not cascade into ``contents``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FK = "fk_files_source_file_id_files"


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("source_file_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("job_id", sa.String(length=255), nullable=True))
        batch.create_foreign_key(_FK, "files", ["source_file_id"], ["id"], ondelete="CASCADE")
    op.create_index("ix_files_source_file_id", "files", ["source_file_id"])
    op.create_index("ix_files_job_id", "files", ["job_id"])


def downgrade() -> None:
    # The registered images' rows mean nothing without their link: they go first, with their
    # contents and tags (foreign keys are not enforced while SQLite migrates: no cascade).
    op.execute(
        "DELETE FROM content_tags WHERE content_id IN (SELECT c.id FROM contents c "
        "JOIN files f ON c.file_id = f.id WHERE f.source_file_id IS NOT NULL)"
    )
    op.execute(
        "DELETE FROM contents WHERE file_id IN "
        "(SELECT id FROM files WHERE source_file_id IS NOT NULL)"
    )
    op.execute(
        "DELETE FROM claims WHERE file_id IN "
        "(SELECT id FROM files WHERE source_file_id IS NOT NULL)"
    )
    op.execute("DELETE FROM files WHERE source_file_id IS NOT NULL")
    op.drop_index("ix_files_job_id", table_name="files")
    op.drop_index("ix_files_source_file_id", table_name="files")
    with op.batch_alter_table("files") as batch:
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.drop_column("job_id")
        batch.drop_column("source_file_id")
