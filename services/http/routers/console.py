"""The web console: static files shipped inside the package, served at `/` without the API key.

The page holds no data; it asks the REST API for everything with the key the user types in (kept in the
tab's sessionStorage, sent as `Authorization: Bearer`, never in a URL). A strict Content-Security-Policy
keeps the page to its own scripts and this origin (docs/architecture.md, "Console").
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

ASSETS = {  # the only files served: name -> media type
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
PUBLIC_PATHS = frozenset({"/", *(f"/console/{name}" for name in ASSETS)})
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _asset(name: str) -> Response:
    body = resources.files("services.http").joinpath("console", name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers=HEADERS)


@router.get("/")
async def index() -> Response:
    return _asset("index.html")


def _serve(name: str):
    async def asset() -> Response:
        return _asset(name)

    return asset


for _name in ASSETS:
    router.add_api_route(f"/console/{_name}", _serve(_name), methods=["GET"])
