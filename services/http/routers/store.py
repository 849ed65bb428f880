"""Store maintenance: what error messages recommend (switching a namespace to another model)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.http import schemas
from services.http.dependencies import Backend, get_backend

router = APIRouter(prefix="/store", tags=["store"])


@router.post("/purge", response_model=schemas.Purged)
async def purge(backend: Backend = Depends(get_backend)) -> schemas.Purged:
    """Delete every stored clip and the namespace's model fingerprint (camera settings and streams stay), so
    the store takes tokens of another model or compressor setting."""
    return await backend.purge()
