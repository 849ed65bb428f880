"""The service with the tiny model on this machine: cameras sustained, and query latency from cached tokens vs
re-encoding the same minute from video, side by side (issue 6).

1. Cameras sustained. One service (Ray Serve on 127.0.0.1, default settings, its Redis an embedded
   redis-server started here) takes N push-mode cameras for each N of --cameras (1, 2, 4, ... 32): each is
   added with POST /v1/streams {push: true, clip_seconds: 10} and fed by an ffmpeg publisher (-re
   -stream_loop -1 -c copy -f rtsp) looping a generated one-minute CCTV clip (640x360, 10 fps H.264 + AAC,
   with events) in real time. Clips are cut on the wall-clock grid, so all N cameras hand the encoder a clip
   at the same moment every 10 s. Once every camera has stored its first clip, GET /v1/streams/{id} is
   sampled every --sample-s for --measure-s seconds (this polling is part of the load). lag_s ("now - end of
   the newest stored clip") is a sawtooth with a clip-length period, so a camera's lag is read as its lower
   envelope: the least lag_s over the first and over the last clip length of the window. N is sustained when
   no camera's lag grew by a clip length or more and no camera dropped a clip (marginal when it grew by half
   a clip length or more: the encoder is near its limit); the sweep stops at the first N that is not
   sustained. Publishers are stopped and streams removed between steps.
2. Query latency for a one-minute range (6 clips, uploaded through POST /v1/files), --repeats times each.
   End to end over HTTP, POST /v1/query {start, end} for that minute: the timeline answer (the tiny model's
   default) and answer_mode=llm (a second service over the same Redis; the Answerer generates up to
   --new-tokens, stopping early at a stop token). Then, with the services stopped, in this process,
   interleaved, same tiny model, same prompt, exactly --new-tokens greedy tokens each:
   cached    = index lookup + AnchorStore.get_many of the minute's clips + prompt + prefill and decode;
   re-encode = decode the minute from the file (pipeline ClipSource) + encoder half + compressor (in batches
   of the encoder's max_batch_size, as the service does) + the same prompt + prefill and decode.
   Torch uses --threads threads here (default 1, what each service replica gets).

Run: .venv/bin/python -m benchmarks.service [--cameras 1,2,4,8,16,32] [--measure-s 60] [--repeats 20]
     [--new-tokens 16] [--only cameras|queries]        (about 10-13 minutes with the defaults)
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import torch

from omnisift_core.backbone import ClipContext, LanguageHalf, load_encoder, load_language
from omnisift_core.backbone.prompt import Prompt
from pipeline.clips import ClipWindow
from pipeline.ingest.encoder_input import clip_media
from pipeline.ingest.sample_media import write_sample_video
from pipeline.ingest.sources import ClipSource, SourceSpec
from pipeline.query.wording import clip_header
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.connection import RedisConfig, connect
from services.models import model_setup
from services.runtime import run_service
from services.settings import Settings

CLIP_SECONDS = 10
QUERY_CAMERA = "minute"
QUESTION = "What happened in this minute?"


# ---- processes and ports ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_range(count: int) -> tuple[int, int]:
    """`count` consecutive loopback ports free right now: the service's push endpoints."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20_000, 60_000 - count)
        if all(_bindable(p) for p in range(first, first + count)):
            return first, first + count - 1
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


class PushCamera:
    """A camera publishing to our push endpoint: ffmpeg sends the file in real time, looped. It is relaunched
    whenever it exits (nobody listening yet, or the connection dropped), as camera firmware does."""

    def __init__(self, media: Path, url: str, log: Path):
        self.command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1"]
        self.command += ["-i", str(media), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url]
        self.log = log
        self.launches = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._supervise, name=f"publisher-{url}", daemon=True)

    def start(self) -> PushCamera:
        self._thread.start()
        return self

    def _supervise(self) -> None:
        with self.log.open("ab") as log:
            while not self._stop.is_set():
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                    self.launches += 1
                self._process.wait()
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._thread.join(timeout=10)


def expect(response: httpx.Response, status: int) -> dict:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    return response.json() if response.content else {}


