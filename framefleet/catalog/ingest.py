"""Adding recordings to the catalog: pydtk sidecars, and videos that have none.

`ingest_paths` walks the given files and directories and writes them in batches (one transaction
each). Every ``*.json`` is read as a pydtk sidecar (`framefleet.catalog.sidecar`). A video with no
sidecar is probed through the ``probe`` callable the caller passes in (the catalog never imports
the media engine): its record id is its file stem unless one is given, its start time comes from
``start_timestamp``, else the first row of ``<stem>_timestamps.csv`` beside it (which is added
too, linked to the video), else 0 with a warning.

Bags (a ROS1 ``*.bag``, a ROS2 bag folder, an MCAP file; with or without a sidecar) are read
through the ``bag_topics`` callable the caller passes in: one row per bag, one content per image
topic (`framefleet.catalog.bags`), its times from the header stamps or, with
``bag_time="receive"``, the receive times. A bag's source key covers its files' sizes and
mtimes, its sidecar and ``bag_time``: adding it again reads nothing.

Ingest is idempotent: each row remembers a digest of what it was built from (the sidecar's path
and bytes and its data file's size and mtime; a video's size and mtime), so adding a tree again
re-parses sidecars but writes nothing and probes nothing; a changed sidecar, or a data file
replaced under the same sidecar, rewrites its row ("updated").

Ingest never stops at a bad file. Whatever goes wrong with one file (any exception, foreign ones
reported as ``Type: message``) is reported in the `IngestReport` with its path, and the rest goes
in. A batch the database refuses is written again file by file, so only the files with values it
refuses fail. Only a database that cannot be reached at all stops an ingest (`CatalogError`).

Each row remembers the sidecar that described it. A second sidecar describing an already
catalogued file is reported and skipped while the first still exists; when the first is gone
(moved or renamed), the new one takes over with a warning. A sidecar whose data file lies outside
the dataset root (the path given to ingest, or the catalog's base directory; symlinks resolved)
is catalogued with a warning, or refused with ``confine=True``.
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from framefleet.catalog.bags import (
    BAG_TIMES,
    BagTime,
    BagTopics,
    bag_entry,
    bag_record_id,
    bag_state,
)
from framefleet.catalog.discover import discover_roots
from framefleet.catalog.entries import FileEntry, VideoInfoLike, check_entry
from framefleet.catalog.sidecar import read_sidecar, source_key
from framefleet.catalog.store import Catalog, KnownFile
from framefleet.catalog.values import (
    MAX_NAME_CHARS,
    MAX_PATH_CHARS,
    TIMESTAMP_RANGE,
    check_paths,
    show_path,
    text_problem,
)
from framefleet.catalog.videos import (
    camera_times_ms,
    unchanged,
    video_entries,
)
from framefleet.errors import (
    ConfigError,
    EntryRejectedError,
    FramefleetError,
    MetadataError,
)
from framefleet.pydtk import (
    SIDECAR_SUFFIX,
    bag_kind,
    sidecar_for,
    timestamps_csv_for,
)

_FIRST_ANALYZE = 1000
_MAX_MESSAGE_CHARS = 500
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
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.failed)} failed"
        )
        if self.warnings:
            text += f", {len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}"
        return text


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
    confine: bool = False,
    bag_topics: BagTopics | None = None,
    bag_time: BagTime = "header",
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
        confine: refuse sidecars whose data file lies outside the dataset root (the path given
            here that the sidecar was found under, or the catalog's base directory); without it
            they are added with a warning.
        bag_topics: reads a bag's image topics (e.g. `framefleet.media.bags.image_topics`);
            without it bags without a sidecar are reported as failed and bags with one are
            catalogued as their sidecar describes them.
        bag_time: the clock of bag rows' start and end: the image messages' ``header`` stamps
            or their ``receive`` times in the bag.

    Returns:
        The counts and the reasons of failures and warnings (each naming its file).

    Raises:
        ConfigError: a bad argument.
        CatalogError: the database cannot be reached or written at all.
    """
    _check_options(batch_size, start_timestamp, database_id, record_id)
    if bag_time not in BAG_TIMES:
        raise ConfigError(f"bag_time must be one of {', '.join(BAG_TIMES)}, got {bag_time!r}")
    candidates, bad = discover_roots(paths)
    run = _Ingest(
        catalog,
        IngestReport(failed=list(bad)),
        probe=probe,
        database_id=database_id,
        record_id=record_id,
        start_timestamp=start_timestamp,
        confine=confine,
        bag_topics=bag_topics,
        bag_time=bag_time,
        total=len(candidates),
        progress=progress,
    )
    next_analyze = _FIRST_ANALYZE
    for start in range(0, len(candidates), batch_size):
        run.batch(candidates[start : start + batch_size])
        if run.report.added >= next_analyze:  # at 1k, 2k, 4k... new files: see Catalog.analyze
            catalog.analyze()
            next_analyze = 2 * run.report.added
    return run.report


