"""Every deliberate error type mapped to an HTTP status and a code, in one place; one JSON error shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayTaskError
from starlette.exceptions import HTTPException as StarletteHTTPException

from omnisift_core.errors import InvalidConfig, InvalidTokens, ModelUnavailable, OmniSiftError
from pipeline.errors import (
    AlreadyExists,
    BudgetTooSmall,
    ClipNotFound,
    FingerprintMismatch,
    ForbiddenSource,
    InvalidMedia,
    InvalidRecord,
    InvalidRule,
    InvalidTimeRange,
    MediaTooLarge,
    PipelineError,
    SchemaMismatch,
    SourceUnavailable,
    StillNotFound,
    StoreError,
    StoreUnavailable,
    UnknownFiring,
    UnknownJob,
    UnknownRule,
    UnknownStream,
)
from pipeline.redaction import redact_text
from services.errors import (
    CameraLimitReached,
    Conflict,
    InvalidManifest,
    NotAlive,
    NotFound,
    NotReady,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching class decides.
STATUS: list[tuple[type[Exception], int, str]] = [
    (CameraLimitReached, 409, "camera_limit"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (UnsupportedMediaType, 415, "unsupported_media_type"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (Unauthorized, 401, "unauthorized"),
    (NotReady, 503, "not_ready"),
    (NotAlive, 503, "store_down"),
    (MediaTooLarge, 413, "media_too_large"),
    (ForbiddenSource, 400, "forbidden_source"),
    (InvalidMedia, 422, "invalid_media"),
    (SourceUnavailable, 502, "source_unavailable"),
    (StillNotFound, 404, "still_not_found"),
    (ClipNotFound, 404, "clip_not_found"),
    (UnknownStream, 404, "unknown_stream"),
    (UnknownJob, 404, "unknown_job"),
    (UnknownRule, 404, "unknown_rule"),
    (UnknownFiring, 404, "unknown_firing"),
    (InvalidRule, 400, "invalid_rule"),
    (AlreadyExists, 409, "already_exists"),
    (FingerprintMismatch, 409, "fingerprint_mismatch"),
    (StoreUnavailable, 503, "store_unavailable"),
    (InvalidTimeRange, 400, "invalid_time_range"),
    (BudgetTooSmall, 422, "budget_too_small"),
    (InvalidRecord, 422, "invalid_record"),
    (InvalidTokens, 422, "invalid_input"),
    (InvalidConfig, 400, "invalid_config"),
    (ModelUnavailable, 503, "model_unavailable"),
    (InvalidManifest, 400, "invalid_manifest"),
    (SchemaMismatch, 409, "schema_mismatch"),
    (StoreError, 503, "store_busy"),  # e.g. too many concurrent modifications: try again
    (PipelineError, 400, "bad_request"),
]
DOCUMENTED = sorted({status for _, status, _ in STATUS})


def unwrap(error: BaseException) -> BaseException:
    """The error a deployment raised, not Ray's wrapper around it (whose text carries a remote traceback)."""
    while isinstance(error, RayTaskError) and error.cause is not None:
        error = error.cause
    return error


def status_of(error: BaseException) -> tuple[int, str]:
    error = unwrap(error)
    for kind, status, code in STATUS:
        if isinstance(error, kind):
            return status, code
    return 500, "internal_error"


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": redact_text(message)}}


def error_response(error: BaseException, headers: dict[str, str] | None = None) -> JSONResponse:
    """The response to a deliberate error: its status and code from STATUS, its (redacted) message."""
    status, code = status_of(error)
    return JSONResponse(error_body(code, str(unwrap(error))), status_code=status, headers=headers)


def error_event(error: BaseException) -> dict:
    """The error body of a failure after a streamed response has begun (its status line is already sent)."""
    _, code = status_of(error)
    message = "internal error; see the service log" if code == "internal_error" else str(unwrap(error))
    return error_body(code, message)


def _field(location: tuple) -> str:
    """('body', 'retention', 'max_age_hours') -> 'retention.max_age_hours': the field, wherever it was sent."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OmniSiftError)
    async def deliberate(_: Request, error: OmniSiftError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in error.errors())
        return JSONResponse(error_body("invalid_request", reasons or "invalid request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        if isinstance(unwrap(error), OmniSiftError):
            return await deliberate(request, unwrap(error))
        log.exception("unexpected error")
        return JSONResponse(error_body("internal_error", "internal error; see the service log"), status_code=500)
