"""Alert cost: the delay from a clip being stored to its firing reaching a webhook receiver, and the evaluation
overhead per stored clip with 100 rules over 8 cameras.

Both run the service's own code on the embedded redis-server (append-only file, fsync on every write): the
delay through `AlertWorker` (the gateway's two threads: the clip log's consumer group, the evaluator, the
outbox) to a local HTTP receiver; the overhead as `AlertEvaluator.evaluate` per clip (reading the clip's
metadata, the rules and the earlier clips, evaluating every rule, recording the firings).

Run: .venv/bin/python -m benchmarks.alerts [--clips 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from datetime import time as clock
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import build_clip_tokens
from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.clip_log import ClipLog
from pipeline.alerts.evaluator import AlertEvaluator
from pipeline.alerts.rules import DAYS, AlertRule, Condition, Schedule, Webhook
from pipeline.records import ChunkScores, ClipRecord
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings, StoreConfig
from pipeline.store.connection import connect
from services.deployments.alerts import AlertWorker
from services.settings import Settings

T0 = datetime(2026, 3, 14, 14, 0, tzinfo=timezone.utc)
GRID = VideoGrid(frames=10, rows=4, cols=5)
FINGERPRINT = "bench-alerts"
CAMERAS = 8
RULES = 100


def random_scores(rng: random.Random) -> ChunkScores:
    """A mostly quiet scene: motion in one chunk in 15, sound in one in 30, speech in one in 30."""
    activity = tuple(rng.choice((0.0,) * 14 + (0.3,)) for _ in range(5))
    salience = tuple(rng.choice((0.0,) * 29 + (0.8,)) for _ in range(5))
    speech = tuple(rng.choice((0.1,) * 29 + (0.9,)) for _ in range(5))
    return ChunkScores(activity, salience, speech)


def clip(camera: str, index: int, scores: ChunkScores) -> ClipRecord:
    """A 10-second clip with small tokens: alerts read only its metadata."""
    tokens = build_clip_tokens(torch.randn(GRID.num_tokens, 16), GRID, torch.randn(250, 16))
    start = T0 + timedelta(seconds=10 * index)
    return ClipRecord(camera, start, start + timedelta(seconds=10), tokens, FINGERPRINT, (GRID.num_tokens, 250), scores)


class Receiver:
    """A webhook receiver on 127.0.0.1 noting when each POST arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.end_headers()
                with receiver.arrived:
                    receiver.arrivals.append(time.perf_counter())
                    receiver.arrived.notify_all()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait_for(self, count: int, timeout_s: float = 30.0) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.arrivals) >= count, timeout_s):
                raise RuntimeError(f"delivery {count} did not arrive within {timeout_s} s")
            return self.arrivals[count - 1]


def delivery_delay(data_dir: Path, clips: int) -> list[float]:
    """Seconds from `AnchorStore.put` returning to the receiver getting the firing, one clip at a time."""
    settings = Settings(data_dir=data_dir, store_namespace="delay")
    connection = connect(settings.redis_config())
    store = AnchorStore.open(connection, FINGERPRINT, settings.store_config())
    alerts = AlertStore(connection.client, settings.store_namespace, settings.secrets(), connection.url)
    receiver = Receiver()
    alerts.put_rule(AlertRule("delay", "motion", Condition("motion"), webhook=Webhook(receiver.url, secret="k"),
                              created_ms=alerts.now_ms()))  # fmt: skip
    store.set_camera(CameraSettings("door"))
    worker = AlertWorker(settings, connection, None).start()
    moving_first = ChunkScores((0.3,) + (0.0,) * 4, (0.0,) * 5)
    delays = []
    try:
        for i in range(clips):
            store.put(clip("door", 2 * i, moving_first))  # every clip's first chunk moves: one firing each
            stored = time.perf_counter()
            delays.append(receiver.wait_for(i + 1) - stored)
    finally:
        worker.stop()
        receiver.server.shutdown()
    return delays


