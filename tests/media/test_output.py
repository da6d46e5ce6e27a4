"""Output: names, templates, path safety, formats, sizes, atomic writes, manifests, notebook API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from framefleet import read_frames
from framefleet.cli import main
from framefleet.errors import ConfigError, OutputConflictError, OutputError
from framefleet.media.images import Resize
from framefleet.media.naming import path_safe
from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec


def _run(video: Path, out: Path, *, record_id: str = "016_000", **output: object):
    spec = SegmentSpec(
        video_path=str(video),
        record_id=record_id,
        content="camera/front-center",
        start_timestamp=1489728491.0,
        output=OutputSpec(out_dir=str(out), **output),  # type: ignore[arg-type]
    )
    return process_segment(spec)


def test_default_names_and_manifest(tmp_path: Path, clip_factory) -> None:
    video = clip_factory(frames=60, fps=30)
    result = _run(video, tmp_path / "out", resize_rate=0.25)
    names = [r.path for r in result.images]
    assert names == [
        f"016_000/camera%2Ffront-center/016_000-{1489728491 + k / 2:.3f}.jpg" for k in range(4)
    ]
    lines = Path(result.manifest_path).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["path"] for r in rows] == names
    assert set(rows[0]) == {
        "path", "record_id", "content", "timestamp", "grid_time", "pts_seconds",
        "width", "height", "bytes", "spec", "grid_count",
    }  # fmt: skip
    assert rows[1]["grid_time"] == 1489728491.5 and rows[1]["pts_seconds"] == 0.5
    for row in rows:
        with Image.open(tmp_path / "out" / row["path"]) as image:
            assert image.format == "JPEG"
            assert image.size == (40, 24) == (row["width"], row["height"])
        assert os.path.getsize(tmp_path / "out" / row["path"]) == row["bytes"]


def test_rerun_with_manifest_writes_nothing(tmp_path: Path, clip_factory) -> None:
    video = clip_factory(frames=30)
    out = tmp_path / "out"
    first = _run(video, out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = _run(video, out)
    assert again.skipped and again.images == first.images
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_a_second_spec_is_refused_until_it_takes_over(tmp_path: Path, clip_factory) -> None:
    video = clip_factory(frames=30)
    a = _run(video, tmp_path / "out", target_fps="2")
    with pytest.raises(OutputConflictError, match=r"Nothing was overwritten.*--force"):
        _run(video, tmp_path / "out", target_fps="5")
    assert _run(video, tmp_path / "out", target_fps="2").skipped
    spec = SegmentSpec(
        video_path=str(video),
        record_id="016_000",
        content="camera/front-center",
        start_timestamp=1489728491.0,
        output=OutputSpec(out_dir=str(tmp_path / "out"), target_fps="5"),
    )
    b = process_segment(spec, takeover=True)
    assert a.manifest_path != b.manifest_path and not b.skipped
    assert not Path(a.manifest_path).exists()


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_formats(tmp_path: Path, clip_factory, fmt: str, pil: str) -> None:
    result = _run(clip_factory(frames=15), tmp_path / "o", image_format=fmt, quality=70)
    with Image.open(tmp_path / "o" / result.images[0].path) as image:
        assert image.format == pil
    assert result.images[0].path.endswith("." + fmt.replace("jpeg", "jpg"))


@pytest.mark.parametrize(
    ("resize", "expected"),
    [
        (Resize(rate=0.33), (53, 32)),
        (Resize(max_side_px=100), (100, 60)),
        (Resize(width=81), (81, 49)),
        (Resize(height=7), (12, 7)),
        (Resize(width=33, height=17), (33, 17)),
        (Resize(rate=0.001), (1, 1)),
        (Resize(), (160, 96)),
    ],
)
def test_resize_sizes_keep_aspect_and_allow_odd(resize: Resize, expected: tuple[int, int]) -> None:
    assert resize.target_size(160, 96) == expected


def test_odd_output_size_is_written(tmp_path: Path, clip_factory) -> None:
    result = _run(clip_factory(frames=5), tmp_path / "o", width=81)
    with Image.open(tmp_path / "o" / result.images[0].path) as image:
        assert image.size == (81, 49)


@pytest.mark.parametrize(
    "template",
    ["../escape-{timestamp}.{ext}", "/abs/{timestamp}.{ext}", "a/../../{timestamp}.{ext}"],
)
def test_names_cannot_escape_the_output_root(tmp_path: Path, clip_factory, template: str) -> None:
    with pytest.raises(ConfigError, match=r"names must be relative to --out"):
        _run(clip_factory(frames=5), tmp_path / "out", name_template=template)
    assert not list(tmp_path.glob("escape*"))


def test_hostile_record_ids_stay_inside(tmp_path: Path, clip_factory) -> None:
    result = _run(clip_factory(frames=5), tmp_path / "out", record_id="../../etc/passwd")
    assert all((tmp_path / "out" / r.path).is_file() for r in result.images)
    assert result.images[0].path.startswith("%2E.%2F..%2Fetc%2Fpasswd/")
    assert path_safe("..") == "%2E." and path_safe("") == "%" and path_safe("a b/c") == "a%20b%2Fc"


def test_symlink_out_of_root_is_refused(tmp_path: Path, clip_factory) -> None:
    out = tmp_path / "out"
    (out / "016_000").mkdir(parents=True)
    (out / "016_000" / "camera%2Ffront-center").symlink_to(tmp_path)
    with pytest.raises(OutputError, match="escapes the output root"):
        _run(clip_factory(frames=5), out)


def test_read_frames_is_pydtk_shaped(clip_factory) -> None:
    video = clip_factory(frames=60, width=160, height=96)
    meta = {"path": str(video), "start_timestamp": 100.0, "record_id": "r", "contents": "video"}
    timestamps, data, columns = read_frames(
        meta, target_frame_rate=2.0, resize_rate=0.5, start_timestamp=100.5, end_timestamp=101.5
    )
    assert timestamps.tolist() == [100.5, 101.0]
    assert data.shape == (2, 48, 80, 3) and data.dtype == np.uint8
    assert columns == ["red", "green", "blue"]


def test_cli_summary_line(tmp_path: Path, clip_factory) -> None:
    video = clip_factory("drive.mp4", frames=60)
    result = CliRunner().invoke(
        main, ["extract-file", str(video), "--out", str(tmp_path / "o"), "--fps", "2"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote 4 images")
    assert sorted(p.name for p in (tmp_path / "o" / "drive" / "video").iterdir()) == [
        "drive-0.000.jpg",
        "drive-0.500.jpg",
        "drive-1.000.jpg",
        "drive-1.500.jpg",
    ]
    again = CliRunner().invoke(main, ["extract-file", str(video), "--out", str(tmp_path / "o")])
    assert again.exit_code == 0 and again.output.startswith("already complete: 4 images")
