"""What counts as activity in a chunk: motion (the core's ChangeTest) or sound above the camera's noise floor.

One config, shared by ingest (the scores it stores), the event timeline, the query planner and the novelty
video budget, so "an active chunk" means the same everywhere (docs/architecture.md, "Activity").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from omnisift_core.config import ChangeTest

if TYPE_CHECKING:
    from pipeline.records import ClipMeta


@dataclass(frozen=True)
class ActivityConfig:
    change: ChangeTest = field(default_factory=ChangeTest)  # motion: share of cells that changed
    audio_active: float = 1 / 3  # sound: salience from this (10 dB above the floor by default)
    strong_share: float = 0.2  # "strong motion" from this share of changed cells; "motion" from 2*active_share
    loud_salience: float = 2 / 3  # "loud sound" from this salience (20 dB above the floor by default)
    noise_floor_dbfs: float = -50.0  # a camera's floor before it has any history
    noise_floor_rise_db: float = 1.0  # the floor rises at most this much per clip (drops at once)
    quiet_percentile: float = 10.0  # a clip's quiet level: this percentile of its frame levels
    salience_span_db: float = 30.0  # dB above the floor that map to salience 1
    frame_seconds: float = 0.05  # loudness frame length
    loudness_percentile: float = 95.0  # a chunk's level: this percentile of its frame levels (peaks count)
    merge_gap: timedelta = field(default_factory=timedelta)  # active chunks at most this far apart merge

    @property
    def active_share(self) -> float:
        return self.change.active_share


def chunk_is_active(activity: float, audio_salience: float, config: ActivityConfig) -> bool:
    """The one test of an active chunk: enough of its cells changed, or its sound stands out."""
    return activity >= config.active_share or audio_salience >= config.audio_active


def clip_has_event(meta: ClipMeta, config: ActivityConfig) -> bool:
    salience = meta.scores.audio_salience if meta.has_audio else (0.0,) * meta.num_chunks
    return any(chunk_is_active(a, s, config) for a, s in zip(meta.scores.activity, salience, strict=True))


def clip_event_score(meta: ClipMeta, config: ActivityConfig) -> float:
    """One number per clip for ranking, in [0, 1]: its strongest chunk, motion scaled so that
    config.strong_share of changed cells counts as 1, sound as its salience."""
    motion = max(meta.scores.activity, default=0.0) / config.strong_share
    return float(min(1.0, max(motion, max(meta.scores.audio_salience, default=0.0))))
