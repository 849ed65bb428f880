"""Gateway deployment: behind the HTTP API (services.http). Streams and jobs go to Ingest, questions and
events to the QueryEngine, store maintenance to the store. It loads no model: it reads clip metadata only."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from ray.serve.handle import DeploymentHandle

from pipeline.alerts.alert_store import AlertStore
from pipeline.errors import InvalidMedia, PipelineError, StoreUnavailable
from pipeline.ingest.decoding import open_media
from pipeline.ingest.media_policy import plan_source
from pipeline.redaction import redact_directory
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings, RetentionPolicy
from pipeline.store.connection import connect
from pipeline.store.registry import JobRecord, Registry, StreamRecord, utc_now_iso
from services.deployments import inspection
from services.deployments.alert_api import AlertApi
from services.deployments.alerts import AlertWorker
from services.deployments.queries import QueryEngine
from services.deployments.uploads import UploadTransfer
from services.errors import Conflict, NotAlive, NotReady
from services.http import schemas
from services.http.app import create_api
from services.http.errors import unwrap
from services.metrics import Metrics
from services.settings import Settings
from services.telemetry import configure_tracing

STORE_PING_TIMEOUT_S = 2.0


class Gateway:
    """What the HTTP routes call. Wrapped as a Serve ingress deployment in services.app."""

    def __init__(self, settings: Settings, ingest: DeploymentHandle, answerer: DeploymentHandle | None):
        configure_tracing("gateway")
        self.settings = settings
        self.ingest = ingest
        connection = connect(settings.redis_config())
        self.store = AnchorStore.open(connection, None, settings.store_config())  # metadata only: no model
        self.registry = Registry(
            connection.client, settings.store_namespace, where=connection.url, secrets=settings.secrets()
        )
        self.metrics = Metrics()
        self._store_down_since: float | None = None
        self.queries = QueryEngine(settings, self.store, answerer if settings.answers_with_llm else None, self.metrics)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        alerts = AlertStore(connection.client, settings.store_namespace, settings.secrets(), connection.url)
        self.alerts = AlertApi(settings, alerts)
        ask = _asker(answerer) if settings.asks_questions and answerer is not None else None
        worker = AlertWorker(settings, connection, ask) if settings.alert_worker else None
        self.alert_worker = worker and worker.start()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self, self.settings)

    # health

    async def check_alive(self) -> None:
        """Liveness: alive while the store answers, or has been unreachable for under `store_grace_s` (the
        embedded server restarts within seconds; an external one is the operator's to bring back)."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), timeout=STORE_PING_TIMEOUT_S)
            self._store_down_since = None
        except (StoreUnavailable, TimeoutError) as error:
            self._store_down_since = self._store_down_since or time.monotonic()
            down_s = time.monotonic() - self._store_down_since
            if down_s > self.settings.store_grace_s:
                raise NotAlive(f"the store has not answered for {down_s:.0f} s: {error}") from error

    async def check_ready(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.cameras), timeout=5)
            await asyncio.wait_for(self.ingest.streams.remote(), timeout=5)
        except Exception as error:
            raise NotReady(f"not ready: {error}") from error

    async def metrics_text(self) -> tuple[bytes, str]:
        def read():
            reports = self.registry.reports([r.camera_id for r in self.registry.streams()])
            self.metrics.observe_alerts(self.alerts.alerts.stats())
            return reports, {c: self.store.usage(c).stored_bytes for c in self.store.cameras()}

        return self.metrics.render(*await asyncio.to_thread(read))

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
        def read():
            self.registry.stream(camera_id)  # 404 for an unknown camera
            report = self.registry.reports([camera_id]).get(camera_id)
            return report, self.store.usage(camera_id), self.registry.gaps(camera_id)

        report, usage, gaps = await asyncio.to_thread(read)
        lag = None if report is None else report.lag_s
        return schemas.StreamStatus(
            camera_id=camera_id,
            state="unassigned" if report is None else report.state,  # no live ingest replica runs it (yet)
            connected=report is not None and report.connected,
            lag_s=None if lag is None else round(lag, 3),
            clips=usage.clips,
            dropped_clips=0 if report is None else report.dropped_clips,
            reconnects=0 if report is None else report.reconnects,
            gaps=[schemas.Gap(start=g.start, end=g.end, reason=g.reason) for g in gaps],
            last_error=None if report is None else report.last_error,
        )

    async def remove_stream(self, camera_id: str) -> None:
        await self.ingest.remove_stream.remote(camera_id)

    def _camera_settings(
        self, camera_id: str, tz: str | None, retention: schemas.RetentionLimits | None
    ) -> CameraSettings:
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

    async def upload(self, form: schemas.UploadForm, path: Path) -> schemas.JobAccepted:
        """Start ingesting an uploaded file (already saved at `path`, which the job removes when done)."""
        try:
            duration = await asyncio.to_thread(self._probe, path)
            camera = await asyncio.to_thread(self._upload_camera, form)
            start = form.start_time
            if start is not None and start.tzinfo is None:
                start = start.replace(tzinfo=camera.tz)
            handed = await asyncio.to_thread(UploadTransfer.of, path) if self.settings.ray_address else str(path)
            job = await self.ingest.start_file_job.remote(form.camera_id, handed, start, duration)
        except BaseException as error:
            path.unlink(missing_ok=True)
            cause = unwrap(error)
            if isinstance(cause, PipelineError):  # the message names the file: by its name, not the server's path
                cause.args = (redact_directory(str(cause), self.settings.uploads_dir),)
            raise
        if self.settings.ray_address:  # the ingest replica holds its own copy now
            path.unlink(missing_ok=True)
        return schemas.JobAccepted(job_id=job.job_id, camera_id=job.camera_id)

    def _upload_camera(self, fields: schemas.UploadForm) -> CameraSettings:
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
        return self._job_out(await asyncio.to_thread(self.registry.job, job_id))

    async def cancel_job(self, job_id: str) -> schemas.Job:
        return self._job_out(await self.ingest.cancel_job.remote(job_id))

    def _job_out(self, job: JobRecord) -> schemas.Job:
        # ingest's messages name the uploaded file: by its name only, not the server's path
        error = None if job.error is None else redact_directory(job.error, self.settings.uploads_dir)
        return schemas.Job(
            job_id=job.job_id, camera_id=job.camera_id, state=job.state, progress=job.progress, clips=job.clips,
            error=error,
        )  # fmt: skip

    # queries

    async def answer(self, request: schemas.QueryRequest) -> schemas.QueryResponse:
        return await self.queries.answer(request)

    async def open_stream(self, request: schemas.QueryRequest):
        return await self.queries.open_stream(request)

    async def events(self, camera_id: str | None, start: datetime | None, end: datetime | None) -> list[schemas.Event]:
        return await asyncio.to_thread(self.queries.events, camera_id, start, end)

    async def clip(self, clip_id: str, detail: str | None = None) -> schemas.Clip:
        if detail == "tokens":
            found = await asyncio.to_thread(self.store.token_detail, clip_id)
            return inspection.clip_out(found.meta, found)
        return inspection.clip_out(await asyncio.to_thread(self.store.meta, clip_id))

    async def clip_still(self, clip_id: str) -> bytes:
        return (await asyncio.to_thread(self.store.still, clip_id))[1]

    async def clip_list(self, camera_id: str, start: datetime, end: datetime) -> list[schemas.ClipSummary]:
        return await asyncio.to_thread(inspection.clip_list, self.store, self.registry, camera_id, start, end)

    async def cameras(self) -> list[schemas.Camera]:
        return await asyncio.to_thread(inspection.cameras, self.store, self.registry)

    # store maintenance

    async def purge(self) -> schemas.Purged:
        removed = await asyncio.to_thread(self.store.purge)
        return schemas.Purged(clips_removed=removed, namespace=self.settings.store_namespace)


def _asker(answerer: DeploymentHandle):
    """The language model's P(yes) for alert questions, called from the alert worker's thread."""

    def ask(clip_id: str, question: str) -> float:
        return answerer.yes_probability.remote(clip_id, question).result()

    return ask
