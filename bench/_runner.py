"""How the media benchmark measures: each row in a fresh process, its own counters, the noise.

Child side (`run_child`): one approach runs in this process; wall and CPU time (user + sys,
children included) from the start of the work (interpreter start-up and imports excluded), peak
RSS (``VmHWM``; for a pool or ffmpeg, the largest process), bytes read (``rchar`` of
``/proc/PID/io``: every byte asked of the file system, page cache or not, which is what a
network mount would carry), as one ``RESULT <json>`` line.

Parent side (`measure`): spawns the child, and counts the CPU time *other* processes used
meanwhile (``/proc/stat`` less the child's own): the machine is shared. A row whose others
exceeded `NOISE_FRACTION` of its own CPU is run again, up to ``--repeat`` runs; the quietest
run is kept and the number of runs is reported.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NOISE_FRACTION = 0.10
"""A row is rerun while others used more than this fraction of its own CPU time."""


class Skip(Exception):
    """Raised by an approach that cannot run here (a peer not installed), with the reason."""


@dataclass
class Work:
    """What one approach did, as counted inside its process."""

    frames_decoded: int | None = None
    frames_minimal: int | None = None
    images: int = 0
    bytes_read: int | None = None
    """Bytes the approach read (``rchar``), all its processes; None: not known."""
    first_image_s: float | None = None
    """Seconds from the start of the work to the first image on disk."""
    first_image_since_spawn_s: float | None = None
    """The same, from the moment the parent started this process (imports included)."""
    peak_rss_mb: float | None = None
    """Set by approaches whose largest process is not this one (pools, ffmpeg)."""
    extra: dict[str, Any] = field(default_factory=dict)


def rchar(pid: int | str = "self") -> int:
    """Bytes read by a process so far (``rchar``); 0 if unknown."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def vm_hwm_mb(pid: int | str = "self") -> float:
    """``VmHWM`` (peak RSS of the process's own address space) in MB; 0 if unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def run_watched(cmds: list[list[str]]) -> tuple[float, int]:
    """Run ``cmds`` at once; return (largest peak RSS in MB, bytes read by all of them).

    Both are read from ``/proc/PID`` every 20 ms and, last, after each process exits but before
    it is reaped (``waitid(WNOWAIT)``), so nothing it read at the end is missed. ``ru_maxrss``
    of a child is useless here: Linux keeps the parent's high-water mark across exec.
    """
    procs = [subprocess.Popen(cmd) for cmd in cmds]
    peak, read = 0.0, {p.pid: 0 for p in procs}
    running = list(procs)
    while running:
        for proc in list(running):
            peak = max(peak, vm_hwm_mb(proc.pid))
            read[proc.pid] = max(read[proc.pid], rchar(proc.pid))
            exited = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if exited is not None:
                peak = max(peak, vm_hwm_mb(proc.pid))
                read[proc.pid] = max(read[proc.pid], rchar(proc.pid))
                proc.wait()
                running.remove(proc)
        time.sleep(0.02)
    for proc, cmd in zip(procs, cmds, strict=True):
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
    return peak, sum(read.values())


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_child(
    job: dict[str, Any],
    approaches: dict[str, Callable[[dict[str, Any], float], Work]],
    prepare: dict[str, Callable[[dict[str, Any]], None]],
) -> None:
    """Run ``job`` here and print ``RESULT <json>`` (wall, CPU, RSS and reads of this work), or
    ``SKIPPED <why>``. ``prepare[approach]`` runs first, off the clock (imports)."""
    try:
        if job["approach"] in prepare:
            prepare[job["approach"]](job)
        cpu0 = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
        read0 = rchar()
        t0 = time.perf_counter()
        work = approaches[job["approach"]](job, t0)
    except Skip as e:
        print(f"SKIPPED {e}", flush=True)
        return
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0
    if work.bytes_read is None:
        work.bytes_read = rchar() - read0
    data = {"wall_s": wall, "cpu_s": cpu, "rss_self_mb": vm_hwm_mb(), **asdict(work)}
    print("RESULT " + json.dumps(data), flush=True)


@dataclass
class Row:
    """One measured line of a table."""

    group: str
    """Which table: "seed", "bframes", "memory", "index" or "psnr"."""
    label: str
    clip: str
    approach: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    frames_decoded: int | None
    frames_minimal: int | None
    images: int
    bytes_read: int | None
    first_image_s: float | None
    others_cpu_s: float
    """CPU time other processes used during the kept run (the machine is shared): noise."""
    runs: int
    """Runs made: more than one when the earlier ones were noisy."""
    walls: list[float]
    detail: dict[str, Any]
    skipped: str | None = None
    """Why the row did not run (a peer not installed)."""

    @property
    def noisy(self) -> bool:
        return self.others_cpu_s > NOISE_FRACTION * max(self.cpu_s, 0.01)


def busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (from /proc/stat), 0 if unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(
    group: str,
    label: str,
    approach: str,
    clip: Path,
    *,
    out_root: Path,
    repeat: int,
    env: dict[str, str] | None = None,
    **opts: Any,
) -> Row:
    """Run one approach in fresh processes until a run is quiet (or ``repeat`` runs)."""
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, repeat)):
        out = out_root / group / label.replace(" ", "_").replace(",", "").replace("/", "-")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        job = {"approach": approach, "clip": str(clip), "out": str(out), **opts}
        busy0, children0 = busy_seconds(), cpu_seconds(resource.RUSAGE_CHILDREN)
        job["spawned_at"] = time.time()
        run = _spawn(job, env)
        if "skipped" in run:
            return _skipped(group, label, approach, clip, run["skipped"])
        mine = cpu_seconds(resource.RUSAGE_CHILDREN) - children0
        run["others_cpu_s"] = max(0.0, busy_seconds() - busy0 - mine)
        runs.append(run)
        if run["others_cpu_s"] <= NOISE_FRACTION * max(run["cpu_s"], 0.01):
            break
    best = min(runs, key=lambda r: (r["others_cpu_s"] / max(r["cpu_s"], 0.01), r["wall_s"]))
    row = Row(
        group=group,
        label=label,
        clip=clip.name,
        approach=approach,
        wall_s=best["wall_s"],
        cpu_s=best["cpu_s"],
        peak_rss_mb=best["peak_rss_mb"] or best["rss_self_mb"],
        frames_decoded=best["frames_decoded"],
        frames_minimal=best["frames_minimal"],
        images=best["images"],
        bytes_read=best["bytes_read"],
        first_image_s=best["first_image_s"],
        others_cpu_s=best["others_cpu_s"],
        runs=len(runs),
        walls=[r["wall_s"] for r in runs],
        detail=best,
    )
    print(
        f"  {group:<8}{label:<36}{row.wall_s:7.2f} s  CPU {row.cpu_s:6.2f} s  others "
        f"{row.others_cpu_s:5.2f} s  ({row.runs} run{'s' if row.runs > 1 else ''})",
        flush=True,
    )
    return row


def _skipped(group: str, label: str, approach: str, clip: Path, why: str) -> Row:
    print(f"  {group:<8}{label:<36}skipped: {why}", flush=True)
    return Row(
        group, label, clip.name, approach, 0, 0, 0, None, None, 0, None, None, 0, 0, [], {}, why
    )


def _spawn(job: dict[str, Any], env: dict[str, str] | None) -> dict[str, Any]:
    script = Path(__file__).resolve().with_name("media_bench.py")
    cmd = [sys.executable, str(script), "--child", json.dumps(job)]
    full_env = None if env is None else {**os.environ, **env}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=full_env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(("RESULT ", "SKIPPED "))]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{job['approach']} on {job['clip']} failed ({proc.returncode}):\n{proc.stderr}")
    if lines[-1].startswith("SKIPPED "):
        return {"skipped": lines[-1].removeprefix("SKIPPED ")}
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result
