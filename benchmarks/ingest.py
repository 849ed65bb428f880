"""Ingest throughput against raw PyAV decoding of the same file, side by side, at 360p, 720p and 1080p.

"raw decode" decodes every video and audio frame with PyAV (frame threads on) and does nothing else;
"ingest" is the whole file path: ClipSource -> 10 s ClipWindows of RGB frames at 2 fps and 16 kHz
mono audio. The ratio (ingest speed / raw decode speed) is the figure; the target is >= 0.8.

Two scenes per size: "static" is the clean synthetic scene, so cheap to decode that ingest's fixed
per-second work (RGB conversion of the kept frames, resampling) weighs most: the worst case for the
ratio. "grain" adds sensor noise (sigma 4), which gives the bitrates real cameras stream at.

Run: .venv/bin/python -m benchmarks.ingest [--seconds 20] [--fps 25] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import av

from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sample_media import write_sample_video
from pipeline.ingest.sources import ClipSource, SourceSpec

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
SCENES = {"static": 0.0, "grain": 4.0}  # sensor-noise sigma, pixel levels
START = datetime(2024, 5, 1, 14, 0, tzinfo=timezone.utc)


def raw_decode(path: Path) -> float:
    """Seconds to decode every frame of the file, as fast as PyAV can."""
    began = time.perf_counter()
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        for _ in container.decode(*container.streams.video, *container.streams.audio):
            pass
    return time.perf_counter() - began


def ingest(path: Path, policy: MediaPolicy) -> tuple[float, int]:
    """Seconds to turn the file into clip windows, and how many clips it made."""
    began = time.perf_counter()
    clips = sum(1 for _ in ClipSource(SourceSpec("bench", str(path), start_time=START), policy))
    return time.perf_counter() - began, clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each generated file")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate of each generated file")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best is kept")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="omnisift-bench-") as tmp:
        root = Path(tmp)
        policy = MediaPolicy(media_roots=(root,))
        print(f"files: {args.seconds:g} s at {args.fps:g} fps, H.264 + AAC; ingest at 2 fps into 10 s clips")
        header = (
            f"{'size':>6} | {'scene':>6} | {'Mbit/s':>6} | {'raw decode':>18} | {'ingest':>18} | "
            f"{'clips/s':>7} | {'ratio':>5}"
        )
        print(header)
        print("-" * len(header))
        for name in args.sizes:
            width, height = SIZES[name]
            for scene, grain in SCENES.items():
                path = root / f"{name}-{scene}.mp4"
                write_sample_video(path, width=width, height=height, fps=args.fps, duration=args.seconds, grain=grain)
                mbits = path.stat().st_size * 8 / args.seconds / 1e6
                raw_s, ingest_s, clips = float("inf"), float("inf"), 0
                for _ in range(args.repeats):  # interleaved, so both see the same machine load
                    raw_s = min(raw_s, raw_decode(path))
                    seconds, clips = ingest(path, policy)
                    ingest_s = min(ingest_s, seconds)
                raw = f"{raw_s:6.2f} s {args.seconds / raw_s:6.1f}x RT"
                ing = f"{ingest_s:6.2f} s {args.seconds / ingest_s:6.1f}x RT"
                print(
                    f"{name:>6} | {scene:>6} | {mbits:6.2f} | {raw} | {ing} | {clips / ingest_s:7.2f} | "
                    f"{raw_s / ingest_s:5.2f}"
                )
                path.unlink()


if __name__ == "__main__":
    main()
