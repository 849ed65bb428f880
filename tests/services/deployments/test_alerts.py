"""Alerts end to end on the real Serve graph and an external Redis: a generated file with known events fires at
their footage times and never in its quiet parts, with schedules read in the camera's timezone and cooldowns
held; its webhook receiver is down while the firings are made and the service is restarted mid-retry, and the
receiver then gets every firing once, in order."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest
from cryptography.fernet import Fernet

from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from tests.fixtures.service import running_service, wait_for, wait_for_job
from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e  # real Ray Serve (started twice), Redis, media and a webhook receiver

START = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)  # a Friday: 03:00 in New York, Thursday night's window
CAMERA = "porch"
EVENTS = (
    SceneEvent("object", "person", 12.0, 15.0, (220, 30, 30), ((0.2, 0.7), (0.5, 0.7))),
    SceneEvent("object", "car", 24.0, 27.0, (30, 60, 220), ((0.8, 0.8), (0.4, 0.8)), size=(0.22, 0.14)),
    SceneEvent("sound", "alarm", 33.0, 34.5, frequency=1000.0, level=0.5),
)
QUIET = ((0, 10), (17, 22), (29, 32))  # seconds of the file with nothing in them
FAST_RETRIES = {"alert_retry_base_s": 0.2, "alert_retry_max_s": 1.0, "alert_webhook_timeout_s": 2.0}


def seconds(iso: str) -> float:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - START).total_seconds()


def create(client: httpx.Client, name: str, condition: str, **extra) -> str:
    body = {"name": name, "cameras": [CAMERA], "condition": {"kind": condition}, **extra}
    response = client.post("/v1/alerts", json=body)
    assert response.status_code == 201, response.text
    return response.json()["rule_id"]


def starts(client: httpx.Client, rule_id: str) -> list[float]:
    return [seconds(f["start"]) for f in client.get(f"/v1/alerts/{rule_id}/firings").json()]


def test_a_file_with_known_events_fires_on_time_and_every_firing_survives_a_restart(tmp_path, redis_servers):
    redis = redis_servers()
    shared = {"redis_url": redis.url, "secret_key": Fernet.generate_key().decode(), **FAST_RETRIES}
    media = write_sample_video(tmp_path / "porch.mp4", width=320, height=240, fps=10, duration=40.0, events=EVENTS)
    receiver = WebhookReceiver()  # not started: the receiver is down
    with running_service(tmp_path / "first", **shared) as first, httpx.Client(base_url=first.url, timeout=60) as c:
        hooked = create(c, "motion to webhook", "motion", webhook={"url": receiver.url(), "secret": "s3cret-hmac"})
        cooled = create(c, "motion, cooldown", "motion", cooldown_s=60)
        sound = create(c, "sound", "sound")
        night = create(c, "thursday night", "motion", schedule={"days": ["thu"], "start": "22:00", "end": "06:00"})
        morning = create(c, "07-09 local", "motion", schedule={"start": "07:00", "end": "09:00"})
        with media.path.open("rb") as file:
            job = c.post("/v1/files", files={"file": ("porch.mp4", file)},
                         data={"camera_id": CAMERA, "start_time": START.isoformat(),
                               "timezone": "America/New_York"}).json()  # fmt: skip
        assert wait_for_job(c, job["job_id"])["state"] == "done"
        wait_for(lambda: len(starts(c, sound)) == 1, "the last clip's firing", timeout=60)

        motion = starts(c, hooked)
        assert len(motion) == 2 and 12 <= motion[0] <= 14 and 24 <= motion[1] <= 26, motion
        assert starts(c, cooled) == motion[:1]  # the car is within 60 s of the person
        assert 32 <= starts(c, sound)[0] <= 34
        assert starts(c, night) == motion  # Friday 03:00 in New York is Thursday night's window
        assert starts(c, morning) == []  # 08:00 in UTC, but 03:00 on the camera's clock
        every = c.get("/v1/firings", params={"since": START.isoformat()}).json()
        assert not [f for f in every if any(lo <= seconds(f["start"]) < hi for lo, hi in QUIET)]
        wait_for(
            lambda: all(f["delivery"]["attempts"] >= 2 for f in c.get(f"/v1/alerts/{hooked}/firings").json()[:1]),
            "retries against the receiver that is down",
            timeout=30,
        )
        pending = c.get(f"/v1/alerts/{hooked}/firings").json()
        assert [f["delivery"]["state"] for f in pending] == ["pending", "pending"]
        assert "omnisift_alert_outbox_pending 2.0" in c.get("/metrics").text

    receiver.start()  # the receiver is back while the service is down ...
    try:
        with running_service(tmp_path / "second", **shared) as second, httpx.Client(base_url=second.url) as c:
            wait_for(lambda: len(receiver.received) >= 2, "the deliveries after the restart", timeout=60)
            wait_for(
                lambda: (
                    [f["delivery"]["state"] for f in c.get(f"/v1/alerts/{hooked}/firings").json()]
                    == ["delivered", "delivered"]
                ),
                "the deliveries to be recorded",
                timeout=20,
            )
            delivered = [r.json() for r in receiver.received]
            assert [f["firing_id"] for f in delivered] == [f["firing_id"] for f in pending]  # once each, in order
            assert [r.headers["Idempotency-Key"] for r in receiver.received] == [f["firing_id"] for f in pending]
            assert all(r.headers["X-Omnisift-Signature"].startswith("sha256=") for r in receiver.received)
            assert "omnisift_alert_outbox_pending 0.0" in c.get("/metrics").text
    finally:
        receiver.stop()
