"""Where a job's exports go, and how they are written: beside the job manifest, atomically.

    {out}/_jobs/{job_id}.jsonl                  the job manifest (`framefleet.jobs.manifest`)
    {out}/_jobs/{job_id}.parquet                its images as Parquet
    {out}/_jobs/{job_id}.framesets.parquet      its frameset manifests as Parquet (``--sync``)
    {out}/_exports/{job_id}/shard-000000.tar    its images as WebDataset shards

The names come from the manifest's own name (``{job_id}`` is already path-safe there), and the
directory names from `framefleet.media.naming`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from framefleet.errors import OutputError
from framefleet.media.naming import (
    EXPORTS_DIR,
    FRAMESETS_PARQUET_SUFFIX,
    PARQUET_SUFFIX,
    SHARD_PREFIX,
)

MANIFEST_SUFFIX = ".jsonl"


def job_stem(job_manifest: Path) -> str:
    """``{job_id}`` (path-safe) from ``{out}/_jobs/{job_id}.jsonl``."""
    name = job_manifest.name
    return name[: -len(MANIFEST_SUFFIX)] if name.endswith(MANIFEST_SUFFIX) else job_manifest.stem


def parquet_path(job_manifest: Path) -> Path:
    """``{out}/_jobs/{job_id}.parquet``: the default of `write_parquet`."""
    return job_manifest.with_name(job_stem(job_manifest) + PARQUET_SUFFIX)


def framesets_parquet_path(job_manifest: Path) -> Path:
    """``{out}/_jobs/{job_id}.framesets.parquet``: the frameset manifests as Parquet."""
    return job_manifest.with_name(job_stem(job_manifest) + FRAMESETS_PARQUET_SUFFIX)


def shard_prefix(out_root: Path, job_manifest: Path) -> Path:
    """``{out}/_exports/{job_id}/shard``: the default of `write_webdataset` (shards add
    ``-000000.tar``, ``-000001.tar``...)."""
    return out_root / EXPORTS_DIR / job_stem(job_manifest) / SHARD_PREFIX


def shard_path(prefix: Path, index: int) -> Path:
    """``{prefix}-{index:06d}.tar``."""
    return prefix.with_name(f"{prefix.name}-{index:06d}.tar")


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: a temporary name in the same directory, renamed over
    ``path`` when the block ends without error, removed otherwise. Readers see the old file or
    the whole new one, never a part. The mode is what a plain ``open`` would give (0666 less the
    umask), since the kernel applies the umask to the temporary file's creation.

    Raises:
        OutputError: the directory or the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name[:64]}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise OutputError(f"cannot write to {str(path.parent)!r}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
