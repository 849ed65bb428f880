"""Service state beside the anchor store: configured streams, recent gaps per camera, file-ingest jobs.

Kept in Redis so a restarted service resumes its streams and still answers for its jobs. Stream URLs hold
camera credentials: they are stored sealed (pipeline.store.secrets) and never leave this module unredacted
except to open the source.

Keys (namespace `ns`):
    ns:streams              hash    camera id -> StreamRecord JSON
    ns:{camera}:gaps        list    newest first, Gap JSON, capped
    ns:job:<id>             string  JobRecord JSON, expires after `job_ttl`
    ns:job:<id>:cancel      string  set to ask the job's ingest replica to stop it
    ns:{camera}:report      string  CameraReport JSON, written by the camera's ingest replica, expiring
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Literal

import redis

from pipeline.clips import Gap
from pipeline.errors import AlreadyExists, StoreError, UnknownJob, UnknownStream
from pipeline.redaction import redact_url
from pipeline.store.connection import RetryPolicy
from pipeline.store.secrets import SecretBox

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[JobState, ...] = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class StreamRecord:
    camera_id: str
    url: str  # as configured, with credentials; show `display_url`
    push: bool
    clip_seconds: int
    timezone: str
    created_at: str  # ISO 8601 UTC

    @property
    def display_url(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    camera_id: str
    state: JobState
    progress: float
    clips: int
    error: str | None = None
    upload: str | None = None  # the uploaded file the job reads (removed when it finishes); never shown
    holder: str | None = None  # the ingest replica running it

    def update(self, **changes) -> JobRecord:
        return replace(self, **changes)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class CameraReport:
    """A live camera's state as its ingest replica last wrote it: what status and metrics show."""

    camera_id: str
    holder: str  # the ingest replica running the camera
    state: str  # the source's: connecting | waiting | connected | reconnecting | failed | ...
    connected: bool
    stored_clips: int
    dropped_clips: int
    reconnects: int
    last_stored_end: str | None  # ISO 8601 UTC
    last_error: str | None
    reported_at: str  # ISO 8601 UTC

    @property
    def lag_s(self) -> float | None:
        """How far the newest stored clip is behind live (decode, encode and store included)."""
        if self.last_stored_end is None:
            return None
        return max(0.0, (datetime.now(timezone.utc) - datetime.fromisoformat(self.last_stored_end)).total_seconds())


