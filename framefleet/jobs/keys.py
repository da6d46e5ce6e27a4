"""The Redis keys of the job store, as a named structure.

Every key of one job derives from its id; the Lua scripts receive them as KEYS in the order of
`JobKeys`'s fields, and address them by name through a prelude generated from that same order
(``K.state``, ``K.lease``), so no key is ever addressed by a position typed by hand.

    framefleet:jobs                  zset  job id -> created time (recent jobs)
    framefleet:leases                zset  "{job id}|{segment id}" -> lease expiry (every job)
    framefleet:workers               zset  worker hostname -> last heartbeat
    framefleet:worker-queues         hash  worker hostname -> the queues it consumes (a,b)
    framefleet:job:{id}              hash  spec, totals, counters, times (see `JobStore`)
    framefleet:job:{id}:<field>      one hash or set per `JobKeys` field, by segment id
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

PREFIX = "framefleet:"
JOBS_INDEX = PREFIX + "jobs"
LEASES = PREFIX + "leases"
WORKERS = PREFIX + "workers"
WORKER_QUEUES = PREFIX + "worker-queues"


@dataclass(frozen=True)
class JobKeys:
    """The keys of one job (each field's docstring: its type and contents)."""

    job: str
    """hash: job_id mode queue out_dir spec segments total skipped videos enqueued done failed
    images bytes decode_seconds created started finished manifest manifest_done"""
    messages: str
    """hash: segment id -> message JSON (retries, the reaper and the job manifest read it)"""
    state: str
    """hash: segment id -> queued | running | done | failed | skipped"""
    attempts: str
    """hash: segment id -> deliveries so far (counted when a worker begins it)"""
    worker: str
    """hash: segment id -> hostname of the worker of the last delivery"""
    pid: str
    """hash: segment id -> process id of that delivery"""
    error: str
    """hash: segment id -> why a failed segment failed"""
    done: str
    """set: segment ids counted done"""
    failed: str
    """set: segment ids counted failed"""
    token: str
    """hash: segment id -> the delivery holding its lease"""
    lease: str
    """hash: segment id -> lease expiry (epoch seconds)"""
    beat: str
    """hash: segment id -> last heartbeat (epoch seconds)"""
    leases: str
    """zset shared by all jobs: "{job id}|{segment id}" -> lease expiry"""

    @classmethod
    def of(cls, job_id: str) -> JobKeys:
        base = f"{PREFIX}job:{job_id}"
        names = [f.name for f in fields(cls)]
        return cls(
            **{
                name: base if name == "job" else LEASES if name == "leases" else f"{base}:{name}"
                for name in names
            }
        )

    def ordered(self) -> list[str]:
        """The keys in the order the Lua scripts receive them."""
        return list(astuple(self))

    def own(self) -> list[str]:
        """The keys that belong to this job alone (they expire with it)."""
        return [key for key in self.ordered() if key != self.leases]


def lua_prelude() -> str:
    """``local K = {job = KEYS[1], ...}``: the scripts' names for their keys."""
    names = [f.name for f in fields(JobKeys)]
    pairs = ", ".join(f"{name} = KEYS[{i}]" for i, name in enumerate(names, start=1))
    return f"local K = {{{pairs}}}\n"


def lease_member(job_id: str, segment_id: int) -> str:
    return f"{job_id}|{segment_id}"


def parse_lease_member(member: str) -> tuple[str, int] | None:
    job_id, _, segment = member.rpartition("|")
    return (job_id, int(segment)) if job_id and segment.isdigit() else None
