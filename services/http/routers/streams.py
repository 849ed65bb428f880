"""Cameras: add (pull or push), list, status, remove."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from services.http import schemas
from services.http.dependencies import Backend, get_backend
from services.http.validation import CameraId

router = APIRouter(prefix="/streams", tags=["streams"])


@router.post("", status_code=201, response_model=schemas.Stream)
async def add_stream(body: schemas.StreamCreate, backend: Backend = Depends(get_backend)) -> schemas.Stream:
    return await backend.add_stream(body)


@router.get("", response_model=list[schemas.Stream])
async def list_streams(backend: Backend = Depends(get_backend)) -> list[schemas.Stream]:
    return await backend.list_streams()


@router.get("/{camera_id}", response_model=schemas.StreamStatus)
async def stream_status(camera_id: CameraId, backend: Backend = Depends(get_backend)) -> schemas.StreamStatus:
    return await backend.stream_status(camera_id)


@router.delete("/{camera_id}", status_code=204)
async def remove_stream(camera_id: CameraId, backend: Backend = Depends(get_backend)) -> Response:
    await backend.remove_stream(camera_id)
    return Response(status_code=204)
