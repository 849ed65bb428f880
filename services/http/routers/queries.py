"""Questions (JSON or Server-Sent Events), the event timeline, and one clip's metadata."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from services.http import schemas
from services.http.dependencies import Backend, get_backend
from services.http.errors import error_event
from services.http.validation import CameraId, ClipId

router = APIRouter(tags=["query"])


@router.post(
    "/query",
    response_model=schemas.QueryResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream is true"}},
)
async def query(
    body: schemas.QueryRequest, backend: Backend = Depends(get_backend)
) -> schemas.QueryResponse | StreamingResponse:
    if not body.stream:
        return await backend.answer(body)
    events = await backend.open_stream(body)  # errors so far are plain 4xx responses
    return StreamingResponse(_sse(events), media_type="text/event-stream")


@router.get("/events", response_model=list[schemas.Event])
async def events(
    camera_id: CameraId | None = None,
    start: schemas.QueryTime | None = Query(None),
    end: schemas.QueryTime | None = Query(None),
    backend: Backend = Depends(get_backend),
) -> list[schemas.Event]:
    return await backend.events(camera_id, start, end)


@router.get("/clips/{clip_id}", response_model=schemas.Clip)
async def clip(
    clip_id: ClipId,
    detail: Literal["tokens"] | None = Query(None, description="tokens: also what was kept (cells, indices, scores)"),
    backend: Backend = Depends(get_backend),
) -> schemas.Clip:
    return await backend.clip(clip_id, detail)


async def _sse(events: AsyncIterator[tuple[str, dict]]) -> AsyncIterator[str]:
    try:
        async for name, data in events:
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
    except Exception as error:  # the status line is gone: report in-band, then end the stream
        yield f"event: error\ndata: {json.dumps(error_event(error))}\n\n"
