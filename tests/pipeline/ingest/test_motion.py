"""Pixel change per token cell: what moved counts; what a still camera's picture does on its own does not."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from pipeline.activity import MotionConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.motion import block_means, cell_change
from pipeline.ingest.sample_media import write_sample_video
from pipeline.ingest.sources import ClipSource, SourceSpec

ROWS, COLS, CELL = 6, 8, 28  # a 168 x 224 frame on a 6 x 8 token grid


def scene(frames: int = 8, grain: float = 3.0, seed: int = 0) -> np.ndarray:
    """A textured still background with per-frame sensor noise: (frames, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    background = rng.uniform(40, 200, (ROWS * CELL // 4, COLS * CELL // 4, 3)).repeat(4, 0).repeat(4, 1)
    noise = rng.normal(0, grain, (frames, *background.shape))
    return np.clip(background + noise, 0, 255).astype(np.uint8)


def changed(frames: np.ndarray, lead_in: np.ndarray | None = None) -> np.ndarray:
    return cell_change(frames, lead_in, ROWS, COLS, frames_per_token=2) >= 1.0


def test_a_still_noisy_scene_has_no_change_and_the_first_frame_has_nothing_to_compare():
    change = cell_change(scene(grain=6.0), None, ROWS, COLS, frames_per_token=2)
    assert change.shape == (4, ROWS, COLS)
    assert np.isnan(change[0]).all()
    assert not (change[1:] >= 1.0).any()


def test_an_object_entering_changes_exactly_its_cells():
    frames = scene()
    frames[4:, 30:60, 60:100] = (200, 40, 40)  # rows 1-2, cols 2-3, from token frame 2 on
    found = changed(frames)
    expected = np.zeros((ROWS, COLS), bool)
    expected[1:3, 2:4] = True
    assert (found[2] == expected).all()
    assert not found[1].any() and not found[3].any()  # it then stands still


def test_a_colour_change_of_equal_brightness_is_change():
    frames = np.full((4, ROWS * CELL, COLS * CELL, 3), 100, np.uint8)
    frames[2:, :28, :28] = (150, 75, 100)  # same luma as grey 100, different colour
    assert changed(frames)[1, 0, 0] and changed(frames)[1].sum() == 1


def test_slow_lighting_drift_is_not_change_but_a_light_switched_on_is():
    frames = scene(frames=8).astype(np.float32)
    drifted = np.clip(frames + np.arange(8)[:, None, None, None] * 1.0, 0, 255).astype(np.uint8)  # +2 levels/token
    assert not changed(drifted)[1:].any()
    flash = scene(frames=8)
    flash[6:] = np.clip(flash[6:].astype(int) + 60, 0, 255)
    assert changed(flash)[3].all()


def test_the_lead_in_frame_carries_change_across_the_clip_boundary():
    frames = scene()
    before = frames[0].copy()
    assert not changed(frames, before)[0].any()  # same view as the previous clip's last frame
    moved = before.copy()
    moved[:28, :28] = 0  # something was at the top-left corner at the end of the previous clip
    found = changed(frames, moved)
    assert found[0, 0, 0] and found[0].sum() == 1


def test_block_means_average_areas_and_handle_frames_smaller_than_the_grid():
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    frames[0, :4, :4] = 80
    assert block_means(frames, 2, 2)[0, :, :, 0].tolist() == [[80, 0], [0, 0]]
    tiny = np.full((1, 3, 5, 3), 9, np.uint8)
    assert block_means(tiny, 12, 16).shape == (1, 12, 16, 3) and (block_means(tiny, 12, 16) == 9).all()


def test_a_threshold_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="invalid motion config"):
        MotionConfig(min_levels=10, max_levels=5)


def test_an_h264_file_with_a_still_view_noise_and_sparse_keyframes_shows_no_change(tmp_path):
    """Real encoding: keyframes every 10 s re-quantise the whole picture; grain flickers every pixel."""
    media = write_sample_video(tmp_path / "still.mp4", duration=20.0, events=(), grain=4.0, gop_seconds=10.0)
    spec = SourceSpec("still", str(media.path), start_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    shares = []
    with ClipSource(spec, MediaPolicy(media_roots=(tmp_path,))).start() as source:
        windows = [w for w in source if isinstance(w, ClipWindow)]
    for window in windows:
        change = cell_change(window.frames_on_grid(), window.lead_in, 13, 23, frames_per_token=2)
        shares.append(float(np.nanmean(change >= 1.0)))
    assert len(windows) == 2 and windows[1].lead_in is not None  # the second clip compares with the first
    assert max(shares) < 0.005
