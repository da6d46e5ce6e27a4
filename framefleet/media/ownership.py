"""Who owns which image names under an output root: one spec per set of names, never two.

The images of one recording's content are named by a template; the names it can give (the
template with the record id, content and extension filled in, time fields left open: its
*pattern*) belong to exactly one *spec identity* (video and its version, record, content, clock,
start time and grid anchor, output options). The first segment or planner to write a pattern
records the owner in ``{out}/_owners/xx/<hash of pattern>.json`` (created exclusively, so two
writers cannot both win), with the version (size and mtime) of the files its images are made
from. Anyone else who would write the same names is refused with an error that says how to
proceed, so two specs, two videos or two record ids never overwrite each other's images while
their manifests say otherwise.

A spec planned against another version of its files than the one on disk claims nothing: it
fails with "changed since the job was planned" before it reads or removes anything, so a stale
segment (still queued, or retried) never touches the images of a newer job.

A newer version of the same video replaces its older self by itself: the same video file and
output options, the spec made from the files as they are on disk now, the owner made from
files that are no longer there (its recorded version differs from the disk's). That is how a
re-extracted recording replaces its earlier images, and it can never go back and forth: only
the version on disk wins. Two specs of the same version that differ otherwise (another start
time, grid anchor, clock) are *different* identities: a segment never replaces such an owner
by itself (so two queued jobs never swap images back and forth), and ``extract-file`` refuses
unless asked (``--force``). The planner of a catalog job does replace it (``corrects``): it plans
from the catalog as it is now, so its metadata (a sidecar's corrected start time) is the newer;
segments of the older job then stop with a conflict instead of writing.

Taking over (by itself or asked) happens under ``{out}/_owners/xx/<hash>.lock`` (``flock``, so
concurrent takeovers of one pattern run one after the other). It drops the previous owner's
lines from job manifests, removes its segment manifests, its images (those its manifests list,
and every other file its pattern matches and no other owner's pattern does: images of segments
that were still running or crashed), then replaces the owner record atomically. A segment checks
before writing each image and its manifest that its spec still owns the names (`OwnerGuard`:
one ``stat`` while the record is unchanged, a shared lock so no write lands in the middle of a
takeover), and stops with `OutputConflictError` once another spec took them over.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from framefleet.errors import MediaError, OutputConflictError, OutputError
from framefleet.media.images import EXTENSIONS, _file_mode, inside, write_atomic
from framefleet.media.naming import JOBS_DIR, MANIFESTS_DIR, OWNERS_DIR, name_pattern, path_safe
from framefleet.media.specs import SegmentSpec, source_version

_SHOWN = (
    "target_fps",
    "mode",
    "resize_rate",
    "max_side_px",
    "width",
    "height",
    "quality",
    "image_format",
    "fast_decode",
)
"""Output options a conflict message names (those set)."""
_TIME = r" *-?[0-9]+(?:\.[0-9]+)?"
"""What a time field of a pattern renders to: `naming` allows only plain ``d``/``f`` specs with
a width (space or zero padded), and times are finite."""
_READ_TRIES = 50
_READ_WAIT = 0.01
"""An owner record written without hard links is created empty, then written: a reader that
finds it empty or cut waits up to 0.5 s for the rest before calling it unreadable."""


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The spec that owns a pattern of image names."""

    identity: str
    record_id: str
    content: str
    video_path: str
    pattern: str
    output: dict[str, Any]
    timestamps_path: str | None = None
    version: str | None = None
    """`specs.source_version` of the files its images are made from (None: a record written
    before versions were kept; such an owner is replaced by a newer version of itself)."""

    @classmethod
    def of(cls, spec: SegmentSpec, *, version: str | None) -> Owner:
        output = {k: v for k, v in asdict(spec.output).items() if k != "out_dir"}
        return cls(
            identity=spec.identity,
            record_id=spec.record_id,
            content=spec.content,
            video_path=spec.video_path,
            pattern=pattern_of(spec),
            output=output,
            timestamps_path=spec.timestamps_path,
            version=version,
        )

    def describe(self) -> str:
        shown = ", ".join(f"{k}={self.output.get(k)}" for k in _SHOWN if self.output.get(k))
        version = f" [size:mtime {self.version}]" if self.version else ""
        return (
            f"record {self.record_id!r} content {self.content!r} of {self.video_path}{version} "
            f"({shown})"
        )


def pattern_of(spec: SegmentSpec) -> str:
    """The image names ``spec`` can write, time fields left open (see the module docstring)."""
    output = spec.output
    return name_pattern(
        output.name_template,
        record_id=spec.record_id,
        content=spec.content,
        ext=EXTENSIONS[output.image_format],
    )


