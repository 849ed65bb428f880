"""A service restarted over the same Redis: stored clips stay queryable and configured streams resume."""

from __future__ import annotations

import httpx
import pytest
from cryptography.fernet import Fernet

from pipeline.ingest.sample_media import write_sample_video
from tests.fixtures.media_servers import RtspCamera
from tests.fixtures.service import running_service, stored_clips, stream_status, wait_for, wait_for_job

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

CLIP_SECONDS = 4


def test_restarted_service_keeps_clips_queryable_and_resumes_streams(tmp_path, redis_servers):
    redis = redis_servers()
    shared = {"redis_url": redis.url, "secret_key": Fernet.generate_key().decode()}  # an external store
    media = write_sample_video(tmp_path / "yard.mp4", width=320, height=240, fps=10, duration=20.0)
    camera = RtspCamera(tmp_path).start()
    try:
        with (
            running_service(tmp_path / "first", **shared) as first,
            httpx.Client(base_url=first.url, timeout=60) as c,
        ):
            with media.path.open("rb") as file:
                job = c.post("/v1/files", files={"file": ("yard.mp4", file)},
                             data={"camera_id": "yard", "start_time": "2026-11-20T08:00:00Z"}).json()  # fmt: skip
            assert wait_for_job(c, job["job_id"])["state"] == "done"
            created = c.post("/v1/streams", json={"camera_id": "gate", "url": camera.url, "clip_seconds": CLIP_SECONDS})
            assert created.status_code == 201
            before = c.post("/v1/query", json={"question": "at 08:00 on 2026-11-20?", "cameras": ["yard"]}).json()

        with (
            running_service(tmp_path / "second", **shared) as second,
            httpx.Client(base_url=second.url, timeout=60) as c,
        ):
            after = c.post("/v1/query", json={"question": "at 08:00 on 2026-11-20?", "cameras": ["yard"]}).json()
            assert [e["clip_id"] for e in after["evidence"]] == [e["clip_id"] for e in before["evidence"]]
            assert len(after["evidence"]) == 2
            assert [s["camera_id"] for s in c.get("/v1/streams").json()] == ["gate"]
            clips_before = stream_status(c, "gate")["clips"]
            wait_for(lambda: stored_clips(c, "gate", clips_before + 1), "the resumed stream to store a clip", 120)
    finally:
        camera.stop()
