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

from pipeline.clips import ClipWindow
from pipeline.planner import QueryPlan, QueryPlanner
from pipeline.records import ClipMeta
from pipeline.store import AnchorStore
from pipeline.timeline import build_events, describe_timeline
from pipeline.timeparse import TimeParseConfig, TimeRange, resolve_time_range
from services import schemas
from services.answerer import PlannedPrompt
from services.errors import NotFound
from services.settings import Settings
from services.telemetry import current_carrier, tracer


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


def clip_header(meta: ClipMeta | ClipWindow, tz: ZoneInfo) -> str:
    """'[lobby, 2026-11-23 14:03:00-14:03:10 Europe/Berlin]': what the model reads before a clip's tokens."""
    start, end = meta.start.astimezone(tz), meta.end.astimezone(tz)
    return f"[{meta.camera_id}, {start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S} {tz.key}]"


class QueryEngine:
    def __init__(self, settings: Settings, store: AnchorStore, answerer: DeploymentHandle | None):
        self.settings = settings
        self.store = store
        self.answerer = answerer
        self.planner = QueryPlanner(store, settings.planner_config())
        self.timeline = settings.timeline_config()
        self.time_config = TimeParseConfig(default_window=timedelta(minutes=settings.default_query_minutes))

    def prepare(self, request: schemas.QueryRequest, now: datetime | None = None) -> Prepared:
        known = self.store.cameras()
        cameras = list(dict.fromkeys(request.cameras or known))
        unknown = sorted(set(cameras) - set(known))
        if unknown:
            raise NotFound(f"unknown camera(s): {', '.join(unknown)}; known: {', '.join(known) or 'none yet'}")
        timezones = {c: self.store.camera(c).tz for c in cameras}
        zones = {tz.key for tz in timezones.values()}
        zone = zones.pop() if len(zones) == 1 else self.settings.default_timezone
        with tracer.start_as_current_span("plan", attributes={"cameras": len(cameras)}):
            time_range = resolve_time_range(
                request.question, now or datetime.now(timezone.utc), zone, request.start, request.end, self.time_config
            )
            in_range = [m for c in cameras for m in self.store.clips(c, time_range.start, time_range.end)]
            plan = self.planner.choose(time_range, in_range, cameras)
        max_new = request.max_new_tokens or self.settings.max_new_tokens
        return Prepared(time_range, plan, in_range, timezones, max_new)

    def uses_llm(self, prepared: Prepared) -> bool:
        return self.answerer is not None and bool(prepared.plan.clips)

    def timeline_answer(self, prepared: Prepared) -> str:
        r = prepared.time_range
        events = build_events(prepared.in_range, self.timeline, r.start, r.end)
        checked = {c: 0 for c in prepared.timezones}
        for meta in prepared.in_range:
            checked[meta.camera_id] += 1
        return describe_timeline(events, r.start, r.end, checked, prepared.timezones, self.timeline)

    def planned_prompt(self, question: str, prepared: Prepared) -> PlannedPrompt:
        clips = tuple(
            (c.meta.clip_id, clip_header(c.meta, prepared.timezones[c.meta.camera_id])) for c in prepared.plan.clips
        )
        return PlannedPrompt(question, clips, prepared.max_new_tokens)

    async def answer(self, request: schemas.QueryRequest) -> schemas.QueryResponse:
        with tracer.start_as_current_span("query"):
            return await self._answer(request)

    async def _answer(self, request: schemas.QueryRequest) -> schemas.QueryResponse:
        began = time.perf_counter()
        prepared = await asyncio.to_thread(self.prepare, request)
        if self.uses_llm(prepared):
            generated = await self.answerer.answer.remote(
                self.planned_prompt(request.question, prepared), current_carrier()
            )
            text, source = generated.text, "llm"
            usage = schemas.Usage(full_tokens=generated.full_tokens, sent_tokens=generated.sent_tokens)
        else:
            text, source = self.timeline_answer(prepared), "timeline"
            usage = schemas.Usage(full_tokens=prepared.plan.full_tokens, sent_tokens=prepared.plan.tokens)
        return schemas.QueryResponse(
            answer=text,
            answer_source=source,
            time_range=prepared.time_range_used,
            evidence=prepared.evidence,
            usage=usage,
            latency_ms=round((time.perf_counter() - began) * 1000, 1),
        )

    async def open_stream(self, request: schemas.QueryRequest) -> AsyncIterator[tuple[str, dict]]:
        """Prepare now (a bad request still gets its 4xx status), then stream (event name, data) pairs for
        Server-Sent Events: evidence first, then tokens, then done. One `query` span covers both."""
        began = time.perf_counter()
        span = tracer.start_span("query", attributes={"stream": True})
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
        try:
            evidence = [e.model_dump(mode="json") for e in prepared.evidence]
            yield "evidence", {"time_range": prepared.time_range_used.model_dump(mode="json"), "evidence": evidence}
            if self.uses_llm(prepared):
                prompt = self.planned_prompt(request.question, prepared)
                pieces = self.answerer.options(stream=True).stream.remote(prompt, current_carrier(span))
                async for piece in pieces:
                    yield "token", {"text": piece}
                full, sent = await self.answerer.usage.remote(prompt)
                source = "llm"
            else:
                yield "token", {"text": self.timeline_answer(prepared)}
                full, sent, source = prepared.plan.full_tokens, prepared.plan.tokens, "timeline"
            latency = round((time.perf_counter() - began) * 1000, 1)
            yield "done", {"answer_source": source, "usage": {"full_tokens": full, "sent_tokens": sent},
                           "latency_ms": latency}  # fmt: skip
        finally:
            span.end()
