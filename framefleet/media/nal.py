"""H.264 NAL headers: which packets no other frame depends on ("disposable").

A picture whose slices all have ``nal_ref_idc == 0`` is never used as a reference, so a decoder
that is not asked for it can simply not be given it: the other frames decode identically (H.264
does not even advance ``frame_num`` for such pictures). With x264's defaults (B-frames, long
GOPs) that is close to half of all packets, which GOP-level skipping cannot remove.
Other codecs are left alone (nothing is marked disposable).
"""

from __future__ import annotations

_SLICE_TYPES = (1, 5)  # coded slice of a non-IDR / IDR picture


def avcc_length_size(extradata: bytes | None) -> int | None:
    """NAL length-prefix size from an ``avcC`` record (mp4, mkv); None for Annex B streams."""
    if extradata and len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 0x03) + 1
    return None


def _headers_avcc(data: memoryview, length_size: int) -> list[int]:
    headers, i = [], 0
    while i + length_size < len(data):
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if size <= 0 or i >= len(data):
            break
        headers.append(data[i])
        i += size
    return headers


def _headers_annex_b(data: bytes) -> list[int]:
    headers, i = [], data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        headers.append(data[i + 3])
        i = data.find(b"\x00\x00\x01", i + 3)
    return headers


def is_disposable(data: memoryview | bytes, length_size: int | None) -> bool:
    """True when the packet holds slices and every one of them has ``nal_ref_idc == 0``."""
    view = memoryview(data)
    headers = (
        _headers_avcc(view, length_size) if length_size else _headers_annex_b(view[:4096].tobytes())
    )
    return disposable_from_headers(headers)


def disposable_from_headers(headers: list[int]) -> bool:
    """True when the NAL header bytes hold slices and every one has ``nal_ref_idc == 0``."""
    slices = [h for h in headers if h & 0x1F in _SLICE_TYPES]
    return bool(slices) and all(h & 0x60 == 0 for h in slices)
