"""framefleet: turn driving recordings into images at fleet scale.

The notebook API: `extract` / `submit` (a catalog query to images, in a local pool or on Celery
workers), `read_frames` / `iter_frames` (pydtk-compatible), `process_segment` with its
`SegmentSpec` / `OutputSpec`, `probe_video`, and the `Catalog`.
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
    "extract",
    "iter_frames",
    "probe_video",
    "process_segment",
    "read_frames",
    "submit",
]


def __getattr__(name: str) -> object:
    # The catalog and the job API pull in SQLAlchemy, Alembic and Redis; workers never need
    # them, so they load on demand.
    if name == "Catalog":
        from framefleet.catalog import Catalog

        return Catalog
    if name in ("extract", "register", "submit"):
        from framefleet.producer import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
