"""What a video holds: size, rate, duration and its packet index (keyframes, decode order).

The index holds every packet's pts, dts, keyframe and disposable flags in decode order, which
makes every later decision exact for any GOP structure, with or without B-frames. For mp4/mov it
comes from the container's sample table (`framefleet.media.mp4index`: the ``moov`` box and a few
bytes per packet); otherwise, or when that table does not check out, from one demux-only pass
over the file (no decoding; a fraction of a second for a 150 MB clip from the page cache, but a
full read of the file). It is cached per process, keyed by (path, size, mtime, inode, ctime),
so the segments of one file on one worker share it, and optionally on disk
(`framefleet.media.indexcache`), so the processes of a job share it.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from framefleet.errors import InvalidVideoError, VideoNotFoundError
from framefleet.media import indexcache
from framefleet.media.mp4index import sample_table
from framefleet.media.nal import avcc_length_size, is_disposable

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class VideoIndex:
    """The packet index of a video's first video stream.

    Arrays are in decode (demux) order. Display order is ``np.argsort(pts)``; ``display_order[k]``
    is the decode index of the k-th displayed frame.
    """

    path: str
    width: int
    height: int
    codec: str
    time_base: Fraction
    average_fps: Fraction | None
    pts: IntArray
    dts: IntArray
    is_keyframe: npt.NDArray[np.bool_]
    is_disposable: npt.NDArray[np.bool_]
    """No other frame references this packet (H.264 ``nal_ref_idc == 0``; see `nal`)."""
    last_duration_pts: int
    """Duration of the last displayed frame (from its packet, else the mean frame step)."""
    expected_frames: int
    """Frame count the container header announces (0 when it does not say)."""
    truncated: bool
    """True when demuxing stopped before the header's frame count or on a read error."""
    stop_reason: str
    memo: dict[object, object] = field(default_factory=dict, repr=False)
    """Results derived from this index (frame times), kept as long as the index is cached."""

    @functools.cached_property
    def display_order(self) -> IntArray:
        return np.argsort(self.pts, kind="stable")

    @functools.cached_property
    def display_rank(self) -> IntArray:
        """``display_rank[i]``: the display index of the packet at decode index ``i``."""
        rank = np.empty_like(self.display_order)
        rank[self.display_order] = np.arange(len(self.pts))
        return rank

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    @property
    def start_pts(self) -> int:
        """PTS of the first displayed frame: the origin of stream time."""
        return int(self.pts.min())

    def pts_seconds(self, pts: int) -> Fraction:
        """Seconds from the first displayed frame to a PTS, exact."""
        return (pts - self.start_pts) * self.time_base

    @property
    def duration_seconds(self) -> Fraction:
        return self.pts_seconds(int(self.pts.max()) + self.last_duration_pts)


@dataclass(frozen=True)
class VideoInfo:
    """A summary of a video, the shape the catalog stores."""

    path: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    keyframe_count: int
    duration_seconds: float
    has_b_frames: bool
    truncated: bool


def open_video(path: str | os.PathLike[str]) -> av.container.InputContainer:
    """Open a video for reading, turning every way that can fail into a clear `MediaError`."""
    p = Path(path)
    if not p.exists():
        raise VideoNotFoundError(f"video not found: {str(p)!r}")
    if not p.is_file():
        raise VideoNotFoundError(f"not a regular file: {str(p)!r}")
    if p.stat().st_size == 0:
        raise InvalidVideoError(f"{str(p)!r} is empty (0 bytes): not a video")
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as e:
        hint = ""
        if "moov atom not found" in str(e) or isinstance(e, av.error.InvalidDataError):
            hint = " (not a video container, or an mp4 cut before its index was written)"
        reason = getattr(e, "strerror", None) or str(e)
        raise InvalidVideoError(f"cannot read {str(p)!r}{hint}: {reason}") from e
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        container.close()
        raise InvalidVideoError(f"{str(p)!r} has no video stream (streams: {kinds})")
    return container


def _file_key(path: str | os.PathLike[str]) -> indexcache.FileKey:
    """The file's key for the shared cache: resolved path, size, mtime."""
    return _keys(path)[0]


