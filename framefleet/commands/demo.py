"""``framefleet demo``: the main job on embedded defaults, on a generated dataset.

Nothing else needs to run: a SQLite catalog beside the data, a local process pool for the work.
"""

from __future__ import annotations

from pathlib import Path

import click

from framefleet.catalog import Catalog, ingest_paths
from framefleet.commands.jobs import wait_and_report
from framefleet.commands.state import CliState
from framefleet.demo import BAG_QUERY, SEED_QUERY, make_demo_dataset
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

    3 recordings x 2 cameras (10 s, 30 fps, camera timestamp CSVs) and a recording stored as a
    bag (MCAP), a SQLite catalog, then every front-center camera of the seed's recording, and of
    the bag's, at 2 fps, a quarter size, as JPEG.
    """
    root = directory.resolve()
    db = f"sqlite:///{root / 'catalog.db'}"
    out = root / "images"
    click.echo(
        f"[1/5] dataset: 3 recordings x 2 cameras, and one recording stored as a bag, in "
        f"pydtk's layout under {root / 'records'}"
    )
    make_demo_dataset(root)
    click.echo(f"[2/5] catalog: {db}")
    with Catalog(db) as catalog:
        report = ingest_paths(
            catalog, [root / "records"], probe=probe_video, bag_topics=image_topics
        )
        click.echo(f"      {report.summary()}")
        rows = [r for r in catalog.query(SEED_QUERY) if r["content_type"] == "video/mp4"]
    click.echo(f"[3/5] the seed's query, verbatim:\n      {SEED_QUERY}")
    for row in rows:
        click.echo(f"      -> {row['record_id']} {row['contents']} {row['path']}")
        click.echo(f"         camera clock: {row['timestamps_path']}")
    settings = (ctx.find_object(CliState) or CliState()).settings(database_url=db)
    code = 0
    for step, query in (
        ("[4/5] extracting locally", SEED_QUERY),
        ("[5/5] the bag's camera", BAG_QUERY),
    ):
        click.echo(
            f"{step}: 2 fps, a quarter size, JPEG"
            + ("" if query == SEED_QUERY else f"\n      {query}")
        )
        job = api.submit(
            query,
            out=out,
            fps=2,
            resize=0.25,
            segment_seconds=2.5,  # several segments, to show the work spread over processes
            backend="local",
            workers=workers,
            settings=settings,
            on_created=lambda job_id: click.echo(f"      job {job_id}"),
        )
        code = max(code, wait_and_report(job))
    click.echo(f"images under {out}; segment manifests under {out / '_manifests'}")
    click.echo(
        "next: framefleet catalog --db " + db + " query --tag camera  |  "
        "framefleet extract --db " + db + " --where 'tags like \"%rear%\"' --out "
        f"{out} --local"
    )
    ctx.exit(code)


COMMANDS = [demo]
