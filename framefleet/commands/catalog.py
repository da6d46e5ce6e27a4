"""``framefleet catalog ...``: create, fill and search the catalog of recordings.

The database comes from ``--db`` (before or after the subcommand), else
``FRAMEFLEET_DATABASE_URL``, else the config file, else ``sqlite:///framefleet.db``. Only ``init``
and ``add`` create a catalog; ``query``, ``show`` and ``stats`` on one that does not exist are an
error naming the URL. ``query`` prints a table when stdout is a terminal and JSON lines (one
metadata dict per line) otherwise, or always with ``--json``: piping into ``jq`` just works.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from framefleet.catalog import Catalog, ingest_paths, parse_query
from framefleet.catalog.ingest import ingest_summary
from framefleet.commands._common import bag_time_option, is_terminal
from framefleet.commands.progress import progress_bar
from framefleet.commands.state import CliState
from framefleet.errors import CatalogError
from framefleet.media.bags import image_topics
from framefleet.media.probe import probe_video

_DB_KEY = "framefleet.catalog.db"
_DB_HELP = (
    "Catalog database URL (default: $FRAMEFLEET_DATABASE_URL, the config file, "
    "or sqlite:///framefleet.db)."
)
C = TypeVar("C", bound=Callable[..., Any])


def _remember_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--db`` given after the subcommand: the same as before it."""
    if value is None:
        return
    before = ctx.meta.get(_DB_KEY)
    if before is not None and before != value:
        raise click.UsageError(f"--db given twice with different URLs ({before!r}, {value!r})")
    ctx.meta[_DB_KEY] = value


def _db_option(command: C) -> C:
    option = click.option(
        "--db",
        default=None,
        metavar="URL",
        expose_value=False,
        callback=_remember_db,
        help=_DB_HELP,
    )
    return option(command)


def _open(ctx: click.Context, *, create: bool) -> Catalog:
    """The catalog; only the commands that fill it (``create``) make a new one."""
    state = ctx.find_object(CliState) or CliState()
    settings = state.settings(database_url=ctx.meta.get(_DB_KEY))
    return Catalog(settings.database_url, create=create)


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):  # a row from before the bounds were checked
        return repr(value)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_json_lines(items: Any) -> None:
    for item in items:
        sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")


@click.group("catalog")
@click.option("--db", "db", default=None, metavar="URL", help=_DB_HELP)
@click.pass_context
def catalog(ctx: click.Context, db: str | None) -> None:
    """The catalog of recordings: pydtk sidecars and videos in a SQL database."""
    ctx.meta[_DB_KEY] = db


@catalog.command("init")
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Store paths under DIR relative to it (set once per catalog).",
)
@_db_option
@click.pass_context
def init(ctx: click.Context, base_dir: Path | None) -> None:
    """Create the catalog, or upgrade its schema to this framefleet's version."""
    with _open(ctx, create=True) as cat:
        if base_dir is not None:
            cat.set_base_dir(base_dir)
        click.echo(f"catalog {cat!r}: schema revision {cat.revision}")


