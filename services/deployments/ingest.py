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
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import ray
from ray.serve.handle import DeploymentHandle

from pipeline.clips import ClipWindow, Gap
from pipeline.errors import PipelineError, StoreUnavailable
from pipeline.ingest.connect_slots import ConnectSlots
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec
from pipeline.store.connection import connect
from pipeline.store.leases import CameraLeases, fair_share
from pipeline.store.registry import CameraReport, JobRecord, Registry, StreamRecord, utc_now_iso
from services.deployments.uploads import UploadTransfer
from services.errors import CameraLimitReached, Conflict
from services.settings import Settings
from services.telemetry import configure_tracing, current_carrier, tracer

if TYPE_CHECKING:
    from services.deployments.encoder import ClipSummary  # the encoder's module loads the model stack

log = logging.getLogger(__name__)
OUTAGE_WAIT_S = 300.0  # a file job waits this long per clip for the store to come back
OUTAGE_POLL_S = 1.0
CANCEL_WAIT_S = 10.0


class SourceWorker:
    """A thread feeding one source's clips to the encoder and recording its gaps.

    A store outage is a state, not a crash: a gap the store cannot take yet is kept and written once it
    answers again, and a clip that could not be stored is recorded as a gap."""

    def __init__(
        self,
        source: ClipSource,
        encoder: DeploymentHandle,
        registry: Registry,
        on_stored: Callable[[SourceWorker], None] | None = None,
    ):
        """`on_stored` is told of every stored clip (the camera's report is rewritten at once)."""
        self.source = source
        self.on_stored = on_stored
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

    def report(self, holder: str) -> CameraReport:
        source = self.source.status()
        return CameraReport(
            camera_id=source.camera_id,
            holder=holder,
            state=source.state,
            connected=source.connected,
            stored_clips=self.stored_clips,
            dropped_clips=source.dropped_clips,
            reconnects=source.reconnects,
            last_stored_end=None if self.last_stored_end is None else self.last_stored_end.isoformat(),
            last_error=self.last_error or source.last_error,
            reported_at=utc_now_iso(),
        )

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
        if self.on_stored is not None:
            self.on_stored(self)
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


def _replica_id() -> str:
    """`<node>.<random>`: which Ray node a replica runs on shows in the camera reports it writes."""
    node = ray.get_runtime_context().get_node_id()[:8] if ray.is_initialized() else "local"
    return f"{node}.{uuid.uuid4().hex[:6]}"


def _store_outage(error: BaseException) -> bool:
    """Whether an encoder call failed because the store was unreachable (Ray wraps the replica's error)."""
    return isinstance(error, StoreUnavailable) or isinstance(getattr(error, "cause", None), StoreUnavailable)


