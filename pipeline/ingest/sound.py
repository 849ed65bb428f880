"""How much each stretch of a waveform stands out from the camera's room tone (docs/architecture.md, "Activity").

Two measures, both in dB above what the camera hears when nothing happens, turned into salience by
`salience_span_db` (that much above is salience 1):
- loudness: a frame's level above the camera's noise floor (a loud sound, an onset);
- spectral novelty: the frame's strongest frequency band above that band's quiet level in the clip, less
  `band_margin_db` (a whistle or a tone no louder overall than the room tone, but not like it).
The noise floor is learned from the camera's own audio: its first clip's quiet level, then it drops at
once to a quieter clip's and rises by at most `noise_floor_rise_db` per clip.
"""

from __future__ import annotations

import numpy as np

from pipeline.activity import SoundConfig

SILENCE_DBFS = -120.0
BAND_EDGES_HZ = np.geomspace(250.0, 7500.0, 13)  # 12 bands, each at least 4 FFT bins of a 40 ms frame


def frame_levels_dbfs(waveform: np.ndarray, frame_samples: int) -> np.ndarray:
    """(S,) samples in [-1, 1] -> (ceil(S / frame_samples),) RMS level of each frame in dBFS (silence -120);
    a short last frame counts over its own samples."""
    if len(waveform) == 0:
        return np.full(1, SILENCE_DBFS)
    frames = _frames(np.asarray(waveform, np.float64), frame_samples)
    counts = np.minimum(frame_samples, len(waveform) - np.arange(len(frames)) * frame_samples)
    return _dbfs(np.sqrt(np.sum(frames**2, axis=1) / counts))


def band_novelty_db(waveform: np.ndarray, frame_samples: int, sample_rate: int, config: SoundConfig) -> np.ndarray:
    """(S,) -> (frames,) dB by which each frame's strongest band exceeds that band's quiet level in the clip."""
    frames = _frames(np.asarray(waveform, np.float64), frame_samples) * np.hanning(frame_samples)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (n, bins)
    bins = np.fft.rfftfreq(frame_samples, 1.0 / sample_rate)
    band_of = np.digitize(bins, BAND_EDGES_HZ) - 1
    inside = (band_of >= 0) & (band_of < len(BAND_EDGES_HZ) - 1)
    bands = np.zeros((len(frames), len(BAND_EDGES_HZ) - 1))
    np.add.at(bands.T, band_of[inside], power[:, inside].T)
    quiet = np.percentile(bands, config.band_quiet_percentile, axis=0)  # (bands,)
    return np.max(10.0 * np.log10((bands + 1e-12) / (quiet + 1e-12)), axis=1)


def frame_salience(
    waveform: np.ndarray, frame_samples: int, sample_rate: int, floor_dbfs: float, config: SoundConfig
) -> np.ndarray:
    """(S,) -> (frames,) salience in [0, 1]: loudness above the floor or spectral novelty, whichever is more."""
    loudness = frame_levels_dbfs(waveform, frame_samples) - floor_dbfs
    novelty = band_novelty_db(waveform, frame_samples, sample_rate, config) - config.band_margin_db
    return np.clip(np.maximum(loudness, novelty) / config.salience_span_db, 0.0, 1.0).astype(np.float32)


def next_noise_floor(
    floor_dbfs: float | None, waveform: np.ndarray, frame_samples: int, config: SoundConfig
) -> tuple[float, float]:
    """(floor to score this clip against, floor after it). Without history the clip's own quiet level."""
    levels = frame_levels_dbfs(waveform, frame_samples)
    quiet = max(float(np.percentile(levels, config.quiet_percentile)), config.min_floor_dbfs)
    used = quiet if floor_dbfs is None else min(floor_dbfs, quiet)
    return used, min(quiet, used + config.noise_floor_rise_db)


def _frames(waveform: np.ndarray, frame_samples: int) -> np.ndarray:
    n = -(-len(waveform) // frame_samples)
    padded = np.zeros(n * frame_samples)
    padded[: len(waveform)] = waveform
    return padded.reshape(n, frame_samples)


def _dbfs(rms):
    return 20.0 * np.log10(np.maximum(rms, 1e-6))
