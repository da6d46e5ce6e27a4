"""What the producer and the workers share, and nothing else: the queue contract.

The segment message (`message`), the job and segment state model (`state`), the job store in
Redis with its keys as a named structure (`store`, `keys`, `scripts`), leases and their reaper
(`leases`), time limits (`limits`), publishing to the broker (`broker`) and the job manifest
(`manifest`). No Celery and no SQLAlchemy here: workers import `media` and `jobs` only.
"""

from framefleet.jobs.manifest import assemble_job_manifest, finalize_job, job_manifest_path
from framefleet.jobs.message import DEFAULT_QUEUE, MESSAGE_VERSION, TASK_NAME, SegmentMessage
from framefleet.jobs.state import JobStatus, SegmentState
from framefleet.jobs.store import JobStore

__all__ = [
    "DEFAULT_QUEUE",
    "MESSAGE_VERSION",
    "TASK_NAME",
    "JobStatus",
    "JobStore",
    "SegmentMessage",
    "SegmentState",
    "assemble_job_manifest",
    "finalize_job",
    "job_manifest_path",
]
