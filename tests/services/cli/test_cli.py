"""The `omnisift` CLI against a real service that `omnisift serve` runs (a subprocess, started once).

Client commands run in-process through typer's CliRunner. The served camera 'gate' is in Europe/Berlin;
its 30 s of footage has a person walking by (11-19 s) with an alarm (14-15 s) and is quiet otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from services.cli.main import app
from tests.fixtures.cli import OMNISIFT_COMMAND, unconfigured_env
from tests.fixtures.network import free_port
from tests.fixtures.service import past_minute_unambiguous_in, wait_for

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers

API_KEY = "cli-test-key-5d1e"
CAMERA = "gate"
ZONE = "Europe/Berlin"
BERLIN = ZoneInfo(ZONE)
EVENTS = (
    SceneEvent("object", "person walking right", 11.0, 19.0, (220, 30, 30), ((0.15, 0.7), (0.8, 0.7))),
    SceneEvent("sound", "alarm", 14.0, 15.0, frequency=1000.0, level=0.5),
)
START_DEADLINE_S = 240.0
STOP_DEADLINE_S = 60.0


@dataclass(frozen=True)
class Served:
    process: subprocess.Popen
    url: str
    port: int
    config: Path  # YAML with the port, data dir and API key: what `--config` hands the client commands
    log: Path


@dataclass(frozen=True)
class Footage:
    path: Path
    start: datetime  # UTC wall time of the first frame
    ingest: Result  # what `omnisift ingest` printed

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)


def omnisift(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process, with none of the OMNISIFT_* variables of the test process."""
    clean = {name: None for name in ("OMNISIFT_URL", "OMNISIFT_API_KEY", "OMNISIFT_CONFIG")}
    return CliRunner().invoke(app, list(args), env={**clean, **(env or {})})


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), "a deliberate exit, not a crash"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    """`omnisift --config FILE serve` in its own process group, as a user would run it."""
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    config = root / "omnisift.yaml"
    settings = {"data_dir": str(root / "data"), "host": "127.0.0.1", "port": port, "api_key": API_KEY}
    config.write_text(yaml.safe_dump(settings))
    log = root / "serve.log"
    command = [OMNISIFT_COMMAND, "--config", str(config), "serve"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=unconfigured_env(), start_new_session=True
        )
    try:

        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"omnisift serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            return "omnisift is serving at" in log.read_text()

        wait_for(serving, "omnisift serve to print its URL", timeout=START_DEADLINE_S, every=0.5)
        yield Served(process, f"http://127.0.0.1:{port}", port, config, log)
    finally:
        if process.poll() is None:  # a test failed before the shutdown test: stop it the same way
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def footage(served, tmp_path_factory) -> Footage:
    """The sample uploaded with `omnisift ingest`, its start two hours ago given in Berlin time without an offset."""
    media = write_sample_video(
        tmp_path_factory.mktemp("media") / "gate.mp4", width=320, height=240, fps=10, duration=30.0, events=EVENTS
    )
    start = past_minute_unambiguous_in(BERLIN)
    local_start = start.astimezone(BERLIN).replace(tzinfo=None).isoformat()
    result = omnisift(
        "ingest", str(media.path), "--camera", CAMERA, "--start-time", local_start, "--timezone", ZONE,
        "--url", served.url, "--api-key", API_KEY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Footage(media.path, start, result)


def local(instant: datetime, pattern: str = "%H:%M:%S") -> str:
    return instant.astimezone(BERLIN).strftime(pattern)


# ---- serve and ingest ------------------------------------------------------------------------------------


def test_serve_prints_the_url_it_answers_on(served):
    assert f"omnisift is serving at {served.url} " in served.log.read_text()
    assert httpx.get(f"{served.url}/healthz", timeout=30).json() == {"status": "ok"}


def test_ingest_uploads_the_file_and_waits_until_its_clips_are_stored(footage):
    result = footage.ingest
    assert result.exit_code == 0, result.output
    assert "uploaded gate.mp4: job " in result.stdout
    assert result.stdout.strip().endswith(f"done: 3 clips stored for camera {CAMERA}")


def test_ingest_json_reports_the_finished_job(served, footage):
    start = footage.at(3600).isoformat()  # a later hour: new clips, same camera
    result = omnisift(
        "--url", served.url, "--api-key", API_KEY,
        "ingest", str(footage.path), "--camera", CAMERA, "--start-time", start, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["state"] == "done" and job["progress"] == 1.0 and job["clips"] == 3 and job["camera_id"] == CAMERA
    assert f"job {job['job_id']}" in result.stderr  # progress notes stay off stdout


# ---- query -----------------------------------------------------------------------------------------------


def test_query_at_the_event_prints_the_answer_evidence_and_usage(served, footage):
    question = f"what happened at {local(footage.at(11))}?"
    result = omnisift("--config", str(served.config), "query", question, "--camera", CAMERA)  # key and URL from it
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    assert lines[0].startswith(f"{CAMERA}: activity from {local(footage.at(10))} to {local(footage.at(12))} {ZONE}")
    assert f"evidence: 1 clip (times in {ZONE})" in result.stdout
    row = next(line for line in lines if line.lstrip().startswith(CAMERA) and "activity from" not in line)
    assert f"{local(footage.at(10), '%Y-%m-%d %H:%M:%S')}-{local(footage.at(20))}" in row
    assert lines[-2].startswith("sent ") and " tokens (" in lines[-2]
    assert lines[-1] == "coverage: 1 clip in range, 1 as tokens, 0 summarised"
    assert "answered from the event timeline (answer_source: timeline) in " in lines[-2]


def test_query_json_is_the_api_response(served, footage):
    question = f"what happened at {local(footage.at(11))}?"
    result = omnisift("query", question, "--url", served.url, "--api-key", API_KEY, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)

    assert body["answer_source"] == "timeline"
    assert body["time_range"]["timezone"] == ZONE and body["time_range"]["source"] == "question"
    assert datetime.fromisoformat(body["time_range"]["instant"]) == footage.at(11)
    spans = [(datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])) for e in body["evidence"]]
    assert any(start <= footage.at(11) < end for start, end in spans)
    assert 0 < body["usage"]["sent_tokens"] < body["usage"]["full_tokens"]


