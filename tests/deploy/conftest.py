"""The container test's stack, once per session (it builds images and starts ~8 containers)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.deploy.engine import DockerUnavailable, ensure_engine
from tests.deploy.stack import Stack, stack_compose, start_stack


def _missing(reason: str) -> NoReturn:
    """Skip for lack of Docker, except in CI, where the container tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the container tests must run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The compose stack, healthy; afterwards ``down -v``, and dockerd stopped if started here."""
    root = tmp_path_factory.mktemp("containers")
    try:
        engine = ensure_engine(root / "engine")
    except DockerUnavailable as e:
        _missing(str(e))
    compose = stack_compose(root)
    try:
        try:
            started = start_stack(root, engine, compose)
        except DockerUnavailable as e:
            _missing(str(e))
        yield started
        started.close_store()
        print("measured:", json.dumps(started.measured, indent=1))
    finally:
        try:
            compose.down()
        finally:
            engine.stop()
