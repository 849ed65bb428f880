"""The Ingest deployment's own rules, in-process (no Serve): a camera limit, jobs a stopped service left
running end `failed` with the reason, and gaps the store cannot take yet are written once it answers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.clips import Gap
from pipeline.ingest.sources import ClipSource, SourceSpec
from pipeline.store.connection import RedisConfig, RetryPolicy, make_client
from pipeline.store.registry import JobRecord, Registry, StreamRecord, utc_now_iso
from services.deployments.ingest import Ingest, SourceWorker
from services.errors import CameraLimitReached
from services.settings import Settings
from tests.fixtures.anchor_clips import T0


def settings_for(redis, tmp_path, **overrides) -> Settings:
    return Settings(data_dir=tmp_path, redis_url=redis.url, **overrides)


def stream(camera_id: str) -> StreamRecord:
    return StreamRecord(camera_id, "rtsp://127.0.0.1:9/x", False, 10, "UTC", utc_now_iso())


def test_cameras_past_the_limit_are_refused_before_anything_is_saved(redis_server, tmp_path):
    ingest = Ingest(settings_for(redis_server, tmp_path, max_cameras=2), encoder=None)
    try:
        ingest.add_stream(stream("a"))
        ingest.add_stream(stream("b"))
        with pytest.raises(CameraLimitReached, match="at most 2 cameras"):
            ingest.add_stream(stream("c"))
        assert [s.camera_id for s in ingest.streams()] == ["a", "b"]
    finally:
        ingest.close()


def test_jobs_a_stopped_service_left_running_end_failed_with_the_reason(redis_server, tmp_path):
    registry = Registry(redis_server.client())
    upload = tmp_path / "left.mp4"
    upload.write_bytes(b"video")
    registry.put_job(JobRecord("running1", "yard", "running", 0.33, 3, upload=str(upload)))
    registry.put_job(JobRecord("queued1", "yard", "queued", 0.0, 0))
    registry.put_job(JobRecord("done1", "yard", "done", 1.0, 6))
    Ingest(settings_for(redis_server, tmp_path), encoder=None).close()
    states = {job_id: registry.job(job_id) for job_id in ("running1", "queued1", "done1")}
    assert {k: j.state for k, j in states.items()} == {"running1": "failed", "queued1": "failed", "done1": "done"}
    assert "stopped while this job ran" in states["running1"].error and states["running1"].clips == 3
    assert not upload.exists()


def test_a_gap_the_store_cannot_take_is_written_once_it_answers_again(redis_servers):
    redis = redis_servers()
    client = make_client(redis.url, RedisConfig(url=redis.url))  # the service's client: no retries of its own
    registry = Registry(client, retry=RetryPolicy(attempts=2, base_delay_s=0.01))
    worker = SourceWorker(ClipSource(SourceSpec("yard", "rtsp://127.0.0.1:9/x")), encoder=None, registry=registry)
    first, second = (Gap("yard", T0 + timedelta(seconds=s), T0 + timedelta(seconds=s + 5), "dropped") for s in (0, 10))
    redis.kill()
    worker._record_gap(first)
    worker._record_gap(second)
    assert worker._unrecorded == [first, second]  # kept, in order, while the store is down
    redis.start()
    worker._flush_gaps()
    assert worker._unrecorded == [] and registry.gaps("yard") == [second, first]  # newest first


def test_cameras_spread_over_replicas_and_a_dead_replicas_cameras_are_taken_over(redis_server, tmp_path):
    settings = settings_for(redis_server, tmp_path, ingest_lease_s=1.0)
    first = Ingest(settings, encoder=None)
    second = Ingest(settings, encoder=None)
    try:
        for camera_id in ("a", "b"):
            first.add_stream(stream(camera_id))
        wait_until(lambda: len(first.cameras) == 1 and len(second.cameras) == 1, "one camera per replica")
        lost = next(iter(first.cameras))
        first._stopping.set()  # the replica dies: no heartbeat, no release
        for worker in first.cameras.values():
            worker.source.stop()
        died_at = datetime.now(timezone.utc)
        wait_until(lambda: set(second.cameras) == {"a", "b"}, "the takeover", 10)
        gaps = second.registry.gaps(lost)
        assert len(gaps) == 1 and f"replica {first.replica_id} stopped" in gaps[0].reason
        assert gaps[0].start <= died_at <= gaps[0].end
        assert second.registry.reports([lost])[lost].holder == second.replica_id
    finally:
        second.close()
        first.close()


def wait_until(condition, what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