def test_query_at_a_quiet_time_reports_no_activity(served, footage):
    result = omnisift("query", f"what happened at {local(footage.at(25))}?", "--url", served.url,
                      "--api-key", API_KEY, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["answer"].startswith(f"{CAMERA}: no activity from {local(footage.at(25))}")
    assert body["evidence"] and all(e["activity"] < 0.02 for e in body["evidence"])


def test_streamed_query_prints_the_same_answer_then_evidence(served, footage):
    window = ("--start", footage.at(0).isoformat(), "--end", footage.at(30).isoformat())
    keyed = ("--url", served.url, "--api-key", API_KEY)
    whole = json.loads(omnisift("query", "anything?", *window, *keyed, "--json").stdout)
    result = omnisift("query", "anything?", *window, *keyed, "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(whole["answer"] + "\n")
    assert f"evidence: {len(whole['evidence'])} clips (times in {ZONE})" in result.stdout
    assert "answer_source: timeline" in result.stdout.splitlines()[-1]


def test_streamed_query_json_prints_one_event_per_line(served, footage):
    window = ("--start", footage.at(0).isoformat(), "--end", footage.at(30).isoformat())
    result = omnisift("query", "anything?", *window, "--url", served.url, "--api-key", API_KEY, "--stream", "--json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "evidence" and names[-1] == "done" and "token" in names
    assert len(events[0]["data"]["evidence"]) == 3
    assert events[-1]["data"]["answer_source"] == "timeline"


# ---- events ----------------------------------------------------------------------------------------------


def test_events_lists_the_event_from_the_environment_settings(served, footage):
    window = ("--start", footage.at(0).isoformat(), "--end", footage.at(30).isoformat())
    env = {"OMNISIFT_URL": served.url, "OMNISIFT_API_KEY": API_KEY}
    result = omnisift("events", "--camera", CAMERA, *window, "--json", env=env)
    assert result.exit_code == 0, result.output
    (event,) = json.loads(result.stdout)
    start, end = datetime.fromisoformat(event["start"]), datetime.fromisoformat(event["end"])
    assert footage.at(8) <= start <= footage.at(12) and footage.at(18) <= end <= footage.at(22)
    assert event["audio_salience"] > 0.5

    table = omnisift("events", "--camera", CAMERA, *window, env=env)
    assert table.exit_code == 0, table.output
    assert "1 event (times in UTC)" in table.stdout
    assert start.strftime("%Y-%m-%d %H:%M:%S") in table.stdout


def test_events_in_an_empty_range_says_so(served, footage):
    window = ("--start", footage.at(-600).isoformat(), "--end", footage.at(-300).isoformat())
    result = omnisift("events", *window, "--url", served.url, "--api-key", API_KEY)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no events in the range")


# ---- failures: one line, non-zero exit ---------------------------------------------------------------------


def test_unknown_camera_is_a_one_line_error(served, footage):
    result = omnisift("query", "what happened?", "--camera", "garage", "--url", served.url, "--api-key", API_KEY)
    line = assert_one_line_error(result, "unknown camera(s): garage", "(not_found, HTTP 404)")
    assert CAMERA in line  # the known cameras are named


def test_missing_api_key_is_refused_with_a_hint(served):
    result = omnisift("events", "--url", served.url)
    assert_one_line_error(result, "missing or wrong API key", "Authorization: Bearer", "(unauthorized, HTTP 401)")


def test_a_wrong_api_key_is_never_printed(served):
    wrong = "wrong-secret-91c7"
    result = omnisift("events", "--url", served.url, "--api-key", wrong)
    assert_one_line_error(result, "(unauthorized, HTTP 401)")
    assert wrong not in result.output and API_KEY not in result.output


def test_an_unreachable_service_names_the_url_and_how_to_point_at_another(served):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
        result = omnisift("events", "--url", closed, "--api-key", API_KEY)
    assert_one_line_error(result, f"cannot reach omnisift at {closed}", "--url or OMNISIFT_URL", "(unreachable)")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["events", "--url", "not a url"], ["'not a url' is not an http(s) URL", "(bad_url)"]),
        (["events", "--url", "ftp://127.0.0.1/x"], ["is not an http(s) URL"]),
        (["ingest", "no-such-file.mp4", "--camera", CAMERA], ["no such file: no-such-file.mp4"]),
        (["--config", "no-such.yaml", "events"], ["no such config file: no-such.yaml"]),
        (["query", "hi", "--start", "yesterday-ish"], ["start: ", "(invalid_request, HTTP 422)"]),
        (["query", "hi", "--start", "2026-01-02T10:00:00Z", "--end", "2026-01-02T09:00:00Z"], ["HTTP 400"]),
        (["events", "--camera", "garage"], ["unknown camera(s): garage", "HTTP 404"]),
    ],
    ids=["malformed url", "not http", "missing file", "missing config", "bad time", "reversed range", "no camera"],
)
def test_bad_input_is_one_clear_line(served, footage, args, fragments):
    env = {"OMNISIFT_URL": served.url, "OMNISIFT_API_KEY": API_KEY}
    assert_one_line_error(omnisift(*args, env=env), *fragments)


