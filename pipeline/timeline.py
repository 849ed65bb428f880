"""The event timeline: per-chunk activity and audio salience computed at ingest, merged into events, in words.

Activity is the share of a chunk's temporally scored video cells (STVP's second frame of each chunk)
whose change score 1 - cos(F2_i, F1_i) exceeds `change_threshold`: a static scene scores ~0 whatever
the keep ratio. Audio salience is model-independent: the chunk's loud-end level (95th percentile of
50 ms frame levels, dBFS) above a noise floor, scaled so `salience_span_db` above the floor is 1.
The floor is fixed (`noise_floor_dbfs`) or tracked per camera by `NoiseFloor`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import torch

from omnisift_core.compressor import Compression
from omnisift_core.stvp import change_share
from omnisift_core.tokens import SECONDS_PER_CHUNK
from pipeline.clips import ClipWindow
from pipeline.records import ChunkScores, ClipMeta, ClipRecord, chunk_count
from pipeline.timeparse import iso_utc


@dataclass(frozen=True)
class TimelineConfig:
    change_threshold: float = 0.1  # a cell changed when 1 - cos(F2_i, F1_i) exceeds this
    active_share: float = 0.02  # a chunk is active when at least this share of its cells changed ...
    audio_active: float = 1 / 3  # ... or its audio salience reaches this (10 dB above the floor by default)
    strong_share: float = 0.2  # "strong motion" from this share of changed cells; "motion" from 2*active_share
    loud_salience: float = 2 / 3  # "loud sound" from this salience (20 dB above the floor by default)
    noise_floor_dbfs: float = -50.0  # fixed floor when no per-camera NoiseFloor is given
    salience_span_db: float = 30.0  # dB above the floor that map to salience 1
    frame_seconds: float = 0.05  # loudness frame length
    loudness_percentile: float = 95.0  # a chunk's level: this percentile of its frame levels (peaks count)
    merge_gap: timedelta = field(default_factory=timedelta)  # active chunks at most this far apart merge


# ---- per-chunk scores at ingest --------------------------------------------------------------------------


def source_frame_chunks(compression: Compression) -> torch.Tensor:
    """(F,) chunk id of every source video frame, read off the kept tokens (every frame keeps at least one
    token at a removal ratio below 1); a frame with none falls back to Qwen2.5-Omni's 1 frame per second."""
    grid = compression.kept.grid
    per_frame = max(grid.tokens_per_frame, 1)
    chunks = torch.arange(grid.frames) // SECONDS_PER_CHUNK  # fallback: frame f at second f
    frames = compression.video_keep // per_frame
    chunks[frames] = compression.kept.video.chunks
    return chunks


def chunk_activity(compression: Compression, num_chunks: int, config: TimelineConfig) -> tuple[float, ...]:
    """Per chunk, the share of temporally scored cells whose change exceeds config.change_threshold.

    A chunk without temporal scores (a one-frame tail, or a compressor that reports none) scores 0.
    """
    if len(compression.video_scores) == 0:
        return (0.0,) * num_chunks
    per_frame = compression.kept.grid.tokens_per_frame
    token_chunks = source_frame_chunks(compression).repeat_interleave(per_frame)  # (N_v,)
    share = change_share(
        compression.video_scores, compression.video_temporal, token_chunks, config.change_threshold, num_chunks
    )
    return tuple(float(s) for s in share.nan_to_num(0.0))


def frame_levels_dbfs(waveform: np.ndarray, sample_rate: int, frame_seconds: float) -> np.ndarray:
    """(S,) float samples in [-1, 1] -> (n_frames,) RMS level of each frame in dBFS (silence -> -120)."""
    frame = max(1, round(frame_seconds * sample_rate))
    n = len(waveform) // frame
    if n == 0:
        return np.full(1, _dbfs(np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))) if len(waveform) else -120.0)
    frames = np.asarray(waveform[: n * frame], dtype=np.float64).reshape(n, frame)
    return _dbfs(np.sqrt(np.mean(frames**2, axis=1)))


def _dbfs(rms):
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def chunk_audio_salience(
    waveform: np.ndarray,
    sample_rate: int,
    num_chunks: int,
    config: TimelineConfig,
    noise_floor_dbfs: float | None = None,
) -> tuple[float, ...]:
    """Per 2-second chunk of a waveform aligned to the clip start: loudness above the floor, in [0, 1]."""
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


