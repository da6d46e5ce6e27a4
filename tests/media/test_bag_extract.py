"""Bag image topics as cameras: the same sampling rule, segments, manifests and outputs as a
video, checked against the messages read back independently (rosbags / mcap plain reading)."""

from __future__ import annotations

import io
import itertools
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from framefleet import read_frames
from framefleet.cli import main
from framefleet.errors import TruncatedVideoError
from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.bags import Msg, picture, reference_messages, write_mcap, write_ros1, write_ros2

T0_NS = 1_489_728_491_000_000_000
STEP_NS = 33_333_333


def _messages(topic: str, kind: str, count: int = 60, *, drop: int | None = 17) -> list[Msg]:
    """A 30 Hz camera with jittered header stamps (receive time ~5 ms later) and one dropped
    message."""
    msgs = []
    for k in range(count):
        if k == drop:
            continue
        jitter = (k * 7919) % 3_000_000 - 1_500_000
        stamp = T0_NS + k * STEP_NS + jitter
        msgs.append(Msg(topic, stamp + 5_000_000, stamp, kind, picture(k, 32, 24)))
    return msgs


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    front = _messages("/front/compressed", "jpeg")
    rear = _messages("/rear/image_raw", "bgr8", drop=None)
    return {
        "ros1": write_ros1(root / "drive.bag", front + rear),
        "ros2": write_ros2(root / "drive_ros2", front + rear),
        "mcap": write_mcap(root / "drive.mcap", front + rear),
    }


def _reference(bag: Path, topic: str) -> list[tuple[Fraction, bytes | np.ndarray]]:
    """Every message of ``topic`` in header-stamp order (equal stamps: receive order),
    with what it holds: JPEG bytes, or pixels (bgr8 flipped to RGB)."""
    refs = sorted(reference_messages(bag)[topic], key=lambda m: (m.header_ns, m.receive_ns))
    out = []
    for m in refs:
        if m.encoding == "bgr8":
            bgr = np.frombuffer(m.data, np.uint8).reshape(m.height, m.width, 3)
            out.append((Fraction(m.header_ns, 10**9), bgr[:, :, ::-1].copy()))
        else:
            out.append((Fraction(m.header_ns, 10**9), m.data))
    return out


