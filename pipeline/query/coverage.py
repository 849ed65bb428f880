"""What an answer over a range covered: clips seen as tokens, clips summarised, and the stretches thinning left
with fewer tokens or only scores (docs/architecture.md, "Questions over hours")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.activity import ActivityConfig, clip_event_score
from pipeline.query.events import Event
from pipeline.query.wording import describe_span
from pipeline.records import ClipMeta
from pipeline.store.tier_state import FEWER, NONE, is_cold, thinned_level

LEVEL_NAMES = {0: "whole", FEWER: "fewer_tokens", NONE: "scores_only"}


@dataclass(frozen=True)
class ThinnedRange:
    """Consecutive stored clips of one camera thinned to the same level."""

    camera_id: str
    start: datetime
    end: datetime
    level: int  # FEWER or NONE
    clips: int

    def to_json(self) -> dict:
        return {
            "camera_id": self.camera_id,
            "start": self.start,
            "end": self.end,
            "level": LEVEL_NAMES[self.level],
            "clips": self.clips,
        }


@dataclass(frozen=True)
class Coverage:
    clips_in_range: int
    clips_as_tokens: int
    clips_summarised: int
    clips_cold: int
    summary_batches: int
    thinned_ranges: tuple[ThinnedRange, ...]

    def to_json(self) -> dict:
        return {
            "clips_in_range": self.clips_in_range,
            "clips_as_tokens": self.clips_as_tokens,
            "clips_summarised": self.clips_summarised,
            "clips_cold": self.clips_cold,
            "summary_batches": self.summary_batches,
            "thinned_ranges": [r.to_json() for r in self.thinned_ranges],
        }


def thinned_ranges(metas: Iterable[ClipMeta]) -> tuple[ThinnedRange, ...]:
    """Runs of consecutive thinned clips per camera (a whole clip or another level ends a run)."""
    by_camera: dict[str, list[ClipMeta]] = {}
    for meta in metas:
        by_camera.setdefault(meta.camera_id, []).append(meta)
    ranges: list[ThinnedRange] = []
    for camera_id, clips in sorted(by_camera.items()):
        run: list[ClipMeta] = []
        for meta in [*sorted(clips, key=lambda m: m.start_ms), None]:
            level = None if meta is None else thinned_level(meta)
            if run and level != thinned_level(run[0]):
                ranges.append(ThinnedRange(camera_id, run[0].start, run[-1].end, thinned_level(run[0]), len(run)))
                run = []
            if level:
                run.append(meta)
    return tuple(sorted(ranges, key=lambda r: (r.start, r.camera_id)))


def coverage_of(in_range: Sequence[ClipMeta], as_tokens: Iterable[ClipMeta], summary_batches: int = 0) -> Coverage:
    """Counts that add up: every clip in range is seen as tokens or summarised."""
    seen = {m.clip_id: m for m in as_tokens}
    return Coverage(
        clips_in_range=len(in_range),
        clips_as_tokens=len(seen),
        clips_summarised=len(in_range) - len(seen),
        clips_cold=sum(is_cold(m) for m in seen.values()),
        summary_batches=summary_batches,
        thinned_ranges=thinned_ranges(in_range),
    )


def event_clips(
    events: Sequence[Event], in_range: Sequence[ClipMeta], planned: set[str], activity: ActivityConfig
) -> list[ClipMeta]:
    """For every event none of whose clips is planned, its strongest clip: so the evidence names every event."""
    by_id = {m.clip_id: m for m in in_range}
    picks: dict[str, ClipMeta] = {}
    for event in events:
        clips = [by_id[c] for c in event.clip_ids if c in by_id]
        if clips and not planned.intersection(event.clip_ids):
            strongest = max(clips, key=lambda m: (clip_event_score(m, activity), -m.start_ms))
            picks[strongest.clip_id] = strongest
    return sorted(picks.values(), key=lambda m: (m.start_ms, m.camera_id))


def describe_thinning(ranges: Sequence[ThinnedRange], timezones: Mapping[str, ZoneInfo]) -> str:
    """One sentence per thinned stretch: what an answer over it could and could not see."""
    utc = ZoneInfo("UTC")
    lines = []
    for r in ranges:
        what = "fewer tokens" if r.level == FEWER else "only their activity and sound scores"
        span = describe_span(r.start, r.end, timezones.get(r.camera_id, utc))
        lines.append(f"{r.camera_id}: footage from {span} was thinned ({r.clips} clips keep {what}).")
    return "\n".join(lines)
