"""Speech probability from a trained voice-activity model (Silero VAD), whose weights ship inside its wheel:
nothing is downloaded at run time (docs/architecture.md, "Activity")."""

from __future__ import annotations

import threading
from functools import cache

import numpy as np
import torch

from pipeline.clips import SAMPLE_RATE

VAD_FRAME_SAMPLES = 512  # Silero's window at 16 kHz: one probability per 32 ms
_lock = threading.Lock()  # the model keeps recurrent state between windows: one clip at a time per process


@cache
def _model():
    from silero_vad import load_silero_vad  # loads the TorchScript model packaged in the wheel

    return load_silero_vad()


def speech_probability(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(S,) float samples at 16 kHz -> (ceil(S / 512),) probability that each 32 ms window holds speech."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the voice-activity model takes {SAMPLE_RATE} Hz audio, got {sample_rate}")
    if len(waveform) == 0:
        return np.zeros(0, np.float32)
    audio = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))[None]
    with _lock, torch.inference_mode():
        return _model().audio_forward(audio, SAMPLE_RATE)[0].numpy().astype(np.float32)