def test_uploading_something_that_is_not_video_is_refused(served, tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"these are not the frames you are looking for\n" * 200)
    result = omnisift("ingest", str(junk), "--camera", CAMERA, "--url", served.url, "--api-key", API_KEY)
    assert_one_line_error(result, "(invalid_media, HTTP 422)")


def test_serve_refuses_a_port_that_is_taken(served):
    result = omnisift("--config", str(served.config), "serve")  # the running service holds that port
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{served.port}", "--port")


def test_purge_asks_first_then_deletes_every_clip(served, footage):
    """Near the end: it empties the store the tests above read."""
    refused = omnisift("--config", str(served.config), "purge")  # no terminal to say yes: nothing deleted
    assert refused.exit_code == 1 and "nothing deleted" in refused.stderr
    done = omnisift("--config", str(served.config), "purge", "--yes", "--json")
    assert done.exit_code == 0, done.output
    purged = json.loads(done.stdout)
    assert purged["namespace"] == "omnisift" and purged["clips_removed"] >= 3  # the footage's clips at least
    events = omnisift("--config", str(served.config), "events", "--json", "--start", footage.at(0).isoformat(),
                      "--end", footage.at(30).isoformat())  # fmt: skip
    assert json.loads(events.stdout) == []


# ---- stopping: keep last, it ends the module's service ------------------------------------------------------


def test_serve_stops_cleanly_on_ctrl_c(served):
    os.killpg(served.process.pid, signal.SIGINT)  # what a terminal sends the foreground process group
    assert served.process.wait(STOP_DEADLINE_S) == 0
    log = served.log.read_text()
    assert "stopping ...\n" in log and "omnisift stopped\n" in log and "Traceback" not in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.url}/healthz", timeout=5)
