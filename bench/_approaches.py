"""The approaches the media benchmark compares; each runs in a fresh child process.

Every approach samples 2 fps and writes quarter-size JPEGs (quality 90, or ffmpeg's ``-q:v 3``):

* framefleet, 1 process (``process_segment`` on the whole clip, decoder threads FFmpeg's choice);
* framefleet, N processes: the producer's planning (keyframe-aligned segments, the packet index
  written to ``{out}/_index``), then one decoder thread per forked worker that has never seen the
  file (a Celery prefork worker); exact or ``fast_decode``; on the B-frame clip also the 10 s
  segments of before (not aligned) for comparison;
* ``ffmpeg -i clip -vf fps=2,scale=iw/4:-1 -q:v 3 out/%04d.jpg`` (its threads, its choice);
* ffmpeg with framefleet's shortcuts: 2 processes over halves of the clip, one thread each,
  ``-skip_loop_filter all``: what ffmpeg does given the same liberties;
* torchcodec on the CPU: ``VideoDecoder(...).get_frames_played_at`` at the same grid times, then
  the same resize (Pillow, box filter) and JPEG; skipped when not installed (bench/README.md);
* pydtk-style: decode every frame, keep every 15th, Pillow resize and JPEG (the seed notebook).

Plus the packet-index costs and the PSNR of ``fast_decode`` against exact decoding.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import av
import numpy as np
from _runner import Skip, Work, rchar, run_watched, vm_hwm_mb
from PIL import Image

from framefleet import iter_frames
from framefleet.media import probe
from framefleet.media.gops import align_segments
from framefleet.media.naming import INDEX_DIR
from framefleet.media.pipeline import ImageRecord, process_segment
from framefleet.media.sampling import split_segments
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.media.timing import keyframe_seconds

FPS = 2
RESIZE = 0.25
JPEG_QUALITY = 90
"""framefleet's default (files ~1.7x the size of ffmpeg's ``-q:v 3``; JPEG encoding is ~1 %
of the work either way, so the comparison stands)."""
PEERS_DIR = Path(__file__).resolve().parent / "out" / "peers"
"""Where bench/README.md installs torch and torchcodec (never into the project's venv)."""


def _spec(
    clip: str, out: str, start: float = 0.0, end: float | None = None, *, fast: bool = False
) -> SegmentSpec:
    output = OutputSpec(
        out_dir=out,
        target_fps=str(FPS),
        resize_rate=RESIZE,
        quality=JPEG_QUALITY,
        fast_decode=fast,
    )
    return SegmentSpec(
        video_path=clip, record_id="bench", output=output, start_seconds=start, end_seconds=end
    )


def _duration(clip: str) -> float:
    with av.open(clip) as container:  # the catalog knows it; from the moov this is as cheap
        return float(container.duration or 0) / av.time_base


def framefleet_single(job: dict[str, Any], t0: float) -> Work:
    work = Work()

    def on_image(_: ImageRecord) -> None:
        if work.first_image_s is None:
            work.first_image_s = time.perf_counter() - t0
            work.first_image_since_spawn_s = time.time() - job["spawned_at"]

    spec = _spec(job["clip"], job["out"], fast=job.get("fast", False))
    result = process_segment(spec, decode_threads=job["threads"], force=True, on_image=on_image)
    work.frames_decoded, work.frames_minimal = result.frames_decoded, result.frames_minimal
    work.images = result.images_written
    work.extra = {"decode_s": result.decode_seconds, "mb_written": result.bytes_written / 1e6}
    return work


def _fresh_worker() -> None:
    """A forked worker forgets the parent's in-memory indexes: like a Celery prefork worker,
    it knows the file only through ``{out}/_index``."""
    probe._MEMORY.clear()
    probe._STORED.clear()


def _pool_task(spec_data: dict[str, Any], threads: int) -> dict[str, Any]:
    """One segment in a pool worker: its counters, bytes read, first image time, peak RSS."""
    first: list[float] = []

    def on_image(_: ImageRecord) -> None:
        if not first:
            first.append(time.time())

    read0 = rchar()
    result = process_segment(
        SegmentSpec.from_dict(spec_data), decode_threads=threads, force=True, on_image=on_image
    )
    summary = result.summary()
    summary |= {"bytes_read": rchar() - read0, "pid": os.getpid(), "rss_mb": vm_hwm_mb()}
    summary["first_image_at"] = first[0] if first else None
    return summary


def _noop(_: int) -> int:
    return os.getpid()


def framefleet_pool(job: dict[str, Any], t0: float) -> Work:
    start_wall = time.time() - (time.perf_counter() - t0)
    clip, out = job["clip"], job["out"]
    # fork, like Celery's prefork pool: workers start in milliseconds with framefleet imported.
    with ProcessPoolExecutor(
        job["workers"], mp_context=get_context("fork"), initializer=_fresh_worker
    ) as pool:
        list(pool.map(_noop, range(job["workers"])))  # the workers exist before planning
        read0 = rchar()
        duration, length = _duration(clip), job["segment_s"]
        if job["aligned"]:  # what the producer's planning does (`producer.plan`)
            keys = keyframe_seconds(clip, index_cache=Path(out).resolve() / INDEX_DIR)
            spans = align_segments(
                0.0,
                duration,
                keyframe_seconds=keys,
                segment_seconds=length,
                open_ended=True,
            )
        else:
            spans = split_segments(0.0, duration, segment_seconds=length, open_ended=True)
        planning_read = rchar() - read0
        fast = job.get("fast", False)
        specs = [_spec(clip, out, s.start_seconds, s.end_seconds, fast=fast) for s in spans]
        results = list(
            pool.map(_pool_task, [s.to_dict() for s in specs], [job["threads"]] * len(specs))
        )
    firsts = [r["first_image_at"] for r in results if r["first_image_at"] is not None]
    segment_reads = [r["bytes_read"] for r in results]
    return Work(
        frames_decoded=sum(r["frames_decoded"] for r in results),
        frames_minimal=sum(r["frames_minimal"] for r in results),
        images=sum(r["images_written"] for r in results),
        bytes_read=planning_read + sum(segment_reads),
        first_image_s=min(firsts) - start_wall if firsts else None,
        peak_rss_mb=max([vm_hwm_mb(), *(r["rss_mb"] for r in results)]),
        extra={
            "segments": len(specs),
            "bounds": [s.start_seconds for s in spans],
            "worker_pids": sorted({r["pid"] for r in results}),
            "decode_s": sum(r["decode_seconds"] for r in results),
            "planning_bytes": planning_read,
            "segment_bytes": segment_reads,
            "mb_written": sum(r["bytes_written"] for r in results) / 1e6,
        },
    )


def _ffmpeg_command(clip: str, pattern: Path, *, shortcuts: bool = False) -> list[str]:
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    if shortcuts:
        cmd += ["-threads", "1", "-filter_threads", "1", "-skip_loop_filter", "all"]
    return [*cmd, "-i", clip, "-vf", f"fps={FPS},scale=iw/4:-1", "-q:v", "3", str(pattern)]


def _ffmpeg_work(out: Path, peak_mb: float, bytes_read: int, frames: int) -> Work:
    files = list(out.glob("*.jpg"))
    return Work(
        frames_decoded=frames,
        images=len(files),
        bytes_read=bytes_read,
        peak_rss_mb=peak_mb,
        extra={"mb_written": sum(f.stat().st_size for f in files) / 1e6},
    )


def ffmpeg_cli(job: dict[str, Any], t0: float) -> Work:
    del t0
    if shutil.which("ffmpeg") is None:
        raise Skip("ffmpeg not on PATH (apt-get install -y ffmpeg)")
    out = Path(job["out"])
    peak, read = run_watched([_ffmpeg_command(job["clip"], out / "%04d.jpg")])
    return _ffmpeg_work(out, peak, read, job["frame_count"])


def ffmpeg_shortcuts(job: dict[str, Any], t0: float) -> Work:
    """Two ffmpeg processes, one over each half (input seeking: from the keyframe before the
    cut, decoding and dropping up to it), one thread each, deblocking skipped."""
    del t0
    if shutil.which("ffmpeg") is None:
        raise Skip("ffmpeg not on PATH (apt-get install -y ffmpeg)")
    out = Path(job["out"])
    half = _duration(job["clip"]) / 2
    cmds = []
    for name, seek in (("a", ["-t", f"{half}"]), ("b", ["-ss", f"{half}"])):
        cmd = _ffmpeg_command(job["clip"], out / f"{name}%04d.jpg", shortcuts=True)
        at = cmd.index("-i")
        cmds.append([*cmd[:at], *seek, *cmd[at:]])
    peak, read = run_watched(cmds)
    return _ffmpeg_work(out, peak, read, job["frame_count"])


def prepare_torchcodec(job: dict[str, Any]) -> None:
    """Import torch and torchcodec before the clock starts (seconds of imports are no work)."""
    del job
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception as e:  # ImportError, or the OSError of a library that does not load
        raise Skip(
            f"torchcodec not usable ({type(e).__name__}: {str(e)[:80]}); install it as "
            "bench/README.md says (pip install --target bench/out/peers ...)"
        ) from e


def torchcodec_cpu(job: dict[str, Any], t0: float) -> Work:
    """torchcodec decodes the frames played at the grid times (RGB, full size), in batches;
    Pillow resizes them (box filter, like swscale's area averaging) and encodes JPEGs."""
    del t0
    from torchcodec.decoders import VideoDecoder

    out = Path(job["out"])
    decoder = VideoDecoder(job["clip"], device="cpu", num_ffmpeg_threads=job["threads"])
    metadata = decoder.metadata
    duration = float(metadata.duration_seconds or _duration(job["clip"]))
    grid = [k / FPS for k in range(int(duration * FPS) + 1) if k / FPS < duration]
    images = 0
    for start in range(0, len(grid), 16):
        batch = decoder.get_frames_played_at(seconds=grid[start : start + 16])
        for rgb in batch.data.permute(0, 2, 3, 1).numpy():
            image = Image.fromarray(np.ascontiguousarray(rgb))
            size = (round(image.width * RESIZE), round(image.height * RESIZE))
            image = image.resize(size, Image.Resampling.BOX)
            image.save(out / f"{images:04d}.jpg", quality=JPEG_QUALITY)
            images += 1
    return Work(images=images, extra={"threads": job["threads"], "version": _version()})


def _version() -> str:
    import torchcodec

    return str(getattr(torchcodec, "__version__", "?"))


def pydtk_style(job: dict[str, Any], t0: float) -> Work:
    """The seed notebook: decode every frame, keep every 15th (30 fps to 2), Pillow does the
    rest. No clock: every 15th frame is 2 fps only while the camera keeps 30 fps exactly."""
    out = Path(job["out"])
    work = Work(frames_decoded=0)
    keep_every = job["keep_every"]
    with av.open(job["clip"]) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            work.frames_decoded = i + 1
            if i % keep_every:
                continue
            image = Image.fromarray(frame.to_ndarray(format="rgb24"))
            image = image.resize((image.width // 4, image.height // 4), Image.Resampling.BICUBIC)
            image.save(out / f"{work.images:04d}.jpg", quality=JPEG_QUALITY)
            work.images += 1
            if work.first_image_s is None:
                work.first_image_s = time.perf_counter() - t0
    return work


def index_costs(job: dict[str, Any], t0: float) -> Work:
    """The packet index from the mp4 sample table and from a demux pass: time and bytes read."""
    del t0
    clip = job["clip"]
    costs: dict[str, list[float]] = {"table_s": [], "scan_s": [], "table_b": [], "scan_b": []}
    for _ in range(job["scans"]):
        for name, build in (("table", probe._build_index), ("scan", probe._scan_index)):
            read0, t = rchar(), time.perf_counter()
            index = build(clip)
            costs[f"{name}_s"].append(time.perf_counter() - t)
            costs[f"{name}_b"].append(rchar() - read0)
    extra: dict[str, Any] = {**costs, "packets": index.frame_count}
    extra["mb"] = Path(clip).stat().st_size / 1e6
    return Work(extra=extra)


def psnr_fast_decode(job: dict[str, Any], t0: float) -> Work:
    """PSNR of ``fast_decode`` against exact decoding at the output size, every frame."""
    del t0
    options: dict[str, Any] = {"target_frame_rate": job["frame_rate"], "resize_rate": RESIZE}
    if job.get("seconds"):
        options["end_timestamp"] = float(job["seconds"])
    values, worst = [], (float("inf"), 0.0)
    exact = iter_frames(job["clip"], **options)
    fast = iter_frames(job["clip"], fast_decode=True, **options)
    for (t, a), (_, b) in zip(exact, fast, strict=True):
        mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
        value = float("inf") if mse == 0 else 10 * float(np.log10(255**2 / mse))
        values.append(value)
        worst = min(worst, (value, t))
    finite = [v for v in values if v != float("inf")]
    extra = {
        "frames": len(values),
        "min_db": min(values),
        "mean_db": float(np.mean(finite)) if finite else float("inf"),
        "worst_at_s": worst[1],
    }
    return Work(images=len(values), extra=extra)


APPROACHES = {
    "ff-single": framefleet_single,
    "ff-pool": framefleet_pool,
    "ffmpeg": ffmpeg_cli,
    "ffmpeg-shortcuts": ffmpeg_shortcuts,
    "torchcodec": torchcodec_cpu,
    "pydtk": pydtk_style,
    "index": index_costs,
    "psnr": psnr_fast_decode,
}
PREPARE = {"torchcodec": prepare_torchcodec}
"""Run before the clock starts (imports)."""


def run_subprocess_quietly(cmd: list[str]) -> str:
    """A command's first output line, or '' (versions for the report)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.split("\n", 1)[0]
