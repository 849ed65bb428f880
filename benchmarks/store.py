"""Anchor-store cost at Qwen2.5-Omni-7B sizes: write/read throughput per clip, float16 vs int8, int8 error,
and stored bytes per camera-hour for a mostly static scene, with the paper's fixed ratios and with the
novelty video budget (video_budget=novelty: still chunks keep a tenth of the per-frame count).

A 10-second clip at 2 fps is 10 LLM frames of 16x20 tokens and 250 audio tokens at D = 3584; the
OmniSIFT compressor (training-free audio scoring) keeps 25% (740 video + 125 audio tokens). The store
is the embedded redis-server (append-only file, fsync on every write: the default configuration).

With --tiers, the tiered store's figures per camera-day and compression profile (benchmarks/store_tiers.py):
RAM and disk with tokens hot, on disk and thinned, and reading a plan's tokens hot and cold. Profiles are
settings overrides: --profile NAME KEY=VALUE ... (fixed 25% and the novelty budget are built in).

Run: .venv/bin/python -m benchmarks.store [--clips 30] [--tiers [--profile monitoring compression_preset=...]]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import torch

from benchmarks.store_tiers import compressor_for, measure_tiers, print_tiers, profile_settings
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS, NoveltyBudget
from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import build_clip_tokens
from pipeline.records import ChunkScores, ClipRecord
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.codec import dequantize_int8, quantize_int8
from pipeline.store.config import RetentionPolicy, StoreConfig
from pipeline.store.connection import RedisConfig, connect

HIDDEN_7B = 3584
GRID = VideoGrid(frames=10, rows=16, cols=20)
CLIP_SECONDS = 10
T0 = datetime(2026, 3, 14, 14, 0, tzinfo=timezone.utc)


def static_scene_clip(index: int, moving: bool):
    """A fixed background; in `moving` clips a 3x3 object jumps to a new cell every frame. Light noise on
    every token stands in for sensor noise."""
    background = torch.randn(GRID.rows, GRID.cols, HIDDEN_7B, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(index + 1)
    video = background.expand(GRID.frames, -1, -1, -1).clone()
    video += 0.02 * torch.randn(video.shape, generator=generator)
    if moving:
        for f in range(GRID.frames):
            r, c = (2 * f + index) % (GRID.rows - 3), (3 * f + index) % (GRID.cols - 3)
            video[f, r : r + 3, c : c + 3] = torch.randn(3, 3, HIDDEN_7B, generator=generator)
    audio = torch.randn(CLIP_SECONDS * 25, HIDDEN_7B, generator=generator)
    return build_clip_tokens(video.reshape(GRID.num_tokens, HIDDEN_7B), GRID, audio)


def records(count: int, compressor: OmniSiftCompressor, fingerprint: str) -> list[ClipRecord]:
    out = []
    for i in range(count):
        compression = compressor.compress(static_scene_clip(i, moving=i % 10 == 3))  # one clip in ten has motion
        start = T0 + timedelta(seconds=CLIP_SECONDS * i)
        end = start + timedelta(seconds=CLIP_SECONDS)
        scores = ChunkScores((0.02 * (i % 10 == 3),) * 5, (0.0,) * 5)  # the moving clip: its object moved
        out.append(
            ClipRecord("bench", start, end, compression.kept, fingerprint, compression.source_counts, scores, False)
        )
    return out


def int8_error(x: torch.Tensor) -> dict[str, float]:
    y = dequantize_int8(*quantize_int8(x))
    return {
        "rel_l2": float((x - y).norm() / x.norm()),
        "max_abs_over_token_max": float(((x - y).abs().amax(1) / x.abs().amax(1)).max()),
        "min_cosine": float(torch.nn.functional.cosine_similarity(x, y, dim=1).min()),
    }


def key_memory(store: AnchorStore, records: list[ClipRecord]) -> int:
    """Bytes Redis allocates for the clip hashes (MEMORY USAGE, all fields counted)."""
    return sum(store.client.memory_usage(store._clip_key(r.camera_id, r.start_ms), samples=0) for r in records)


def measure(encoding: str, fsync: str, batch: list[ClipRecord], data_dir: Path, fingerprint: str) -> dict[str, float]:
    config = StoreConfig(encoding=encoding, retention=RetentionPolicy(None, None), namespace=f"bench-{encoding}")
    with connect(RedisConfig(data_dir=data_dir, fsync=fsync)) as connection:
        store = AnchorStore.open(connection, fingerprint, config)
        store.put(batch[0])  # warm-up: connection, fingerprint claim
        store.delete(batch[0].clip_id)
        writes = []
        for record in batch:
            started = time.perf_counter()
            store.put(record)
            writes.append(time.perf_counter() - started)
        reads = []
        for record in batch:
            started = time.perf_counter()
            store.get(record.clip_id)
            reads.append(time.perf_counter() - started)
        range_reads = []
        for _ in range(3):  # the first pass also pays for fresh memory pages; report the median
            started = time.perf_counter()
            loaded = store.load("bench", batch[0].start, batch[-1].end)
            range_reads.append(time.perf_counter() - started)
            assert len(loaded) == len(batch)
            del loaded
        range_read = statistics.median(range_reads)
        usage = store.usage("bench")
        memory = key_memory(store, batch)
    per_clip = usage.stored_bytes / len(batch)
    return {
        "write_ms": statistics.median(writes) * 1000,
        "read_ms": statistics.median(reads) * 1000,
        "range_ms_per_clip": range_read * 1000 / len(batch),
        "bytes_per_clip": per_clip,
        "memory_per_clip": memory / len(batch),
        "write_mb_s": per_clip / statistics.median(writes) / 1e6,
        "read_mb_s": per_clip / statistics.median(reads) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=30, help="clips written per encoding (30 = 5 minutes)")
    parser.add_argument("--tiers", action="store_true", help="only the tiered store's figures, per profile")
    parser.add_argument(
        "--profile", nargs="+", action="append", default=[], metavar=("NAME", "KEY=VALUE"),
        help="another compression profile for --tiers, as settings overrides",
    )  # fmt: skip
    args = parser.parse_args()
    if args.tiers:
        tiers_main(args.clips, args.profile)
        return

    batches = {}
    for budget, novelty in (("fixed", None), ("novelty", NoveltyBudget())):
        compressor = OmniSiftCompressor(PRESETS["25%"], HIDDEN_7B, novelty=novelty)
        fingerprint = f"bench-7b|{compressor.fingerprint}"
        batches[budget] = (records(args.clips, compressor, fingerprint), fingerprint)
    batch = batches["fixed"][0]
    source = f"{GRID.num_tokens} + 250"
    for budget, (clip_records, _) in batches.items():
        video = statistics.mean(len(r.tokens.video) for r in clip_records)
        audio = statistics.mean(len(r.tokens.audio) for r in clip_records)
        kept = f"{video:.0f} video + {audio:.0f} audio tokens of {source} (mean)"
        print(f"clip ({budget} budget): {CLIP_SECONDS} s, kept {kept}, D = {HIDDEN_7B}")
    print(f"store: embedded redis-server (appendfsync always unless noted); {args.clips} clips per column")
    active = sum(any(a > 0.02 for a in r.scores.activity) for r in batch)
    print(f"scene: mostly static, {active} of {args.clips} clips with activity above 2% of cells\n")

    columns = {
        "float16": ("float16", "always", "fixed"),
        "int8": ("int8", "always", "fixed"),
        "float16, fsync 1/s": ("float16", "everysec", "fixed"),
        "float16, novelty": ("float16", "always", "novelty"),
        "int8, novelty": ("int8", "always", "novelty"),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="omnisift-bench-") as tmp:
        for k, (name, (encoding, fsync, budget)) in enumerate(columns.items()):
            clip_records, fingerprint = batches[budget]
            results[name] = measure(encoding, fsync, clip_records, Path(tmp) / str(k), fingerprint)

    clips_per_hour = 3600 / CLIP_SECONDS
    rows = [
        ("write per clip, median (ms)", lambda r: f"{r['write_ms']:.1f}"),
        ("write throughput (MB/s)", lambda r: f"{r['write_mb_s']:.0f}"),
        ("read per clip, get, median (ms)", lambda r: f"{r['read_ms']:.1f}"),
        ("read throughput, get (MB/s)", lambda r: f"{r['read_mb_s']:.0f}"),
        (f"read per clip, load of {len(batch)} by time (ms)", lambda r: f"{r['range_ms_per_clip']:.1f}"),
        ("stored payload per clip (MB)", lambda r: f"{r['bytes_per_clip'] / 1e6:.2f}"),
        ("Redis memory per clip (MB)", lambda r: f"{r['memory_per_clip'] / 1e6:.2f}"),
        ("stored payload per camera-hour (GB)", lambda r: f"{r['bytes_per_clip'] * clips_per_hour / 1e9:.2f}"),
        ("Redis memory per camera-hour (GB)", lambda r: f"{r['memory_per_clip'] * clips_per_hour / 1e9:.2f}"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"| {'':{width}} | " + " | ".join(f"{name:>18}" for name in columns) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 20 for _ in columns) + "|")
    for label, cell in rows:
        print(f"| {label:{width}} | " + " | ".join(f"{cell(results[name]):>18}" for name in columns) + " |")

    print("\nint8 (per-token scale) error on the kept tokens:")
    kept = torch.cat([batch[0].tokens.video.embeddings, batch[0].tokens.audio.embeddings])
    outliers = kept.clone()
    outliers[:, :8] *= 20  # a few large channels, as LLM hidden states often have
    for name, x in (("gaussian-like (this benchmark's tokens)", kept), ("with 8 outlier channels x20", outliers)):
        err = int8_error(x)
        print(
            f"  {name:40} relative L2 {err['rel_l2']:.4f}, max |error| / token max {err['max_abs_over_token_max']:.4f}"
            f" (bound 1/254 = {1 / 254:.4f}), min cosine {err['min_cosine']:.6f}"
        )


def tiers_main(clips: int, extra: list[list[str]]) -> None:
    profiles = {"fixed 25%": {"compression_profile": "paper"}, "novelty": {"video_budget": "novelty"}}
    for name, *pairs in extra:
        profiles[name] = dict(pair.split("=", 1) for pair in pairs)
    figures = []
    with tempfile.TemporaryDirectory(prefix="omnisift-bench-tiers-") as tmp:
        for k, (name, overrides) in enumerate(profiles.items()):
            compressor = compressor_for(profile_settings(overrides), HIDDEN_7B)
            fingerprint = f"bench-7b|{compressor.fingerprint}"
            batch = records(clips, compressor, fingerprint)
            figures.append(measure_tiers(name, batch, fingerprint, Path(tmp) / str(k)))
            del batch
    print_tiers(figures, clips)


if __name__ == "__main__":
    main()
