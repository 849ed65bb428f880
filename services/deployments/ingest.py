"""Ingest deployment: owns every live camera and file job. One worker thread per camera or job pulls clip
windows from its pipeline source and hands them to the encoder, one clip in flight at a time.

Backpressure: while a clip is being encoded the source buffers at most `camera_queue_clips` more; a live
source then drops clips and records the dropped time as a gap, so memory stays bounded and lag is visible.
A file job is never dropped from: its source waits instead.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ray.serve.handle import DeploymentHandle

from pipeline.clips import ClipWindow, Gap
from pipeline.errors import PipelineError, StoreUnavailable
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec, SourceStatus
from pipeline.store.connection import connect
from pipeline.store.registry import JobRecord, Registry, StreamRecord
from services.errors import CameraLimitReached, Conflict
from services.settings import Settings
from services.telemetry import configure_tracing, current_carrier, tracer

if TYPE_CHECKING:
    from services.deployments.encoder import ClipSummary  # the encoder's module loads the model stack

log = logging.getLogger(__name__)
OUTAGE_WAIT_S = 300.0  # a file job waits this long per clip for the store to come back
OUTAGE_POLL_S = 1.0
CANCEL_WAIT_S = 10.0


@dataclass(frozen=True)
class CameraStatus:
    source: SourceStatus
    stored_clips: int
    last_stored_end: datetime | None
    last_error: str | None

    @property
    def lag_s(self) -> float | None:
        """How far the newest stored clip is behind live (decode, encode and store included)."""
        if self.last_stored_end is None:
            return None
        return max(0.0, time.time() - self.last_stored_end.timestamp())


class SourceWorker:
    """A thread feeding one source's clips to the encoder and recording its gaps.

    A store outage is a state, not a crash: a gap the store cannot take yet is kept and written once it
    answers again, and a clip that could not be stored is recorded as a gap."""

    def __init__(self, source: ClipSource, encoder: DeploymentHandle, registry: Registry):
        self.source = source
        self.encoder = encoder
        self.registry = registry
        self.stored_clips = 0
        self.last_stored_end: datetime | None = None
        self.last_error: str | None = None
        self.failed = False
        self._unrecorded: list[Gap] = []  # gaps not yet written: the store was unreachable
        self._thread = threading.Thread(target=self._run, name=f"ingest-{source.spec.camera_id}", daemon=True)

    def start(self) -> SourceWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.source.close(timeout)
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def status(self) -> CameraStatus:
        return CameraStatus(self.source.status(), self.stored_clips, self.last_stored_end, self.last_error)

    def on_clip(self, clip: ClipWindow) -> None:
        """Called after each stored clip (file jobs report progress here)."""

    def _run(self) -> None:
        try:
            waiting_since = time.time_ns()  # decoding (or, live, waiting for the camera) starts here
            for item in self.source:
                if isinstance(item, Gap):
                    self._record_gap(item)
                else:
                    self._store(item, waiting_since)
                waiting_since = time.time_ns()
        except PipelineError as error:
            self.failed, self.last_error = True, str(error)
        except Exception as error:  # a bug must not kill silently: the status shows it
            log.exception("ingest worker for %s crashed", self.source.spec.camera_id)
            self.failed, self.last_error = True, f"unexpected {type(error).__name__}: {error}"
        finally:
            self._flush_gaps()

    def _store(self, clip: ClipWindow, waiting_since: int) -> None:
        try:
            summary = self._encode(clip, waiting_since)
        except Exception as error:  # the clip is lost: say so where the user looks
            self.last_error = f"clip {clip.clip_id} could not be encoded or stored: {error}"
            log.warning("%s", self.last_error)
            self._record_gap(Gap(clip.camera_id, clip.start, clip.end, f"encode or store failed: {error}"))
            return
        self.stored_clips += 1
        self.last_stored_end = summary.end
        self.last_error = None
        self._flush_gaps()
        self.on_clip(clip)

    def _encode(self, clip: ClipWindow, waiting_since: int) -> ClipSummary:
        """One trace per clip: `ingest` spans decode (from `waiting_since`) and the encoder's work."""
        attributes = {"clip_id": clip.clip_id, "frames": len(clip.frames)}
        with tracer.start_as_current_span("ingest", start_time=waiting_since, attributes=attributes):
            tracer.start_span("decode", start_time=waiting_since, attributes=attributes).end()
            return self.encoder.ingest.remote(clip, current_carrier()).result()

    def _record_gap(self, gap: Gap) -> None:
        self._unrecorded.append(gap)
        self._flush_gaps()

    def _flush_gaps(self) -> None:
        while self._unrecorded:
            try:
                self.registry.add_gap(self._unrecorded[0])
            except StoreUnavailable:
                return  # kept: written after the next clip the store takes
            self._unrecorded.pop(0)


