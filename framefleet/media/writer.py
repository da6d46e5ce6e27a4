"""Output overlapped with decoding: one writer thread behind a bounded queue.

The caller decodes frame N+1 while the writer resizes, encodes and writes frame N. Both sides
spend their time in C code that releases the GIL (FFmpeg's decoder and swscale, libjpeg-turbo
inside Pillow, the file system), so on a machine with a spare core the output costs no wall
time; on a busy one it costs what it did. Memory stays bounded: at most ``depth`` frames wait in
the queue, one is being written.

Results come back in submission order to the *caller's* thread (`submit` and `close` return
them), so callbacks such as progress bars, lease checks and time limits run where they always
ran. An error in the writer stops it; the caller gets that very exception at its next `submit`
or at `close`.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_DEPTH = 2
"""Frames waiting for the writer at most (a full-size 1080p frame is 3 MB)."""
_END = object()


class OverlappedWriter(Generic[T, R]):
    """Run ``work(item)`` for each submitted item, in order, in one background thread.

    Use as a context manager, or call `close` (or `abort`) exactly once: the thread is joined
    before either returns.
    """

    def __init__(self, work: Callable[[T], R], *, depth: int = DEFAULT_DEPTH) -> None:
        self._work = work
        self._todo: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._done: deque[R] = deque()
        self._error: BaseException | None = None
        self._dropping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framefleet-writer", daemon=True)
        self._thread.start()

    def submit(self, item: T) -> list[R]:
        """Queue ``item`` (waits while the queue is full); the results finished so far.

        Raises:
            BaseException: the error that stopped the writer, if one did.
        """
        self._raise_error()
        self._todo.put(item)  # never waits forever: the thread takes items until the end
        return self._take()

    def close(self) -> list[R]:
        """Wait until every item is done; the results not returned yet.

        Raises:
            BaseException: the error that stopped the writer, if one did.
        """
        self._stop()
        self._raise_error()
        return self._take()

    def abort(self) -> None:
        """Drop the items still waiting, let the current one finish, and stop."""
        self._dropping.set()
        self._stop()

    def __enter__(self) -> OverlappedWriter[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.abort()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._todo.put(_END)
            self._thread.join()

    def _take(self) -> list[R]:
        out: list[R] = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is _END:
                return
            if self._dropping.is_set() or self._error is not None:
                continue  # stopped: take items off the queue so the caller never blocks
            try:
                self._done.append(self._work(item))  # type: ignore[arg-type]
            except BaseException as e:  # handed to the caller's thread, whatever it is
                self._error = e
