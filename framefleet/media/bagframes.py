"""A bag's image topic as a camera: its frame times, the frames a segment emits, their images.

The same rule and the same outputs as a video (`framefleet.media.pipeline`): the topic's message
times (header stamps, or receive times: ``SegmentSpec.bag_time``) take the place of the video's
frame times, and the sampling rule picks the same way. Only the picked messages are read
(through the bag's index). A compressed image is written as it is stored when the output needs
neither a resize nor another format (no re-encode); otherwise it is decoded (a JPEG at the
smallest DCT scale that is large enough) and goes through the same swscale resize and encoder
as a video frame. Raw images (rgb8, bgr8, mono8/16, Bayer) arrive as RGB pixels.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import av
from av.video.reformatter import VideoReformatter
from PIL import Image, UnidentifiedImageError

from framefleet.errors import InvalidBagError, InvalidVideoError
from framefleet.media.bags import BagImage, TopicIndex, read_images, topic_index
from framefleet.media.images import encode_image, frame_to_rgb
from framefleet.media.specs import OutputSpec, SegmentSpec
from framefleet.media.timing import FrameTimes, exact

if TYPE_CHECKING:
    from framefleet.media.pipeline import PlannedFrame, SegmentPlan


def bag_times(spec: SegmentSpec, *, max_frame_pixels: int) -> tuple[TopicIndex, FrameTimes]:
    """The topic's index and its frame times relative to the recording start.

    Raises:
        MediaError: the bag or topic cannot be read, or its images are too large.
    """
    assert spec.topic is not None
    index = topic_index(spec.video_path, spec.topic, clock=spec.bag_time)
    for size in index.sizes:
        if size is not None and size[0] * size[1] > max_frame_pixels:
            raise InvalidVideoError(
                f"{spec.video_path!r} topic {spec.topic!r} has {size[0]}x{size[1]} images, more "
                f"than max_frame_pixels ({max_frame_pixels / 1e6:.1f} MP)"
            )
    start = exact(spec.start_timestamp) if spec.start_timestamp is not None else None
    origin = start if start is not None else exact(index.times_ns[0]) / 10**9
    times = FrameTimes(
        seconds=index.seconds(origin),
        end_seconds=index.end_seconds(origin),
        start_timestamp=origin,
        source=f"{spec.bag_time} stamps of {spec.topic}",
    )
    return index, times


def iter_bag_frames(
    spec: SegmentSpec, plan: SegmentPlan
) -> Iterator[tuple[PlannedFrame, FrameTimes, TopicIndex, BagImage]]:
    """The planned frames' images, in time order. Raises the bag's truncation error *after*
    every image before the cut, when the segment reaches past it."""
    assert spec.topic is not None
    index = plan.index
    assert isinstance(index, TopicIndex)
    by_position = {index.positions[p.pick.frame]: p for p in plan.frames}
    for position, image in read_images(spec.video_path, spec.topic, sorted(by_position)):
        yield by_position[position], plan.times, index, image
    error = index.truncation_error()
    if error is not None and spec.end_seconds is None:
        raise error


def render_bag_image(
    image: BagImage, output: OutputSpec, reformatter: VideoReformatter, *, max_frame_pixels: int
) -> tuple[bytes, tuple[int, int]]:
    """The output file's bytes and size for one image message.

    Raises:
        InvalidBagError: the image is unreadable, or declares more than ``max_frame_pixels``
            (checked per image: with the receive clock the index holds no sizes).
    """
    native = _native_size(image)
    _check_pixels(image, native, max_frame_pixels)
    size = output.resize.target_size(*native)
    if image.image_format == output.image_format and size == native:
        return image.data, size  # as stored: no decode, no re-encode
    rgb = image.to_rgb(at_least=size, max_pixels=max_frame_pixels)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    resized = frame_to_rgb(frame, size, reformatter=reformatter)
    return encode_image(resized, image_format=output.image_format, quality=output.quality), size


def _native_size(image: BagImage) -> tuple[int, int]:
    if image.width is not None and image.height is not None:
        return image.width, image.height
    try:
        with Image.open(io.BytesIO(image.data)) as opened:  # reads the header only
            width, height = opened.size
            return int(width), int(height)
    except Image.DecompressionBombError as e:  # Pillow's own limit (~179 MP), an Exception
        raise InvalidBagError(
            f"message {image.position} ({image.encoding}) declares too large an image: {e}"
        ) from e
    except (UnidentifiedImageError, OSError) as e:
        raise InvalidBagError(
            f"message {image.position} ({image.encoding}) is not a readable image: {e}"
        ) from e


def _check_pixels(image: BagImage, size: tuple[int, int], max_frame_pixels: int) -> None:
    width, height = size
    if width * height > max_frame_pixels:
        raise InvalidBagError(
            f"message {image.position} ({image.encoding}) is a {width}x{height} image "
            f"({width * height / 1e6:.1f} MP), more than max_frame_pixels "
            f"({max_frame_pixels / 1e6:.1f} MP); raise the max_frame_pixels setting if this "
            "host has the memory"
        )
