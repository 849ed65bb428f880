"""Tiered-store figures at Qwen2.5-Omni-7B sizes, per compression profile (`benchmarks.store --tiers`): RAM and disk
per camera-day with every token in Redis, with the tokens on disk (cold tier), and after thinning; and reading a
one-minute plan's tokens (6 clips) hot, cold from the page cache, and cold from the disk.

A profile is a set of settings overrides (`--profile monitoring compression_preset=...`), so a new compression
profile gets its row without code. Figures per camera-day are 8,640 clips of the profile's per-clip cost on the
benchmark's mostly static scene (one clip in ten with motion).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from omnisift_core.baselines import build_compressor
from pipeline.records import ClipRecord
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import RetentionPolicy, StoreConfig
from pipeline.store.connection import RedisConfig, connect
from pipeline.store.tier_config import ThinningPolicy, TierConfig
from pipeline.store.tier_state import cold_location
from services.settings import Settings

CLIPS_PER_DAY = 24 * 360
PLAN_CLIPS = 6  # a one-minute question's plan


@dataclass(frozen=True)
class TierFigures:
    profile: str
    kept_tokens: float  # per clip, mean
    ram_hot: float  # Redis bytes per clip, every token in Redis
    ram_tiered: float  # Redis bytes per clip once its tokens are on disk (metadata, scores, indexes)
    disk_tiered: float  # segment bytes per clip
    disk_thinned: float  # segment bytes per clip thinned to keep_share
    ram_scores_only: float  # Redis bytes per clip once thinned to its scores
    read_hot_ms: float
    read_cold_cached_ms: float
    read_cold_disk_ms: float


def profile_settings(overrides: dict[str, str]) -> Settings:
    return Settings(**overrides)


def compressor_for(settings: Settings, hidden: int):
    return build_compressor(
        settings.compression_method, settings.removal_ratios, hidden, None, novelty=settings.novelty_budget()
    )


def _redis_bytes(store: AnchorStore, records: list[ClipRecord]) -> float:
    keys = [store._clip_key(r.camera_id, r.start_ms) for r in records]
    index = sum(store.client.memory_usage(store._key("bench", k), samples=0) or 0 for k in ("index", "stored", "hot"))
    return (sum(store.client.memory_usage(k, samples=0) for k in keys) + index) / len(records)


def _drop_page_cache(directory: Path) -> None:
    """Evict the segment files (only them) from the page cache, so the next read comes from the disk."""
    for path in directory.rglob("seg-*.omc"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _read_ms(store: AnchorStore, clip_ids: list[str], before=None, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        if before is not None:
            before()
        began = time.perf_counter()
        store.get_many(clip_ids)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def measure_tiers(profile: str, records: list[ClipRecord], fingerprint: str, data_dir: Path) -> TierFigures:
    cold_dir = data_dir / "cold"
    tiers = TierConfig(cold_dir=cold_dir, thinning=ThinningPolicy(1 << 40))
    config = StoreConfig(retention=RetentionPolicy(None, None), namespace="bench-tiers", tiers=tiers)
    with connect(RedisConfig(data_dir=data_dir / "redis")) as connection:
        store = AnchorStore.open(connection, fingerprint, config)
        for record in records:
            store.put(record)
        ids = [r.clip_id for r in records]
        ram_hot = _redis_bytes(store, records)
        plan = ids[len(ids) // 2 : len(ids) // 2 + PLAN_CLIPS]
        read_hot = _read_ms(store, plan)
        for first in range(0, len(ids), 8):
            store.tiers.rewrite("bench", ids[first : first + 8], "cold")
        ram_tiered = _redis_bytes(store, records)
        metas = store.clips("bench")
        disk_tiered = statistics.mean(cold_location(m).record_bytes for m in metas)
        read_cached = _read_ms(store, plan)
        read_disk = _read_ms(store, plan, before=lambda: _drop_page_cache(cold_dir))
        for first in range(0, len(ids), 8):
            store.tiers.rewrite("bench", ids[first : first + 8], "thin")
        disk_thinned = statistics.mean(cold_location(m).record_bytes for m in store.clips("bench"))
        for first in range(0, len(ids), 8):
            store.tiers.rewrite("bench", ids[first : first + 8], "drop")
        ram_scores = _redis_bytes(store, records)
        store.purge()
    kept = statistics.mean(len(r.tokens.video) + len(r.tokens.audio) for r in records)
    return TierFigures(profile, kept, ram_hot, ram_tiered, disk_tiered, disk_thinned, ram_scores, read_hot,
                       read_cached, read_disk)  # fmt: skip


def print_tiers(figures: list[TierFigures], clips: int) -> None:
    day = CLIPS_PER_DAY
    gb = 1e9
    print(f"\nTiered store per camera-day ({day} clips; per-clip costs measured on {clips} clips at 7B sizes):")
    columns = [f.profile for f in figures]
    rows = [
        ("kept tokens per clip (mean)", lambda f: f"{f.kept_tokens:.0f}"),
        ("RAM, every token in Redis (GB/day)", lambda f: f"{f.ram_hot * day / gb:.2f}"),
        ("RAM, tokens on disk (GB/day)", lambda f: f"{f.ram_tiered * day / gb:.3f}"),
        ("disk, tokens on disk (GB/day)", lambda f: f"{f.disk_tiered * day / gb:.2f}"),
        ("disk, every clip thinned (GB/day)", lambda f: f"{f.disk_thinned * day / gb:.2f}"),
        ("RAM, clips thinned to scores (GB/day)", lambda f: f"{f.ram_scores_only * day / gb:.3f}"),
        (f"read {PLAN_CLIPS} clips' tokens, hot (ms)", lambda f: f"{f.read_hot_ms:.0f}"),
        (f"read {PLAN_CLIPS} clips' tokens, cold, page cache (ms)", lambda f: f"{f.read_cold_cached_ms:.0f}"),
        (f"read {PLAN_CLIPS} clips' tokens, cold, from disk (ms)", lambda f: f"{f.read_cold_disk_ms:.0f}"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"| {'':{width}} | " + " | ".join(f"{c:>12}" for c in columns) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 14 for _ in columns) + "|")
    for label, cell in rows:
        print(f"| {label:{width}} | " + " | ".join(f"{cell(f):>12}" for f in figures) + " |")
