"""``framefleet demo``: the main job on embedded defaults, on a generated dataset.

Nothing else needs to run: a SQLite catalog beside the data, a local process pool for the work.
"""

from __future__ import annotations

from pathlib import Path

import click

from framefleet.catalog import Catalog, ingest_paths
from framefleet.commands._common import CliState
from framefleet.commands.jobs import wait_and_report
from framefleet.demo import SEED_QUERY, make_demo_dataset
from framefleet.media.bags import image_topics
from framefleet.media.probe import probe_video
from framefleet.producer import api


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("framefleet-demo"),
    show_default=True,
    help="Where to put the dataset, the catalog and the images.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="Local processes (default: one per CPU).",
)
@click.pass_context
def demo(ctx: click.Context, directory: Path, workers: int | None) -> None:
    """Generate a pydtk-style dataset, catalog it, run the seed's query, extract its images.

    3 recordings x 2 cameras (10 s, 30 fps, camera timestamp CSVs), a SQLite catalog, then
    every front-center camera of the matched recording at 2 fps, a quarter size, as JPEG.
    """
    root = directory.resolve()
    db = f"sqlite:///{root / 'catalog.db'}"
    out = root / "images"
    click.echo(
        f"[1/4] dataset: 3 recordings x 2 cameras in pydtk's layout under {root / 'records'}"
    )
    make_demo_dataset(root)
    click.echo(f"[2/4] catalog: {db}")
    with Catalog(db) as catalog:
        report = ingest_paths(
            catalog, [root / "records"], probe=probe_video, bag_topics=image_topics
        )
        click.echo(f"      {report.summary()}")
        rows = [r for r in catalog.query(SEED_QUERY) if r["content_type"] == "video/mp4"]
    click.echo(f"[3/4] the seed's query, verbatim:\n      {SEED_QUERY}")
    for row in rows:
        click.echo(f"      -> {row['record_id']} {row['contents']} {row['path']}")
        click.echo(f"         camera clock: {row['timestamps_path']}")
    click.echo("[4/4] extracting locally: 2 fps, a quarter size, JPEG")
    settings = (ctx.find_object(CliState) or CliState()).settings(database_url=db)
    job = api.submit(
        SEED_QUERY,
        out=out,
        fps=2,
        resize=0.25,
        segment_seconds=2.5,  # several segments, to show the work spread over processes
        backend="local",
        workers=workers,
        settings=settings,
        on_created=lambda job_id: click.echo(f"      job {job_id}"),
    )
    code = wait_and_report(job)
    click.echo(f"images under {out}; segment manifests under {out / '_manifests'}")
    click.echo(
        "next: framefleet catalog --db " + db + " query --tag camera  |  "
        "framefleet extract --db " + db + " --where 'tags like \"%rear%\"' --out "
        f"{out} --local"
    )
    ctx.exit(code)


COMMANDS = [demo]
