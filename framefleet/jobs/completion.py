"""What happens when a job completes, besides its job manifest: framesets (and exports).

Whoever completes a job (the worker of its last segment, a follower, ``status``) writes its
job manifest (`framefleet.jobs.manifest.finalize_job`) and then what its `Completion` asks
for, all idempotent and from the segment manifests alone. Kept in the job's spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from framefleet.errors import ConfigError
from framefleet.jobs.framesets import assemble_framesets
from framefleet.media.specs import SegmentSpec


@dataclass(frozen=True, kw_only=True)
class Completion:
    """A job's completion work, validated at construction."""

    framesets: bool = False
    """Synchronised cameras (``--sync``): write ``{out}/_framesets/{record}.jsonl``."""
    max_skew_ms: float | None = None
    """A frameset whose camera's frame is older than this is incomplete."""

    def __post_init__(self) -> None:
        if self.max_skew_ms is not None:
            if not self.framesets:
                raise ConfigError("--max-skew (max_skew_ms) applies to --sync")
            if not isinstance(self.max_skew_ms, int | float) or not 0 <= self.max_skew_ms < 1e9:
                raise ConfigError(
                    f"max_skew_ms must be >= 0 milliseconds, got {self.max_skew_ms!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Completion:
        return cls(**(data or {}))


def complete_job(
    out_dir: str, specs: Iterable[SegmentSpec], *, completion: Completion, target_fps: str
) -> None:
    """Do ``completion``'s work for a complete job whose complete segments are ``specs``."""
    if completion.framesets:
        assemble_framesets(
            out_dir, specs, target_fps=target_fps, max_skew_ms=completion.max_skew_ms
        )
