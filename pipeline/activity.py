"""What counts as activity in a chunk: motion, sound or speech (docs/architecture.md, "Activity").

One config, shared by ingest (the scores it measures and stores), the event timeline, alerts and the query
planner, so "an active chunk" means the same everywhere. Motion is the share of a chunk's video cells whose
pixels changed (MotionConfig); sound is salience above the camera's own room tone (SoundConfig); speech is
the voice-activity model's probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from omnisift_core.config import ChangeTest
from pipeline.errors import InvalidRecord

if TYPE_CHECKING:
    from pipeline.records import ClipMeta

TRIGGERS = ("motion", "sound", "speech")


@dataclass(frozen=True)
class MotionConfig:
    """When a video cell's pixels changed between frames (pipeline.ingest.motion)."""

    blocks_per_cell: int = 4  # a cell is compared as blocks x blocks sub-block means, so small objects count
    min_levels: float = 6.0  # a sub-block changed by at least this many luma levels (0-255) ...
    max_levels: float = 24.0  # ... and never needs more, however noisy the frame (frame-wide changes count)
    noise_multiple: float = 5.0  # between the two: this many times the frame pair's own noise
    drift_levels: float = 3.0  # a frame-wide shift up to this is lighting drift and removed
    # the timeline counts a cell as moving from this many thresholds: the token budget keeps any changed cell
    # (a spare token is cheap), an event needs clear change (keyframe re-quantisation of a grainy view reaches
    # about 1.7 thresholds; a person or a car 3 and more, a dim figure in the dark about 2.5)
    event_margin: float = 2.0

    def __post_init__(self) -> None:
        if not (
            self.blocks_per_cell >= 1
            and 0 < self.min_levels <= self.max_levels
            and self.noise_multiple > 0
            and self.event_margin >= 1
        ):
            raise InvalidRecord(f"invalid motion config {self}")


@dataclass(frozen=True)
class SoundConfig:
    """How a stretch of audio stands out from the camera's room tone (pipeline.ingest.sound)."""

    salience_span_db: float = 30.0  # dB above the room tone that map to salience 1
    band_margin_db: float = 6.0  # a band's excess over its quiet level counts beyond this (noise reaches ~5 dB)
    band_quiet_percentile: float = 20.0  # a band's quiet level: this percentile of its frames in the clip
    quiet_percentile: float = 10.0  # a clip's quiet level: this percentile of its frame levels
    noise_floor_rise_db: float = 1.0  # the camera's floor rises at most this much per clip (drops at once)
    min_floor_dbfs: float = -80.0  # digital silence is not a floor: fainter than this is never a sound
    chunk_percentile: float = 95.0  # a chunk's salience: this percentile of its frames' (peaks count)


@dataclass(frozen=True)
class ActivityConfig:
    change: ChangeTest = field(default_factory=ChangeTest)  # motion: a chunk is active from this share of cells
    motion: MotionConfig = field(default_factory=MotionConfig)
    sound: SoundConfig = field(default_factory=SoundConfig)
    audio_active: float = 1 / 3  # sound: salience from this (10 dB above the room tone by default)
    speech_active: float = 0.5  # speech: the voice-activity probability from this
    strong_share: float = 0.2  # "strong motion" from this share of changed cells; "motion" from 2*active_share
    loud_salience: float = 2 / 3  # "loud sound" from this salience (20 dB above the room tone by default)
    merge_gap: timedelta = field(default_factory=timedelta)  # active chunks at most this far apart merge

    @property
    def active_share(self) -> float:
        return self.change.active_share


def chunk_triggers(activity: float, audio_salience: float, speech: float, config: ActivityConfig) -> tuple[str, ...]:
    """The one test of an active chunk: what made it active, in TRIGGERS order (empty: quiet)."""
    fired = (activity >= config.active_share, audio_salience >= config.audio_active, speech >= config.speech_active)
    return tuple(name for name, on in zip(TRIGGERS, fired, strict=True) if on)


def meta_chunk_triggers(meta: ClipMeta, chunk: int, config: ActivityConfig) -> tuple[str, ...]:
    """chunk_triggers of one stored chunk (a clip without audio has neither sound nor speech)."""
    salience = meta.scores.audio_salience[chunk] if meta.has_audio else 0.0
    speech = meta.scores.speech_at(chunk) if meta.has_audio else 0.0
    return chunk_triggers(meta.scores.activity[chunk], salience, speech, config)


def clip_has_event(meta: ClipMeta, config: ActivityConfig) -> bool:
    return any(meta_chunk_triggers(meta, chunk, config) for chunk in range(meta.num_chunks))


def clip_event_score(meta: ClipMeta, config: ActivityConfig) -> float:
    """One number per clip for ranking, in [0, 1]: its strongest chunk, motion scaled so that
    config.strong_share of changed cells counts as 1, sound as its salience, speech as its probability."""
    motion = max(meta.scores.activity, default=0.0) / config.strong_share
    sound = max(meta.scores.audio_salience, default=0.0) if meta.has_audio else 0.0
    speech = max(meta.scores.speech, default=0.0) if meta.has_audio else 0.0
    return float(min(1.0, max(motion, sound, speech)))
