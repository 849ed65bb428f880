"""The Ingest deployment's own rules, in-process (no Serve): a camera limit, jobs a stopped service left
running end `failed` with the reason, and gaps the store cannot take yet are written once it answers."""

from __future__ import annotations

from datetime import timedelta

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
        for worker in ingest.cameras.values():
            worker.stop(timeout=5)


def test_jobs_a_stopped_service_left_running_end_failed_with_the_reason(redis_server, tmp_path):
    registry = Registry(redis_server.client())
    upload = tmp_path / "left.mp4"
    upload.write_bytes(b"video")
    registry.put_job(JobRecord("running1", "yard", "running", 0.33, 3, upload=str(upload)))
    registry.put_job(JobRecord("queued1", "yard", "queued", 0.0, 0))
    registry.put_job(JobRecord("done1", "yard", "done", 1.0, 6))
    Ingest(settings_for(redis_server, tmp_path), encoder=None)
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
