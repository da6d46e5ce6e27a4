"""A job's images back in the catalog, once it completes: the producer side's part.

Workers never open the catalog, so registration happens where the catalog is: after
``extract --register`` waits for its job, by ``framefleet register JOB``, and by the watcher for
its rules' jobs. It is idempotent (`framefleet.catalog.derived`): registering again adds
nothing, and the watcher's re-extraction of a changed video replaces its older images' rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framefleet.catalog import Catalog
from framefleet.catalog.derived import RegisterReport, register_images, source_rows_for
from framefleet.errors import ConfigError
from framefleet.jobs.completion import load_sources
from framefleet.jobs.state import JobStatus


def spec_tag(output: Mapping[str, Any]) -> str:
    """A short, readable tag naming an output spec (``2fps-0.25x-jpeg``, ``2fps-480px-png``,
    ``at-times-3f9a1c0b-jpeg``): added to each registered image's tags."""
    if output.get("at_times"):
        rate = f"at-times-{str(output['at_times'])[:8]}"
    else:
        rate = f"{str(output.get('target_fps', '2')).replace('/', 'over')}fps"
    if output.get("resize_rate"):
        size = f"{output['resize_rate']:g}x"
    elif output.get("max_side_px"):
        size = f"{output['max_side_px']}px"
    elif output.get("width") or output.get("height"):
        size = f"{output.get('width') or ''}x{output.get('height') or ''}px"
    else:
        size = "full"
    fast = "-fast" if output.get("fast_decode") else ""
    return f"{rate}-{size}-{output.get('image_format', 'jpeg')}{fast}"


def register_job(catalog: Catalog, job: JobStatus, *, replace: bool = False) -> RegisterReport:
    """Add a complete job's images to ``catalog``.

    Args:
        replace: remove the earlier images of the same videos, spec and output root that this
            job did not make (a re-extraction of changed videos).

    Raises:
        ConfigError: the job is not complete, or was not planned for registration.
        CatalogError, OutputError: see `framefleet.catalog.derived.register_images`.
    """
    if not job.complete or not job.manifest:
        raise ConfigError(f"job {job.job_id} is not complete: register it once it is")
    sources = load_sources(job.out_dir, job.job_id)
    if not sources:
        raise ConfigError(
            f"job {job.job_id} kept no sources to register against: it was not submitted with "
            "--register (or --export)"
        )
    videos = {key: str(row["path"]) for key, row in sources.items()}
    output = job.spec.get("output", {})
    return register_images(
        catalog,
        Path(job.manifest),
        out_root=Path(job.out_dir),
        job_id=job.job_id,
        source_rows=source_rows_for(catalog, videos),
        spec_tag=spec_tag(output),
        image_format=str(output.get("image_format", "jpeg")),
        replace=replace,
    )
