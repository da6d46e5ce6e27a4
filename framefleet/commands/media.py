"""``framefleet extract-file``: images from one video, no catalog, no queue."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import click

from framefleet.commands._common import (
    EPOCH,
    bag_time_option,
    check_times_options,
    image_options,
    is_terminal,
    output_spec_from,
    times_options,
)
from framefleet.commands.progress import progress_bar
from framefleet.commands.state import CliState
from framefleet.errors import ConfigError, TruncatedVideoError
from framefleet.media.attimes import read_requested_times, store_requested_times
from framefleet.media.bags import image_topics, topic_index
from framefleet.media.pipeline import (
    ImageRecord,
    check_window,
    plan_segment,
    prepare_root,
    process_segment,
)
from framefleet.media.specs import SegmentSpec, source_version
from framefleet.media.timing import recording_start, timestamps_csv_for
from framefleet.pydtk import is_bag_file_name, is_ros2_bag_dir, seconds_not_before


@click.command("extract-file")
@click.argument("video", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output root."
)
@image_options
@times_options
@click.option(
    "--start", "start", type=EPOCH, default=None, help="Start (s; epoch with --start-timestamp)."
)
@click.option(
    "--end", "end", type=EPOCH, default=None, help="End, exclusive (same clock as --start)."
)
@click.option("--record-id", default=None, help="Record id for names (default: the video's stem).")
@click.option(
    "--content", default="video", show_default=True, help="Content name, e.g. camera/front-center."
)
@click.option(
    "--start-timestamp",
    type=EPOCH,
    default=None,
    help="Recording start, epoch seconds: times and names become epoch times.",
)
@click.option(
    "--timestamps",
    "timestamps",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Camera timestamps CSV (default: <stem>_timestamps.csv beside the video, if any).",
)
@click.option("--no-timestamps", is_flag=True, help="Ignore a camera timestamps CSV; use PTS.")
@click.option(
    "--topic",
    default=None,
    metavar="NAME",
    help="A bag's image topic (default: its only one). Bags: ROS1 .bag, ROS2 folder, .mcap.",
)
@bag_time_option
@click.option(
    "--threads",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Decoder threads (0: auto).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Redo even if the manifest says it is complete; replace images another spec wrote "
    "under the same names.",
)
@click.pass_context
def extract_file(
    ctx: click.Context,
    /,
    video: Path,
    out_dir: str,
    start: float | None,
    end: float | None,
    record_id: str | None,
    content: str,
    start_timestamp: float | None,
    timestamps: Path | None,
    no_timestamps: bool,
    threads: int,
    force: bool,
    at_times: str | None,
    times_column: str | None,
    max_gap: float | None,
    topic: str | None,
    bag_time: Literal["header", "receive"],
    **image: object,
) -> None:
    """Sample VIDEO (or a bag's image topic) on a time grid and write images under --out.

    Takes, at each grid time start + k/fps, the frame shown then; writes
    {out}/{record_id}/{content}/{record_id}-{timestamp}.jpg and a manifest.
    """
    settings = (ctx.find_object(CliState) or CliState()).settings()
    bag = is_bag_file_name(video.name) or is_ros2_bag_dir(video)
    if topic is not None and not bag:
        raise ConfigError(f"--topic applies to bags (.bag, .mcap, a ROS2 folder), not {video}")
    if bag:
        topic = topic or _only_image_topic(video)
        if ctx.get_parameter_source("content") == click.core.ParameterSource.DEFAULT:
            content = topic
        first_ns = topic_index(str(video), topic, clock=bag_time).times_ns[0]
        start_timestamp = (
            seconds_not_before(first_ns) if start_timestamp is None else start_timestamp
        )
        no_timestamps = True  # a bag's own stamps are its clock
    csv = None if no_timestamps else (timestamps or timestamps_csv_for(video))
    anchor = recording_start(start_timestamp, csv)
    epoch = anchor is not None and start_timestamp is not None
    offset = anchor if epoch and anchor is not None else 0.0
    if not epoch and start is not None and start < 0:
        raise ConfigError(
            f"--start {start:g} is before the video's start; give seconds >= 0 from the video "
            "start (or epoch seconds together with --start-timestamp)"
        )
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--end {end:g} must be after --start {start:g}")
    if end is not None and end <= offset:
        raise ConfigError(
            f"the requested window ends at {end:g}, before the recording {str(video)!r} starts "
            f"at {offset:g}"
        )
    check_times_options(ctx, at_times, times_column, max_gap)
    requested = {}
    if at_times is not None:
        times_list = read_requested_times(at_times, column=times_column)
        requested = {
            "at_times": store_requested_times(prepare_root(Path(out_dir)), times_list),
            "max_gap_ms": max_gap,
        }
    spec = SegmentSpec(
        video_path=str(video),
        record_id=record_id or video.stem,
        content=content,
        start_timestamp=anchor,
        timestamps_path=None if csv is None else str(csv),
        start_seconds=0.0 if start is None else max(0.0, start - offset),
        end_seconds=None if end is None else end - offset,
        source_version=source_version(str(video), None if csv is None else str(csv)),
        topic=topic,
        bag_time=bag_time,
        output=output_spec_from(out_dir, image, **requested),
    )
    plan = plan_segment(spec, max_frame_pixels=settings.max_frame_pixels)
    planned = plan.frames
    if start is not None or end is not None:
        check_window(spec, plan.times)
    t0 = time.perf_counter()
    written = 0
    with progress_bar(total=len(planned), label="images", enabled=is_terminal()) as advance:

        def on_image(record: ImageRecord) -> None:
            nonlocal written
            written += 1
            advance(1)

        try:
            result = process_segment(
                spec,
                decode_threads=threads,
                force=force,
                takeover=force,
                max_frame_pixels=settings.max_frame_pixels,
                on_image=on_image,
            )
        except TruncatedVideoError as e:
            raise TruncatedVideoError(f"{e} ({written} images written)") from e
    source = (
        f"{bag_time} stamps of {topic}"
        if topic is not None
        else "camera clock " + Path(csv).name
        if csv is not None
        else "stream PTS"
    )
    if result.skipped:
        click.echo(
            f"already complete: {result.images_written} images under {out_dir} "
            f"(manifest {result.manifest_path}); --force to redo"
        )
        return
    missing = f", {len(result.missing)} requested time(s) missing" if result.missing else ""
    click.echo(
        f"wrote {result.images_written} images{missing} ({result.bytes_written / 1e6:.1f} MB) to "
        f"{out_dir} in {time.perf_counter() - t0:.2f} s; decoded {result.frames_decoded} frames "
        f"(minimal {result.frames_minimal}); times from {source}; manifest {result.manifest_path}"
    )


def _only_image_topic(bag: Path) -> str:
    topics = [t.topic for t in image_topics(str(bag))]
    if len(topics) != 1:
        raise ConfigError(
            f"{bag} has {len(topics)} image topics: choose one with --topic "
            f"({', '.join(topics) or 'none'})"
        )
    return topics[0]


COMMANDS = [extract_file]
