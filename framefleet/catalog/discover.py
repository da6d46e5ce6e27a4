"""Finding what to ingest: pydtk sidecars, and videos and bags that have none, under files and
folders. A ROS2 bag is its folder (``metadata.yaml`` and storage files): found as one candidate,
never walked into, so its ``*.mcap`` storage is not taken for MCAP files of their own."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from framefleet.catalog.values import show_path
from framefleet.pydtk import (
    ROS2_METADATA_NAME,
    ROS2_STORAGE_SUFFIXES,
    SIDECAR_SUFFIX,
    is_bag_file_name,
    is_ros2_bag_dir,
    is_video_name,
    sidecar_for,
)


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The sidecars and sidecar-less videos and bags under ``paths`` (sorted), and paths that
    are none of these.

    Directories are walked recursively, skipping hidden ones and not entering ROS2 bag folders
    (each is a candidate, unless its sidecar ``<folder>.json`` is). A file named directly is taken
    as a sidecar (``*.json``), as its own sidecar's data file (``x.mp4`` with ``x.mp4.json``), or
    as a video or a bag; a ROS2 bag's storage file named directly stands for its folder. Each bad
    path comes with a message that names it.
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
        if root.is_file() and _in_ros2_bag(root):
            root = root.parent  # a ROS2 bag's storage or metadata: the bag is its folder
        if root.is_dir() and is_ros2_bag_dir(root):
            sidecar = sidecar_for(root)
            found.setdefault(sidecar if sidecar.is_file() else root, root.parent)
        elif root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
                names = set(filenames)
                bags = [d for d in dirnames if is_ros2_bag_dir(os.path.join(dirpath, d))]
                for name in sorted(bags):
                    if name.startswith(".") or name + SIDECAR_SUFFIX in names:
                        continue  # hidden, or found through its sidecar
                    found.setdefault(Path(dirpath, name), root)
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in bags)
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    if name.lower().endswith(SIDECAR_SUFFIX) or (
                        (is_video_name(name) or is_bag_file_name(name))
                        and name + SIDECAR_SUFFIX not in names
                    ):
                        found.setdefault(Path(dirpath, name), root)
        elif root.is_file():
            sidecar = sidecar_for(root)
            if (
                root.suffix.lower() == SIDECAR_SUFFIX
                or is_video_name(root.name)
                or is_bag_file_name(root.name)
            ):
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
    # Sidecars first: a sidecar describing a video in another folder claims it before the bare
    # video would (sorted() is stable: the walk's order stays within each kind).
    return sorted(found.items(), key=lambda item: not _is_sidecar(item[0])), bad


def _is_sidecar(path: Path) -> bool:
    return path.suffix.lower() == SIDECAR_SUFFIX


def _in_ros2_bag(path: Path) -> bool:
    """A ROS2 bag's ``metadata.yaml`` or storage file."""
    name = path.name.lower()
    return (name == ROS2_METADATA_NAME or name.endswith(ROS2_STORAGE_SUFFIXES)) and (
        is_ros2_bag_dir(path.parent)
    )
