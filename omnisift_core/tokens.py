"""The unit everything passes around: one clip's LLM-space media tokens with TMRoPE positions and times.

Positions follow Qwen2.5-Omni's `get_rope_index` with audio-in-video: a video frame at second s has
t = 25*s, h/w = merged row/col; audio token j has t = h = w = j; both relative to the clip's first
media position (0 here; the answerer shifts whole clips). Tokens are grouped into 2-second chunks
exactly as the model interleaves them: chunk = t // 50.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from omnisift_core.errors import InvalidTokens
from omnisift_core.layout import (
    AUDIO_TOKENS_PER_SECOND,
    POSITIONS_PER_CHUNK,
    POSITIONS_PER_SECOND,
    VideoGrid,
)


@dataclass(frozen=True)
class TokenStream:
    """Tokens of one modality: embeddings with their (t, h, w) positions, times and chunk ids."""

    embeddings: Tensor  # (N, D)
    positions: Tensor  # (3, N) long
    times: Tensor  # (N,) float32, seconds from clip start
    chunks: Tensor  # (N,) long, index of the 2-second chunk

    def __post_init__(self) -> None:
        n = self.embeddings.shape[0]
        if self.embeddings.dim() != 2:
            raise InvalidTokens(f"embeddings must be (N, D), got shape {tuple(self.embeddings.shape)}")
        if self.positions.shape != (3, n):
            raise InvalidTokens(f"positions must be (3, {n}), got {tuple(self.positions.shape)}")
        if self.times.shape != (n,) or self.chunks.shape != (n,):
            raise InvalidTokens(f"times and chunks must be ({n},)")

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.embeddings.shape[1]

    def to(self, device: torch.device) -> TokenStream:
        return TokenStream(
            embeddings=self.embeddings.to(device),
            positions=self.positions.to(device),
            times=self.times.to(device),
            chunks=self.chunks.to(device),
        )

    def take(self, index: Tensor, embeddings: Tensor | None = None) -> TokenStream:
        """The tokens at `index`, keeping their original positions; `embeddings` replaces merged values."""
        return TokenStream(
            embeddings=self.embeddings[index] if embeddings is None else embeddings,
            positions=self.positions[:, index],
            times=self.times[index],
            chunks=self.chunks[index],
        )


@dataclass(frozen=True)
class MediaEvidence:
    """What the raw media says about a full clip's tokens, measured outside the model (docs/architecture.md,
    "The monitoring profile"): how much each video cell changed against the frame before it, and how salient
    the sound under each audio token is."""

    cell_change: Tensor  # (N_v,) float32, change in units of the change threshold (>= 1: changed); NaN: no frame before
    sound_salience: Tensor  # (N_a,) float32 in [0, 1]

    def to(self, device: torch.device) -> MediaEvidence:
        return MediaEvidence(self.cell_change.to(device), self.sound_salience.to(device))


@dataclass(frozen=True)
class ClipTokens:
    """One clip's tokens. `grid` describes the full video; a compressed clip keeps it for reference."""

    video: TokenStream
    audio: TokenStream
    grid: VideoGrid
    audio_saliency: Tensor | None = None  # (N_a,) optional, from the audio encoder's attention (OmniZip)
    evidence: MediaEvidence | None = None  # optional, for the monitoring budget; full clips only

    def __post_init__(self) -> None:
        if len(self.video) == 0 and len(self.audio) == 0:
            raise InvalidTokens("clip has no video and no audio tokens")
        if len(self.video) and len(self.audio) and self.video.hidden_size != self.audio.hidden_size:
            raise InvalidTokens(
                f"video and audio hidden sizes differ: {self.video.hidden_size} vs {self.audio.hidden_size}"
            )
        if self.audio_saliency is not None and self.audio_saliency.shape != (len(self.audio),):
            raise InvalidTokens(f"audio_saliency must be ({len(self.audio)},)")
        if self.evidence is not None and (
            self.evidence.cell_change.shape != (len(self.video),)
            or self.evidence.sound_salience.shape != (len(self.audio),)
        ):
            raise InvalidTokens(f"evidence must cover ({len(self.video)},) video and ({len(self.audio)},) audio tokens")

    @property
    def hidden_size(self) -> int:
        return self.video.hidden_size if len(self.video) else self.audio.hidden_size

    def to(self, device: torch.device) -> ClipTokens:
        saliency = None if self.audio_saliency is None else self.audio_saliency.to(device)
        evidence = None if self.evidence is None else self.evidence.to(device)
        return ClipTokens(self.video.to(device), self.audio.to(device), self.grid, saliency, evidence)

    @property
    def num_chunks(self) -> int:
        last = [int(s.chunks.max()) for s in (self.video, self.audio) if len(s)]
        return max(last) + 1

    @property
    def is_full(self) -> bool:
        """True when every cell of the grid is present (what compressors require as input)."""
        return len(self.video) == self.grid.num_tokens

    def frames(self) -> Tensor:
        """Video embeddings as (frames, tokens_per_frame, D); only for a full clip."""
        if not self.is_full:
            raise InvalidTokens("frames() needs a full clip, this one is already compressed")
        g = self.grid
        return self.video.embeddings.view(g.frames, g.tokens_per_frame, self.hidden_size)

    def frame_chunks(self) -> Tensor:
        """(frames,) chunk id of each video frame of a full clip."""
        return self.video.chunks[:: self.grid.tokens_per_frame] if len(self.video) else self.video.chunks

    def select(self, video_index: Tensor, audio_index: Tensor, audio_embeddings: Tensor | None = None) -> ClipTokens:
        """The kept tokens, with their original positions (nothing is re-indexed)."""
        return ClipTokens(
            video=self.video.take(video_index),
            audio=self.audio.take(audio_index, audio_embeddings),
            grid=self.grid,
        )


