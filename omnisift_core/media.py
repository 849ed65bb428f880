"""Media to model inputs without torchvision: RGB frames -> Qwen vision patches, 16 kHz audio -> log-mel features.

The video math follows Qwen2-VL's video processor: resize each frame to multiples of 28 px within pixel
limits (`smart_resize`), bicubic with antialias, rescale to [0, 1], CLIP mean/std, pad to an even frame
count by repeating the last frame, then cut 2 x 14 x 14 patches grouped by 2 x 2 merge windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import WhisperFeatureExtractor

from omnisift_core.config import FrameLimits
from omnisift_core.errors import InvalidConfig, InvalidTokens

PATCH_SIZE = 14
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
FACTOR = PATCH_SIZE * MERGE_SIZE  # 28 px: one merged token
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SAMPLE_RATE = 16_000
MAX_AUDIO_SECONDS = 30  # the Whisper feature extractor's window; clips are at most this long


@dataclass(frozen=True)
class VideoPatches:
    pixel_values: Tensor  # (grid_t * grid_h * grid_w, 3 * 2 * 14 * 14) float32
    grid_thw: tuple[int, int, int]  # in 14-px patches (grid_h, grid_w even)

    @property
    def merged_grid(self) -> tuple[int, int, int]:
        t, h, w = self.grid_thw
        return t, h // MERGE_SIZE, w // MERGE_SIZE


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = FACTOR) -> tuple[int, int]:
    """Target (height, width): multiples of `factor`, pixel count within limits, aspect ratio kept."""
    if min(height, width) <= 0:
        raise InvalidTokens(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise InvalidTokens(f"frame aspect ratio must be below 200, got {height}x{width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_frames(frames: np.ndarray | Tensor, limits: FrameLimits) -> Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, h, w) float32 in [0, 255] at the smart_resize target size."""
    video = torch.as_tensor(frames)
    if video.dim() != 4 or video.shape[-1] != 3 or video.dtype != torch.uint8 or video.shape[0] == 0:
        raise InvalidTokens(
            f"frames must be a non-empty (N, H, W, 3) uint8 array, got {tuple(video.shape)} {video.dtype}"
        )
    height, width = video.shape[1:3]
    target = smart_resize(height, width, limits.min_pixels, limits.max_pixels)
    x = video.permute(0, 3, 1, 2).float()
    if target != (height, width):
        x = F.interpolate(x, size=target, mode="bicubic", align_corners=False, antialias=True)
        x = x.round().clamp(0, 255)  # the processor resizes uint8 frames
    return x


def patch_video(frames: np.ndarray | Tensor, limits: FrameLimits) -> VideoPatches:
    """(N, H, W, 3) uint8 RGB frames -> Qwen vision patches."""
    x = resize_frames(frames, limits)  # (N, 3, h, w)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (x / 255.0 - mean) / std
    if pad := -x.shape[0] % TEMPORAL_PATCH_SIZE:
        x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)])
    return VideoPatches(*_patchify(x))


def _patchify(x: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
    """(N, C, H, W) normalised frames, N even -> (grid_t*grid_h*grid_w, C*2*14*14), grid (t, h, w)."""
    n, c, h, w = x.shape
    grid_t, grid_h, grid_w = n // TEMPORAL_PATCH_SIZE, h // PATCH_SIZE, w // PATCH_SIZE
    m, p = MERGE_SIZE, PATCH_SIZE
    patches = x.reshape(grid_t, TEMPORAL_PATCH_SIZE, c, grid_h // m, m, p, grid_w // m, m, p)
    # -> (t, gh/m, gw/m, m, m, C, temporal, p, p): merge windows contiguous, raster order within a frame
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(grid_t * grid_h * grid_w, c * TEMPORAL_PATCH_SIZE * p * p), (grid_t, grid_h, grid_w)


class MelFeatures:
    """16 kHz mono waveform -> 128-bin log-mel features, as Qwen2.5-Omni's processor computes them."""

    @cached_property
    def extractor(self) -> WhisperFeatureExtractor:
        return WhisperFeatureExtractor(feature_size=128, sampling_rate=SAMPLE_RATE, hop_length=160, n_fft=400)

    def __call__(self, waveform: np.ndarray | Tensor) -> Tensor:
        """(S,) float waveform, at most 30 s -> (128, frames) features, 100 frames a second."""
        audio = np.asarray(waveform, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise InvalidTokens(f"waveform must be a non-empty 1-D array, got shape {audio.shape}")
        if audio.size > MAX_AUDIO_SECONDS * SAMPLE_RATE:
            raise InvalidTokens(
                f"waveform is {audio.size / SAMPLE_RATE:.1f} s; clips are at most {MAX_AUDIO_SECONDS} s"
            )
        if not np.isfinite(audio).all():
            raise InvalidTokens("waveform contains NaN or inf")
        out = self.extractor(
            audio,
            sampling_rate=SAMPLE_RATE,
            padding="max_length",
            return_attention_mask=True,
            return_tensors="pt",
        )
        valid = int(out["attention_mask"].sum())
        return out["input_features"][0, :, :valid]


def seconds_per_frame(fps: float) -> float:
    """Seconds one temporal patch (one LLM frame) covers at `fps` sampled frames a second."""
    if fps <= 0:
        raise InvalidConfig(f"fps must be positive, got {fps}")
    return TEMPORAL_PATCH_SIZE / fps


def audio_token_count(feature_frames: int) -> int:
    """Audio tokens the encoder emits for `feature_frames` mel frames (25 per second)."""
    after_conv = (feature_frames - 1) // 2 + 1
    return (after_conv - 2) // 2 + 1
