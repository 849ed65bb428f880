"""Baselines behind the compressor interface, so every benchmark compares methods side by side.

full keeps everything; random drops uniformly at the same per-frame and per-chunk counts; DyCoke is
its temporal-merge stage (video only, audio thinned uniformly in time); OmniZip is training-free and
audio-guided (docs/architecture.md, "Baselines").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from omnisift_core.budget import (
    evenly_spaced,
    keep_per_group,
    kept_count,
    top_k_sorted,
)
from omnisift_core.compressor import Compression, OmniSiftCompressor, TokenCompressor, assemble
from omnisift_core.config import MonitoringBudget, NoveltyBudget, RemovalRatios
from omnisift_core.errors import InvalidConfig
from omnisift_core.ste import straight_through_mask
from omnisift_core.stvp import (
    VideoSelection,
    first_frame_of_chunk,
    keep_per_frame,
    temporal_scores,
)
from omnisift_core.tokens import ClipTokens
from omnisift_core.vgas import AudioSelection, VisionGuidedAudioSelector


def _audio_selection(scores: Tensor, keep: Tensor) -> AudioSelection:
    return AudioSelection(keep=keep, scores=scores, mask=straight_through_mask(scores, keep))


class FullTokens(TokenCompressor):
    """Keeps every token (the 100% reference)."""

    name = "full"

    def __init__(self, hidden_size: int | None = None):
        super().__init__(RemovalRatios(0.0, 0.0), hidden_size)

    def _compress(self, clip: ClipTokens) -> Compression:
        n_v, n_a, device = len(clip.video), len(clip.audio), clip.video.embeddings.device
        video = VideoSelection(
            keep=torch.arange(n_v, device=device),
            scores=torch.ones(n_v, device=device),
            temporal=torch.zeros(n_v, dtype=torch.bool, device=device),
        )
        audio = _audio_selection(torch.ones(n_a, device=device), torch.arange(n_a, device=device))
        return assemble(clip, video, audio)


class RandomDrop(TokenCompressor):
    """Uniform random drops with the same per-frame and per-chunk counts as OmniSIFT; seeded."""

    name = "random"

    def __init__(self, ratios: RemovalRatios, hidden_size: int | None = None, seed: int = 0):
        super().__init__(ratios, hidden_size)
        self.seed = seed

    @property
    def fingerprint(self) -> str:
        return f"{super().fingerprint}:seed={self.seed}"

    def _compress(self, clip: ClipTokens) -> Compression:
        generator = torch.Generator().manual_seed(self.seed)
        g = clip.grid
        device = clip.video.embeddings.device
        video_scores = torch.rand(g.frames, g.tokens_per_frame, generator=generator).to(device)
        audio_scores = torch.rand(len(clip.audio), generator=generator).to(device)
        video = VideoSelection(
            keep=keep_per_frame(video_scores, self.ratios.video),
            scores=video_scores.flatten(),
            temporal=torch.zeros(g.num_tokens, dtype=torch.bool, device=device),
        )
        audio_keep = keep_per_group(clip.audio.chunks, self.ratios.audio, lambda m, k: top_k_sorted(audio_scores[m], k))
        return assemble(clip, video, _audio_selection(audio_scores, audio_keep))


class DyCokeTemporalMerge(TokenCompressor):
    """DyCoke's temporal token merging at an equal per-frame budget.

    In windows of 4 frames, frame 0 is the reference (kept on a uniform spatial grid, as it is not
    compared with anything); frames 1 and 2 keep the cells least like frame 0, frame 3 those least like
    frame 2. DyCoke has no audio method: audio is thinned uniformly in time within each chunk.
    """

    name = "dycoke"
    window = 4

    def _compress(self, clip: ClipTokens) -> Compression:
        frames = clip.frames()  # (F, P, D)
        num_frames, per_frame = frames.shape[:2]
        position = torch.arange(num_frames) % self.window
        reference = torch.arange(num_frames) - torch.tensor([0, 1, 2, 1])[position]  # (F,)
        scores = 1.0 - F.cosine_similarity(frames.float(), frames[reference].float(), dim=-1)  # (F, P)
        grid_cells = torch.zeros(per_frame, device=scores.device)
        grid_cells[evenly_spaced(per_frame, kept_count(per_frame, self.ratios.video))] = 1.0
        is_reference = position == 0
        scores[is_reference] = grid_cells
        video = VideoSelection(
            keep=keep_per_frame(scores, self.ratios.video),
            scores=scores.flatten(),
            temporal=(~is_reference)[:, None].expand(-1, per_frame).flatten(),
        )
        audio_keep = keep_per_group(clip.audio.chunks, self.ratios.audio, lambda m, k: evenly_spaced(len(m), k))
        return assemble(clip, video, _audio_selection(torch.ones_like(clip.audio.times), audio_keep))


class OmniZip(TokenCompressor):
    """OmniZip, training-free and audio-guided.

    Audio: tokens ranked by saliency (the backbone's audio-encoder attention when the clip carries
    `audio_saliency`, else the attention each token receives in one parameter-free self-attention over
    the clip's centred audio tokens); the top share is kept, plus ~5% of the clip as anchors spread in
    time over the rest, into which every other dropped token is merged (averaged) by cosine similarity.
    Video: per 2-second window the drop ratio is 0.75 - 0.40 * (share of that window's audio kept),
    rescaled to the global ratio and clamped to [0.35, 0.75] (widened to include the global ratio so the
    budget is met); the window's first frame keeps density-peak tokens (DPC-KNN, k=5, 1-cos distance),
    later frames the cells least like the previous frame (ISTC).
    """

    uses_audio_saliency = True

    name = "omnizip"
    anchor_share = 0.05
    neighbours = 5

    def _compress(self, clip: ClipTokens) -> Compression:
        audio, merged = self._select_audio(clip)
        return assemble(clip, self._select_video(clip, audio.keep), audio, kept_audio=merged)

    def _select_audio(self, clip: ClipTokens) -> tuple[AudioSelection, Tensor]:
        x = clip.audio.embeddings
        n = len(x)
        saliency = clip.audio_saliency if clip.audio_saliency is not None else _received_attention(x)
        budget = sum(kept_count(int(c), self.ratios.audio) for c in torch.bincount(clip.audio.chunks))
        num_anchors = min(math.ceil(self.anchor_share * n), n - budget, budget)
        top = top_k_sorted(saliency.float(), budget - num_anchors)
        rest = torch.ones(n, dtype=torch.bool, device=x.device)
        rest[top] = False
        rest_index = rest.nonzero().flatten()
        anchors = rest_index[evenly_spaced(len(rest_index), num_anchors)] if num_anchors else rest_index[:0]
        keep = torch.sort(torch.cat([top, anchors])).values
        selection = _audio_selection(saliency.float(), keep)
        return selection, _merge_into_anchors(x, keep, anchors, rest_index)

    def _select_video(self, clip: ClipTokens, audio_keep: Tensor) -> VideoSelection:
        frames = clip.frames()  # (F, P, D)
        frame_chunks = clip.frame_chunks()
        chunk_ratio = self._window_ratios(clip, audio_keep)  # chunk id -> ratio
        first = first_frame_of_chunk(frame_chunks)
        scores = temporal_scores(frames)
        for f in first.nonzero().flatten().tolist():
            scores[f] = _density_peak_scores(frames[f], self.neighbours)
        return VideoSelection(
            keep=keep_per_frame(scores, [chunk_ratio[c] for c in frame_chunks.tolist()]),
            scores=scores.flatten(),
            temporal=(~first)[:, None].expand_as(scores).flatten(),
        )

    def _window_ratios(self, clip: ClipTokens, audio_keep: Tensor) -> dict[int, float]:
        frame_chunks = clip.frame_chunks()
        windows = torch.unique(frame_chunks).tolist()
        kept = torch.zeros(len(clip.audio), dtype=torch.bool, device=audio_keep.device)
        kept[audio_keep] = True
        raw = {}
        for w in windows:
            in_window = clip.audio.chunks == w
            share = float(kept[in_window].float().mean()) if in_window.any() else 1.0
            raw[w] = 0.75 - 0.40 * share
        weights = torch.tensor([float((frame_chunks == w).sum()) for w in windows])
        ratios = _rescale_clamped(torch.tensor([raw[w] for w in windows]), weights, self.ratios.video)
        return dict(zip(windows, ratios.tolist(), strict=True))


def _rescale_clamped(ratios: Tensor, weights: Tensor, target: float, rounds: int = 50) -> Tensor:
    """Scale window ratios so their weighted mean is `target`, clamped to [0.35, 0.75] widened to
    include the target; repeated so windows pinned at a bound do not leave the budget unmet."""
    if target == 0 or len(ratios) == 0:
        return torch.zeros_like(ratios)
    low, high = min(0.35, target), max(0.75, target)
    for _ in range(rounds):
        mean = float((ratios * weights).sum() / weights.sum())
        if abs(mean - target) < 1e-9:
            break
        ratios = (ratios * target / mean).clamp(low, high)
    return ratios


def _received_attention(x: Tensor, temperature: float = 0.1) -> Tensor:
    """(N, D) -> (N,): mean attention each token receives in a parameter-free self-attention."""
    if len(x) == 0:
        return x.new_zeros(0, dtype=torch.float32)
    unit = F.normalize(x.float() - x.float().mean(0), dim=-1)
    return ((unit @ unit.T) / temperature).softmax(dim=-1).mean(0)


def _merge_into_anchors(x: Tensor, keep: Tensor, anchors: Tensor, rest: Tensor) -> Tensor:
    """Kept embeddings, with each dropped non-anchor token averaged into its most similar anchor."""
    values = x.float().clone()
    if len(anchors):
        dropped = rest[~torch.isin(rest, anchors)]
        if len(dropped):
            similarity = F.normalize(values[dropped], dim=-1) @ F.normalize(values[anchors], dim=-1).T
            target = anchors[similarity.argmax(dim=-1)]  # (n_dropped,)
            sums = values.index_add(0, target, values[dropped])
            counts = values.new_ones(len(x)).index_add(0, target, values.new_ones(len(dropped)))
            values = sums / counts[:, None]
    return values[keep].to(x.dtype)


def _density_peak_scores(tokens: Tensor, neighbours: int) -> Tensor:
    """(P, D) -> (P,) DPC-KNN score: local density times distance to any denser token."""
    unit = F.normalize(tokens.float(), dim=-1)
    distance = (1.0 - unit @ unit.T).clamp(min=0.0)  # (P, P)
    k = min(neighbours, len(tokens) - 1)
    if k <= 0:
        return tokens.new_ones(len(tokens), dtype=torch.float32)
    nearest = distance.topk(k + 1, dim=-1, largest=False).values[:, 1:]  # drop self
    density = torch.exp(-(nearest**2).mean(-1))  # (P,)
    denser = density[None, :] > density[:, None]  # (P, P): j denser than i
    to_denser = distance.masked_fill(~denser, float("inf")).min(-1).values
    peak = torch.isinf(to_denser)
    to_denser[peak] = distance[peak].max(-1).values
    return density * to_denser


def build_compressor(
    method: str,
    ratios: RemovalRatios,
    hidden_size: int | None = None,
    selector: VisionGuidedAudioSelector | None = None,
    seed: int = 0,
    novelty: NoveltyBudget | None = None,
    monitoring: MonitoringBudget | None = None,
) -> TokenCompressor:
    """A compressor by name: omnisift, omnizip, dycoke, random or full (only omnisift takes a budget)."""
    if (novelty is not None or monitoring is not None) and method != "omnisift":
        raise InvalidConfig(f"the novelty and monitoring budgets are OmniSIFT options; {method!r} has fixed ratios")
    if method == "omnisift":
        return OmniSiftCompressor(ratios, hidden_size, selector, novelty, monitoring)
    if method == "omnizip":
        return OmniZip(ratios, hidden_size)
    if method == "dycoke":
        return DyCokeTemporalMerge(ratios, hidden_size)
    if method == "random":
        return RandomDrop(ratios, hidden_size, seed)
    if method == "full":
        return FullTokens(hidden_size)
    raise InvalidConfig(f"unknown compression method {method!r}; choose omnisift, omnizip, dycoke, random or full")
