"""The catalog schema: files, their contents, the contents' tags, and a little catalog metadata.

One row in ``files`` per data file (a video, a timestamps CSV, a rosbag...) with pydtk's fields and,
for videos, what a probe measured; images a job extracted can be registered too (data type
``derived``, linked to their video and job: `framefleet.catalog.derived`). A file holds one or
more *contents* (pydtk's word for a stream, e.g. ``camera/front-center``); each content has tags.
Contents, tag names and the content-tag pairs live in their own indexed tables so that "every
file whose content is tagged *camera* and *front*" is an index walk, not a scan of a
``;``-joined string as in pydtk's SQL handler.

pydtk keeps ``msg_type``, ``msg_md5sum``, ``count`` and ``frequency`` per content (a rosbag has one
per topic). They are stored on the file (the sidecar's top-level values) and on the content (the
values given inside ``contents``); a query result prefers the content's value.

The migrations in ``migrations/versions`` create exactly these tables; a test checks they agree.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Float, ForeignKey, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the catalog tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class File(Base):
    """One data file: pydtk's fields, probe results, and how to tell whether it changed."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    """Relative to the catalog's base directory when under it, else absolute (POSIX form)."""
    description: Mapped[str | None] = mapped_column(Text)
    database_id: Mapped[str | None] = mapped_column(String(255))
    record_id: Mapped[str] = mapped_column(String(255), index=True)
    sub_record_id: Mapped[str | None] = mapped_column(String(255))
    data_type: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255), index=True)
    start_timestamp: Mapped[float | None] = mapped_column(Float, index=True)
    """Epoch seconds of the first sample."""
    end_timestamp: Mapped[float | None] = mapped_column(Float, index=True)
    """Epoch seconds of the last sample."""
    msg_type: Mapped[str | None] = mapped_column(String(255))
    msg_md5sum: Mapped[str | None] = mapped_column(String(255))
    count: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[float | None] = mapped_column(Float)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    source_key: Mapped[str] = mapped_column(String(64))
    """A digest of what the row was built from (the sidecar's path and bytes and the data file's
    size and mtime, or a video's size and mtime): equal on re-ingest means unchanged, so nothing
    is re-probed or re-written."""
    sidecar_path: Mapped[str | None] = mapped_column(String(4096))
    """The sidecar that described the file (stored like ``path``); None for a probed video. A
    different sidecar describing the same file is refused while this one still exists."""
    source_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), index=True
    )
    """For an image a job extracted (`framefleet.catalog.derived`): the video it comes from.
    A video keeps its id when re-ingested, so the link survives; removing the video removes
    its images' rows."""
    job_id: Mapped[str | None] = mapped_column(String(255), index=True)
    """For an image a job extracted: the job that registered it."""


class Content(Base):
    """One content of a file (pydtk: one entry of ``contents``), e.g. ``camera/front-center``."""

    __tablename__ = "contents"
    __table_args__ = (Index("ix_contents_file_id_name", "file_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255), index=True)
    msg_type: Mapped[str | None] = mapped_column(String(255))
    msg_md5sum: Mapped[str | None] = mapped_column(String(255))
    count: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[float | None] = mapped_column(Float)
    timestamps_file_id: Mapped[int | None] = mapped_column(
        ForeignKey("files.id", ondelete="SET NULL"), index=True
    )
    """For a video content: the per-frame camera timestamps CSV of the same record and content."""


class Tag(Base):
    """A tag name, once: the vocabulary is small (tens of names for 100k files), so a pattern
    such as ``tags like "%cam%"`` is matched against it, not against every file's tags."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class ContentTag(Base):
    """A content carries a tag. ``(tag_id, content_id)`` is indexed: "contents with tag X" is an
    index range. ``position`` keeps the sidecar's order for the results."""

    __tablename__ = "content_tags"
    __table_args__ = (Index("ix_content_tags_tag_id_content_id", "tag_id", "content_id"),)

    content_id: Mapped[int] = mapped_column(
        ForeignKey("contents.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class CatalogMeta(Base):
    """Catalog-wide settings as key/value pairs (``base_dir``)."""

    __tablename__ = "catalog_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Claim(Base):
    """A watcher enqueued (or is enqueueing) a file for a rule: the exactly-once record.

    The primary key ``(file_id, rule)`` is the unique key two watchers race on; ``state`` is
    ``claimed`` until the job is on the queue, then ``enqueued``.
    """

    __tablename__ = "claims"

    file_id: Mapped[int] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    rule: Mapped[str] = mapped_column(String(100), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    claimed_at: Mapped[float] = mapped_column(Float)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The file's source key when claimed: a changed file no longer matches its claim."""


files_table = cast(Table, File.__table__)
contents_table = cast(Table, Content.__table__)
tags_table = cast(Table, Tag.__table__)
content_tags_table = cast(Table, ContentTag.__table__)
meta_table = cast(Table, CatalogMeta.__table__)
claims_table = cast(Table, Claim.__table__)