def _keys(path: str | os.PathLike[str]) -> tuple[indexcache.FileKey, _MemoryKey]:
    """The file's cache key (path, size, mtime) and, for this process's cache, that plus its
    inode and ctime: a same-size rewrite with the mtime kept (``cp -p``) is another file."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except FileNotFoundError as e:
        raise VideoNotFoundError(f"video not found: {str(path)!r}") from e
    key = (str(p), st.st_size, st.st_mtime_ns)
    return key, (*key, st.st_ino, st.st_ctime_ns)


_MemoryKey = tuple[str, int, int, int, int]
_MEMORY: OrderedDict[_MemoryKey, VideoIndex] = OrderedDict()
_MEMORY_MAX = 16
_STORED: dict[_MemoryKey, set[Path]] = {}
"""The cache directories known to hold the index of each file in `_MEMORY`."""


def index_video(path: str | os.PathLike[str], *, cache_dir: Path | None = None) -> VideoIndex:
    """The packet index of ``path``, cached per process while the file is unchanged.

    Args:
        cache_dir: a directory shared by the processes of a job (``{out}/_index``): the index
            is loaded from there when it holds one for this version of the file, and written
            there when it does not.
    """
    key, memory_key = _keys(path)
    index = _MEMORY.pop(memory_key, None)
    if index is None and cache_dir is not None:
        fields = indexcache.load(cache_dir, key)
        if fields is not None:
            index = VideoIndex(**fields)
            _STORED.setdefault(memory_key, set()).add(cache_dir)
    if index is None:
        index = _build_index(key[0])
    if (
        cache_dir is not None
        and cache_dir not in _STORED.get(memory_key, ())
        and indexcache.save(cache_dir, key, _index_fields(index))
    ):
        _STORED.setdefault(memory_key, set()).add(cache_dir)
    _MEMORY[memory_key] = index
    while len(_MEMORY) > _MEMORY_MAX:
        _STORED.pop(_MEMORY.popitem(last=False)[0], None)
    return index


def _index_fields(index: VideoIndex) -> dict[str, object]:
    return {f: getattr(index, f) for f in VideoIndex.__dataclass_fields__ if f != "memo"}


def _build_index(path: str) -> VideoIndex:
    """The index from the sample table when it checks out, else from a demux pass."""
    with open_video(path) as container:
        table = sample_table(container, path)
        if table is not None:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            expected = int(stream.frames or 0)
            time_base = Fraction(stream.time_base or Fraction(1, 90000))
            return VideoIndex(
                path=path,
                width=int(ctx.width),
                height=int(ctx.height),
                codec=ctx.name,
                time_base=time_base,
                average_fps=Fraction(stream.average_rate) if stream.average_rate else None,
                pts=table.pts,
                dts=table.dts,
                is_keyframe=table.is_keyframe,
                is_disposable=table.is_disposable,
                last_duration_pts=_last_duration(
                    table.last_duration_pts, table.pts, time_base, stream.average_rate
                ),
                expected_frames=expected,
                truncated=False,
                stop_reason="end of file",
            )
    return _scan_index(path)


def _last_duration(
    last: int, pts: npt.NDArray[np.int64], time_base: Fraction, rate: Fraction | None
) -> int:
    """The last frame's duration: its packet's, else the mean step, else one frame at ``rate``."""
    if last <= 0 and len(pts) > 1:
        last = int((pts.max() - pts.min()) // (len(pts) - 1))
    if last <= 0 and rate:
        last = max(1, round(1 / (rate * time_base)))
    return max(1, last)


def _scan_index(path: str) -> VideoIndex:
    """The index from one demux pass over every packet (reads the whole file)."""
    pts: list[int] = []
    dts: list[int] = []
    keys: list[bool] = []
    disposable: list[bool] = []
    durations: list[int] = []
    truncated = False
    stop_reason = "end of file"
    with open_video(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        expected = int(stream.frames or 0)
        h264 = ctx.name == "h264"
        length_size = avcc_length_size(ctx.extradata) if h264 else None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                if packet.is_corrupt:
                    truncated, stop_reason = True, "a corrupt or incomplete packet"
                    break
                p = packet.pts if packet.pts is not None else packet.dts
                if p is None:
                    raise InvalidVideoError(
                        f"{path!r}: packets carry no timestamps (a raw elementary stream?); "
                        "remux it into mp4 or mkv first (ffmpeg -i IN -c copy OUT.mp4)"
                    )
                pts.append(p)
                dts.append(packet.dts if packet.dts is not None else p)
                keys.append(bool(packet.is_keyframe))
                disposable.append(
                    h264
                    and not packet.is_keyframe
                    and is_disposable(memoryview(packet), length_size)
                )
                durations.append(int(packet.duration or 0))
        except av.error.FFmpegError as e:
            truncated, stop_reason = True, f"read error: {e}"
        if not truncated and expected and len(pts) < expected:
            truncated = True
            stop_reason = f"the file ends after {len(pts)} of {expected} frames"
        if not pts:
            raise InvalidVideoError(f"{path!r} has a video stream but no readable frames")
        pts_arr = np.asarray(pts, dtype=np.int64)
        time_base = Fraction(stream.time_base or Fraction(1, 90000))
        last_duration = _last_duration(
            durations[int(np.argmax(pts_arr))], pts_arr, time_base, stream.average_rate
        )
        return VideoIndex(
            path=path,
            width=int(ctx.width),
            height=int(ctx.height),
            codec=ctx.name,
            time_base=time_base,
            average_fps=Fraction(stream.average_rate) if stream.average_rate else None,
            pts=pts_arr,
            dts=np.asarray(dts, dtype=np.int64),
            is_keyframe=np.asarray(keys, dtype=np.bool_),
            is_disposable=np.asarray(disposable, dtype=np.bool_),
            last_duration_pts=last_duration,
            expected_frames=expected,
            truncated=truncated,
            stop_reason=stop_reason,
        )


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Summarise a video: what the catalog stores and what ``framefleet`` prints."""
    index = index_video(path)
    duration = index.duration_seconds
    fps = index.average_fps or (Fraction(index.frame_count) / duration if duration else None)
    return VideoInfo(
        path=index.path,
        codec=index.codec,
        width=index.width,
        height=index.height,
        fps=float(fps or 0),
        frame_count=index.frame_count,
        keyframe_count=int(index.is_keyframe.sum()),
        duration_seconds=float(duration),
        has_b_frames=bool(np.any(np.diff(index.pts) < 0)),
        truncated=index.truncated,
    )
