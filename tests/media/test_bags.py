"""Image topics of bags: every kind of bag written by the real writers, every message checked
against an independent read (rosbags / mcap plain iteration), the timing and sampling rule,
what is read, and truncated, empty and hostile bags."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from framefleet.errors import (
    ConfigError,
    FramefleetError,
    InvalidBagError,
    TruncatedBagError,
)
from framefleet.media.bags import image_topics, read_images, topic_index
from framefleet.media.bags import reader as bag_reader
from framefleet.media.sampling import pick_frames
from tests.bags import (
    RAW_ENCODINGS,
    Msg,
    RefMessage,
    bytes_read,
    picture,
    reference_messages,
    tree_size,
    write_mcap,
    write_ros1,
    write_ros2,
)
from tests.media.test_bags_pixels import expected_rgb

T0 = 1_700_000_000 * 10**9
MS = 1_000_000


def standard_messages() -> list[Msg]:
    """Cameras of every kind: a jittered JPEG camera with a dropped message, stamps out of
    order and two equal stamps; PNG; a topic alternating JPEG and PNG; one topic per raw
    encoding (with row padding; big-endian mono16)."""
    msgs = []
    jitter = [0, 3, -2, 1, -3, 0, 2, -1, 0, 0, 0, 0]
    for k in range(12):
        if k == 5:
            continue  # dropped by the camera
        stamp = T0 + k * 100 * MS + jitter[k] * MS
        if k == 8:
            stamp -= 150 * MS  # reordered: taken before message 7
        if k == 11:
            stamp = T0 + 10 * 100 * MS  # the same stamp as message 10
        msgs.append(Msg("/cam/jpeg", T0 + k * 100 * MS + 20 * MS, stamp, "jpeg", picture(k)))
    for k in range(4):
        t = T0 + k * 250 * MS
        msgs.append(Msg("/cam/png", t + 5 * MS, t, "png", picture(k + 40, 10, 6)))
        kind = "jpeg" if k % 2 == 0 else "png"
        msgs.append(Msg("/cam/mixed", t + 7 * MS, t + MS, kind, picture(k + 50)))
    for n, encoding in enumerate(RAW_ENCODINGS):
        for k in range(2):
            t = T0 + k * 500 * MS + n * MS
            msgs.append(
                Msg(
                    f"/cam/raw/{encoding}",
                    t + 9 * MS,
                    t,
                    encoding,
                    picture(k + n, 7, 5),
                    pad=3 * k,
                    bigendian=encoding == "mono16" and k == 1,
                )
            )
    return msgs


OTHERS = [("/imu", T0 + k * 200 * MS) for k in range(5)]


def make_bag(kind: str, root: Path, msgs: list[Msg], others: list[tuple[str, int]]) -> Path:
    if kind == "ros1":
        return write_ros1(root / "drive.bag", msgs, others=others)
    if kind == "ros1-lz4":
        return write_ros1(
            root / "drive.bag", msgs, others=others, compression="lz4", chunk_bytes=4000
        )
    if kind == "ros1-bz2":
        return write_ros1(root / "drive.bag", msgs, others=others, compression="bz2")
    if kind == "ros2-db3":
        return write_ros2(root / "drive", msgs, others=others)
    if kind == "ros2-mcap":
        return write_ros2(root / "drive", msgs, others=others, storage="mcap")
    if kind == "mcap-cdr":
        return write_mcap(root / "drive.mcap", msgs, others=others, chunk_bytes=6000)
    if kind == "mcap-ros1":
        return write_mcap(
            root / "drive.mcap",
            msgs,
            others=others,
            encoding="ros1",
            compression="none",
            chunk_bytes=6000,
        )
    raise AssertionError(kind)


KINDS = ["ros1", "ros1-lz4", "ros1-bz2", "ros2-db3", "ros2-mcap", "mcap-cdr", "mcap-ros1"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_message_matches_an_independent_read(kind: str, tmp_path: Path) -> None:
    msgs = standard_messages()
    bag = make_bag(kind, tmp_path, msgs, OTHERS)
    ref = reference_messages(bag)
    topics = image_topics(bag)
    assert [t.topic for t in topics] == sorted(ref)
    for info in topics:
        messages = ref[info.topic]
        assert info.count == len(messages)
        assert info.first_header_ns == min(m.header_ns for m in messages)
        assert info.last_header_ns == max(m.header_ns for m in messages)
        assert (info.first_receive_ns, info.last_receive_ns) == (
            messages[0].receive_ns,
            messages[-1].receive_ns,
        )
        assert info.msg_type.endswith("Image")
        assert ("/msg/" in info.msg_type) == (kind.startswith("ros2") or kind == "mcap-cdr")
        assert (info.md5sum is not None) == kind.startswith("ros1")
        assert not info.truncated
        for clock in ("header", "receive"):
            index = topic_index(bag, info.topic, clock=clock)
            key = (lambda m: m.header_ns) if clock == "header" else (lambda m: m.receive_ns)
            expected = sorted(range(len(messages)), key=lambda i: key(messages[i]))
            assert list(index.positions) == expected  # stable: equal stamps keep receive order
            assert list(index.times_ns) == [key(messages[i]) for i in expected]
            assert list(index.receive_ns) == [messages[i].receive_ns for i in expected]
        images = dict(read_images(bag, info.topic, range(len(messages))))
        for position, message in enumerate(messages):
            _check_image(images[position], message)
    mixed = topic_index(bag, "/cam/mixed", clock="header")
    assert mixed.encodings == ("jpeg", "png", "jpeg", "png")  # per-message formats
    assert next(t for t in topics if t.topic == "/cam/mixed").encodings == ("jpeg", "png")


def _check_image(image: object, message: RefMessage) -> None:
    from framefleet.media.bags import BagImage

    assert isinstance(image, BagImage)
    assert image.header_ns == message.header_ns
    assert image.receive_ns == message.receive_ns
    if message.width == 0:  # compressed: the bytes exactly as stored
        assert image.data == message.data
        assert image.rgb is None
        assert image.encoding == message.encoding  # the test writes "jpeg"/"png"
        assert image.to_rgb().shape == (image.height, image.width, 3)
    else:
        assert image.rgb is not None
        assert image.encoding == message.encoding
        np.testing.assert_array_equal(image.rgb, expected_rgb(message))


def test_sampling_over_the_index_matches_a_brute_force_read(tmp_path: Path) -> None:
    msgs = standard_messages()
    bag = write_ros1(tmp_path / "drive.bag", msgs)
    messages = reference_messages(bag)["/cam/jpeg"]
    index = topic_index(bag, "/cam/jpeg", clock="header")
    start = Fraction(index.times_ns[0], 10**9)
    for fps in (Fraction(5), Fraction(10), Fraction(30), Fraction(7, 3)):
        picks = pick_frames(
            index.seconds(start), end_of_last=index.end_seconds(start), target_fps=fps
        )
        got = [(index.positions[p.frame], start + p.grid_seconds) for p in picks]
        assert got == _brute_force(messages, start, Fraction(index.end_ns, 10**9), fps)


def _brute_force(
    messages: list[RefMessage], start: Fraction, end: Fraction, fps: Fraction
) -> list[tuple[int, Fraction]]:
    """The message shown at each grid time: the latest stamp <= g, the later received of equal
    stamps; each emitted once, at the first grid time that shows it."""
    out: list[tuple[int, Fraction]] = []
    for k in itertools.count():
        g = start + k / fps
        if g >= end:
            return out
        shown = [
            (m.header_ns, i) for i, m in enumerate(messages) if Fraction(m.header_ns, 10**9) <= g
        ]
        if shown:
            position = max(shown)[1]
            if not out or out[-1][0] != position:
                out.append((position, g))
    raise AssertionError


def test_timing_rule_jitter_reordering_equal_stamps_and_end(tmp_path: Path) -> None:
    bag = write_ros1(tmp_path / "drive.bag", standard_messages())
    index = topic_index(bag, "/cam/jpeg", clock="header")
    assert list(index.times_ns) == sorted(index.times_ns)
    assert index.reordered == 1  # message 8 was taken before message 7
    equal = [i for i, t in enumerate(index.times_ns) if index.times_ns.count(t) > 1]
    assert [index.positions[i] for i in equal] == [9, 10]  # receive order kept: the later wins
    steps = sorted(b - a for a, b in itertools.pairwise(index.times_ns) if b > a)
    assert index.end_ns - index.times_ns[-1] == steps[(len(steps) - 1) // 2]  # median step
    assert index.header_ns == index.times_ns
    receive = topic_index(bag, "/cam/jpeg", clock="receive")
    assert receive.positions == tuple(range(11))
    assert receive.reordered == 0


def test_receive_clock_reads_no_message_and_read_images_only_those(tmp_path: Path) -> None:
    big = [Msg("/cam", T0 + k * 100 * MS, T0 + k * 100 * MS, "png", _noise(k)) for k in range(40)]
    for kind, bag in [
        ("ros1", write_ros1(tmp_path / "a.bag", big, chunk_bytes=200_000)),
        ("ros2-db3", write_ros2(tmp_path / "b", big)),
        ("ros2-mcap", write_ros2(tmp_path / "c", big, storage="mcap")),
        ("mcap", write_mcap(tmp_path / "d.mcap", big, compression="none", chunk_bytes=200_000)),
    ]:
        size = tree_size(bag)
        bag_reader._cached.cache_clear()
        before = bytes_read()
        if before is None:
            pytest.skip("no /proc/self/io on this system")
        topic_index(bag, "/cam", clock="receive")
        index_bytes = bytes_read() - before  # type: ignore[operator]
        before = bytes_read()
        topic_index(bag, "/cam", clock="header")
        header_bytes = bytes_read() - before  # type: ignore[operator]
        before = bytes_read()
        images = list(read_images(bag, "/cam", [3, 30]))
        read_bytes = bytes_read() - before  # type: ignore[operator]
        one = len(images[0][1].data)
        assert size > 40 * 40_000, kind
        # SQLite reads whole 4 KiB pages: each row's leaf page holds its first ~4 KiB.
        assert index_bytes < (60_000 if kind != "ros2-db3" else 40 * 4096 + 60_000), kind
        assert header_bytes < 40 * (4096 if kind == "ros2-db3" else 700) + 32_768, kind
        assert read_bytes < 2 * one + 16_384, kind


def _noise(k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)  # PNG ~43 KB: incompressible


@pytest.mark.parametrize(
    ("kind", "cut_fraction"),
    [("ros1", 0.6), ("ros1-lz4", 0.6), ("mcap-cdr", 0.55), ("mcap-none", 0.55), ("ros2-mcap", 0.5)],
)
def test_truncated_bag_keeps_messages_before_the_cut(
    kind: str, cut_fraction: float, tmp_path: Path
) -> None:
    msgs = [
        Msg("/cam", T0 + k * 100 * MS + MS, T0 + k * 100 * MS, "jpeg", picture(k, 32, 24))
        for k in range(30)
    ]
    if kind == "ros1":
        bag = write_ros1(tmp_path / "a.bag", msgs, chunk_bytes=3000)
    elif kind == "ros1-lz4":
        bag = write_ros1(tmp_path / "a.bag", msgs, compression="lz4", chunk_bytes=3000)
    elif kind == "mcap-cdr":
        bag = write_mcap(tmp_path / "a.mcap", msgs, chunk_bytes=3000)
    elif kind == "mcap-none":
        bag = write_mcap(tmp_path / "a.mcap", msgs, compression="none", chunk_bytes=3000)
    else:
        bag = write_ros2(tmp_path / "a", msgs, storage="mcap")
    ref = reference_messages(bag)["/cam"]
    storage = bag if bag.is_file() else next(bag.glob("*.mcap"))
    data = storage.read_bytes()
    cut = int(len(data) * cut_fraction)
    storage.write_bytes(data[:cut])
    index = topic_index(bag, "/cam", clock="header")
    assert index.truncated
    assert "byte" in index.stop_reason
    assert 0 < index.count < len(ref)
    assert index.positions == tuple(range(index.count))
    images = dict(read_images(bag, "/cam", index.positions))
    for position in index.positions:
        _check_image(images[position], ref[position])
    error = index.truncation_error()
    assert isinstance(error, TruncatedBagError)
    assert f"{index.count} messages before the cut" in str(error)
    with pytest.raises(TruncatedBagError, match=r"messages before the cut, not message"):
        list(read_images(bag, "/cam", [0, index.count]))
    assert image_topics(bag)[0].truncated


def test_ros1_bag_without_index_is_read_from_its_chunks(tmp_path: Path) -> None:
    msgs = [Msg("/cam", T0 + k * MS, T0 + k * MS, "png", picture(k)) for k in range(20)]
    bag = write_ros1(tmp_path / "a.bag", msgs, chunk_bytes=2000)
    data = bytearray(bag.read_bytes())
    at = data.index(b"index_pos=") + len("index_pos=")
    data[at : at + 8] = bytes(8)  # as a recorder leaves it before closing the bag
    bag.write_bytes(bytes(data))
    index = topic_index(bag, "/cam", clock="receive")
    assert index.count == 20
    assert not index.truncated


def test_bag_without_image_topic_names_its_topics(tmp_path: Path) -> None:
    for bag in (
        write_ros1(tmp_path / "a.bag", [], others=OTHERS),
        write_ros2(tmp_path / "b", [], others=OTHERS),
        write_mcap(tmp_path / "c.mcap", [], others=OTHERS),
    ):
        with pytest.raises(InvalidBagError, match=r"has no image topic .*its topics: /imu \("):
            image_topics(bag)


def test_unknown_topic_lists_the_image_topics(tmp_path: Path) -> None:
    bag = write_ros1(tmp_path / "a.bag", standard_messages(), others=OTHERS)
    with pytest.raises(InvalidBagError, match=r"'/nope' is not a topic .*image topics are: /cam/"):
        topic_index(bag, "/nope", clock="header")
    with pytest.raises(InvalidBagError, match=r"'/imu' is a std_msgs/String topic"):
        list(read_images(bag, "/imu", [0]))
    with pytest.raises(ConfigError, match=r"position 99 is not a message of '/cam/png'"):
        list(read_images(bag, "/cam/png", [99]))
    with pytest.raises(ConfigError, match=r"clock must be one of header, receive"):
        topic_index(bag, "/cam/png", clock="camera")  # type: ignore[arg-type]


def test_unset_header_stamps_point_to_the_receive_clock(tmp_path: Path) -> None:
    msgs = [Msg("/cam", T0 + k * MS, 0, "jpeg", picture(k)) for k in range(3)]
    bag = write_ros2(tmp_path / "a", msgs)
    with pytest.raises(InvalidBagError, match=r"3 of 3 messages .* no header stamp .*receive"):
        topic_index(bag, "/cam", clock="header")
    assert topic_index(bag, "/cam", clock="receive").count == 3
    assert image_topics(bag)[0].unset_stamps == 3


def test_not_a_bag(tmp_path: Path) -> None:
    (tmp_path / "x.bag").write_bytes(b"")
    with pytest.raises(InvalidBagError, match=r"neither a ROS1 bag nor an MCAP file .*empty"):
        image_topics(tmp_path / "x.bag")
    (tmp_path / "folder").mkdir()
    with pytest.raises(InvalidBagError, match=r"folder without metadata\.yaml"):
        image_topics(tmp_path / "folder")
    with pytest.raises(FramefleetError, match="bag not found"):
        image_topics(tmp_path / "missing.bag")


def test_changed_bag_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "a.bag"
    write_ros1(path, [Msg("/cam", T0, T0, "jpeg", picture(0))])
    assert topic_index(path, "/cam", clock="header").count == 1
    path.unlink()
    write_ros1(path, [Msg("/cam", T0 + k, T0 + k, "jpeg", picture(k)) for k in range(3)])
    assert topic_index(path, "/cam", clock="header").count == 3


def test_jpeg_decoded_at_a_reduced_size(tmp_path: Path) -> None:
    bag = write_ros1(tmp_path / "a.bag", [Msg("/cam", T0, T0, "jpeg", picture(1, 64, 48))])
    ((_, image),) = list(read_images(bag, "/cam", [0]))
    assert image.to_rgb().shape == (48, 64, 3)
    assert image.to_rgb(at_least=(16, 12)).shape == (12, 16, 3)  # 1/4 in the DCT
    assert image.to_rgb(at_least=(17, 12)).shape == (24, 32, 3)  # never below what was asked
    full = image.to_rgb().astype(int).reshape(12, 4, 16, 4, 3).mean(axis=(1, 3))
    assert abs(image.to_rgb(at_least=(16, 12)).astype(int) - full).mean() < 8
