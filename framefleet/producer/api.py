"""The Python job API: a catalog query in, images out, on a local pool or Celery workers.

    import framefleet

    status = framefleet.extract(
        'tags like "%front%" and tags like "%center%"',
        catalog="sqlite:///framefleet.db", out="images", fps=2, resize=0.25,
    )
    print(status.images, status.manifest)

    job = framefleet.submit(where, catalog=url, out="/data/out", backend="celery")
    job.wait(on_update=lambda status, waiting: print(status.done, "/", status.total))

The CLI (``framefleet extract``), the demo and the watcher go through the same functions.
Every option is keyword-only and validated at the call, with the errors the CLI gives.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framefleet.config import Settings, load_settings, redact_url
from framefleet.errors import ConfigError, NothingToDoError
from framefleet.jobs.completion import Completion
from framefleet.jobs.message import DEFAULT_QUEUE
from framefleet.jobs.state import JobStatus
from framefleet.media.attimes import (
    parse_time_values,
    read_requested_times,
    store_requested_times,
    times_digest,
)
from framefleet.media.naming import DEFAULT_NAME_TEMPLATE
from framefleet.media.pipeline import prepare_root
from framefleet.media.specs import BagClock, Mode, OutputSpec
from framefleet.producer.backends import BACKENDS, Backend, Job, open_job, submit_plan
from framefleet.producer.follow import Update
from framefleet.producer.plan import Plan, plan_job

if TYPE_CHECKING:
    from framefleet.catalog import Catalog
    from framefleet.catalog.derived import RegisterReport

Progress = Callable[[JobStatus], None]


def submit(
    where: str | None = None,
    *,
    catalog: str | Catalog | None = None,
    out: str | os.PathLike[str],
    fps: float | str = 2,
    mode: Mode = "exact",
    resize: float | None = None,
    max_side_px: int | None = None,
    width: int | None = None,
    height: int | None = None,
    image_format: str = "jpeg",
    quality: int = 90,
    name_template: str = DEFAULT_NAME_TEMPLATE,
    fast_decode: bool = False,
    at_times: str | os.PathLike[str] | Sequence[float | str | Decimal] | None = None,
    times_column: str | None = None,
    max_gap_ms: float | None = None,
    sync: bool = False,
    anchor: float | None = None,
    max_skew_ms: float | None = None,
    bag_time: BagClock = "header",
    exports: Sequence[str] = (),
    shard_size: int = 1000,
    register: bool = False,
    tags: Sequence[str] = (),
    record_id: str | None = None,
    content: str | None = None,
    segment_seconds: float | None = None,
    backend: Backend = "local",
    workers: int | None = None,
    force: bool = False,
    settings: Settings | None = None,
    queue: str = DEFAULT_QUEUE,
    on_created: Callable[[str], None] | None = None,
) -> Job:
    """Start a job over every catalog video matching the filter; returns its `Job` handle.

    Args:
        where: a catalog filter (``tags like "%front%" and record_id like "016_%"``).
        catalog: a catalog URL or an open `Catalog` (default: the ``database_url`` setting).
        out: the output root.
        fps, mode, resize, max_side_px, width, height, image_format, quality, name_template,
            fast_decode: what images to make (as `framefleet.OutputSpec`).
        at_times: instead of ``fps``, requested times: a file of epoch seconds (one per line,
            or the column ``times_column`` of a CSV) or the values; ``max_gap_ms``: a time
            whose frame is older is reported missing.
        sync: the cameras of each record share one grid, anchored at ``anchor`` (epoch
            seconds) or the record's earliest start; the job writes framesets
            (``{out}/_framesets/{record}.jsonl``); ``max_skew_ms``: a frameset whose camera's
            frame is older is marked incomplete.
        bag_time: the clock of bag topics: their messages' ``header`` stamps or ``receive``
            times.
        exports: ``"parquet"`` and/or ``"webdataset"``, written when the job completes
            (``shard_size`` images per WebDataset shard).
        register: add the job's images to the catalog when it completes (`extract` does it
            as it returns; after `submit`, call `register` once the job is complete).
        tags, record_id, content: more filters (all tags; globs).
        segment_seconds: segment length (default: the setting, 10 s).
        backend: ``"local"`` (a process pool here) or ``"celery"`` (workers on the broker).
        workers: local processes (default: one per CPU).
        force: redo segments already complete; replace images another spec wrote.
        settings: defaults < FRAMEFLEET_* environment when None.
        on_created: called with the job id as soon as the job is recorded.

    Raises:
        ConfigError: a bad option (named, with what is allowed).
        NothingToDoError: no video matches.
        CatalogError, QueryError, QueueError, OutputError: as their names say.
    """
    settings = settings or load_settings()
    if segment_seconds is not None:
        _check_segment_seconds(segment_seconds)
        settings = _with(settings, segment_seconds=float(segment_seconds))
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 1024
    ):
        raise ConfigError(f"workers must be a whole number in 1..1024, got {workers!r}")
    if workers is not None and backend != "local":
        raise ConfigError("workers applies to the local backend; scale the queue with workers")
    if at_times is not None and sync:
        raise ConfigError("--sync samples a grid; --at-times gives the times: choose one")
    if anchor is not None and not sync:
        raise ConfigError("--anchor (anchor) applies to --sync")
    requested = _requested_times(at_times, times_column)
    output = OutputSpec(
        out_dir=os.fspath(out),
        target_fps=str(fps),
        mode=mode,
        resize_rate=resize,
        max_side_px=max_side_px,
        width=width,
        height=height,
        image_format=image_format,  # type: ignore[arg-type]  # validated by OutputSpec
        quality=quality,
        name_template=name_template,
        fast_decode=fast_decode,
        at_times=None if requested is None else times_digest(requested),
        max_gap_ms=max_gap_ms,
    )
    if requested is not None:  # kept under the output root: the job's segments read them there
        store_requested_times(prepare_root(Path(output.out_dir)), requested)
    query = {"where": where, "tags": list(tags), "record_id": record_id, "content": content}
    plan = _plan(
        catalog,
        settings,
        query,
        output=output,
        force=force,
        sync=sync,
        anchor=_epoch(anchor, "anchor"),
        max_skew_ms=max_skew_ms,
        bag_time=bag_time,
        completion=Completion(
            exports=tuple(exports), shard_size=shard_size, register=bool(register)
        ),
    )
    if not plan.segments:
        described = ", ".join(f"{k}={v!r}" for k, v in query.items() if v) or "no filter"
        url = catalog if isinstance(catalog, str) else settings.database_url
        raise NothingToDoError(
            f"no video in the catalog {redact_url(url)} matches ({described}); check the "
            "filter with `framefleet catalog query`, or add recordings with "
            "`framefleet catalog add PATH`"
        )
    return submit_plan(
        plan,
        backend=backend,
        settings=settings,
        output=output,
        segment_seconds=settings.segment_seconds,
        force=force,
        query=query,
        workers=workers,
        queue_name=queue,
        on_created=on_created,
    )


def extract(
    where: str | None = None,
    *,
    progress: Progress | None = None,
    timeout_seconds: float | None = None,
    **options: Any,
) -> JobStatus:
    """`submit`, then wait for the job; returns its final `JobStatus` (``status.manifest`` is
    the job manifest; ``status.failed`` counts failed segments).

    Args:
        progress: called with each snapshot of the job while it runs.
        timeout_seconds: raise `JobTimeoutError` after this long (the job goes on).
        options: those of `submit`.
    """
    job = submit(where, **options)
    update: Update | None = None if progress is None else (lambda status, _: progress(status))
    status = job.wait(on_update=update, timeout_seconds=timeout_seconds)
    if options.get("register"):
        register(status, catalog=options.get("catalog"), settings=options.get("settings"))
    return status


def register(
    job: JobStatus | str,
    *,
    catalog: str | Catalog | None = None,
    settings: Settings | None = None,
    out: str | os.PathLike[str] | None = None,
) -> RegisterReport:
    """Add a complete job's images to the catalog (a job submitted with ``register=True`` or
    ``exports``); idempotent.

    Args:
        job: its status, or its id (found as `framefleet status` finds it; ``out``: a local
            job's output root).
    """
    from framefleet.catalog import Catalog
    from framefleet.producer.registration import register_job

    settings = settings or load_settings()
    if isinstance(job, str):
        found = open_job(job, settings=settings, out_dir=None if out is None else os.fspath(out))
        status = found.wait()  # complete: writes its manifest if need be; else waits for it
    else:
        status = job
    if isinstance(catalog, Catalog):
        return register_job(catalog, status)
    with Catalog(catalog or settings.database_url, create=False) as opened:
        return register_job(opened, status)


def _plan(
    catalog: str | Catalog | None,
    settings: Settings,
    query: dict[str, Any],
    *,
    output: OutputSpec,
    force: bool,
    **planning: Any,
) -> Plan:
    from framefleet.catalog import Catalog

    def plan(opened: Catalog) -> Plan:
        rows = opened.query(
            query["where"],
            tags=query["tags"],
            record_id=query["record_id"],
            content=query["content"],
            derived=False,  # images registered back are never sources
        )
        return plan_job(
            rows,
            output=output,
            segment_seconds=settings.segment_seconds,
            force=force,
            **planning,
        )

    if isinstance(catalog, Catalog):
        return plan(catalog)
    with Catalog(catalog or settings.database_url, create=False) as opened:
        return plan(opened)


def _requested_times(
    at_times: str | os.PathLike[str] | Sequence[float | str | Decimal] | None,
    column: str | None,
) -> list[Decimal] | None:
    """The requested times, parsed strictly (from a file, or the values)."""
    if at_times is None:
        if column is not None:
            raise ConfigError("--times-column (times_column) applies to --at-times")
        return None
    if isinstance(at_times, str | os.PathLike):
        return read_requested_times(os.fspath(at_times), column=column)
    return parse_time_values(at_times)


def _epoch(value: object, name: str) -> float | None:
    if value is None:
        return None
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or abs(value) >= 1e11
    ):
        raise ConfigError(f"{name} must be epoch seconds, got {value!r}")
    return float(value)


def _check_segment_seconds(value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 < value <= 86400
    ):
        raise ConfigError(f"segment_seconds must be a number in (0, 86400], got {value!r}")


def _with(settings: Settings, **changes: Any) -> Settings:
    from framefleet.config import replace

    return replace(settings, **changes)
