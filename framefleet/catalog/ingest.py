"""Adding recordings to the catalog: pydtk sidecars, and videos that have none.

`ingest_paths` walks the given files and directories and writes them in batches (one transaction
each). Every ``*.json`` is read as a pydtk sidecar (`framefleet.catalog.sidecar`). A video with no
sidecar is probed through the ``probe`` callable the caller passes in (the catalog never imports
the media engine): its record id is its file stem unless one is given, its start time comes from
``start_timestamp``, else the first row of ``<stem>_timestamps.csv`` beside it (which is added
too, linked to the video), else 0 with a warning.

Ingest is idempotent: each row remembers a digest of what it was built from (the sidecar's bytes,
a video's size and mtime), so adding a tree again re-parses sidecars but writes nothing and
probes nothing; a changed sidecar rewrites its row. A bad file is reported in the
`IngestReport` and skipped; the rest goes in.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from framefleet.catalog.entries import ContentEntry, FileEntry, VideoInfoLike
from framefleet.catalog.sidecar import read_sidecar, source_key
from framefleet.catalog.store import Catalog
from framefleet.errors import FramefleetError, MetadataError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm"})
"""Files taken for videos when they have no sidecar."""
BARE_VIDEO_CONTENT = "video"
"""Content name of a video added without a sidecar (as in pydtk's own sample)."""

_FIRST_ANALYZE = 1000
Probe = Callable[[Path], VideoInfoLike]
Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each file."""


@dataclass
class IngestReport:
    """What an ingest did: counts, and the files it skipped or warned about, with why."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.failed)} failed"
        )


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The sidecars and sidecar-less videos under ``paths`` (sorted), and paths that are neither.

    Directories are walked recursively, skipping hidden ones. A file named directly is taken as a
    sidecar (``*.json``), as its own sidecar's data file (``x.mp4`` with ``x.mp4.json``), or as
    a video.
    """
    found: dict[Path, None] = {}
    bad: list[tuple[Path, str]] = []
    for raw in paths:
        root = Path(raw).expanduser().resolve()
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                names = set(filenames)
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    suffix = os.path.splitext(name)[1].lower()
                    if suffix == ".json" or (
                        suffix in VIDEO_SUFFIXES and name + ".json" not in names
                    ):
                        found[Path(dirpath, name)] = None
        elif root.is_file():
            sidecar = root.with_name(root.name + ".json")
            if root.suffix.lower() == ".json" or root.suffix.lower() in VIDEO_SUFFIXES:
                found[sidecar if sidecar.is_file() else root] = None
            elif sidecar.is_file():
                found[sidecar] = None
            else:
                bad.append((root, "neither a pydtk sidecar (*.json) nor a video, and no sidecar"))
        else:
            bad.append((root, "no such file or directory"))
    return list(found), bad


def ingest_paths(
    catalog: Catalog,
    paths: Iterable[str | os.PathLike[str]],
    *,
    probe: Probe | None = None,
    database_id: str | None = None,
    record_id: str | None = None,
    start_timestamp: float | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> IngestReport:
    """Add the sidecars and videos under ``paths`` to ``catalog``.

    Args:
        catalog: where to write; relative paths are stored relative to its base directory.
        paths: files and directories.
        probe: measures a video without a sidecar (e.g. `framefleet.media.probe.probe_video`);
            without it such videos are reported as failed.
        database_id: for sidecars without one, and for videos without a sidecar.
        record_id: the record id of videos without a sidecar (default: the file stem).
        start_timestamp: epoch seconds of the first frame of videos without a sidecar.
        batch_size: files per write transaction.
        progress: called as ``progress(done, total)`` after each file.

    Returns:
        The counts and the reasons of failures and warnings.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    candidates, bad = discover(paths)
    report = IngestReport(failed=list(bad))
    claimed: dict[Path, Path] = {}  # data file -> the candidate that described it first
    base_dir = catalog.base_dir
    done = 0
    next_analyze = _FIRST_ANALYZE
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        entries: list[FileEntry] = []
        known = catalog.source_keys([p for p in batch if p.suffix.lower() != ".json"])
        for candidate in batch:
            try:
                if candidate.suffix.lower() == ".json":
                    built = [read_sidecar(candidate, base_dir=base_dir, database_id=database_id)]
                else:
                    built = _bare_video(
                        candidate,
                        known.get(candidate),
                        probe=probe,
                        database_id=database_id,
                        record_id=record_id,
                        start_timestamp=start_timestamp,
                        report=report,
                    )
            except (FramefleetError, OSError) as e:
                report.failed.append((candidate, _message(candidate, e)))
                built = []
            for entry in built:
                first = claimed.setdefault(entry.path, candidate)
                if first != candidate:
                    report.failed.append(
                        (candidate, f"{entry.path} is already described by {first}; skipped")
                    )
                else:
                    entries.append(entry)
            done += 1
            if progress is not None:
                progress(done, len(candidates))
        for outcome in catalog.upsert(entries):
            setattr(report, outcome, getattr(report, outcome) + 1)
        if report.added >= next_analyze:  # at 1k, 2k, 4k... new files: see Catalog.analyze
            catalog.analyze()
            next_analyze = 2 * report.added
    return report


