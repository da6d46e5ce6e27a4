"""Media benchmark (issues 2 and 12): framefleet beside its peers, side by side, in one run.

On the seed workload (80 s, 1920x1080, 30 fps, H.264, GOP 30, ~15 Mbit/s; see ``_workload.py``)
and x264's defaults (GOP 250, B-frames), sampling 2 fps and writing quarter-size JPEGs:
framefleet in one process and in a pool (exact and ``fast_decode``), the ffmpeg CLI, ffmpeg with
the same shortcuts, torchcodec on the CPU, pydtk-style reading (`_approaches`). Each row runs in
a fresh process and reports wall, CPU, peak RSS, frames decoded against the minimal set, bytes
read, and the CPU other processes used meanwhile; a noisy row is run again (`_runner`). Also:
peak RSS on a 10 s and a 10 min clip, the packet index's costs, the PSNR of fast decoding, and
the issues' targets beside the numbers, never asserted (`_report`). Results also go to
``bench/out/media_bench.json``.

Run it when the machine is quiet::

    .venv/bin/python bench/media_bench.py            # full run, ~10 min once clips exist
    .venv/bin/python bench/media_bench.py --quick    # 20 s clips, a 2 min memory clip
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import av
import numpy as np
from _approaches import APPROACHES, PEERS_DIR, PREPARE, run_subprocess_quietly
from _report import (
    FFMPEG,
    POOL,
    POOL_AUTO,
    POOL_FAST,
    POOL_UNALIGNED,
    SINGLE,
    check_targets,
    print_report,
)
from _runner import Row, measure, run_child
from _workload import OUT_DIR, looped_clip, seed_clip

from framefleet.media.decode import needed_packets
from framefleet.media.pipeline import plan_segment
from framefleet.media.probe import probe_video
from framefleet.media.specs import OutputSpec, SegmentSpec


def _clips(args: argparse.Namespace) -> dict[str, Path]:
    """The clips this run needs, generated (once) unless ``--skip-generate``."""
    seconds = 20 if args.quick else 80
    gen = not args.skip_generate
    try:
        clips = {"seed": seed_clip(seconds=seconds, generate=gen)}
        if not args.skip_bframes:
            clips["bframes"] = seed_clip(seconds=seconds, bframes=True, generate=gen)
        if not args.skip_memory:
            clips["short"] = seed_clip(seconds=10, generate=gen)
            long_seconds = 120 if args.quick else 600
            clips["long"] = looped_clip(clips["seed"], seconds=long_seconds, generate=gen)
    except FileNotFoundError as e:
        sys.exit(f"{e} (run without --skip-generate)")
    return clips


def _clip_info(path: Path) -> dict[str, Any]:
    info = probe_video(path)
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "mbit_s": path.stat().st_size * 8 / info.duration_seconds / 1e6,
        "frames": info.frame_count,
        "keyframes": info.keyframe_count,
        "b_frames": info.has_b_frames,
        "seconds": info.duration_seconds,
        "size": f"{info.width}x{info.height}",
    }


def _clip_minimal(clip: Path) -> int:
    """The minimal packet set of one run over the whole clip at 2 fps (nothing decoded)."""
    output = OutputSpec(out_dir=str(OUT_DIR / "run"), target_fps="2")
    plan = plan_segment(SegmentSpec(video_path=str(clip), record_id="b", output=output))
    return int(needed_packets(plan.index, [p.decode_index for p in plan.frames]).sum())


def _run_all(args: argparse.Namespace, clips: dict[str, Path]) -> list[Row]:
    rows: list[Row] = []
    run_root = OUT_DIR / "run"
    n = args.workers
    pool = {"segment_s": args.segment_seconds, "workers": n, "threads": 1, "aligned": True}

    def run(group: str, label: str, approach: str, clip: Path, **opts: Any) -> Row:
        # Peak RSS and PSNR do not depend on the noise: those rows run once.
        repeat = args.repeat if group in ("seed", "bframes") else 1
        row = measure(group, label, approach, clip, out_root=run_root, repeat=repeat, **opts)
        rows.append(row)
        return row

    print("measuring (each row in a fresh process):")
    for group in ("seed", "bframes"):
        if group not in clips:
            continue
        clip = clips[group]
        frames, minimal = probe_video(clip).frame_count, _clip_minimal(clip)
        start = len(rows)
        run(group, SINGLE, "ff-single", clip, threads=0)
        run(group, POOL.format(n=n), "ff-pool", clip, **pool)
        if group == "bframes":
            run(group, POOL_UNALIGNED.format(n=n), "ff-pool", clip, **{**pool, "aligned": False})
            run(group, POOL_AUTO.format(n=n), "ff-pool", clip, **{**pool, "threads": 0})
        run(group, POOL_FAST.format(n=n), "ff-pool", clip, **pool, fast=True)
        run(group, FFMPEG, "ffmpeg", clip, frame_count=frames)
        run(group, "ffmpeg, 2 procs, same shortcuts", "ffmpeg-shortcuts", clip, frame_count=frames)
        peers = {"PYTHONPATH": str(args.peers)}
        run(group, "torchcodec CPU, 1 process", "torchcodec", clip, threads=0, env=peers)
        if group == "seed" and not args.skip_pydtk:
            run(group, "pydtk-style (every 15th frame)", "pydtk", clip, keep_every=15)
        for row in rows[start:]:
            row.detail["clip_minimal"] = minimal
    if not args.skip_memory:
        for name in ("short", "long"):
            run("memory", SINGLE, "ff-single", clips[name], threads=0)
    run("index", "index", "index", clips["seed"], scans=3)
    if not args.skip_psnr:
        for name in ("seed", "bframes"):
            if name in clips:
                seconds = 20 if args.quick else None
                run("psnr", f"psnr {name}", "psnr", clips[name], frame_rate="30", seconds=seconds)
    return rows


def _machine(load_before: float) -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ffmpeg = run_subprocess_quietly(["ffmpeg", "-version"]) if shutil.which("ffmpeg") else ""
    torchcodec = run_subprocess_quietly(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(PEERS_DIR)!r}); "
            "import torch, torchcodec; print(torchcodec.__version__, 'torch', torch.__version__)",
        ]
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyav": av.__version__,
        "pyav_ffmpeg": av.ffmpeg_version_info,
        "ffmpeg_cli": ffmpeg.removeprefix("ffmpeg version ").split(" ", 1)[0] or None,
        "torchcodec": torchcodec or None,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20 s clips and a 2 min memory clip")
    parser.add_argument(
        "--skip-generate", action="store_true", help="fail instead of generating missing clips"
    )
    parser.add_argument("--skip-pydtk", action="store_true", help="skip pydtk-style (slowest)")
    parser.add_argument("--skip-bframes", action="store_true", help="skip the B-frame clip")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 10 s / 10 min check")
    parser.add_argument("--skip-psnr", action="store_true", help="skip fast decode's PSNR")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of a row at most, while others are noisy"
    )
    parser.add_argument("--workers", type=int, default=2, help="pool processes (default 2)")
    parser.add_argument("--segment-seconds", type=float, default=10.0, help="pool segment length")
    parser.add_argument(
        "--peers", type=Path, default=PEERS_DIR, help="where torch and torchcodec are installed"
    )
    parser.add_argument(
        "--json", type=Path, default=OUT_DIR / "media_bench.json", help="where to write results"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(json.loads(args.child), APPROACHES, PREPARE)
        return
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found on PATH: its rows are skipped (apt-get install -y ffmpeg)")
    clips = _clips(args)
    load_before = os.getloadavg()[0]
    rows = _run_all(args, clips)
    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "machine": _machine(load_before),
        "repeat": args.repeat,
        "clips": {name: _clip_info(path) for name, path in clips.items()},
        "rows": [asdict(r) for r in rows],
    }
    sizes = {path.name: path.stat().st_size for path in clips.values()}
    report["targets"] = check_targets(rows, args.workers, sizes)
    print_report(report, rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
