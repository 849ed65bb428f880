"""The REST API (v1): a FastAPI app over a backend (the Gateway deployment), one router per resource.

Routes validate and translate; the backend acts. Before any route reads a body, services.http.admission
checks the API key and then the body's size. Errors map to HTTP in services.http.errors, one shape.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Security
from starlette.types import Scope

from services.http import schemas
from services.http.admission import ApiKeyCheck, BodyLimit, BodySizeLimit, route_path
from services.http.dependencies import Backend, api_key_scheme
from services.http.errors import DOCUMENTED, install_error_handlers
from services.http.routers import alerts, console, files, health, inspection, queries, store, streams
from services.settings import Settings

ERRORS = {status: {"model": schemas.ErrorResponse} for status in DOCUMENTED}
HEALTH = frozenset({"/healthz", "/readyz"})  # open to probes whatever the key
UPLOADS = "/v1/files"


def create_api(backend: Backend, settings: Settings) -> FastAPI:
    app = FastAPI(
        title="omnisift",
        version="1",
        description="Ask what happened on your cameras; answers cite the stored clips and times they used.",
    )
    app.state.backend = backend
    app.state.settings = settings
    install_error_handlers(app)
    v1 = APIRouter(prefix="/v1", dependencies=[Security(api_key_scheme)], responses=ERRORS)
    for resource in (streams, files, queries, inspection, store, alerts):
        v1.include_router(resource.router)
    app.include_router(health.router)
    app.include_router(v1)
    app.include_router(console.router)
    # The last added runs first: the key, then the body's size, then the routes.
    app.add_middleware(BodySizeLimit, limit_for=body_limits(settings))
    key = settings.api_key.get_secret_value() if settings.api_key else None
    public = HEALTH | console.PUBLIC_PATHS | (docs_paths(app) if settings.public_docs else set())
    app.add_middleware(ApiKeyCheck, key=key, public=public)
    return app


def body_limits(settings: Settings) -> Callable[[Scope], BodyLimit]:
    """Uploads are limited by max_upload_bytes (plus the form around the file); every other body is JSON."""
    upload = BodyLimit(settings.max_upload_bytes + files.FORM_OVERHEAD, "max_upload_bytes")
    json_body = BodyLimit(settings.max_json_bytes, "max_json_bytes")

    def limit_for(scope: Scope) -> BodyLimit:
        return upload if scope["method"] == "POST" and route_path(scope) == UPLOADS else json_body

    return limit_for


def docs_paths(app: FastAPI) -> frozenset[str]:
    paths = (app.docs_url, app.redoc_url, app.openapi_url)
    redirect = app.swagger_ui_oauth2_redirect_url if app.docs_url else None
    return frozenset(p for p in (*paths, redirect) if p)
