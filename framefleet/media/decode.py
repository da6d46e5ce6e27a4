"""Decode only the frames a segment needs.

From the packet index we know, before decoding anything, which packets each wanted frame depends
on: the packets from its GOP's keyframe up to it, in decode order (a leading picture of an open
GOP also needs the GOP before). Their union is the minimal set. We seek once, to the first
keyframe of that set, then walk the packets in decode order: packets in the set go to the
decoder, the others are dropped before decoding. Before a gap the decoder is drained (frames still
inside it: B-frame reordering, frame threads) and reset, so frames near a GOP's end are not lost.
"""

from __future__ import annotations

import atexit
import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from framefleet.errors import InvalidVideoError, MediaError
from framefleet.media.probe import VideoIndex, open_video


@dataclass
class DecodeStats:
    """Counters of one decode pass."""

    packets_demuxed: int = 0
    """Packets read from the file after the seek (decoded or not)."""
    frames_decoded: int = 0
    """Frames the decoder produced: the real cost."""
    frames_minimal: int = 0
    """Size of the minimal packet set for the wanted frames."""
    decode_seconds: float = 0.0


def needed_packets(index: VideoIndex, wanted: Iterable[int]) -> npt.NDArray[np.bool_]:
    """Mask over decode indices: the packets that must be decoded to output ``wanted`` frames.

    For each wanted frame, its GOP's packets up to it, less the disposable ones (referenced by
    no other frame) that are not wanted themselves.
    """
    keyframes = np.flatnonzero(index.is_keyframe)
    need = np.zeros(index.frame_count, dtype=np.bool_)
    wanted = list(wanted)
    for i in wanted:
        k = int(np.searchsorted(keyframes, i, side="right")) - 1
        if k < 0:
            raise InvalidVideoError(
                f"{index.path!r}: frame {i} comes before the first keyframe and cannot be decoded"
            )
        if index.pts[i] < index.pts[keyframes[k]] and k > 0:
            k -= 1  # a leading picture of an open GOP references the previous GOP
        need[keyframes[k] : i + 1] = True
    is_wanted = np.zeros(index.frame_count, dtype=np.bool_)
    is_wanted[wanted] = True
    return need & ~(index.is_disposable & ~is_wanted)


