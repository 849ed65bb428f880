"""What the routes are given through FastAPI's Depends: the backend that acts, the settings, and the key check.

The backend is the Gateway deployment in the service; a test may inject any object with the same methods
(`app.dependency_overrides[get_backend]`), so the HTTP layer runs in-process.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.errors import Unauthorized
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


_bearer = HTTPBearer(auto_error=False)


def require_key(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer), settings: Settings = Depends(get_settings)
) -> None:
    """With an API key configured, every route but health needs `Authorization: Bearer <key>`."""
    if settings.api_key is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), settings.api_key.get_secret_value().encode()):
        raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")
