"""The packet index: from the mp4 sample table (equal to a demux pass) and shared on disk."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from framefleet.media import indexcache
from framefleet.media.mp4index import sample_table
from framefleet.media.probe import VideoIndex, _build_index, _file_key, _scan_index, index_video
from tests.clips import ClipSpec, make_clip
from tests.media.test_reference import CLIPS, SAMPLE

SHAPES = {**CLIPS, "b2-faststart": ClipSpec(frames=80, gop=20, bframes=2, faststart=True)}
FIELDS = [f for f in VideoIndex.__dataclass_fields__ if f != "memo"]


def _same(a: VideoIndex, b: VideoIndex) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y, name


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_sample_table_gives_the_index_of_a_demux_pass(tmp_path: Path, shape: str) -> None:
    video = make_clip(tmp_path / f"{shape}.mp4", SHAPES[shape])
    with av.open(str(video)) as container:
        assert sample_table(container, str(video)) is not None, "fell back to a demux pass"
    _same(_build_index(str(video)), _scan_index(str(video)))


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"pydtk sample video not found at {SAMPLE}")
def test_the_sample_table_of_the_pydtk_sample() -> None:
    _same(_build_index(str(SAMPLE)), _scan_index(str(SAMPLE)))


def test_a_cut_file_or_another_container_falls_back_to_the_demux_pass(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=150, gop=15, faststart=True))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    with av.open(str(cut)) as container:
        assert sample_table(container, str(cut)) is None
    index = _build_index(str(cut))
    assert index.truncated and index.frame_count < 150
    mkv = tmp_path / "clip.mkv"
    with av.open(str(whole)) as src, av.open(str(mkv), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    with av.open(str(mkv)) as container:
        assert sample_table(container, str(mkv)) is None
    assert _build_index(str(mkv)).frame_count == 150


def test_the_disk_cache_is_shared_validated_and_replaced(tmp_path: Path) -> None:
    video = make_clip(tmp_path / "v.mp4", ClipSpec(frames=60, gop=15, bframes=2))
    cache = tmp_path / "out" / "_index"
    built = index_video(video, cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    key = _file_key(video)
    assert entry == indexcache.entry_path(cache, key)
    loaded = indexcache.load(cache, key)
    assert loaded is not None
    _same(VideoIndex(**loaded), built)
    # Another version of the file (size or mtime): the entry is not used, and is replaced.
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert indexcache.load(cache, _file_key(video)) is None
    index_video(video, cache_dir=cache)
    assert indexcache.load(cache, _file_key(video)) is not None
    # Junk in the cache is a miss, never an error.
    for junk in (b"", b"PK\x03\x04 not a zip", os.urandom(3000)):
        entry.write_bytes(junk)
        assert indexcache.load(cache, _file_key(video)) is None
    # An unwritable cache costs the cache only.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    assert not indexcache.save(blocked / "_index", key, {f: getattr(built, f) for f in FIELDS})
