"""Which catalog files are videos: one rule for linking timestamps, claiming and planning."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_

from framefleet.pydtk import VIDEO_SUFFIXES, is_video_name

__all__ = ["VIDEO_SUFFIXES", "is_video", "is_video_column"]


def is_video(path: str | None, content_type: str | None) -> bool:
    """A video: its content type is ``video/*``, or its file name has a video suffix."""
    return (content_type or "").startswith("video/") or is_video_name(path or "")


def is_video_column(path: ColumnElement[Any], content_type: ColumnElement[Any]) -> Any:
    """`is_video` as a SQL condition over a path and a content-type column."""
    suffixes = [func.lower(path).like(f"%{s}") for s in VIDEO_SUFFIXES]
    return or_(content_type.like("video/%"), *suffixes)