def build_clip_tokens(
    video: Tensor,
    grid: VideoGrid,
    audio: Tensor,
    seconds_per_frame: float = 1.0,
) -> ClipTokens:
    """Attach Qwen2.5-Omni's TMRoPE positions to encoder outputs of one clip.

    video: (frames*rows*cols, D) merged vision features, frame-major then row-major.
    audio: (N_a, D) audio features, 25 per second.
    seconds_per_frame: seconds per temporal patch (temporal_patch_size / fps; 1.0 at 2 fps).
    """
    if video.shape[0] != grid.num_tokens:
        raise InvalidTokens(f"video has {video.shape[0]} tokens but grid {grid} needs {grid.num_tokens}")
    device = video.device
    frame_t = (torch.arange(grid.frames, device=device) * seconds_per_frame * POSITIONS_PER_SECOND).long()  # (F,)
    t = frame_t.view(-1, 1, 1).expand(-1, grid.rows, grid.cols).flatten()
    h = torch.arange(grid.rows, device=device).view(1, -1, 1).expand(grid.frames, -1, grid.cols).flatten()
    w = torch.arange(grid.cols, device=device).view(1, 1, -1).expand(grid.frames, grid.rows, -1).flatten()
    video_positions = torch.stack([t, h, w])  # (3, N_v)
    audio_t = torch.arange(audio.shape[0], device=device)
    audio_positions = audio_t.view(1, -1).expand(3, -1).clone()  # (3, N_a)
    return ClipTokens(
        video=TokenStream(
            embeddings=video,
            positions=video_positions,
            times=t.float() / POSITIONS_PER_SECOND,
            chunks=t // POSITIONS_PER_CHUNK,
        ),
        audio=TokenStream(
            embeddings=audio,
            positions=audio_positions,
            times=audio_t.float() / AUDIO_TOKENS_PER_SECOND,
            chunks=audio_t // POSITIONS_PER_CHUNK,
        ),
        grid=grid,
    )
