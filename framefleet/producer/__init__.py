"""The producer: catalog rows -> planned segments -> a job on the queue (or a local pool).

    from framefleet.producer import plan_job, submit_job, follow_job, run_local

Planning (`plan_job`) is pure; `JobStore` keeps jobs and segment results in Redis; `submit_job`
records a job and enqueues one message per segment; `follow_job` polls a job to its end;
`run_local` runs a plan in a process pool with the same outputs. Nothing here imports Celery.
"""

from framefleet.producer.follow import follow_job
from framefleet.producer.local import LocalRun, run_local
from framefleet.producer.manifest import assemble_job_manifest, finalize_job, job_manifest_path
from framefleet.producer.messages import SegmentMessage
from framefleet.producer.plan import Plan, PlannedSegment, plan_job
from framefleet.producer.status import JobStatus, SegmentState
from framefleet.producer.store import JobStore
from framefleet.producer.submit import Submitted, new_job_id, retry_job, submit_job

__all__ = [
    "JobStatus",
    "JobStore",
    "LocalRun",
    "Plan",
    "PlannedSegment",
    "SegmentMessage",
    "SegmentState",
    "Submitted",
    "assemble_job_manifest",
    "finalize_job",
    "follow_job",
    "job_manifest_path",
    "new_job_id",
    "plan_job",
    "retry_job",
    "run_local",
    "submit_job",
]
