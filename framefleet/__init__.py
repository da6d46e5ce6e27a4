"""framefleet: turn driving recordings into images at fleet scale.

The notebook API: `read_frames` / `iter_frames` (pydtk-compatible), `process_segment` with its
`SegmentSpec` / `OutputSpec`, and `probe_video`. The catalog, producer and workers are in
subpackages.
"""

from framefleet.errors import FramefleetError
from framefleet.media.frames import iter_frames, read_frames
from framefleet.media.pipeline import SegmentResult, process_segment
from framefleet.media.probe import VideoInfo, probe_video
from framefleet.media.specs import OutputSpec, SegmentSpec

__all__ = [
    "Catalog",
    "FramefleetError",
    "OutputSpec",
    "SegmentResult",
    "SegmentSpec",
    "VideoInfo",
    "iter_frames",
    "probe_video",
    "process_segment",
    "read_frames",
]


def __getattr__(name: str) -> object:
    # The catalog pulls in SQLAlchemy and Alembic; workers never need it, so load it on demand.
    if name == "Catalog":
        from framefleet.catalog import Catalog

        return Catalog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
