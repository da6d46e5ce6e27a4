"""Opening the catalog database: engines tuned per backend, and versioned schema migrations.

SQLite is opened in WAL mode with a busy timeout, so a producer reading and a watcher writing can
share one file. Writers begin with ``BEGIN IMMEDIATE`` (see `write_connection`): a deferred
transaction that reads and then writes fails at once with "database is locked" when another writer
committed in between, whatever the busy timeout; an immediate one waits its turn instead.

The schema is versioned with Alembic. The scripts ship inside the package
(``framefleet/catalog/migrations``) and are applied by `migrate`: explicitly by
``framefleet catalog init``, and automatically when a `Catalog` is opened on an older schema.
Concurrent first uses are serialised (the SQLite write lock, a PostgreSQL advisory lock), so two
processes starting at once do not both create the tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from framefleet.config import redact_url
from framefleet.errors import CatalogError

_HERE = Path(__file__).resolve().parent
_WRITE = "framefleet_write"
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for another writer before giving up."""
_PG_MIGRATION_LOCK = 0x66666C74  # an arbitrary constant: "fflt"


def create_catalog_engine(url: str, *, echo: bool = False, create: bool = True) -> Engine:
    """An engine for ``url``, configured for concurrent use of the catalog.

    Args:
        url: the database URL.
        echo: log every statement.
        create: a SQLite file that does not exist yet may be created; with False it is an error
            (and nothing is created).

    Raises:
        CatalogError: the URL is malformed, names a driver that is not installed, or (with
            ``create=False``) a SQLite file that does not exist.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise CatalogError(  # SQLAlchemy's message would repeat the URL, password and all
            f"bad database URL {redact_url(url)!r}: not a URL SQLAlchemy can parse "
            "(expected e.g. sqlite:///framefleet.db or postgresql+psycopg://user@host/db)"
        ) from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).expanduser().parent
            if not parent.is_dir():
                raise CatalogError(
                    f"cannot open catalog {url!r}: directory {str(parent)!r} does not exist"
                )
            if not create and not Path(database).expanduser().exists():
                raise CatalogError(
                    f"catalog {url!r} does not exist: create it with 'framefleet catalog init' "
                    "or 'framefleet catalog add' (or pass --db with the URL of another)"
                )
        engine = _create(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        _tune_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the one installed
    return _create(parsed, echo=echo, pool_pre_ping=True)


def _create(url: str | URL, **kwargs: Any) -> Engine:
    try:
        return create_engine(url, **kwargs)
    except (ArgumentError, ImportError, SQLAlchemyError) as e:
        shown = make_url(url).render_as_string(hide_password=True)
        raise CatalogError(f"cannot open catalog {shown!r}: {e}") from e


def _tune_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, enforced foreign keys, and real BEGIN statements."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module (it would BEGIN lazily, too late for
        # a writer); SQLAlchemy's "begin" event below emits the BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on success, rolled back on error."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{_WRITE: True})
        with connection.begin():
            yield connection


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this version of framefleet knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head"
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database (None when it was never initialised)."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as e:
        raise CatalogError(f"cannot open catalog {engine.url!r}: {_reason(e)}") from e


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision (a no-op when it is there); return the revision.

    Raises:
        CatalogError: the database cannot be reached, or its schema is newer than this framefleet.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    known = {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise CatalogError(
            f"catalog {engine.url!r} has schema revision {current!r}, newer than this framefleet "
            f"knows (newest: {head!r}); upgrade framefleet"
        )
    try:
        with _migration_connection(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            command.upgrade(_alembic_config(connection), "head")
    except SQLAlchemyError as e:
        raise CatalogError(f"cannot migrate catalog {engine.url!r}: {_reason(e)}") from e
    return head


@contextlib.contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A write transaction for schema changes.

    On SQLite, foreign keys are not enforced while it runs and are checked before it commits:
    SQLite's own procedure for changing a table (which SQLite can only do by copying it). With
    them enforced, dropping the old copy of a table that others refer to would cascade into
    them (``DROP TABLE files`` would empty ``contents``).
    """
    if engine.dialect.name != "sqlite":
        with write_connection(engine) as connection:
            yield connection
        return
    with engine.connect() as connection:
        # The driver connection is in autocommit mode and no transaction has begun yet: a
        # PRAGMA that is a no-op inside a transaction takes effect here.
        driver = connection.connection.dbapi_connection
        assert driver is not None
        driver.execute("PRAGMA foreign_keys=OFF")
        try:
            connection = connection.execution_options(**{_WRITE: True})
            with connection.begin():
                yield connection
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise CatalogError(
                        f"migrating catalog {engine.url!r} would leave {len(broken)} rows "
                        f"pointing at missing rows (first: {tuple(broken[0])}); nothing was changed"
                    )
        finally:
            driver.execute("PRAGMA foreign_keys=ON")


def _reason(error: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background link."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else repr(original)
