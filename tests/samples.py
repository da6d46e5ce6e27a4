"""Where the real pydtk sample is: beside the repository (``../shared/pydtk-sample``, as the
project's machines lay it out), or wherever ``FRAMEFLEET_PYDTK_SAMPLE`` says. Never a fixed
machine path: tests that need it skip with the reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYDTK_SAMPLE = Path(
    os.environ.get("FRAMEFLEET_PYDTK_SAMPLE") or ROOT.parent / "shared" / "pydtk-sample"
)
MISSING = f"the pydtk sample is not at {PYDTK_SAMPLE} (set FRAMEFLEET_PYDTK_SAMPLE to its folder)"
