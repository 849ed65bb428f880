"""Answering a query: the time range, the planned clips (the evidence), then the LLM or the event timeline.

Times in answers always come from the store: clip headers and timeline sentences are written here from
clip metadata, never taken from the model's text. Over a range longer than the token budget holds, an LLM answer
is map-reduce: batches of clips are summarised first (progress events), then the final prompt holds the
summaries and the strongest events' tokens (docs/architecture.md, "Questions over hours").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from opentelemetry import trace
from ray.serve.handle import DeploymentHandle

from pipeline.activity import ActivityConfig
from pipeline.query.coverage import LEVEL_NAMES, coverage_of, describe_thinning, event_clips
from pipeline.query.events import Event, build_events
from pipeline.query.planner import PlannedClip, QueryPlan, QueryPlanner
from pipeline.query.recent_day import most_recent_day_with_footage
from pipeline.query.timeparse import TimeParseConfig, TimeRange, resolve_time_range
from pipeline.query.wording import clip_header, describe_span, describe_timeline
from pipeline.records import ClipMeta
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.tier_state import is_cold, thinned_level
from services.errors import NotFound
from services.http import schemas
from services.metrics import Metrics
from services.settings import Settings
from services.telemetry import current_carrier, tracer


@dataclass(frozen=True)
class PlannedPrompt:
    """What the gateway planned: the question and, per clip, its id and time header, in prompt order."""

    question: str
    clips: tuple[tuple[str, str], ...]  # (clip_id, header)
    max_new_tokens: int


@dataclass(frozen=True)
class PromptFacts:
    """What the answerer reports before its text: the prompt's size and what reading its clips' tokens cost."""

    full_tokens: int
    sent_tokens: int
    read_ms: float
    cold_read_ms: float


@dataclass(frozen=True)
class Prepared:
    """Everything decided before text is produced."""

    time_range: TimeRange
    plan: QueryPlan
    in_range: list[ClipMeta]
    timezones: dict[str, ZoneInfo]
    max_new_tokens: int
    events: list[Event]
    plan_ms: float
    activity: ActivityConfig

    @property
    def evidence(self) -> list[schemas.Evidence]:
        """The planned clips, then for every event none of whose clips is planned its strongest clip: the
        evidence names every event in the range."""
        planned = {c.meta.clip_id for c in self.plan.clips}
        summary = event_clips(self.events, self.in_range, planned, self.activity)
        rows = [(c.meta, "tokens") for c in self.plan.clips] + [(m, "summary") for m in summary]
        return [_evidence(meta, seen_as) for meta, seen_as in sorted(rows, key=lambda r: (r[0].start_ms, r[1]))]

    @property
    def time_range_used(self) -> schemas.TimeRangeUsed:
        r = self.time_range
        return schemas.TimeRangeUsed(
            start=r.start, end=r.end, source=r.source, timezone=r.timezone, instant=r.instant, asked_day=r.asked_day
        )


def _evidence(meta: ClipMeta, seen_as: str) -> schemas.Evidence:
    activity, salience = meta.scores.peaks()
    return schemas.Evidence(
        camera_id=meta.camera_id,
        clip_id=meta.clip_id,
        start=meta.start,
        end=meta.end,
        activity=activity,
        audio_salience=salience,
        video_tokens_kept=meta.kept_counts[0],
        audio_tokens_kept=meta.kept_counts[1],
        seen_as=seen_as,
        tier="cold" if is_cold(meta) else "hot",
        thinned=LEVEL_NAMES[thinned_level(meta)],
    )


SUMMARY_QUESTION = "Describe in one or two sentences what happens in these clips."


class QueryEngine:
    """Answers questions and lists events over the store; the language model only when an answerer is given."""

    def __init__(self, settings: Settings, store: AnchorStore, answerer: DeploymentHandle | None, metrics: Metrics):
        self.settings = settings
        self.store = store
        self.answerer = answerer
        self.metrics = metrics
        self.activity = settings.activity_config()
        self.planner = QueryPlanner(store, settings.planner_config())
        self.time_config = TimeParseConfig(default_window=timedelta(minutes=settings.default_query_minutes))

    def _cameras(self, asked: list[str] | None) -> list[str]:
        known = self.store.cameras()
        cameras = list(dict.fromkeys(asked or known))
        unknown = sorted(set(cameras) - set(known))
        if unknown:
            raise NotFound(f"unknown camera(s): {', '.join(unknown)}; known: {', '.join(known) or 'none yet'}")
        return cameras

    def _time_range(
        self, question: str, timezones: dict[str, ZoneInfo], start: datetime | None, end: datetime | None
    ) -> TimeRange:
        """The range asked for: explicit fields, else the question's words, else the default window; read in
        the cameras' timezone when they share one."""
        zones = {tz.key for tz in timezones.values()}
        zone = zones.pop() if len(zones) == 1 else self.settings.default_timezone
        return resolve_time_range(question, datetime.now(timezone.utc), zone, start, end, self.time_config)

    def _with_footage(self, time_range: TimeRange, cameras: list[str]) -> TimeRange:
        """A clock time asked without a date moves to the most recent day with footage at that time."""
        if time_range.clock is None:
            return time_range
        oldest = [u.oldest for u in (self.store.usage(c) for c in cameras) if u.oldest is not None]

        def has_footage(start: datetime, end: datetime) -> bool:
            return any(self.store.clips(c, start, end) for c in cameras)

        now = datetime.now(timezone.utc)
        return most_recent_day_with_footage(time_range, has_footage, now, min(oldest, default=None))

    def prepare(self, request: schemas.QueryRequest) -> Prepared:
        began = time.perf_counter()
        cameras = self._cameras(request.cameras)
        timezones = {c: self.store.camera(c).tz for c in cameras}
        with tracer.start_as_current_span("plan", attributes={"cameras": len(cameras)}):
            time_range = self._time_range(request.question, timezones, request.start, request.end)
            time_range = self._with_footage(time_range, cameras)
            in_range = [m for c in cameras for m in self.store.clips(c, time_range.start, time_range.end)]
            plan = self.planner.choose(time_range, in_range, cameras, timezones)
            events = build_events(in_range, self.activity, time_range.start, time_range.end)
        max_new = request.max_new_tokens or self.settings.max_new_tokens
        plan_ms = (time.perf_counter() - began) * 1000
        return Prepared(time_range, plan, in_range, timezones, max_new, events, plan_ms, self.activity)

    def events(self, camera_id: str | None, start: datetime | None, end: datetime | None) -> list[schemas.Event]:
        """The merged events of one camera (or all) in [start, end), by the same range rules as a query."""
        cameras = self._cameras([camera_id] if camera_id else None)
        time_range = self._time_range("", {c: self.store.camera(c).tz for c in cameras}, start, end)
        metas = [m for c in cameras for m in self.store.clips(c, time_range.start, time_range.end)]
        found = build_events(metas, self.activity, time_range.start, time_range.end)
        return [schemas.Event(**e.to_json()) for e in found]

    def timeline_answer(self, prepared: Prepared) -> str:
        r = prepared.time_range
        checked = {c: 0 for c in prepared.timezones}
        for meta in prepared.in_range:
            checked[meta.camera_id] += 1
        return describe_timeline(prepared.events, r.start, r.end, checked, prepared.timezones, self.activity)

    def notes(self, prepared: Prepared) -> str:
        """What the answer must say besides itself: another day answered, or thinned footage in the range."""
        lines = []
        r = prepared.time_range
        if r.asked_day is not None:
            zone = ZoneInfo(r.timezone)
            day = r.instant.astimezone(zone).date()
            lines.append(
                f"No footage at {r.clock:%H:%M} on {r.asked_day} ({r.timezone}); answering from {day}, the most "
                "recent day with footage at that time."
            )
        thinned = coverage_of(prepared.in_range, ()).thinned_ranges
        if thinned:
            lines.append(describe_thinning(thinned, prepared.timezones))
        return "\n".join(lines)

    def planned_prompt(self, question: str, prepared: Prepared, clips: tuple[PlannedClip, ...] | None = None):
        clips = prepared.plan.clips if clips is None else clips
        headers = tuple((c.meta.clip_id, clip_header(c.meta, prepared.timezones[c.meta.camera_id])) for c in clips)
        return PlannedPrompt(question, headers, prepared.max_new_tokens)

    async def answer(self, request: schemas.QueryRequest) -> schemas.QueryResponse:
        """The whole answer at once: the streamed events, collected (progress events are left out)."""
        pieces: list[str] = []
        async for name, data in await self.open_stream(request):
            if name == "evidence":
                time_range, evidence = data["time_range"], data["evidence"]
            elif name == "token":
                pieces.append(data["text"])
            elif name == "done":
                done = data
        return schemas.QueryResponse(answer="".join(pieces), time_range=time_range, evidence=evidence, **done)

    async def open_stream(self, request: schemas.QueryRequest) -> AsyncIterator[tuple[str, dict]]:
        """Prepare now (a bad request still gets its 4xx status), then stream (event name, data) pairs for
        Server-Sent Events: evidence first, then progress (summaries) and tokens, then done. One `query` span
        covers both."""
        began = time.perf_counter()
        span = tracer.start_span("query", attributes={"stream": request.stream})
        try:
            with trace.use_span(span, end_on_exit=False):
                prepared = await asyncio.to_thread(self.prepare, request)
        except BaseException:
            span.end()
            raise
        return self._events(request, prepared, began, span)

    def _batches(self, prepared: Prepared) -> list[QueryPlan]:
        """Consecutive stretches of the range, one per summary, each planned within the token budget; none when
        the plan already holds every clip that has tokens."""
        with_tokens = [m for m in prepared.in_range if m.kept_tokens and thinned_level(m) < 2]
        if len(prepared.plan.clips) >= len(with_tokens) or self.settings.summary_batches == 0:
            return []
        with_tokens.sort(key=lambda m: (m.start_ms, m.camera_id))
        cost = sum(self.planner.clip_tokens(m, prepared.timezones) for m in with_tokens)
        count = min(self.settings.summary_batches, -(-cost // self.planner.config.token_budget), len(with_tokens))
        size = -(-len(with_tokens) // count)
        plans = []
        for first in range(0, len(with_tokens), size):
            group = with_tokens[first : first + size]
            stretch = replace(prepared.time_range, start=group[0].start, end=group[-1].end, instant=None)
            plans.append(self.planner.choose(stretch, group, prepared.plan.cameras, prepared.timezones))
        return plans

    async def _generate(self, prompt: PlannedPrompt, span: trace.Span) -> AsyncIterator[str | PromptFacts]:
        async for piece in self.answerer.options(stream=True).stream.remote(prompt, current_carrier(span)):
            yield piece

    async def _events(
        self, request: schemas.QueryRequest, prepared: Prepared, began: float, span: trace.Span
    ) -> AsyncIterator[tuple[str, dict]]:
        """The one answering path: the language model over the planned clips' tokens (after batch summaries
        when the range holds more than one prompt), or the timeline."""
        try:
            evidence = [e.model_dump(mode="json") for e in prepared.evidence]
            yield "evidence", {"time_range": prepared.time_range_used.model_dump(mode="json"), "evidence": evidence}
            notes = self.notes(prepared)
            if notes:
                yield "token", {"text": notes + "\n"}
            read_ms = cold_ms = 0.0
            batches: list[QueryPlan] = []
            as_tokens: list[ClipMeta] = [c.meta for c in prepared.plan.clips]
            if self.answerer is not None and prepared.plan.clips:
                batches = self._batches(prepared)
                summaries, full, sent = [], 0, 0
                for number, batch in enumerate(batches, 1):
                    prompt = replace(self.planned_prompt(SUMMARY_QUESTION, prepared, batch.clips),
                                     max_new_tokens=self.settings.summary_tokens)  # fmt: skip
                    text = []
                    async for piece in self._generate(prompt, span):
                        if isinstance(piece, PromptFacts):
                            full, sent = full + piece.full_tokens, sent + piece.sent_tokens
                            read_ms, cold_ms = read_ms + piece.read_ms, cold_ms + piece.cold_read_ms
                        else:
                            text.append(piece)
                    zone = prepared.timezones.get(batch.clips[0].meta.camera_id, ZoneInfo("UTC"))
                    summaries.append(f"[{describe_span(batch.time_range.start, batch.time_range.end, zone)}] "
                                     + "".join(text).strip())  # fmt: skip
                    as_tokens += [c.meta for c in batch.clips]
                    yield "progress", {"stage": "summaries", "done": number, "total": len(batches)}
                question, final = request.question, prepared.plan.clips
                if summaries:
                    question = "Summaries of the footage, in time order:\n" + "\n".join(summaries) + "\n\n" + question
                    budget = self.planner.config.token_budget - len(question.encode())
                    final = self._top_events(prepared, budget)
                    yield "progress", {"stage": "answer", "done": len(batches), "total": len(batches)}
                async for piece in self._generate(self.planned_prompt(question, prepared, final), span):
                    if isinstance(piece, PromptFacts):
                        full, sent = full + piece.full_tokens, sent + piece.sent_tokens
                        read_ms, cold_ms = read_ms + piece.read_ms, cold_ms + piece.cold_read_ms
                    else:
                        yield "token", {"text": piece}
                source = "llm"
            else:
                yield "token", {"text": self.timeline_answer(prepared)}
                full, sent, source = prepared.plan.full_tokens, prepared.plan.tokens, "timeline"
            seconds = time.perf_counter() - began
            self.metrics.observe_query(source, seconds)
            latency = round(seconds * 1000, 1)
            coverage = coverage_of(prepared.in_range, as_tokens, len(batches)).to_json()
            coverage = schemas.Coverage(**coverage).model_dump(mode="json")
            breakdown = {"plan_ms": round(prepared.plan_ms, 1), "token_read_ms": round(read_ms, 1),
                         "cold_read_ms": round(cold_ms, 1),
                         "answer_ms": round(max(0.0, latency - prepared.plan_ms - read_ms), 1)}  # fmt: skip
            yield "done", {"answer_source": source, "usage": {"full_tokens": full, "sent_tokens": sent},
                           "latency_ms": latency, "coverage": coverage, "latency_breakdown": breakdown}  # fmt: skip
        finally:
            span.end()

    def _top_events(self, prepared: Prepared, budget: int) -> tuple[PlannedClip, ...]:
        """The final prompt's clips after summaries: the plan again, within what the summaries left."""
        planner = QueryPlanner(self.store, replace(self.planner.config, token_budget=max(0, budget)))
        return planner.choose(prepared.time_range, prepared.in_range, prepared.plan.cameras, prepared.timezones).clips
