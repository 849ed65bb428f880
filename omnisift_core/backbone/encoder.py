"""The encoder half: Qwen2.5-Omni's vision tower (with merger) and audio tower. Media in, ClipTokens out.

It holds no language model, so the encoder service loads only what it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import Qwen2_5OmniThinkerConfig
from transformers.initialization import no_init_weights
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder, Qwen2_5OmniVisionEncoder

from omnisift_core.backbone.checkpoint import Checkpoint, default_device, default_dtype, load_module_weights
from omnisift_core.media import (
    FrameLimits,
    MelFeatures,
    VideoPatches,
    audio_token_count,
    patch_video,
    seconds_per_frame,
)
from omnisift_core.tokens import ClipTokens, VideoGrid, build_clip_tokens

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
    def encode_batch(self, clips: Sequence[ClipMedia]) -> list[ClipTokens]:
        """Clips of any sizes in one vision pass and one audio pass (the towers separate them internally)."""
        patches = [patch_video(clip.frames, self.limits) for clip in clips]
        features = [self.mel(clip.waveform) for clip in clips]
        video = self._encode_video(patches)
        audio = self._encode_audio(features)
        return [
            build_clip_tokens(v, VideoGrid(*p.merged_grid), a, seconds_per_frame(clip.fps))
            for clip, p, v, a in zip(clips, patches, video, audio, strict=True)
        ]

    def _encode_video(self, patches: Sequence[VideoPatches]) -> list[torch.Tensor]:
        pixels = torch.cat([p.pixel_values for p in patches]).to(self.device, self.dtype)
        grid = torch.tensor([p.grid_thw for p in patches], device=self.device)
        merged = self.visual(pixels, grid_thw=grid).pooler_output  # (sum of merged tokens, D)
        return list(torch.split(merged, [int(np.prod(p.merged_grid)) for p in patches]))

    def _encode_audio(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        lengths = torch.tensor([f.shape[1] for f in features], device=self.device)
        mel = torch.cat(list(features), dim=1).to(self.device, self.dtype)  # (128, total frames)
        after_conv = (lengths - 1) // 2 + 1
        tokens = self.audio_tower(mel, feature_lens=lengths, aftercnn_lens=after_conv).last_hidden_state
        return list(torch.split(tokens, [audio_token_count(int(n)) for n in lengths]))


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
