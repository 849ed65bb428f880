"""Gateway deployment: the HTTP front door. Streams and jobs go to Ingest, answers to the QueryEngine."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile

from pipeline.decoding import open_media
from pipeline.errors import InvalidMedia
from pipeline.media_policy import plan_source
from pipeline.records import ClipMeta
from pipeline.redis_connection import connect
from pipeline.registry import Registry, StreamRecord, utc_now_iso
from pipeline.store import AnchorStore, CameraSettings, RetentionPolicy
from pipeline.timeline import build_events
from services import schemas
from services.api import create_api
from services.errors import Conflict, NotFound, NotReady, PayloadTooLarge
from services.metrics import Metrics
from services.models import model_setup
from services.queries import QueryEngine
from services.settings import Settings
from services.telemetry import configure_tracing

_COPY_CHUNK = 1 << 20


class UploadForm(BaseModel):
    camera_id: schemas.CameraId
    start_time: datetime | None = None
    timezone: str | None = None


@serve.ingress()
class Gateway:
    def __init__(self, settings: Settings, ingest: DeploymentHandle, answerer: DeploymentHandle | None):
        configure_tracing("gateway")
        self.settings = settings
        self.ingest = ingest
        connection = connect(settings.redis_config())
        self.store = AnchorStore.open(connection, model_setup(settings).fingerprint, settings.store_config())
        self.registry = Registry(connection.client, settings.store_namespace, where=connection.url)
        self.queries = QueryEngine(settings, self.store, answerer if settings.answers_with_llm else None)
        self.metrics = Metrics()
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)

    def __serve_build_asgi_app__(self):
        return create_api(self)

    # health

    async def check_ready(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.cameras), timeout=5)
            await asyncio.wait_for(self.ingest.streams.remote(), timeout=5)
        except Exception as error:
            raise NotReady(f"not ready: {error}") from error

    async def metrics_text(self) -> tuple[bytes, str]:
        statuses = await self.ingest.statuses.remote()
        sizes = await asyncio.to_thread(lambda: {c: self.store.usage(c).stored_bytes for c in self.store.cameras()})
        return self.metrics.render(statuses, sizes)

    # streams

    async def add_stream(self, body: schemas.StreamCreate) -> schemas.Stream:
        camera = self._camera_settings(body.camera_id, body.timezone, body.retention)
        url = self._push_url(body.camera_id) if body.push else body.url
        clip_seconds = body.clip_seconds or self.settings.clip_seconds
        record = StreamRecord(body.camera_id, url, body.push, clip_seconds, camera.timezone, utc_now_iso())
        await self.ingest.add_stream.remote(record)
        await asyncio.to_thread(self.store.set_camera, camera)
        return self._stream_out(record, camera)

    async def list_streams(self) -> list[schemas.Stream]:
        records = await asyncio.to_thread(self.registry.streams)
        return [self._stream_out(r, await asyncio.to_thread(self.store.camera, r.camera_id)) for r in records]

    async def stream_status(self, camera_id: str) -> schemas.StreamStatus:
        await asyncio.to_thread(self.registry.stream, camera_id)  # 404 for an unknown camera
        status = await self.ingest.status.remote(camera_id)
        usage = await asyncio.to_thread(self.store.usage, camera_id)
        gaps = await asyncio.to_thread(self.registry.gaps, camera_id)
        source = status.source if status is not None else None
        return schemas.StreamStatus(
            camera_id=camera_id,
            state=source.state if source else "stopped",
            connected=bool(source and source.connected),
            lag_s=None if status is None or status.lag_s is None else round(status.lag_s, 3),
            clips=usage.clips,
            dropped_clips=source.dropped_clips if source else 0,
            reconnects=source.reconnects if source else 0,
            gaps=[schemas.Gap(start=g.start, end=g.end, reason=g.reason) for g in gaps],
            last_error=(status.last_error or (source.last_error if source else None)) if status else None,
        )

    async def remove_stream(self, camera_id: str) -> None:
        await self.ingest.remove_stream.remote(camera_id)

    def _camera_settings(self, camera_id: str, tz: str | None, retention: schemas.Retention | None) -> CameraSettings:
        policy = None
        if retention is not None:
            default = self.settings.store_config().retention
            hours, size = retention.max_age_hours, retention.max_bytes
            policy = RetentionPolicy(
                max_age=default.max_age if hours is None else timedelta(hours=hours),
                max_bytes=default.max_bytes if size is None else size,
            )
        return CameraSettings(camera_id, tz or self.settings.default_timezone, policy)

    def _push_url(self, camera_id: str) -> str:
        taken = {int(r.url.rsplit(":", 1)[1].split("/")[0]) for r in self.registry.streams() if r.push}
        first, last = self.settings.push_ports
        port = next((p for p in range(first, last + 1) if p not in taken), None)
        if port is None:
            raise Conflict(f"all push ports {first}-{last} are in use; widen push_ports or remove a push stream")
        return f"rtsp://{self.settings.push_host}:{port}/{camera_id}"

    def _stream_out(self, record: StreamRecord, camera: CameraSettings) -> schemas.Stream:
        retention = camera.retention or self.settings.store_config().retention
        age = retention.max_age
        return schemas.Stream(
            camera_id=record.camera_id,
            url=None if record.push else record.display_url,
            push_url=record.url if record.push else None,
            timezone=camera.timezone,
            clip_seconds=record.clip_seconds,
            retention=schemas.Retention(
                max_age_hours=None if age is None else age.total_seconds() / 3600, max_bytes=retention.max_bytes
            ),
        )

    # files

    async def upload(self, request: Request) -> schemas.JobAccepted:
        limit = self.settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + (1 << 20):
            raise PayloadTooLarge(f"upload of {int(declared)} bytes is over the limit of {limit} bytes")
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestValidationError([{"loc": ("file",), "msg": "a video file is required", "type": "missing"}])
            fields = self._upload_form({k: v for k, v in form.items() if k != "file" and isinstance(v, str)})
            path = self.settings.uploads_dir / f"{uuid.uuid4().hex}{Path(upload.filename or '').suffix[:16]}"
            await asyncio.to_thread(_copy_limited, upload, path, limit)
        try:
            duration = await asyncio.to_thread(self._probe, path)
            camera = await asyncio.to_thread(self._upload_camera, fields)
            start = fields.start_time
            if start is not None and start.tzinfo is None:
                start = start.replace(tzinfo=camera.tz)
            job = await self.ingest.start_file_job.remote(fields.camera_id, str(path), start, duration)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return schemas.JobAccepted(job_id=job.job_id, camera_id=job.camera_id)

    @staticmethod
    def _upload_form(values: dict[str, str]) -> UploadForm:
        try:
            return UploadForm.model_validate({k: v for k, v in values.items() if v != ""})
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None

    def _upload_camera(self, fields: UploadForm) -> CameraSettings:
        """The camera's settings, saving the upload's timezone (or the default for a new camera)."""
        if fields.timezone is None and fields.camera_id in self.store.cameras():
            return self.store.camera(fields.camera_id)
        camera = CameraSettings(fields.camera_id, fields.timezone or self.settings.default_timezone)
        self.store.set_camera(camera)
        return camera

    def _probe(self, path: Path) -> float:
        """Seconds of media in an uploaded file; InvalidMedia (422) for anything that is not playable video."""
        policy = self.settings.media_policy()
        container, info = open_media(plan_source(str(path), policy), policy)
        container.close()
        if not info.duration_s:
            raise InvalidMedia("the upload has no duration; upload a complete video file")
        return info.duration_s

    async def job(self, job_id: str) -> schemas.Job:
        return schemas.Job(**asdict(await asyncio.to_thread(self.registry.job, job_id)))

    # queries

    async def events(self, camera_id: str | None, start: datetime | None, end: datetime | None) -> list[schemas.Event]:
        def read() -> list[schemas.Event]:
            cameras = [camera_id] if camera_id else self.store.cameras()
            if camera_id and camera_id not in self.store.cameras():
                raise NotFound(f"unknown camera {camera_id!r}")
            until = end or datetime.now(timezone.utc)
            since = start or until - timedelta(minutes=self.settings.default_query_minutes)
            metas: list[ClipMeta] = [m for c in cameras for m in self.store.clips(c, since, until)]
            found = build_events(metas, self.settings.timeline_config(), since, until)
            return [schemas.Event(**e.to_json()) for e in found]

        return await asyncio.to_thread(read)

    async def clip(self, clip_id: str) -> schemas.Clip:
        meta = await asyncio.to_thread(self.store.meta, clip_id)
        return schemas.Clip(
            clip_id=meta.clip_id,
            camera_id=meta.camera_id,
            start=meta.start,
            end=meta.end,
            video_tokens_kept=meta.kept_counts[0],
            audio_tokens_kept=meta.kept_counts[1],
            video_tokens_source=meta.source_counts[0],
            audio_tokens_source=meta.source_counts[1],
            activity=list(meta.scores.activity),
            audio_salience=list(meta.scores.audio_salience),
            has_audio=meta.has_audio,
            stored_bytes=meta.stored_bytes,
            fingerprint=meta.fingerprint,
        )


def _copy_limited(upload: UploadFile, path: Path, limit: int) -> None:
    """Copy the spooled upload to `path`, refusing (and removing) it past `limit` bytes."""
    written = 0
    upload.file.seek(0)
    with open(path, "wb") as out:
        while chunk := upload.file.read(_COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise PayloadTooLarge(f"upload is over the limit of {limit} bytes")
            out.write(chunk)
    if written == 0:
        path.unlink(missing_ok=True)
        raise InvalidMedia("the uploaded file is empty")
