"""The README's two commands, run as written, in a clean clone with a fresh venv.

The second command runs the whole suite; inside this test it runs a small selection instead
(``PYTEST_ADDOPTS``), which proves the same thing: a clean clone installs its test tools and
pytest finds and passes tests there. The full suite is what CI itself runs with that command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The command lines of the README's first ``bash`` block (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_the_readme_starts_with_two_commands() -> None:
    demo, tests = readme_commands()
    assert demo.endswith("framefleet demo")
    assert tests.endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci, ".ci/run must run the README's test command verbatim"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_commands_work_in_a_clean_clone(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEFLEET_", "PYTEST_"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(sys.prefix) not in Path(p).parents
    )
    env.pop("VIRTUAL_ENV", None)
    demo, tests = readme_commands()

    for run in ("first", "second"):  # each command works on a fresh machine, and again
        ran = subprocess.run(
            ["bash", "-c", demo], cwd=clone, env=env, capture_output=True, text=True, timeout=600
        )
        assert ran.returncode == 0, run + ran.stdout[-3000:] + ran.stderr[-3000:]
        images = sorted((clone / "framefleet-demo" / "images").rglob("*.jpg"))
        assert len(images) == 40, ran.stdout  # two cameras (an mp4, a bag): 10 s at 2 fps
        assert "manifest:" in ran.stdout
    assert re.search(r"nothing to do, all \d+ segment\(s\) were already complete", ran.stdout)

    env["PYTEST_ADDOPTS"] = "tests/media/test_sampling.py -q -p no:cacheprovider"
    for run in ("first", "second"):
        ran = subprocess.run(
            ["bash", "-c", tests], cwd=clone, env=env, capture_output=True, text=True, timeout=600
        )
        assert ran.returncode == 0, run + ran.stdout[-3000:] + ran.stderr[-3000:]
        assert re.search(r"\d+ passed", ran.stdout), ran.stdout[-2000:]
