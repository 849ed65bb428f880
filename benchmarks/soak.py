"""Soak: one live camera and a question per second for a long while; the memory of every process sampled.

One service (Ray Serve on 127.0.0.1, the tiny model, its Redis embedded) takes one push-mode camera fed in
real time by an ffmpeg publisher looping a generated one-minute CCTV clip, and answers POST /v1/query
(timeline answers over the last five minutes) once a second. Every --sample-s the resident memory (VmRSS)
of each Serve replica, the Serve proxy and controller, this driver and the embedded redis-server is read
from /proc. After --warmup-min, growth per hour is the least-squares slope of each process's RSS. A query
error, a dropped clip or a recorded gap is counted and printed.

Run: .venv/bin/python -m benchmarks.soak [--minutes 15] [--warmup-min 3] [--sample-s 15]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.service import PushCamera, expect, free_port_range, load_text, running
from pipeline.ingest.sample_media import write_sample_video
from pipeline.store.connection import RedisConfig, connect

CAMERA = "soak"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def processes(redis_dir: Path) -> dict[str, int]:
    """Name -> pid of every process of this service: Ray names its actors' processes `ray::<class>` (Serve
    replicas `ray::ServeReplica:<app>:<deployment>`); only descendants of this driver count, so another Ray
    on the machine is left out."""
    found = {"driver": os.getpid(), "redis-server": json.loads((redis_dir / "embedded.json").read_text())["pid"]}
    parents = {}
    titles = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                titles[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
    for pid, title in titles.items():
        if title.startswith("ray::") and ("Serve" in title or "Proxy" in title) and _descends(pid, parents):
            name = title.removeprefix("ray::").removeprefix("ServeReplica:omnisift:").split(".")[0].split(" ")[0]
            found[name] = pid
    return found


def _descends(pid: int, parents: dict[int, int]) -> bool:
    while pid in parents and pid > 1:
        pid = parents[pid]
        if pid == os.getpid():
            return True
    return False


@dataclass
class Trace:
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # process -> (hours, MB)

    def add(self, at_h: float, sample: dict[str, float]) -> None:
        for name, value in sample.items():
            self.samples.setdefault(name, []).append((at_h, value))

    def report(self, warmup_h: float) -> None:
        print(f"\n{'process':<24}{'start MB':>10}{'end MB':>10}{'growth MB/h (after warm-up)':>30}")
        for name, points in sorted(self.samples.items()):
            times, values = (np.array(axis) for axis in zip(*points, strict=True))
            steady = times >= warmup_h
            slope = np.polyfit(times[steady], values[steady], 1)[0] if steady.sum() >= 3 else float("nan")
            print(f"{name:<24}{values[0]:>10.0f}{values[-1]:>10.0f}{slope:>30.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--warmup-min", type=float, default=3.0)
    parser.add_argument("--sample-s", type=float, default=15.0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="omnisift-soak-"))
    media = write_sample_video(workdir / "camera.mp4", width=640, height=360, fps=10, duration=60.0)
    redis_dir = workdir / "redis"
    with connect(RedisConfig(data_dir=redis_dir)) as redis:
        push_ports = free_port_range(4)
        with running(workdir, redis.url, push_ports) as client:
            stream = expect(client.post("/v1/streams", json={"camera_id": CAMERA, "push": True}), 201)
            camera = PushCamera(media.path, stream["push_url"], workdir / "publisher.log").start()
            trace, queries, errors = Trace(), 0, 0
            began = time.monotonic()
            next_sample = began
            try:
                while (elapsed := time.monotonic() - began) < args.minutes * 60:
                    try:
                        response = client.post("/v1/query", json={"question": "anything in the last 5 minutes?"})
                        queries += 1
                        errors += response.status_code != 200
                    except httpx.HTTPError:
                        errors += 1
                    if time.monotonic() >= next_sample:
                        pids = processes(redis_dir)
                        sample = {name: rss_mb(pid) for name, pid in pids.items()}
                        trace.add(elapsed / 3600, {k: v for k, v in sample.items() if v is not None})
                        next_sample += args.sample_s
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - began - elapsed)))
                status = expect(client.get(f"/v1/streams/{CAMERA}"), 200)
            finally:
                camera.stop()
    print(f"{args.minutes:g} min, one live camera, {queries} queries ({errors} failed); {load_text()}")
    print(f"camera: {status['clips']} clips stored, {status['dropped_clips']} dropped, {len(status['gaps'])} gaps, "
          f"{status['reconnects']} reconnects, lag {status['lag_s']} s")  # fmt: skip
    trace.report(args.warmup_min / 60)


if __name__ == "__main__":
    main()