def owner_path(root: Path, pattern: str) -> Path:
    key = hashlib.sha256(pattern.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return inside(root, f"{OWNERS_DIR}/{key[:2]}/{key}.json")


def check_unchanged(spec: SegmentSpec) -> str | None:
    """The version of ``spec``'s files on disk now (None: unreadable now; the segment then
    reports why), refusing a spec planned against another version.

    Raises:
        MediaError: the video or its timestamps CSV changed since the job was planned.
    """
    now = source_version(spec.video_path, spec.timestamps_path)
    if spec.source_version is not None and now is not None and now != spec.source_version:
        raise MediaError(
            f"{spec.video_path!r} (or its timestamps CSV) changed since the job was planned "
            f"(size:mtime {spec.source_version} then, {now} now); plan the job again "
            "(the watcher does so by itself)"
        )
    return now


def read_owner(path: Path) -> Owner | None:
    """The owner recorded at ``path``, or None when there is none."""
    data = b""
    for _ in range(_READ_TRIES):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _unreadable(path, e) from e
        if data.endswith(b"\n"):  # complete: every record ends with one
            break
        time.sleep(_READ_WAIT)  # being written (see _READ_WAIT)
    try:
        return Owner(**json.loads(data))
    except (ValueError, TypeError) as e:
        raise _unreadable(path, e if data else "it is empty") from e


def _unreadable(path: Path, why: object) -> OutputError:
    return OutputError(
        f"owner record {str(path)!r} is unreadable ({why}); delete it and re-run with --force"
    )


def claim_names(
    root: Path, spec: SegmentSpec, *, takeover: bool = False, corrects: bool = False
) -> bool:
    """Make ``spec`` the owner of its image names under ``root``; True when it took them over.

    Args:
        takeover: replace any other owner (its images and manifests are removed first); an
            owner made from an older version of the same video and output is replaced
            without it (see the module docstring).
        corrects: ``spec`` is planned from the catalog as it is now (the planner), so it also
            replaces an owner of the same video version and output made with other metadata:
            a sidecar's corrected start time, another clock or grid anchor.

    Raises:
        MediaError: the spec's files changed since it was planned (nothing is claimed).
        OutputConflictError: another spec owns these names and ``takeover`` is False.
        OutputError: the output root cannot be written.
    """
    now = check_unchanged(spec)  # a stale spec claims nothing, removes nothing
    mine = Owner.of(spec, version=spec.source_version or now)
    path = owner_path(root, mine.pattern)
    current = read_owner(path)
    if current is None and _create_exclusive(path, mine):
        return False
    if current is not None and current.identity == mine.identity:
        return False
    with _locked(_lock_path(path), fcntl.LOCK_EX):
        while (current := read_owner(path)) is None:  # removed by hand since: create it
            if _create_exclusive(path, mine):
                return False
        if current.identity == mine.identity:  # a concurrent claim of the same spec won
            return False
        if not (takeover or _replaces(mine, current, now, corrects=corrects)):
            raise OutputConflictError(conflict_message(current, mine, root))
        _supersede(root, current)
        write_atomic(path, _encode(mine))
    return True


def _replaces(mine: Owner, current: Owner, now: str | None, *, corrects: bool) -> bool:
    """True when ``mine`` is a newer version of ``current``: the same video and output, made
    from the files on disk, where ``current``'s files are no longer there (or, ``corrects``,
    are the same version, with the metadata ``mine`` was planned from now)."""
    if not (
        current.video_path == mine.video_path
        and current.output == mine.output
        and now is not None
        and mine.version == now
    ):
        return False
    if corrects and current.version == mine.version:
        return True
    return current.version != source_version(current.video_path, current.timestamps_path)


def still_owner(root: Path, spec: SegmentSpec) -> bool:
    """True while ``spec`` owns its names (a later takeover makes this False)."""
    current = read_owner(owner_path(root, pattern_of(spec)))
    return current is not None and current.identity == spec.identity


class OwnerGuard:
    """A segment's hold on its names: `writing` checks that its spec still owns them.

    The check costs one ``stat`` of the owner record while that stays the file seen last
    (inode, mtime, size); the record is read again only when it changed. Writes happen under a
    shared lock on the pattern, so a takeover (exclusive) never runs in the middle of one: an
    image is either written before the takeover (and removed by it) or refused after it.
    """

    def __init__(self, root: Path, spec: SegmentSpec) -> None:
        self._root = root
        self._spec = spec
        self._path = owner_path(root, pattern_of(spec))
        self._seen: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the names for one write.

        Raises:
            OutputConflictError: another spec took the names over (nothing is written).
        """
        with _locked(_lock_path(self._path), fcntl.LOCK_SH):
            self._check()
            yield

    def _check(self) -> None:
        try:
            st = os.stat(self._path)
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen is not None and seen == self._seen:
            return
        current = read_owner(self._path)
        if current is None or current.identity != self._spec.identity:
            spec = self._spec
            by = "nobody (the record was removed)" if current is None else current.describe()
            raise OutputConflictError(
                f"the images of {spec.record_id!r} {spec.content!r} under {self._root} were "
                f"taken over by {by} while this segment ran (a --force run or a changed "
                "video); this segment stopped and its manifest is not written"
            )
        self._seen = seen


def conflict_message(current: Owner, mine: Owner, root: Path) -> str:
    """Why ``mine`` may not write, and what to do instead."""
    return (
        f"{root} already holds images with these names from another spec: "
        f"{current.describe()}; this run is {mine.describe()}. Nothing was overwritten. "
        "To replace them pass --force; to keep both, write to another --out or give "
        "--name-template a pattern that tells them apart"
    )


def _supersede(root: Path, owner: Owner) -> None:
    """Remove an owner's manifests and images (see the module docstring); the caller holds the
    pattern's lock. Manifests go first, so no line ever names a removed image."""
    with _locked(root / OWNERS_DIR / "jobs.lock", fcntl.LOCK_EX):  # one rewrite at a time
        for job_manifest in sorted((root / JOBS_DIR).glob("*.jsonl")):
            _drop_lines(job_manifest, owner.identity)
    folder = root / MANIFESTS_DIR / path_safe(owner.record_id) / path_safe(owner.content)
    for manifest in sorted(folder.glob(f"*.{owner.identity}.jsonl")):
        try:
            lines = manifest.read_bytes().splitlines()
            manifest.unlink()
        except OSError:  # gone already, or not a file: nothing of it to follow
            continue
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError, OSError):
                inside(root, json.loads(line)["path"]).unlink(missing_ok=True)
    for image in _unlisted_images(root, owner.pattern):
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            image.unlink(missing_ok=True)


