"""Test media factory: re-exports the package's synthetic clip maker (kept for test imports)."""

from framefleet.media.synthetic import (
    ClipSpec,
    camera_times_ms,
    frame_image,
    make_clip,
    write_timestamps_csv,
)

__all__ = ["ClipSpec", "camera_times_ms", "frame_image", "make_clip", "write_timestamps_csv"]