class FileJobWorker(SourceWorker):
    """A file ingest: progress and the outcome go to the registry so any gateway can report them.

    A file is not live, so a store outage is waited out: the same clip is tried again for up to
    `outage_wait_s` before it is recorded as a gap. The outcome is written once the store takes it."""

    def __init__(
        self,
        job: JobRecord,
        duration_s: float,
        source: ClipSource,
        encoder: DeploymentHandle,
        registry: Registry,
        outage_wait_s: float,
    ):
        super().__init__(source, encoder, registry)
        self.job = job
        self.duration_s = max(duration_s, 1e-6)
        self.outage_wait_s = outage_wait_s
        self.cancelled = threading.Event()

    def cancel(self, timeout: float) -> None:
        self.cancelled.set()
        self.stop(timeout)

    def _run(self) -> None:
        self._save(self.job.update(state="running"))
        try:
            super()._run()
        finally:
            if self.job.upload:
                Path(self.job.upload).unlink(missing_ok=True)
        if self.cancelled.is_set():
            outcome = self.job.update(state="cancelled", clips=self.stored_clips, error="cancelled")
        elif self.failed:
            outcome = self.job.update(state="failed", error=self.last_error, clips=self.stored_clips)
        else:
            outcome = self.job.update(state="done", progress=1.0, clips=self.stored_clips, error=self.last_error)
        self._save(outcome, until_stored=True)

    def _encode(self, clip: ClipWindow, waiting_since: int) -> ClipSummary:
        deadline = time.monotonic() + self.outage_wait_s
        while True:
            try:
                return super()._encode(clip, waiting_since)
            except Exception as error:
                if not _store_outage(error) or time.monotonic() > deadline or self.cancelled.is_set():
                    raise
                log.warning("job %s waits for the store: %s", self.job.job_id, error)
                self.cancelled.wait(OUTAGE_POLL_S)

    def on_clip(self, clip: ClipWindow) -> None:
        done = self.stored_clips * clip.clip_seconds / self.duration_s
        self._save(self.job.update(progress=round(min(done, 0.99), 4), clips=self.stored_clips))

    def _save(self, job: JobRecord, until_stored: bool = False) -> None:
        """Record the job's state; progress may be skipped while the store is down, the outcome never is."""
        self.job = job
        while True:
            try:
                self.registry.put_job(job)
                return
            except StoreUnavailable as error:
                if not until_stored:
                    return
                log.warning("job %s: outcome not saved yet: %s", job.job_id, error)
                time.sleep(OUTAGE_POLL_S)


def _store_outage(error: BaseException) -> bool:
    """Whether an encoder call failed because the store was unreachable (Ray wraps the replica's error)."""
    return isinstance(error, StoreUnavailable) or isinstance(getattr(error, "cause", None), StoreUnavailable)


