"""`omnisift demo`: the whole service on this machine with nothing configured, asked about footage it just stored.

It makes a CCTV-style sample with known events (or takes the user's file), starts the service (embedded
Redis in a temporary data directory, a local Ray, Serve on a free loopback port), uploads the footage
through the REST API, asks what happened at the first event and at a quiet time, and prints each answer
with its evidence. Every step says what it does and how long it took.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import av
import typer

from omnisift_core.errors import OmniSiftError
from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from services.cli.client import Client
from services.cli.rendering import print_answer
from services.settings import load_settings

SAMPLE_SECONDS = 40.0
SAMPLE_EVENTS = (
    SceneEvent("object", "a person in red walks across", 11.0, 19.0, (220, 30, 30), ((0.15, 0.72), (0.7, 0.72))),
    SceneEvent("sound", "an alarm beeps (1 kHz tone)", 14.0, 15.0, frequency=1000.0, level=0.5),
    SceneEvent("object", "a blue car drives by", 31.0, 38.0, (30, 60, 220), ((0.85, 0.82), (0.2, 0.82)),
               size=(0.22, 0.14)),
    SceneEvent("sound", "a bang (noise burst)", 35.0, 35.4, frequency=None, level=0.6),
)  # fmt: skip
SAMPLE_QUIET_S = 25.0  # nothing moves or sounds from 19 s to 31 s
JOB_TIMEOUT_S = 1800.0
UTC = timezone.utc


@dataclass(frozen=True)
class Footage:
    path: Path
    start: datetime  # the wall-clock time given to its first frame (UTC)
    duration_s: float
    events: tuple[SceneEvent, ...] | None  # the planted events of the sample; None for a user's file


class DemoFailed(OmniSiftError):
    """The demo could not go on (the footage is unplayable, or its ingest failed)."""


class Steps:
    """Numbered progress lines, each followed by how long its step took."""

    def __init__(self, total: int):
        self.total = total
        self.number = 0
        self.began = time.perf_counter()
        self.step_began = self.began

    def start(self, what: str) -> None:
        self.number += 1
        self.step_began = time.perf_counter()
        typer.echo(f"\n[{self.number}/{self.total}] {what}")

    def done(self, what: str) -> None:
        typer.echo(f"      {what} ({time.perf_counter() - self.step_began:.1f} s)")

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.began


def run_demo(
    file: Path | None = None,
    camera: str = "demo-cam",
    data_dir: Path | None = None,
    keep: bool = False,
    config: Path | None = None,
) -> None:
    steps = Steps(total=6)
    workdir = Path(tempfile.mkdtemp(prefix="omnisift-demo-"))
    data_dir = data_dir or workdir / "data"
    typer.echo("omnisift demo: footage in, questions answered from the stored tokens, on this machine only")
    try:
        footage = _prepare_footage(steps, file, workdir)
        settings = _demo_settings(data_dir, config)
        steps.start(
            f"starting the service: embedded Redis in {data_dir}, a local Ray, Serve on "
            f"http://{settings.host}:{settings.port} (model: {settings.model})"
        )
        from services.runtime import run_service  # Ray and the model stack: loaded once footage is ready

        _quiet_ray_logs()
        with run_service(settings) as running, Client(running.url) as client:
            steps.done(f"ready at {running.url}")
            _ingest(steps, client, footage, camera)
            found = _event_timeline(steps, client, footage, camera)
            first, quiet = _question_times(footage, found)
            steps.start(f"asking about the first event: {_question(first)!r}")
            source = _ask(client, _question(first), camera)
            steps.start(f"asking about a quiet time: {_question(quiet)!r}" if quiet else "no quiet time to ask about")
            if quiet is not None:
                _ask(client, _question(quiet), camera)
            typer.echo("\nshutting the service down ...")
        _explain(source, settings.uses_tiny_model)
    finally:
        if keep:
            typer.echo(f"\nkept {workdir}; to query its clips again: OMNISIFT_DATA_DIR={data_dir} omnisift serve")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    typer.echo(f"\ndemo finished in {steps.elapsed_s:.1f} s")


def _prepare_footage(steps: Steps, file: Path | None, workdir: Path) -> Footage:
    if file is not None:
        steps.start(f"reading {file}")
        duration = _duration_s(file)
        start = _clock_start(duration)
        steps.done(f"{duration:.1f} s of video; its first frame is placed at {start:%Y-%m-%d %H:%M:%S} UTC")
        return Footage(file, start, duration, None)
    steps.start(f"making a {SAMPLE_SECONDS:.0f} s CCTV-style sample clip with {len(SAMPLE_EVENTS)} known events")
    start = _clock_start(SAMPLE_SECONDS)
    sample = write_sample_video(
        workdir / "sample.mp4", width=480, height=272, fps=10, duration=SAMPLE_SECONDS, events=SAMPLE_EVENTS,
        creation_time=start,
    )  # fmt: skip
    steps.done(f"wrote {sample.path}; the sample's clock starts at {start:%Y-%m-%d %H:%M:%S} UTC")
    for event in SAMPLE_EVENTS:
        typer.echo(f"        {_hms(start, event.start)}  {event.label} ({event.end - event.start:g} s)")
    return Footage(sample.path, start, SAMPLE_SECONDS, SAMPLE_EVENTS)


def _ingest(steps: Steps, client: Client, footage: Footage, camera: str) -> None:
    steps.start(f"uploading {footage.path.name} as camera {camera!r} and waiting for its clips to be stored")
    accepted = client.upload(footage.path, camera, start_time=footage.start, timezone="UTC")
    job = client.wait_for_job(accepted.job_id, timeout_s=JOB_TIMEOUT_S)
    if job.state != "done":
        raise DemoFailed(f"the ingest job failed: {job.error}")
    steps.done(f"job {job.job_id} done: {job.clips} clips encoded, compressed and stored")


def _event_timeline(steps: Steps, client: Client, footage: Footage, camera: str):
    steps.start("the event timeline the service built at ingest (motion, sound and speech per 2-second chunk)")
    end = footage.start + timedelta(seconds=footage.duration_s)
    found = client.events(camera, footage.start, end)
    for event in found:
        scores = f"activity {event.activity:.2f}, audio salience {event.audio_salience:.2f}, speech {event.speech:.2f}"
        words = f"{' + '.join(event.triggers)}: {scores}"
        typer.echo(f"        {event.start:%H:%M:%S}-{event.end:%H:%M:%S}  {words}")
    if not found:
        typer.echo("        no events: nothing moved or sounded")
    return found


def _question_times(footage: Footage, found) -> tuple[datetime, datetime | None]:
    """The first event's start and a quiet moment: from the planted schedule, or from the found timeline."""
    if footage.events is not None:
        first = min(e.start for e in footage.events)
        return footage.start + timedelta(seconds=first), footage.start + timedelta(seconds=SAMPLE_QUIET_S)
    if not found:
        return footage.start, footage.start + timedelta(seconds=footage.duration_s / 2)
    end = footage.start + timedelta(seconds=footage.duration_s)
    edges = [footage.start, *[t for e in found for t in (e.start, e.end)], end]  # quiet from edges[2k] to [2k+1]
    longest, begins = max((edges[i + 1] - edges[i], edges[i]) for i in range(0, len(edges), 2))
    quiet = begins + longest / 2 if longest >= timedelta(seconds=4) else None
    return found[0].start, quiet


