"""Baselines behind the compressor interface: budgets, determinism and what each method favours."""

from __future__ import annotations

import pytest
import torch

from omnisift_core.baselines import DyCokeTemporalMerge, FullTokens, OmniZip, RandomDrop, build_compressor
from omnisift_core.config import PRESETS
from omnisift_core.errors import InvalidConfig
from omnisift_core.tokens import ClipTokens
from tests.fixtures.synthetic_tokens import moving_block_clip, random_clip

METHODS = ["omnisift", "omnizip", "dycoke", "random", "full"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_sorted_kept_tokens_with_original_positions(method):
    clip = random_clip(frames=7, audio=170)
    result = build_compressor(method, PRESETS["35%"]).compress(clip)
    assert torch.equal(result.video_keep, torch.unique(result.video_keep))
    assert torch.equal(result.audio_keep, torch.unique(result.audio_keep))
    assert torch.equal(result.kept.video.positions, clip.video.positions[:, result.video_keep])
    assert torch.equal(result.kept.audio.positions, clip.audio.positions[:, result.audio_keep])
    assert result.source_counts == (len(clip.video), len(clip.audio))
    assert result.video_scores.shape == (len(clip.video),) and result.audio_scores.shape == (len(clip.audio),)


@pytest.mark.parametrize("preset", ["35%", "25%"])
@pytest.mark.parametrize("method", ["dycoke", "random"])
def test_budgeted_baselines_keep_exactly_the_omnisift_counts(method, preset):
    clip = random_clip(frames=9, audio=220)
    reference = build_compressor("omnisift", PRESETS[preset]).compress(clip)
    result = build_compressor(method, PRESETS[preset]).compress(clip)
    per_frame = clip.grid.tokens_per_frame
    assert torch.equal(
        torch.bincount(result.video_keep // per_frame, minlength=9),
        torch.bincount(reference.video_keep // per_frame, minlength=9),
    )
    assert torch.equal(torch.bincount(result.kept.audio.chunks), torch.bincount(reference.kept.audio.chunks))


@pytest.mark.parametrize("preset", ["35%", "25%"])
def test_omnizip_meets_the_global_budget(preset):
    clip = random_clip(frames=10, rows=16, cols=20, audio=250)
    reference = build_compressor("omnisift", PRESETS[preset]).compress(clip)
    result = OmniZip(PRESETS[preset]).compress(clip)
    assert len(result.audio_keep) == len(reference.audio_keep)
    # per-frame rounding may move each frame by one token
    assert abs(len(result.video_keep) - len(reference.video_keep)) <= clip.grid.frames


def test_full_keeps_everything():
    clip = random_clip()
    result = FullTokens().compress(clip)
    assert result.kept_counts == result.source_counts
    assert torch.equal(result.kept.video.embeddings, clip.video.embeddings)


def test_random_is_seeded():
    clip = random_clip()
    first, again, other = (RandomDrop(PRESETS["25%"], seed=s).compress(clip) for s in (7, 7, 8))
    assert torch.equal(first.video_keep, again.video_keep) and torch.equal(first.audio_keep, again.audio_keep)
    assert not torch.equal(first.video_keep, other.video_keep)


def test_dycoke_keeps_the_cells_that_changed_against_each_frames_reference():
    aligned = moving_block_clip(frames=8, rows=8, cols=10, block=2)
    result = DyCokeTemporalMerge(PRESETS["25%"]).compress(aligned.clip)
    kept = torch.zeros(len(aligned.clip.video), dtype=torch.bool)
    kept[result.video_keep] = True
    kept = kept.view(8, 80)
    video = aligned.clip.frames()
    for frame, reference in ((1, 0), (2, 0), (3, 2), (5, 4), (6, 4), (7, 6)):
        changed = (video[frame] != video[reference]).any(-1)
        assert kept[frame][changed].all(), f"frame {frame} dropped a cell that differs from frame {reference}"
    assert result.video_temporal.view(8, 80).all(-1).tolist() == [False, True, True, True] * 2


def test_omnizip_keeps_the_most_salient_audio_given_by_the_backbone():
    clip = random_clip(frames=4, audio=100)
    saliency = torch.zeros(100)
    loud = torch.tensor([3, 17, 42, 43, 77, 98])
    saliency[loud] = 1.0
    clip = ClipTokens(video=clip.video, audio=clip.audio, grid=clip.grid, audio_saliency=saliency)
    result = OmniZip(PRESETS["25%"]).compress(clip)
    assert torch.isin(loud, result.audio_keep).all()


def test_omnizip_merges_dropped_audio_into_anchors():
    clip = random_clip(frames=4, audio=100)
    result = OmniZip(PRESETS["25%"]).compress(clip)
    kept_values = result.kept.audio.embeddings
    original = clip.audio.embeddings[result.audio_keep]
    changed = ~(kept_values == original).all(-1)
    # 5 anchors (5% of 100) absorb the dropped tokens; the salient tokens are untouched
    assert 1 <= int(changed.sum()) <= 5
    assert torch.equal(kept_values[~changed], original[~changed])


def test_omnizip_keeps_more_video_in_windows_whose_audio_is_kept():
    clip = random_clip(frames=4, rows=8, cols=10, audio=100)
    saliency = torch.zeros(100)
    saliency[:50] = 1.0  # window 0's audio is salient, window 1's is not
    clip = ClipTokens(video=clip.video, audio=clip.audio, grid=clip.grid, audio_saliency=saliency)
    result = OmniZip(PRESETS["35%"]).compress(clip)
    per_frame = torch.bincount(result.video_keep // 80, minlength=4)
    assert per_frame[0] == per_frame[1] and per_frame[2] == per_frame[3]
    assert per_frame[0] > per_frame[2]  # drop ratio 0.75 - 0.40 * share of audio kept


def test_unknown_method_is_refused():
    with pytest.raises(InvalidConfig, match="unknown compression method 'fastv'"):
        build_compressor("fastv", PRESETS["35%"])