@catalog.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Store paths under DIR relative to it; relative sidecar paths are looked for there.",
)
@click.option("--database-id", default=None, help="database_id for files whose sidecar has none.")
@click.option(
    "--record-id", default=None, help="Record id of videos without a sidecar (default: stem)."
)
@click.option(
    "--start-timestamp",
    type=float,
    default=None,
    help="Epoch seconds of the first frame of videos without a sidecar "
    "(default: their <stem>_timestamps.csv, else 0 with a warning).",
)
@click.option(
    "--no-probe",
    is_flag=True,
    help="Skip videos and bags without a sidecar (do not probe or read them).",
)
@bag_time_option
@click.option(
    "--confine",
    is_flag=True,
    help="Refuse sidecars whose data file lies outside PATH (and the base directory); "
    "without it they are added with a warning.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True)
@_db_option
@click.pass_context
def add(
    ctx: click.Context,
    paths: tuple[Path, ...],
    base_dir: Path | None,
    database_id: str | None,
    record_id: str | None,
    start_timestamp: float | None,
    no_probe: bool,
    bag_time: Literal["header", "receive"],
    confine: bool,
    batch_size: int,
) -> None:
    """Add sidecars (*.json), videos and bags under PATHS; a bad file is reported and skipped.

    Bags: ROS1 *.bag files, ROS2 bag folders (metadata.yaml with *.db3 or *.mcap storage) and
    MCAP files; one row per bag, one content per image topic.

    Adding the same tree again changes nothing; a changed sidecar, or a data file replaced under
    its sidecar, updates its row. Every bad file is reported on stderr with its path and reason.
    Exits with status 1 when any file failed (after adding the others), else 0.
    """
    with _open(ctx, create=True) as cat:
        if base_dir is not None:
            cat.set_base_dir(base_dir)
        with progress_bar(total=None, label="adding", enabled=is_terminal()) as advance:
            state = {"done": 0}

            def progress(done: int, _total: int) -> None:
                advance(done - state["done"])
                state["done"] = done

            report = ingest_paths(
                cat,
                paths,
                probe=None if no_probe else probe_video,
                bag_topics=None if no_probe else image_topics,
                bag_time=bag_time,
                database_id=database_id,
                record_id=record_id,
                start_timestamp=start_timestamp,
                batch_size=batch_size,
                progress=progress,
                confine=confine,
            )
    lines = ingest_summary(report)
    for line in lines[:-1]:
        click.echo(line, err=True)
    click.echo(lines[-1])
    if report.failed:
        ctx.exit(1)


@catalog.command("query")
@click.option(
    "--where", "where", default=None, metavar="EXPR", help="Filter, e.g. 'tags like \"%camera%\"'."
)
@click.option(
    "--tag", "tags", multiple=True, help="A tag the content must have (repeatable; all must match)."
)
@click.option("--record-id", default=None, metavar="GLOB", help="Record id glob, e.g. '016_*'.")
@click.option("--content", default=None, metavar="GLOB", help="Content name glob, e.g. 'camera/*'.")
@click.option("--since", default=None, help="Files ending at or after (epoch seconds or ISO time).")
@click.option("--until", default=None, help="Files starting before (epoch seconds or ISO time).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N results.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines (the default when piped).")
@_db_option
@click.pass_context
def query(
    ctx: click.Context,
    where: str | None,
    tags: tuple[str, ...],
    record_id: str | None,
    content: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print the files and contents matching a filter and the options (all must hold)."""
    if where is not None and where.strip():
        parse_query(where)  # a bad filter is reported before the database is even opened
    with _open(ctx, create=False) as cat:
        result = cat.query(
            where, tags=tags, record_id=record_id, content=content, since=since, until=until
        )
        items = (item for i, item in enumerate(result) if limit is None or i < limit)
        if as_json or not sys.stdout.isatty():
            _print_json_lines(items)
            return
        _print_table(list(items), total=len(result))


def _print_table(items: list[dict[str, Any]], *, total: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for name in ("record_id", "contents", "content_type", "start", "end", "tags", "path"):
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(
            item["record_id"],
            item["contents"],
            item["content_type"] or "-",
            _time(item["start_timestamp"]),
            _time(item["end_timestamp"]),
            ", ".join(item["tags"]),
            item["path"],
        )
    console = Console()
    console.print(table)
    console.print(f"{len(items)} of {total} match(es)")


@catalog.command("show")
@click.argument("record_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_db_option
@click.pass_context
def show(ctx: click.Context, record_id: str, as_json: bool) -> None:
    """Show one recording: its time span and its files."""
    with _open(ctx, create=False) as cat:
        record = cat.get_record(record_id)
    if record is None:
        raise CatalogError(
            f"no record {record_id!r} in the catalog "
            f"(search with: framefleet catalog query --record-id '*{record_id}*')"
        )
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    click.echo(f"record    {record['record_id']}")
    click.echo(f"databases {', '.join(record['database_ids']) or '-'}")
    duration = record["duration"]
    span = f"{_time(record['start_timestamp'])} .. {_time(record['end_timestamp'])}"
    click.echo(f"time      {span}" + (f" ({duration:.3f} s)" if duration is not None else ""))
    for item in record["files"]:
        click.echo(f"- {item['path']}")
        click.echo(f"    content {item['contents']} ({item['content_type'] or '-'})")
        click.echo(f"    tags    {', '.join(item['tags']) or '-'}")
        if item["timestamps_path"]:
            click.echo(f"    times   {item['timestamps_path']}")
        if item["frame_count"] is not None:
            click.echo(
                f"    video   {item['width']}x{item['height']}, {item['fps']:.3f} fps, "
                f"{item['frame_count']} frames, {item['duration_seconds']:.3f} s"
            )


@catalog.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@_db_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts: files, records, contents, tags, content types, time span."""
    with _open(ctx, create=False) as cat:
        numbers = cat.stats()
    if as_json:
        click.echo(json.dumps(numbers, indent=2))
        return
    for key in ("url", "revision", "base_dir", "files", "records", "contents", "distinct_tags"):
        click.echo(f"{key:<24}{numbers[key] if numbers[key] is not None else '-'}")
    click.echo(f"{'videos_with_timestamps':<24}{numbers['videos_with_timestamps']}")
    click.echo(
        f"{'time span':<24}{_time(numbers['start_timestamp'])} .. {_time(numbers['end_timestamp'])}"
    )
    for title, key in (("content types", "content_types"), ("top tags", "top_tags")):
        listed = ", ".join(f"{k} {v}" for k, v in numbers[key].items())
        click.echo(f"{title:<24}{listed or '-'}")


COMMANDS = [catalog]
