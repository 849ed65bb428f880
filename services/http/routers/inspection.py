"""What the console looks at: cameras with their stored extent, clip summaries along a timeline, a clip's still."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from services.http import schemas
from services.http.dependencies import Backend, get_backend
from services.http.validation import CameraId, ClipId

router = APIRouter(tags=["inspection"])
JPEG = {200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}, "description": "JPEG"}}


@router.get("/cameras", response_model=list[schemas.Camera])
async def cameras(backend: Backend = Depends(get_backend)) -> list[schemas.Camera]:
    """Cameras with clips or settings, and configured streams, each with what the store holds of it."""
    return await backend.cameras()


@router.get("/clips", response_model=list[schemas.ClipSummary])
async def clip_list(
    camera_id: CameraId,
    start: Annotated[schemas.QueryTime, Query()],
    end: Annotated[schemas.QueryTime, Query()],
    backend: Backend = Depends(get_backend),
) -> list[schemas.ClipSummary]:
    """The camera's clips overlapping [start, end) (at most 24 h), oldest first."""
    return await backend.clip_list(camera_id, start, end)


@router.get("/clips/{clip_id}/still", response_class=Response, responses=JPEG)
async def clip_still(clip_id: ClipId, backend: Backend = Depends(get_backend)) -> Response:
    """The clip's still: one frame as a small JPEG (its kept cells: GET /v1/clips/{clip_id}?detail=tokens)."""
    jpeg = await backend.clip_still(clip_id)  # no-cache: re-ingesting footage replaces a clip id's still
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})
