"""Finding what to ingest: pydtk sidecars, and videos that have none, under files and folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from framefleet.catalog.values import show_path
from framefleet.pydtk import SIDECAR_SUFFIX, is_video_name, sidecar_for


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The sidecars and sidecar-less videos under ``paths`` (sorted), and paths that are neither.

    Directories are walked recursively, skipping hidden ones. A file named directly is taken as a
    sidecar (``*.json``), as its own sidecar's data file (``x.mp4`` with ``x.mp4.json``), or as
    a video. Each bad path comes with a message that names it.
    """
    found, bad = discover_roots(paths)
    return [candidate for candidate, _ in found], bad


def discover_roots(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """`discover`, each candidate with the root it was found under (a file's: its directory)."""
    found: dict[Path, Path] = {}
    bad: list[tuple[Path, str]] = []

    def unreadable(error: OSError) -> None:
        where = show_path(error.filename or "?")
        bad.append((Path(error.filename or "?"), f"{where}: cannot read: {error.strerror}"))

    for raw in paths:
        try:
            root = Path(raw).expanduser().resolve()
        except (OSError, ValueError, RuntimeError) as e:  # a NUL, a symlink loop
            bad.append((Path(os.fspath(raw).replace("\x00", "")), f"{os.fspath(raw)!r}: {e}"))
            continue
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                names = set(filenames)
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    if name.lower().endswith(SIDECAR_SUFFIX) or (
                        is_video_name(name) and name + SIDECAR_SUFFIX not in names
                    ):
                        found.setdefault(Path(dirpath, name), root)
        elif root.is_file():
            sidecar = sidecar_for(root)
            if root.suffix.lower() == SIDECAR_SUFFIX or is_video_name(root.name):
                found.setdefault(sidecar if sidecar.is_file() else root, root.parent)
            elif sidecar.is_file():
                found.setdefault(sidecar, root.parent)
            else:
                bad.append(
                    (
                        root,
                        f"{show_path(root)}: neither a pydtk sidecar (*.json) nor a video, "
                        "and no sidecar",
                    )
                )
        else:
            bad.append((root, f"{show_path(root)}: no such file or directory"))
    return list(found.items()), bad
