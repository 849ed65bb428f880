"""Faults during ingest, end to end (real Serve graph, the embedded Redis): the store's server SIGKILLed
mid-job comes back and the job still ends with every clip stored or its time recorded as a gap; a job
can be cancelled while it runs, keeping what it stored."""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from pipeline.ingest.sample_media import write_sample_video
from pipeline.store.connection import RedisConfig, connect
from pipeline.store.registry import Registry
from tests.fixtures.service import running_service, wait_for, wait_for_job

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

START = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
CLIPS = 9  # a 90-second file in 10-second clips


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("outage")) as running:
        yield running


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    return write_sample_video(tmp_path_factory.mktemp("media") / "yard.mp4", width=320, height=240, fps=10,
                              duration=10.0 * CLIPS)  # fmt: skip


def upload(http: httpx.Client, footage, camera_id: str) -> str:
    with footage.path.open("rb") as file:
        response = http.post("/v1/files", files={"file": ("yard.mp4", file)},
                             data={"camera_id": camera_id, "start_time": START.isoformat()})  # fmt: skip
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def clips_of(http: httpx.Client, job_id: str, at_least: int) -> dict | None:
    """The job once it has stored `at_least` clips (or ended), else None (for wait_for)."""
    job = http.get(f"/v1/jobs/{job_id}").json()
    return job if job["clips"] >= at_least or job["state"] not in ("queued", "running") else None


def clip_id(camera_id: str, index: int) -> str:
    return f"{camera_id}@{int((START + timedelta(seconds=10 * index)).timestamp() * 1000)}"


def test_a_store_killed_mid_job_comes_back_and_nothing_acknowledged_is_lost(service, footage):
    with httpx.Client(base_url=service.url, timeout=60) as http:
        job_id = upload(http, footage, "yard")
        before = wait_for(lambda: clips_of(http, job_id, 2), "two stored clips", 300)
        redis_dir = service.settings.data_dir / "redis"
        pid = json.loads((redis_dir / "embedded.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        job = wait_for_job(http, job_id)
        assert job["state"] == "done", job
        assert job["clips"] >= before["clips"]
        assert http.get("/healthz").status_code == 200
        with connect(RedisConfig(url=service.settings.redis_url.get_secret_value())) as connection:
            gaps = Registry(connection.client).gaps("yard")
        stored = [i for i in range(CLIPS) if http.get(f"/v1/clips/{clip_id('yard', i)}").status_code == 200]
        assert len(stored) == job["clips"] and set(range(before["clips"])) <= set(stored)  # acknowledged: kept
        lost = [START + timedelta(seconds=10 * i) for i in range(CLIPS) if i not in stored]
        assert all(any(g.start <= t < g.end for g in gaps) for t in lost), "a lost clip without a gap"


def test_a_running_job_can_be_cancelled_and_keeps_what_it_stored(service, footage):
    with httpx.Client(base_url=service.url, timeout=60) as http:
        job_id = upload(http, footage, "gate")
        wait_for(lambda: clips_of(http, job_id, 1), "a stored clip", 300)
        cancelled = http.delete(f"/v1/jobs/{job_id}")
        assert cancelled.status_code == 200, cancelled.text
        job = cancelled.json()
        assert job["state"] == "cancelled" and 1 <= job["clips"] < CLIPS
        assert http.get(f"/v1/jobs/{job_id}").json() == job
        again = http.delete(f"/v1/jobs/{job_id}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        assert not any(service.settings.uploads_dir.iterdir()), "the cancelled job's upload was left on disk"
