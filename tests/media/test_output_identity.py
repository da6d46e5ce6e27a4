"""Nothing is ever silently overwritten: injective names, one owner per name, true manifests.

Property tests (hypothesis) over record ids, contents, templates and sequences of runs with
different specs into one output root; real clips, real files.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from string import Formatter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framefleet.errors import ConfigError, OutputConflictError, OutputError
from framefleet.media.naming import check_template, path_safe, render_name
from framefleet.media.pipeline import process_segment
from framefleet.media.specs import OutputSpec, SegmentSpec
from tests.clips import ClipSpec, make_clip
from tests.strategies import HOSTILE_NUMBERS

IDS = st.one_of(
    st.text(min_size=0, max_size=40),
    st.text(alphabet=" /._-%~aA1\\:é中\x00", min_size=0, max_size=12),
    st.text(min_size=150, max_size=300),
    st.sampled_from(["drive 1", "drive/1", "drive_1", "drive%201", ".", "..", "", "~", "a" * 300]),
)


@given(st.lists(IDS, min_size=2, max_size=8, unique=True))
@settings(max_examples=300, deadline=None)
def test_path_safe_is_injective_and_always_one_safe_component(names: list[str]) -> None:
    safe = [path_safe(n) for n in names]
    assert len(set(safe)) == len(safe), dict(zip(names, safe, strict=True))
    for s in safe:
        assert s and "/" not in s and "\x00" not in s and s not in (".", "..")
        assert not s.startswith(".") and len(s.encode()) <= 96
        assert s.isascii()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clip")
    return make_clip(directory / "tiny.mp4", ClipSpec(width=64, height=48, frames=12, gop=6))


def _spec(video: Path, out: Path, *, record_id: str = "r", content: str = "cam", **output: object):
    return SegmentSpec(
        video_path=str(video),
        record_id=record_id,
        content=content,
        start_timestamp=1000.0,
        output=OutputSpec(out_dir=str(out), **output),  # type: ignore[arg-type]
    )


def _manifests_match_disk(out: Path) -> int:
    """Every line of every manifest (segment and job) names a file of exactly that size."""
    lines = 0
    for manifest in [*out.glob("_manifests/**/*.jsonl"), *out.glob("_jobs/*.jsonl")]:
        for line in manifest.read_text().splitlines():
            row = json.loads(line)
            path = out / row["path"]
            assert path.is_file(), f"{manifest} lists {row['path']}, which is not on disk"
            assert path.stat().st_size == row["bytes"], f"{row['path']}: size differs"
            lines += 1
    return lines


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["drive 1", "drive/1", "drive_1", "Ω", "x" * 300]), IDS),
        min_size=1,
        max_size=4,
        unique=True,
    )
)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_record_and_content_gets_its_own_images(
    tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory, pairs: list[tuple[str, str]]
) -> None:
    out = tmp_path_factory.mktemp("out")
    seen: dict[str, tuple[str, str]] = {}
    for record_id, content in pairs:
        if not content or "\x00" in content:
            with pytest.raises(ConfigError):
                _spec(tiny_clip, out, record_id=record_id, content=content)
            continue
        result = process_segment(_spec(tiny_clip, out, record_id=record_id, content=content))
        assert result.images
        for image in result.images:
            path = (out / image.path).resolve()
            assert path.is_relative_to(out.resolve())
            assert seen.setdefault(image.path, (record_id, content)) == (record_id, content)
    assert _manifests_match_disk(out) == len(seen)


SPECS = st.fixed_dictionaries(
    {
        "target_fps": st.sampled_from(["1", "2", "5"]),
        "resize_rate": st.sampled_from([None, 0.5, 0.25]),
        "image_format": st.sampled_from(["jpeg", "png"]),
        "quality": st.sampled_from([50, 90]),
    }
)


@given(runs=st.lists(st.tuples(SPECS, st.booleans()), min_size=1, max_size=6))
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_sequence_of_specs_into_one_root_keeps_manifests_true(
    tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory, runs: list
) -> None:
    out = tmp_path_factory.mktemp("out")
    owners: dict[object, dict[str, object]] = {}  # the extension decides the names: one owner each
    for output, force in runs:
        spec = _spec(tiny_clip, out, **output)
        owner = owners.get(output["image_format"])
        if owner is not None and owner != output and not force:
            with pytest.raises(OutputConflictError, match="Nothing was overwritten"):
                process_segment(spec)
        else:
            result = process_segment(spec, force=force, takeover=force)
            assert all((out / i.path).stat().st_size == i.bytes for i in result.images)
            owners[output["image_format"]] = output
        _manifests_match_disk(out)


def test_the_issue_sequence_resize_then_max_side_then_resize(tiny_clip: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = process_segment(_spec(tiny_clip, out, resize_rate=0.25))
    with pytest.raises(OutputConflictError, match=r"--force.*another --out.*--name-template"):
        process_segment(_spec(tiny_clip, out, max_side_px=48))
    third = process_segment(_spec(tiny_clip, out, resize_rate=0.25))
    assert third.skipped and third.images == first.images
    assert {i.width for i in third.images} == {16}
    assert _manifests_match_disk(out) == len(first.images)

    replaced = process_segment(_spec(tiny_clip, out, max_side_px=48), takeover=True)
    assert {i.width for i in replaced.images} == {48}
    assert _manifests_match_disk(out) == len(replaced.images)


def test_files_get_the_permissions_of_a_normal_write(tiny_clip: Path, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        import framefleet.media.images as images

        images._umask = None  # read again under this umask
        result = process_segment(_spec(tiny_clip, tmp_path / "out"))
    finally:
        os.umask(old)
        images._umask = None
    for path in [Path(result.manifest_path), *(tmp_path / "out" / i.path for i in result.images)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_a_template_giving_two_frames_one_name_is_refused(tiny_clip: Path, tmp_path: Path):
    spec = _spec(tiny_clip, tmp_path / "out", target_fps="5", name_template="{timestamp:.0f}.{ext}")
    with pytest.raises(OutputError, match=r"the same name .*more decimals"):
        process_segment(spec)


def test_a_changed_video_is_a_new_identity(tiny_clip: Path, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(tiny_clip.read_bytes())
    from framefleet.media.specs import source_version

    before = _spec(video, tmp_path / "out")
    stamped = SegmentSpec(**{**before.__dict__, "source_version": source_version(str(video))})
    process_segment(stamped)
    os.utime(video, ns=(1, 1))
    with pytest.raises(Exception, match=r"changed since the job was planned"):
        process_segment(stamped, force=True)


@given(st.text(max_size=60))
@settings(max_examples=400, deadline=None)
def test_any_template_text_is_valid_or_a_config_error(template: str) -> None:
    try:
        check_template(template)
    except ConfigError:
        return
    # A valid template formats for any values, and names stay relative and inside.
    for values in (
        {"timestamp": 1e10, "grid_time": -1.5, "frame": 10**9},
        {"timestamp": 0.0, "grid_time": 0.0, "frame": 0},
    ):
        name = render_name(template, record_id="r%2F1", content="c", ext="jpg", **values)
        assert not name.startswith("/") and ".." not in name.split("/")


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{timestamp:d}.{ext}", r"format spec 'd' of \{timestamp\} is not allowed"),
        ("{timestamp!x}.{ext}", "not a valid template|conversions"),
        ("{timestamp!r}.{ext}", "conversions"),
        ("{timestamp:{record_id.__class__.__mro__}}", "format spec"),
        ("{record_id.__class__}/{frame}", r"only plain fields .*record_id, content"),
        ("{record_id[0]}/{frame}", "only plain fields"),
        ("{0}/{frame}", "only plain fields"),
        ("{}/{frame}", "only plain fields"),
        ("{record_id:>300}/{frame}", r"format spec '>300' of \{record_id\}"),
        ("{frame:0100d}", "format spec"),
        ("../{frame}", r"relative to --out"),
        ("a//{frame}", r"relative to --out"),
        ("{record_id}.{ext}", r"must contain \{timestamp\}"),
    ],
)
def test_hostile_templates_are_refused_at_once(template: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OutputSpec(out_dir="out", name_template=template)


def test_allowed_format_specs_work() -> None:
    for template in ("{frame:06d}.{ext}", "{timestamp:017.6f}.{ext}", "{grid_time:.1f}-{frame}"):
        check_template(template)
        fields = [f for _, f, _, _ in Formatter().parse(template) if f]
        assert fields


NUMERIC_OPTIONS = ["--fps", "--resize", "--max-side", "--width", "--height", "--quality",
                   "--start", "--end", "--start-timestamp", "--threads"]  # fmt: skip


@given(st.lists(st.tuples(st.sampled_from(NUMERIC_OPTIONS), HOSTILE_NUMBERS), max_size=4))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_cli_numbers_are_a_result_or_one_line_error(
    tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory, options: list[tuple[str, str]]
) -> None:
    from click.testing import CliRunner

    from framefleet.cli import main

    out = tmp_path_factory.mktemp("out")
    args = ["extract-file", str(tiny_clip), "--out", str(out)]
    for flag, value in options:
        args += [flag, value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    if result.exit_code:
        assert result.output.startswith("error: "), result.output
        assert result.output.count("\n") == 1, result.output