def _ask(client: Client, question: str, camera: str) -> str:
    response = client.query(question, cameras=[camera])
    typer.echo("")
    print_answer(response)
    return response.answer_source


def _explain(source: str, tiny: bool) -> None:
    if source == "timeline" and tiny:
        typer.echo(
            "\nanswer_source: timeline. The tiny random-weight model's text is not language, so the service\n"
            "answered from the event timeline it built at ingest (motion and sound per 2-second chunk); times\n"
            "always come from the store. With a real Qwen2.5-Omni / OmniSIFT checkpoint (OMNISIFT_MODEL=/path)\n"
            "the language model answers over the same compressed tokens (answer_source: llm)."
        )
    else:
        typer.echo(f"\nanswer_source: {source}")


# ---- helpers ---------------------------------------------------------------------------------------------


def _demo_settings(data_dir: Path, config: Path | None):
    """Settings for a private run: loopback, a free port, the embedded Redis, a local Ray, no API key."""
    return load_settings(
        config, data_dir=data_dir, host="127.0.0.1", port=_free_port(), redis_url=None, ray_address=None, api_key=None
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet_ray_logs() -> None:
    for name in ("ray", "ray.serve"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _duration_s(path: Path) -> float:
    try:
        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = next(iter(container.streams.video), None) or container.streams[0]
            return float(stream.duration * stream.time_base) if stream.duration else 0.0
    except (av.FFmpegError, IndexError) as error:
        raise DemoFailed(f"{path} is not a playable video: {error}") from None


def _clock_start(duration_s: float) -> datetime:
    """A whole minute far enough back that the footage ends at least a minute before now."""
    start = datetime.now(UTC) - timedelta(seconds=duration_s + 60)
    return start.replace(second=0, microsecond=0)


def _hms(start: datetime, offset_s: float) -> str:
    return f"{start + timedelta(seconds=offset_s):%H:%M:%S}"


def _question(instant: datetime) -> str:
    day = "" if datetime.now(UTC) - instant < timedelta(hours=23) else f" on {instant:%Y-%m-%d}"
    return f"what happened at {instant:%H:%M:%S}{day}?"
