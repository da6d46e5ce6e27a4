"""Bag benchmark: a camera recorded as a JPEG ``CompressedImage`` topic, sampled at 2 fps.

    .venv/bin/python bench/bag_bench.py                     # 80 s, 30 Hz, 1920x1080, ROS1
    .venv/bin/python bench/bag_bench.py --kinds ros1,ros2-mcap,ros2-db3,mcap-zstd
    .venv/bin/python bench/bag_bench.py --seconds 10        # quick

The workload (generated once, cached under ``bench/out/bags/``): ``--seconds`` of a 30 Hz
1920x1080 camera, the benchmark's camera-like frames (`framefleet.media.synthetic.camera_frames`)
as JPEG quality 85, header stamps 33.3 ms apart with +-2 ms jitter, received 20-40 ms later,
plus a 100 Hz IMU topic; in a ROS1 bag with uncompressed chunks (what ``rosbag record`` writes by
default) and, on request, a ROS2 bag (MCAP or SQLite storage) and a zstd-chunked MCAP file.

Every row runs in a fresh process (no cache, imports excluded from the times) and reports wall
and CPU seconds and the bytes it read (``rchar`` of ``/proc/self/io``: what a network mount would
carry). Rows, in ``ROWS`` (add one with `row`):

- index (header / receive clock): `topic_index` of the camera topic.
- framefleet media API: `topic_index`, `pick_frames` at 2 fps, `read_images` of the picked
  messages only, decode + resize to a quarter + JPEG encode (Pillow), write; and the same
  without resize, writing the JPEG bytes as they are (zero re-encode).
- straightforward loop (the baseline): rosbags reads every message of the topic,
  deserialises it, decodes every JPEG, keeps the first message at or after each 0.5 s grid
  time, resizes, encodes, writes; and the same decoding only the kept messages.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "bags"
TOPIC = "/camera/front/image_raw/compressed"
T0 = 1_700_000_000 * 10**9
FPS = Fraction(2)
KINDS = ("ros1", "ros2-mcap", "ros2-db3", "mcap-zstd")


@dataclass
class Result:
    images: int = 0
    bytes_written: int = 0


Row = Callable[[Path, Path], Result]
ROWS: dict[str, Row] = {}


def row(name: str) -> Callable[[Row], Row]:
    """Register a benchmark row: ``fn(bag, out_dir) -> Result``, run in a fresh process."""

    def register(fn: Row) -> Row:
        ROWS[name] = fn
        return fn

    return register


# --- the workload ---------------------------------------------------------------------------


def bag_path(kind: str, seconds: int) -> Path:
    name = f"camera-1080p-30hz-{seconds}s"
    return (
        OUT
        / {
            "ros1": f"{name}.bag",
            "ros2-mcap": f"{name}-ros2-mcap",
            "ros2-db3": f"{name}-ros2-db3",
            "mcap-zstd": f"{name}-zstd.mcap",
        }[kind]
    )


def jpeg_frames(seconds: int) -> list[bytes]:
    """The camera's JPEG frames, cached as one file of length-prefixed JPEGs."""
    cache = OUT / f"frames-1080p-{seconds}s.bin"
    if cache.exists():
        data = cache.read_bytes()
        frames, pos = [], 0
        while pos < len(data):
            n = int.from_bytes(data[pos : pos + 4], "little")
            frames.append(data[pos + 4 : pos + 4 + n])
            pos += 4 + n
        return frames
    import av

    from framefleet.media.synthetic import camera_frames

    count = seconds * 30
    frames = []
    started = time.perf_counter()
    for i, yuv in enumerate(camera_frames(count, 1920, 1080)):
        image = av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_image()
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        frames.append(buffer.getvalue())
        if i % 300 == 299:
            print(f"  encoded {i + 1}/{count} frames ({time.perf_counter() - started:.0f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(cache, "wb") as f:
        for frame in frames:
            f.write(len(frame).to_bytes(4, "little") + frame)
    return frames


def make_bag(kind: str, seconds: int) -> Path:
    path = bag_path(kind, seconds)
    if path.exists():
        return path
    import numpy as np
    from rosbags.rosbag1 import Writer as Ros1Writer
    from rosbags.rosbag2 import StoragePlugin
    from rosbags.rosbag2 import Writer as Ros2Writer
    from rosbags.typesys import Stores, get_typestore

    frames = jpeg_frames(seconds)
    ros1 = kind == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    image_t, imu_t = "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/Imu"
    rng = np.random.default_rng(0)
    items: list[tuple[int, str, object]] = []
    for k, jpeg in enumerate(frames):
        stamp = T0 + k * 1_000_000_000 // 30 + int(rng.integers(-2_000_000, 2_000_001))
        items.append((stamp + int(rng.integers(20, 41)) * 1_000_000, TOPIC, (stamp, jpeg)))
    for k in range(seconds * 100):
        items.append((T0 + k * 10_000_000 + 1_000_000, "/imu", T0 + k * 10_000_000))
    items.sort(key=lambda item: item[0])
    types = ts.types
    tmp = path.with_name(path.name + ".tmp")

    def serialize(topic: str, payload: object) -> bytes:
        stamp_ns = payload[0] if topic == TOPIC else payload  # type: ignore[index]
        sec, nsec = divmod(int(stamp_ns), 1_000_000_000)  # type: ignore[arg-type]
        t = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)
        header_t = types["std_msgs/msg/Header"]
        header = (
            header_t(seq=0, stamp=t, frame_id="cam") if ros1 else header_t(stamp=t, frame_id="cam")
        )
        if topic == TOPIC:
            data = np.frombuffer(payload[1], np.uint8)  # type: ignore[index]
            msg = types[image_t](header=header, format="jpeg", data=data)
            name = image_t
        else:
            vec, quat = types["geometry_msgs/msg/Vector3"], types["geometry_msgs/msg/Quaternion"]
            cov = np.zeros(9)
            msg = types[imu_t](
                header=header,
                orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0),
                orientation_covariance=cov,
                angular_velocity=vec(x=0.0, y=0.0, z=0.0),
                angular_velocity_covariance=cov,
                linear_acceleration=vec(x=0.0, y=0.0, z=9.8),
                linear_acceleration_covariance=cov,
            )
            name = imu_t
        return bytes(ts.serialize_ros1(msg, name) if ros1 else ts.serialize_cdr(msg, name))

    if kind == "mcap-zstd":
        from mcap.writer import CompressionType, Writer

        with open(tmp, "wb") as f:
            writer = Writer(f, compression=CompressionType.ZSTD)
            writer.start()
            channels = {}
            for topic, msg_type in ((TOPIC, image_t), ("/imu", imu_t)):
                schema = writer.register_schema(name=msg_type, encoding="ros2msg", data=b"")
                channels[topic] = writer.register_channel(topic, "cdr", schema)
            for t, topic, payload in items:
                writer.add_message(
                    channels[topic], log_time=t, data=serialize(topic, payload), publish_time=t
                )
            writer.finish()
    elif ros1:
        with Ros1Writer(tmp) as writer:
            conns = {
                TOPIC: writer.add_connection(TOPIC, image_t, typestore=ts),
                "/imu": writer.add_connection("/imu", imu_t, typestore=ts),
            }
            for t, topic, payload in items:
                writer.write(conns[topic], t, serialize(topic, payload))
    else:
        plugin = StoragePlugin.MCAP if kind == "ros2-mcap" else StoragePlugin.SQLITE3
        with Ros2Writer(tmp, version=9, storage_plugin=plugin) as writer:
            conns = {
                TOPIC: writer.add_connection(TOPIC, image_t, typestore=ts),
                "/imu": writer.add_connection("/imu", imu_t, typestore=ts),
            }
            for t, topic, payload in items:
                writer.write(conns[topic], t, serialize(topic, payload))
    if kind.startswith("ros2"):  # the folder's name is part of its storage files' names
        tmp.rename(path)
        for f in path.iterdir():
            if f.name.startswith(tmp.name):
                f.rename(path / f.name.replace(tmp.name, path.name))
        meta = path / "metadata.yaml"
        meta.write_text(meta.read_text().replace(tmp.name, path.name))
    else:
        tmp.rename(path)
    return path


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.iterdir())


