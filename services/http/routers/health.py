"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, Security
from fastapi.responses import PlainTextResponse

from services.http import schemas
from services.http.dependencies import Backend, api_key_scheme, get_backend

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"model": schemas.ErrorResponse}})
async def healthz(backend: Backend = Depends(get_backend)) -> dict:
    """Liveness: 503 once the store has been unreachable for longer than `store_grace_s`."""
    await backend.check_alive()
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": schemas.ErrorResponse}})
async def readyz(backend: Backend = Depends(get_backend)) -> dict:
    await backend.check_ready()
    return {"status": "ready"}


@router.get(
    "/metrics",
    dependencies=[Security(api_key_scheme)],
    response_class=PlainTextResponse,
    responses={status: {"model": schemas.ErrorResponse} for status in (401, 413, 503)},
)
async def metrics(backend: Backend = Depends(get_backend)) -> Response:
    body, content_type = await backend.metrics_text()
    return Response(body, media_type=content_type)
