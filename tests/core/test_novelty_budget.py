"""The opt-in novelty video budget: still chunks keep a small share of STVP's fixed per-frame count,
the clip's first frame and every changing (or unmeasured) chunk keep all of it."""

from __future__ import annotations

import math

import pytest
import torch

from omnisift_core.baselines import build_compressor
from omnisift_core.budget import kept_count
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS, NoveltyBudget
from omnisift_core.errors import InvalidConfig
from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import build_clip_tokens
from tests.fixtures.synthetic_tokens import moving_block_clip

ROWS, COLS, DIM = 8, 10, 32
RATIOS = PRESETS["25%"]
FULL = kept_count(ROWS * COLS, RATIOS.video)  # 19 of 80
STILL = math.ceil(FULL * NoveltyBudget().still_keep)  # 2


def scene(frames: int, moving: set[int] = frozenset(), seed: int = 0):
    """A still background; in each frame of `moving` a 2x2 object sits at a new place."""
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(ROWS, COLS, DIM, generator=generator).expand(frames, -1, -1, -1).clone()
    for f in sorted(moving):
        r, c = (2 * f) % (ROWS - 1), (3 * f) % (COLS - 1)
        video[f, r : r + 2, c : c + 2] = torch.randn(2, 2, DIM, generator=generator)
    grid = VideoGrid(frames, ROWS, COLS)
    audio = torch.randn(25 * frames, DIM, generator=generator)
    return build_clip_tokens(video.reshape(grid.num_tokens, DIM), grid, audio)


def kept_per_frame(compressor, clip) -> list[int]:
    result = compressor.compress(clip)
    return torch.bincount(result.video_keep // (ROWS * COLS), minlength=clip.grid.frames).tolist()


def test_a_still_clip_keeps_one_full_frame_and_a_still_share_of_the_rest():
    novelty = OmniSiftCompressor(RATIOS, novelty=NoveltyBudget())
    assert kept_per_frame(novelty, scene(10)) == [FULL] + [STILL] * 9
    assert kept_per_frame(OmniSiftCompressor(RATIOS), scene(10)) == [FULL] * 10


def test_a_chunk_with_motion_keeps_the_full_budget_and_every_changed_cell():
    clip = scene(10, moving={5})  # the object shows in chunk 2's second frame only, gone in chunk 3
    result = OmniSiftCompressor(RATIOS, novelty=NoveltyBudget()).compress(clip)
    counts = torch.bincount(result.video_keep // (ROWS * COLS), minlength=10).tolist()
    assert counts == [FULL, STILL, STILL, STILL, FULL, FULL, FULL, FULL, STILL, STILL]
    frame5 = torch.arange(ROWS * COLS) + 5 * ROWS * COLS
    changed = frame5[result.video_scores[frame5] > 1e-6]
    assert len(changed) == 4 and torch.isin(changed, result.video_keep).all()


def test_a_busy_clip_is_compressed_exactly_as_with_fixed_ratios():
    clip = moving_block_clip(frames=10, rows=ROWS, cols=COLS).clip
    fixed = OmniSiftCompressor(RATIOS).compress(clip)
    novelty = OmniSiftCompressor(RATIOS, novelty=NoveltyBudget()).compress(clip)
    assert torch.equal(fixed.video_keep, novelty.video_keep) and torch.equal(fixed.audio_keep, novelty.audio_keep)


def test_a_still_one_frame_tail_is_still_too():
    counts = kept_per_frame(OmniSiftCompressor(RATIOS, novelty=NoveltyBudget()), scene(7))
    assert counts == [FULL] + [STILL] * 6


def test_a_change_between_two_chunks_makes_the_second_keep_the_full_budget():
    clip = scene(10)
    video = clip.frames().clone()
    video[4:] = -video[4:]  # the scene changes between frame 3 (chunk 1) and frame 4 (chunk 2), then holds
    changed = build_clip_tokens(video.reshape(-1, DIM), clip.grid, clip.audio.embeddings)
    counts = kept_per_frame(OmniSiftCompressor(RATIOS, novelty=NoveltyBudget()), changed)
    assert counts == [FULL, STILL, STILL, STILL, FULL, FULL, STILL, STILL, STILL, STILL]


def test_the_budget_is_part_of_the_fingerprint_and_only_omnisift_takes_it():
    fixed, novelty = OmniSiftCompressor(RATIOS), OmniSiftCompressor(RATIOS, novelty=NoveltyBudget(still_keep=0.2))
    assert fixed.fingerprint != novelty.fingerprint and "k=0.2" in novelty.fingerprint
    assert build_compressor("omnisift", RATIOS, novelty=NoveltyBudget()).novelty == NoveltyBudget()
    with pytest.raises(InvalidConfig, match="OmniSIFT option"):
        build_compressor("omnizip", RATIOS, novelty=NoveltyBudget())
