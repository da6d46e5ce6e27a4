"""One error tree: every error framefleet raises on purpose is a `FramefleetError`.

Messages are meant for a person: the bad value, what was allowed, what to do next.
Foreign exceptions are wrapped with ``raise ... from e`` so the cause stays visible.
"""

from __future__ import annotations


class FramefleetError(Exception):
    """Raised for any error framefleet reports on purpose (the base of the tree)."""


class ConfigError(FramefleetError):
    """Raised when a setting, a CLI option or an API argument has a bad value."""


# --- media -----------------------------------------------------------------------------------


class MediaError(FramefleetError):
    """Raised when a video cannot be read or processed."""


class VideoNotFoundError(MediaError):
    """Raised when a video path does not exist or is not a regular file."""


class InvalidVideoError(MediaError):
    """Raised when a file is not a decodable video (empty, not a container, no video stream)."""


class TruncatedVideoError(MediaError):
    """Raised when a video ends before its index says it should; frames before the cut are kept."""


class InvalidBagError(InvalidVideoError):
    """Raised when a ROS bag or MCAP file cannot be read: not a bag, no image topic, an unknown
    topic, an unsupported encoding or compression, or a malformed message."""


class TruncatedBagError(TruncatedVideoError):
    """Raised when a bag ends before its last message (cut while copying or recording); the
    messages before the cut are kept and the message says where it stopped."""


class TimestampsError(MediaError):
    """Raised when a per-frame timestamps CSV is malformed or does not match its video."""


class OutputError(FramefleetError):
    """Raised when an image or a manifest cannot be written (unwritable dir, path escaping root)."""


class OutputConflictError(OutputError):
    """Raised when a run would overwrite images that another spec, video or record id wrote."""


# --- catalog ---------------------------------------------------------------------------------


class CatalogError(FramefleetError):
    """Raised when the catalog database cannot be opened, migrated or written."""


class MetadataError(CatalogError):
    """Raised when a sidecar metadata file is invalid (bad JSON, missing fields, wrong types)."""


class EntryRejectedError(CatalogError):
    """Raised when the database refuses the values of a catalog entry (too long, out of range,
    not encodable); other entries can still be written."""


class QueryError(CatalogError):
    """Raised when a filter expression does not parse or names something not allowed.

    The message shows the query with a caret under the offending token.
    """


# --- queue -----------------------------------------------------------------------------------


class QueueError(FramefleetError):
    """Raised when the broker or the result store cannot be reached or holds unexpected data."""


class MessageError(QueueError):
    """Raised when a segment message is malformed or of a version this framefleet cannot read."""


class JobTimeoutError(QueueError):
    """Raised when a job did not complete within the time a caller was willing to wait."""


class JobNotFoundError(QueueError):
    """Raised when a job id is not known to the result store (never created, or expired)."""


class NothingToDoError(FramefleetError):
    """Raised when a query matches no video, so a job would be empty."""