def _message(candidate: Path, error: BaseException) -> str:
    text = str(error)
    return text if str(candidate) in text else f"{candidate}: {text}"


def _bare_video(
    video: Path,
    known_key: str | None,
    *,
    probe: Probe | None,
    database_id: str | None,
    record_id: str | None,
    start_timestamp: float | None,
    report: IngestReport,
) -> list[FileEntry]:
    """The entries of a video without a sidecar: the video, and its timestamps CSV if any."""
    video = video.resolve()
    stat = video.stat()
    csv = video.with_name(video.stem + "_timestamps.csv")
    # A CSV with a sidecar of its own is described by that sidecar, not added here.
    companion = csv.is_file() and not csv.with_name(csv.name + ".json").is_file()
    csv_state = (csv.stat().st_size, csv.stat().st_mtime_ns) if companion else None
    options = (database_id or "", record_id or "", start_timestamp)
    key = source_key(video, stat.st_size, stat.st_mtime_ns, options, csv_state)
    if key == known_key:
        return [_unchanged(video, key)] + ([_unchanged(csv.resolve(), key)] if companion else [])
    if probe is None:
        raise MetadataError(f"{video}: no sidecar ({video.name}.json), and probing is off")
    info = probe(video)
    times_ms = _read_times_ms(csv) if companion else []
    if start_timestamp is not None:
        start = start_timestamp
    elif times_ms:
        start = times_ms[0] / 1000.0
    else:
        start = 0.0
        report.warnings.append(
            (video, f"{video}: no start time (no --start-timestamp, no {csv.name}): using 0")
        )
    duration = float(info.duration_seconds)
    end = max(start + duration, times_ms[-1] / 1000.0) if times_ms else start + duration
    rid = record_id or video.stem
    entries = [
        FileEntry(
            path=video,
            record_id=rid,
            database_id=database_id,
            data_type="raw_data",
            contents=(ContentEntry(name=BARE_VIDEO_CONTENT, tags=("video",)),),
            source_key=key,
            content_type=mimetypes.guess_type(video.name)[0] or "video/mp4",
            start_timestamp=start,
            end_timestamp=end,
            duration_seconds=duration,
            fps=float(info.fps),
            width=int(info.width),
            height=int(info.height),
            frame_count=int(info.frame_count),
        )
    ]
    if times_ms:
        entries.append(
            FileEntry(
                path=csv.resolve(),
                record_id=rid,
                database_id=database_id,
                data_type="raw_data",
                contents=(ContentEntry(name=BARE_VIDEO_CONTENT, tags=("timestamps",)),),
                source_key=key,
                content_type="text/csv",
                start_timestamp=times_ms[0] / 1000.0,
                end_timestamp=times_ms[-1] / 1000.0,
                count=len(times_ms),
            )
        )
    return entries


def _unchanged(video: Path, key: str) -> FileEntry:
    """A stand-in for a known, unchanged video: the store sees the same key and writes nothing."""
    return FileEntry(path=video, record_id="", contents=(), source_key=key)


def _read_times_ms(csv: Path) -> list[int]:
    """The first column of a pydtk camera timestamps CSV: epoch milliseconds, one row a frame."""
    times = []
    with csv.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            first = line.split(",", 1)[0].strip()
            try:
                times.append(int(float(first)))
            except ValueError as e:
                raise MetadataError(
                    f"{csv}:{number}: expected epoch milliseconds in column 1, got {first!r}"
                ) from e
    if not times:
        raise MetadataError(f"{csv}: empty timestamps CSV")
    return times


def ingest_summary(report: IngestReport) -> Sequence[str]:
    """The report as lines for a person: failures and warnings, then the counts."""
    lines = [f"failed: {message}" for _, message in report.failed]
    lines += [f"warning: {message}" for _, message in report.warnings]
    lines.append(report.summary())
    return lines
