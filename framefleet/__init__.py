"""framefleet: turn driving recordings into images at fleet scale.

The notebook API: `extract` / `submit` / `register` (a catalog query to images, in a local pool
or on Celery workers, and back into the catalog), `read_frames` / `iter_frames`
(pydtk-compatible), `process_segment` with its `SegmentSpec` / `OutputSpec`, `probe_video`, and
the `Catalog`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from framefleet.errors import FramefleetError

if TYPE_CHECKING:
    from framefleet.catalog import Catalog
    from framefleet.media.frames import iter_frames, read_frames
    from framefleet.media.pipeline import SegmentResult, process_segment
    from framefleet.media.probe import VideoInfo, probe_video
    from framefleet.media.specs import OutputSpec, SegmentSpec
    from framefleet.producer.api import extract, register, submit

# Loaded on first use: PyAV and NumPy, SQLAlchemy, Celery and Redis cost most of a second to
# import, and every process (a worker, a healthcheck every 15 s) needs only some of them.
_LAZY = {
    "Catalog": "framefleet.catalog",
    "iter_frames": "framefleet.media.frames",
    "read_frames": "framefleet.media.frames",
    "SegmentResult": "framefleet.media.pipeline",
    "process_segment": "framefleet.media.pipeline",
    "VideoInfo": "framefleet.media.probe",
    "probe_video": "framefleet.media.probe",
    "OutputSpec": "framefleet.media.specs",
    "SegmentSpec": "framefleet.media.specs",
    "extract": "framefleet.producer.api",
    "register": "framefleet.producer.api",
    "submit": "framefleet.producer.api",
}

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
    "register",
    "submit",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
