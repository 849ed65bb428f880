"""Stateless deployments: with two encoder replicas, the same file ingested twice is stored as identical
records, scores included (a camera's noise floor lives in the store, not in whichever replica got a clip)."""

from __future__ import annotations

import httpx
import pytest

from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from tests.fixtures.service import running_service, wait_for_job

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

CAMERA = "yard"
START = "2026-11-20T08:00:00Z"
SOUNDS = (
    SceneEvent("sound", "hum", 0.0, 60.0, frequency=50.0, level=0.02),  # room tone the floor learns
    SceneEvent("sound", "bark", 21.0, 22.0, frequency=700.0, level=0.4),
)


def stored_records(client) -> dict[bytes, dict[bytes, bytes]]:
    """Every clip hash of the camera, field by field, as Redis holds it."""
    keys = sorted(client.scan_iter(match=f"omnisift:{{{CAMERA}}}:clip:*"))
    return {key: client.hgetall(key) for key in keys}


def test_two_encoder_replicas_store_the_same_file_twice_as_identical_records(tmp_path, redis_servers):
    redis = redis_servers()
    media = write_sample_video(tmp_path / "yard.mp4", width=320, height=240, fps=10, duration=60.0, events=SOUNDS)
    with (
        running_service(tmp_path / "svc", redis_url=redis.url, encoder={"num_replicas": 2}) as service,
        httpx.Client(base_url=service.url, timeout=60) as http,
    ):
        store = redis.client()
        snapshots = []
        for _ in range(2):
            with media.path.open("rb") as file:
                job = http.post("/v1/files", files={"file": ("yard.mp4", file)},
                                data={"camera_id": CAMERA, "start_time": START}).json()  # fmt: skip
            assert wait_for_job(http, job["job_id"])["state"] == "done"
            snapshots.append(stored_records(store))
        assert len(snapshots[0]) == 6
        assert snapshots[1] == snapshots[0]  # tokens, positions, scores and noise floors, byte for byte
        window = {"camera_id": CAMERA, "start": START, "end": "2026-11-20T08:01:00Z"}
        events = http.get("/v1/events", params=window).json()
        bark = [e for e in events if e["start"] <= "2026-11-20T08:00:21Z" < e["end"]]
        assert len(bark) == 1 and bark[0]["audio_salience"] > 0.5