class Ingest:
    """Cameras and file jobs. Any number of replicas: each camera is leased to one replica (pipeline/store/
    leases.py); a heartbeat renews the leases, reports each camera's state to the registry, takes over the
    cameras of replicas that stopped renewing (recording the outage as a gap) and notices removals and
    cancellations made through other replicas."""

    def __init__(self, settings: Settings, encoder: DeploymentHandle):
        configure_tracing("ingest")
        self.settings = settings
        self.encoder = encoder
        self.policy: MediaPolicy = settings.media_policy()
        self.connect_slots = ConnectSlots(settings.max_concurrent_connects)
        connection = connect(settings.redis_config())
        self.registry = Registry(connection.client, settings.store_namespace, where=connection.url,
                                 secrets=settings.secrets())  # fmt: skip
        self.replica_id = _replica_id()
        self.leases = CameraLeases(connection.client, settings.store_namespace, self.replica_id,
                                   settings.ingest_lease_s, where=connection.url)  # fmt: skip
        self.heartbeat_s = settings.ingest_lease_s / 4
        self.cameras: dict[str, SourceWorker] = {}
        self.jobs: dict[str, FileJobWorker] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self.live_replicas = self.leases.announce()
        self._fail_orphaned_jobs()
        self._beat()  # resume (or take over) cameras at once
        self._beats = threading.Thread(target=self._beat_forever, name="ingest-heartbeat", daemon=True)
        self._beats.start()

    # the heartbeat

    def _beat_forever(self) -> None:
        while not self._stopping.wait(self.heartbeat_s):
            self._beat()

    def _beat(self) -> None:
        """One heartbeat; a store that is down (or a stream record it cannot open) is retried at the next."""
        try:
            self._heartbeat()
        except PipelineError as error:
            log.warning("ingest heartbeat: %s", error)

    def _heartbeat(self) -> None:
        with self._lock:
            self.live_replicas = self.leases.announce()
            streams = {r.camera_id: r for r in self.registry.streams()}
            held = self.leases.renew(self.cameras)
            for camera_id in [c for c in self.cameras if c not in held or c not in streams]:
                self._stop_camera(camera_id, release=camera_id in held)
            share = fair_share(len(streams), self.live_replicas)
            for camera_id in sorted(self.cameras)[share:]:  # over our share (a replica joined): hand back
                self._stop_camera(camera_id, release=True)
            for camera_id, record in sorted(streams.items()):
                if len(self.cameras) >= share:
                    break
                if camera_id not in self.cameras and self.leases.acquire(camera_id):
                    self._take(record)
            for worker in list(self.cameras.values()):
                self._report(worker)
            for job_id, worker in list(self.jobs.items()):
                if not worker.done and self.registry.cancel_requested(job_id):
                    worker.cancel(timeout=0)

    def _take(self, record: StreamRecord) -> None:
        """Start a camera we now hold; if another replica ran it, its silence since its last clip is a gap."""
        previous = self.registry.reports([record.camera_id]).get(record.camera_id)
        if previous is not None and previous.holder != self.replica_id:
            since = datetime.fromisoformat(previous.last_stored_end or previous.reported_at)
            reason = f"ingest replica {previous.holder} stopped; camera taken over by {self.replica_id}"
            self.registry.add_gap(Gap(record.camera_id, since, datetime.now(timezone.utc), reason))
        try:
            self._start_camera(record)
        except PipelineError as error:
            log.warning("stream %s not started: %s", record.camera_id, error)
            self.leases.release(record.camera_id)

    def _stop_camera(self, camera_id: str, release: bool) -> None:
        worker = self.cameras.pop(camera_id)
        worker.source.stop()
        if release:
            self.leases.release(camera_id)

    def _fail_orphaned_jobs(self) -> None:
        """Jobs whose replica stopped end `failed`, saying why; none stays running forever."""
        for job in self.registry.jobs():
            if not job.finished and job.holder != self.replica_id and not self._alive(job.holder):
                reason = "the service stopped while this job ran; upload the file again"
                self.registry.put_job(job.update(state="failed", error=reason))
                if job.upload:
                    Path(job.upload).unlink(missing_ok=True)

    def _alive(self, holder: str | None) -> bool:
        score = self.registry.client.zscore(f"{self.settings.store_namespace}:ingest:replicas", holder or "")
        return score is not None and time.time() * 1000 - score < self.settings.ingest_lease_s * 1000

    # cameras

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
        worker = SourceWorker(source.start(), self.encoder, self.registry, on_stored=self._report)
        self.cameras[record.camera_id] = worker.start()
        self._report(worker)

    def _report(self, worker: SourceWorker) -> None:
        """Write a camera's state for status and metrics, readable by any gateway until a few heartbeats pass."""
        try:
            self.registry.put_report(
                worker.report(self.replica_id), timedelta(seconds=self.settings.ingest_lease_s * 3)
            )
        except StoreUnavailable as error:  # the next heartbeat writes it again
            log.warning("report of %s not written: %s", worker.source.spec.camera_id, error)

    def add_stream(self, record: StreamRecord) -> None:
        """Validate the source (scheme, whitelist) and the camera limit before anything is saved; then save
        it, and run it here if this replica is under its share (else another replica's heartbeat takes it)."""
        ClipSource(self._spec(record), self.policy)  # raises ForbiddenSource / InvalidMedia on a bad URL
        limit = self.settings.max_cameras
        if len(self.registry.streams()) >= limit:
            raise CameraLimitReached(f"this service takes at most {limit} cameras (max_cameras); remove one first")
        self.registry.add_stream(record)
        with self._lock:
            self.live_replicas = self.leases.announce()
            share = fair_share(len(self.registry.streams()), self.live_replicas)
            if len(self.cameras) < share and self.leases.acquire(record.camera_id):
                self._start_camera(record)

    def remove_stream(self, camera_id: str) -> None:
        """Forget the stream; its source stops at once here, or at the next heartbeat of the replica running
        it. A clip already being encoded still gets stored."""
        self.registry.remove_stream(camera_id)
        with self._lock:
            if camera_id in self.cameras:
                self._stop_camera(camera_id, release=True)

    def streams(self) -> list[StreamRecord]:
        return self.registry.streams()

    # file jobs

    def start_file_job(
        self, camera_id: str, upload: str | UploadTransfer, start_time: datetime | None, duration_s: float
    ) -> JobRecord:
        """Ingest an uploaded file: a path on this machine, or (on a cluster) the bytes the gateway handed over."""
        path = upload.receive(self.settings.uploads_dir) if isinstance(upload, UploadTransfer) else Path(upload)
        job = JobRecord(uuid.uuid4().hex, camera_id, "queued", 0.0, 0, upload=str(Path(path)), holder=self.replica_id)
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
        """Stop a queued or running job (whichever replica runs it) and return its record once it has
        stopped: `cancelled`, keeping the clips it stored."""
        job = self.registry.job(job_id)  # UnknownJob (404) for an id never seen
        if job.finished:
            raise Conflict(f"job {job_id} has already ended ({job.state}); nothing to cancel")
        self.registry.request_cancel(job_id)
        worker = self.jobs.get(job_id)
        if worker is not None:
            worker.cancel(timeout=CANCEL_WAIT_S)
        deadline = time.monotonic() + CANCEL_WAIT_S + self.heartbeat_s
        while not (job := self.registry.job(job_id)).finished and time.monotonic() < deadline:
            time.sleep(0.1)
        return job

    def close(self) -> None:
        """Stop every source and job and hand the cameras back at once (another replica takes them now)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._lock:
            held, self.cameras = self.cameras, {}
        for worker in held.values():
            worker.source.stop()
        for worker in self.jobs.values():
            worker.stop(timeout=2.0)
        try:
            for camera_id in held:
                self.leases.release(camera_id)
            self.leases.withdraw()
        except PipelineError as error:  # the store is gone: the leases expire on their own
            log.warning("ingest replica %s stopped without releasing its cameras: %s", self.replica_id, error)

    def __del__(self) -> None:  # Serve stops the replica
        self.close()
