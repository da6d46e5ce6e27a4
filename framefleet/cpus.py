"""How many CPUs this process may really use: affinity, and a container's CPU quota.

FFmpeg sizes its decoder threads by the CPUs it sees online, which in a container limited to
two CPUs on a 64-core host is 64: ``--scale`` then oversubscribes every core. The quota is
read from cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP = Path("/sys/fs/cgroup")


def available_cpus() -> float:
    """CPUs this process may use: the smaller of its affinity set and its cgroup quota."""
    try:
        affinity = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        affinity = float(os.cpu_count() or 1)
    quota = cgroup_cpu_quota()
    return max(1.0, min(affinity, quota) if quota is not None else affinity)


def whole_cpus() -> int:
    """`available_cpus` rounded up: a quota of 1.5 CPUs keeps two threads busy."""
    return max(1, math.ceil(available_cpus() - 1e-9))


def cgroup_cpu_quota(root: Path = _CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs, or None when there is none."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota != "max" and quota.isdigit() and period.strip().isdigit() and int(period):
            return int(quota) / int(period)
        return None
    quota_v1 = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu.cfs_quota_us")
    period_v1 = _read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu.cfs_period_us")
    try:
        q, p = int(quota_v1 or "-1"), int(period_v1 or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
