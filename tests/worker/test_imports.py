"""Workers never touch the catalog: importing the worker loads no SQLAlchemy, no Alembic."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "sqlalchemy",
    "alembic",
    "framefleet.catalog",
    "framefleet.producer",
    "framefleet.watch",
)


def test_importing_the_worker_task_module_loads_no_catalog() -> None:
    code = (
        "import sys, framefleet.worker.tasks, framefleet.worker.factory\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]", loaded


def test_the_shared_contract_imports_neither_celery_nor_sqlalchemy() -> None:
    code = (
        "import sys, framefleet.jobs, framefleet.jobs.leases, framefleet.jobs.broker\n"
        "print(sorted(m for m in sys.modules if m.startswith(('celery', 'sqlalchemy'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]", loaded
