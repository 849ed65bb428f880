"""Answering a query: the time range, the planned clips (the evidence), then the LLM or the event timeline.

Times in answers always come from the store: clip headers and timeline sentences are written here from
clip metadata, never taken from the model's text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from opentelemetry import trace
from ray.serve.handle import DeploymentHandle

from pipeline.query.events import build_events
from pipeline.query.planner import QueryPlan, QueryPlanner
from pipeline.query.timeparse import TimeParseConfig, TimeRange, resolve_time_range
from pipeline.query.wording import clip_header, describe_timeline
from pipeline.records import ClipMeta
from pipeline.store.anchor_store import AnchorStore
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
class Prepared:
    """Everything decided before text is produced."""

    time_range: TimeRange
    plan: QueryPlan
    in_range: list[ClipMeta]
    timezones: dict[str, ZoneInfo]
    max_new_tokens: int

    @property
    def evidence(self) -> list[schemas.Evidence]:
        return [
            schemas.Evidence(
                camera_id=c.meta.camera_id,
                clip_id=c.meta.clip_id,
                start=c.meta.start,
                end=c.meta.end,
                activity=round(max(c.meta.scores.activity, default=0.0), 4),
                audio_salience=round(max(c.meta.scores.audio_salience, default=0.0), 4),
                video_tokens_kept=c.meta.kept_counts[0],
                audio_tokens_kept=c.meta.kept_counts[1],
            )
            for c in self.plan.clips
        ]

    @property
    def time_range_used(self) -> schemas.TimeRangeUsed:
        r = self.time_range
        return schemas.TimeRangeUsed(start=r.start, end=r.end, source=r.source, timezone=r.timezone, instant=r.instant)


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

    def prepare(self, request: schemas.QueryRequest) -> Prepared:
        cameras = self._cameras(request.cameras)
        timezones = {c: self.store.camera(c).tz for c in cameras}
        with tracer.start_as_current_span("plan", attributes={"cameras": len(cameras)}):
            time_range = self._time_range(request.question, timezones, request.start, request.end)
            in_range = [m for c in cameras for m in self.store.clips(c, time_range.start, time_range.end)]
            plan = self.planner.choose(time_range, in_range, cameras)
        max_new = request.max_new_tokens or self.settings.max_new_tokens
        return Prepared(time_range, plan, in_range, timezones, max_new)

    def events(self, camera_id: str | None, start: datetime | None, end: datetime | None) -> list[schemas.Event]:
        """The merged events of one camera (or all) in [start, end), by the same range rules as a query."""
        cameras = self._cameras([camera_id] if camera_id else None)
        time_range = self._time_range("", {c: self.store.camera(c).tz for c in cameras}, start, end)
        metas = [m for c in cameras for m in self.store.clips(c, time_range.start, time_range.end)]
        found = build_events(metas, self.activity, time_range.start, time_range.end)
        return [schemas.Event(**e.to_json()) for e in found]

    def timeline_answer(self, prepared: Prepared) -> str:
        r = prepared.time_range
        events = build_events(prepared.in_range, self.activity, r.start, r.end)
        checked = {c: 0 for c in prepared.timezones}
        for meta in prepared.in_range:
            checked[meta.camera_id] += 1
        return describe_timeline(events, r.start, r.end, checked, prepared.timezones, self.activity)

    def planned_prompt(self, question: str, prepared: Prepared) -> PlannedPrompt:
        clips = tuple(
            (c.meta.clip_id, clip_header(c.meta, prepared.timezones[c.meta.camera_id])) for c in prepared.plan.clips
        )
        return PlannedPrompt(question, clips, prepared.max_new_tokens)

    async def answer(self, request: schemas.QueryRequest) -> schemas.QueryResponse:
        """The whole answer at once: the streamed events, collected."""
        pieces: list[str] = []
        async for name, data in await self.open_stream(request):
            if name == "evidence":
                time_range, evidence = data["time_range"], data["evidence"]
            elif name == "token":
                pieces.append(data["text"])
            else:
                done = data
        return schemas.QueryResponse(answer="".join(pieces), time_range=time_range, evidence=evidence, **done)

    async def open_stream(self, request: schemas.QueryRequest) -> AsyncIterator[tuple[str, dict]]:
        """Prepare now (a bad request still gets its 4xx status), then stream (event name, data) pairs for
        Server-Sent Events: evidence first, then tokens, then done. One `query` span covers both."""
        began = time.perf_counter()
        span = tracer.start_span("query", attributes={"stream": request.stream})
        try:
            with trace.use_span(span, end_on_exit=False):
                prepared = await asyncio.to_thread(self.prepare, request)
        except BaseException:
            span.end()
            raise
        return self._events(request, prepared, began, span)

    async def _events(
        self, request: schemas.QueryRequest, prepared: Prepared, began: float, span: trace.Span
    ) -> AsyncIterator[tuple[str, dict]]:
        """The one answering path: the language model over the planned clips' tokens, or the timeline."""
        try:
            evidence = [e.model_dump(mode="json") for e in prepared.evidence]
            yield "evidence", {"time_range": prepared.time_range_used.model_dump(mode="json"), "evidence": evidence}
            if self.answerer is not None and prepared.plan.clips:
                prompt = self.planned_prompt(request.question, prepared)
                pieces = self.answerer.options(stream=True).stream.remote(prompt, current_carrier(span))
                async for piece in pieces:
                    yield "token", {"text": piece}
                full, sent = await self.answerer.usage.remote(prompt)
                source = "llm"
            else:
                yield "token", {"text": self.timeline_answer(prepared)}
                full, sent, source = prepared.plan.full_tokens, prepared.plan.tokens, "timeline"
            seconds = time.perf_counter() - began
            self.metrics.observe_query(source, seconds)
            latency = round(seconds * 1000, 1)
            yield "done", {"answer_source": source, "usage": {"full_tokens": full, "sent_tokens": sent},
                           "latency_ms": latency}  # fmt: skip
        finally:
            span.end()
