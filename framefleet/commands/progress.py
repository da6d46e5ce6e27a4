"""Progress for a person: a live bar on a terminal, plain periodic lines otherwise.

One bar implementation (`_bar`, rich) serves both: `JobProgress` for jobs (queue or local, the
same look) and `progress_bar` for counting things (images of ``extract-file``, files of
``catalog add``). They write to stderr; summaries go to stdout.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TextIO


def format_duration(seconds: float | None) -> str:
    """``"4.2 s"``, ``"42 s"``, ``"3 min 5 s"``, ``"1 h 02 min"``; ``"?"`` when unknown."""
    if seconds is None:
        return "?"
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class JobProgress:
    """Segments done/failed/total, images, rate and ETA, as a bar or as lines.

    Use as a context manager; call `update` with the current counters as often as you like.
    """

    def __init__(
        self,
        *,
        job_id: str,
        total: int,
        live: bool,
        stream: TextIO | None = None,
        line_interval_seconds: float = 5.0,
    ) -> None:
        self.job_id = job_id
        self.total = total
        self.live = live
        self.stream = stream or sys.stderr
        self.line_interval_seconds = line_interval_seconds
        self._t0 = time.monotonic()
        self._base: tuple[float, int] | None = None
        self._last_line = 0.0
        self._last_text = ""
        self._finished = False
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> JobProgress:
        if self.live:
            self._progress = _bar(
                self.stream,
                "{task.completed}/{task.total} segments",
                "[red]{task.fields[failed]} failed",
                "{task.fields[images]} images",
                "{task.fields[rate]}",
                "elapsed",
                "{task.fields[eta]}",
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                self.job_id, total=self.total, failed=0, images=0, rate="", eta="ETA ?"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)
            self._progress = None

    def update(
        self,
        *,
        done: int,
        failed: int,
        images: int,
        final: bool = False,
        waiting: str | None = None,
    ) -> None:
        """Show the counters; in line mode, at most one line per interval (and a final one).

        The rate counts only segments finished while this display watched (a follower that
        attaches to a running job does not credit itself with earlier work); while the job
        waits for something (``waiting``), that is shown instead of an ETA.
        """
        now = time.monotonic()
        finished = done + failed
        if self._finished:
            return  # the final line is out; later snapshots say nothing new
        self._finished = final
        if self._base is None:
            self._base = (now, finished)
        since, base = self._base
        rate = (finished - base) / (now - since) if now > since and finished > base else 0.0
        remaining = max(0, self.total - finished)
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else None)
        rate_text = f"{rate:.1f} seg/s" if rate else ""
        eta_text = waiting if waiting and remaining else f"ETA {format_duration(eta)}"
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=finished,
                failed=failed,
                images=images,
                rate=rate_text,
                eta=eta_text,
            )
            return
        text = (
            f"job {self.job_id}: {finished}/{self.total} segments ({failed} failed), "
            f"{images} images, {rate_text or '0 seg/s'}, {eta_text}"
        )
        due = now - self._last_line >= self.line_interval_seconds
        if text != self._last_text and (due or final):
            print(text, file=self.stream, flush=True)
            self._last_line, self._last_text = now, text

    def note(self, text: str) -> None:
        """A message that must not be overwritten by the bar (e.g. "Redis unreachable")."""
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            print(text, file=self.stream, flush=True)


@contextlib.contextmanager
def progress_bar(
    *, total: int | None, label: str, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A bar on stderr when ``enabled`` (a terminal); yields ``advance(n)``."""
    if not enabled:
        yield lambda n: None
        return
    with _bar(sys.stderr, "{task.completed}/{task.total}", "elapsed", "remaining") as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _bar(stream: TextIO, *columns: str) -> Any:
    """The one rich progress bar: a label, the bar, then ``columns`` (text templates, or
    ``"elapsed"`` / ``"remaining"`` for the clocks)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    def column(spec: str) -> ProgressColumn:
        if spec == "elapsed":
            return TimeElapsedColumn()
        if spec == "remaining":
            return TimeRemainingColumn()
        return TextColumn(spec)

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *(column(c) for c in columns),
        console=Console(file=stream),
    )
