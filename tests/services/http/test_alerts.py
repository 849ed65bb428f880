"""Alerts through the REST API, in process (fast tier): the real Gateway (with its alert worker), Ingest and
store on a real redis-server, served by uvicorn on 127.0.0.1 so Server-Sent Events stream as they would in
the service; webhooks go to a real receiver. Clips are written to the store as the encoder writes them."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings
from services.cli.client import Client
from services.cli.main import app as cli_app
from services.deployments.gateway import Gateway
from services.deployments.ingest import Ingest
from services.http.app import create_api
from services.settings import Settings
from tests.fixtures.anchor_clips import FINGERPRINT, T0, record_at
from tests.fixtures.in_process import InProcessHandle
from tests.fixtures.network import free_port
from tests.fixtures.service import wait_for

API_KEY = "alerts-key"
TOKEN, HEADER_SECRET, SIGNING_SECRET, PATH_SECRET = "tok-3b9e", "hdr-77c1", "sig-5e0d", "p4th-91f"


@dataclass(frozen=True)
class Service:
    http: httpx.Client
    store: AnchorStore
    gateway: Gateway


@pytest.fixture(scope="module")
def service(redis_servers, tmp_path_factory) -> Iterator[Service]:
    redis = redis_servers(persistence=False)
    settings = Settings(data_dir=tmp_path_factory.mktemp("alerts"), redis_url=redis.url, api_key=API_KEY,
                        alert_retry_base_s=0.05, alert_retry_max_s=0.2, alert_webhook_timeout_s=2.0)  # fmt: skip
    ingest = Ingest(settings, encoder=None)
    gateway = Gateway(settings, InProcessHandle(ingest), answerer=None)
    store = AnchorStore(redis.client(), FINGERPRINT, settings.store_config())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_api(gateway, settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn to start", timeout=20)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10, trust_env=False) as http:
        yield Service(http, store, gateway)
    server.should_exit = server.force_exit = True  # streams still open end with the server
    thread.join(10)
    gateway.alert_worker.stop()
    ingest.close()


def rule_body(camera: str, receiver=None, **changes) -> dict:
    body = {"name": f"motion on {camera}", "cameras": [camera], "condition": {"kind": "motion"}}
    if receiver is not None:
        body["webhook"] = {"url": receiver.url(f"/hook/{PATH_SECRET}?key={PATH_SECRET}"), "bearer_token": TOKEN,
                           "headers": {"X-Api-Key": HEADER_SECRET}, "secret": SIGNING_SECRET}  # fmt: skip
    return {**body, **changes}


def create(service: Service, body: dict) -> dict:
    response = service.http.post("/v1/alerts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def put_clip(service: Service, camera: str, offset_s: float, moving: bool = True) -> str:
    service.store.set_camera(CameraSettings(camera, "Europe/Berlin"))
    record = record_at(camera, offset_s, moving_frames=frozenset({3}) if moving else frozenset())
    return service.store.put(record).clip_id


def test_a_rule_round_trips_and_its_credentials_are_never_shown(service, webhook_receiver):
    rule = create(service, rule_body("cam-crud", webhook_receiver, cooldown_s=60, severity="critical"))
    assert (rule["version"], rule["severity"], rule["cooldown_s"]) == (1, "critical", 60)
    assert rule["condition"]["min_level"] == pytest.approx(0.02)  # the timeline's active-chunk share
    assert rule["webhook"] == {
        "url": f"http://127.0.0.1:{webhook_receiver.port}/…", "bearer_token": True, "header_names": ["X-Api-Key"],
        "signed": True, "body_template": None, "content_type": "application/json", "max_attempts": 10,
    }  # fmt: skip
    listed = service.http.get("/v1/alerts").text
    shown = service.http.get(f"/v1/alerts/{rule['rule_id']}").text
    for text in (json.dumps(rule), listed, shown):
        assert not any(secret in text for secret in (TOKEN, HEADER_SECRET, SIGNING_SECRET, PATH_SECRET))
    replaced = service.http.put(f"/v1/alerts/{rule['rule_id']}", json=rule_body("cam-crud", None, enabled=False))
    assert replaced.status_code == 200 and replaced.json()["version"] == 2 and replaced.json()["webhook"] is None
    assert service.http.delete(f"/v1/alerts/{rule['rule_id']}").status_code == 204
    gone = service.http.get(f"/v1/alerts/{rule['rule_id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_rule"


@pytest.mark.parametrize(
    ("changes", "status", "code", "reason"),
    [
        ({"condition": {"kind": "question", "question": "is a person at the door?"}}, 400, "invalid_rule",
         "needs a language model that produces language"),
        ({"condition": {"kind": "motion", "question": "why?"}}, 400, "invalid_rule", "only a question condition"),
        ({"condition": {"kind": "smell"}}, 422, "invalid_request", "condition.kind"),
        ({"condition": {"kind": "motion", "min_level": 1.5}}, 422, "invalid_request", "condition.min_level"),
        ({"condition": {"kind": "motion", "min_level": "0.5"}}, 422, "invalid_request", "condition.min_level"),
        ({"schedule": {"days": ["someday"]}}, 422, "invalid_request", "schedule.days"),
        ({"schedule": {"start": "25:00"}}, 422, "invalid_request", "schedule.start"),
        ({"cooldown_s": -1}, 422, "invalid_request", "cooldown_s"),
        ({"cameras": ["no spaces"]}, 422, "invalid_request", "cameras"),
        ({"webhook": {"url": "ftp://127.0.0.1/x"}}, 400, "forbidden_source", "scheme 'ftp' is not allowed"),
        ({"webhook": {"url": "http://169.254.169.254/latest"}}, 400, "forbidden_source", "metadata endpoint"),
        ({"webhook": {"url": "http://u:p@127.0.0.1/x"}}, 400, "forbidden_source", "may not carry credentials"),
        ({"webhook": {"url": "http://host.invalid/x"}}, 400, "invalid_rule", "does not resolve"),
        ({"webhook": {"url": "http://127.0.0.1/x", "headers": {"Authorization": "x"}}}, 422, "invalid_request",
         "set by the service"),
        ({"webhook": {"url": "http://127.0.0.1/x", "body_template": "${nope}"}}, 400, "invalid_rule", "unknown fields"),
        ({"webhook": {"url": "http://127.0.0.1/x", "body_template": '{"a": ${rule_name}}'}}, 400, "invalid_rule",
         "does not render JSON"),
        ({"extra": 1}, 422, "invalid_request", "extra"),
    ],
)  # fmt: skip
def test_invalid_rules_are_refused_with_the_reason(service, changes, status, code, reason):
    response = service.http.post("/v1/alerts", json={**rule_body("cam-bad"), **changes})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and reason in error["message"], error


def test_unknown_rules_and_firings_are_404(service):
    assert service.http.get(f"/v1/alerts/{'0' * 32}/firings").json()["error"]["code"] == "unknown_rule"
    assert service.http.put(f"/v1/alerts/{'0' * 32}", json=rule_body("x")).status_code == 404
    assert service.http.get(f"/v1/firings/{'0' * 32}").json()["error"]["code"] == "unknown_firing"
    assert service.http.get("/v1/alerts/not-an-id").status_code == 422


def test_a_stored_clip_fires_and_its_firing_is_delivered_and_listed(service, webhook_receiver):
    rule = create(service, rule_body("cam-fire", webhook_receiver))
    put_clip(service, "cam-fire", 0, moving=False)
    clip_id = put_clip(service, "cam-fire", 10)
    wait_for(lambda: webhook_receiver.received, "the webhook delivery", timeout=20)
    [got] = webhook_receiver.received
    assert got.path == f"/hook/{PATH_SECRET}?key={PATH_SECRET}" and got.headers["Authorization"] == f"Bearer {TOKEN}"
    firing = got.json()
    assert firing["clip_ids"] == [clip_id] and firing["start"] == "2026-03-14T14:00:12Z"  # chunk 1 of the clip
    by_rule = service.http.get(f"/v1/alerts/{rule['rule_id']}/firings").json()
    assert [f["firing_id"] for f in by_rule] == [firing["firing_id"]]
    since = service.http.get("/v1/firings", params={"since": (T0 + timedelta(seconds=12)).isoformat()}).json()
    assert firing["firing_id"] in [f["firing_id"] for f in since]
    later = service.http.get("/v1/firings", params={"since": (T0 + timedelta(seconds=13)).isoformat()}).json()
    assert firing["firing_id"] not in [f["firing_id"] for f in later]
    one = wait_for(
        lambda: (
            (f := service.http.get(f"/v1/firings/{firing['firing_id']}").json())["delivery"]["state"] == "delivered"
            and f
        ),
        "the delivery to be recorded",
        timeout=10,
    )
    assert one["delivery"]["attempts"] == 1 and one["scores"]["activity"] > 0 and one["rule_version"] == 1


def test_a_firing_that_cannot_be_delivered_is_dead_lettered_visibly_and_never_logs_credentials(
    service, webhook_receiver, caplog
):
    webhook_receiver.status = 500
    body = rule_body("cam-dead", webhook_receiver)
    body["webhook"]["max_attempts"] = 2
    create(service, body)
    put_clip(service, "cam-dead", 0)

    def dead() -> list:
        return service.http.get("/v1/firings", params={"delivery": "dead"}).json()

    [firing] = wait_for(lambda: [f for f in dead() if f["camera_id"] == "cam-dead"], "the dead letter", timeout=20)
    assert firing["delivery"]["attempts"] == 2 and "answered 500" in firing["delivery"]["last_error"]
    metrics = service.http.get("/metrics").text
    assert "omnisift_alert_dead_letters 1.0" in metrics and "omnisift_alert_firings" in metrics
    for text in (caplog.text, json.dumps(firing)):
        assert not any(secret in text for secret in (TOKEN, HEADER_SECRET, SIGNING_SECRET, PATH_SECRET))


def read_events(service: Service, count: int, last_event_id: str | None = None, after=None) -> list[tuple[str, dict]]:
    """The first `count` firing events of a new SSE connection; `after` runs once the stream is open."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    events: list[tuple[str, dict]] = []
    with service.http.stream("GET", "/v1/firings/stream", headers=headers, timeout=20) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"  # the stream is open: the server has read where to start
        if after is not None:
            after()
        event_id = None
        for line in lines:
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                events.append((event_id, json.loads(line[6:])))
                if len(events) == count:
                    return events
    return events