@contextmanager
def running(workdir: Path, redis_url: str, push_ports: tuple[int, int], **overrides) -> Iterator[httpx.Client]:
    settings = Settings(
        data_dir=workdir / "service",
        host="127.0.0.1",
        port=free_port(),
        redis_url=redis_url,
        push_ports=push_ports,
        **overrides,
    )
    began = time.perf_counter()
    with run_service(settings) as service, httpx.Client(base_url=service.url, timeout=120) as client:
        expect(client.get("/readyz"), 200)
        print(f"service up in {time.perf_counter() - began:.0f} s at {service.url} ({overrides or 'defaults'})")
        yield client


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


# ---- 1. cameras sustained ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # s since the measurement began
    lag_s: float | None
    clips: int
    dropped: int


@dataclass(frozen=True)
class CameraOutcome:
    camera_id: str
    clips: int  # stored during the measurement
    dropped: int  # since the stream was added
    lag_start: float  # least lag_s over the first clip length of the measurement
    lag_end: float  # least lag_s over the last clip length

    @classmethod
    def of(cls, camera_id: str, samples: list[Sample], measure_s: float) -> CameraOutcome:
        def envelope(keep: Callable[[Sample], bool]) -> float:
            return min((s.lag_s for s in samples if keep(s) and s.lag_s is not None), default=float("inf"))

        return cls(
            camera_id=camera_id,
            clips=samples[-1].clips - samples[0].clips,
            dropped=samples[-1].dropped,
            lag_start=envelope(lambda s: s.at <= CLIP_SECONDS),
            lag_end=envelope(lambda s: s.at >= measure_s - CLIP_SECONDS),
        )

    @property
    def lag_growth(self) -> float:
        return self.lag_end - self.lag_start


@dataclass(frozen=True)
class StepResult:
    cameras: int
    outcomes: list[CameraOutcome]
    silent: list[str]  # cameras that stored no clip before the deadline
    load: str

    @property
    def sustained(self) -> bool:
        return not self.silent and all(o.dropped == 0 and o.lag_growth < CLIP_SECONDS for o in self.outcomes)

    @property
    def verdict(self) -> str:
        if self.silent:
            return f"NOT sustained: {len(self.silent)} camera(s) stored no clip"
        if self.sustained:
            worst = max(o.lag_growth for o in self.outcomes)
            return "sustained" if worst < CLIP_SECONDS / 2 else f"sustained (marginal: lag rose {worst:.1f} s)"
        grown = sum(o.lag_growth >= CLIP_SECONDS for o in self.outcomes)
        dropping = sum(o.dropped > 0 for o in self.outcomes)
        return f"NOT sustained: lag grew on {grown}, drops on {dropping} camera(s)"

    def row(self) -> str:
        if not self.outcomes:
            return f"{self.cameras:>7} {'-':>9} {'-':>7} {'-':>9} {'-':>9} {'-':>10}  {self.verdict}"
        clips = statistics.median(o.clips for o in self.outcomes)
        dropped = sum(o.dropped for o in self.outcomes)
        start = statistics.median(o.lag_start for o in self.outcomes)
        end = statistics.median(o.lag_end for o in self.outcomes)
        worst = max(o.lag_growth for o in self.outcomes)
        return f"{self.cameras:>7} {clips:>9g} {dropped:>7d} {start:>9.1f} {end:>9.1f} {worst:>10.1f}  {self.verdict}"


CAMERA_HEADER = (
    f"{'cameras':>7} {'clips/cam':>9} {'dropped':>7} {'lag start':>9} {'lag end':>9} {'max growth':>10}  verdict\n"
    f"{'':>7} {'(p50)':>9} {'(all)':>7} {'p50 s':>9} {'p50 s':>9} {'s':>10}"
)


def status_sample(client: httpx.Client, camera_id: str, at: float) -> Sample:
    status = expect(client.get(f"/v1/streams/{camera_id}"), 200)
    return Sample(at, status["lag_s"], status["clips"], status["dropped_clips"])


