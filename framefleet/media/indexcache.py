"""Packet indexes kept on disk, under the output root, shared by every process of a job.

``{out}/_index/<hash of the video's path>.npz``: the index arrays plus what they describe (the
video's resolved path, size, mtime, inode and ctime). A worker loads it instead of indexing the
video again; an entry whose video changed since is ignored and replaced. Size and mtime alone
do not tell: a same-size rewrite within one mtime tick, or a copy that keeps the mtime
(``cp -p``, ``rsync -t``), leaves both as they were; it changes the ctime (and a copy that is
renamed into place, the inode), which no one can set back. A rename or ``chmod`` changes the
ctime too: that only costs a miss. Files are
written atomically (temporary name, rename), read without pickle, and any entry that cannot be
read back exactly (cut, foreign, another format version) is simply a miss: the cache never
decides a result, it only saves reading the video.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from framefleet.errors import OutputError
from framefleet.media.images import write_atomic

FORMAT_VERSION = 2
_ARRAYS = {"pts": np.int64, "dts": np.int64, "is_keyframe": np.bool_, "is_disposable": np.bool_}
MAX_ENTRY_BYTES = 512 * 1024 * 1024
"""A larger file in the cache is not read (65 h at 30 fps takes ~130 MB uncompressed)."""

FileKey = tuple[str, int, int]
"""A video's resolved path, size and mtime (ns), as the caller saw them when it indexed it; the
cache adds the file's inode and ctime (`_FileState`)."""
_FileState = tuple[int, int, int, int]
"""size, mtime_ns, inode, ctime_ns of a file now."""


def entry_path(directory: Path, key: FileKey) -> Path:
    """Where the index of the video ``key`` names lives in ``directory``."""
    digest = hashlib.sha256(key[0].encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return directory / f"{digest}.npz"


def load(directory: Path, key: FileKey) -> dict[str, Any] | None:
    """The fields of the cached index of ``key`` (`probe.VideoIndex` keywords), or None."""
    path = entry_path(directory, key)
    try:
        with path.open("rb") as f:
            blob = f.read(MAX_ENTRY_BYTES + 1)
        if len(blob) > MAX_ENTRY_BYTES:
            return None
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {name: np.asarray(data[name]) for name in _ARRAYS}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
        return None
    state = _state(key)
    described = [meta.get(k) for k in ("path", "size", "mtime_ns", "inode", "ctime_ns")]
    if state is None or described != [key[0], *state]:
        return None  # another file version (or, vanishingly rarely, another path's hash)
    count = len(arrays["pts"])
    for name, dtype in _ARRAYS.items():
        if arrays[name].dtype != dtype or arrays[name].shape != (count,):
            return None
    try:
        return _fields(meta, arrays, count)
    except (KeyError, TypeError, ValueError):
        return None


def save(directory: Path, key: FileKey, fields: dict[str, Any]) -> bool:
    """Write the index ``fields`` of ``key`` atomically; False when it cannot be written (or
    the file no longer has the size and mtime of ``key``)."""
    state = _state(key)
    if state is None:
        return False
    meta = {
        "version": FORMAT_VERSION,
        "path": key[0],
        "size": state[0],
        "mtime_ns": state[1],
        "inode": state[2],
        "ctime_ns": state[3],
        "width": fields["width"],
        "height": fields["height"],
        "codec": fields["codec"],
        "time_base": _ratio(fields["time_base"]),
        "average_fps": None if fields["average_fps"] is None else _ratio(fields["average_fps"]),
        "last_duration_pts": fields["last_duration_pts"],
        "expected_frames": fields["expected_frames"],
        "truncated": fields["truncated"],
        "stop_reason": fields["stop_reason"],
    }
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {
        name: np.asarray(fields[name], dtype=dtype) for name, dtype in _ARRAYS.items()
    }
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    try:
        write_atomic(entry_path(directory, key), buffer.getvalue())
    except OutputError:
        return False
    return True


def _state(key: FileKey) -> _FileState | None:
    """The file's state now, or None when it is gone or no longer has ``key``'s size and mtime
    (changed since the caller keyed it)."""
    try:
        st = os.stat(key[0])
    except (OSError, ValueError):
        return None
    if (st.st_size, st.st_mtime_ns) != key[1:]:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def _ratio(value: Any) -> list[int]:
    return [int(value.numerator), int(value.denominator)]


def _fields(meta: dict[str, Any], arrays: dict[str, Any], count: int) -> dict[str, Any]:
    def ratio(value: Any) -> Fraction:
        num, den = value
        if not (isinstance(num, int) and isinstance(den, int) and den > 0):
            raise ValueError(value)
        return Fraction(num, den)

    fields = {
        "path": str(meta["path"]),
        "width": int(meta["width"]),
        "height": int(meta["height"]),
        "codec": str(meta["codec"]),
        "time_base": ratio(meta["time_base"]),
        "average_fps": None if meta["average_fps"] is None else ratio(meta["average_fps"]),
        "last_duration_pts": int(meta["last_duration_pts"]),
        "expected_frames": int(meta["expected_frames"]),
        "truncated": bool(meta["truncated"]),
        "stop_reason": str(meta["stop_reason"]),
        **arrays,
    }
    if count == 0 or fields["time_base"] <= 0 or fields["last_duration_pts"] <= 0:
        raise ValueError("not an index")
    return fields