def test_the_firing_stream_sends_new_firings_and_resumes_from_last_event_id(service):
    rule = create(service, rule_body("cam-sse"))
    [(first_id, first)] = read_events(service, 1, after=lambda: put_clip(service, "cam-sse", 0))
    assert first["camera_id"] == "cam-sse" and first["delivery"]["state"] == "none"  # no webhook: SSE and API only
    put_clip(service, "cam-sse", 20)
    put_clip(service, "cam-sse", 40)
    wait_for(lambda: len(service.http.get(f"/v1/alerts/{rule['rule_id']}/firings").json()) == 3, "two more firings")
    resumed = read_events(service, 2, last_event_id=first_id)
    assert [e["start"] for _, e in resumed] == ["2026-03-14T14:00:22Z", "2026-03-14T14:00:42Z"]
    assert all(event_id > first_id for event_id, _ in resumed)
    bad = service.http.get("/v1/firings/stream", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and "last-event-id" in bad.json()["error"]["message"]


def cli(service: Service, *args: str, env: dict[str, str] | None = None):
    """`omnisift <args>` in process, against the service over HTTP."""
    url = str(service.http.base_url).rstrip("/")
    return CliRunner().invoke(cli_app, [*args, "--url", url, "--api-key", API_KEY], env=env)


def test_the_cli_creates_lists_shows_and_deletes_rules_without_printing_credentials(service, webhook_receiver):
    created = cli(
        service, "alerts", "create", "--name", "night yard", "--condition", "motion", "--camera", "cam-cli",
        "--for", "4", "--days", "fri,sat", "--hours", "22:00-06:00", "--cooldown", "300", "--severity", "critical",
        "--webhook", webhook_receiver.url(), "--token-env", "HOOK_TOKEN", "--secret-env", "HOOK_SECRET", "--json",
        env={"HOOK_TOKEN": TOKEN, "HOOK_SECRET": SIGNING_SECRET},
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    rule = json.loads(created.output)
    assert rule["schedule"] == {"days": ["fri", "sat"], "start": "22:00", "end": "06:00"}
    assert rule["condition"]["min_duration_s"] == 4 and rule["webhook"]["bearer_token"] and rule["webhook"]["signed"]
    listed = cli(service, "alerts", "list")
    assert listed.exit_code == 0 and f"{rule['rule_id']}  'night yard' v1: motion >= 0.02 for 4 s on cam-cli" in (
        listed.output
    )
    shown = cli(service, "alerts", "show", rule["rule_id"])
    for output in (created.output, listed.output, shown.output):
        assert TOKEN not in output and SIGNING_SECRET not in output
    assert cli(service, "alerts", "firings", rule["rule_id"]).output == "no firings\n"
    assert cli(service, "alerts", "delete", rule["rule_id"]).exit_code == 0
    missing = cli(service, "alerts", "show", rule["rule_id"])
    assert missing.exit_code == 1 and "unknown_rule" in missing.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--name", "q", "--condition", "question", "--question", "is a person at the door?"],
         "needs a language model that produces language"),
        (["--name", "x", "--condition", "motion", "--hours", "22:00"], "--hours takes a window like 22:00-06:00"),
        (["--name", "x", "--condition", "motion", "--webhook", "http://127.0.0.1:9/", "--token-env", "UNSET_VAR_X"],
         "UNSET_VAR_X, which is not set"),
        (["--condition", "motion"], "give --name and --condition"),
        (["--name", "x", "--condition", "motion", "--webhook", "http://169.254.169.254/"], "metadata endpoint"),
    ],
)  # fmt: skip
def test_the_cli_explains_a_refused_rule_in_one_line(service, args, fragment):
    result = cli(service, "alerts", "create", *args)
    assert result.exit_code == 1 and fragment in result.output and len(result.output.strip().splitlines()) == 1


