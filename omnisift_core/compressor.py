"""The per-clip driver: a common interface for every token compressor, and OmniSIFT (STVP then VGAS)."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from omnisift_core.config import MonitoringBudget, NoveltyBudget, RemovalRatios
from omnisift_core.errors import InvalidConfig, InvalidTokens
from omnisift_core.monitoring import change_first_video, salience_first_audio
from omnisift_core.ste import gather_kept
from omnisift_core.stvp import VideoSelection, prune_video
from omnisift_core.tokens import ClipTokens
from omnisift_core.vgas import AudioSelection, VisionGuidedAudioSelector, select_audio, training_free_scores


@dataclass(frozen=True)
class Compression:
    """What a compressor kept of one clip, and why."""

    kept: ClipTokens  # kept tokens with their original positions
    video_keep: Tensor  # (K_v,) ascending indices into the source clip's video tokens
    audio_keep: Tensor  # (K_a,) ascending indices into the source clip's audio tokens
    video_scores: Tensor  # (N_v,) float32, the score each source video token was ranked by
    video_temporal: Tensor  # (N_v,) bool, True where that score is change against the previous frame
    audio_scores: Tensor  # (N_a,) float32

    @property
    def source_counts(self) -> tuple[int, int]:
        return len(self.video_scores), len(self.audio_scores)

    @property
    def kept_counts(self) -> tuple[int, int]:
        return len(self.video_keep), len(self.audio_keep)


class TokenCompressor(ABC):
    """Maps full clips to what they keep; OmniSIFT and every baseline share this interface."""

    name: str
    uses_audio_saliency = False  # whether clips should carry the backbone's `audio_saliency`

    def __init__(self, ratios: RemovalRatios, hidden_size: int | None = None):
        self.ratios = ratios
        self.hidden_size = hidden_size

    @property
    def fingerprint(self) -> str:
        """Identifies the method and its settings; tokens compressed differently must not be mixed."""
        return f"{self.name}:v={self.ratios.video:g}:a={self.ratios.audio:g}"

    def compress(self, clip: ClipTokens) -> Compression:
        return self.compress_batch([clip])[0]

    def compress_batch(self, clips: Sequence[ClipTokens]) -> list[Compression]:
        for clip in clips:
            self._validate(clip)
        return self._compress_batch(clips)

    def _compress_batch(self, clips: Sequence[ClipTokens]) -> list[Compression]:
        return [self._compress(clip) for clip in clips]

    @abstractmethod
    def _compress(self, clip: ClipTokens) -> Compression: ...

    def _validate(self, clip: ClipTokens) -> None:
        if not clip.is_full:
            raise InvalidTokens("compressors take full clips; this clip is already compressed")
        if self.hidden_size is not None and clip.hidden_size != self.hidden_size:
            raise InvalidTokens(f"hidden size {clip.hidden_size} does not match the compressor's {self.hidden_size}")
        for name, stream in (("video", clip.video), ("audio", clip.audio)):
            if not _all_finite(stream.embeddings):
                raise InvalidTokens(f"{name} embeddings contain NaN or inf")


def _all_finite(x: Tensor) -> bool:
    """Exact finiteness check; the fp32 sum is a cheap first pass (NaN and inf propagate through it)."""
    return bool(torch.isfinite(x.float().sum())) or bool(torch.isfinite(x).all())


def assemble(
    clip: ClipTokens, video: VideoSelection, audio: AudioSelection, kept_audio: Tensor | None = None
) -> Compression:
    """The Compression of `clip` for the given selections.

    Kept audio goes through the straight-through mask unless a merging method passes its own values.
    """
    if kept_audio is None:
        kept_audio = gather_kept(clip.audio.embeddings, audio.mask, audio.keep)
    return Compression(
        kept=clip.select(video.keep, audio.keep, kept_audio),
        video_keep=video.keep,
        audio_keep=audio.keep,
        video_scores=video.scores,
        video_temporal=video.temporal,
        audio_scores=audio.scores,
    )


class OmniSiftCompressor(TokenCompressor):
    """STVP on every chunk's frames, then VGAS on every chunk's audio against the kept video.

    With `selector` None the audio is scored training-free (see `vgas.training_free_scores`); with
    `novelty`, still chunks keep fewer video tokens (see `config.NoveltyBudget`); with `monitoring`, tokens
    follow the clip's measured change and sound (see `monitoring`). Clips in a batch share one selector call.
    """

    name = "omnisift"

    def __init__(
        self,
        ratios: RemovalRatios,
        hidden_size: int | None = None,
        selector: VisionGuidedAudioSelector | None = None,
        novelty: NoveltyBudget | None = None,
        monitoring: MonitoringBudget | None = None,
    ):
        super().__init__(ratios, hidden_size)
        if selector is not None and hidden_size is not None and selector.hidden_size != hidden_size:
            raise InvalidTokens(f"selector hidden size {selector.hidden_size} != {hidden_size}")
        if novelty is not None and monitoring is not None:
            raise InvalidConfig("choose one video budget: novelty or monitoring")
        self.selector = selector
        self.novelty = novelty
        self.monitoring = monitoring

    @cached_property
    def fingerprint(self) -> str:
        """Hashes the selector's weights once, on first use: a serving selector is frozen."""
        budget = "".join(f":{b.fingerprint}" for b in (self.novelty, self.monitoring) if b is not None)
        if self.selector is None:
            return f"{super().fingerprint}{budget}:training-free"
        digest = hashlib.sha256()
        for name, tensor in sorted(self.selector.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return f"{super().fingerprint}{budget}:selector-{digest.hexdigest()[:12]}"

    def _compress_batch(self, clips: Sequence[ClipTokens]) -> list[Compression]:
        scorer = self.selector if self.selector is not None else training_free_scores
        if self.monitoring is not None:
            videos = [change_first_video(clip, self.ratios.video, self.monitoring) for clip in clips]
            audios = salience_first_audio(clips, videos, self.ratios, self.monitoring, scorer)
        else:
            videos = [prune_video(clip, self.ratios.video, self.novelty) for clip in clips]
            audios = select_audio(clips, [v.keep for v in videos], self.ratios.audio, scorer)
        return [assemble(c, v, a) for c, v, a in zip(clips, videos, audios, strict=True)]

    def _compress(self, clip: ClipTokens) -> Compression:
        return self._compress_batch([clip])[0]
