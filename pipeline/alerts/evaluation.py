"""Where a rule's timeline condition holds in a stored clip: runs of matching 2-second chunks, continued from the
camera's contiguous earlier clips, that reach the rule's minimum duration inside this clip
(docs/architecture.md, "Alerts").

Stateless: everything comes from stored clip metadata, so any replica, or a restarted one, finds the same
runs with the same start times (and so the same firing ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pipeline.activity import ActivityConfig
from pipeline.alerts.rules import AlertRule
from pipeline.records import ClipMeta, to_ms


@dataclass(frozen=True)
class Match:
    """A run of matching chunks that reached the rule's duration in the evaluated clip."""

    start_ms: int
    end_ms: int
    reached_ms: int
    clip_ids: tuple[str, ...]
    scores: dict[str, float]


def chunk_scores(meta: ClipMeta) -> list[dict[str, float]]:
    """Per chunk, every score a timeline condition reads (sound is 0 for a clip without audio)."""
    return [
        {
            "activity": meta.scores.activity[c],
            "audio_salience": meta.scores.audio_salience[c] if meta.has_audio else 0.0,
            "speech": meta.scores.speech_at(c),
        }
        for c in range(meta.num_chunks)
    ]


SCORE_OF = {"motion": "activity", "sound": "audio_salience", "speech": "speech"}


@dataclass(frozen=True)
class _Chunk:
    clip_id: str
    start_ms: int
    end_ms: int
    scores: dict[str, float]
    holds: bool


def _chunks(rule: AlertRule, meta: ClipMeta, zone: ZoneInfo, activity: ActivityConfig) -> list[_Chunk]:
    """The clip's chunks, each marked whether the condition holds in it (within the schedule)."""
    level, score = rule.condition.level(activity), SCORE_OF[rule.condition.kind]
    chunks = []
    for c, scores in enumerate(chunk_scores(meta)):
        start, end = meta.chunk_span(c)
        holds = scores[score] >= level and rule.schedule.holds(start.astimezone(zone))
        chunks.append(_Chunk(meta.clip_id, to_ms(start), to_ms(end), scores, holds))
    return chunks


def _carried(rule: AlertRule, earlier: Sequence[ClipMeta], start_ms: int, zone, activity) -> list[_Chunk]:
    """The matching chunks that end exactly at `start_ms`, from contiguous earlier clips (oldest first); the
    walk back stops at a chunk that does not match, a gap, or once they last the rule's minimum duration (and
    at least one chunk: a run that began before the clip is not a new one)."""
    carried: list[_Chunk] = []
    for meta in reversed(earlier):
        if meta.end_ms != (carried[0].start_ms if carried else start_ms):
            break
        for chunk in reversed(_chunks(rule, meta, zone, activity)):
            if not chunk.holds or (carried and start_ms - chunk.end_ms >= rule.condition.min_duration_s * 1000):
                return carried
            carried.insert(0, chunk)
    return carried


def find_matches(
    rule: AlertRule, meta: ClipMeta, earlier: Sequence[ClipMeta], zone: ZoneInfo, activity: ActivityConfig
) -> list[Match]:
    """Runs of matching chunks that reach `rule.condition.min_duration_s` within `meta` (a run of any length
    when it is 0). `earlier` are the camera's clips before it, oldest first, from which a run at the clip's
    start continues; a run that reached the duration in an earlier clip has fired there already."""
    need_ms = round(rule.condition.min_duration_s * 1000)
    carried = _carried(rule, earlier, meta.start_ms, zone, activity)
    chunks = carried + _chunks(rule, meta, zone, activity)
    matches: list[Match] = []
    run: list[_Chunk] = []
    fired = False
    for i, chunk in enumerate(chunks):
        if not chunk.holds:
            run, fired = [], False
            continue
        run.append(chunk)
        before, after = chunk.start_ms - run[0].start_ms, chunk.end_ms - run[0].start_ms
        if not fired and (before < need_ms <= after or need_ms == before == 0):
            fired = True
            if i < len(carried):  # reached in an earlier clip, which fired then
                continue
            reached = chunk.end_ms if need_ms else chunk.start_ms
            matches.append(Match(run[0].start_ms, chunk.end_ms, reached, (), {}))
        if fired and matches and matches[-1].start_ms == run[0].start_ms:
            clip_ids = tuple(dict.fromkeys(c.clip_id for c in run))
            matches[-1] = Match(run[0].start_ms, chunk.end_ms, matches[-1].reached_ms, clip_ids, _peaks(run))
    return matches


def question_match(rule: AlertRule, meta: ClipMeta, probability: float, zone: ZoneInfo) -> Match | None:
    """A question holds for a whole clip when the probability of "yes" reaches its level within the schedule."""
    if probability < rule.condition.level(ActivityConfig()) or not rule.schedule.holds(meta.start.astimezone(zone)):
        return None
    return Match(meta.start_ms, meta.end_ms, meta.end_ms, (meta.clip_id,), {"probability": probability})


def _peaks(run: Sequence[_Chunk]) -> dict[str, float]:
    return {name: round(max(c.scores[name] for c in run), 4) for name in ("activity", "audio_salience", "speech")}
