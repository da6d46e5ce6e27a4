"""The queue message: one segment of one job, small, frozen and JSON.

A message is everything a worker needs (paths, ids, a half-open time range, the output spec):
workers never open the catalog. Its JSON form is the single positional argument of the Celery
task named `TASK_NAME`::

    {"v": 3, "job_id": "20250101-120000-3f9a1c", "segment_id": 7, "force": false,
     "spec": {"video_path": "/data/r1/front.mp4", "record_id": "r1",
              "content": "camera/front-center", "start_timestamp": 1489728570.957,
              "timestamps_path": "/data/r1/front_timestamps.csv",
              "start_seconds": 70.0, "end_seconds": 80.0, "source_version": "151234:1700000",
              "job_id": "...",
              "output": {"out_dir": "/out", "target_fps": "2", "mode": "exact", ...}}}
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from framefleet.errors import ConfigError, MessageError
from framefleet.media.specs import OutputSpec, SegmentSpec

TASK_NAME = "framefleet.extract_segment"
"""The Celery task that runs a message; the producer names it without importing Celery."""
DEFAULT_QUEUE = "framefleet"
"""The Redis list the producer fills and workers consume by default."""
MESSAGE_VERSION = 3
"""2: the spec carries ``source_version`` (the video's size and mtime when planned);
3: ``grid_anchor`` (synchronised cameras), ``topic`` and ``bag_time`` (bag image topics)."""

_KEYS = {"v", "job_id", "segment_id", "force", "spec"}


@dataclass(frozen=True, kw_only=True)
class SegmentMessage:
    """One segment of one job: its id in the job (plan order), the spec and the force flag."""

    job_id: str
    segment_id: int
    spec: SegmentSpec
    force: bool = False
    """Redo the segment even if its manifest exists (``extract --force``)."""

    def __post_init__(self) -> None:
        if not self.job_id or not isinstance(self.job_id, str):
            raise MessageError("a segment message needs a job id")
        if (
            not isinstance(self.segment_id, int)
            or isinstance(self.segment_id, bool)
            or self.segment_id < 0
        ):
            raise MessageError(f"segment_id must be a whole number >= 0, got {self.segment_id!r}")
        if self.spec.job_id != self.job_id:
            object.__setattr__(self, "spec", replace(self.spec, job_id=self.job_id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": MESSAGE_VERSION,
            "job_id": self.job_id,
            "segment_id": self.segment_id,
            "force": self.force,
            "spec": _spec_dict(self.spec),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> SegmentMessage:
        """Rebuild a message from `to_dict` output.

        Raises:
            MessageError: not a message of this version (unknown or missing keys, bad values).
        """
        if not isinstance(data, dict):
            raise MessageError(f"a segment message is a JSON object, got {type(data).__name__}")
        if data.get("v") != MESSAGE_VERSION:
            raise MessageError(
                f"segment message version {data.get('v')!r} is not supported "
                f"(this worker reads version {MESSAGE_VERSION}); upgrade workers and producer "
                "together"
            )
        if set(data) != _KEYS:
            raise MessageError(f"segment message keys {sorted(data)} differ from {sorted(_KEYS)}")
        spec = data["spec"]
        if not isinstance(spec, dict):
            raise MessageError("segment message 'spec' must be an object")
        try:
            return cls(
                job_id=str(data["job_id"]),
                segment_id=data["segment_id"],
                spec=SegmentSpec.from_dict(spec),
                force=bool(data["force"]),
            )
        except ConfigError as e:
            raise MessageError(f"segment message has a bad spec: {e}") from e

    @classmethod
    def from_json(cls, text: str | bytes) -> SegmentMessage:
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, RecursionError) as e:
            raise MessageError(f"segment message is not valid JSON: {e}") from e


_SPEC_FIELDS = tuple(f.name for f in fields(SegmentSpec))


def _spec_dict(spec: SegmentSpec) -> dict[str, Any]:
    """``spec.to_dict()``, fast: the output spec, shared by a job's segments, is converted once.

    ``dataclasses.asdict`` deep-copies recursively; on 100k segments that alone costs seconds.
    """
    data = {name: getattr(spec, name) for name in _SPEC_FIELDS}
    data["output"] = dict(_output_dict(spec.output))
    return data


@functools.lru_cache(maxsize=64)
def _output_dict(output: OutputSpec) -> dict[str, Any]:
    return asdict(output)
