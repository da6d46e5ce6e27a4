"""``fast_decode``: the deblocking filter skipped. Not exact (so not in the exactness tests):
close to exact at the output size, and an output spec of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from framefleet import iter_frames
from framefleet.cli import main
from framefleet.errors import ConfigError, OutputConflictError
from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.watch.rules import rule_from_table
from tests.clips import ClipSpec, make_clip
from tests.media.reference import psnr
from tests.media.test_reference import SAMPLE

MIN_PSNR_DB = 38.0


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Camera-like content at the camera's bits per pixel (15 Mbit/s at 1080p30 is 0.24), one
    150-frame GOP of P-frames: errors of skipped deblocking accumulate along its whole chain."""
    spec = ClipSpec(width=640, height=360, frames=150, gop=150, content="camera", bitrate_kbps=1700)
    return make_clip(tmp_path_factory.mktemp("fast") / "camera.mp4", spec)


def _psnrs(video: Path, **options: object) -> list[float]:
    exact = iter_frames(video, **options)  # type: ignore[arg-type]
    fast = iter_frames(video, fast_decode=True, **options)  # type: ignore[arg-type]
    return [psnr(a, b) for (ta, a), (tb, b) in zip(exact, fast, strict=True) if ta == tb]


def test_every_frame_of_a_long_gop_stays_close_at_the_output_size(camera_clip: Path) -> None:
    values = _psnrs(camera_clip, target_frame_rate=30, resize_rate=0.25)
    assert len(values) == 150
    assert min(values) >= MIN_PSNR_DB, [round(v, 1) for v in values]
    assert min(values[-30:]) < min(values[:30]), "errors accumulate along the GOP"


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"pydtk sample video not found at {SAMPLE}")
def test_real_camera_footage_stays_close_at_the_output_size() -> None:
    values = _psnrs(SAMPLE, target_frame_rate="60000/1001", resize_rate=0.25)
    assert len(values) == 178 and min(values) >= MIN_PSNR_DB


def test_it_changes_pixels_so_it_is_a_spec_of_its_own(camera_clip: Path, tmp_path: Path) -> None:
    def spec(fast: bool) -> SegmentSpec:
        output = OutputSpec(out_dir=str(tmp_path), resize_rate=0.5, fast_decode=fast)
        return SegmentSpec(video_path=str(camera_clip), record_id="c", output=output)

    assert spec(True).identity != spec(False).identity
    assert spec(True).manifest_name != spec(False).manifest_name
    values = _psnrs(camera_clip, target_frame_rate=2)
    assert any(v < float("inf") for v in values), "fast_decode did not change the pixels"
    process_segment(spec(False))
    with pytest.raises(
        OutputConflictError, match=r"image_format=jpeg\); this run .*fast_decode=True"
    ):
        process_segment(spec(True))
    assert process_segment(spec(True), takeover=True).images_written == 10


def test_exact_specs_keep_their_identity() -> None:
    """Specs written before the option existed keep their manifests and image ownership."""
    output = OutputSpec(out_dir="/o", resize_rate=0.25)
    spec = SegmentSpec(
        video_path="/data/v.mp4",
        record_id="r",
        output=output,
        start_timestamp=1000.0,
        source_version="10:20",
    )
    assert spec.identity == "fb8819805ab3bffb"


def test_the_option_in_the_cli_rules_and_python(camera_clip: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["extract-file", str(camera_clip), "--out", str(tmp_path / "o"), "--fps", "1"],
        catch_exceptions=False,
    )
    fast = CliRunner().invoke(
        main,
        [
            "extract-file",
            str(camera_clip),
            "--out",
            str(tmp_path / "f"),
            "--fps",
            "1",
            "--fast-decode",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0 and fast.exit_code == 0, fast.output
    (manifest,) = (tmp_path / "f").rglob("*.jsonl")
    (exact_manifest,) = (tmp_path / "o").rglob("*.jsonl")
    assert manifest.name != exact_manifest.name
    rule = rule_from_table(
        {"name": "r", "out": str(tmp_path), "fast_decode": True}, default_segment_seconds=10
    )
    assert rule.output.fast_decode is True
    assert rule_from_table({"name": "r", "out": "o"}, default_segment_seconds=10).output == (
        OutputSpec(out_dir="o")
    )
    with pytest.raises(ConfigError, match="fast_decode must be true or false"):
        rule_from_table({"name": "r", "out": "o", "fast_decode": "yes"}, default_segment_seconds=1)
    with pytest.raises(ConfigError, match="fast_decode must be true or false"):
        OutputSpec(out_dir="o", fast_decode=1)  # type: ignore[arg-type]
