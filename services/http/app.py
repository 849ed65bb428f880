"""The REST API (v1): a FastAPI app over a backend (the Gateway deployment), one router per resource.

Routes validate and translate; the backend acts. Errors map to HTTP in services.http.errors, one shape.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from services.http import schemas
from services.http.dependencies import Backend, require_key
from services.http.errors import DOCUMENTED, install_error_handlers
from services.http.routers import files, health, queries, store, streams
from services.settings import Settings

ERRORS = {status: {"model": schemas.ErrorResponse} for status in DOCUMENTED}


def create_api(backend: Backend, settings: Settings) -> FastAPI:
    app = FastAPI(
        title="omnisift",
        version="1",
        description="Ask what happened on your cameras; answers cite the stored clips and times they used.",
    )
    app.state.backend = backend
    app.state.settings = settings
    install_error_handlers(app)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERRORS)
    for resource in (streams, files, queries, store):
        v1.include_router(resource.router)
    app.include_router(health.router)
    app.include_router(v1)
    return app
