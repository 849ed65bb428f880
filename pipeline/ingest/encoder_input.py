"""A clip window as the encoder takes it, and the full tokens it becomes with the media's own evidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from omnisift_core.backbone import ClipMedia, OmniEncoder
from omnisift_core.compressor import TokenCompressor
from omnisift_core.tokens import ClipTokens
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.measures import WindowMeasures, measure_window


@dataclass(frozen=True)
class EncodedWindow:
    tokens: ClipTokens  # full tokens, carrying the media evidence the monitoring budget ranks by
    measures: WindowMeasures  # what the window's pixels and waveform say, for its stored scores


def encode_windows(
    encoder: OmniEncoder,
    windows: Sequence[ClipWindow],
    compressor: TokenCompressor,
    floor_of: Callable[[ClipWindow], float | None],
    config: ActivityConfig,
) -> list[EncodedWindow]:
    """The full tokens of clip windows with their measures, in the windows' order.

    `floor_of(window)` is the audio noise floor the camera's previous stored clip left (None: no history); a
    window whose camera has an earlier window in this batch continues from that one instead, so a batch gives
    the records one-by-one ingest gives. Ingest and the quality benchmark both go through here, so what they
    measure is what the service stores.
    """
    media = [clip_media(window) for window in windows]
    tokens = encoder.encode_batch(media, audio_saliency=compressor.uses_audio_saliency)
    encoded: dict[int, EncodedWindow] = {}
    latest: dict[str, tuple[datetime, float | None]] = {}  # camera -> its newest window so far, its floor after
    for i in sorted(range(len(windows)), key=lambda i: windows[i].start):
        window, clip = windows[i], tokens[i]
        earlier = latest.get(window.camera_id)
        floor = earlier[1] if earlier is not None and earlier[0] < window.start else floor_of(window)
        measures = measure_window(window, clip.grid, floor, config)
        latest[window.camera_id] = (window.start, None if measures.audio is None else measures.audio.floor_after_dbfs)
        encoded[i] = EncodedWindow(replace(clip, evidence=measures.evidence(len(clip.audio), config)), measures)
    return [encoded[i] for i in range(len(windows))]


def clip_media(clip: ClipWindow) -> ClipMedia:
    """What the encoder takes of a clip window: its frames on the sampling grid and its waveform."""
    return ClipMedia(clip.frames_on_grid(), clip.waveform, clip.fps)
