"""Alert rules (create, list, get, replace, delete), their firings, every firing since a time, one firing's
evidence and delivery, and the firings as Server-Sent Events that resume from Last-Event-ID
(docs/architecture.md, "Alerts")."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from services.http import alert_schemas as api
from services.http.dependencies import Backend, get_backend
from services.http.schemas import QueryTime

router = APIRouter(tags=["alerts"])
Limit = Query(100, ge=1, le=1000, description="at most this many, oldest first")
Since = Query(None, description="firings whose footage starts at or after this time")


@router.post("/alerts", status_code=201, response_model=api.AlertRuleOut)
async def create_rule(body: api.AlertRuleIn, backend: Backend = Depends(get_backend)) -> api.AlertRuleOut:
    return await backend.alerts.create(body)


@router.get("/alerts", response_model=list[api.AlertRuleOut])
async def list_rules(backend: Backend = Depends(get_backend)) -> list[api.AlertRuleOut]:
    return await backend.alerts.list()


@router.get("/alerts/{rule_id}", response_model=api.AlertRuleOut)
async def get_rule(rule_id: api.RuleId, backend: Backend = Depends(get_backend)) -> api.AlertRuleOut:
    return await backend.alerts.get(rule_id)


@router.put("/alerts/{rule_id}", response_model=api.AlertRuleOut)
async def replace_rule(
    rule_id: api.RuleId, body: api.AlertRuleIn, backend: Backend = Depends(get_backend)
) -> api.AlertRuleOut:
    return await backend.alerts.update(rule_id, body)


@router.delete("/alerts/{rule_id}", status_code=204)
async def delete_rule(rule_id: api.RuleId, backend: Backend = Depends(get_backend)) -> Response:
    await backend.alerts.delete(rule_id)
    return Response(status_code=204)


@router.get("/alerts/{rule_id}/firings", response_model=list[api.FiringOut])
async def rule_firings(
    rule_id: api.RuleId,
    since: QueryTime | None = Since,
    limit: int = Limit,
    backend: Backend = Depends(get_backend),
) -> list[api.FiringOut]:
    return await backend.alerts.firings(rule_id, since, limit, None)


@router.get("/firings", response_model=list[api.FiringOut])
async def firings(
    since: QueryTime | None = Since,
    limit: int = Limit,
    delivery: Literal["dead"] | None = Query(None, description="dead: the dead-lettered firings"),
    backend: Backend = Depends(get_backend),
) -> list[api.FiringOut]:
    return await backend.alerts.firings(None, since, limit, delivery)


@router.get(
    "/firings/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event `firing`, id = the log entry id"}},
)
async def firing_stream(
    last_event_id: api.EventId | None = Header(None, description="resume after this event (sent by SSE clients)"),
    backend: Backend = Depends(get_backend),
) -> StreamingResponse:
    events = await backend.alerts.firing_events(last_event_id)  # refusals so far are plain 4xx/5xx responses
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/firings/{firing_id}", response_model=api.FiringOut)
async def firing(firing_id: api.FiringId, backend: Backend = Depends(get_backend)) -> api.FiringOut:
    return await backend.alerts.firing(firing_id)
