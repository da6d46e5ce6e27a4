"""Alembic environment: runs migrations on the connection framefleet hands over.

`framefleet.catalog.database.migrate` opens a write transaction (and takes a lock on PostgreSQL)
and passes its connection in ``config.attributes["connection"]``. Run from the ``alembic`` command
line instead, the URL comes from ``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from framefleet.catalog.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=sqlite:///framefleet.db ...")
    with create_engine(url).begin() as own:
        _run(own)


_main()
