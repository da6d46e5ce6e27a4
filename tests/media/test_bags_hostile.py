"""Bags whose contents come from outside: random stamps, random bytes, damaged real bags.
Only framefleet's own errors may escape, and the timing rule holds for any stamps."""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.errors import FramefleetError
from framefleet.media.bags import image_topics, read_images, topic_index
from framefleet.media.sampling import pick_frames
from tests.bags import Msg, picture, reference_messages, write_mcap, write_ros1
from tests.media.test_bags import _brute_force

T0 = 1_600_000_000 * 10**9
_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(
    offsets_ms=st.lists(st.integers(0, 400), min_size=1, max_size=10),
    fps=st.sampled_from([Fraction(3), Fraction(10), Fraction(30), Fraction(1, 3)]),
)
def test_any_stamps_sort_stably_and_sample_like_a_brute_force(
    offsets_ms: list[int], fps: Fraction, tmp_path_factory: pytest.TempPathFactory
) -> None:
    msgs = [
        Msg("/cam", T0 + k * 50_000_000, T0 + ms * 1_000_000, "jpeg", picture(0, 4, 4))
        for k, ms in enumerate(offsets_ms)
    ]
    bag = write_ros1(tmp_path_factory.mktemp("b") / "a.bag", msgs)
    ref = reference_messages(bag)["/cam"]
    index = topic_index(bag, "/cam", clock="header")
    order = sorted(range(len(ref)), key=lambda i: ref[i].header_ns)
    assert list(index.positions) == order
    start = Fraction(index.times_ns[0], 10**9)
    picks = pick_frames(index.seconds(start), end_of_last=index.end_seconds(start), target_fps=fps)
    got = [(index.positions[p.frame], start + p.grid_seconds) for p in picks]
    assert got == _brute_force(ref, start, Fraction(index.end_ns, 10**9), fps)


def _exercise(path: Path) -> None:
    """Everything a caller does with a bag; only framefleet errors may escape."""
    try:
        topics = image_topics(path)
    except FramefleetError:
        topics = []
    for clock in ("receive", "header"):
        try:
            index = topic_index(path, "/cam", clock=clock)  # type: ignore[arg-type]
            for _, image in read_images(path, "/cam", index.positions):
                if image.rgb is None:
                    image.to_rgb()
        except FramefleetError:
            pass
    assert all(t.count > 0 for t in topics)


@_SETTINGS
@given(
    magic=st.sampled_from([b"", b"#ROSBAG V2.0\n", b"\x89MCAP0\r\n"]),
    body=st.binary(max_size=600),
)
def test_random_bytes_raise_only_framefleet_errors(
    magic: bytes, body: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("r") / "x.bag"
    path.write_bytes(magic + body)
    _exercise(path)


@functools.cache
def _valid_bags(root: Path) -> dict[str, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    msgs = [Msg("/cam", T0 + k * 10**8, T0 + k * 10**8, "png", picture(k, 6, 4)) for k in range(4)]
    raw = [
        Msg("/cam", T0 + k * 10**8, T0 + k * 10**8, "bayer_rggb8", picture(k, 6, 4))
        for k in range(3)
    ]
    bags = {
        "ros1": write_ros1(root / "a.bag", msgs, chunk_bytes=500),
        "ros1-lz4": write_ros1(root / "b.bag", raw, compression="lz4"),
        "mcap": write_mcap(root / "c.mcap", msgs, compression="none", chunk_bytes=500),
        "mcap-zstd": write_mcap(root / "d.mcap", raw),
    }
    return {kind: path.read_bytes() for kind, path in bags.items()}


@_SETTINGS
@given(
    kind=st.sampled_from(["ros1", "ros1-lz4", "mcap", "mcap-zstd"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
def test_damaged_real_bags_raise_only_framefleet_errors(
    kind: str,
    cut: float,
    flips: list[tuple[float, int]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = bytearray(_valid_bags(tmp_path_factory.getbasetemp() / "valid")[kind])
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    del data[max(1, int(cut * len(data))) :]
    path = tmp_path_factory.mktemp("d") / ("x.bag" if kind.startswith("ros1") else "x.mcap")
    path.write_bytes(bytes(data))
    _exercise(path)