class Registry:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "omnisift",
        retry: RetryPolicy | None = None,
        where: str = "redis",
        max_gaps: int = 200,
        job_ttl: timedelta = timedelta(days=7),
        secrets: SecretBox | None = None,
    ):
        """`secrets` seals stream URLs (they hold camera credentials) before they are stored; streams cannot
        be saved or read without it."""
        self.client = client
        self.ns = namespace
        self.retry = retry or RetryPolicy()
        self.where = where
        self.max_gaps = max_gaps
        self.job_ttl = job_ttl
        self.secrets = secrets

    def _run(self, operation, what: str):
        return self.retry.run(operation, what, self.where)

    # streams

    def _sealed(self) -> SecretBox:
        if self.secrets is None:
            raise StoreError("stream records hold camera credentials: open the registry with a secret box")
        return self.secrets

    def _stream_json(self, record: StreamRecord) -> str:
        return json.dumps(asdict(record) | {"url": self._sealed().seal(record.url)})

    def _stream_of(self, raw: bytes) -> StreamRecord:
        data = json.loads(raw)
        return StreamRecord(**data | {"url": self._sealed().open(data["url"])})

    def add_stream(self, record: StreamRecord) -> None:
        value = self._stream_json(record)
        created = self._run(
            lambda: self.client.hsetnx(f"{self.ns}:streams", record.camera_id, value),
            f"adding stream {record.camera_id}",
        )
        if not created:
            raise AlreadyExists(f"camera {record.camera_id!r} already has a stream; delete it first to change it")

    def remove_stream(self, camera_id: str) -> None:
        removed = self._run(lambda: self.client.hdel(f"{self.ns}:streams", camera_id), f"removing stream {camera_id}")
        if not removed:
            raise UnknownStream(f"no stream for camera {camera_id!r}")

    def stream(self, camera_id: str) -> StreamRecord:
        raw = self._run(lambda: self.client.hget(f"{self.ns}:streams", camera_id), f"reading stream {camera_id}")
        if raw is None:
            raise UnknownStream(f"no stream for camera {camera_id!r}")
        return self._stream_of(raw)

    def streams(self) -> list[StreamRecord]:
        raw = self._run(lambda: self.client.hvals(f"{self.ns}:streams"), "listing streams")
        return sorted((self._stream_of(r) for r in raw), key=lambda s: s.camera_id)

    # gaps

    def add_gap(self, gap: Gap) -> None:
        key = f"{self.ns}:{{{gap.camera_id}}}:gaps"
        value = json.dumps({"start": gap.start.isoformat(), "end": gap.end.isoformat(), "reason": gap.reason})

        def write() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.lpush(key, value).ltrim(key, 0, self.max_gaps - 1).execute()

        self._run(write, f"recording a gap of {gap.camera_id}")

    def gaps(self, camera_id: str, limit: int = 20) -> list[Gap]:
        raw = self._run(
            lambda: self.client.lrange(f"{self.ns}:{{{camera_id}}}:gaps", 0, limit - 1), f"reading gaps of {camera_id}"
        )
        return [_gap(camera_id, json.loads(r)) for r in raw]

    # camera reports

    def put_report(self, report: CameraReport, ttl: timedelta) -> None:
        key = f"{self.ns}:{{{report.camera_id}}}:report"
        value = json.dumps(asdict(report))
        self._run(lambda: self.client.set(key, value, px=round(ttl.total_seconds() * 1000)), "writing a report")

    def reports(self, camera_ids: list[str]) -> dict[str, CameraReport]:
        """The cameras' latest reports (a camera no live replica runs has none)."""
        if not camera_ids:
            return {}
        keys = [f"{self.ns}:{{{c}}}:report" for c in camera_ids]
        raw = self._run(lambda: self.client.mget(keys), "reading camera reports")
        return {c: CameraReport(**json.loads(r)) for c, r in zip(camera_ids, raw, strict=True) if r is not None}

    # jobs

    def put_job(self, job: JobRecord) -> None:
        ttl = int(self.job_ttl.total_seconds())
        self._run(
            lambda: self.client.set(f"{self.ns}:job:{job.job_id}", json.dumps(asdict(job)), ex=ttl),
            f"saving job {job.job_id}",
        )

    def jobs(self) -> list[JobRecord]:
        """Every job still kept (finished ones expire after `job_ttl`)."""

        def read() -> list[bytes]:
            keys = [k for k in self.client.scan_iter(match=f"{self.ns}:job:*", count=500) if not k.endswith(b":cancel")]
            return [raw for raw in (self.client.mget(keys) if keys else []) if raw is not None]

        return [JobRecord(**json.loads(raw)) for raw in self._run(read, "listing jobs")]

    def request_cancel(self, job_id: str) -> None:
        self._run(lambda: self.client.set(f"{self.ns}:job:{job_id}:cancel", 1, ex=3600), f"cancelling {job_id}")

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self._run(lambda: self.client.exists(f"{self.ns}:job:{job_id}:cancel"), f"reading {job_id}"))

    def job(self, job_id: str) -> JobRecord:
        raw = self._run(lambda: self.client.get(f"{self.ns}:job:{job_id}"), f"reading job {job_id}")
        if raw is None:
            raise UnknownJob(f"no job {job_id!r} (jobs are kept for {self.job_ttl.days} days)")
        return JobRecord(**json.loads(raw))


def _gap(camera_id: str, data: dict) -> Gap:
    return Gap(camera_id, datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]), data["reason"])


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