def run_step(client: httpx.Client, count: int, media: Path, logdir: Path, args) -> StepResult:
    """Add `count` push cameras with publishers, wait for every first clip, then sample their status."""
    ids = [f"n{count}-cam{i:02d}" for i in range(count)]
    added: list[str] = []
    publishers: list[PushCamera] = []
    try:
        for camera_id in ids:
            body = {"camera_id": camera_id, "push": True, "clip_seconds": CLIP_SECONDS}
            stream = expect(client.post("/v1/streams", json=body), 201)
            added.append(camera_id)
            publishers.append(PushCamera(media, stream["push_url"], logdir / f"{camera_id}.log").start())
        deadline = time.monotonic() + 3 * CLIP_SECONDS + 30 + count
        waiting = set(ids)
        while waiting and time.monotonic() < deadline:
            waiting = {c for c in waiting if status_sample(client, c, 0.0).clips < 1}
            time.sleep(args.sample_s)
        if waiting:
            return StepResult(count, [], sorted(waiting), load_text())

        samples: dict[str, list[Sample]] = {c: [] for c in ids}
        began = time.monotonic()
        while (at := time.monotonic() - began) <= args.measure_s:
            for camera_id in ids:
                samples[camera_id].append(status_sample(client, camera_id, time.monotonic() - began))
            time.sleep(max(0.0, at + args.sample_s - (time.monotonic() - began)))
        outcomes = [CameraOutcome.of(c, samples[c], args.measure_s) for c in ids]
        return StepResult(count, outcomes, [], load_text())
    finally:
        # publishers first, so no new clips queue up; a DELETE returns once its camera's clip in flight is stored
        for publisher in publishers:
            publisher.stop()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for response in pool.map(lambda c: client.delete(f"/v1/streams/{c}"), added):
                expect(response, 204)


def sweep_cameras(client: httpx.Client, media: Path, logdir: Path, args) -> list[StepResult]:
    print(
        f"\n1. cameras sustained: push cameras looping {media.name} in real time, {CLIP_SECONDS} s clips, "
        f"{args.measure_s:g} s measured after every camera's first clip"
    )
    print(CAMERA_HEADER, flush=True)
    results = []
    for count in args.cameras:
        result = run_step(client, count, media, logdir, args)
        results.append(result)
        print(f"{result.row()}   [{result.load}]", flush=True)
        if not result.sustained:
            break
    return results


# ---- 2. query latency ----------------------------------------------------------------------------------------


def iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def upload_minute(client: httpx.Client, media: Path, start: datetime) -> int:
    """POST /v1/files the minute with its start time; the number of clips stored once the job is done."""
    with media.open("rb") as file:
        files = {"file": (media.name, file, "video/mp4")}
        job = expect(
            client.post("/v1/files", files=files, data={"camera_id": QUERY_CAMERA, "start_time": iso(start)}), 202
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = expect(client.get(f"/v1/jobs/{job['job_id']}"), 200)
        if state["state"] == "done":
            return state["clips"]
        if state["state"] == "failed":
            raise RuntimeError(f"ingesting the query minute failed: {state['error']}")
        time.sleep(0.5)
    raise RuntimeError("ingesting the query minute did not finish in 300 s")


@dataclass(frozen=True)
class HttpLatency:
    client_ms: list[float]  # POST sent -> whole JSON response read
    server_ms: list[float]  # the response's latency_ms
    answer_source: str
    evidence: int


def time_http_queries(client: httpx.Client, start: datetime, repeats: int, new_tokens: int) -> HttpLatency:
    body = {
        "question": QUESTION,
        "cameras": [QUERY_CAMERA],
        "start": iso(start),
        "end": iso(start + timedelta(minutes=1)),
        "max_new_tokens": new_tokens,
    }
    expect(client.post("/v1/query", json=body), 200)  # warm-up
    client_ms, server_ms = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        answer = expect(client.post("/v1/query", json=body), 200)
        client_ms.append((time.perf_counter() - began) * 1000)
        server_ms.append(answer["latency_ms"])
    return HttpLatency(client_ms, server_ms, answer["answer_source"], len(answer["evidence"]))


def generate_exactly(language: LanguageHalf, prompt: Prompt, new_tokens: int) -> list[int]:
    """Greedy ids for exactly `new_tokens` steps (stop tokens included), so both paths do the same work."""
    state = language.prefill(prompt)
    ids = []
    for produced in range(new_tokens):
        ids.append(int(state.logits.argmax(-1)))
        if produced + 1 < new_tokens:
            language.step(state, ids[-1])
    return ids


class Stages:
    """Wall-clock milliseconds per named stage, one list per stage across repetitions."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}
        self._last = 0.0

    def begin(self) -> None:
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms.setdefault(stage, []).append((now - self._last) * 1000)
        self._last = now

    def totals(self) -> list[float]:
        return [sum(parts) for parts in zip(*self.ms.values(), strict=True)]


class MinuteQuery:
    """One question over one camera-minute, answered from the store or from the video file."""

    def __init__(self, settings: Settings, media: Path, start: datetime, new_tokens: int):
        setup = model_setup(settings)
        self.settings = settings
        self.encoder = load_encoder(setup.checkpoint, setup.device, settings.frame_limits())
        self.compressor = setup.compressor
        self.language = load_language(setup.checkpoint, setup.device)
        self.connection = connect(settings.redis_config())
        self.store = AnchorStore.open(self.connection, setup.fingerprint, settings.store_config())
        self.tz = self.store.camera(QUERY_CAMERA).tz
        self.start, self.end = start, start + timedelta(minutes=1)
        self.new_tokens = new_tokens
        self.spec = SourceSpec(
            camera_id=QUERY_CAMERA,
            url=str(media),
            clip_seconds=CLIP_SECONDS,
            fps=settings.fps,
            start_time=start,
            max_pixels=settings.max_frame_pixels,
        )
        self.cached_stages, self.reencoded_stages = Stages(), Stages()

    def cached_contexts(self) -> list[ClipContext]:
        metas = self.store.clips(QUERY_CAMERA, self.start, self.end)
        stored = self.store.get_many([m.clip_id for m in metas])
        return [ClipContext(clip_header(c.meta, self.tz), c.tokens, c.meta.source_tokens) for c in stored]

    def cached(self) -> Prompt:
        stages = self.cached_stages
        stages.begin()
        contexts = self.cached_contexts()
        stages.mark("read")
        prompt = self.language.prompt(QUESTION, contexts)
        generate_exactly(self.language, prompt, self.new_tokens)
        stages.mark("prompt+generate")
        return prompt

    def reencoded(self) -> Prompt:
        stages = self.reencoded_stages
        stages.begin()
        clips = [c for c in ClipSource(self.spec, self.settings.media_policy()) if isinstance(c, ClipWindow)]
        stages.mark("decode")
        batch = self.settings.encoder.max_batch_size
        contexts = []
        for first in range(0, len(clips), batch):
            part = clips[first : first + batch]
            media = [clip_media(c) for c in part]
            tokens = self.encoder.encode_batch(media, audio_saliency=self.compressor.uses_audio_saliency)
            for clip, compression in zip(part, self.compressor.compress_batch(tokens), strict=True):
                header = clip_header(clip, self.tz)
                contexts.append(ClipContext(header, compression.kept, sum(compression.source_counts)))
        stages.mark("encode+compress")
        prompt = self.language.prompt(QUESTION, contexts)
        generate_exactly(self.language, prompt, self.new_tokens)
        stages.mark("prompt+generate")
        return prompt

    def service_answer_tokens(self) -> int:
        """How many tokens the service's own greedy answer generates (it stops at a stop token)."""
        return self.language.answer(QUESTION, self.cached_contexts(), self.new_tokens).usage.generated_tokens

    def close(self) -> None:
        self.connection.close()


def percentiles(ms: list[float]) -> str:
    p50, p95 = np.percentile(ms, [50, 95])
    return f"{p50:9.1f} {p95:9.1f}"


def side_by_side(settings: Settings, media: Path, start: datetime, args) -> int:
    """Prints the in-process comparison; returns how many tokens the service's own answer generates."""
    torch.set_num_threads(args.threads)
    query = MinuteQuery(settings, media, start, args.new_tokens)
    try:
        cached, reencoded = query.cached(), query.reencoded()  # warm-up
        query.cached_stages, query.reencoded_stages = Stages(), Stages()
        for _ in range(args.repeats):
            query.cached()
            query.reencoded()
        contexts = query.cached_contexts()
        kept = sum(len(c.tokens.video) + len(c.tokens.audio) for c in contexts)
        print(
            f"\n2. query over one minute ({len(contexts)} clips of camera {QUERY_CAMERA!r} from {iso(start)}), "
            f"{args.repeats} repetitions each, interleaved, torch {torch.get_num_threads()} thread(s), CPU"
        )
        print(
            f"   prompt: {len(cached)} tokens cached, {len(reencoded)} re-encoded ({kept} kept media tokens; "
            f"{cached.full_tokens} had every token been sent); {args.new_tokens} new tokens generated"
        )
        print(f"{'path':44} {'p50 ms':>9} {'p95 ms':>9}")
        for name, stages in (("cached tokens", query.cached_stages), ("re-encode from video", query.reencoded_stages)):
            print(f"{name:44} {percentiles(stages.totals())}")
            for stage, ms in stages.ms.items():
                print(f"{'  ' + stage:44} {percentiles(ms)}")
        cached_p50 = np.percentile(query.cached_stages.totals(), 50)
        reencoded_p50 = np.percentile(query.reencoded_stages.totals(), 50)
        print(f"re-encode / cached (p50): {reencoded_p50 / cached_p50:.1f}x   [{load_text()}]")
        return query.service_answer_tokens()
    finally:
        query.close()


def print_http(name: str, latency: HttpLatency) -> None:
    print(
        f"{name:44} {percentiles(latency.client_ms)}   (server latency_ms p50 "
        f"{np.percentile(latency.server_ms, 50):.1f}; {latency.evidence} clips of evidence)"
    )


# ---- main ---------------------------------------------------------------------------------------------------


def camera_counts(text: str) -> list[int]:
    counts = [int(n) for n in text.split(",")]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of camera counts, each at least 1")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=camera_counts, default=[1, 2, 4, 8, 16, 32], help="N tried, in order")
    parser.add_argument("--measure-s", type=float, default=60.0, help="seconds sampled after every first clip")
    parser.add_argument("--sample-s", type=float, default=2.0, help="stream status sampling period")
    parser.add_argument("--repeats", type=int, default=20, help="queries timed per path")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens generated per query")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the in-process comparison")
    parser.add_argument("--only", choices=("cameras", "queries"), help="run one part")
    args = parser.parse_args()
    if args.measure_s < 2 * CLIP_SECONDS:
        parser.error(f"--measure-s must be at least {2 * CLIP_SECONDS} (two clip lengths)")

    print(f"omnisift service benchmark, tiny model, torch {torch.__version__}, [{load_text()}]")
    with tempfile.TemporaryDirectory(prefix="omnisift-bench-") as tmp:
        workdir = Path(tmp)
        media = write_sample_video(workdir / "minute.mp4", width=640, height=360, fps=10, duration=60.0).path
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        minute = now - timedelta(minutes=10)
        with connect(RedisConfig(data_dir=workdir / "redis")) as redis:
            push_ports = free_port_range(max(args.cameras))
            cameras: list[StepResult] = []
            with running(workdir, redis.url, push_ports) as client:
                if args.only != "queries":
                    cameras = sweep_cameras(client, media, workdir, args)
                if args.only != "cameras":
                    clips = upload_minute(client, media, minute)
                    print(f"\nquery minute ingested through POST /v1/files: {clips} clips")
                    timeline = time_http_queries(client, minute, args.repeats, args.new_tokens)
            if args.only != "cameras":
                with running(workdir, redis.url, push_ports, answer_mode="llm") as client:
                    llm = time_http_queries(client, minute, args.repeats, args.new_tokens)
                settings = Settings(data_dir=workdir / "service", redis_url=redis.url, media_roots=[workdir])
                generated = side_by_side(settings, media, minute, args)
                print_http(f"HTTP POST /v1/query, {timeline.answer_source} answer", timeline)
                print_http(f"HTTP POST /v1/query, answer_mode=llm ({llm.answer_source})", llm)
                print(
                    f"   (the service's greedy answer stops at a stop token: {generated} of at most "
                    f"{args.new_tokens} tokens generated)"
                )
            if cameras:
                sustained = [r.cameras for r in cameras if r.sustained]
                print("\ncameras sustained (all steps):")
                print(CAMERA_HEADER)
                for result in cameras:
                    print(result.row())
                print(
                    f"largest sustained N: {max(sustained, default=0)}"
                    + ("" if not cameras[-1].sustained else f" (every N in --cameras {args.cameras} was)")
                )
    print(f"[{load_text()}]")


if __name__ == "__main__":
    main()
