"""Long-form footage through the REST API in-process (real gateway, answerer, store, redis-server and segment files;
only Serve's transport is replaced): a camera-week under a hot-tier size, a 24-hour scene within the byte budget of
one hour of plain 25% tokens, a 6-hour question with 10 events, map-reduce LLM answers with progress events, and the
most-recent-day rule. Footage is generated time-compressed (tests/fixtures/long_footage.py)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings
from pipeline.store.tier_state import is_cold, thinned_level
from services.deployments.answerer import Answerer
from services.deployments.gateway import Gateway
from services.deployments.ingest import Ingest
from services.http.app import create_api
from services.models import model_setup
from services.settings import Settings
from tests.fixtures.in_process import InProcessHandle
from tests.fixtures.long_footage import footage, footage_clip

pytestmark = pytest.mark.e2e  # tens of thousands of generated clips

UTC = timezone.utc


def hour_floor(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


class LongApi:
    """The API over one store; `put` writes clips as ingest does (tiering and thinning included)."""

    def __init__(self, settings: Settings, answerer: bool = False):
        self.settings = settings
        self.fingerprint = model_setup(settings).fingerprint if answerer else "long-form-test|omnisift:v=0.77:a=0.5"
        self.ingest = Ingest(settings, encoder=None)
        handle = InProcessHandle(Answerer(settings)) if answerer else None
        self.gateway = Gateway(settings, InProcessHandle(self.ingest), handle)
        self.store = AnchorStore(self.gateway.store.client, self.fingerprint, settings.store_config())
        self.client = TestClient(create_api(self.gateway, settings))

    def query(self, **body) -> dict:
        response = self.client.post("/v1/query", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def stream(self, **body) -> list[tuple[str, dict]]:
        with self.client.stream("POST", "/v1/query", json={**body, "stream": True}) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
        events = []
        for block in text.strip().split("\n\n"):
            name, data = block.split("\n", 1)
            events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
        return events

    def close(self) -> None:
        self.client.close()
        self.ingest.close()


def settings_for(redis_servers, tmp_path_factory, **overrides) -> Settings:
    redis = redis_servers(persistence=False)
    return Settings(data_dir=tmp_path_factory.mktemp("longform"), redis_url=redis.url, alert_worker=False, **overrides)


def hours_from(start: datetime, hours: float) -> dict:
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def redis_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


# ---- a camera-week under the hot-tier size -------------------------------------------------------------------

WEEK_CLIP_S = 60  # time-compressed: a week of one-minute clips (the store takes clips up to 120 s)
HOT_TIER = 24 << 20


def test_a_camera_week_stays_under_the_hot_tier_size_and_every_event_is_answerable(redis_servers, tmp_path_factory):
    settings = settings_for(redis_servers, tmp_path_factory, hot_tier_bytes=HOT_TIER, retention_max_bytes=None)
    api = LongApi(settings)
    try:
        baseline = redis_memory(api.store.client)
        start = hour_floor(datetime.now(UTC)) - timedelta(days=7, hours=1)
        rng = random.Random(7)
        events = sorted(start + timedelta(minutes=rng.randrange(7 * 24 * 60)) for _ in range(21))
        written, peak = 0, 0
        for record in footage("gate", start, 7 * 24, events, api.fingerprint, dim=16, seconds=WEEK_CLIP_S):
            api.store.put(record)
            written += int(record.tokens.video.embeddings.numel() + record.tokens.audio.embeddings.numel()) * 2
            if record.start.minute == 0:
                peak = max(peak, redis_memory(api.store.client) - baseline)
        peak = max(peak, redis_memory(api.store.client) - baseline)
        print(f"\nweek: {written / 2**20:.0f} MiB of embeddings written, Redis peak +{peak / 2**20:.1f} MiB, "
              f"cold files {api.store.tiers.cold.disk_bytes() / 2**20:.0f} MiB")  # fmt: skip
        assert written > 10 * HOT_TIER  # the week is far larger than the hot tier ...
        assert peak <= HOT_TIER  # ... and Redis, measured by itself, stays under it
        for event in events:
            body = api.query(question=f"what happened at {event.isoformat().replace('+00:00', 'Z')}?")
            clip_id = f"gate@{int((event - (event - start) % timedelta(seconds=WEEK_CLIP_S)).timestamp() * 1000)}"
            cited = {e["clip_id"]: e for e in body["evidence"]}
            assert clip_id in cited and cited[clip_id]["activity"] > 0
            assert "activity from" in body["answer"]
        old = api.store.get(f"gate@{int((events[0] - (events[0] - start) % timedelta(minutes=1)).timestamp() * 1000)}")
        assert is_cold(old.meta) and len(old.tokens.video) == 1200  # the oldest event's tokens, read from disk
        assert api.client.get(f"/v1/clips/{old.meta.clip_id}").json()["tier"] == "cold"
    finally:
        api.close()


# ---- 24 hours within the budget of one hour ---------------------------------------------------------------------


def test_a_day_of_footage_stays_within_one_hours_byte_budget_and_every_event_stays_answerable(
    redis_servers, tmp_path_factory
):
    one_clip = footage_clip("yard", datetime(2026, 1, 1, tzinfo=UTC), "x")
    from pipeline.store.codec import encode_record

    clip_tokens = int(encode_record(one_clip, "float16")[1]["tokens"])
    budget = 360 * clip_tokens  # one hour of plain (never thinned) 25% clips
    settings = settings_for(
        redis_servers, tmp_path_factory, thinning_budget_bytes=budget, hot_tier_bytes=48 << 20, retention_max_bytes=None
    )
    api = LongApi(settings)
    try:
        start = hour_floor(datetime.now(UTC)) - timedelta(hours=25)
        events = [start + timedelta(minutes=70 * k + 13, seconds=25) for k in range(20)]
        highest = 0
        for record in footage("yard", start, 24, events, api.fingerprint):
            api.store.put(record)
            highest = max(highest, int(api.store.client.hget(api.store._key("yard", "usage"), "tokens")))
        assert highest <= budget
        metas = {m.clip_id: m for m in api.store.clips("yard")}
        assert len(metas) == 24 * 360  # nothing evicted: thinned instead
        levels = [thinned_level(m) for m in metas.values()]
        print(f"\nday: {levels.count(0)} whole, {levels.count(1)} thinned, {levels.count(2)} scores only")
        assert levels.count(2) > 0 and levels.count(1) > 0
        for event in events:
            body = api.query(question=f"what happened at {event.isoformat().replace('+00:00', 'Z')}?")
            clip = [e for e in body["evidence"] if e["start"] <= event.isoformat().replace("+00:00", "Z") < e["end"]]
            assert clip and clip[0]["seen_as"] == "tokens" and clip[0]["thinned"] == "whole"
            assert clip[0]["video_tokens_kept"] == 200  # its tokens were kept whole
        quiet = api.query(start=start.isoformat(), end=(start + timedelta(hours=1)).isoformat(), question="what?")
        assert quiet["coverage"]["thinned_ranges"] and "was thinned" in quiet["answer"]
    finally:
        api.close()


# ---- a question over 6 hours with 10 events; the most recent day -------------------------------------------------


@pytest.fixture(scope="module")
def six_hours(redis_servers, tmp_path_factory):
    """Six hours of the yard camera, from 30 hours ago, with 10 events; the camera is in UTC."""
    settings = settings_for(redis_servers, tmp_path_factory, retention_max_bytes=None)
    api = LongApi(settings)
    api.store.set_camera(CameraSettings("yard", "UTC"))
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=30)
    events = [start + timedelta(minutes=35 * k + 7, seconds=15) for k in range(10)]
    for record in footage("yard", start, 6, events, api.fingerprint):
        api.store.put(record)
    yield api, start, events
    api.close()


def test_a_six_hour_question_names_all_ten_events_and_its_coverage_adds_up(six_hours):
    api, start, events = six_hours
    body = api.query(question="what happened?", start=start.isoformat(), end=(start + timedelta(hours=6)).isoformat())
    assert body["answer_source"] == "timeline"
    found = api.client.get(
        "/v1/events", params={"start": start.isoformat(), "end": (start + timedelta(hours=6)).isoformat()}
    )
    assert len(found.json()) == 10
    cited = {e["clip_id"] for e in body["evidence"]}
    for event in found.json():
        assert cited & set(event["clip_ids"]), f"the evidence misses the event at {event['start']}"
    coverage = body["coverage"]
    assert coverage["clips_in_range"] == 6 * 360
    assert coverage["clips_as_tokens"] + coverage["clips_summarised"] == coverage["clips_in_range"]
    assert coverage["clips_as_tokens"] == sum(e["seen_as"] == "tokens" for e in body["evidence"])
    assert body["usage"]["sent_tokens"] <= api.settings.token_budget
    for event in events:
        assert f"{event:%H:%M}" in body["answer"]  # the timeline answer says every event's time


def test_at_a_clock_time_without_footage_today_answers_from_the_most_recent_day_that_has(six_hours):
    api, _, events = six_hours
    event = events[2]  # about 28 hours ago: today's occurrence of that minute (4 hours ago) has no footage
    body = api.query(question=f"what happened at {event:%H:%M}?")
    used = body["time_range"]
    assert used["asked_day"] == (event + timedelta(days=1)).date().isoformat()
    assert used["start"] == event.replace(second=0).isoformat().replace("+00:00", "Z")
    assert body["answer"].startswith(f"No footage at {event:%H:%M} on {used['asked_day']}")
    assert any(e["start"] <= event.isoformat().replace("+00:00", "Z") < e["end"] for e in body["evidence"])


# ---- map-reduce with the tiny model -------------------------------------------------------------------------------


def test_an_llm_answer_over_more_than_one_prompt_summarises_batches_with_progress_then_answers(
    redis_servers, tmp_path_factory
):
    settings = settings_for(
        redis_servers, tmp_path_factory, answer_mode="llm", token_budget=2048, summary_batches=3, summary_tokens=8,
        max_new_tokens=8, hot_tier_bytes=2 << 20, retention_max_bytes=None,
    )  # fmt: skip
    api = LongApi(settings, answerer=True)
    try:
        api.store.set_camera(CameraSettings("yard", "UTC"))
        start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
        events = [start + timedelta(minutes=12 * k + 5) for k in range(4)]
        for record in footage("yard", start, 1, events, api.fingerprint):
            api.store.put(record)
        assert sum(is_cold(m) for m in api.store.clips("yard")) > 100  # most of the hour is on disk
        stream = api.stream(
            question="what happened?", start=start.isoformat(), end=(start + timedelta(hours=1)).isoformat()
        )
        names = [name for name, _ in stream]
        assert names[0] == "evidence" and names[-1] == "done"
        progress = [data for name, data in stream if name == "progress"]
        assert [p["done"] for p in progress if p["stage"] == "summaries"] == [1, 2, 3]
        assert progress[-1]["stage"] == "answer"
        assert names.index("progress") < max(i for i, n in enumerate(names) if n == "token")
        done = stream[-1][1]
        assert done["answer_source"] == "llm"
        coverage = done["coverage"]
        assert coverage["summary_batches"] == 3 and coverage["clips_in_range"] == 360
        assert coverage["clips_as_tokens"] + coverage["clips_summarised"] == 360
        assert coverage["clips_as_tokens"] > 2048 // 280  # more than one prompt holds
        assert coverage["clips_cold"] > 0
        breakdown = done["latency_breakdown"]
        assert breakdown["token_read_ms"] >= breakdown["cold_read_ms"] > 0
        cited = {e["clip_id"] for e in stream[0][1]["evidence"]}
        found = api.client.get(
            "/v1/events", params={"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
        )
        assert all(cited & set(e["clip_ids"]) for e in found.json())
    finally:
        api.close()
