"""Camera images in ROS bags and MCAP files: image topics, their frame times, their images.

Three kinds of bag: a ROS1 bag (``*.bag``, format 2.0), a ROS2 bag (a folder with
``metadata.yaml`` and ``*.db3`` or ``*.mcap`` storage), a plain MCAP file (``*.mcap``, messages
in ``ros1`` or ``cdr`` encoding). An image topic carries ``sensor_msgs/(msg/)CompressedImage``
(JPEG or PNG) or ``sensor_msgs/(msg/)Image`` (raw pixels, `pixels.RAW_ENCODINGS`).

The API, for a camera's frames sampled like a video's::

    topics = image_topics("drive.bag")                        # index + header stamps
    index = topic_index("drive.bag", "/camera/front", clock="header")
    times = index.seconds(start_timestamp)                     # exact, for pick_frames
    picks = pick_frames(times, end_of_last=index.end_seconds(start_timestamp),
                        target_fps=Fraction(2))
    for position, image in read_images("drive.bag", "/camera/front",
                                       [index.positions[p.frame] for p in picks]):
        image.data or image.rgb                                # JPEG/PNG bytes, or RGB pixels

`framefleet.media.bags.reader` says what each call reads; `framefleet.media.bags.model` states
the timing rule. Pure media: no catalog, no queue.
"""

from framefleet.media.bags.model import CLOCKS, BagImage, Clock, TopicIndex, TopicInfo
from framefleet.media.bags.pixels import RAW_ENCODINGS
from framefleet.media.bags.reader import image_topics, read_images, topic_index

__all__ = [
    "CLOCKS",
    "RAW_ENCODINGS",
    "BagImage",
    "Clock",
    "TopicIndex",
    "TopicInfo",
    "image_topics",
    "read_images",
    "topic_index",
]
