"""A small typed HTTP client over the REST API (v1), used by the CLI and the demo.

Every failure, from the service ({error: {code, message}}) or from reaching it, is one exception type:
`ApiError`. Uploads stream the file from disk; progress bars (tqdm, on stderr) show only on a terminal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from pipeline.redaction import redact_text
from services.http import alert_schemas, schemas

DEFAULT_TIMEOUT_S = 300.0  # an answer from a real model on a CPU can take minutes
CONNECT_TIMEOUT_S = 10.0
JOB_POLL_S = 0.5

Time = datetime | str  # a datetime, or ISO 8601 text passed on as it is (the service validates it)


class ApiError(Exception):
    """The service refused a request (`status` is its HTTP status) or could not be reached (`status` None)."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        where = f", HTTP {self.status}" if self.status is not None else ""
        return f"{self.message} ({self.code}{where})"


class Client:
    """One service at `url`; `api_key` is sent as a bearer token. Use as a context manager, or call close()."""

    def __init__(
        self, url: str, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, progress: bool | None = None
    ):
        self.url = _checked_url(url)
        self.progress_disabled = None if progress is None else not progress  # None: bars only on a terminal
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # health

    def health(self) -> dict:
        return self._request("GET", "/healthz").json()

    def ready(self) -> dict:
        return self._request("GET", "/readyz").json()

    # files and jobs

    def upload(
        self, path: str | Path, camera_id: str, start_time: Time | None = None, timezone: str | None = None
    ) -> schemas.JobAccepted:
        """Upload a video file as an ingest job, streamed from disk in chunks (never read into memory)."""
        path = Path(path)
        fields = _without_none({"camera_id": camera_id, "start_time": _iso(start_time), "timezone": timezone})
        size = path.stat().st_size
        with (
            path.open("rb") as file,
            tqdm.wrapattr(
                file, "read", total=size, desc=f"uploading {path.name}", disable=self.progress_disabled
            ) as reading,  # fmt: skip
        ):
            response = self._request("POST", "/v1/files", data=fields, files={"file": (path.name, reading)})
        return schemas.JobAccepted.model_validate(response.json())

    def job(self, job_id: str) -> schemas.Job:
        return schemas.Job.model_validate(self._request("GET", f"/v1/jobs/{job_id}").json())

    def wait_for_job(self, job_id: str, timeout_s: float | None = None, poll_s: float = JOB_POLL_S) -> schemas.Job:
        """Poll until the job is done or failed (returned either way); ApiError 'job_timeout' past the deadline."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with tqdm(total=100, desc="ingesting", unit="%", disable=self.progress_disabled) as bar:
            while True:
                job = self.job(job_id)
                bar.update(round(job.progress * 100) - bar.n)
                bar.set_postfix_str(f"{job.clips} clips", refresh=False)
                if job.state in ("done", "failed"):
                    return job
                if deadline is not None and time.monotonic() > deadline:
                    raise ApiError(
                        "job_timeout",
                        f"job {job_id} is still {job.state} ({job.progress:.0%}, {job.clips} clips) after "
                        f"{timeout_s:g} s; it goes on in the service: GET /v1/jobs/{job_id} shows it",
                    )
                time.sleep(poll_s)

    # store maintenance

    def purge(self) -> schemas.Purged:
        """Delete every stored clip and the store's model fingerprint (camera settings and streams stay)."""
        return schemas.Purged.model_validate(self._request("POST", "/v1/store/purge").json())

    # queries

    def query(
        self,
        question: str,
        cameras: list[str] | None = None,
        start: Time | None = None,
        end: Time | None = None,
        max_new_tokens: int | None = None,
    ) -> schemas.QueryResponse:
        body = _query_body(question, cameras, start, end, max_new_tokens, stream=False)
        return schemas.QueryResponse.model_validate(self._request("POST", "/v1/query", json=body).json())

    def query_stream(
        self,
        question: str,
        cameras: list[str] | None = None,
        start: Time | None = None,
        end: Time | None = None,
        max_new_tokens: int | None = None,
    ) -> Iterator[tuple[str, dict]]:
        """The answer as Server-Sent Events, (name, data): 'evidence', then 'token's, then 'done'.

        An 'error' event (the service failed after the stream began) is raised as ApiError."""
        body = _query_body(question, cameras, start, end, max_new_tokens, stream=True)
        with self._reaching(), self._http.stream("POST", "/v1/query", json=body) as response:
            if not response.is_success:
                response.read()
                _raise_for_error(response)
            for name, data in server_sent_events(response.iter_lines()):
                if name == "error":
                    error = data.get("error", {})
                    raise ApiError(error.get("code", "stream_error"), error.get("message", "the answer failed"))
                yield name, data

    def events(
        self, camera_id: str | None = None, start: Time | None = None, end: Time | None = None
    ) -> list[schemas.Event]:
        params = _without_none({"camera_id": camera_id, "start": _iso(start), "end": _iso(end)})
        return [schemas.Event.model_validate(e) for e in self._request("GET", "/v1/events", params=params).json()]

    def clip(self, clip_id: str) -> schemas.Clip:
        return schemas.Clip.model_validate(self._request("GET", f"/v1/clips/{clip_id}").json())

    # alerts

    def create_alert(self, rule: dict) -> alert_schemas.AlertRuleOut:
        return alert_schemas.AlertRuleOut.model_validate(self._request("POST", "/v1/alerts", json=rule).json())

    def alerts(self) -> list[alert_schemas.AlertRuleOut]:
        return [alert_schemas.AlertRuleOut.model_validate(r) for r in self._request("GET", "/v1/alerts").json()]

    def alert(self, rule_id: str) -> alert_schemas.AlertRuleOut:
        return alert_schemas.AlertRuleOut.model_validate(self._request("GET", f"/v1/alerts/{rule_id}").json())

    def update_alert(self, rule_id: str, rule: dict) -> alert_schemas.AlertRuleOut:
        response = self._request("PUT", f"/v1/alerts/{rule_id}", json=rule)
        return alert_schemas.AlertRuleOut.model_validate(response.json())

    def delete_alert(self, rule_id: str) -> None:
        self._request("DELETE", f"/v1/alerts/{rule_id}")

    def firings(
        self, rule_id: str | None = None, since: Time | None = None, limit: int = 100, dead: bool = False
    ) -> list[alert_schemas.FiringOut]:
        path = "/v1/firings" if rule_id is None else f"/v1/alerts/{rule_id}/firings"
        params = _without_none({"since": _iso(since), "limit": limit, "delivery": "dead" if dead else None})
        return [alert_schemas.FiringOut.model_validate(f) for f in self._request("GET", path, params=params).json()]

    def firing_stream(self, last_event_id: str | None = None) -> Iterator[tuple[str, alert_schemas.FiringOut]]:
        """(event id, firing) as they are recorded, after `last_event_id` (None: from now); never ends by itself."""
        headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
        with self._reaching(), self._http.stream("GET", "/v1/firings/stream", headers=headers, timeout=timeout) as got:
            if not got.is_success:
                got.read()
                _raise_for_error(got)
            event_id = ""
            for line in got.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    yield event_id, alert_schemas.FiringOut.model_validate_json(line[6:])

    # plumbing

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._reaching():
            response = self._http.request(method, path, **kwargs)
        _raise_for_error(response)
        return response

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Transport failures as ApiError, with a hint where to point the client."""
        try:
            yield
        except httpx.TimeoutException as error:
            raise ApiError(
                "timeout", f"omnisift at {self.url} did not answer in time ({type(error).__name__})"
            ) from None
        except httpx.TransportError as error:
            raise ApiError(
                "unreachable",
                f"cannot reach omnisift at {self.url} ({redact_text(str(error)) or type(error).__name__}); "
                "is `omnisift serve` running there? Point the CLI at it with --url or OMNISIFT_URL",
            ) from None


def server_sent_events(lines: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """(event name, JSON data) per event of a text/event-stream: 'field: value' lines, a blank line ends one."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
            continue
        if line.startswith(":"):  # a comment (keep-alive)
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:
        yield name, json.loads("\n".join(data))


def _raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):  # not the service's error shape: a proxy, another server
        code = f"http_{response.status_code}"
        text = " ".join(response.text.split())[:200]
        message = f"{response.reason_phrase or 'HTTP error'} from {response.request.url}" + (
            f": {text}" if text else ""
        )
    raise ApiError(code, redact_text(message), response.status_code)


def _checked_url(url: str) -> str:
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as error:
        raise ApiError("bad_url", f"{redact_text(url)!r} is not a URL: {error}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ApiError("bad_url", f"{redact_text(url)!r} is not an http(s) URL such as http://127.0.0.1:8000")
    return str(parsed).rstrip("/")


def _iso(value: Time | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _query_body(question, cameras, start, end, max_new_tokens, stream: bool) -> dict[str, Any]:
    body = {"question": question, "cameras": cameras or None, "start": _iso(start), "end": _iso(end)}
    return _without_none(body | {"max_new_tokens": max_new_tokens, "stream": stream})