def decode_frames(
    index: VideoIndex,
    wanted: Iterable[int],
    *,
    threads: int = 0,
    fast: bool = False,
    stats: DecodeStats | None = None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield ``(decode_index, frame)`` for each wanted frame, in display order.

    Args:
        index: the video's packet index (from `probe.index_video`).
        wanted: decode indices of the frames to output.
        threads: decoder threads; 0 lets FFmpeg choose (frame + slice threads), 1: one thread.
        fast: skip the in-loop deblocking filter (``skip_loop_filter``): faster, not exact.
        stats: counters to fill in, if given.

    Raises:
        InvalidVideoError: the decoder rejects the data, or a wanted frame never came out.
    """
    stats = stats if stats is not None else DecodeStats()
    wanted_set = {int(i) for i in wanted}
    if not wanted_set:
        return
    need = needed_packets(index, wanted_set)
    stats.frames_minimal = int(need.sum())
    first = int(np.argmax(need))
    last = max(wanted_set)
    by_dts = _Lookup(index.dts, np.arange(index.frame_count))
    by_pts = _Lookup(index.pts, np.arange(index.frame_count))
    emitted: set[int] = set()

    with _reusable_container(index, threads, fast) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context

        def collect(frames: Iterable[av.VideoFrame]) -> Iterator[tuple[int, av.VideoFrame]]:
            for frame in frames:
                stats.frames_decoded += 1
                i = by_pts.get(frame.pts) if frame.pts is not None else None
                if i is not None and i in wanted_set and i not in emitted:
                    emitted.add(i)
                    yield i, frame

        def decode(packet: av.Packet[Any] | None, position: int) -> list[av.VideoFrame]:
            t0 = time.perf_counter()
            try:
                return list(ctx.decode(packet))
            except av.error.FFmpegError as e:
                at = float(index.pts_seconds(int(index.pts[position])))
                raise InvalidVideoError(
                    f"{index.path!r}: the decoder rejected the data at {at:.3f} s: {e}"
                ) from e
            finally:
                stats.decode_seconds += time.perf_counter() - t0

        packets = _packets_from(container, stream, index, first, by_dts)
        in_run = False
        position = first
        for i, packet in packets:
            stats.packets_demuxed += 1
            position = i
            if need[i]:
                yield from collect(decode(packet, i))
                in_run = True
            elif in_run and not index.is_disposable[i]:
                # A gap in the reference chain (the rest of a GOP): drain, then reset. A skipped
                # disposable frame is no gap: nothing after it needs it.
                yield from collect(decode(None, i))
                ctx.flush_buffers()
                in_run = False
            if i >= last and wanted_set <= emitted:
                break
        if in_run or not wanted_set <= emitted:
            yield from collect(decode(None, position))

    missing = sorted(wanted_set - emitted)
    if missing:
        at = ", ".join(f"{float(index.pts_seconds(int(index.pts[i]))):.3f}" for i in missing[:5])
        raise InvalidVideoError(
            f"{index.path!r}: {len(missing)} wanted frame(s) never came out of the decoder "
            f"(at {at} s); the stream is damaged there"
        )


class _Lookup:
    """Decode index by timestamp: a binary search over a sorted array. Dicts of every packet's
    pts and dts cost ~3 MB and 10 ms per segment on a 10 min recording; this costs nothing."""

    def __init__(self, keys: npt.NDArray[np.int64], values: npt.NDArray[np.int64]) -> None:
        order = np.argsort(keys, kind="stable")  # already sorted in valid streams: cheap
        self._keys, self._values = keys[order], values[order]

    def get(self, key: int | None) -> int | None:
        if key is None:
            return None
        at = int(np.searchsorted(self._keys, key))
        if at < len(self._keys) and int(self._keys[at]) == key:
            return int(self._values[at])
        return None


_OPEN: OrderedDict[tuple[str, int, bool], tuple[VideoIndex, av.container.InputContainer]] = (
    OrderedDict()
)
_OPEN_MAX = 2


@contextlib.contextmanager
def _reusable_container(
    index: VideoIndex, threads: int, fast: bool
) -> Iterator[av.container.InputContainer]:
    """An open container for ``index``, kept open between the segments of one file.

    Opening costs ~60 ms (FFmpeg probes the stream), a tenth of a 10 s segment's work at 2 fps,
    and a worker usually gets several segments of one file in a row. A container comes back only
    after a clean pass, with its decoder reset; one left mid-way by an error or an abandoned
    iteration is closed. At most ``_OPEN_MAX`` stay open per process; the rest are closed.
    """
    key = (index.path, threads, fast)
    entry = _OPEN.pop(key, None)
    if entry is not None and entry[0] is not index:  # the file changed: a new index
        entry[1].close()
        entry = None
    if entry is None:
        container = open_video(index.path)
        ctx = container.streams.video[0].codec_context
        ctx.thread_type = "NONE" if threads == 1 else "AUTO"
        ctx.thread_count = threads
        if fast:
            ctx.options = {"skip_loop_filter": "all"}
    else:
        container = entry[1]
    clean = False
    try:
        yield container
        container.streams.video[0].codec_context.flush_buffers()
        clean = True
    finally:
        if clean:
            _OPEN[key] = (index, container)
            while len(_OPEN) > _OPEN_MAX:
                _OPEN.popitem(last=False)[1][1].close()
        else:
            container.close()


@atexit.register
def _close_all() -> None:
    while _OPEN:
        _OPEN.popitem()[1][1].close()


def _packets_from(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: VideoIndex,
    first: int,
    by_dts: _Lookup,
) -> Iterator[tuple[int, av.Packet[Any]]]:
    """Packets with their decode index, starting exactly at decode index ``first``.

    One seek to that keyframe. Demuxers differ in whether they seek by pts (mp4, mkv) or dts;
    with B-frames a keyframe's dts is below its pts, and a dts seek in an mp4 lands a whole GOP
    early (all of it read for nothing), so its pts is tried first, then its dts. Should the
    demuxer land after it, we seek back to the file's start and skip forward at packet level.
    """
    targets = dict.fromkeys((int(index.pts[first]), int(index.dts[first]), int(index.dts.min())))
    for target in targets:
        container.seek(target, stream=stream, backward=True, any_frame=False)
        started = False
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.dts is None:
                    continue
                i = by_dts.get(int(packet.dts))
                if i is None:
                    continue
                if not started:
                    if i > first:
                        break  # landed after the keyframe we need: try the next target
                    if i < first:
                        continue
                    started = True
                yield i, packet
        except av.error.FFmpegError as e:
            raise MediaError(f"{index.path!r}: reading stopped: {e}") from e
        if started:
            return
    raise InvalidVideoError(f"{index.path!r}: cannot position the demuxer on decode index {first}")
