"""The event timeline: a camera's active chunks (pipeline.activity), merged across clips into events.

Scores come from the store (computed at ingest, pipeline.ingest.scoring); events are derived on read, so
changing a threshold changes the timeline without re-ingesting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.activity import ActivityConfig, chunk_is_active
from pipeline.query.timeparse import iso_utc
from pipeline.records import ClipMeta


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
        current: dict | None = None
        for meta in sorted(metas, key=lambda m: m.start_ms):
            for chunk in range(meta.num_chunks):
                chunk_start, chunk_end = meta.chunk_span(chunk)
                if (start is not None and chunk_end <= start) or (end is not None and chunk_start >= end):
                    continue
                activity = meta.scores.activity[chunk]
                salience = meta.scores.audio_salience[chunk] if meta.has_audio else 0.0
                if not chunk_is_active(activity, salience, config):
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
