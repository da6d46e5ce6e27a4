"""Who owns which image names under an output root: one spec per set of names, never two.

The images of one recording's content are named by a template; the names it can give (the
template with the record id, content and extension filled in, time fields left open: its
*pattern*) belong to exactly one *spec identity* (video and its version, record, content, clock,
output options). The first segment or planner to write a pattern records the owner in
``{out}/_owners/xx/<hash of pattern>.json`` (created exclusively, so two writers cannot both
win). Anyone else who would write the same names is refused with an error that says how to
proceed, so two specs, two videos or two record ids never overwrite each other's images while
their manifests say otherwise.

A newer version of the same thing (the same video file and output options, but the file
changed, or its clock or start time did) replaces its older self by itself: that is how a
re-extracted recording replaces its earlier images. Anything else takes over only when asked
(``--force``). Taking over removes the previous owner's images and segment manifests, drops its
lines from job manifests, then replaces the owner record atomically: every manifest line keeps
describing a file on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from framefleet.errors import OutputConflictError, OutputError
from framefleet.media.images import EXTENSIONS, inside, write_atomic
from framefleet.media.naming import JOBS_DIR, MANIFESTS_DIR, OWNERS_DIR, name_pattern, path_safe
from framefleet.media.specs import SegmentSpec

_SHOWN = (
    "target_fps",
    "mode",
    "resize_rate",
    "max_side_px",
    "width",
    "height",
    "image_format",
    "fast_decode",
)
"""Output options a conflict message names (those set)."""


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The spec that owns a pattern of image names."""

    identity: str
    record_id: str
    content: str
    video_path: str
    pattern: str
    output: dict[str, Any]

    @classmethod
    def of(cls, spec: SegmentSpec) -> Owner:
        output = {k: v for k, v in asdict(spec.output).items() if k != "out_dir"}
        return cls(
            identity=spec.identity,
            record_id=spec.record_id,
            content=spec.content,
            video_path=spec.video_path,
            pattern=pattern_of(spec),
            output=output,
        )

    def describe(self) -> str:
        shown = ", ".join(f"{k}={self.output.get(k)}" for k in _SHOWN if self.output.get(k))
        return f"record {self.record_id!r} content {self.content!r} of {self.video_path} ({shown})"


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


def read_owner(path: Path) -> Owner | None:
    """The owner recorded at ``path``, or None when there is none."""
    try:
        data = json.loads(path.read_bytes())
        return Owner(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        raise OutputError(
            f"owner record {str(path)!r} is unreadable ({e}); delete it and re-run with --force"
        ) from e


def claim_names(root: Path, spec: SegmentSpec, *, takeover: bool = False) -> bool:
    """Make ``spec`` the owner of its image names under ``root``; True when it took them over.

    Args:
        takeover: replace any other owner (its images and manifests are removed first); an
            older version of the same video and output is replaced without it.

    Raises:
        OutputConflictError: another spec owns these names and ``takeover`` is False.
        OutputError: the output root cannot be written.
    """
    mine = Owner.of(spec)
    path = owner_path(root, mine.pattern)
    current = read_owner(path)
    if current is None:
        if _create_exclusive(path, mine):
            return False
        current = read_owner(path)
    if current is None or current.identity == mine.identity:
        return False
    newer_self = current.video_path == mine.video_path and current.output == mine.output
    if not (takeover or newer_self):
        raise OutputConflictError(conflict_message(current, mine, root))
    supersede(root, current)
    write_atomic(path, _encode(mine))
    return True


def still_owner(root: Path, spec: SegmentSpec) -> bool:
    """True while ``spec`` owns its names (a later takeover makes this False)."""
    current = read_owner(owner_path(root, pattern_of(spec)))
    return current is not None and current.identity == spec.identity


def conflict_message(current: Owner, mine: Owner, root: Path) -> str:
    """Why ``mine`` may not write, and what to do instead."""
    return (
        f"{root} already holds images with these names from another spec: "
        f"{current.describe()}; this run is {mine.describe()}. Nothing was overwritten. "
        "To replace them pass --force; to keep both, write to another --out or give "
        "--name-template a pattern that tells them apart"
    )


def supersede(root: Path, owner: Owner) -> None:
    """Remove an owner's images and segment manifests; drop its lines from job manifests."""
    folder = root / MANIFESTS_DIR / path_safe(owner.record_id) / path_safe(owner.content)
    for manifest in sorted(folder.glob(f"*.{owner.identity}.jsonl")):
        for line in manifest.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, OSError):
                inside(root, json.loads(line)["path"]).unlink(missing_ok=True)
        manifest.unlink(missing_ok=True)
    for job_manifest in sorted((root / JOBS_DIR).glob("*.jsonl")):
        _drop_lines(job_manifest, owner.identity)


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


def _create_exclusive(path: Path, owner: Owner) -> bool:
    """Write the owner record only if none exists (a hard link never replaces a file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".owner.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write to {str(path.parent)!r}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_encode(owner))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create instead
            try:
                with path.open("xb") as f:
                    f.write(_encode(owner))
            except FileExistsError:
                return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)
