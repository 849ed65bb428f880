"""What ingest measures on a clip window's raw media, before and beside the model (docs/architecture.md,
"Activity" and "The monitoring profile").

Pixels and waveform, never embeddings, so the measures mean the same for every model and compression: the
change of every video token cell against the frame before it (pipeline.ingest.motion), the salience of every
40 ms of sound above the camera's room tone (pipeline.ingest.sound) and the probability that it is speech
(pipeline.ingest.voice). They become the compressor's MediaEvidence and the clip's stored chunk scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from omnisift_core.layout import AUDIO_TOKENS_PER_SECOND, SECONDS_PER_CHUNK, VideoGrid
from omnisift_core.media import TEMPORAL_PATCH_SIZE, seconds_per_frame
from omnisift_core.tokens import MediaEvidence
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.motion import cell_change
from pipeline.ingest.sound import frame_salience, next_noise_floor
from pipeline.ingest.voice import VAD_FRAME_SAMPLES, speech_probability


@dataclass(frozen=True)
class AudioMeasures:
    """Per 40 ms audio frame (one audio token): salience and speech probability; the floors around the clip."""

    salience: np.ndarray  # (A,) float32 in [0, 1]
    speech: np.ndarray  # (A,) float32 in [0, 1]
    floor_used_dbfs: float  # the room tone the clip was scored against
    floor_after_dbfs: float  # the camera's floor for its next clip

    def token_salience(self, speech_active: float) -> np.ndarray:
        """What the audio safeguard ranks by: sound salience, or the speech probability where it is speech."""
        return np.maximum(self.salience, np.where(self.speech >= speech_active, self.speech, 0.0))


@dataclass(frozen=True)
class WindowMeasures:
    cell_change: np.ndarray  # (F, rows, cols) float32, threshold units (>= 1: changed); NaN frame: none before
    frame_chunks: np.ndarray  # (F,) the 2-second chunk of each token frame
    audio: AudioMeasures | None  # None: the window has no audio

    def evidence(self, num_audio_tokens: int, config: ActivityConfig) -> MediaEvidence:
        salience = np.zeros(num_audio_tokens, np.float32)
        if self.audio is not None:
            measured = self.audio.token_salience(config.speech_active)[:num_audio_tokens]
            salience[: len(measured)] = measured
        return MediaEvidence(torch.from_numpy(self.cell_change.reshape(-1).copy()), torch.from_numpy(salience))


def measure_window(
    window: ClipWindow, grid: VideoGrid, floor_dbfs: float | None, config: ActivityConfig
) -> WindowMeasures:
    """Measures of one window whose frames the encoder turned into `grid`; `floor_dbfs` is the floor the
    camera's previous clip left (None: no history, the clip's own quiet level is the floor)."""
    change = cell_change(
        window.frames_on_grid(), window.lead_in, grid.rows, grid.cols, TEMPORAL_PATCH_SIZE, config.motion
    )[: grid.frames]
    seconds = np.arange(grid.frames) * seconds_per_frame(window.fps)
    frame_chunks = (seconds // SECONDS_PER_CHUNK).astype(np.int64)
    audio = None
    if window.has_audio and len(window.waveform):
        audio = measure_audio(window.waveform, window.sample_rate, floor_dbfs, config)
    return WindowMeasures(change, frame_chunks, audio)


def measure_audio(
    waveform: np.ndarray, sample_rate: int, floor_dbfs: float | None, config: ActivityConfig
) -> AudioMeasures:
    frame = sample_rate // AUDIO_TOKENS_PER_SECOND
    used, after = next_noise_floor(floor_dbfs, waveform, frame, config.sound)
    salience = frame_salience(waveform, frame, sample_rate, used, config.sound)
    speech = _per_frame(speech_probability(waveform, sample_rate), len(salience), frame)
    return AudioMeasures(salience, speech, used, after)


def _per_frame(vad: np.ndarray, num_frames: int, frame: int) -> np.ndarray:
    """Voice probabilities per 32 ms window -> per `frame`-sample frame: the most of the windows it overlaps."""
    starts = np.arange(num_frames) * frame
    first = starts // VAD_FRAME_SAMPLES
    last = np.minimum((starts + frame - 1) // VAD_FRAME_SAMPLES, len(vad) - 1)
    spans = [vad[a : b + 1] for a, b in zip(first, last, strict=True)]
    return np.array([span.max() if len(span) else 0.0 for span in spans], np.float32)
