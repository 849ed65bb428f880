"""What the routes are given through FastAPI's Depends: the backend that acts and the settings (and the key's
documentation: the key itself is checked before the routes, in services.http.admission).

The backend is the Gateway deployment in the service; a test may inject any object with the same methods
(`app.dependency_overrides[get_backend]`), so the HTTP layer runs in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fastapi import Request
from fastapi.security import HTTPBearer

from services.http import schemas
from services.settings import Settings


class Backend(Protocol):
    """Everything the REST API asks of the service."""

    async def check_alive(self) -> None: ...
    async def check_ready(self) -> None: ...
    async def metrics_text(self) -> tuple[bytes, str]: ...
    async def add_stream(self, body: schemas.StreamCreate) -> schemas.Stream: ...
    async def list_streams(self) -> list[schemas.Stream]: ...
    async def stream_status(self, camera_id: str) -> schemas.StreamStatus: ...
    async def remove_stream(self, camera_id: str) -> None: ...
    async def upload(self, form: schemas.UploadForm, path: Path) -> schemas.JobAccepted: ...
    async def job(self, job_id: str) -> schemas.Job: ...
    async def cancel_job(self, job_id: str) -> schemas.Job: ...
    async def answer(self, request: schemas.QueryRequest) -> schemas.QueryResponse: ...
    async def open_stream(self, request: schemas.QueryRequest) -> AsyncIterator[tuple[str, dict]]: ...
    async def events(
        self, camera_id: str | None, start: datetime | None, end: datetime | None
    ) -> list[schemas.Event]: ...
    async def clip(self, clip_id: str) -> schemas.Clip: ...
    async def purge(self) -> schemas.Purged: ...


def get_backend(request: Request) -> Backend:
    return request.app.state.backend


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# Documents the key in the OpenAPI schema (and the docs' Authorize button). The key itself is checked by
# services.http.admission before the body is read, for every route but health, so this never refuses.
api_key_scheme = HTTPBearer(
    auto_error=False, description="with an API key configured: `Authorization: Bearer <key>` on every route but health"
)
