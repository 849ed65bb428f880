"""The monitoring budget: changed cells first, salient sound kept whatever the anchors say, within the preset."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from omnisift_core.baselines import build_compressor
from omnisift_core.budget import kept_count
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS, MonitoringBudget, NoveltyBudget
from omnisift_core.errors import InvalidConfig, InvalidTokens
from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import MediaEvidence, build_clip_tokens

GRID = VideoGrid(frames=4, rows=6, cols=10)  # 60 cells a frame, 2 chunks of 2 frames
RATIOS = PRESETS["25%"]
PER_FRAME = kept_count(GRID.tokens_per_frame, RATIOS.video)  # 14 of 60
COMPRESSOR = OmniSiftCompressor(RATIOS, monitoring=MonitoringBudget())


def clip(change: torch.Tensor, salience: torch.Tensor, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(GRID.num_tokens, 16, generator=generator)
    audio = torch.randn(100, 16, generator=generator)  # 4 seconds, 2 chunks of 50
    return replace(build_clip_tokens(video, GRID, audio), evidence=MediaEvidence(change.flatten(), salience))


def still(first: float = 0.0) -> torch.Tensor:
    change = torch.zeros(GRID.frames, GRID.tokens_per_frame)
    change[0] = first
    return change


def test_changed_cells_are_kept_first_and_a_still_frame_keeps_little():
    change = still()
    change[2, [3, 17, 42]] = torch.tensor([1.5, 4.0, 1.0])  # three changed cells in frame 2
    change[2, 5] = 0.99  # just under the threshold: not change
    result = COMPRESSOR.compress(clip(change, torch.zeros(100)))
    frames = result.video_keep // GRID.tokens_per_frame
    still_count = -(-PER_FRAME * MonitoringBudget().still_keep // 1)  # ceil(14 * 0.05) = 1
    assert torch.bincount(frames, minlength=4).tolist() == [still_count, still_count, 3, still_count]
    assert (result.video_keep[frames == 2] % GRID.tokens_per_frame).tolist() == [3, 17, 42]
    assert result.video_temporal.view(4, 60)[2, [3, 17, 42]].all()


def test_a_busy_frame_keeps_the_presets_count_most_changed_first():
    change = still()
    change[1] = torch.linspace(1.0, 3.0, 60)  # every cell changed
    result = COMPRESSOR.compress(clip(change, torch.zeros(100)))
    kept = result.video_keep[result.video_keep // 60 == 1] % 60
    assert kept.tolist() == list(range(60 - PER_FRAME, 60))  # the 14 most changed


def test_a_frame_with_nothing_before_it_keeps_the_full_count():
    result = COMPRESSOR.compress(clip(still(first=float("nan")), torch.zeros(100)))
    frames = result.video_keep // GRID.tokens_per_frame
    assert torch.bincount(frames, minlength=4).tolist() == [PER_FRAME, 1, 1, 1]


def test_salient_sound_is_kept_whatever_the_anchors_say_and_quiet_chunks_keep_a_floor():
    salience = torch.zeros(100)
    salience[60:90] = 0.8  # 1.2 s of sound in the second chunk, off screen (no changed cell)
    result = COMPRESSOR.compress(clip(still(), salience))
    kept = set(result.audio_keep.tolist())
    assert set(range(60, 90)) <= kept  # all of it, though VGAS alone keeps half a chunk
    floor = -(-kept_count(50, RATIOS.audio) * MonitoringBudget().quiet_audio_keep // 1)  # ceil(25 * 0.05) = 2
    assert len([i for i in kept if i < 50]) == floor  # the quiet chunk: its floor only
    assert len(kept - set(range(60, 90))) <= 2 * floor  # beyond the sound: the two chunks' floors at most


def test_sound_longer_than_the_audio_count_borrows_what_the_video_left_unspent():
    salience = torch.linspace(0.3, 0.9, 100)  # four seconds of salient sound: more than the 50 audio tokens
    result = COMPRESSOR.compress(clip(still(), salience))
    video, audio = result.kept_counts
    assert audio == 100  # the still frames left 52 video tokens unspent: all of the sound fits
    preset_total = GRID.frames * PER_FRAME + 2 * kept_count(50, RATIOS.audio)
    assert video + audio <= preset_total


def test_when_the_clip_is_over_budget_the_most_salient_sound_wins():
    change = still()
    change[:, :PER_FRAME] = 2.0  # every frame spends its full video count: nothing to borrow
    salience = torch.linspace(0.21, 0.9, 100)
    result = COMPRESSOR.compress(clip(change, salience))
    assert result.kept_counts[1] == 2 * kept_count(50, RATIOS.audio)  # the clip's audio count
    kept = result.audio_keep.tolist()
    assert len([i for i in kept if i < 50]) == 2  # the first chunk's floor (by VGAS) ...
    assert set(range(54, 100)) <= set(kept)  # ... and the loudest of the rest


def test_the_monitoring_budget_needs_evidence_and_excludes_the_novelty_budget():
    plain = build_clip_tokens(torch.randn(GRID.num_tokens, 16), GRID, torch.randn(100, 16))
    with pytest.raises(InvalidTokens, match="media evidence"):
        COMPRESSOR.compress(plain)
    with pytest.raises(InvalidConfig, match="one video budget"):
        OmniSiftCompressor(RATIOS, novelty=NoveltyBudget(), monitoring=MonitoringBudget())
    with pytest.raises(InvalidConfig, match="OmniSIFT options"):
        build_compressor("dycoke", RATIOS, monitoring=MonitoringBudget())
    with pytest.raises(InvalidTokens, match="evidence must cover"):
        replace(plain, evidence=MediaEvidence(torch.zeros(3), torch.zeros(100)))


def test_the_fingerprint_names_the_budget_and_the_paper_mode_ignores_evidence():
    assert "monitoring(k=0.05,q=0.05,s=0.2)" in COMPRESSOR.fingerprint
    assert COMPRESSOR.fingerprint != OmniSiftCompressor(RATIOS).fingerprint
    salience = torch.ones(100)
    with_evidence = clip(still(), salience)
    paper = OmniSiftCompressor(RATIOS)
    a, b = paper.compress(with_evidence), paper.compress(replace(with_evidence, evidence=None))
    assert torch.equal(a.video_keep, b.video_keep) and torch.equal(a.audio_keep, b.audio_keep)
