"""The encoder half: Qwen2.5-Omni's vision tower (with merger) and audio tower. Media in, ClipTokens out.

It holds no language model, so the encoder service loads only what it runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from transformers import Qwen2_5OmniThinkerConfig
from transformers.initialization import no_init_weights
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import (
    Qwen2_5OmniAudioEncoder,
    Qwen2_5OmniVisionEncoder,
    get_pool_indices,
)

from omnisift_core.backbone.checkpoint import Checkpoint, default_device, default_dtype, load_module_weights
from omnisift_core.layout import VideoGrid
from omnisift_core.media import (
    FrameLimits,
    MelFeatures,
    VideoPatches,
    audio_token_count,
    patch_video,
    seconds_per_frame,
)
from omnisift_core.tokens import ClipTokens, build_clip_tokens

_PREFIXES = ("model.visual.", "model.audio_tower.")


@dataclass(frozen=True)
class ClipMedia:
    """One clip's decoded media: frames sampled at `fps` and the 16 kHz mono waveform of the same span."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    waveform: np.ndarray  # (S,) float32, 16 kHz
    fps: float = 2.0


class OmniEncoder(nn.Module):
    def __init__(self, config: Qwen2_5OmniThinkerConfig, limits: FrameLimits | None = None):
        super().__init__()
        self.visual = Qwen2_5OmniVisionEncoder._from_config(config.vision_config)
        self.audio_tower = Qwen2_5OmniAudioEncoder._from_config(config.audio_config)
        self.hidden_size = config.text_config.hidden_size
        self.limits = limits or FrameLimits()
        self.mel = MelFeatures()

    @property
    def device(self) -> torch.device:
        return self.audio_tower.conv1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.audio_tower.conv1.weight.dtype

    def encode(self, frames: np.ndarray, waveform: np.ndarray, fps: float = 2.0) -> ClipTokens:
        return self.encode_batch([ClipMedia(frames, waveform, fps)])[0]

    @torch.inference_mode()
    def encode_batch(self, clips: Sequence[ClipMedia], audio_saliency: bool = False) -> list[ClipTokens]:
        """Clips of any sizes in one vision pass and one audio pass (the towers separate them internally).

        With `audio_saliency`, each clip also carries the attention its audio tokens receive in the audio
        tower's last layer: the saliency OmniZip ranks audio by. It is recorded by a hook on the shared
        tower, so calls asking for it must not overlap (the encoder service runs one batch at a time).
        """
        patches = [patch_video(clip.frames, self.limits) for clip in clips]
        features = [self.mel(clip.waveform) for clip in clips]
        video = self._encode_video(patches)
        audio, saliency = self._encode_audio(features, audio_saliency)
        tokens = [
            build_clip_tokens(v, VideoGrid(*p.merged_grid), a, seconds_per_frame(clip.fps))
            for clip, p, v, a in zip(clips, patches, video, audio, strict=True)
        ]
        if saliency is None:
            return tokens
        return [replace(t, audio_saliency=s) for t, s in zip(tokens, saliency, strict=True)]

    def _encode_video(self, patches: Sequence[VideoPatches]) -> list[torch.Tensor]:
        pixels = torch.cat([p.pixel_values for p in patches]).to(self.device, self.dtype)
        grid = torch.tensor([p.grid_thw for p in patches], device=self.device)
        merged = self.visual(pixels, grid_thw=grid).pooler_output  # (sum of merged tokens, D)
        return list(torch.split(merged, [int(np.prod(p.merged_grid)) for p in patches]))

    def _encode_audio(
        self, features: Sequence[torch.Tensor], with_saliency: bool
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Audio tokens per clip, and with `with_saliency` the attention each token receives."""
        lengths = torch.tensor([f.shape[1] for f in features], device=self.device)
        mel = torch.cat(list(features), dim=1).to(self.device, self.dtype)  # (128, total frames)
        after_conv = (lengths - 1) // 2 + 1
        recorder = _ReceivedAttention() if with_saliency else None
        hook = None
        if recorder is not None:
            hook = self.audio_tower.layers[-1].self_attn.register_forward_pre_hook(recorder, with_kwargs=True)
        try:
            tokens = self.audio_tower(mel, feature_lens=lengths, aftercnn_lens=after_conv).last_hidden_state
        finally:
            if hook is not None:
                hook.remove()
        counts = [audio_token_count(int(n)) for n in lengths]
        if recorder is None:
            return list(torch.split(tokens, counts)), None
        pool = get_pool_indices(lengths)  # the tower averages frame pairs into tokens; so does the saliency
        received = (recorder.received[pool] + recorder.received[pool + 1]) / 2
        return list(torch.split(tokens, counts)), list(torch.split(received, counts))


class _ReceivedAttention:
    """Forward pre-hook on the audio tower's last attention: how much attention each frame receives there,
    summed over the queries of its window and averaged over heads (OmniZip's audio saliency)."""

    def __init__(self) -> None:
        self.received: torch.Tensor | None = None

    def __call__(self, attention: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]  # (L, d), layer-normed
        bounds = kwargs["cu_seqlens"].tolist()
        length = hidden.shape[0]
        q = attention.q_proj(hidden).view(length, attention.num_heads, -1).transpose(0, 1).float()  # (H, L, d_h)
        k = attention.k_proj(hidden).view(length, attention.num_heads, -1).transpose(0, 1).float()
        received = torch.empty(length, device=hidden.device)
        for start, end in itertools.pairwise(bounds):
            weights = (q[:, start:end] @ k[:, start:end].transpose(1, 2) * attention.scaling).softmax(-1)
            received[start:end] = weights.sum(1).mean(0)  # (n,): column sums, head mean
        self.received = received


def load_encoder(
    checkpoint: Checkpoint, device: torch.device | None = None, limits: FrameLimits | None = None
) -> OmniEncoder:
    """The encoder half of `checkpoint` on `device` (CUDA when present), bf16 on GPU and fp32 on CPU."""
    device = device or default_device()
    with no_init_weights():
        encoder = OmniEncoder(checkpoint.config, limits)
    load_module_weights(encoder, _strip(checkpoint.weights(_PREFIXES)), "encoder (vision and audio towers)")
    return encoder.to(device=device, dtype=default_dtype(device)).eval()


def _strip(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key.removeprefix("model."): value for key, value in weights.items()}
