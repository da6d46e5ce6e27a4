"""Alembic migrations of the catalog schema (applied by `framefleet.catalog.database.migrate`)."""