def _check_options(
    batch_size: int, start: float | None, database_id: str | None, record_id: str | None
) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    low, high = TIMESTAMP_RANGE
    if start is not None and not (math.isfinite(start) and low <= start < high):
        raise ConfigError(
            f"start_timestamp must be epoch seconds from {low:.0f} to {high:.0f} "
            f"(before the year 10000), got {start!r}"
        )
    for name, value in (("database_id", database_id), ("record_id", record_id)):
        problem = None if value is None else text_problem(value, max_chars=MAX_NAME_CHARS)
        if problem is not None:
            raise ConfigError(f"{name} {value!r} {problem}")


def ingest_summary(report: IngestReport) -> Sequence[str]:
    """The report as lines for a person: failures and warnings, then the counts."""
    lines = [f"failed: {message}" for _, message in report.failed]
    lines += [f"warning: {message}" for _, message in report.warnings]
    lines.append(report.summary())
    return lines


def _message(candidate: Path, error: BaseException) -> str:
    """One line naming the file: framefleet's own messages as they are, others with their type."""
    if isinstance(error, FramefleetError | OSError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    if not text.isprintable():  # one line whatever the message: breaks become spaces
        text = " ".join(text.split())
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    text = text or type(error).__name__
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    shown = show_path(candidate)
    return text if shown in text else f"{shown}: {text}"


@dataclass
class _Ingest:
    """One `ingest_paths` run: its options, its report and which file each candidate claimed."""

    catalog: Catalog
    report: IngestReport
    probe: Probe | None
    database_id: str | None
    record_id: str | None
    start_timestamp: float | None
    confine: bool
    bag_topics: BagTopics | None
    bag_time: BagTime
    total: int
    progress: Progress | None
    done: int = 0
    claimed: dict[Path, Path] = field(default_factory=dict)
    """Data file -> the candidate that described it first in this run."""

    def fail(self, candidate: Path, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else _message(candidate, error)
        self.report.failed.append((candidate, message))

    def warn(self, candidate: Path, message: str) -> None:
        self.report.warnings.append((candidate, message))

    def batch(self, batch: Sequence[tuple[Path, Path]]) -> None:
        """Read, check and write one batch of candidates (each a sidecar or a bare video)."""
        base_dir = self.catalog.base_dir
        pending = [(c, root) for c, root in batch if not self._described(c)]
        self.done += len(batch) - len(pending)
        batch = pending
        read: dict[Path, FileEntry | Exception] = {}
        lookups: list[Path] = []
        for candidate, _ in batch:
            try:
                if candidate.suffix.lower() == SIDECAR_SUFFIX:
                    entry = read_sidecar(candidate, base_dir=base_dir, database_id=self.database_id)
                    read[candidate] = entry
                    lookups.append(entry.path)
                elif _storable(video := candidate.resolve()):
                    lookups.append(video)
            except Exception as e:  # any one file's problem is that file's failure
                read[candidate] = e
        known = self.catalog.known_files(lookups)
        groups: list[tuple[Path, list[FileEntry]]] = []
        for candidate, root in batch:
            if self._described(candidate):  # by a sidecar earlier in this batch
                self.done += 1
                continue
            try:
                built = read.get(candidate)
                if isinstance(built, Exception):
                    raise built
                if built is not None:
                    entries = self._accept_sidecar(candidate, root, built, known)
                    if self.bag_topics is not None and bag_kind(built.path) is not None:
                        entries = self._bag(candidate, built.path, known, built)
                elif bag_kind(candidate) is not None:
                    entries = self._bare_bag(candidate, known)
                else:
                    entries = self._bare_video(candidate, known)
                for entry in entries:
                    check_entry(entry)
            except Exception as e:
                self.fail(candidate, e)
                entries = []
            groups.append((candidate, self._claim(candidate, entries)))
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)
        self._write([(candidate, entries) for candidate, entries in groups if entries])

    def _described(self, candidate: Path) -> bool:
        """A bare video or bag that a sidecar (sorted first) already described."""
        if _is_sidecar(candidate):
            return False
        try:
            first = self.claimed.get(candidate.resolve())
        except (OSError, RuntimeError, ValueError):
            return False
        return first is not None and _is_sidecar(first)

    def _claim(self, candidate: Path, entries: list[FileEntry]) -> list[FileEntry]:
        """The entries this candidate may write: not the files another one described first."""
        kept = []
        for entry in entries:
            first = self.claimed.setdefault(entry.path, candidate)
            if first != candidate and _is_sidecar(first) and not _is_sidecar(candidate):
                continue  # a bare video or bag its sidecar (in another folder) describes
            if first != candidate:
                self.fail(
                    candidate,
                    f"{show_path(candidate)}: {show_path(entry.path)} is already described by "
                    f"{show_path(first)}; skipped",
                )
            else:
                kept.append(entry)
        return kept

    def _write(self, groups: list[tuple[Path, list[FileEntry]]]) -> None:
        """One transaction for the batch; if the database refuses it, one per candidate."""
        entries = [entry for _, group in groups for entry in group]
        if not entries:
            return
        try:
            outcomes = self.catalog.upsert(entries)
        except (EntryRejectedError, MetadataError):
            outcomes = []
            for candidate, group in groups:
                try:
                    outcomes += self.catalog.upsert(group)
                except (EntryRejectedError, MetadataError) as e:
                    self.fail(candidate, e)
        for outcome in outcomes:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)

    def _accept_sidecar(
        self, sidecar: Path, root: Path, entry: FileEntry, known: dict[Path, KnownFile]
    ) -> list[FileEntry]:
        """The entry, unless another living sidecar describes its file or it escapes the root."""
        shown = show_path(sidecar)
        previous = known.get(entry.path)
        before = None if previous is None else previous.sidecar_path
        if before is not None and before != entry.sidecar_path:
            gone = self._gone(before, entry.path)
            if not gone:
                raise MetadataError(
                    f"{shown}: {show_path(entry.path)} is already described by "
                    f"{show_path(before)}; skipped (remove one of the two sidecars)"
                )
            self.warn(
                sidecar,
                f"{shown}: {show_path(entry.path)} was described by {show_path(before)}, "
                f"which {gone}; this sidecar takes over",
            )
        outside = self._outside(entry.path, root)
        if outside:
            message = f"{shown}: data file {show_path(entry.path)} is outside {outside}"
            if self.confine:
                raise MetadataError(f"{message}; refused (--confine)")
            self.warn(sidecar, message)
        return [entry]

    def _gone(self, sidecar: Path, data: Path) -> str:
        """Empty while ``sidecar`` still describes ``data``, else why not (for the message).

        Read again only on a conflict, which is rare: a sidecar edited to describe another file,
        or broken, no longer holds the row.
        """
        if not os.path.isfile(sidecar):
            return "no longer exists"
        try:
            entry = read_sidecar(sidecar, base_dir=self.catalog.base_dir, database_id=None)
        except Exception:  # broken now: it cannot hold the row
            return "is no longer a valid sidecar"
        return "" if entry.path == data else "now describes another file"

    def _outside(self, path: Path, root: Path) -> str:
        """Empty when ``path`` lies under the root or the base directory, else what it is not
        under (for the message)."""
        roots = [root] + ([self.catalog.base_dir] if self.catalog.base_dir is not None else [])
        real = os.path.realpath(path)
        for r in roots:
            top = _realpath(r)
            if real == top or real.startswith(top.rstrip("/") + "/"):
                return ""
        return "the dataset root " + " or ".join(show_path(r) for r in roots)

    def _bare_video(self, video: Path, known: dict[Path, KnownFile]) -> list[FileEntry]:
        """The entries of a video without a sidecar: the video, and its timestamps CSV if any."""
        video = video.resolve()
        check_paths([("path", video)], show_path(video))  # before probing it
        stat_result = video.stat()
        if not stat.S_ISREG(stat_result.st_mode):
            raise MetadataError(f"{show_path(video)}: not a regular file")
        previous = known.get(video)
        if previous is not None and previous.sidecar_path is not None:
            gone = self._gone(previous.sidecar_path, video)
            if not gone:
                self.report.unchanged += 1  # described by a sidecar elsewhere: that one rules
                return []
            self.warn(
                video,
                f"{show_path(video)}: was described by {show_path(previous.sidecar_path)}, "
                f"which {gone}; probed instead",
            )
        csv = timestamps_csv_for(video)
        # A CSV with a sidecar of its own is described by that sidecar, not added here.
        companion = csv.is_file() and not sidecar_for(csv).is_file()
        csv_state = (csv.stat().st_size, csv.stat().st_mtime_ns) if companion else None
        options = (self.database_id or "", self.record_id or "", self.start_timestamp)
        key = source_key(video, stat_result.st_size, stat_result.st_mtime_ns, options, csv_state)
        if previous is not None and key == previous.source_key:
            same = [unchanged(video, key)]
            return same + ([unchanged(csv.resolve(), key)] if companion else [])
        if self.probe is None:
            raise MetadataError(
                f"{show_path(video)}: no sidecar ({video.name}.json), and probing is off"
            )
        info = self.probe(video)
        times_ms = camera_times_ms(csv) if companion else ()
        return video_entries(
            video,
            csv,
            info,
            times_ms,
            key=key,
            record_id=self.record_id or video.stem,
            database_id=self.database_id,
            start=self._start(video, csv, times_ms),
        )

    def _bare_bag(self, bag: Path, known: dict[Path, KnownFile]) -> list[FileEntry]:
        """The entry of a bag without a sidecar (unless a sidecar elsewhere describes it)."""
        bag = bag.resolve()
        check_paths([("path", bag)], show_path(bag))
        previous = known.get(bag)
        if previous is not None and previous.sidecar_path is not None:
            gone = self._gone(previous.sidecar_path, bag)
            if not gone:
                self.report.unchanged += 1  # described by a sidecar elsewhere: that one rules
                return []
            self.warn(
                bag,
                f"{show_path(bag)}: was described by {show_path(previous.sidecar_path)}, "
                f"which {gone}; read instead",
            )
        return self._bag(bag, bag, known, None)

    def _bag(
        self, candidate: Path, bag: Path, known: dict[Path, KnownFile], sidecar: FileEntry | None
    ) -> list[FileEntry]:
        """A bag's entry from its image topics, read only when the bag or its sidecar changed."""
        options = (self.database_id or "", self.record_id or "", self.bag_time)
        first = sidecar.source_key if sidecar is not None else bag
        key = source_key(first, bag_state(bag), *options)
        previous = known.get(bag)
        if previous is not None and key == previous.source_key:
            return [unchanged(bag, key)]
        if self.bag_topics is None:
            raise MetadataError(
                f"{show_path(bag)}: no sidecar ({bag.name}.json), and reading bags is off"
            )
        entry, warnings = bag_entry(
            bag,
            self.bag_topics(bag),
            key=key,
            bag_time=self.bag_time,
            record_id=self.record_id or bag_record_id(bag),
            database_id=self.database_id,
            sidecar=sidecar,
        )
        for message in warnings:
            self.warn(candidate, message)
        return [entry]

    def _start(self, video: Path, csv: Path, times_ms: tuple[int, ...]) -> float:
        if self.start_timestamp is not None:
            return self.start_timestamp
        if times_ms:
            return times_ms[0] / 1000.0
        self.warn(
            video,
            f"{show_path(video)}: no start time (no --start-timestamp, no {csv.name}): using 0",
        )
        return 0.0


def _storable(path: Path) -> bool:
    """A path the database can be asked about (a bad one fails later, with its reason)."""
    return text_problem(str(path), max_chars=MAX_PATH_CHARS, name_like=False) is None


def _is_sidecar(path: Path) -> bool:
    return path.suffix.lower() == SIDECAR_SUFFIX


@functools.lru_cache(maxsize=64)
def _realpath(root: Path) -> str:
    """A dataset root's real path: the same few roots for every file of an ingest."""
    return os.path.realpath(root)
