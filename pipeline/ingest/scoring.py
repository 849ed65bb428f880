"""Per-chunk scores stored with every clip: activity from the compression, audio salience from the waveform.

Activity is the share of a chunk's temporally scored video cells (STVP's second frame of each chunk) whose
change score 1 - cos(F2_i, F1_i) exceeds the ChangeTest's threshold: a static scene scores ~0 whatever the
keep ratio. Audio salience is model-independent: the chunk's loud-end level (a high percentile of 50 ms
frame levels, dBFS) above the camera's noise floor, scaled so `salience_span_db` above the floor is 1.

The noise floor is per-camera state kept in the store: each record carries the floor after its clip, and
the next clip of the camera starts from it, so any encoder replica (or a restarted one) scores a clip the
same way (docs/architecture.md, "Stateless deployments").
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import torch

from omnisift_core.compressor import Compression
from omnisift_core.layout import SECONDS_PER_CHUNK
from omnisift_core.stvp import change_share
from pipeline.activity import ActivityConfig
from pipeline.clips import SAMPLE_RATE, ClipWindow
from pipeline.ingest.stills import clip_still
from pipeline.records import ChunkScores, ClipRecord, chunk_count

SILENCE_DBFS = -120.0


def source_frame_chunks(compression: Compression) -> torch.Tensor:
    """(F,) chunk id of every source video frame, read off the kept tokens (every frame keeps at least one
    token at a removal ratio below 1); a frame with none falls back to Qwen2.5-Omni's 1 frame per second."""
    grid = compression.kept.grid
    per_frame = max(grid.tokens_per_frame, 1)
    chunks = torch.arange(grid.frames) // SECONDS_PER_CHUNK  # fallback: frame f at second f
    frames = compression.video_keep // per_frame
    chunks[frames] = compression.kept.video.chunks
    return chunks


def chunk_activity(compression: Compression, num_chunks: int, config: ActivityConfig) -> tuple[float, ...]:
    """Per chunk, the share of temporally scored cells whose change exceeds the change threshold.

    A chunk without temporal scores (a one-frame tail, or a compressor that reports none) scores 0.
    """
    if len(compression.video_scores) == 0:
        return (0.0,) * num_chunks
    per_frame = compression.kept.grid.tokens_per_frame
    token_chunks = source_frame_chunks(compression).repeat_interleave(per_frame)  # (N_v,)
    share = change_share(
        compression.video_scores, compression.video_temporal, token_chunks, config.change.change_threshold, num_chunks
    )
    return tuple(float(s) for s in share.nan_to_num(0.0))


def frame_levels_dbfs(waveform: np.ndarray, sample_rate: int, frame_seconds: float) -> np.ndarray:
    """(S,) float samples in [-1, 1] -> (n_frames,) RMS level of each frame in dBFS (silence -> -120)."""
    frame = max(1, round(frame_seconds * sample_rate))
    n = len(waveform) // frame
    if n == 0:
        if not len(waveform):
            return np.full(1, SILENCE_DBFS)
        return np.full(1, _dbfs(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))))
    frames = np.asarray(waveform[: n * frame], dtype=np.float64).reshape(n, frame)
    return _dbfs(np.sqrt(np.mean(frames**2, axis=1)))


def _dbfs(rms):
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def chunk_audio_salience(
    waveform: np.ndarray,
    sample_rate: int,
    num_chunks: int,
    config: ActivityConfig,
    noise_floor_dbfs: float | None = None,
) -> tuple[float, ...]:
    """Per 2-second chunk of a waveform aligned to the clip start: loudness above the floor (the config's
    initial floor when None), in [0, 1]."""
    floor = config.noise_floor_dbfs if noise_floor_dbfs is None else noise_floor_dbfs
    per_chunk = SECONDS_PER_CHUNK * sample_rate
    scores = []
    for chunk in range(num_chunks):
        segment = waveform[chunk * per_chunk : (chunk + 1) * per_chunk]
        if len(segment) == 0:
            scores.append(0.0)
            continue
        level = np.percentile(frame_levels_dbfs(segment, sample_rate, config.frame_seconds), config.loudness_percentile)
        scores.append(float(np.clip((level - floor) / config.salience_span_db, 0.0, 1.0)))
    return tuple(scores)


def next_noise_floor(
    floor_dbfs: float, waveform: np.ndarray, sample_rate: int, config: ActivityConfig
) -> tuple[float, float]:
    """(floor to score this clip against, floor after it). The floor drops at once to a quieter clip's
    quiet level and rises by at most `noise_floor_rise_db` per clip, so steady background noise stops
    counting while a new sound still does."""
    levels = frame_levels_dbfs(waveform, sample_rate, config.frame_seconds)
    quiet = float(np.percentile(levels, config.quiet_percentile))
    used = min(floor_dbfs, quiet)
    return used, min(quiet, used + config.noise_floor_rise_db)


def score_clip(
    compression: Compression,
    start: datetime,
    end: datetime,
    waveform: np.ndarray | None,
    sample_rate: int = SAMPLE_RATE,
    config: ActivityConfig | None = None,
    noise_floor_dbfs: float | None = None,
) -> ChunkScores:
    """The chunk scores of a clip: activity from the compression, salience from the waveform against the
    floor (the config's initial floor when None); salience is all 0 when the clip has no audio."""
    config = config or ActivityConfig()
    num_chunks = chunk_count(start, end)
    activity = chunk_activity(compression, num_chunks, config)
    if waveform is None or len(waveform) == 0:
        return ChunkScores(activity, (0.0,) * num_chunks)
    return ChunkScores(activity, chunk_audio_salience(waveform, sample_rate, num_chunks, config, noise_floor_dbfs))


def record_for_window(
    window: ClipWindow,
    compression: Compression,
    fingerprint: str,
    config: ActivityConfig | None = None,
    noise_floor_dbfs: float | None = None,
) -> ClipRecord:
    """What ingest stores for one compressed clip window: its kept tokens, chunk scores and the camera's
    noise floor after it. `noise_floor_dbfs` is the floor the camera's previous clip left (None: no history)."""
    config = config or ActivityConfig()
    floor = config.noise_floor_dbfs if noise_floor_dbfs is None else noise_floor_dbfs
    waveform = window.waveform if window.has_audio and len(window.waveform) else None
    used, after = floor, floor
    if waveform is not None:
        used, after = next_noise_floor(floor, waveform, window.sample_rate, config)
    return ClipRecord(
        camera_id=window.camera_id,
        start=window.start,
        end=window.end,
        tokens=compression.kept,
        fingerprint=fingerprint,
        source_counts=compression.source_counts,
        scores=score_clip(compression, window.start, window.end, waveform, window.sample_rate, config, used),
        has_audio=window.has_audio,
        noise_floor_dbfs=after,
        video_scores=compression.video_scores[compression.video_keep],
        audio_scores=compression.audio_scores[compression.audio_keep],
        still=clip_still(window, compression, config.change.change_threshold),
    )
