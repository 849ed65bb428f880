"""Synthetic clips on tensors: a static scene with a moving block, and audio aligned to what moves."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from omnisift_core.tokens import ClipTokens, VideoGrid, build_clip_tokens


def random_clip(frames: int = 10, rows: int = 8, cols: int = 10, audio: int = 250, dim: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    grid = VideoGrid(frames, rows, cols)
    return build_clip_tokens(
        torch.randn(grid.num_tokens, dim, generator=generator),
        grid,
        torch.randn(audio, dim, generator=generator),
    )


@dataclass(frozen=True)
class AlignedClip:
    clip: ClipTokens
    changed_cells: Tensor  # (N_v,) bool: cells that differ from the same cell of the previous frame
    aligned_audio: Tensor  # (N_a,) bool: audio tokens built from a changed cell


def moving_block_clip(
    frames: int = 10,
    rows: int = 8,
    cols: int = 10,
    block: int = 2,
    dim: int = 64,
    audio_per_chunk: int = 50,
    aligned_per_chunk: int = 10,
    seed: int = 0,
) -> AlignedClip:
    """A static background; in every frame a block x block object sits at a new place. Each chunk has
    `aligned_per_chunk` audio tokens made from that chunk's changed cells (plus noise), the rest noise."""
    generator = torch.Generator().manual_seed(seed)
    background = torch.randn(rows, cols, dim, generator=generator)
    video = background.expand(frames, -1, -1, -1).clone()
    changed = torch.zeros(frames, rows, cols, dtype=torch.bool)
    for f in range(frames):
        r, c = (2 * f) % (rows - block + 1), (3 * f) % (cols - block + 1)
        video[f, r : r + block, c : c + block] = torch.randn(block, block, dim, generator=generator)
    changed[1:] = (video[1:] != video[:-1]).any(-1)
    grid = VideoGrid(frames, rows, cols)
    num_chunks = (frames + 1) // 2
    audio = torch.randn(num_chunks * audio_per_chunk, dim, generator=generator)
    aligned = torch.zeros(len(audio), dtype=torch.bool)
    for chunk in range(num_chunks):
        second = min(2 * chunk + 1, frames - 1)  # the chunk's second frame, where temporal change is scored
        cells = video[second][changed[second]]  # (n_changed, D)
        slots = chunk * audio_per_chunk + torch.randperm(audio_per_chunk, generator=generator)[:aligned_per_chunk]
        picks = torch.randint(len(cells), (aligned_per_chunk,), generator=generator)
        audio[slots] = cells[picks] + 0.3 * torch.randn(aligned_per_chunk, dim, generator=generator)
        aligned[slots] = True
    clip = build_clip_tokens(video.reshape(grid.num_tokens, dim), grid, audio)
    return AlignedClip(clip, changed.flatten(), aligned)
