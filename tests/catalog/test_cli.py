"""``framefleet catalog ...`` end to end through Click, on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from framefleet.catalog import Catalog, ingest_paths
from framefleet.catalog.database import head_revision
from framefleet.cli import main
from framefleet.commands.catalog import _print_table
from tests.catalog.test_ingest import seed_sample
from tests.catalog.test_query_language import SEED_QUERY


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("FRAMEFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("FRAMEFLEET_CONFIG", raising=False)
    return CliRunner()


def test_init_add_query_show_stats(run: CliRunner, pydtk_tree: Path, tmp_path: Path) -> None:
    db = ["catalog", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    result = run.invoke(main, [*db, "init", "--base-dir", str(pydtk_tree)])
    assert result.exit_code == 0, result.output
    assert f"schema revision {head_revision()}" in result.output

    result = run.invoke(main, [*db, "add", str(pydtk_tree)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "3 added, 0 updated, 0 unchanged, 0 failed"
    result = run.invoke(main, [*db, "add", str(pydtk_tree)])
    assert result.stdout.strip() == "0 added, 0 updated, 3 unchanged, 0 failed"

    result = run.invoke(main, [*db, "query", "--where", SEED_QUERY, "--json"])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    item = json.loads(line)
    expected = seed_sample(pydtk_tree)
    assert {k: item[k] for k in expected} == expected

    result = run.invoke(main, [*db, "query", "--tag", "camera", "--tag", "timestamps"])
    assert [json.loads(x)["content_type"] for x in result.stdout.splitlines()] == ["text/csv"]
    result = run.invoke(main, [*db, "query", "--record-id", "016_*", "--limit", "1"])
    assert len(result.stdout.splitlines()) == 1

    result = run.invoke(main, [*db, "show", "016_00000000030000000240"])
    assert result.exit_code == 0, result.output
    assert "time      2017-03-17T05:28:11.000Z .. 2017-03-17T05:29:30.957Z (79.957 s)" in (
        result.stdout
    )
    assert f"times   {pydtk_tree / 'record_016/data/camera_01_timestamps.csv'}" in result.stdout
    result = run.invoke(main, [*db, "show", "016_00000000030000000240", "--json"])
    assert len(json.loads(result.stdout)["files"]) == 2

    result = run.invoke(main, [*db, "stats", "--json"])
    stats = json.loads(result.stdout)
    assert (stats["files"], stats["records"], stats["base_dir"]) == (3, 2, str(pydtk_tree))
    result = run.invoke(main, [*db, "stats"])
    assert "videos_with_timestamps  1" in result.stdout


def test_errors_are_one_readable_message(run: CliRunner, tmp_path: Path) -> None:
    db = ["catalog", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    result = run.invoke(main, [*db, "query", "--where", "foo = 1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown field 'foo' (allowed: record_id")
    assert result.stderr.endswith("\n  foo = 1\n  ^^^\n")
    assert not (tmp_path / "c.db").exists()  # a bad filter never opens the database

    assert run.invoke(main, [*db, "init"]).exit_code == 0
    result = run.invoke(main, [*db, "show", "nope"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no record 'nope' in the catalog "
        "(search with: framefleet catalog query --record-id '*nope*')\n"
    )
    result = run.invoke(main, ["catalog", "--db", "sqlite:////no/such/dir/c.db", "stats"])
    assert result.stderr == (
        "error: cannot open catalog 'sqlite:////no/such/dir/c.db': "
        "directory '/no/such/dir' does not exist\n"
    )


def test_add_reports_bad_files_and_exits_1(run: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.bin").write_bytes(b"")
    (tmp_path / "data" / "a.bin.json").write_text('{"record_id": "r", "contents": "c"}')
    (tmp_path / "data" / "b.bin.json").write_text("{oops")
    db = ["catalog", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    result = run.invoke(main, [*db, "add", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert result.stdout == "1 added, 0 updated, 0 unchanged, 1 failed\n"
    assert result.stderr.startswith(f"failed: {tmp_path / 'data' / 'b.bin.json'}: not valid JSON")


def test_database_url_precedence(
    run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("flag", "env", "config")}
    config = tmp_path / "settings.toml"
    config.write_text(f'[framefleet]\ndatabase_url = "{urls["config"]}"\n')

    run.invoke(main, ["--config", str(config), "catalog", "init"])
    assert (tmp_path / "config.db").exists()
    monkeypatch.setenv("FRAMEFLEET_DATABASE_URL", urls["env"])
    run.invoke(main, ["--config", str(config), "catalog", "init"])
    assert (tmp_path / "env.db").exists()
    run.invoke(main, ["--config", str(config), "catalog", "--db", urls["flag"], "init"])
    assert (tmp_path / "flag.db").exists()


def test_table_output(
    pydtk_tree: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as cat:
        ingest_paths(cat, [pydtk_tree / "record_016"])
        _print_table(list(cat.query(SEED_QUERY)), total=1)
    out = capsys.readouterr().out
    assert "016_00000000030000000240" in out and "2017-03-17T05:28:11.000Z" in out
    assert out.rstrip().endswith("1 of 1 match(es)")


def test_reading_commands_never_create_a_catalog(
    run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default URL is sqlite:///framefleet.db, here
    for command in (["query"], ["show", "r"], ["stats"]):
        result = run.invoke(main, ["catalog", *command])
        assert result.exit_code == 1
        assert result.stderr == (
            "error: catalog 'sqlite:///framefleet.db' does not exist: create it with "
            "'framefleet catalog init' or 'framefleet catalog add' (or pass --db with the URL "
            "of another)\n"
        )
    assert list(tmp_path.iterdir()) == []
    assert run.invoke(main, ["catalog", "init"]).exit_code == 0
    result = run.invoke(main, ["catalog", "stats", "--json"])
    assert (result.exit_code, json.loads(result.stdout)["files"]) == (0, 0)


def test_db_is_accepted_after_the_subcommand(
    run: CliRunner, pydtk_tree: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'after.db'}"
    assert run.invoke(main, ["catalog", "init", "--db", url]).exit_code == 0
    result = run.invoke(main, ["catalog", "add", "--db", url, str(pydtk_tree)])
    assert (result.exit_code, result.stdout) == (0, "3 added, 0 updated, 0 unchanged, 0 failed\n")
    result = run.invoke(main, ["catalog", "query", "--db", url, "--where", SEED_QUERY])
    assert len(result.stdout.splitlines()) == 1
    result = run.invoke(main, ["catalog", "show", "016_00000000030000000240", "--db", url])
    assert result.exit_code == 0 and "record    016_00000000030000000240" in result.stdout
    result = run.invoke(main, ["catalog", "stats", "--db", url, "--json"])
    assert json.loads(result.stdout)["files"] == 3
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = run.invoke(main, ["catalog", "--db", url, "stats", "--db", other])
    assert result.exit_code == 2
    assert result.stderr == f"error: --db given twice with different URLs ({url!r}, {other!r})\n"


def test_add_names_a_path_that_does_not_exist(run: CliRunner, tmp_path: Path) -> None:
    db = ["catalog", "add", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    result = run.invoke(main, [*db, "/nonexistent"])
    assert result.exit_code == 1
    assert result.stderr == "failed: /nonexistent: no such file or directory\n"
    assert result.stdout == "0 added, 0 updated, 0 unchanged, 1 failed\n"
