"""Which catalog files are videos: one rule for linking timestamps, claiming and planning.

Images a job extracted and registered (`framefleet.catalog.derived`) are never videos, whatever
their names: the planner, the watcher and timestamps linking leave them alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_

from framefleet.pydtk import VIDEO_SUFFIXES, is_video_name

__all__ = ["VIDEO_SUFFIXES", "is_image", "is_image_column", "is_video", "is_video_column"]

IMAGE_TYPE_PREFIX = "image/"


def is_image(content_type: str | None) -> bool:
    """An image: its content type is ``image/*`` (what registered images have)."""
    return (content_type or "").startswith(IMAGE_TYPE_PREFIX)


def is_video(path: str | None, content_type: str | None) -> bool:
    """A video: its content type is ``video/*``, or it is not an image and its file name has a
    video suffix."""
    if is_image(content_type):
        return False
    return (content_type or "").startswith("video/") or is_video_name(path or "")


def is_image_column(content_type: ColumnElement[Any]) -> ColumnElement[bool]:
    """`is_image` as a SQL condition over a content-type column (false for NULL)."""
    return func.coalesce(content_type, "").like(IMAGE_TYPE_PREFIX + "%")


def is_video_column(path: ColumnElement[Any], content_type: ColumnElement[Any]) -> Any:
    """`is_video` as a SQL condition over a path and a content-type column."""
    suffixes = [func.lower(path).like(f"%{s}") for s in VIDEO_SUFFIXES]
    return and_(not_(is_image_column(content_type)), or_(content_type.like("video/%"), *suffixes))
