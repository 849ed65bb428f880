"""Live cameras through the API: a real RTSP camera pulled, a push camera publishing to us, and removal."""

from __future__ import annotations

import httpx
import pytest

from pipeline.ingest.sample_media import write_sample_video
from tests.fixtures.media_servers import RtspCamera, RtspPublisher
from tests.fixtures.network import free_port
from tests.fixtures.service import running_service, stored_clips, wait_for

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

CLIP_SECONDS = 4


@pytest.fixture(scope="module")
def push_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def service(tmp_path_factory, redis_servers, push_port):
    redis = redis_servers()
    with running_service(
        tmp_path_factory.mktemp("service"), redis_url=redis.url, push_ports=(push_port, push_port)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, timeout=60) as c:
        yield c


@pytest.fixture
def camera(tmp_path):
    camera = RtspCamera(tmp_path).start()
    yield camera
    camera.stop()


def test_an_rtsp_camera_added_through_the_api_stores_clips(client, camera):
    created = client.post("/v1/streams", json={"camera_id": "gate", "url": camera.url, "clip_seconds": CLIP_SECONDS})
    assert created.status_code == 201, created.text
    assert created.json()["clip_seconds"] == CLIP_SECONDS

    current = wait_for(lambda: stored_clips(client, "gate", 2), "two stored clips from the RTSP camera", 180)
    assert current["connected"] and current["state"] == "connected"
    assert current["lag_s"] is not None and current["last_error"] is None
    assert [s["camera_id"] for s in client.get("/v1/streams").json()] == ["gate"]
    metrics = client.get("/metrics").text
    assert 'omnisift_camera_connected{camera_id="gate"} 1.0' in metrics
    assert 'omnisift_camera_lag_seconds{camera_id="gate"}' in metrics

    assert client.delete("/v1/streams/gate").status_code == 204
    assert client.get("/v1/streams/gate").status_code == 404
    wait_for(lambda: 'camera_id="gate"' not in client.get("/metrics").text.split("omnisift_camera_stored_bytes")[0],
             "the removed camera's worker to be gone", 30)  # fmt: skip
    evidence = client.post("/v1/query", json={"question": "what happened in the last 10 minutes?", "cameras": ["gate"]})
    assert evidence.status_code == 200 and len(evidence.json()["evidence"]) >= 2  # stored clips outlive the stream


def test_a_push_camera_publishes_to_the_endpoint_we_return(client, tmp_path, push_port):
    created = client.post("/v1/streams", json={"camera_id": "dock", "push": True, "clip_seconds": CLIP_SECONDS})
    assert created.status_code == 201, created.text
    push_url = created.json()["push_url"]
    assert push_url == f"rtsp://127.0.0.1:{push_port}/dock" and created.json()["url"] is None

    media = write_sample_video(tmp_path / "dock.mp4", width=320, height=240, fps=10, duration=8.0)
    publisher = RtspPublisher(media.path, push_url, tmp_path).start()
    try:
        wait_for(lambda: stored_clips(client, "dock", 1), "a clip from the push camera", 180)
    finally:
        publisher.stop()
    assert client.delete("/v1/streams/dock").status_code == 204