def rules_over_cameras(rng: random.Random, cameras: list[str]) -> list[AlertRule]:
    """100 rules: each watches one or two cameras; motion, sound or speech, some lasting 4-6 s, some with a
    daily window or a cooldown, a third with a webhook."""
    rules = []
    for i in range(RULES):
        kind = rng.choice(("motion", "motion", "sound", "speech"))
        condition = Condition(kind, min_duration_s=rng.choice((0.0, 0.0, 4.0, 6.0)))
        schedule = Schedule(DAYS, clock(8), clock(20)) if i % 4 == 0 else Schedule()
        webhook = Webhook("http://127.0.0.1:9/hook") if i % 3 == 0 else None
        rules.append(AlertRule(f"{i:032x}", f"rule {i}", condition, tuple(rng.sample(cameras, rng.choice((1, 2)))),
                               schedule, rng.choice((0.0, 30.0)), webhook=webhook))  # fmt: skip
    return rules


def evaluation_overhead(data_dir: Path, clips_per_camera: int) -> dict[str, list[float] | int]:
    settings = Settings(data_dir=data_dir, store_namespace="overhead")
    connection = connect(settings.redis_config())
    store = AnchorStore.open(connection, FINGERPRINT, StoreConfig(namespace="overhead"))
    alerts = AlertStore(connection.client, settings.store_namespace, settings.secrets(), connection.url)
    rng = random.Random(1)
    cameras = [f"cam-{c}" for c in range(CAMERAS)]
    for camera in cameras:
        store.set_camera(CameraSettings(camera, "Europe/Berlin"))
    evaluator = AlertEvaluator(store, alerts, settings.activity_config())
    log = ClipLog(connection.client, store.clip_log_key, "bench")
    put_s, without_rules, quiet, firing = [], [], [], []
    now = alerts.now_ms()
    for rule in rules_over_cameras(rng, cameras):
        alerts.put_rule(replace(rule, created_ms=now))
    for i in range(clips_per_camera):
        for camera in cameras:
            began = time.perf_counter()
            store.put(clip(camera, i, random_scores(rng)))
            put_s.append(time.perf_counter() - began)
    entries = []
    while batch := log.read(cameras, block_ms=100, count=256):
        entries += batch
    for entry in entries:  # every rule: the overhead measured, apart for clips that fired and those that did not
        began = time.perf_counter()
        fired = evaluator.evaluate(entry.clip_id, entry.stored_ms)
        (firing if fired else quiet).append(time.perf_counter() - began)
    firings = alerts.stats().firings
    for entry in entries:  # the same clips for rules created later: the fixed cost of reading a clip's metadata
        began = time.perf_counter()
        evaluator.evaluate(entry.clip_id, 0)
        without_rules.append(time.perf_counter() - began)
    return {"put": put_s, "all": quiet + firing, "quiet": quiet, "firing": firing, "without": without_rules,
            "firings": firings, "clips": len(entries)}  # fmt: skip


def ms(values: list[float], q: float) -> float:
    return 1000 * statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else 1000 * values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=30, help="clips for the delay, and per camera for the overhead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        delays = delivery_delay(Path(tmp), args.clips)
        print(f"stored -> delivered, {len(delays)} clips: p50 {ms(delays, 50):.1f} ms, p95 {ms(delays, 95):.1f} ms, "
              f"max {1000 * max(delays):.1f} ms")  # fmt: skip
        cost = evaluation_overhead(Path(tmp), args.clips)
        print(f"{RULES} rules over {CAMERAS} cameras, {cost['clips']} clips ({len(cost['firing'])} fired), "
              f"{cost['firings']} firings recorded:")  # fmt: skip
        rows = (("evaluation per clip", "all"), ("  clips that fired", "firing"), ("  clips that did not", "quiet"),
                ("  no rule applies", "without"), ("store.put", "put"))  # fmt: skip
        for label, key in rows:
            values = cost[key]
            print(f"  {label:<20} p50 {ms(values, 50):6.2f} ms  p95 {ms(values, 95):6.2f} ms  "
                  f"mean {1000 * statistics.fmean(values):6.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
