"""The initial catalog schema: files, contents, tags, content_tags, catalog_meta.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("database_id", sa.String(length=255), nullable=True),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("sub_record_id", sa.String(length=255), nullable=True),
        sa.Column("data_type", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("start_timestamp", sa.Float(), nullable=True),
        sa.Column("end_timestamp", sa.Float(), nullable=True),
        sa.Column("msg_type", sa.String(length=255), nullable=True),
        sa.Column("msg_md5sum", sa.String(length=255), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Float(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
        sa.UniqueConstraint("path", name="uq_files_path"),
    )
    op.create_index("ix_files_record_id", "files", ["record_id"])
    op.create_index("ix_files_content_type", "files", ["content_type"])
    op.create_index("ix_files_start_timestamp", "files", ["start_timestamp"])
    op.create_index("ix_files_end_timestamp", "files", ["end_timestamp"])

    op.create_table(
        "contents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("msg_type", sa.String(length=255), nullable=True),
        sa.Column("msg_md5sum", sa.String(length=255), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Float(), nullable=True),
        sa.Column("timestamps_file_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name="fk_contents_file_id_files", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["timestamps_file_id"],
            ["files.id"],
            name="fk_contents_timestamps_file_id_files",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_contents"),
    )
    op.create_index("ix_contents_file_id_name", "contents", ["file_id", "name"], unique=True)
    op.create_index("ix_contents_name", "contents", ["name"])
    op.create_index("ix_contents_timestamps_file_id", "contents", ["timestamps_file_id"])

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.UniqueConstraint("name", name="uq_tags_name"),
    )
    op.create_table(
        "content_tags",
        sa.Column("content_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["contents.id"],
            name="fk_content_tags_content_id_contents",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], name="fk_content_tags_tag_id_tags"),
        sa.PrimaryKeyConstraint("content_id", "tag_id", name="pk_content_tags"),
    )
    op.create_index("ix_content_tags_tag_id_content_id", "content_tags", ["tag_id", "content_id"])

    op.create_table(
        "catalog_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_catalog_meta"),
    )


def downgrade() -> None:
    op.drop_table("catalog_meta")
    op.drop_index("ix_content_tags_tag_id_content_id", table_name="content_tags")
    op.drop_table("content_tags")
    op.drop_table("tags")
    op.drop_index("ix_contents_timestamps_file_id", table_name="contents")
    op.drop_index("ix_contents_name", table_name="contents")
    op.drop_index("ix_contents_file_id_name", table_name="contents")
    op.drop_table("contents")
    op.drop_index("ix_files_end_timestamp", table_name="files")
    op.drop_index("ix_files_start_timestamp", table_name="files")
    op.drop_index("ix_files_content_type", table_name="files")
    op.drop_index("ix_files_record_id", table_name="files")
    op.drop_table("files")
