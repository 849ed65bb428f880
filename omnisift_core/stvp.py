"""STVP: parameter-free spatio-temporal video pruning, per 2-second chunk (docs/architecture.md, "The method": stage 1).

The first frame of a chunk is scored spatially (distance from its own mean: background scores low);
every later frame of the chunk temporally (distance from the same cell of the unpruned previous frame:
static cells score low). Each frame keeps the same number of tokens, its highest scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from omnisift_core.budget import kept_count, top_k_sorted
from omnisift_core.config import NoveltyBudget
from omnisift_core.tokens import ClipTokens


@dataclass(frozen=True)
class VideoSelection:
    """Which video tokens a method keeps, and the per-token scores it ranked them by."""

    keep: Tensor  # (K_v,) long, ascending indices into the clip's video tokens
    scores: Tensor  # (N_v,) float32
    temporal: Tensor  # (N_v,) bool, True where the score measures change against the previous frame


def first_frame_of_chunk(frame_chunks: Tensor) -> Tensor:
    """(F,) bool: True for each frame that opens a chunk."""
    first = torch.ones_like(frame_chunks, dtype=torch.bool)
    first[1:] = frame_chunks[1:] != frame_chunks[:-1]
    return first


def temporal_scores(frames: Tensor) -> Tensor:
    """(F, P, D) -> (F, P): 1 - cos(token, same cell of the previous frame); frame 0 scores 0."""
    unit = F.normalize(frames.float(), dim=-1)
    scores = torch.zeros(unit.shape[:2], device=unit.device)
    scores[1:] = 1.0 - (unit[1:] * unit[:-1]).sum(-1)
    return scores


def stvp_scores(frames: Tensor, frame_chunks: Tensor) -> tuple[Tensor, Tensor]:
    """(F, P, D), (F,) -> scores (F, P) and temporal (F,) bool, as STVP ranks them.

    Frames opening a chunk: 1 - cos(token, mean of its frame). Later frames: 1 - cos(token, same cell
    of the unpruned previous frame). Each score is computed only for the frames that use it.
    """
    temporal = ~first_frame_of_chunk(frame_chunks)  # (F,)
    opening, later = (~temporal).nonzero().flatten(), temporal.nonzero().flatten()
    unit = F.normalize(frames.float(), dim=-1)  # (F, P, D)
    centre = F.normalize(frames[opening].float().mean(dim=1), dim=-1)  # (F_open, D)
    scores = torch.empty(unit.shape[:2], device=unit.device)
    scores[opening] = 1.0 - torch.einsum("fpd,fd->fp", unit[opening], centre)
    scores[later] = 1.0 - (unit[later] * unit[later - 1]).sum(-1)
    return scores, temporal


def keep_per_frame(scores: Tensor, ratio: float | Sequence[float]) -> Tensor:
    """(F, P) scores -> ascending flat indices of each frame's top P - int(P*ratio) tokens.

    `ratio` is one removal ratio for all frames, or one per frame.
    """
    num_frames, per_frame = scores.shape
    if isinstance(ratio, (int, float)):
        keep = top_k_sorted(scores, kept_count(per_frame, ratio))  # (F, k)
        return (keep + torch.arange(num_frames, device=scores.device)[:, None] * per_frame).flatten()
    return keep_top_per_frame(scores, [kept_count(per_frame, r) for r in ratio])


def keep_top_per_frame(scores: Tensor, counts: Sequence[int]) -> Tensor:
    """(F, P) scores -> ascending flat indices of the top counts[f] tokens of every frame f."""
    per_frame = scores.shape[1]
    keeps = [top_k_sorted(scores[f], k) + f * per_frame for f, k in enumerate(counts)]
    return torch.cat(keeps) if keeps else torch.zeros(0, dtype=torch.long, device=scores.device)


def change_share(scores: Tensor, temporal: Tensor, chunks: Tensor, threshold: float, num_chunks: int) -> Tensor:
    """(N,) token scores, temporal flags and chunk ids -> (num_chunks,) share of each chunk's temporally
    scored tokens whose change exceeds `threshold`; NaN for a chunk with none (a one-frame tail)."""
    changed = temporal & (scores > threshold)
    scored = torch.bincount(chunks[temporal], minlength=num_chunks)[:num_chunks]
    moved = torch.bincount(chunks[changed], minlength=num_chunks)[:num_chunks]
    share = moved.float() / scored.clamp(min=1).float()
    return torch.where(scored > 0, share, torch.full_like(share, float("nan")))


def novelty_frame_counts(budget: NoveltyBudget, frames: Tensor, frame_chunks: Tensor, full: int) -> list[int]:
    """Tokens each of the (F, P, D) frames keeps under `budget`, given their (F,) chunk ids and the fixed count.

    Unlike STVP's ranking, a chunk's first frame is compared with the previous frame too, so a change
    between chunks counts; frame 0 has no previous frame and keeps the full count.
    """
    num_frames, per_frame = frames.shape[:2]
    if num_frames == 0:
        return []
    compared = torch.arange(num_frames, device=frames.device) > 0  # frame 0 has no previous frame
    share = change_share(
        temporal_scores(frames).flatten(),
        compared.repeat_interleave(per_frame),
        frame_chunks.repeat_interleave(per_frame),
        budget.change.change_threshold,
        int(frame_chunks.max()) + 1,
    ).tolist()
    still = max(1, math.ceil(full * budget.still_keep))
    active = budget.change.active_share
    return [still if f > 0 and share[c] < active else full for f, c in enumerate(frame_chunks.tolist())]


def prune_video(clip: ClipTokens, ratio: float, novelty: NoveltyBudget | None = None) -> VideoSelection:
    """STVP on a full clip at video removal ratio `ratio`; with `novelty`, still chunks keep less."""
    frames = clip.frames()  # (F, P, D)
    frame_chunks = clip.frame_chunks()
    scores, temporal = stvp_scores(frames, frame_chunks)
    if novelty is None:
        keep = keep_per_frame(scores, ratio)
    else:
        full = kept_count(scores.shape[1], ratio)
        keep = keep_top_per_frame(scores, novelty_frame_counts(novelty, frames, frame_chunks, full))
    return VideoSelection(
        keep=keep,
        scores=scores.flatten(),
        temporal=temporal[:, None].expand_as(scores).flatten(),
    )