class Ingest:
    def __init__(self, settings: Settings, encoder: DeploymentHandle):
        configure_tracing("ingest")
        self.settings = settings
        self.encoder = encoder
        self.policy: MediaPolicy = settings.media_policy()
        self.connect_slots = threading.BoundedSemaphore(settings.max_concurrent_connects)
        connection = connect(settings.redis_config())
        self.registry = Registry(
            connection.client, settings.store_namespace, where=connection.url, secrets=settings.secrets()
        )
        self.cameras: dict[str, SourceWorker] = {}
        self.jobs: dict[str, FileJobWorker] = {}
        self._lock = threading.Lock()
        self._fail_orphaned_jobs()
        for record in self.registry.streams():  # resume what was configured before a restart
            try:
                self._start_camera(record)
            except PipelineError as error:
                log.warning("stream %s not resumed: %s", record.camera_id, error)

    def _fail_orphaned_jobs(self) -> None:
        """Jobs left queued or running by a stopped ingest end `failed`, saying why; none stays running."""
        for job in self.registry.jobs():
            if not job.finished:
                reason = "the service stopped while this job ran; upload the file again"
                self.registry.put_job(job.update(state="failed", error=reason))
                if job.upload:
                    Path(job.upload).unlink(missing_ok=True)

    def _spec(self, record: StreamRecord) -> SourceSpec:
        return SourceSpec(
            camera_id=record.camera_id,
            url=record.url,
            push=record.push,
            clip_seconds=record.clip_seconds,
            fps=self.settings.fps,
            max_pixels=self.settings.max_frame_pixels,
        )

    def _start_camera(self, record: StreamRecord) -> None:
        source = ClipSource(
            self._spec(record),
            self.policy,
            queue_size=self.settings.camera_queue_clips,
            connect_slots=self.connect_slots,
        )
        with self._lock:
            self.cameras[record.camera_id] = SourceWorker(source.start(), self.encoder, self.registry).start()

    def add_stream(self, record: StreamRecord) -> None:
        """Validate the source (scheme, whitelist) and the camera limit before anything is saved; then save
        and start it."""
        ClipSource(self._spec(record), self.policy)  # raises ForbiddenSource / InvalidMedia on a bad URL
        limit = self.settings.max_cameras
        if len(self.registry.streams()) >= limit:
            raise CameraLimitReached(f"this service takes at most {limit} cameras (max_cameras); remove one first")
        self.registry.add_stream(record)
        self._start_camera(record)

    def remove_stream(self, camera_id: str) -> None:
        """Forget the stream and stop its source at once; a clip already being encoded still gets stored."""
        self.registry.remove_stream(camera_id)
        with self._lock:
            worker = self.cameras.pop(camera_id, None)
        if worker is not None:
            worker.source.stop()

    def streams(self) -> list[StreamRecord]:
        return self.registry.streams()

    def status(self, camera_id: str) -> CameraStatus | None:
        worker = self.cameras.get(camera_id)
        return None if worker is None else worker.status()

    def statuses(self) -> dict[str, CameraStatus]:
        return {camera_id: worker.status() for camera_id, worker in list(self.cameras.items())}

    def start_file_job(self, camera_id: str, path: str, start_time: datetime | None, duration_s: float) -> JobRecord:
        job = JobRecord(uuid.uuid4().hex, camera_id, state="queued", progress=0.0, clips=0, upload=str(Path(path)))
        spec = SourceSpec(
            camera_id=camera_id,
            url=str(Path(path)),
            clip_seconds=self.settings.clip_seconds,
            fps=self.settings.fps,
            start_time=start_time,
            max_pixels=self.settings.max_frame_pixels,
        )
        source = ClipSource(spec, self.policy, queue_size=self.settings.camera_queue_clips)
        self.registry.put_job(job)
        worker = FileJobWorker(job, duration_s, source.start(), self.encoder, self.registry, OUTAGE_WAIT_S)
        with self._lock:
            self.jobs = {k: w for k, w in self.jobs.items() if not w.done}
            self.jobs[job.job_id] = worker.start()
        return job

    def cancel_job(self, job_id: str) -> JobRecord:
        """Stop a queued or running job and return its record (`cancelled` once its worker has stopped)."""
        job = self.registry.job(job_id)  # UnknownJob (404) for an id never seen
        worker = self.jobs.get(job_id)
        if job.finished or worker is None:
            raise Conflict(f"job {job_id} has already ended ({job.state}); nothing to cancel")
        worker.cancel(timeout=CANCEL_WAIT_S)
        return self.registry.job(job_id)

    def __del__(self) -> None:
        for worker in [*self.cameras.values(), *self.jobs.values()]:
            worker.stop(timeout=2.0)
