"""Which catalog files are videos: one rule for linking timestamps, claiming and planning.

Images a job extracted and registered (`framefleet.catalog.derived`) are never videos, whatever
their names: the planner, the watcher and timestamps linking leave them alone.

Bags (ROS1, ROS2, MCAP; `framefleet.catalog.bags`) are never videos either: their content types
are ``application/x-*`` and their names have no video suffix. A query result that is a bag's
image topic is told by its message type (`is_image_topic`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_

from framefleet.pydtk import (
    BAG_CONTENT_TYPES,
    VIDEO_SUFFIXES,
    is_image_msg_type,
    is_image_topic,
    is_video_name,
)

__all__ = [
    "VIDEO_SUFFIXES",
    "is_bag",
    "is_bag_column",
    "is_image",
    "is_image_column",
    "is_image_msg_type",
    "is_image_topic",
    "is_video",
    "is_video_column",
]

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


def is_bag(content_type: str | None) -> bool:
    """A bag (ROS1, ROS2 or MCAP): its content type is one ingest gives bags. Never a video."""
    return content_type in BAG_CONTENT_TYPES.values()


def is_bag_column(content_type: ColumnElement[Any]) -> ColumnElement[bool]:
    """`is_bag` as a SQL condition over a content-type column (false for NULL)."""
    return content_type.in_(sorted(BAG_CONTENT_TYPES.values()))
