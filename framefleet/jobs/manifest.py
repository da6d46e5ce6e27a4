"""The job manifest: every image of a job, one JSON line each, at ``{out}/_jobs/{job_id}.jsonl``.

It is the concatenation of the job's segment manifests in plan order (each segment's lines as
its manifest holds them), so it is the same bytes whichever mode or worker made the segments.
Assembling it is idempotent (same input, same bytes, written atomically), so whoever sees the
job complete may do it: the worker that finishes the last segment, ``extract --wait`` or
``status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from framefleet.errors import OutputError
from framefleet.jobs.completion import Completion, complete_job
from framefleet.jobs.state import JobRecords, JobStatus
from framefleet.media.images import inside, write_atomic
from framefleet.media.naming import JOBS_DIR, path_safe
from framefleet.media.specs import SegmentSpec


@dataclass(frozen=True)
class JobManifest:
    """Where the job manifest was written and what it holds."""

    path: Path
    images: int
    segments: int


def job_manifest_path(out_dir: str | Path, job_id: str) -> Path:
    """``{out}/_jobs/{job_id}.jsonl``."""
    return inside(Path(out_dir), f"{JOBS_DIR}/{path_safe(job_id)}.jsonl")


def assemble_job_manifest(
    out_dir: str | Path, job_id: str, specs: Iterable[SegmentSpec]
) -> JobManifest:
    """Concatenate the manifests of ``specs`` (complete segments, in plan order) atomically.

    Raises:
        OutputError: a segment manifest is missing or unreadable, or the file cannot be written.
    """
    root = Path(out_dir)
    parts: list[bytes] = []
    images = segments = 0
    for spec in specs:
        path = inside(root, spec.manifest_name)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise OutputError(
                f"segment manifest {str(path)!r} of job {job_id!r} cannot be read: "
                f"{e.strerror or e}"
            ) from e
        if data and not data.endswith(b"\n"):
            data += b"\n"
        parts.append(data)
        images += data.count(b"\n")
        segments += 1
    target = job_manifest_path(root, job_id)
    write_atomic(target, b"".join(parts))
    return JobManifest(target, images, segments)


def finalize_job(store: JobRecords, job_id: str) -> JobStatus:
    """Write the job manifest of a complete job if it is missing or out of date.

    Out of date: it holds fewer segments than are now done (``retry`` completed more). Returns
    the job's status, re-read after the manifest was recorded.
    """
    job = store.job(job_id)
    if not job.complete:
        return job
    path = job_manifest_path(job.out_dir, job_id)
    if job.manifest_done == job.done and job.manifest and path.is_file():
        return job
    done = store.done_ids(job_id)
    states = store.segment_states(job_id)
    include = [
        m.spec
        for m in store.messages(job_id)
        if m.segment_id in done or states.get(m.segment_id) == "skipped"
    ]
    manifest = assemble_job_manifest(job.out_dir, job_id, include)
    complete_job(
        job.out_dir,
        job_id,
        include,
        completion=Completion.from_dict(job.spec.get("completion")),
        target_fps=str(job.spec.get("output", {}).get("target_fps", "2")),
        job_manifest=manifest.path,
    )
    store.mark_manifest(job_id, str(manifest.path), job.done, manifest.images)
    return store.job(job_id)
