"""Celery workers that run segments: the only package that imports Celery.

``celery -A framefleet.worker worker`` finds ``app`` here. It is built on first access from
``load_settings()`` (``FRAMEFLEET_*`` environment variables, ``FRAMEFLEET_CONFIG``): the one place
where configuration is read as a side effect of an import, because that is how Celery's CLI
finds an app. ``framefleet worker`` builds the app from the CLI's settings instead.

The factory lives in `framefleet.worker.factory`, not in a submodule called ``app``: importing
such a submodule would shadow this package's ``app`` attribute with the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from framefleet.config import Settings

__all__ = ["app", "create_app", "run_worker"]

_app: Any = None


def __getattr__(name: str) -> Any:
    if name == "app":
        global _app
        if _app is None:
            from framefleet.config import load_settings

            _app = create_app(load_settings())
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_app(settings: Settings) -> Any:
    """A configured Celery app (see `framefleet.worker.factory`)."""
    from framefleet.worker.factory import create_app as _create

    return _create(settings)


def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    hostname: str | None = None,
    queues: Sequence[str] = (),
    loglevel: str = "INFO",
    extra_args: Sequence[str] = (),
) -> None:
    """Run a Celery worker in this process until it is stopped (what ``framefleet worker`` does)."""
    global _app
    _app = create_app(settings)
    argv = ["worker", f"--loglevel={loglevel}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    if queues:
        argv.append(f"--queues={','.join(queues)}")
    argv.extend(extra_args)
    _app.worker_main(argv=argv)
