"""When is a recording complete? When nothing in its folder has changed for a while.

Polling, not inotify: it works on Docker bind mounts and NFS, where inotify misses writes. A
folder is *settled* once every file in it kept the same size and mtime for ``settle_seconds`` of
the watcher's own clock. Deciding per folder (not per file) means a video is not picked up while
its sidecar JSON or its timestamps CSV is still being copied beside it. Files whose names mark
them as in progress (``.partial``, ``.tmp``, ``.part``, dot-files) keep a folder unsettled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

_IN_PROGRESS = (".partial", ".tmp", ".part", ".crdownload", ".filepart")


def _in_progress(name: str) -> bool:
    return name.startswith(".") or any(marker in name for marker in _IN_PROGRESS)


@dataclass
class _Folder:
    signature: tuple[tuple[str, int, int], ...]
    since: float
    done_signature: tuple[tuple[str, int, int], ...] | None = None


@dataclass
class SettleTracker:
    """Remembers folder signatures between polls and reports folders that settled (again).

    ``waiting`` holds, after each poll, the folders changed but not settled yet, with the
    seconds each still needs (or None while a file is marked in progress).
    """

    settle_seconds: float
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    waiting: dict[Path, float | None] = field(default_factory=dict)
    _folders: dict[Path, _Folder] = field(default_factory=dict)

    def poll(self, roots: Iterable[Path]) -> list[tuple[Path, list[Path]]]:
        """Scan ``roots``; return ``(folder, files)`` for folders settled since the last report.

        A folder is reported once per settled state: again only after it changes and settles.
        """
        now = self.clock()
        seen: set[Path] = set()
        ready: list[tuple[Path, list[Path]]] = []
        self.waiting = {}
        for folder, entries in _scan(roots):
            seen.add(folder)
            signature = tuple(sorted(entries))
            state = self._folders.get(folder)
            if state is None:
                # First sight (e.g. at start-up): files untouched for a while are settled already.
                newest = max(mtime for _, _, mtime in signature) / 1e9
                age = max(0.0, self.wall() - newest)
                state = self._folders[folder] = _Folder(signature, now - age)
            elif state.signature != signature:
                state.signature, state.since = signature, now
            busy = any(_in_progress(name) for name, _, _ in signature)
            quiet = now - state.since >= self.settle_seconds
            if state.done_signature == signature:
                continue
            if not busy and quiet:
                state.done_signature = signature
                ready.append((folder, [folder / name for name, _, _ in signature]))
            else:
                self.waiting[folder] = None if busy else self.settle_seconds - (now - state.since)
        for gone in set(self._folders) - seen:
            del self._folders[gone]
        return ready

    def forget(self, folder: Path) -> None:
        """Treat ``folder`` as new: it is reported again once it settles (after a failure)."""
        self._folders.pop(folder, None)


def _scan(roots: Iterable[Path]) -> Iterable[tuple[Path, list[tuple[str, int, int]]]]:
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            entries: list[tuple[str, int, int]] = []
            for name in filenames:
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue  # removed between listing and stat, or unreadable
                entries.append((name, st.st_size, st.st_mtime_ns))
            if entries:
                yield Path(dirpath), entries
