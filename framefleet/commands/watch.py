"""``framefleet watch``: enqueue new recordings automatically, per rule."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from framefleet.catalog import Catalog
from framefleet.commands._common import FiniteFloat, image_options, output_spec_from
from framefleet.commands.state import CliState
from framefleet.config import redact_url
from framefleet.errors import ConfigError
from framefleet.jobs.leases import Reaper
from framefleet.jobs.manifest import finalize_job
from framefleet.jobs.store import JobStore
from framefleet.producer.backends import submit_plan
from framefleet.producer.plan import plan_job
from framefleet.producer.registration import register_job
from framefleet.watch.rules import Rule, load_rules, make_rule, unique_rules
from framefleet.watch.watcher import Watcher


@click.command("watch")
@click.argument(
    "roots", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False), help="Rules file (TOML).")
@click.option("--where", default=None, help="Inline rule: a catalog filter (as for extract).")
@click.option("--out", "out_dir", default=None, help="Inline rule: the output root.")
@click.option("--name", "rule_name", default="inline", show_default=True, help="Inline rule name.")
@image_options
@click.option(
    "--segment-seconds",
    type=FiniteFloat(min=0, max=86400, min_open=True),
    default=None,
    help="Segment length (default: 10).",
)
@click.option(
    "--interval",
    type=FiniteFloat(min=0.01, max=86400),
    default=10.0,
    show_default=True,
    help="Seconds between polls.",
)
@click.option(
    "--settle",
    type=FiniteFloat(min=0, max=86400),
    default=5.0,
    show_default=True,
    help="Seconds a folder must stay unchanged before its files are taken as complete.",
)
@click.option("--once", is_flag=True, help="One pass, then exit (scripts, tests).")
@click.option("--db", default=None, metavar="URL", help="Catalog URL (default: settings).")
@click.option("--broker", default=None, metavar="URL", help="Redis URL of broker and job store.")
@click.pass_context
def watch(
    ctx: click.Context,
    /,
    roots: tuple[Path, ...],
    rules_path: str | None,
    where: str | None,
    out_dir: str | None,
    rule_name: str,
    segment_seconds: float | None,
    interval: float,
    settle: float,
    once: bool,
    db: str | None,
    broker: str | None,
    **image: Any,
) -> None:
    """Poll ROOT... for new recordings; ingest them once complete; enqueue them per rule.

    Rules come from --rules FILE ([[rules]] tables) and/or one inline rule (--out, --where and
    the extract options). Each (file, rule) is enqueued exactly once, across restarts and with
    several watchers on one catalog, and again when the file changes (its newer images replace
    the older ones). Rows added to the catalog by other means are enqueued too.
    """
    state = ctx.find_object(CliState) or CliState()
    settings = state.settings(database_url=db, broker_url=broker, segment_seconds=segment_seconds)
    rules: list[Rule] = []
    if rules_path:
        rules += load_rules(rules_path, default_segment_seconds=settings.segment_seconds)
    if out_dir is not None:
        rules.append(
            make_rule(
                rule_name,
                where=where,
                output=output_spec_from(out_dir, image),
                segment_seconds=settings.segment_seconds,
            )
        )
    elif where is not None:
        raise ConfigError("--where needs --out (an inline rule), or put the rule in --rules FILE")
    if not rules:
        raise ConfigError("no rules: give --rules FILE, or an inline rule with --out DIR")
    rules = unique_rules(rules, where="--rules and the inline rule")
    names = [r.name for r in rules]

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    store = JobStore.from_url(
        settings.effective_results_url, ttl_seconds=settings.result_ttl_seconds
    )

    def submit(rule: Rule, rows: list[dict[str, Any]], job_id: str) -> int:
        plan = plan_job(
            rows,
            output=rule.output,
            segment_seconds=rule.segment_seconds,
            completion=rule.completion,
            bag_time=rule.bag_time,
        )
        job = submit_plan(
            plan,
            backend="celery",
            settings=settings,
            output=rule.output,
            segment_seconds=rule.segment_seconds,
            query={"rule": rule.name, "where": rule.where},
            job_id=job_id,
            store=store,
        )
        return job.enqueued

    try:
        with Catalog(settings.database_url) as catalog:
            watcher = Watcher(
                catalog=catalog,
                roots=list(roots),
                rules=rules,
                submit=submit,
                settle_seconds=settle,
                reap=Reaper(store, settings).maybe_reap,
                register=lambda job_id: _register_if_complete(catalog, store, job_id),
            )
            click.echo(
                f"watching {', '.join(map(str, roots))} every {interval:g} s with rule(s) "
                f"{', '.join(names)}; catalog {redact_url(settings.database_url)}",
                err=True,
            )
            try:
                report = watcher.run(interval_seconds=interval, once=once)
            except KeyboardInterrupt:
                click.echo("stopped", err=True)
                return
            problems = len(report.errors) + len(report.ingest_failures)
            click.echo(
                f"one pass: {report.folders_ingested} folder(s) ingested, "
                f"{sum(len(j) for j in report.enqueued.values())} job(s) enqueued, "
                f"{len(report.waiting)} folder(s) still settling, {problems} problem(s)",
                err=True,
            )
            if problems:
                ctx.exit(1)
    finally:
        store.close()


def _register_if_complete(catalog: Catalog, store: JobStore, job_id: str) -> bool:
    """Register a rule's job once it is complete (its older images replaced): True when done."""
    job = store.job(job_id)
    if not job.complete:
        return False
    job = finalize_job(store, job_id)
    report = register_job(catalog, job, replace=True)
    logging.getLogger("framefleet.watcher").info("job %s: %s", job_id, report.summary())
    return True


COMMANDS = [watch]
