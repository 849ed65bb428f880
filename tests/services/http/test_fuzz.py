"""The REST API fuzzed from its own OpenAPI schema (tests/fixtures/api_fuzzing.py), in-process over the real
Gateway, Ingest and store on a real redis-server (as in test_routes.py): valid and invalid requests to every
operation never get a 5xx and are answered as the schema documents; without the key, every route but health
answers 401 to anything. Budget: per operation 30 valid and 20 invalid requests with the key and 10 without
it, plus 60 raw bodies (about 600 requests, under 30 s here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings
from services.deployments.gateway import Gateway
from services.deployments.ingest import Ingest
from services.http.app import HEALTH, create_api
from services.settings import Settings
from tests.fixtures.anchor_clips import FINGERPRINT, T0, record_at
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
from tests.fixtures.in_process import InProcessHandle

API_KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CASES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 20}
# Read from the app itself: no backend is needed to describe it.
RUNS = operations(create_api(None, Settings(api_key=API_KEY)).openapi())
GUARDED = sorted({label for label, _ in RUNS if label.split(" ", 1)[1] not in HEALTH})
NEAR_CLIPS = times_near(T0 - timedelta(hours=1), T0 + timedelta(hours=1))  # the clips are at T0


@dataclass(frozen=True)
class Fuzzed:
    app: FastAPI
    schema: schemathesis.BaseSchema
    video: bytes  # a playable 4-second MP4, for uploads that get past probing


@pytest.fixture(scope="module")
def fuzzed(redis_servers, tmp_path_factory, media_library):
    """A service with a camera and a few stored clips, so queries, events and clip reads reach the store."""
    redis = redis_servers(persistence=False)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        redis_url=redis.url,
        api_key=API_KEY,
        max_upload_bytes=1 << 20,
        alert_worker=False,
    )
    ingest = Ingest(settings, encoder=None)  # sources and jobs the fuzzer starts never reach an encoder
    gateway = Gateway(settings, InProcessHandle(ingest), answerer=None)
    store = AnchorStore(redis.client(), FINGERPRINT, settings.store_config())
    store.set_camera(CameraSettings("lobby", "Europe/Berlin"))
    for i in range(3):
        store.put(record_at("lobby", 10 * i, moving_frames=frozenset({3}) if i == 1 else frozenset()))
    app = create_api(gateway, settings)
    with TestClient(app, headers=AUTH) as client:
        schema = fuzzable(client.get("/openapi.json").json())
    schema.app = app  # cases are called in-process
    yield Fuzzed(app, schema, media_library.no_audio.path.read_bytes())
    for worker in [*ingest.cameras.values(), *ingest.jobs.values()]:
        worker.stop(timeout=5)


def test_every_operation_is_fuzzed():
    labels = {label for label, _ in RUNS}
    assert len(labels) == 25 and {"POST /v1/files", "GET /healthz", "DELETE /v1/jobs/{job_id}"} <= labels
    assert "GET /v1/firings/stream" not in labels  # endless: tests/services/http/test_alerts.py checks its input
    assert len(RUNS) == 25 + 18 and len(GUARDED) == 23  # invalid requests for the 18 operations with inputs


@pytest.mark.parametrize(("label", "mode"), RUNS, ids=[f"{label}-{mode.value}" for label, mode in RUNS])
def test_no_request_gets_a_5xx_and_every_answer_follows_the_schema(fuzzed, label, mode):
    statuses: list[int] = []

    @budget(CASES[mode])
    @given(case=operation_of(fuzzed.schema, label).as_strategy(generation_mode=mode), data=st.data())
    def run(case, data):
        if mode is GenerationMode.POSITIVE and data.draw(st.booleans(), label="realistic"):
            realistic(case, data, NEAR_CLIPS, fuzzed.video)
        response = case.call_and_validate(headers=AUTH, checks=CHECKS)
        statuses.append(response.status_code)

    run()
    assert statuses and max(statuses) < 500, statuses
    if mode is GenerationMode.POSITIVE:  # some got past validation, to the backend
        assert any(s != 422 for s in statuses), f"every valid {label} request was refused: {statuses}"
    else:
        assert any(400 <= s < 500 for s in statuses), f"no invalid {label} request was refused: {statuses}"


@pytest.mark.parametrize("label", GUARDED)
def test_without_the_key_every_route_but_health_answers_401_whatever_the_request(fuzzed, label):
    modes = [mode for run_label, mode in RUNS if run_label == label]
    cases = st.one_of(*(operation_of(fuzzed.schema, label).as_strategy(generation_mode=m) for m in modes))

    @budget(10)
    @given(case=cases, key=st.sampled_from(WRONG_KEYS))
    def run(case, key):
        response = case.call(headers=with_key(key and key.format(key=API_KEY)))
        assert response.status_code == 401, (label, case.formatted_path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"

    run()


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(["/v1/query", "/v1/files", "/v1/streams", "/metrics", "/docs", "/openapi.json", "/v9/x"]),
    body=st.binary(max_size=4096),
    content_type=st.sampled_from(["application/json", "multipart/form-data; boundary=x", "text/plain", ""]),
)
@budget(60)
def test_without_the_key_any_body_to_any_path_is_401(fuzzed, method, path, body, content_type):
    anonymous = TestClient(fuzzed.app, raise_server_exceptions=False)
    headers = {"content-type": content_type} if content_type else {}
    response = anonymous.request(method, path, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
