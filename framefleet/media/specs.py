"""What a segment is and what to make of it: small, frozen, JSON-serialisable specs.

A `SegmentSpec` is exactly what a queue message carries: paths, ids, a half-open time range and
the `OutputSpec`. Never frame bytes. Everything is validated at construction, so a bad value
fails where it was written, with a message naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from framefleet.errors import ConfigError
from framefleet.media.images import IMAGE_FORMATS, ImageFormat, Resize
from framefleet.media.naming import (
    DEFAULT_NAME_TEMPLATE,
    TEMPLATE_FIELDS,
    check_template,
    manifest_name,
)
from framefleet.media.sampling import parse_fps

Mode = Literal["exact", "keyframes"]
BagClock = Literal["header", "receive"]
MAX_EPOCH_SECONDS = 1e11
"""Times beyond ±this (year ~5138) are refused: no recording is that far from 1970."""

__all__ = ["DEFAULT_NAME_TEMPLATE", "TEMPLATE_FIELDS", "Mode", "OutputSpec", "SegmentSpec"]
_OPTIONAL = ("fast_decode", "at_times", "max_gap_ms")
_NOT_IN_IDENTITY = {"out_dir", *_OPTIONAL}
"""Output fields that do not enter `SegmentSpec.identity` as such (the optional ones enter only
when set, so the identities of specs written before they existed stay the same)."""


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """What images to make: rate, mode, size, format and names, under ``out_dir``."""

    out_dir: str
    target_fps: str = "2"
    """Grid rate, kept as text so it stays exact (``"2"``, ``"0.5"``, ``"30000/1001"``)."""
    mode: Mode = "exact"
    resize_rate: float | None = None
    max_side_px: int | None = None
    width: int | None = None
    height: int | None = None
    image_format: ImageFormat = "jpeg"
    quality: int = 90
    name_template: str = DEFAULT_NAME_TEMPLATE
    fast_decode: bool = False
    """Skip H.264's in-loop deblocking filter while decoding: ~1.2x faster decoding, images no
    longer bit-exact (~40 dB PSNR against exact decoding at a quarter size; see the README).
    Part of the spec's identity: images made with it never pass for exact ones."""
    at_times: str | None = None
    """Instead of the grid: the requested times stored under ``out_dir`` with this digest
    (`framefleet.media.attimes`); ``target_fps`` is then unused."""
    max_gap_ms: float | None = None
    """With ``at_times``: a requested time whose frame was shown longer ago than this is
    reported missing instead of answered."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_fps", str(self.target_fps))
        if not isinstance(self.fast_decode, bool):
            raise ConfigError(f"fast_decode must be true or false, got {self.fast_decode!r}")
        if self.at_times is not None and not (
            isinstance(self.at_times, str) and re.fullmatch(r"[0-9a-f]{16}", self.at_times)
        ):
            raise ConfigError(f"at_times must be a 16-hex-digit digest, got {self.at_times!r}")
        if self.max_gap_ms is not None and (
            self.at_times is None
            or not _finite(self.max_gap_ms)
            or not 0 <= self.max_gap_ms <= 86_400_000
        ):
            raise ConfigError(
                "--max-gap (max_gap_ms) needs --at-times and a number of milliseconds in "
                f"0..86400000, got {self.max_gap_ms!r}"
            )
        if self.at_times is not None and self.mode != "exact":
            raise ConfigError("requested times (--at-times) take the exact mode, not keyframes")
        parse_fps(self.target_fps)
        if self.mode not in get_args(Mode):
            raise ConfigError(f"mode must be one of {', '.join(get_args(Mode))}, got {self.mode!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise ConfigError(
                f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {self.image_format!r}"
            )
        if not (isinstance(self.quality, int) and 1 <= self.quality <= 100):
            raise ConfigError(f"quality must be a whole number in 1..100, got {self.quality!r}")
        self.resize  # noqa: B018 - validates the resize options
        check_template(self.name_template)

    @property
    def resize(self) -> Resize:
        return Resize(
            rate=self.resize_rate,
            max_side_px=self.max_side_px,
            width=self.width,
            height=self.height,
        )

    @property
    def root(self) -> Path:
        return Path(self.out_dir)


@dataclass(frozen=True, kw_only=True)
class SegmentSpec:
    """One unit of work: the frames of one video whose grid time is in ``[start, end)``.

    Times are seconds relative to the recording start (``start_timestamp``); ``end_seconds=None``
    runs to the end of the video, so a tail segment never drops frames past the metadata's end.
    """

    video_path: str
    record_id: str
    output: OutputSpec
    content: str = "video"
    start_timestamp: float | None = None
    """Recording start, epoch seconds: the grid's anchor. None: 0, or the camera clock's start."""
    timestamps_path: str | None = None
    """The camera's per-frame timestamps CSV; None: times from the stream's PTS."""
    start_seconds: float = 0.0
    end_seconds: float | None = None
    source_version: str | None = None
    """The video's (and CSV's) size and mtime when the job was planned (`source_version`):
    a segment of a file that changed since then fails instead of mixing two versions.
    None: not checked."""
    grid_anchor: float | None = None
    """Synchronised cameras: the grid's anchor, epoch seconds (the record's start), when it
    is not this recording's own start. The segment bounds stay relative to its own start."""
    topic: str | None = None
    """A bag's image topic: ``video_path`` is then the bag (`framefleet.media.bagframes`)."""
    bag_time: BagClock = "header"
    """A bag topic's clock: its messages' header stamps, or the bag's receive times."""
    job_id: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.record_id, str) or not self.record_id:
            raise ConfigError("record_id must be a non-empty string")
        if not isinstance(self.content, str) or not self.content:
            raise ConfigError("content must be a non-empty string")
        for name in ("record_id", "content", "video_path"):
            if "\x00" in getattr(self, name):
                raise ConfigError(f"{name} must not contain NUL characters")
        if self.start_timestamp is not None and not (
            _finite(self.start_timestamp) and abs(self.start_timestamp) < MAX_EPOCH_SECONDS
        ):
            raise ConfigError(
                f"start_timestamp must be epoch seconds within ±{MAX_EPOCH_SECONDS:g}, "
                f"got {self.start_timestamp!r}"
            )
        if not _finite(self.start_seconds) or not 0 <= self.start_seconds < MAX_EPOCH_SECONDS:
            raise ConfigError(f"segment start must be >= 0 seconds, got {self.start_seconds!r}")
        if self.bag_time not in get_args(BagClock):
            raise ConfigError(f"bag_time must be header or receive, got {self.bag_time!r}")
        if self.topic is not None and (not isinstance(self.topic, str) or not self.topic):
            raise ConfigError(f"topic must be a topic name, got {self.topic!r}")
        if self.grid_anchor is not None and not (
            _finite(self.grid_anchor) and abs(self.grid_anchor) < MAX_EPOCH_SECONDS
        ):
            raise ConfigError(f"grid_anchor must be epoch seconds, got {self.grid_anchor!r}")
        if self.end_seconds is not None and not (
            _finite(self.end_seconds) and self.start_seconds < self.end_seconds < MAX_EPOCH_SECONDS
        ):
            raise ConfigError(
                f"segment end ({self.end_seconds!r}) must be finite and after its start "
                f"({self.start_seconds!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentSpec:
        """Rebuild a spec from `to_dict` output (e.g. a queue message); unknown keys are errors."""
        try:
            known = {f.name for f in fields(cls)}
            output_known = {f.name for f in fields(OutputSpec)}
            extra = (set(data) - known) | (set(data.get("output", {})) - output_known)
            if extra:
                raise ConfigError(f"unknown segment field(s): {', '.join(sorted(extra))}")
            return cls(**{**data, "output": OutputSpec(**data["output"])})
        except (TypeError, KeyError) as e:
            raise ConfigError(f"malformed segment spec: {e}") from e

    @property
    def identity(self) -> str:
        """A short hash of everything that decides the images and their names (not the time
        range): the video and its version, record and content, clock, output options."""
        payload = {
            "video": self.video_path,
            "version": self.source_version,
            "record_id": self.record_id,
            "content": self.content,
            "timestamps": self.timestamps_path,
            "start_timestamp": self.start_timestamp,
            "output": {k: v for k, v in asdict(self.output).items() if k not in _NOT_IN_IDENTITY},
        }
        for name in _OPTIONAL:  # only when set: earlier specs keep their identities
            value = getattr(self.output, name)
            if value not in (None, False):
                payload[name] = value
        if self.grid_anchor is not None:
            payload["grid_anchor"] = self.grid_anchor
        if self.topic is not None:
            payload["topic"], payload["bag_time"] = self.topic, self.bag_time
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def manifest_name(self) -> str:
        """Where this segment's manifest lives, relative to the output root (exact bounds)."""
        return manifest_name(
            self.record_id, self.content, self.start_seconds, self.end_seconds, self.identity
        )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def source_version(video_path: str, timestamps_path: str | None = None) -> str | None:
    """``size:mtime_ns`` of the video (and of its CSV): what a job was planned against.

    None when the video cannot be read now (the segment then reports why).
    """
    parts = []
    for path in (video_path, timestamps_path):
        if path is None:
            continue
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "/".join(parts)
