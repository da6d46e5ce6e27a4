"""framefleet against an independent reference: same frames, same times, same pixels."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from framefleet import iter_frames, process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.clips import ClipSpec, camera_times_ms, make_clip, write_timestamps_csv
from tests.media.reference import RefFrame, decode_all, expected_picks
from tests.samples import PYDTK_SAMPLE

CLIPS = {
    "ip-gop30-30fps": ClipSpec(fps=30, frames=90, gop=30),
    "b2-gop12-25fps": ClipSpec(fps=25, frames=75, gop=12, bframes=2),
    "b3-gop250-60fps": ClipSpec(fps=60, frames=150, gop=250, bframes=3),
    "gop1-29.97fps": ClipSpec(fps="30000/1001", frames=45, gop=1),
    "vfr-gop20": ClipSpec(frames=80, gop=20, vfr_steps_ms=[33, 50, 17, 40]),
}
RATES = [Fraction(2), Fraction(5), Fraction(7, 10), Fraction(30000, 1001), Fraction(100)]
SAMPLE = PYDTK_SAMPLE / "movie" / "sample.mp4"


@pytest.fixture(scope="module", params=sorted(CLIPS))
def clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = make_clip(tmp_path_factory.mktemp("ref") / f"{request.param}.mp4", CLIPS[request.param])
    frames, end = decode_all(path)
    return path, frames, end


def _check(got: list[tuple[float, np.ndarray]], frames: list[RefFrame], picks) -> None:
    assert [t for t, _ in got] == [float(frames[n].seconds) for _, n in picks]
    for (_, rgb), (_, n) in zip(got, picks, strict=True):
        assert np.array_equal(rgb, frames[n].rgb)


@pytest.mark.parametrize("fps", RATES, ids=str)
def test_exact_mode_matches_reference(clip, fps: Fraction) -> None:
    path, frames, end = clip
    picks = expected_picks(frames, fps=fps, end_of_last=end)
    assert picks, "the reference picked nothing: a broken test"
    _check(list(iter_frames(path, target_frame_rate=str(fps))), frames, picks)


def test_keyframes_mode_takes_only_keyframes(clip) -> None:
    path, frames, end = clip
    keys = [f for f in frames if f.key]
    picks = expected_picks(keys, fps=Fraction(2), end_of_last=end)
    got = list(iter_frames(path, target_frame_rate=2, mode="keyframes"))
    _check(got, keys, picks)


def _minimal_packets(path: Path, target_pts: set[int]) -> int:
    """For each target, the packets from its GOP's keyframe up to it in decode order; union."""
    with av.open(str(path)) as c:
        packets = [(p.pts, p.is_keyframe) for p in c.demux(video=0) if p.size]
    needed: set[int] = set()
    key = 0
    for i, (pts, is_key) in enumerate(packets):
        key = i if is_key else key
        if pts in target_pts:
            needed.update(range(key, i + 1))
    return len(needed)


def test_segments_tile_exactly_and_decode_near_minimal(clip, tmp_path: Path) -> None:
    """Random segment boundaries: together exactly the whole run's images, lossless pixels;
    each segment decodes at most 1.1x its minimal packet set."""
    path, frames, end = clip
    fps = Fraction(5)
    picks = expected_picks(frames, fps=fps, end_of_last=end)
    rng = random.Random(7)
    cuts = sorted({round(rng.uniform(0.01, float(end)), 3) for _ in range(4)})
    bounds = [0.0, *cuts, None]
    output = OutputSpec(out_dir=str(tmp_path), target_fps="5", image_format="png")
    with av.open(str(path)) as c:
        first = min(p.pts for p in c.demux(video=0) if p.pts is not None)
        tb = Fraction(c.streams.video[0].time_base)
    got: list[tuple[float, np.ndarray]] = []
    for a, b in itertools.pairwise(bounds):
        assert a is not None
        spec = SegmentSpec(
            video_path=str(path), record_id="r", output=output, start_seconds=a, end_seconds=b
        )
        result = process_segment(spec, decode_threads=1)
        for record in result.images:
            with Image.open(tmp_path / record.path) as image:
                got.append((record.timestamp, np.asarray(image.convert("RGB"))))
        targets = {first + round(Fraction(r.pts_seconds) / tb) for r in result.images}
        assert result.frames_decoded <= 1.1 * _minimal_packets(path, targets)
        assert result.frames_decoded == result.frames_minimal
    _check(got, frames, picks)


def test_camera_clock_csv_decides_times(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "camera_01.mp4", ClipSpec(frames=95, gop=30))
    clock = camera_times_ms(1489728491000, 95)
    write_timestamps_csv(tmp_path / "camera_01_timestamps.csv", clock)
    frames, end = decode_all(path, clock_ms=clock)
    picks = expected_picks(frames, fps=Fraction(2), end_of_last=end)
    meta = {"path": str(path), "start_timestamp": 1489728491.0, "record_id": "016"}
    got = list(iter_frames(meta, target_frame_rate=2))
    assert [t for t, _ in got] == [(clock[n]) / 1000 for _, n in picks]
    for (_, rgb), (_, n) in zip(got, picks, strict=True):
        assert np.array_equal(rgb, frames[n].rgb)
    # The camera clock lags nominal PTS: at 3 s the CSV picks a different frame than PTS would.
    pts_times = [t for t, _ in iter_frames(str(path), target_frame_rate=2)]
    assert [round(t - 1489728491.0, 3) for t, _ in got] != [round(t, 3) for t in pts_times]


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"pydtk sample video not found at {SAMPLE}")
@pytest.mark.parametrize("fps", [Fraction(2), Fraction(15)], ids=str)
def test_pydtk_sample_video(fps: Fraction) -> None:
    frames, end = decode_all(SAMPLE)
    picks = expected_picks(frames, fps=fps, end_of_last=end)
    _check(list(iter_frames(SAMPLE, target_frame_rate=str(fps))), frames, picks)


def test_disposable_b_frames_are_never_decoded_unless_wanted(tmp_path: Path) -> None:
    """x264 defaults: non-reference B-frames reach the decoder only when they are targets."""
    path = make_clip(tmp_path / "b.mp4", ClipSpec(fps=30, frames=240, gop=250, bframes=3))
    frames, end = decode_all(path)
    picks = expected_picks(frames, fps=Fraction(2), end_of_last=end)
    spec = SegmentSpec(
        video_path=str(path),
        record_id="b",
        output=OutputSpec(out_dir=str(tmp_path / "out"), image_format="png"),
    )
    result = process_segment(spec, decode_threads=1)
    with av.open(str(path)) as c:
        first = min(p.pts for p in c.demux(video=0) if p.pts is not None)
        tb = Fraction(c.streams.video[0].time_base)
    targets = {first + round(frames[n].seconds / tb) for _, n in picks}
    gop_level = _minimal_packets(path, targets)
    assert result.images_written == len(picks)
    assert result.frames_decoded < 0.8 * gop_level, (result.frames_decoded, gop_level)
    for record, (_, n) in zip(result.images, picks, strict=True):
        with Image.open(tmp_path / "out" / record.path) as image:
            assert np.array_equal(np.asarray(image.convert("RGB")), frames[n].rgb)