def test_open_firing_streams_do_not_hold_up_the_rest_of_the_api(service):
    """More streams than the event loop's default thread pool has threads (6 on 2 cores), all waiting."""
    with contextlib.ExitStack() as streams:
        for _ in range(10):
            response = streams.enter_context(service.http.stream("GET", "/v1/firings/stream", timeout=20))
            assert next(response.iter_lines()) == "retry: 2000"
        began = time.monotonic()
        assert service.http.get("/v1/alerts", timeout=5).status_code == 200
        assert time.monotonic() - began < 1.0


def test_a_clip_that_cannot_be_evaluated_is_skipped_and_the_next_one_fires(service):
    rule = create(service, rule_body("cam-broken"))
    put_clip(service, "cam-broken", 0, moving=False)
    log_key = service.store.clip_log_key("cam-broken")
    service.store.client.xadd(log_key, {"clip": "cam-broken@not-a-time"})  # an entry no clip can answer
    put_clip(service, "cam-broken", 20)
    wait_for(lambda: service.http.get(f"/v1/alerts/{rule['rule_id']}/firings").json(), "the next clip's firing", 10)
    assert service.store.client.xpending(log_key, "alerts")["pending"] == 0  # nothing left to come back


def test_the_cli_client_replays_the_firing_stream_from_an_event_id(service):
    rule = create(service, rule_body("cam-replay"))
    put_clip(service, "cam-replay", 0)
    [firing] = wait_for(lambda: service.http.get(f"/v1/alerts/{rule['rule_id']}/firings").json(), "the firing", 10)
    newest = service.gateway.alerts.alerts.last_event_id()  # the stream's last entry so far
    with Client(str(service.http.base_url), API_KEY) as client:
        events = client.firing_stream("0-0")  # from the log's beginning
        replayed = []
        for event_id, event in events:
            replayed.append((event_id, event.firing_id))
            if event_id == newest:
                break
        events.close()
    assert firing["firing_id"] in [f for _, f in replayed]
    assert [i for i, _ in replayed] == sorted({i for i, _ in replayed}, key=lambda i: tuple(map(int, i.split("-"))))
