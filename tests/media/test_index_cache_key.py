"""The on-disk index cache never answers for another version of a file, even one with the same
size and mtime: a rewrite in place with the mtime set back, ``cp -p`` and ``rsync -t``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from framefleet.media import indexcache
from framefleet.media.probe import index_video
from tests.clips import ClipSpec, make_clip


def _key(path: Path) -> indexcache.FileKey:
    """What `probe.index_video` keys a file by."""
    st = path.resolve().stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _rewrite_in_place(video: Path, other: Path) -> None:
    mtime = video.stat().st_mtime_ns
    data = video.read_bytes()[::-1]  # other bytes, the same size
    with video.open("r+b") as f:  # same inode
        f.write(data)
    os.utime(video, ns=(mtime, mtime))


def _cp_p(video: Path, other: Path) -> None:
    """``cp -p other video`` where ``other`` has the size and mtime of ``video``."""
    mtime = video.stat().st_mtime_ns
    shutil.copyfile(video, other)  # same size: the copied bytes stand for a new version
    os.utime(other, ns=(mtime, mtime))
    shutil.copy2(other, video)


def _rsync_t(video: Path, other: Path) -> None:
    """``rsync -t``: a temporary file with the old mtime, renamed into place (a new inode)."""
    mtime = video.stat().st_mtime_ns
    temporary = video.with_name(".v.mp4.tmp")
    shutil.copyfile(video, temporary)
    os.utime(temporary, ns=(mtime, mtime))
    os.replace(temporary, video)


@pytest.mark.parametrize("change", [_rewrite_in_place, _cp_p, _rsync_t])
def test_a_new_version_with_the_same_size_and_mtime_is_a_miss(
    tmp_path: Path, change: Callable[[Path, Path], None]
) -> None:
    video = make_clip(tmp_path / "v.mp4", ClipSpec(width=64, height=48, frames=30))
    cache = tmp_path / "_index"
    index_video(video, cache_dir=cache)
    key = _key(video)
    assert indexcache.load(cache, key) is not None  # unchanged: a hit

    change(video, tmp_path / "other.mp4")
    assert _key(video) == key  # size and mtime as they were
    assert indexcache.load(cache, key) is None


def test_an_entry_for_a_file_that_changed_since_it_was_keyed_is_not_written(tmp_path: Path):
    video = make_clip(tmp_path / "v.mp4", ClipSpec(width=64, height=48, frames=30))
    cache = tmp_path / "_index"
    index_video(video, cache_dir=cache)
    fields = indexcache.load(cache, _key(video))
    assert fields is not None
    stale = _key(video)
    os.utime(video, ns=(1, 1))
    assert indexcache.save(cache, stale, fields) is False
    assert indexcache.load(cache, _key(video)) is None


def test_a_process_never_reuses_its_in_memory_index_for_another_version(tmp_path: Path) -> None:
    """The same for the per-process cache: a different video copied over with ``cp -p`` (the
    size and mtime of the first) is indexed again, not answered from memory."""
    first = make_clip(tmp_path / "a.mp4", ClipSpec(width=64, height=48, frames=30, gop=30))
    second = make_clip(tmp_path / "b.mp4", ClipSpec(width=64, height=48, frames=30, gop=10))
    size = max(first.stat().st_size, second.stat().st_size) + 16
    for clip in (first, second):  # one size for both: a trailing mp4 'free' box
        pad = size - clip.stat().st_size
        with clip.open("ab") as f:
            f.write(pad.to_bytes(4, "big") + b"free" + bytes(pad - 8))
    video = tmp_path / "v.mp4"
    shutil.copy2(first, video)
    assert int(index_video(video).is_keyframe.sum()) == 1
    os.utime(second, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns))
    shutil.copy2(second, video)  # cp -p: same size, same mtime, other bytes
    assert _key(video)[1:] == (size, video.stat().st_mtime_ns)
    assert int(index_video(video).is_keyframe.sum()) == 3
