"""A job's images as WebDataset shards: plain tar files a PyTorch loader streams.

Each image is a *sample* of two members sharing a key: ``{key}.jpg`` (or ``.png``, ``.webp``:
the image's bytes, as written) and ``{key}.json`` (its manifest line, plus ``"source"``: the
source video's catalog fields when ``sources`` are given). ``shard_size`` samples go in each
shard ``{dest}-000000.tar``, ``{dest}-000001.tar``..., in manifest order.

Keys are derived from the image's path relative to the output root (`sample_key`), so they are
unique, the same in every run, and hold no ``.`` (WebDataset takes a key to end at the first dot
of a member's name) and no ``/`` (no directories in a shard).

Shards are deterministic (members in manifest order, mtime 0, uid/gid 0, no user names, PAX
format), each written through a temporary name and a rename; shards a previous run wrote beyond
the last one of this run are removed. Images are streamed from disk into the tar, so memory
stays flat whatever the shard size (only the keys, to refuse a duplicate, are kept). Every image
is checked to be on disk before the first shard is written. Standard library only.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from framefleet.errors import ConfigError, OutputError
from framefleet.export.layout import atomic_output, shard_path, shard_prefix
from framefleet.export.lines import (
    Line,
    Sources,
    check_file,
    check_images,
    iter_lines,
    source_fields,
)

MAX_SHARD_SIZE = 10_000_000

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
_ESCAPED = {"^": "^^", ",": "^,", "#": "^#", ".": ",", "/": "#"}
_SPECIAL = re.compile(r"[\^,#./]")


def sample_key(path: str) -> str:
    """The sample key of an image path: its extension dropped, ``/`` as ``#``, ``.`` as ``,``.

    ``016_x/camera%2Ffront/016_x-1489728491.000.jpg`` gives
    ``016_x#camera%2Ffront#016_x-1489728491,000``. The characters ``^``, ``,`` and ``#``
    themselves (never in a default name) are written ``^^``, ``^,`` and ``^#``, so that two
    different paths never give the same key.
    """
    lower = path.lower()
    for ext in _IMAGE_EXTENSIONS:
        if lower.endswith(ext) and len(path) > len(ext):
            path = path[: -len(ext)]
            break
    return _SPECIAL.sub(lambda m: _ESCAPED[m.group()], path)


def write_webdataset(
    job_manifest: Path,
    out_root: Path,
    *,
    dest: Path | None = None,
    shard_size: int = 1000,
    sources: Sources | None = None,
) -> list[Path]:
    """Pack the images of a job manifest into tar shards (see the module docstring).

    Args:
        job_manifest: ``{out}/_jobs/{job_id}.jsonl``.
        out_root: the job's output root (image paths in the manifest are relative to it).
        dest: the shards' path prefix; default ``{out}/_exports/{job_id}/shard``.
        shard_size: samples per shard, 1 to 10,000,000.
        sources: the source rows by ``(record_id, content)`` (`sources_by_content`); each
            sample's JSON then has them under ``"source"``.

    Returns:
        The shards written, in order (none for a manifest without images).

    Raises:
        ConfigError: a bad ``shard_size``, or ``sources`` lacks a line's source.
        OutputError: the manifest cannot be read, an image is missing or changed, two lines
            name the same image, or a shard cannot be written.
    """
    if (
        not isinstance(shard_size, int)
        or isinstance(shard_size, bool)
        or not 1 <= shard_size <= MAX_SHARD_SIZE
    ):
        raise ConfigError(
            f"shard_size must be a whole number of images from 1 to {MAX_SHARD_SIZE:,}, "
            f"got {shard_size!r}"
        )
    job_manifest = Path(job_manifest)
    root = Path(out_root).resolve()
    prefix = shard_prefix(root, job_manifest) if dest is None else Path(dest)
    check_images(job_manifest, root, key=sample_key)  # all there before a shard is written
    samples = _samples(job_manifest, root, sources)
    shards: list[Path] = []
    pending = next(samples, None)
    while pending is not None:
        target = shard_path(prefix, len(shards))
        with atomic_output(target) as f:
            pending = _write_shard(f, pending, samples, shard_size)
        shards.append(target)
    _remove_stale(prefix, len(shards))
    return shards


_Sample = tuple[Line, str, Path, bytes]
"""A manifest line, its key, its image file, its JSON member."""


def _samples(manifest: Path, root: Path, sources: Sources | None) -> Iterator[_Sample]:
    for line in iter_lines(manifest):
        if line.path is None:
            continue  # a requested time no frame answers: a row, not an image
        data: dict[str, Any] = dict(line.data)
        if sources is not None:
            data["source"] = source_fields(line, sources)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        yield line, sample_key(line.path), root / line.path, text.encode("ascii")


def _write_shard(
    f: BinaryIO, first: _Sample, rest: Iterator[_Sample], shard_size: int
) -> _Sample | None:
    """Write ``first`` and up to ``shard_size - 1`` more; return the next sample, if any."""
    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        sample: _Sample | None = first
        for _ in range(shard_size):
            if sample is None:
                return None
            _add_sample(tar, sample)
            sample = next(rest, None)
        return sample


def _add_sample(tar: tarfile.TarFile, sample: _Sample) -> None:
    line, key, image, meta = sample
    reader = _ImageReader(image, line)
    try:
        with image.open("rb") as src:
            found = os.fstat(src.fileno())
            check_file(image, found, line)  # checked before, but it may have changed since
            head = src.read(16)
            src.seek(0)
            reader.src, reader.left = src, found.st_size
            tar.addfile(_member(f"{key}.{_extension(head, image)}", found.st_size), reader)
    except OSError as e:
        if reader.src is not None:
            raise  # writing the shard failed: `atomic_output` says so
        raise reader.error(e.strerror or str(e)) from e
    tar.addfile(_member(f"{key}.json", len(meta)), io.BytesIO(meta))


class _ImageReader:
    """The image as tarfile reads it, with a read error or a short file reported as the
    image's problem (not as the shard's)."""

    def __init__(self, image: Path, line: Line) -> None:
        self.image, self.line = image, line
        self.src: BinaryIO | None = None
        self.left = 0

    def read(self, size: int = -1) -> bytes:
        assert self.src is not None
        try:
            data = self.src.read(size)
        except OSError as e:
            raise self.error(e.strerror or str(e)) from e
        self.left -= len(data)
        if self.left > 0 and (size < 0 or len(data) < size):
            raise self.error("it shrank while being packed")
        return data

    def error(self, reason: str) -> OutputError:
        return OutputError(
            f"cannot read image {str(self.image)!r} (manifest line {self.line.number}): {reason}"
        )


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _extension(head: bytes, image: Path) -> str:
    """The member extension for an image, from its first bytes (a name need not say it)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    raise OutputError(
        f"{str(image)!r} is not a JPEG, PNG or WebP image (it starts with {head[:8]!r}); "
        "restore it, or run the job again (--force) to rewrite it"
    )


_SHARD_NAME = re.compile(r"-(\d{6,})\.tar")


def _remove_stale(prefix: Path, count: int) -> None:
    """Remove ``{prefix}-NNNNNN.tar`` shards numbered ``count`` and above (a previous run's)."""
    try:
        names = [p.name for p in prefix.parent.iterdir()] if prefix.parent.is_dir() else []
        for name in names:
            if not name.startswith(prefix.name):
                continue
            match = _SHARD_NAME.fullmatch(name, len(prefix.name))
            if match is not None and int(match.group(1)) >= count:
                (prefix.parent / name).unlink(missing_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot remove old shards under {str(prefix.parent)!r}: {e.strerror or e}"
        ) from e