# --- rows -----------------------------------------------------------------------------------


def _quarter_jpeg(image: object) -> bytes:
    from PIL import Image

    assert isinstance(image, Image.Image)
    small = image.convert("RGB").resize((image.width // 4, image.height // 4), Image.Resampling.BOX)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@row("index, header clock (topic_index)")
def index_header(bag: Path, out: Path) -> Result:
    from framefleet.media.bags import topic_index

    index = topic_index(bag, TOPIC, clock="header")
    return Result(images=index.count)


@row("index, receive clock (topic_index)")
def index_receive(bag: Path, out: Path) -> Result:
    from framefleet.media.bags import topic_index

    index = topic_index(bag, TOPIC, clock="receive")
    return Result(images=index.count)


def _picked(bag: Path) -> tuple[list[int], list[Fraction]]:
    from framefleet.media.bags import topic_index
    from framefleet.media.sampling import pick_frames

    index = topic_index(bag, TOPIC, clock="header")
    start = Fraction(index.times_ns[0], 10**9)
    picks = pick_frames(index.seconds(start), end_of_last=index.end_seconds(start), target_fps=FPS)
    return [index.positions[p.frame] for p in picks], [start + p.grid_seconds for p in picks]


@row("framefleet media API: index, read picked, decode, 1/4, JPEG")
def framefleet_resize(bag: Path, out: Path) -> Result:
    from PIL import Image

    from framefleet.media.bags import read_images

    positions, _ = _picked(bag)
    result = Result()
    for position, image in read_images(bag, TOPIC, positions):
        with Image.open(io.BytesIO(image.data)) as decoded:
            data = _quarter_jpeg(decoded)
        (out / f"{position:06d}.jpg").write_bytes(data)
        result.images += 1
        result.bytes_written += len(data)
    return result


@row("framefleet media API: the same, JPEG decoded at 1/4 (DCT scaling)")
def framefleet_draft(bag: Path, out: Path) -> Result:
    from PIL import Image

    from framefleet.media.bags import read_images

    positions, _ = _picked(bag)
    result = Result()
    for position, image in read_images(bag, TOPIC, positions):
        rgb = image.to_rgb(at_least=(480, 270))
        small = Image.fromarray(rgb).resize((480, 270), Image.Resampling.BOX)
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=90)
        (out / f"{position:06d}.jpg").write_bytes(buffer.getvalue())
        result.images += 1
        result.bytes_written += buffer.tell()
    return result


@row("framefleet media API: index, read picked, bytes as stored")
def framefleet_as_stored(bag: Path, out: Path) -> Result:
    from framefleet.media.bags import read_images

    positions, _ = _picked(bag)
    result = Result()
    for position, image in read_images(bag, TOPIC, positions):
        (out / f"{position:06d}.jpg").write_bytes(image.data)
        result.images += 1
        result.bytes_written += len(image.data)
    return result


def _every_message(bag: Path) -> Iterator[Any]:
    """Every message of the camera topic, deserialised: rosbags for bags, mcap for MCAP."""
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    if bag.is_file() and bag.suffix == ".mcap":
        from mcap.reader import make_reader

        with open(bag, "rb") as f:
            for _, _, message in make_reader(f).iter_messages(topics=[TOPIC]):
                yield ts.deserialize_cdr(message.data, "sensor_msgs/msg/CompressedImage")
        return
    from rosbags.highlevel import AnyReader

    with AnyReader([bag], default_typestore=ts) as reader:
        conns = [c for c in reader.connections if c.topic == TOPIC]
        for conn, _, raw in reader.messages(connections=conns):
            yield reader.deserialize(raw, conn.msgtype)


def _straightforward(bag: Path, out: Path, *, decode_all: bool) -> Result:
    from PIL import Image

    result = Result()
    step = Fraction(10**9) / FPS
    next_grid: Fraction | None = None
    for msg in _every_message(bag):
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        decoded = Image.open(io.BytesIO(msg.data.tobytes())) if decode_all else None
        if decoded is not None:
            decoded.load()
        if next_grid is None:
            next_grid = Fraction(stamp)
        if stamp >= next_grid:
            while next_grid <= stamp:
                next_grid += step
            if decoded is None:
                decoded = Image.open(io.BytesIO(msg.data.tobytes()))
            data = _quarter_jpeg(decoded)
            (out / f"{stamp}.jpg").write_bytes(data)
            result.images += 1
            result.bytes_written += len(data)
    return result


@row("straightforward loop: read all, decode all, 1/4, JPEG (baseline)")
def straightforward_all(bag: Path, out: Path) -> Result:
    return _straightforward(bag, out, decode_all=True)


@row("straightforward loop: read all, decode kept, 1/4, JPEG")
def straightforward_kept(bag: Path, out: Path) -> Result:
    return _straightforward(bag, out, decode_all=False)


BASELINE = "straightforward loop: read all, decode all, 1/4, JPEG (baseline)"


# --- running --------------------------------------------------------------------------------


def _rchar() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def run_row(name: str, bag: Path, out: Path) -> dict[str, float]:
    """One row in this process: imports first, then the timed work."""
    import PIL.Image  # noqa: F401
    import rosbags.highlevel  # noqa: F401

    import framefleet.media.bags
    import framefleet.media.sampling  # noqa: F401

    out.mkdir(parents=True, exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    read0, wall0 = _rchar(), time.perf_counter()
    result = ROWS[name](bag, out)
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "wall": wall,
        "cpu": cpu,
        "read": _rchar() - read0,
        "images": result.images,
        "written": result.bytes_written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=80)
    parser.add_argument("--kinds", default="ros1", help=f"comma-separated of {', '.join(KINDS)}")
    parser.add_argument("--rows", default="", help="substring filter on row names")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the fastest is kept")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--bag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:  # a child process: one row, JSON out
        print(json.dumps(run_row(args.row, Path(args.bag), OUT / "run")))
        return
    for kind in args.kinds.split(","):
        started = time.perf_counter()
        bag = make_bag(kind, args.seconds)
        print(
            f"\n{kind}: {bag.name}, {size_of(bag) / 1e6:.1f} MB "
            f"(ready in {time.perf_counter() - started:.1f} s)"
        )
        results: dict[str, dict[str, float]] = {}
        for name in ROWS:
            if args.rows not in name:
                continue
            runs = []
            for _ in range(args.repeat):
                child = subprocess.run(
                    [sys.executable, __file__, "--row", name, "--bag", str(bag)],
                    capture_output=True,
                    text=True,
                    check=False,
                    env={**os.environ, "PYTHONPATH": str(ROOT.parent)},
                )
                if child.returncode:
                    print(f"{name}: failed\n{child.stderr}")
                    break
                runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            if runs:
                results[name] = min(runs, key=lambda x: x["wall"])
        _print_table(results, size_of(bag))


def _print_table(results: dict[str, dict[str, float]], bag_bytes: int) -> None:
    print(
        f"{'row':66} {'wall s':>7} {'CPU s':>7} {'MB read':>8} {'read/bag':>8} "
        f"{'images':>6} {'vs baseline':>11}"
    )
    base = results.get(BASELINE)
    for name, r in results.items():
        ratio = f"{base['wall'] / r['wall']:.2f}x" if base else ""
        print(
            f"{name:66} {r['wall']:7.2f} {r['cpu']:7.2f} {r['read'] / 1e6:8.1f} "
            f"{r['read'] / bag_bytes:8.2%} {int(r['images']):6d} {ratio:>11}"
        )


if __name__ == "__main__":
    main()
