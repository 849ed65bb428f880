"""A clip window as the encoder takes it: its frames on the sampling grid and its waveform."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omnisift_core.backbone import ClipMedia, OmniEncoder
from omnisift_core.compressor import TokenCompressor
from omnisift_core.tokens import ClipTokens
from pipeline.clips import ClipWindow


def encode_windows(
    encoder: OmniEncoder, windows: Sequence[ClipWindow], compressor: TokenCompressor
) -> list[ClipTokens]:
    """The full tokens of clip windows, carrying what `compressor` ranks by beyond the embeddings.

    Ingest and the quality benchmark both go through here, so what they measure is what the service stores.
    """
    media = [clip_media(window) for window in windows]
    return encoder.encode_batch(media, audio_saliency=compressor.uses_audio_saliency)


def clip_media(clip: ClipWindow) -> ClipMedia:
    """What the encoder takes of a clip window: its frames on the sampling grid and its waveform."""
    return ClipMedia(frames_on_grid(clip), clip.waveform, clip.fps)


def frames_on_grid(clip: ClipWindow) -> np.ndarray:
    """(clip_seconds * fps, H, W, 3): one frame per sampling slot, each the nearest frame the source gave.

    Slots where the source had no video (a file starting mid-window, an outage) repeat their neighbour,
    so the model's frame k is always at k / fps seconds and the clip shows no motion where there was no data.
    """
    slots = np.arange(round(clip.clip_seconds * clip.fps)) / clip.fps
    index = np.searchsorted(clip.frame_times, slots).clip(0, len(clip.frame_times) - 1)
    before = (index - 1).clip(0)
    nearer_before = np.abs(clip.frame_times[before] - slots) < np.abs(clip.frame_times[index] - slots)
    return clip.frames[np.where(nearer_before, before, index)]