class NoiseFloor:
    """A camera's running noise floor (dBFS): drops at once to a quieter clip's level, rises slowly
    (`rise_db_per_clip`), so steady background noise stops counting while a new sound still does."""

    def __init__(self, initial_dbfs: float = -50.0, rise_db_per_clip: float = 1.0, quiet_percentile: float = 10.0):
        self.floor_dbfs = initial_dbfs
        self.rise_db_per_clip = rise_db_per_clip
        self.quiet_percentile = quiet_percentile

    def update(self, waveform: np.ndarray, sample_rate: int, frame_seconds: float = 0.05) -> float:
        """The floor to score this clip against (its quiet level if lower than the floor), then adapt."""
        quiet = float(np.percentile(frame_levels_dbfs(waveform, sample_rate, frame_seconds), self.quiet_percentile))
        floor = min(self.floor_dbfs, quiet)
        self.floor_dbfs = min(quiet, floor + self.rise_db_per_clip)
        return floor


def score_clip(
    compression: Compression,
    start: datetime,
    end: datetime,
    waveform: np.ndarray | None,
    sample_rate: int = 16000,
    config: TimelineConfig | None = None,
    noise_floor_dbfs: float | None = None,
) -> ChunkScores:
    """The chunk scores stored with a clip: activity from the compression, salience from the waveform
    (all 0 when the clip has no audio)."""
    config = config or TimelineConfig()
    num_chunks = chunk_count(start, end)
    activity = chunk_activity(compression, num_chunks, config)
    if waveform is None or len(waveform) == 0:
        salience = (0.0,) * num_chunks
    else:
        salience = chunk_audio_salience(waveform, sample_rate, num_chunks, config, noise_floor_dbfs)
    return ChunkScores(activity, salience)


def record_for_window(
    window: ClipWindow,
    compression: Compression,
    fingerprint: str,
    config: TimelineConfig | None = None,
    noise_floor: NoiseFloor | None = None,
) -> ClipRecord:
    """What ingest stores for one compressed clip window: its kept tokens and chunk scores.

    With a per-camera `noise_floor`, salience is measured against it (and it adapts to this clip)."""
    config = config or TimelineConfig()
    waveform = window.waveform if window.has_audio else None
    floor = None
    if noise_floor is not None and waveform is not None and len(waveform):
        floor = noise_floor.update(waveform, window.sample_rate, config.frame_seconds)
    scores = score_clip(compression, window.start, window.end, waveform, window.sample_rate, config, floor)
    return ClipRecord.from_compression(
        window.camera_id, window.start, window.end, compression, fingerprint, scores, window.has_audio
    )


def clip_event_score(meta: ClipMeta, config: TimelineConfig | None = None) -> float:
    """One number per clip for ranking, in [0, 1]: its strongest chunk, motion scaled so that
    config.strong_share of changed cells counts as 1, sound as its salience."""
    config = config or TimelineConfig()
    motion = max(meta.scores.activity, default=0.0) / config.strong_share
    return float(min(1.0, max(motion, max(meta.scores.audio_salience, default=0.0))))


# ---- events ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Adjacent active chunks of one camera, possibly across clips; scores are the peaks over its chunks."""

    camera_id: str
    start: datetime  # UTC
    end: datetime
    activity: float  # peak share of changed cells
    audio_salience: float  # peak salience
    clip_ids: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "camera_id": self.camera_id,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "activity": round(self.activity, 4),
            "audio_salience": round(self.audio_salience, 4),
            "clip_ids": list(self.clip_ids),
        }


