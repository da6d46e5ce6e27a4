"""framefleet: turn driving recordings into images at fleet scale."""

from framefleet.errors import FramefleetError

__all__ = ["FramefleetError"]