def _unlisted_images(root: Path, pattern: str) -> list[Path]:
    """The files under ``root`` whose names ``pattern`` matches and no other owner's does
    (none when an owner record cannot be read: its names are unknown)."""
    found: list[tuple[Path, str]] = [(root, "")]
    parts = pattern.split("/")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        deeper: list[tuple[Path, str]] = []
        for folder, relative in found:
            if "\x00" not in part:  # a literal name: no listing
                path = folder / part
                if path.is_file() if last else path.is_dir() and not path.is_symlink():
                    deeper.append((path, relative + part))
                continue
            regex = _name_regex(part)
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        kind = (
                            entry.is_file(follow_symlinks=False)
                            if last
                            else entry.is_dir(follow_symlinks=False)
                        )
                        if kind and regex.fullmatch(entry.name):
                            deeper.append((Path(entry.path), relative + entry.name))
            except OSError:
                continue
        found = deeper if last else [(path, f"{relative}/") for path, relative in deeper]
    if not found:
        return []  # the usual case: its manifests listed every image
    # Owners listed after the files: an image found was written after its owner's record.
    others = _other_patterns(root, pattern)
    if others is None:
        return []
    regexes = [_name_regex(p) for p in others]
    return [path for path, name in found if not any(r.fullmatch(name) for r in regexes)]


def _name_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_TIME.join(re.escape(piece) for piece in pattern.split("\x00")))


def _other_patterns(root: Path, pattern: str) -> list[str] | None:
    """The patterns of every other owner under ``root``; None when a record is unreadable."""
    patterns = []
    for record in (root / OWNERS_DIR).glob("*/*.json"):
        try:
            other = json.loads(record.read_bytes())["pattern"]
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(other, str):
            return None
        if other != pattern:
            patterns.append(other)
    return patterns


def _drop_lines(path: Path, identity: str) -> None:
    try:
        lines = path.read_bytes().splitlines(keepends=True)
    except OSError:
        return
    kept = [line for line in lines if _spec_of(line) != identity]
    if len(kept) != len(lines):
        write_atomic(path, b"".join(kept))


def _spec_of(line: bytes) -> object:
    try:
        return json.loads(line).get("spec")
    except (ValueError, AttributeError):
        return None


def _encode(owner: Owner) -> bytes:
    return (json.dumps(asdict(owner), sort_keys=True) + "\n").encode("utf-8", "surrogatepass")


def _lock_path(record: Path) -> Path:
    return record.with_suffix(".lock")


def _open_lock(path: Path) -> int:
    """A descriptor to ``flock`` (read-only: a worker of another user in the group may lock
    a file it cannot write)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise OutputError(f"cannot lock {str(path)!r}: {e.strerror or e}") from e


@contextlib.contextmanager
def _locked(path: Path, operation: int) -> Iterator[None]:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # releases the lock


def _create_exclusive(path: Path, owner: Owner) -> bool:
    """Write the owner record only if none exists (a hard link never replaces a file), with
    the permissions a normal write gives (0666 less the umask), never half-written."""
    data = _encode(owner)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".owner.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write to {str(path.parent)!r}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())
            f.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create instead
            return _create_in_one_write(path, data)
        return True
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_in_one_write(path: Path, data: bytes) -> bool:
    """Create ``path`` exclusively and write ``data`` in one ``write`` (a reader may still see
    it empty for that moment: `read_owner` waits for the rest)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, _file_mode())
        if os.write(fd, data) != len(data):
            raise OSError(f"short write of {len(data)} bytes")
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True