def build_events(
    clips: Iterable[ClipMeta],
    config: TimelineConfig | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Event]:
    """Events from stored clip metadata (any cameras, any order), sorted by start then camera.

    With start/end, only chunks overlapping [start, end) take part; event times stay the chunks' own.
    """
    config = config or TimelineConfig()
    by_camera: dict[str, list[ClipMeta]] = {}
    for meta in clips:
        by_camera.setdefault(meta.camera_id, []).append(meta)
    events: list[Event] = []
    for camera_id, metas in by_camera.items():
        current: dict | None = None
        for meta in sorted(metas, key=lambda m: m.start_ms):
            for chunk in range(meta.num_chunks):
                chunk_start, chunk_end = meta.chunk_span(chunk)
                if (start is not None and chunk_end <= start) or (end is not None and chunk_start >= end):
                    continue
                activity = meta.scores.activity[chunk]
                salience = meta.scores.audio_salience[chunk] if meta.has_audio else 0.0
                if activity < config.active_share and salience < config.audio_active:
                    continue
                if current is not None and chunk_start - current["end"] <= config.merge_gap:
                    current["end"] = max(current["end"], chunk_end)
                    current["activity"] = max(current["activity"], activity)
                    current["salience"] = max(current["salience"], salience)
                    if meta.clip_id not in current["clips"]:
                        current["clips"].append(meta.clip_id)
                    continue
                if current is not None:
                    events.append(_event(camera_id, current))
                current = {"start": chunk_start, "end": chunk_end, "activity": activity, "salience": salience}
                current["clips"] = [meta.clip_id]
        if current is not None:
            events.append(_event(camera_id, current))
    return sorted(events, key=lambda e: (e.start, e.camera_id))


def _event(camera_id: str, state: dict) -> Event:
    return Event(camera_id, state["start"], state["end"], state["activity"], state["salience"], tuple(state["clips"]))


# ---- words -----------------------------------------------------------------------------------------------


def motion_words(activity: float, config: TimelineConfig) -> str:
    if activity >= config.strong_share:
        return "strong motion"
    if activity >= 2 * config.active_share:
        return "motion"
    if activity >= config.active_share:
        return "slight motion"
    return "no visible motion"


def sound_words(salience: float, config: TimelineConfig) -> str | None:
    if salience >= config.loud_salience:
        return "loud sound"
    if salience >= config.audio_active:
        return "sound"
    return None


def _clock(instant: datetime, tz: ZoneInfo, with_date: bool) -> str:
    local = instant.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """'14:03:02 to 14:03:08' with the date after it, or full dates when the span crosses midnight."""
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if local_start.date() == local_end.date():
        return f"{_clock(start, tz, False)} to {_clock(end, tz, False)} {_zone(tz)} on {local_start.date()}"
    return f"{_clock(start, tz, True)} to {_clock(end, tz, True)} {_zone(tz)}"


def _zone(tz: ZoneInfo) -> str:
    return "UTC" if str(tz) in ("UTC", "Etc/UTC") else str(tz)


def describe_span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """A time span in the camera's zone, and in UTC when that zone is not UTC."""
    utc = ZoneInfo("UTC")
    if _zone(tz) == "UTC":
        return _span(start, end, utc)
    same_dates = (start.astimezone(tz).date(), end.astimezone(tz).date()) == (
        start.astimezone(utc).date(),
        end.astimezone(utc).date(),
    )
    in_utc = f"{_clock(start, utc, False)} to {_clock(end, utc, False)} UTC" if same_dates else _span(start, end, utc)
    return f"{_span(start, end, tz)}, {in_utc}"


def describe_event(event: Event, tz: ZoneInfo | None = None, config: TimelineConfig | None = None) -> str:
    """'lobby: activity from 14:03:02 to 14:03:08 UTC on 2026-03-14 (strong motion, loud sound).'"""
    config = config or TimelineConfig()
    words = [motion_words(event.activity, config)]
    sound = sound_words(event.audio_salience, config)
    if sound:
        words.append(sound)
    span = describe_span(event.start, event.end, tz or ZoneInfo("UTC"))
    return f"{event.camera_id}: activity from {span} ({', '.join(words)})."


def describe_timeline(
    events: Sequence[Event],
    start: datetime,
    end: datetime,
    clips_checked: Mapping[str, int],
    timezones: Mapping[str, ZoneInfo] | None = None,
    config: TimelineConfig | None = None,
) -> str:
    """The plain-text answer built from the timeline alone: every event in time order, and for each camera
    with none, whether it was quiet or had no stored footage in the range."""
    timezones = timezones or {}
    utc = ZoneInfo("UTC")
    lines = [describe_event(e, timezones.get(e.camera_id, utc), config) for e in events]
    with_events = {e.camera_id for e in events}
    for camera_id, checked in sorted(clips_checked.items()):
        if camera_id in with_events:
            continue
        span = describe_span(start, end, timezones.get(camera_id, utc))
        if checked:
            lines.append(f"{camera_id}: no activity from {span} ({checked} clip{'s' * (checked != 1)} checked).")
        else:
            lines.append(f"{camera_id}: no stored footage from {span}.")
    return "\n".join(lines)
