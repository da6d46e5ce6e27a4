"""Shared fixtures: generated clips here; real servers and recordings from `tests.servers`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clips import ClipSpec, make_clip
from tests.servers import (  # noqa: F401 - fixtures, shared by the packages of tests
    redis_server,
    rig,
    settings,
    slow_recordings,
    small_recordings,
    store,
    workers,
)

ClipFactory = Callable[..., Path]


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Local jobs are remembered under the test's own state directory, never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def clip_factory(tmp_path: Path) -> ClipFactory:
    """Make a clip in the test's temp dir: ``clip_factory("a.mp4", fps=25, gop=12, bframes=2)``."""

    def make(name: str = "clip.mp4", **fields: object) -> Path:
        return make_clip(tmp_path / name, ClipSpec(**fields))  # type: ignore[arg-type]

    return make
