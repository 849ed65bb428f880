"""File uploads (multipart/form-data, size-limited while streaming to disk) and their ingest jobs."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from pipeline.errors import InvalidMedia
from services.errors import PayloadTooLarge, UnsupportedMediaType
from services.http import schemas
from services.http.dependencies import Backend, get_backend, get_settings
from services.http.validation import JobId
from services.settings import Settings

router = APIRouter(tags=["files"])
COPY_CHUNK = 1 << 20
FORM_OVERHEAD = 1 << 20  # multipart boundaries and fields beside the file


def _form_schema() -> dict:
    """The multipart body in OpenAPI: the file, then UploadForm's fields (optional ones without their null)."""
    form = schemas.UploadForm.model_json_schema()
    fields = {}
    for name, field in form["properties"].items():
        choices = [c for c in field.get("anyOf", [field]) if c.get("type") != "null"]
        fields[name] = {k: v for k, v in (field | choices[0]).items() if k not in ("anyOf", "default", "title")}
    return {
        "type": "object",
        "required": ["file", *form["required"]],
        "properties": {"file": {"type": "string", "format": "binary", "description": "the video"}, **fields},
    }


@router.post(
    "/files",
    status_code=202,
    response_model=schemas.JobAccepted,
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _form_schema()}}}},
)
async def upload(
    request: Request, backend: Backend = Depends(get_backend), settings: Settings = Depends(get_settings)
) -> schemas.JobAccepted:
    """multipart/form-data: `file`, `camera_id`, optional `start_time` (ISO 8601) and `timezone`."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(f"upload as multipart/form-data (file, camera_id), not {content_type or 'nothing'}")
    limit = settings.max_upload_bytes  # the whole body's, with FORM_OVERHEAD, is checked before (admission)
    async with request.form(max_files=1, max_fields=8) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise RequestValidationError([{"loc": ("file",), "msg": "a video file is required", "type": "missing"}])
        fields = _form_fields({k: v for k, v in form.items() if k != "file" and isinstance(v, str)})
        path = settings.uploads_dir / f"{uuid.uuid4().hex}{Path(file.filename or '').suffix[:16]}"
        await asyncio.to_thread(_copy_limited, file, path, limit)
    return await backend.upload(fields, path)


@router.get("/jobs/{job_id}", response_model=schemas.Job)
async def job(job_id: JobId, backend: Backend = Depends(get_backend)) -> schemas.Job:
    return await backend.job(job_id)


@router.delete("/jobs/{job_id}", response_model=schemas.Job)
async def cancel_job(job_id: JobId, backend: Backend = Depends(get_backend)) -> schemas.Job:
    """Stop a queued or running job; the clips it stored stay. 409 if it has already finished."""
    return await backend.cancel_job(job_id)


def _form_fields(values: dict[str, str]) -> schemas.UploadForm:
    try:
        return schemas.UploadForm.model_validate({k: v for k, v in values.items() if v != ""})
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


def _copy_limited(upload: UploadFile, path: Path, limit: int) -> None:
    """Copy the spooled upload to `path`, refusing (and removing) it past `limit` bytes."""
    written = 0
    upload.file.seek(0)
    with open(path, "wb") as out:
        while chunk := upload.file.read(COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise PayloadTooLarge(f"upload is over the limit of {limit} bytes")
            out.write(chunk)
    if written == 0:
        path.unlink(missing_ok=True)
        raise InvalidMedia("the uploaded file is empty")
