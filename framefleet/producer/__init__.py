"""The producer: catalog rows -> planned segments -> a job on the queue (or a local pool).

    from framefleet.producer import plan_job, submit_job, follow_job, run_local

Planning (`plan_job`) is pure; `submit_job` records a job in the job store
(`framefleet.jobs`) and enqueues one message per segment; `follow_job` polls a job to its end;
`run_local` runs a plan in a process pool with the same outputs. Nothing here imports Celery.
"""

from framefleet.producer.follow import follow_job
from framefleet.producer.local import LocalRun, run_local
from framefleet.producer.plan import Plan, PlannedSegment, plan_job
from framefleet.producer.submit import Submitted, new_job_id, retry_job, submit_job

__all__ = [
    "LocalRun",
    "Plan",
    "PlannedSegment",
    "Submitted",
    "follow_job",
    "new_job_id",
    "plan_job",
    "retry_job",
    "run_local",
    "submit_job",
]
