"""What happens when a job completes, besides its job manifest: framesets and exports.

Whoever completes a job (the worker of its last segment, a follower, ``status``) writes its
job manifest (`framefleet.jobs.manifest.finalize_job`) and then what its `Completion` asks
for, all idempotent, from the segment manifests and what the planner left beside the job
manifest (`sources_path`: the catalog fields of the job's sources, so that a worker, which
never opens the catalog, can write them into the exports). Kept in the job's spec.

Registering the images in the catalog needs the catalog: the producer side does it
(`framefleet.producer.registration`), when it sees the job complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from framefleet.errors import ConfigError
from framefleet.export import (
    SOURCE_FIELDS,
    require_pyarrow,
    sources_by_content,
    write_parquet,
    write_webdataset,
)
from framefleet.jobs.framesets import assemble_framesets
from framefleet.media.images import inside, write_atomic
from framefleet.media.naming import JOBS_DIR, path_safe
from framefleet.media.specs import SegmentSpec


@dataclass(frozen=True, kw_only=True)
class Completion:
    """A job's completion work, validated at construction."""

    framesets: bool = False
    """Synchronised cameras (``--sync``): write ``{out}/_framesets/{record}.jsonl``."""
    max_skew_ms: float | None = None
    """A frameset whose camera's frame is older than this is incomplete."""
    exports: tuple[str, ...] = ()
    """``parquet`` and/or ``webdataset`` (`framefleet.export`)."""
    shard_size: int = 1000
    """Images per WebDataset shard."""
    register: bool = False
    """Add the job's images to the catalog (the producer side does it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "exports", tuple(self.exports))
        unknown = set(self.exports) - set(EXPORTS)
        if unknown:
            raise ConfigError(
                f"unknown export(s) {', '.join(sorted(unknown))}; known: {', '.join(EXPORTS)}"
            )
        if "parquet" in self.exports:
            require_pyarrow()
        if not isinstance(self.shard_size, int) or not 1 <= self.shard_size <= 10_000_000:
            raise ConfigError(f"shard_size must be 1..10000000 images, got {self.shard_size!r}")
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


EXPORTS = ("parquet", "webdataset")


def sources_path(out_dir: str | Path, job_id: str) -> Path:
    """``{out}/_jobs/{job_id}.sources.json``: the catalog fields of the job's sources."""
    return inside(Path(out_dir), f"{JOBS_DIR}/{path_safe(job_id)}.sources.json")


def save_sources(out_dir: str | Path, job_id: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Keep the catalog fields of a job's sources (rows of ``Catalog.query``) beside it."""
    sources = [
        {"record_id": row["record_id"], "contents": row["contents"],
         **{k: row.get(k) for k in SOURCE_FIELDS}}
        for row in rows
    ]  # fmt: skip
    write_atomic(sources_path(out_dir, job_id), json.dumps(sources, sort_keys=True).encode())


def load_sources(out_dir: str | Path, job_id: str) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The sources a planner saved for a job (empty when it saved none)."""
    try:
        rows = json.loads(sources_path(out_dir, job_id).read_bytes())
    except (OSError, ValueError):
        return {}
    return sources_by_content(rows)


def complete_job(
    out_dir: str,
    job_id: str,
    specs: Sequence[SegmentSpec],
    *,
    completion: Completion,
    target_fps: str,
    job_manifest: Path,
) -> None:
    """Do ``completion``'s work for a complete job whose complete segments are ``specs``."""
    framesets: list[Path] = []
    if completion.framesets:
        framesets = assemble_framesets(
            out_dir, specs, target_fps=target_fps, max_skew_ms=completion.max_skew_ms
        )
    if not completion.exports:
        return
    sources = load_sources(out_dir, job_id) or None
    if "parquet" in completion.exports:
        write_parquet(
            job_manifest, out_root=Path(out_dir), sources=sources, framesets=framesets or None
        )
    if "webdataset" in completion.exports:
        write_webdataset(
            job_manifest, Path(out_dir), shard_size=completion.shard_size, sources=sources
        )
