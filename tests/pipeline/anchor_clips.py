"""Clips for the store, planner and timeline tests: synthetic scenes compressed by the real OmniSIFT compressor."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import torch

from omnisift_core.budget import RemovalRatios
from omnisift_core.compressor import Compression, OmniSiftCompressor
from omnisift_core.tokens import VideoGrid, build_clip_tokens
from pipeline.records import ChunkScores, ClipMeta, ClipRecord
from pipeline.timeline import score_clip

T0 = datetime(2026, 3, 14, 14, 0, 0, tzinfo=timezone.utc)
RATIOS = RemovalRatios(video=0.77, audio=0.5)  # the paper's 25% operating point
COMPRESSOR = OmniSiftCompressor(RATIOS)
FINGERPRINT = f"tiny-test-model|{COMPRESSOR.fingerprint}"
SAMPLE_RATE = 16000


def scene_clip(
    moving_frames: frozenset[int] = frozenset(),
    frames: int = 10,
    rows: int = 8,
    cols: int = 10,
    dim: int = 32,
    seed: int = 0,
    block: int = 2,
):
    """A fixed background (the same for every seed offset of a scene); in each frame listed in
    `moving_frames` a block x block object jumps to a new place. Returns the full ClipTokens."""
    generator = torch.Generator().manual_seed(1234)
    background = torch.randn(rows, cols, dim, generator=generator)
    video = background.expand(frames, -1, -1, -1).clone()
    local = torch.Generator().manual_seed(seed)
    for f in sorted(moving_frames):
        r = int(torch.randint(rows - block + 1, (1,), generator=local))
        c = int(torch.randint(cols - block + 1, (1,), generator=local))
        video[f:, :, :, :] = background  # the object leaves its old place ...
        video[f:, r : r + block, c : c + block] = torch.randn(block, block, dim, generator=local)  # ... and sits here
    grid = VideoGrid(frames, rows, cols)
    audio = torch.randn(frames * 25, dim, generator=local)
    return build_clip_tokens(video.reshape(grid.num_tokens, dim), grid, audio)


def waveform(seconds: float = 10.0, loud_chunks: tuple[int, ...] = (), level_dbfs: float = -6.0, seed: int = 0):
    """Quiet noise (about -70 dBFS) with a 1 kHz tone at `level_dbfs` in the listed 2-second chunks."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLE_RATE)
    wave = (rng.standard_normal(samples) * 10 ** (-70 / 20)).astype(np.float32)
    amplitude = 10 ** (level_dbfs / 20) * np.sqrt(2)
    t = np.arange(samples) / SAMPLE_RATE
    for chunk in loud_chunks:
        part = slice(chunk * 2 * SAMPLE_RATE, (chunk + 1) * 2 * SAMPLE_RATE)
        wave[part] += (amplitude * np.sin(2 * np.pi * 1000 * t[part])).astype(np.float32)
    return wave


def compressed_record(
    camera_id: str = "lobby",
    start: datetime = T0,
    seconds: int = 10,
    moving_frames: frozenset[int] = frozenset(),
    loud_chunks: tuple[int, ...] = (),
    dim: int = 32,
    seed: int = 0,
    fingerprint: str = FINGERPRINT,
) -> tuple[ClipRecord, Compression]:
    clip = scene_clip(moving_frames, frames=seconds, dim=dim, seed=seed)
    compression = COMPRESSOR.compress(clip)
    end = start + timedelta(seconds=seconds)
    scores = score_clip(compression, start, end, waveform(seconds, loud_chunks, seed=seed), SAMPLE_RATE)
    record = ClipRecord.from_compression(camera_id, start, end, compression, fingerprint, scores)
    return record, compression


def record_at(camera_id: str, offset_s: float, seconds: int = 10, seed: int | None = None, **kwargs) -> ClipRecord:
    start = T0 + timedelta(seconds=offset_s)
    return compressed_record(camera_id, start, seconds, seed=int(offset_s) if seed is None else seed, **kwargs)[0]


def meta_at(
    camera_id: str,
    offset_s: float,
    seconds: float = 10.0,
    kept: tuple[int, int] = (150, 125),
    activity: tuple[float, ...] | None = None,
    salience: tuple[float, ...] | None = None,
) -> ClipMeta:
    """Metadata alone (for planner and timeline logic without Redis)."""
    start_ms = int((T0 + timedelta(seconds=offset_s)).timestamp() * 1000)
    chunks = max(1, -int(-seconds // 2))
    return ClipMeta(
        camera_id=camera_id,
        start_ms=start_ms,
        end_ms=start_ms + int(seconds * 1000),
        fingerprint=FINGERPRINT,
        encoding="float16",
        hidden_size=32,
        grid=VideoGrid(int(seconds), 8, 10),
        source_counts=(int(seconds) * 80, int(seconds) * 25),
        kept_counts=kept,
        scores=ChunkScores(activity or (0.0,) * chunks, salience or (0.0,) * chunks),
        has_audio=True,
        stored_bytes=1000,
    )
