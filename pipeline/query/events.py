"""The event timeline: a camera's active chunks (pipeline.activity), merged across clips into events.

Scores come from the store (computed at ingest, pipeline.ingest.scoring); events are derived on read, so
changing a threshold changes the timeline without re-ingesting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.activity import TRIGGERS, ActivityConfig, meta_chunk_triggers
from pipeline.query.timeparse import iso_utc
from pipeline.records import ClipMeta


@dataclass(frozen=True)
class Event:
    """Adjacent active chunks of one camera, possibly across clips; scores are the peaks over its chunks, and
    `triggers` what made its chunks active (motion, sound, speech; in that order)."""

    camera_id: str
    start: datetime  # UTC
    end: datetime
    activity: float  # peak share of changed cells
    audio_salience: float  # peak salience
    speech: float  # peak voice-activity probability
    triggers: tuple[str, ...]
    clip_ids: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "camera_id": self.camera_id,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "activity": round(self.activity, 4),
            "audio_salience": round(self.audio_salience, 4),
            "speech": round(self.speech, 4),
            "triggers": list(self.triggers),
            "clip_ids": list(self.clip_ids),
        }


def build_events(
    clips: Iterable[ClipMeta],
    config: ActivityConfig | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Event]:
    """Events from stored clip metadata (any cameras, any order), sorted by start then camera.

    With start/end, only chunks overlapping [start, end) take part; event times stay the chunks' own.
    """
    config = config or ActivityConfig()
    by_camera: dict[str, list[ClipMeta]] = {}
    for meta in clips:
        by_camera.setdefault(meta.camera_id, []).append(meta)
    events: list[Event] = []
    for camera_id, metas in by_camera.items():
        current: _Building | None = None
        for meta in sorted(metas, key=lambda m: m.start_ms):
            for chunk in range(meta.num_chunks):
                chunk_start, chunk_end = meta.chunk_span(chunk)
                if (start is not None and chunk_end <= start) or (end is not None and chunk_start >= end):
                    continue
                triggers = meta_chunk_triggers(meta, chunk, config)
                if not triggers:
                    continue
                if current is None or chunk_start - current.end > config.merge_gap:
                    if current is not None:
                        events.append(current.event(camera_id))
                    current = _Building(chunk_start, chunk_end)
                current.add(meta, chunk, chunk_end, triggers)
        if current is not None:
            events.append(current.event(camera_id))
    return sorted(events, key=lambda e: (e.start, e.camera_id))


@dataclass
class _Building:
    """An event while its chunks are being merged."""

    start: datetime
    end: datetime
    activity: float = 0.0
    salience: float = 0.0
    speech: float = 0.0
    triggers: set[str] = field(default_factory=set)
    clips: list[str] = field(default_factory=list)

    def add(self, meta: ClipMeta, chunk: int, chunk_end: datetime, triggers: tuple[str, ...]) -> None:
        self.end = max(self.end, chunk_end)
        self.activity = max(self.activity, meta.scores.activity[chunk])
        if meta.has_audio:
            self.salience = max(self.salience, meta.scores.audio_salience[chunk])
            self.speech = max(self.speech, meta.scores.speech_at(chunk))
        self.triggers.update(triggers)
        if meta.clip_id not in self.clips:
            self.clips.append(meta.clip_id)

    def event(self, camera_id: str) -> Event:
        ordered = tuple(t for t in TRIGGERS if t in self.triggers)
        return Event(
            camera_id, self.start, self.end, self.activity, self.salience, self.speech, ordered, tuple(self.clips)
        )
