"""What a segment is and what to make of it: small, frozen, JSON-serialisable specs.

A `SegmentSpec` is exactly what a queue message carries: paths, ids, a half-open time range and
the `OutputSpec`. Never frame bytes. Everything is validated at construction, so a bad value
fails where it was written, with a message naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from string import Formatter
from typing import Any, Literal, get_args

from framefleet.errors import ConfigError
from framefleet.media.images import IMAGE_FORMATS, ImageFormat, Resize, path_safe
from framefleet.media.sampling import parse_fps

Mode = Literal["exact", "keyframes"]
DEFAULT_NAME_TEMPLATE = "{record_id}/{content}/{record_id}-{timestamp:.3f}.{ext}"
TEMPLATE_FIELDS = ("record_id", "content", "timestamp", "grid_time", "frame", "ext")


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_fps", str(self.target_fps))
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
        _check_template(self.name_template)

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


def _check_template(template: str) -> None:
    try:
        names = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise ConfigError(f"name template {template!r} is not a valid format string: {e}") from e
    unknown = names - set(TEMPLATE_FIELDS)
    if unknown:
        raise ConfigError(
            f"name template {template!r} uses unknown field(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(TEMPLATE_FIELDS)}"
        )
    if "timestamp" not in names and "frame" not in names and "grid_time" not in names:
        raise ConfigError(
            f"name template {template!r} must contain {{timestamp}}, {{grid_time}} or {{frame}} "
            "so that images of one recording get distinct names"
        )


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
    job_id: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.record_id:
            raise ConfigError("record_id must not be empty")
        if not math.isfinite(self.start_seconds) or self.start_seconds < 0:
            raise ConfigError(f"segment start must be >= 0 seconds, got {self.start_seconds}")
        if self.end_seconds is not None and not self.end_seconds > self.start_seconds:
            raise ConfigError(
                f"segment end ({self.end_seconds}) must be after its start ({self.start_seconds})"
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
        """A short hash of everything that decides the images (not the time range)."""
        payload = {
            "video": self.video_path,
            "timestamps": self.timestamps_path,
            "start_timestamp": self.start_timestamp,
            "output": {k: v for k, v in asdict(self.output).items() if k != "out_dir"},
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def manifest_name(self) -> str:
        """Where this segment's manifest lives, relative to the output root."""
        end = "end" if self.end_seconds is None else f"{self.end_seconds:.3f}"
        return (
            f"_manifests/{path_safe(self.record_id)}/{path_safe(self.content)}/"
            f"{self.start_seconds:.3f}-{end}.{self.identity}.jsonl"
        )
