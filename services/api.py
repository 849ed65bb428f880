"""The REST API (v1) as a FastAPI app built over a Gateway: routes validate and translate, the gateway acts."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services import schemas
from services.errors import (
    Unauthorized,
    UnsupportedMediaType,
    error_body,
    install_error_handlers,
    status_of,
    unwrap,
)

if TYPE_CHECKING:
    from services.gateway import Gateway

ERRORS = {status: {"model": schemas.ErrorResponse} for status in (400, 401, 404, 409, 413, 415, 422, 502, 503)}
_bearer = HTTPBearer(auto_error=False)


def create_api(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="omnisift",
        version="1",
        description="Ask what happened on your cameras; answers cite the stored clips and times they used.",
    )
    install_error_handlers(app)

    def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        key = gateway.settings.api_key
        if key is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERRORS)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": schemas.ErrorResponse}})
    async def readyz() -> dict:
        await gateway.check_ready()
        return {"status": "ready"}

    @app.get("/metrics", tags=["health"], dependencies=[Depends(require_key)], response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, content_type = await gateway.metrics_text()
        return Response(body, media_type=content_type)

    @v1.post("/streams", status_code=201, response_model=schemas.Stream, tags=["streams"])
    async def add_stream(body: schemas.StreamCreate) -> schemas.Stream:
        return await gateway.add_stream(body)

    @v1.get("/streams", response_model=list[schemas.Stream], tags=["streams"])
    async def list_streams() -> list[schemas.Stream]:
        return await gateway.list_streams()

    @v1.get("/streams/{camera_id}", response_model=schemas.StreamStatus, tags=["streams"])
    async def stream_status(camera_id: str) -> schemas.StreamStatus:
        return await gateway.stream_status(camera_id)

    @v1.delete("/streams/{camera_id}", status_code=204, tags=["streams"])
    async def remove_stream(camera_id: str) -> Response:
        await gateway.remove_stream(camera_id)
        return Response(status_code=204)

    @v1.post("/files", status_code=202, response_model=schemas.JobAccepted, tags=["files"])
    async def upload(request: Request) -> schemas.JobAccepted:
        """multipart/form-data: `file`, `camera_id`, optional `start_time` (ISO 8601) and `timezone`."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise UnsupportedMediaType(
                f"upload as multipart/form-data (file, camera_id), not {content_type or 'nothing'}"
            )
        return await gateway.upload(request)

    @v1.get("/jobs/{job_id}", response_model=schemas.Job, tags=["files"])
    async def job(job_id: str) -> schemas.Job:
        return await gateway.job(job_id)

    @v1.post(
        "/query",
        response_model=schemas.QueryResponse,
        tags=["query"],
        responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream is true"}},
    )
    async def query(body: schemas.QueryRequest) -> schemas.QueryResponse | StreamingResponse:
        if not body.stream:
            return await gateway.queries.answer(body)
        events = await gateway.queries.open_stream(body)  # errors so far are plain 4xx responses
        return StreamingResponse(_sse(events), media_type="text/event-stream")

    @v1.get("/events", response_model=list[schemas.Event], tags=["query"])
    async def events(
        camera_id: str | None = None,
        start: schemas.UtcTime | None = Query(None),
        end: schemas.UtcTime | None = Query(None),
    ) -> list[schemas.Event]:
        return await gateway.events(camera_id, start, end)

    @v1.get("/clips/{clip_id}", response_model=schemas.Clip, tags=["query"])
    async def clip(clip_id: str) -> schemas.Clip:
        return await gateway.clip(clip_id)

    app.include_router(v1)
    return app


async def _sse(events: AsyncIterator[tuple[str, dict]]) -> AsyncIterator[str]:
    try:
        async for name, data in events:
            yield f"event: {name}\ndata: {json.dumps(data)}\n\n"
    except Exception as error:  # the status line is gone: report in-band, then end the stream
        _, code = status_of(error)
        message = "internal error; see the service log" if code == "internal_error" else str(unwrap(error))
        yield f"event: error\ndata: {json.dumps(error_body(code, message))}\n\n"
