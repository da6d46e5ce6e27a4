"""Catalog fixtures: a real SQLite file and a real PostgreSQL database, and the pydtk sample tree.

PostgreSQL: the server named by ``FRAMEFLEET_TEST_POSTGRES_URL`` (default: the local one on
127.0.0.1:5432 as user postgres) gets a fresh database with a random name for the test session,
dropped at the end; each test starts from an empty schema. When the server cannot be reached the
PostgreSQL cases are skipped with the reason, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from framefleet.catalog import Catalog
from tests.clips import ClipSpec, make_clip
from tests.samples import MISSING, PYDTK_SAMPLE

SAMPLE = PYDTK_SAMPLE
ADMIN_URL = os.environ.get(
    "FRAMEFLEET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (dropped at the end)."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"framefleet_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {make_url(ADMIN_URL)!r}: {e.orig}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: PostgreSQL is required)")
        pytest.skip(reason)
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty catalog database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def catalog(db_url: str) -> Iterator[Catalog]:
    """A new, empty catalog on each backend."""
    with Catalog(db_url) as cat:
        yield cat


@pytest.fixture(scope="session")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in for the recording's camera video: 2400 frames, 30 fps, GOP 30, tiny."""
    path = tmp_path_factory.mktemp("clip") / "camera_01.mp4"
    return make_clip(path, ClipSpec(width=64, height=48, fps=30, frames=2400, gop=30))


@pytest.fixture
def pydtk_tree(tmp_path: Path, sample_clip: Path) -> Path:
    """A writable copy of ``pydtk-sample`` with the generated video beside the real CSV."""
    if not SAMPLE.is_dir():
        pytest.skip(MISSING)
    root = tmp_path / "pydtk-sample"
    shutil.copytree(SAMPLE, root)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.copyfile(sample_clip, root / "record_016" / "data" / "camera_01.mp4")
    return root
