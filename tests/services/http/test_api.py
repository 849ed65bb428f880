"""The REST API end to end: real Ray Serve deployments, the embedded Redis, a generated CCTV file. (The
contract itself, bad requests and auth route by route, is checked in-process in test_routes.py, and fuzzed
in test_fuzz.py; here the fuzzing runs again, on a small budget, against the running service.)

The file is a minute of a still scene in which a person walks by (22-32 s) with an alarm (26-27 s);
the rest is quiet. The camera is in Europe/Berlin, so questions use Berlin wall-clock times.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from tests.fixtures.api_fuzzing import (
    CHECKS,
    WRONG_KEYS,
    budget,
    fuzzable,
    operation_of,
    operations,
    realistic,
    times_near,
    with_key,
)
from tests.fixtures.service import past_minute_unambiguous_in, running_service, wait_for_job

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

API_KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CAMERA = "lobby"
BERLIN = ZoneInfo("Europe/Berlin")
UPLOAD_LIMIT = 6 << 20
EVENTS = (
    SceneEvent("object", "person walking right", 22.0, 32.0, (220, 30, 30), ((0.15, 0.7), (0.8, 0.7))),
    SceneEvent("sound", "alarm", 26.0, 27.0, frequency=1000.0, level=0.5),
)


@dataclass(frozen=True)
class Footage:
    start: datetime  # UTC wall time of the first frame
    job: dict


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("service")
    with running_service(data_dir, api_key=API_KEY, max_upload_bytes=UPLOAD_LIMIT) as running:
        yield running


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def footage(client, tmp_path_factory) -> Footage:
    """The sample minute uploaded with a start time two hours ago (floored to the minute), in Berlin time."""
    media = write_sample_video(
        tmp_path_factory.mktemp("media") / "lobby.mp4", width=320, height=240, fps=10, duration=60.0, events=EVENTS
    )
    start = past_minute_unambiguous_in(BERLIN)
    local_start = start.astimezone(BERLIN).replace(tzinfo=None).isoformat()  # naive: read in the camera's zone
    with media.path.open("rb") as file:
        response = client.post(
            "/v1/files",
            files={"file": ("lobby.mp4", file, "video/mp4")},
            data={"camera_id": CAMERA, "start_time": local_start, "timezone": "Europe/Berlin"},
        )
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["job_id"])
    return Footage(start, job)


def at(footage: Footage, seconds: float) -> datetime:
    return footage.start + timedelta(seconds=seconds)


def test_uploaded_file_is_ingested_into_clips_on_wall_clock_time(service, client, footage):
    assert footage.job["state"] == "done" and footage.job["progress"] == 1.0
    assert footage.job["clips"] == 6
    assert not any(service.settings.uploads_dir.iterdir()), "the uploaded file was not removed after ingest"
    clip = client.get(f"/v1/clips/{CAMERA}@{int(footage.start.timestamp() * 1000)}").json()
    assert clip["start"] == footage.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 0 < clip["video_tokens_kept"] < clip["video_tokens_source"]
    # the default monitoring profile spends at most the 25% preset's total (video 0.77, audio 0.5 removed)
    video, audio = clip["video_tokens_source"], clip["audio_tokens_source"]
    assert clip["video_tokens_kept"] + clip["audio_tokens_kept"] <= video - int(video * 0.77) + audio - audio // 2
    assert clip["audio_tokens_kept"] > 0


def test_question_about_the_event_minute_cites_clips_covering_the_event(client, footage):
    minute = footage.start.astimezone(BERLIN).strftime("%H:%M")
    response = client.post("/v1/query", json={"question": f"What happened at {minute}?", "cameras": [CAMERA]})
    assert response.status_code == 200, response.text
    body = response.json()

    assert body["answer_source"] == "timeline"
    assert body["time_range"]["source"] == "question" and body["time_range"]["timezone"] == "Europe/Berlin"
    assert body["time_range"]["start"] == footage.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    covered = [(datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])) for e in body["evidence"]]
    assert any(s <= at(footage, 25) < e for s, e in covered), "no evidence clip covers the event"
    assert 0 < body["usage"]["sent_tokens"] < body["usage"]["full_tokens"]

    events = client.get("/v1/events", params={"camera_id": CAMERA, "start": at(footage, 0).isoformat(),
                                               "end": at(footage, 60).isoformat()}).json()  # fmt: skip
    assert len(events) == 1, events
    event_start, event_end = datetime.fromisoformat(events[0]["start"]), datetime.fromisoformat(events[0]["end"])
    assert at(footage, 20) <= event_start <= at(footage, 24) and at(footage, 30) <= event_end <= at(footage, 36)
    assert events[0]["audio_salience"] > 0.5
    assert event_start.astimezone(BERLIN).strftime("%H:%M:%S") in body["answer"]


def test_a_quiet_stretch_gets_no_invented_event(client, footage):
    response = client.post(
        "/v1/query",
        json={
            "question": "Anything going on?",
            "start": at(footage, 42).isoformat(),
            "end": at(footage, 58).isoformat(),
        },
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["time_range"]["source"] == "explicit"
    assert body["answer"].startswith(f"{CAMERA}: no activity from")
    assert body["evidence"] and all(e["activity"] < 0.02 and e["audio_salience"] < 0.34 for e in body["evidence"])


def test_streamed_answer_sends_evidence_tokens_and_done(client, footage):
    question = {"question": "what happened?", "start": at(footage, 20).isoformat(), "end": at(footage, 40).isoformat()}
    events: list[tuple[str, dict]] = []
    with client.stream("POST", "/v1/query", json={**question, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    names = [n for n, _ in events]
    assert names[0] == "evidence" and names[-1] == "done" and "token" in names
    streamed = "".join(d["text"] for n, d in events if n == "token")
    assert streamed == client.post("/v1/query", json=question).json()["answer"]
    assert events[-1][1]["answer_source"] == "timeline"


def test_metrics_report_the_camera_and_the_queries(client, footage):
    assert client.post("/v1/query", json={"question": "anything?"}).status_code == 200
    text = client.get("/metrics").text
    stored = re.search(rf'omnisift_camera_stored_bytes{{camera_id="{CAMERA}"}} ([\d.e+]+)', text)
    assert stored and float(stored.group(1)) > 0
    queries = re.search(r'omnisift_queries_total{answer_source="timeline"} ([\d.]+)', text)
    assert queries and float(queries.group(1)) >= 1


def test_health_needs_no_key_and_everything_else_does(service):
    with httpx.Client(base_url=service.url, timeout=30) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
        for method, path in (("GET", "/v1/streams"), ("POST", "/v1/query"), ("GET", "/metrics")):
            response = anonymous.request(method, path, json={"question": "x"} if method == "POST" else None)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
        wrong = anonymous.get("/v1/streams", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and API_KEY not in wrong.text


def test_upload_over_the_size_limit_is_refused(client):
    response = client.post("/v1/files", files={"file": ("big.mp4", b"\x00" * (UPLOAD_LIMIT + (2 << 20)))},
                           data={"camera_id": "c2"})  # fmt: skip
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_a_stream_with_credentials_never_echoes_them_and_duplicates_conflict(client):
    body = {"camera_id": "door", "url": "rtsp://admin:s3cret@127.0.0.1:9/stream"}
    created = client.post("/v1/streams", json=body)
    assert created.status_code == 201, created.text
    assert "s3cret" not in created.text and created.json()["url"] == "rtsp://***@127.0.0.1:9/stream"
    again = client.post("/v1/streams", json=body)
    assert again.status_code == 409 and "s3cret" not in again.text
    assert "s3cret" not in client.get("/v1/streams").text
    assert "s3cret" not in client.get("/v1/streams/door").text
    assert client.delete("/v1/streams/door").status_code == 204
    assert client.get("/v1/streams/door").status_code == 404


def test_the_key_comes_before_the_body_and_bodies_have_a_limit(service, client):
    def chunks(size: int):  # streamed: no Content-Length
        yield b'{"question": "'
        for _ in range(size // 65536):
            yield b"x" * 65536
        yield b'"}'

    with httpx.Client(base_url=service.url, timeout=60) as anonymous:
        for content in (b"{not json", b"x" * (8 << 20), chunks(8 << 20)):
            response = anonymous.post("/v1/query", content=content, headers={"content-type": "application/json"})
            assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
        assert anonymous.get("/openapi.json").status_code == 401 and anonymous.get("/docs").status_code == 401
    for content in (b'{"question": "' + b"x" * (2 << 20) + b'"}', chunks(2 << 20)):
        response = client.post("/v1/query", content=content, headers={"content-type": "application/json"})
        assert (response.status_code, response.json()["error"]["code"]) == (413, "payload_too_large")


def test_fuzzed_requests_get_no_5xx_and_none_passes_without_the_key(service, client, footage):
    """test_fuzz.py's invariants against the running Serve graph, on a small budget (4 cases per operation and
    mode). Last in this module: it adds streams, uploads files and purges the store."""
    described = client.get("/openapi.json").json()
    schema = fuzzable(client.get("/openapi.json").json())  # a copy: fuzzable() edits what it is given
    times = times_near(footage.start - timedelta(hours=1), footage.start + timedelta(hours=1))
    for label, mode in operations(described):
        statuses = fuzz(service.url, operation_of(schema, label), mode, times)
        assert statuses and max(statuses) < 500, (label, mode, statuses)


def fuzz(url: str, operation, mode: GenerationMode, times) -> list[int]:
    """Statuses of the operation's fuzzed cases, each checked against the schema; each is also sent without the
    key (or with a wrong one), which must be 401 on every route but health."""
    statuses: list[int] = []

    @budget(4)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case, data):
        if mode is GenerationMode.POSITIVE and data.draw(st.booleans(), label="realistic"):
            realistic(case, data, times)
        response = case.call_and_validate(base_url=url, headers=AUTH, checks=CHECKS, timeout=60)
        statuses.append(response.status_code)
        if case.path not in ("/healthz", "/readyz"):
            wrong = data.draw(st.sampled_from(WRONG_KEYS), label="key")
            refused = case.call(base_url=url, headers=with_key(wrong and wrong.format(key=API_KEY)), timeout=60)
            assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized"), case.path

    run()
    return statuses
