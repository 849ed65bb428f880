"""Frames -> patches and waveform -> mel features match Qwen's processor math (no torchvision)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as qwen_smart_resize

from omnisift_core.config import FrameLimits
from omnisift_core.errors import InvalidConfig, InvalidTokens
from omnisift_core.media import (
    CLIP_MEAN,
    CLIP_STD,
    MelFeatures,
    audio_token_count,
    patch_video,
    resize_frames,
    smart_resize,
)

PAPER = FrameLimits()  # 128*28*28 .. 320*28*28
SMALL = FrameLimits(min_pixels=4 * 28 * 28, max_pixels=64 * 28 * 28)


@pytest.mark.parametrize("limits", [PAPER, SMALL])
@pytest.mark.parametrize(
    "size", [(17, 23), (37, 501), (241, 319), (240, 320), (252, 448), (719, 1281), (1080, 1920), (2160, 3840), (5, 900)]
)
def test_target_size_equals_qwens_smart_resize(size, limits):
    ours = smart_resize(*size, limits.min_pixels, limits.max_pixels)
    assert ours == qwen_smart_resize(*size, factor=28, min_pixels=limits.min_pixels, max_pixels=limits.max_pixels)
    assert ours[0] % 28 == 0 and ours[1] % 28 == 0
    assert limits.min_pixels <= ours[0] * ours[1] <= limits.max_pixels


@pytest.mark.parametrize(("frames", "size"), [(1, (149, 211)), (7, (241, 319)), (20, (252, 448))])
def test_patch_grid_for_odd_sizes_and_frame_counts(frames, size):
    video = np.zeros((frames, *size, 3), dtype=np.uint8)
    patches = patch_video(video, PAPER)
    height, width = smart_resize(*size, PAPER.min_pixels, PAPER.max_pixels)
    grid = ((frames + 1) // 2, height // 14, width // 14)
    assert patches.grid_thw == grid
    assert patches.pixel_values.shape == (grid[0] * grid[1] * grid[2], 3 * 2 * 14 * 14)
    assert patches.merged_grid == (grid[0], grid[1] // 2, grid[2] // 2)


def test_single_frame_pixel_values_equal_qwens_image_processor():
    frame = np.random.default_rng(0).integers(0, 256, size=(140, 196, 3), dtype=np.uint8)  # 5 x 7 merged cells
    processor = Qwen2VLImageProcessorPil(do_resize=False)
    expected = processor(images=[frame], return_tensors="pt")
    ours = patch_video(frame[None], SMALL)  # one frame, repeated to fill the temporal patch
    assert list(expected["image_grid_thw"][0]) == list(ours.grid_thw)
    assert torch.allclose(ours.pixel_values, expected["pixel_values"].float(), atol=1e-5, rtol=0)


def reference_video_patches(frames: np.ndarray) -> torch.Tensor:
    """Qwen2-VL's video processor patchify, as written there: batch dim, view, permute, reshape."""
    x = torch.tensor(frames).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    videos = x[None]  # (batch, frames, channel, height, width)
    batch, num_frames, channel, height, width = videos.shape
    grid_t, grid_h, grid_w = num_frames // 2, height // 14, width // 14
    patches = videos.view(batch, grid_t, 2, channel, grid_h // 2, 2, 14, grid_w // 2, 2, 14)
    patches = patches.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return patches.reshape(batch, grid_t * grid_h * grid_w, channel * 2 * 14 * 14)[0]


def test_video_pixel_values_equal_the_video_processor_patch_layout():
    frames = np.random.default_rng(1).integers(0, 256, size=(4, 84, 252, 3), dtype=np.uint8)  # 3 x 9 merged cells
    ours = patch_video(frames, SMALL)
    assert torch.allclose(ours.pixel_values, reference_video_patches(frames), atol=1e-6, rtol=0)


def test_resizing_is_antialiased_bicubic_close_to_pil():
    y, x = np.mgrid[0:241, 0:319]
    frame = np.stack([x * 0.7 + y * 0.2, y * 0.9, 255 - x * 0.5], axis=-1).clip(0, 255).astype(np.uint8)
    for limits in (PAPER, SMALL):  # one upscale, one downscale
        height, width = smart_resize(241, 319, limits.min_pixels, limits.max_pixels)
        pil = np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC), dtype=np.float32)
        ours = resize_frames(frame[None], limits)[0].permute(1, 2, 0).numpy()
        assert ours.shape == pil.shape
        assert np.abs(ours - pil).mean() < 0.5  # grey levels


def test_mel_features_run_at_100_frames_and_25_tokens_a_second():
    waveform = np.sin(np.linspace(0, 4000 * np.pi, 10 * 16_000)).astype(np.float32)
    features = MelFeatures()(waveform)
    assert features.shape == (128, 1000)
    assert audio_token_count(features.shape[1]) == 250
    assert audio_token_count(500) == 125


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (np.zeros(31 * 16_000, dtype=np.float32), "clips are at most 30 s"),
        (np.array([0.0, np.nan], dtype=np.float32), "NaN or inf"),
        (np.zeros(0, dtype=np.float32), "non-empty 1-D"),
        (np.zeros((2, 100), dtype=np.float32), "non-empty 1-D"),
    ],
)
def test_bad_waveforms_are_refused(waveform, message):
    with pytest.raises(InvalidTokens, match=message):
        MelFeatures()(waveform)


@pytest.mark.parametrize(
    "frames",
    [np.zeros((0, 28, 28, 3), np.uint8), np.zeros((2, 28, 28), np.uint8), np.zeros((2, 28, 28, 3), np.float32)],
)
def test_bad_frames_are_refused(frames):
    with pytest.raises(InvalidTokens, match=r"non-empty \(N, H, W, 3\) uint8"):
        patch_video(frames, PAPER)


def test_extreme_aspect_ratio_is_refused():
    with pytest.raises(InvalidTokens, match="aspect ratio"):
        patch_video(np.zeros((1, 2, 500, 3), np.uint8), PAPER)


def test_pixel_limits_are_validated():
    with pytest.raises(InvalidConfig, match="min_pixels <= max_pixels"):
        FrameLimits(min_pixels=100 * 784, max_pixels=10 * 784)
