"""Per-chunk scores stored with every clip, from the window's measures (pipeline.ingest.measures), and the
record ingest stores (docs/architecture.md, "Activity").

Activity is the share of a chunk's video cells whose pixels clearly changed (`MotionConfig.event_margin`
thresholds) against the frame before (a token frame with nothing before it does not count); audio salience
a high percentile of the chunk's 40 ms saliences above the camera's room tone; speech a high percentile of
the voice-activity probabilities. A still scene scores ~0 whatever the model and the keep ratio.

The noise floor is per-camera state kept in the store: each record carries the floor after its clip, and
the next clip of the camera starts from it, so any encoder replica (or a restarted one) scores a clip the
same way (docs/architecture.md, "Stateless deployments").
"""

from __future__ import annotations

import numpy as np

from omnisift_core.compressor import Compression
from omnisift_core.layout import AUDIO_TOKENS_PER_SECOND, SECONDS_PER_CHUNK
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.measures import WindowMeasures
from pipeline.ingest.stills import clip_still
from pipeline.records import ChunkScores, ClipRecord, chunk_count

SPEECH_PERCENTILE = 90.0  # a chunk's speech: this percentile of its frames' probabilities
FRAMES_PER_CHUNK = SECONDS_PER_CHUNK * AUDIO_TOKENS_PER_SECOND


def chunk_scores(measures: WindowMeasures, num_chunks: int, config: ActivityConfig) -> ChunkScores:
    changed = measures.cell_change >= config.motion.event_margin  # (F, rows, cols); NaN frames compare False
    compared = ~np.isnan(measures.cell_change).any(axis=(1, 2))
    activity = []
    for chunk in range(num_chunks):
        frames = (measures.frame_chunks == chunk) & compared
        activity.append(float(changed[frames].mean()) if frames.any() else 0.0)
    if measures.audio is None:
        return ChunkScores(tuple(activity), (0.0,) * num_chunks)
    salience = _per_chunk(measures.audio.salience, num_chunks, config.sound.chunk_percentile)
    speech = _per_chunk(measures.audio.speech, num_chunks, SPEECH_PERCENTILE)
    return ChunkScores(tuple(activity), salience, speech)


def _per_chunk(frames: np.ndarray, num_chunks: int, percentile: float) -> tuple[float, ...]:
    values = []
    for chunk in range(num_chunks):
        part = frames[chunk * FRAMES_PER_CHUNK : (chunk + 1) * FRAMES_PER_CHUNK]
        values.append(float(np.clip(np.percentile(part, percentile), 0.0, 1.0)) if len(part) else 0.0)
    return tuple(values)


def record_for_window(
    window: ClipWindow,
    compression: Compression,
    fingerprint: str,
    measures: WindowMeasures,
    config: ActivityConfig | None = None,
) -> ClipRecord:
    """What ingest stores for one compressed clip window: its kept tokens with the scores they were ranked by,
    chunk scores, the camera's noise floor after it, and a still of the frame where most changed."""
    config = config or ActivityConfig()
    return ClipRecord(
        camera_id=window.camera_id,
        start=window.start,
        end=window.end,
        tokens=compression.kept,
        fingerprint=fingerprint,
        source_counts=compression.source_counts,
        scores=chunk_scores(measures, chunk_count(window.start, window.end), config),
        has_audio=window.has_audio,
        noise_floor_dbfs=None if measures.audio is None else measures.audio.floor_after_dbfs,
        video_scores=compression.video_scores[compression.video_keep],
        audio_scores=compression.audio_scores[compression.audio_keep],
        still=clip_still(window, measures),
    )
