"""The producer: a catalog query -> planned segments -> a job on a backend (local or Celery).

    import framefleet
    framefleet.extract(where, catalog=url, out="images", fps=2, resize=0.25)

`api` is the Python job API (`extract`, `submit`); `plan` turns catalog rows into segments;
`backends` records a plan as a job and runs it (a local pool or Celery), behind one `Job`
handle; `follow` watches a queued job to its end. Nothing here imports Celery.
"""

from framefleet.producer.api import extract, submit
from framefleet.producer.backends import Job, LocalJob, QueuedJob, open_job, submit_plan
from framefleet.producer.plan import Plan, PlannedSegment, plan_job

__all__ = [
    "Job",
    "LocalJob",
    "Plan",
    "PlannedSegment",
    "QueuedJob",
    "extract",
    "open_job",
    "plan_job",
    "submit",
    "submit_plan",
]
