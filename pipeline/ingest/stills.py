"""A clip's still: the frame of its window where most changed, as a small JPEG (FFmpeg's mjpeg through PyAV).

The still shows one merged-grid frame, so the console can draw that frame's kept cells over it
(docs/architecture.md, "Console").
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from pipeline.clips import ClipWindow
from pipeline.ingest.measures import WindowMeasures
from pipeline.records import ClipStill, StillInfo

MAX_WIDTH = 320  # pixels; the height follows the frame's aspect ratio
JPEG_QUALITY = {"qmin": "2", "qmax": "6"}  # mjpeg quantiser bounds: small files that still show faces and cars


def still_frame(measures: WindowMeasures) -> int:
    """The token frame with the most changed cells (pipeline.ingest.motion's rule, the timeline's); the
    middle frame when none changed (a still scene)."""
    changed = (measures.cell_change >= 1.0).sum(axis=(1, 2))  # (F,); a frame with nothing before it counts 0
    return int(changed.argmax()) if changed.any() else len(changed) // 2


def clip_still(window: ClipWindow, measures: WindowMeasures, max_width: int = MAX_WIDTH) -> ClipStill | None:
    """The still of a clip window; None when it has no video."""
    frames = len(measures.cell_change)
    if len(window.frames) == 0 or frames == 0:
        return None
    frame = still_frame(measures)
    offset_s = frame * window.clip_seconds / frames
    nearest = int(np.abs(window.frame_times - offset_s).argmin())
    jpeg, width, height = encode_jpeg(window.frames[nearest], max_width)
    return ClipStill(StillInfo(frame, round(offset_s, 4), width, height), jpeg)


def encode_jpeg(rgb: np.ndarray, max_width: int = MAX_WIDTH) -> tuple[bytes, int, int]:
    """(H, W, 3) uint8 RGB -> JPEG bytes at most `max_width` wide (even sizes, for 4:2:0), width, height."""
    height, width = rgb.shape[:2]
    out_w = max(2, min(max_width, width) // 2 * 2)
    out_h = max(2, round(height * out_w / width / 2) * 2)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame = frame.reformat(width=out_w, height=out_h, format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = out_w, out_h, "yuvj420p"
    codec.time_base = Fraction(1, 1)
    codec.options = JPEG_QUALITY
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets), out_w, out_h