def _expected(refs, fps: Fraction, start: Fraction) -> list[int]:
    """Brute force: for each grid time from ``start``, the last message shown then, once."""
    steps = sorted({t2 - t1 for (t1, _), (t2, _) in itertools.pairwise(refs) if t2 > t1})
    end = refs[-1][0] + steps[(len(steps) - 1) // 2]  # shown for the (lower) median step
    picked: list[int] = []
    k = 0
    while start + k / fps < end:
        g = start + Fraction(k) / fps
        shown = [i for i, (t, _) in enumerate(refs) if t <= g]
        if shown and shown[-1] not in picked:
            picked.append(shown[-1])
        k += 1
    return picked


def _spec(bag: Path, topic: str, out: Path, **output: object) -> SegmentSpec:
    return SegmentSpec(
        video_path=str(bag),
        record_id="drive",
        content=topic,
        topic=topic,
        start_timestamp=T0_NS / 10**9,
        output=OutputSpec(out_dir=str(out), **output),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("kind", ["ros1", "ros2", "mcap"])
def test_compressed_images_are_written_as_stored(bags, kind: str, tmp_path: Path) -> None:
    bag = bags[kind]
    refs = _reference(bag, "/front/compressed")
    result = process_segment(_spec(bag, "/front/compressed", tmp_path, target_fps="5"))
    picked = _expected(refs, Fraction(5), Fraction(T0_NS, 10**9))
    assert [r.timestamp for r in result.images] == [float(refs[i][0]) for i in picked]
    for image, i in zip(result.images, picked, strict=True):
        assert (tmp_path / image.path).read_bytes() == refs[i][1]  # zero re-encode
        assert (image.width, image.height) == (32, 24)


def test_raw_images_are_converted_exactly(bags, tmp_path: Path) -> None:
    bag = bags["ros1"]
    refs = _reference(bag, "/rear/image_raw")
    result = process_segment(
        _spec(bag, "/rear/image_raw", tmp_path, target_fps="3", image_format="png")
    )
    picked = _expected(refs, Fraction(3), Fraction(T0_NS, 10**9))
    assert len(result.images) == len(picked) > 0
    for image, i in zip(result.images, picked, strict=True):
        with Image.open(tmp_path / image.path) as png:
            assert np.array_equal(np.asarray(png.convert("RGB")), refs[i][1])


def test_a_resize_decodes_and_resizes_like_a_video(bags, tmp_path: Path) -> None:
    bag = bags["mcap"]
    result = process_segment(
        _spec(bag, "/front/compressed", tmp_path, target_fps="2", resize_rate=0.5)
    )
    for image in result.images:
        with Image.open(tmp_path / image.path) as jpeg:
            assert jpeg.format == "JPEG" and jpeg.size == (16, 12) == (image.width, image.height)


@given(cuts=st.lists(st.floats(0.05, 1.9), max_size=4, unique=True).map(sorted))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_segmentation_gives_the_same_images(
    bags, tmp_path_factory: pytest.TempPathFactory, cuts: list[float]
) -> None:
    bag = bags["ros2"]
    out = tmp_path_factory.mktemp("seg")
    got = []
    for a, b in itertools.pairwise([0.0, *cuts, None]):
        spec = _spec(bag, "/front/compressed", out, target_fps="7")
        spec = SegmentSpec(**{**spec.__dict__, "start_seconds": a, "end_seconds": b})
        got += [(r.timestamp, r.bytes) for r in process_segment(spec).images]
    whole = process_segment(_spec(bag, "/front/compressed", tmp_path_factory.mktemp("w"),
                                  target_fps="7"))  # fmt: skip
    assert got == [(r.timestamp, r.bytes) for r in whole.images]


def test_a_truncated_bag_keeps_the_images_before_the_cut(tmp_path: Path) -> None:
    whole = write_ros1(
        tmp_path / "whole.bag", _messages("/front/compressed", "jpeg"), chunk_bytes=4000
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.bag"
    cut.write_bytes(data[: len(data) * 2 // 3])
    spec = _spec(cut, "/front/compressed", tmp_path / "out", target_fps="5")
    with pytest.raises(TruncatedVideoError, match="stops early"):
        process_segment(spec)
    written = sorted((tmp_path / "out").rglob("*.jpg"))
    assert written, "the images before the cut are kept"
    assert not list((tmp_path / "out" / "_manifests").rglob("*.jsonl"))  # not complete


def test_extract_file_takes_a_bag_and_its_topic(bags, tmp_path: Path) -> None:
    bag = bags["ros1"]
    refused = CliRunner().invoke(main, ["extract-file", str(bag), "--out", str(tmp_path)])
    assert refused.exit_code == 1
    assert "has 2 image topics: choose one with --topic" in refused.output
    result = CliRunner().invoke(
        main, ["extract-file", str(bag), "--out", str(tmp_path / "o"), "--topic",
               "/front/compressed", "--fps", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "times from header stamps of /front/compressed" in result.output
    manifest = next((tmp_path / "o" / "_manifests").rglob("*.jsonl"))
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert lines and all(line["content"] == "/front/compressed" for line in lines)
    assert lines[0]["timestamp"] >= T0_NS / 10**9 - 0.002


def test_read_frames_on_a_bag_topic(bags) -> None:
    meta = {"path": str(bags["mcap"]), "contents": "/rear/image_raw", "record_id": "drive"}
    timestamps, data, _ = read_frames(meta, target_frame_rate=2, resize_rate=0.5)
    assert data.shape[1:] == (12, 16, 3) and len(timestamps) == len(data) >= 3
    pil = Image.fromarray(data[0])
    assert pil.size == (16, 12) and io.BytesIO() is not None
