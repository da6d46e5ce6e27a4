"""The packet index of an mp4/mov video from its sample table: no pass over the frames' bytes.

An mp4 lists every sample (packet) in its ``moov`` box: decode time, size, file offset, sync
(keyframe) flag, and the composition offset (``ctts``) that gives its presentation time. FFmpeg
reads that table when it opens the file (``stream.index_entries``); the composition offsets we
read from the ``ctts`` box ourselves. Whether a packet is disposable (H.264 ``nal_ref_idc == 0``,
see `framefleet.media.nal`) needs its NAL headers: a few bytes read at known offsets. So the
index of a 151 MB clip costs the ``moov`` (tens of kB) and ~5 bytes per packet instead of a
read of the whole file, which matters on network mounts and for every worker that needs it.

It must equal what a demux pass gives (`framefleet.media.probe`), so it is checked before it
is used: the first packets and the last displayed one are demuxed and compared. Anything
unusual (another container, samples past the end of the file, an edit list that drops samples,
a disagreement) returns None and the caller falls back to the demux pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from framefleet.media.nal import avcc_length_size, disposable_from_headers

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MAX_MOOV_BYTES = 256 * 1024 * 1024
"""A larger ``moov`` is not read (a 65 h, 30 fps recording's is ~90 MB)."""
CHECKED_PACKETS = 12
"""How many packets from the start are demuxed to check the table (the first GOP's head)."""
_CONTAINERS = {"mov", "mp4"}
_NAL_READ_LIMIT = 64
"""NAL units read per packet at most; a packet with more is left not disposable."""


@dataclass(frozen=True)
class SampleTable:
    """The index arrays of one video stream, in decode order (see `probe.VideoIndex`)."""

    pts: IntArray
    dts: IntArray
    is_keyframe: BoolArray
    is_disposable: BoolArray
    last_duration_pts: int
    """Duration of the last displayed frame's packet, as the demuxer reports it (0: none)."""


def sample_table(container: av.container.InputContainer, path: str) -> SampleTable | None:
    """The index of ``container``'s first video stream from its sample table, or None.

    ``container`` is open on ``path`` and is left positioned anywhere (close it after).
    """
    if not _CONTAINERS & set(container.format.name.split(",")):
        return None
    stream = container.streams.video[0]
    entries = stream.index_entries
    count = len(entries)
    if count == 0 or count != int(stream.frames or 0):
        return None
    dts = np.empty(count, dtype=np.int64)
    pos = np.empty(count, dtype=np.int64)
    size = np.empty(count, dtype=np.int64)
    keys = np.empty(count, dtype=np.bool_)
    for i, entry in enumerate(entries):
        if entry.is_discard or entry.size <= 0:
            return None
        dts[i], pos[i], size[i], keys[i] = entry.timestamp, entry.pos, entry.size, entry.is_keyframe
    if np.any(np.diff(dts) <= 0) or int((pos + size).max()) > os.path.getsize(path):
        return None  # timestamps out of order, or samples past the end: a cut file
    try:
        with open(path, "rb") as f:
            offsets = _composition_offsets(f, count)
    except (OSError, ValueError):
        return None
    if offsets is None:
        return None
    try:
        checked = _check(container, stream, dts, offsets)
    except av.error.FFmpegError:
        return None
    if checked is None:
        return None
    pts, last_duration = checked
    ctx = stream.codec_context
    disposable = np.zeros(count, dtype=np.bool_)
    if ctx.name == "h264":
        length_size = avcc_length_size(ctx.extradata)
        if length_size is None:
            return None  # Annex B inside mp4: the demux pass reads its start codes
        try:
            disposable = _disposable(path, pos, size, keys, length_size)
        except OSError:
            return None
    return SampleTable(pts, dts, keys, disposable, last_duration)


def _check(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    dts: IntArray,
    offsets: IntArray,
) -> tuple[IntArray, int] | None:
    """Presentation times from the table, checked against demuxed packets; with the last
    displayed frame's packet duration. None when the table and the demuxer disagree."""
    first: Any = None
    seen = 0
    for packet in container.demux(stream):
        if packet.size == 0 or packet.dts is None:
            continue
        if first is None:
            if packet.dts != dts[0] or packet.pts is None:
                return None
            first = packet
            # FFmpeg shifts presentation times by a constant (edit list, negative offsets).
            shift = int(packet.pts) - int(dts[0]) - int(offsets[0])
            pts = dts + offsets + shift
        if packet.dts != dts[seen] or packet.pts != pts[seen]:
            return None
        seen += 1
        if seen >= min(CHECKED_PACKETS, len(dts)):
            break
    if first is None:
        return None
    last = int(np.argmax(pts))
    # The demuxer may land a few packets early (it seeks by presentation time): walk on.
    container.seek(int(dts[last]), stream=stream, backward=True, any_frame=True)
    for n, packet in enumerate(container.demux(stream)):
        if packet.size == 0 or packet.dts is None:
            continue
        if packet.dts < dts[last] and n < CHECKED_PACKETS:
            continue
        if packet.dts != dts[last] or packet.pts != pts[last]:
            return None
        return pts, int(packet.duration or 0)
    return None


def _disposable(
    path: str, pos: IntArray, size: IntArray, keys: BoolArray, length_size: int
) -> BoolArray:
    """`nal.is_disposable` of each packet, from its NAL headers alone (a few bytes each)."""
    out = np.zeros(len(pos), dtype=np.bool_)
    fd = os.open(path, os.O_RDONLY)
    try:
        for i in np.flatnonzero(~keys):
            start, end = int(pos[i]), int(pos[i] + size[i])
            headers: list[int] = []
            offset = start
            # The walk of `nal._headers_avcc`, reading only each NAL unit's length and header.
            while offset + length_size < end and len(headers) < _NAL_READ_LIMIT:
                head = os.pread(fd, length_size + 1, offset)
                if len(head) < length_size + 1:
                    break
                nal_size = int.from_bytes(head[:length_size], "big")
                offset += length_size
                if nal_size <= 0 or offset >= end:
                    break
                headers.append(head[length_size])
                offset += nal_size
            out[i] = len(headers) < _NAL_READ_LIMIT and disposable_from_headers(headers)
    finally:
        os.close(fd)
    return out


def _composition_offsets(f: Any, count: int) -> IntArray | None:
    """Per-sample ``ctts`` offsets of the first video track (zeros without ``ctts``), or None
    when the file's boxes cannot be read or do not describe ``count`` samples."""
    moov = _find_top_box(f, b"moov")
    if moov is None:
        return None
    for trak in _children(moov, b"trak"):
        mdia = _child(trak, b"mdia")
        hdlr = _child(mdia, b"hdlr") if mdia is not None else None
        if mdia is None or hdlr is None or bytes(hdlr[8:12]) != b"vide":
            continue
        minf = _child(mdia, b"minf")
        stbl = _child(minf, b"stbl") if minf is not None else None
        stts = _child(stbl, b"stts") if stbl is not None else None
        if stbl is None or stts is None or _run_total(stts) != count:
            return None
        ctts = _child(stbl, b"ctts")
        if ctts is None:
            return np.zeros(count, dtype=np.int64)
        entries = int.from_bytes(ctts[4:8], "big")
        table = np.frombuffer(ctts, dtype=">i4", count=2 * entries, offset=8).reshape(-1, 2)
        counts = table[:, 0].astype(np.uint32).astype(np.int64)
        if int(counts.sum()) != count:
            return None
        return np.repeat(table[:, 1].astype(np.int64), counts)
    return None


def _run_total(box: memoryview) -> int:
    """Sum of the sample counts of an ``stts`` box (entries of count, delta)."""
    entries = int.from_bytes(box[4:8], "big")
    table = np.frombuffer(box, dtype=">u4", count=2 * entries, offset=8).reshape(-1, 2)
    return int(table[:, 0].astype(np.int64).sum())


def _find_top_box(f: Any, kind: bytes) -> memoryview | None:
    """The payload of the first top-level box ``kind``, reading only box headers before it."""
    end = os.fstat(f.fileno()).st_size
    offset = 0
    while offset + 8 <= end:
        f.seek(offset)
        header = f.read(16)
        size, name, skip = int.from_bytes(header[:4], "big"), header[4:8], 8
        if size == 1:
            size, skip = int.from_bytes(header[8:16], "big"), 16
        elif size == 0:
            size = end - offset
        if size < skip or offset + size > end:
            return None
        if name == kind:
            if size - skip > MAX_MOOV_BYTES:
                return None
            f.seek(offset + skip)
            data: bytes = f.read(size - skip)
            return memoryview(data) if len(data) == size - skip else None
        offset += size
    return None


def _boxes(data: memoryview) -> list[tuple[bytes, memoryview]]:
    """The (type, payload) of the boxes laid end to end in ``data`` (views, not copies)."""
    out: list[tuple[bytes, memoryview]] = []
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        name, skip = bytes(data[offset + 4 : offset + 8]), 8
        if size == 1:
            size, skip = int.from_bytes(data[offset + 8 : offset + 16], "big"), 16
        elif size == 0:
            size = len(data) - offset
        if size < skip or offset + size > len(data):
            raise ValueError("a box runs past its parent")
        out.append((name, data[offset + skip : offset + size]))
        offset += size
    return out


def _children(data: memoryview, kind: bytes) -> list[memoryview]:
    return [payload for name, payload in _boxes(data) if name == kind]


def _child(data: memoryview, kind: bytes) -> memoryview | None:
    found = _children(data, kind)
    return found[0] if found else None
