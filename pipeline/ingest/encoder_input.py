"""A clip window as the encoder takes it, and the full tokens it becomes with the media's own evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
    floors_dbfs: Sequence[float | None],
    config: ActivityConfig,
) -> list[EncodedWindow]:
    """The full tokens of clip windows with their measures; `floors_dbfs` is each camera's audio noise floor
    left by its previous clip (None: no history).

    Ingest and the quality benchmark both go through here, so what they measure is what the service stores.
    """
    media = [clip_media(window) for window in windows]
    tokens = encoder.encode_batch(media, audio_saliency=compressor.uses_audio_saliency)
    encoded = []
    for window, clip, floor in zip(windows, tokens, floors_dbfs, strict=True):
        measures = measure_window(window, clip.grid, floor, config)
        evidence = measures.evidence(len(clip.audio), config)
        encoded.append(EncodedWindow(replace(clip, evidence=evidence), measures))
    return encoded


def clip_media(clip: ClipWindow) -> ClipMedia:
    """What the encoder takes of a clip window: its frames on the sampling grid and its waveform."""
    return ClipMedia(clip.frames_on_grid(), clip.waveform, clip.fps)
