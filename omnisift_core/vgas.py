"""VGAS: vision-guided audio selection, per 2-second chunk (docs/architecture.md, "The method": stage 2).

Each chunk's audio tokens query that chunk's visual anchors (the video tokens STVP kept); a score per
audio token decides which survive. Scores come from the learned selector (the paper's only new weights)
or, when no trained weights are loaded, from a training-free alignment score with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from omnisift_core.budget import kept_count, top_k_sorted
from omnisift_core.ste import straight_through_mask
from omnisift_core.tokens import ClipTokens

# (audio (C, La, D), audio_valid (C, La), anchors (C, Lv, D), anchor_valid (C, Lv)) -> scores (C, La) in (0, 1).
# Every row has at least one valid anchor and one valid audio token.
AudioScorer = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


class VisionGuidedAudioSelector(nn.Module):
    """One cross-attention block from audio (queries) to visual anchors; attribute names match the
    published OmniSIFT checkpoint (`thinker.compressor.*`). 4,856,321 parameters at hidden_size 3584."""

    def __init__(self, hidden_size: int, dim: int = 512, num_heads: int = 8, head_dim: int = 256):
        super().__init__()
        self.hidden_size = hidden_size
        self.v_proj = nn.Linear(hidden_size, dim)
        self.a_proj = nn.Linear(hidden_size, dim)
        self.v_norm = nn.LayerNorm(dim)
        self.a_norm = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.post_attn_norm = nn.LayerNorm(dim)
        self.score_head = nn.Sequential(nn.Linear(dim, head_dim), nn.SiLU(), nn.Linear(head_dim, 1))

    def forward(self, audio: Tensor, audio_valid: Tensor, anchors: Tensor, anchor_valid: Tensor) -> Tensor:
        dtype = self.v_proj.weight.dtype
        v = self.v_norm(self.v_proj(anchors.to(dtype)))  # (C, Lv, D) -> (C, Lv, 512)
        a = self.a_norm(self.a_proj(audio.to(dtype)))  # (C, La, D) -> (C, La, 512)
        attended, _ = self.cross_attn(a, v, v, key_padding_mask=~anchor_valid, need_weights=False)
        x = self.post_attn_norm(attended + a)  # (C, La, 512)
        return torch.sigmoid(self.score_head(x).squeeze(-1)).float()  # (C, La)


def training_free_scores(
    audio: Tensor, audio_valid: Tensor, anchors: Tensor, anchor_valid: Tensor, temperature: float = 0.1
) -> Tensor:
    """How well each audio token is explained by the chunk's visual anchors, with no trained weights.

    Both modalities are centred on their chunk mean (removing the offset between modality embedding
    spaces), then each audio token's cosine to every anchor is averaged under a softmax over anchors
    (temperature 0.1, close to the best-matching anchor). Score = (1 + that cosine) / 2, in [0, 1].
    """
    a = _centre(audio.float(), audio_valid)
    v = _centre(anchors.float(), anchor_valid)
    cos = torch.einsum("cad,cvd->cav", F.normalize(a, dim=-1), F.normalize(v, dim=-1))  # (C, La, Lv)
    logits = (cos / temperature).masked_fill(~anchor_valid[:, None, :], float("-inf"))
    aligned = (logits.softmax(dim=-1) * cos.masked_fill(~anchor_valid[:, None, :], 0.0)).sum(-1)
    return (1.0 + aligned) / 2.0


def _centre(x: Tensor, valid: Tensor) -> Tensor:
    """(C, L, D) minus its per-row mean over valid positions."""
    weights = valid.float()[..., None]
    mean = (x * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1.0)
    return x - mean


@dataclass(frozen=True)
class AudioSelection:
    """Kept audio tokens of one clip with the scores behind them and their straight-through mask."""

    keep: Tensor  # (K_a,) long, ascending
    scores: Tensor  # (N_a,) float32; 1.0 for chunks kept whole (no anchors, or at most one audio token)
    mask: Tensor  # (N_a,) float32, forward value exactly 1 for kept and 0 for dropped


@dataclass(frozen=True)
class _ChunkRow:
    clip: int
    audio_index: Tensor  # (La,) indices into the clip's audio
    anchor_index: Tensor  # (Lv,) indices into the clip's video


def select_audio(
    clips: Sequence[ClipTokens], video_keeps: Sequence[Tensor], ratio: float, scorer: AudioScorer
) -> list[AudioSelection]:
    """Score every chunk of every clip in one padded scorer call, then keep each chunk's top tokens."""
    rows, whole = _chunk_rows(clips, video_keeps)
    scores = [torch.ones(len(clip.audio), device=clip.audio.embeddings.device) for clip in clips]
    if rows:
        row_scores = scorer(*_pad_rows(clips, rows))  # (C, La)
        for row, row_score in zip(rows, row_scores, strict=True):
            scores[row.clip] = scores[row.clip].index_put((row.audio_index,), row_score[: len(row.audio_index)])
    keeps: list[list[Tensor]] = [list(kept) for kept in whole]
    for row in rows:
        k = kept_count(len(row.audio_index), ratio)
        keeps[row.clip].append(row.audio_index[top_k_sorted(scores[row.clip][row.audio_index].detach(), k)])
    selections = []
    for clip_scores, clip_keeps in zip(scores, keeps, strict=True):
        keep = torch.sort(torch.cat(clip_keeps)).values if clip_keeps else clip_scores.new_zeros(0, dtype=torch.long)
        selections.append(AudioSelection(keep, clip_scores, straight_through_mask(clip_scores, keep)))
    return selections


def _chunk_rows(
    clips: Sequence[ClipTokens], video_keeps: Sequence[Tensor]
) -> tuple[list[_ChunkRow], list[list[Tensor]]]:
    """Chunks to score, and per clip the audio indices of chunks kept whole."""
    rows: list[_ChunkRow] = []
    whole: list[list[Tensor]] = []
    for i, (clip, video_keep) in enumerate(zip(clips, video_keeps, strict=True)):
        anchor_chunks = clip.video.chunks[video_keep]
        kept_whole = []
        for chunk in torch.unique(clip.audio.chunks).tolist():
            audio_index = (clip.audio.chunks == chunk).nonzero().flatten()
            anchor_index = video_keep[anchor_chunks == chunk]
            if len(audio_index) > 1 and len(anchor_index) > 0:
                rows.append(_ChunkRow(i, audio_index, anchor_index))
            else:
                kept_whole.append(audio_index)
        whole.append(kept_whole)
    return rows, whole


def _pad_rows(clips: Sequence[ClipTokens], rows: Sequence[_ChunkRow]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    audio = pad_sequence([clips[r.clip].audio.embeddings[r.audio_index] for r in rows], batch_first=True)
    anchors = pad_sequence([clips[r.clip].video.embeddings[r.anchor_index] for r in rows], batch_first=True)
    audio_valid = _valid_mask([len(r.audio_index) for r in rows], audio.shape[1], audio.device)
    anchor_valid = _valid_mask([len(r.anchor_index) for r in rows], anchors.shape[1], audio.device)
    return audio, audio_valid, anchors, anchor_valid


def _valid_mask(lengths: Sequence[int], width: int, device: torch.device) -> Tensor:
    return torch.arange(width, device=device)[None, :] < torch.tensor(lengths, device=device)[:, None]
