"""OmniSIFT on tensors: exact budgets, what STVP keeps, what VGAS keeps, gradients and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from omnisift_core.baselines import RandomDrop
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS, RemovalRatios
from omnisift_core.errors import InvalidConfig, InvalidTokens
from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import TokenStream, build_clip_tokens
from omnisift_core.vgas import VisionGuidedAudioSelector, training_free_scores
from tests.fixtures.synthetic_tokens import moving_block_clip, random_clip

# (preset, tokens per frame, expected kept per frame, audio per chunk, expected kept per chunk), worked by hand:
# 320 - int(320*0.67) = 320 - 214 = 106;  50 - int(50*0.4) = 30;  320 - int(320*0.77) = 320 - 246 = 74;  50 - 25 = 25
BUDGETS = [
    ("35%", (16, 20), 106, 50, 30),
    ("25%", (16, 20), 74, 50, 25),
    ("35%", (5, 7), 12, 13, 8),  # 35 - int(23.45) = 12;  13 - int(5.2) = 8
    ("25%", (5, 7), 9, 13, 7),  # 35 - int(26.95) = 9;  13 - int(6.5) = 7
]


@pytest.mark.parametrize(("preset", "cells", "per_frame", "audio_per_chunk", "per_chunk"), BUDGETS)
@pytest.mark.parametrize("frames", [10, 7])  # 7 frames: the last chunk is a one-frame tail
def test_kept_counts_are_exact_per_frame_and_per_chunk(preset, cells, per_frame, audio_per_chunk, per_chunk, frames):
    rows, cols = cells
    num_chunks = math.ceil(frames / 2)
    clip = random_clip(frames, rows, cols, audio=0)
    audio = torch.randn(num_chunks * 50, clip.hidden_size, generator=torch.Generator().manual_seed(frames))
    clip = build_clip_tokens(clip.video.embeddings, clip.grid, audio)
    # keep `audio_per_chunk` tokens in each 2-second chunk (token times stay those of the model)
    in_chunk = torch.arange(len(audio)) % 50 < audio_per_chunk
    clip = clip.select(torch.arange(len(clip.video)), in_chunk.nonzero().flatten())

    result = OmniSiftCompressor(PRESETS[preset]).compress(clip)

    frame_of = result.video_keep // (rows * cols)
    assert torch.bincount(frame_of, minlength=frames).tolist() == [per_frame] * frames
    assert torch.bincount(result.kept.audio.chunks, minlength=num_chunks).tolist() == [per_chunk] * num_chunks


def test_kept_indices_are_sorted_and_keep_original_positions():
    clip = random_clip(frames=9)
    result = OmniSiftCompressor(PRESETS["25%"]).compress(clip)
    for keep, source, kept in (
        (result.video_keep, clip.video, result.kept.video),
        (result.audio_keep, clip.audio, result.kept.audio),
    ):
        assert torch.equal(keep, torch.sort(keep).values)
        assert torch.equal(kept.positions, source.positions[:, keep])
        assert torch.equal(kept.times, source.times[keep])
        assert torch.equal(kept.chunks, source.chunks[keep])
        assert torch.equal(kept.embeddings, source.embeddings[keep])


def test_tail_frame_is_scored_spatially_and_second_frames_temporally():
    result = OmniSiftCompressor(PRESETS["35%"]).compress(random_clip(frames=5, rows=3, cols=4))
    per_frame = result.video_temporal.view(5, 12)
    assert per_frame.all(dim=1).tolist() == [False, True, False, True, False]
    assert (per_frame.any(dim=1) == per_frame.all(dim=1)).all()


def test_chunk_without_audio_keeps_its_video_and_chunk_with_one_audio_token_keeps_it():
    clip = random_clip(frames=6, audio=100)  # chunks 0, 1 have audio; chunk 2 has none
    one_token = torch.cat([torch.arange(50), torch.tensor([50])])  # chunk 1 reduced to a single token
    clip = clip.select(torch.arange(len(clip.video)), one_token)

    result = OmniSiftCompressor(PRESETS["25%"]).compress(clip)

    assert torch.bincount(result.kept.video.chunks, minlength=3).tolist() == [2 * 19] * 3  # 80 - int(61.6) = 19 a frame
    assert torch.bincount(result.kept.audio.chunks, minlength=3).tolist() == [25, 1, 0]
    assert result.audio_scores[50].item() == 1.0  # kept whole, not scored


def test_every_changed_cell_of_a_moving_block_is_kept_when_the_budget_allows():
    aligned = moving_block_clip(frames=10, rows=8, cols=10, block=2)
    for preset in ("35%", "25%"):
        result = OmniSiftCompressor(PRESETS[preset]).compress(aligned.clip)
        kept = torch.zeros(len(aligned.clip.video), dtype=torch.bool)
        kept[result.video_keep] = True
        second_frames = torch.arange(len(kept)) // 80 % 2 == 1
        must_keep = aligned.changed_cells & second_frames
        assert must_keep.sum() > 0
        assert kept[must_keep].all(), f"{preset}: a changed cell was dropped"


def test_static_cells_score_zero_and_changed_cells_score_above_zero():
    aligned = moving_block_clip()
    result = OmniSiftCompressor(PRESETS["25%"]).compress(aligned.clip)
    temporal = result.video_temporal
    assert (result.video_scores[temporal & ~aligned.changed_cells].abs() < 1e-6).all()
    assert (result.video_scores[temporal & aligned.changed_cells] > 0.1).all()


def aligned_recall(keep: torch.Tensor, aligned: torch.Tensor) -> float:
    kept = torch.zeros_like(aligned)
    kept[keep] = True
    return float(kept[aligned].float().mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_free_vgas_keeps_audio_aligned_with_moving_cells_well_above_random(seed):
    aligned = moving_block_clip(seed=seed)
    omnisift = OmniSiftCompressor(PRESETS["25%"]).compress(aligned.clip)
    random = RandomDrop(PRESETS["25%"], seed=seed).compress(aligned.clip)

    omnisift_recall = aligned_recall(omnisift.audio_keep, aligned.aligned_audio)
    random_recall = aligned_recall(random.audio_keep, aligned.aligned_audio)

    assert omnisift_recall >= 0.95
    assert omnisift_recall >= random_recall + 0.3


def test_training_free_scores_rank_aligned_audio_above_noise_directly():
    aligned = moving_block_clip(seed=3)
    clip = aligned.clip
    anchors = clip.video.embeddings[aligned.changed_cells][None]  # (1, Lv, D)
    audio = clip.audio.embeddings[None]  # (1, La, D)
    scores = training_free_scores(
        audio, torch.ones(audio.shape[:2], dtype=torch.bool), anchors, torch.ones(anchors.shape[:2], dtype=torch.bool)
    )[0]
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert scores[aligned.aligned_audio].min() > scores[~aligned.aligned_audio].max()


def test_compression_is_deterministic_and_a_batch_equals_clips_one_by_one():
    torch.manual_seed(0)
    selector = VisionGuidedAudioSelector(hidden_size=32).eval()
    clips = [random_clip(frames=f, audio=a, seed=s) for f, a, s in ((10, 250, 0), (7, 180, 1), (4, 30, 2))]
    for compressor in (OmniSiftCompressor(PRESETS["35%"]), OmniSiftCompressor(PRESETS["35%"], 32, selector)):
        with torch.no_grad():
            batch = compressor.compress_batch(clips)
            single = [compressor.compress(c) for c in clips]
            again = compressor.compress_batch(clips)
        for b, s, a in zip(batch, single, again, strict=True):
            assert torch.equal(b.video_keep, s.video_keep) and torch.equal(b.audio_keep, s.audio_keep)
            assert torch.allclose(b.audio_scores, s.audio_scores, atol=1e-6)
            assert torch.equal(b.audio_keep, a.audio_keep) and torch.equal(b.audio_scores, a.audio_scores)


def test_selector_has_the_published_parameter_names_and_counts():
    selector = VisionGuidedAudioSelector(hidden_size=3584)
    shapes = {name: tuple(p.shape) for name, p in selector.named_parameters()}
    assert sum(p.numel() for p in selector.parameters()) == 4_856_321
    assert shapes["v_proj.weight"] == (512, 3584) and shapes["a_proj.weight"] == (512, 3584)
    assert shapes["cross_attn.in_proj_weight"] == (1536, 512) and shapes["cross_attn.out_proj.weight"] == (512, 512)
    assert shapes["score_head.0.weight"] == (256, 512) and shapes["score_head.2.weight"] == (1, 256)
    assert {n.split(".")[0] for n in shapes} == {
        "v_proj",
        "a_proj",
        "v_norm",
        "a_norm",
        "cross_attn",
        "post_attn_norm",
        "score_head",
    }
    small = VisionGuidedAudioSelector(hidden_size=2048)
    assert sum(p.numel() for p in small.parameters()) == 4_856_321 - 2 * 512 * (3584 - 2048)


def test_a_loss_on_kept_audio_reaches_every_selector_parameter_and_forward_values_are_exact():
    torch.manual_seed(0)
    aligned = moving_block_clip(dim=32)
    selector = VisionGuidedAudioSelector(hidden_size=32)
    result = OmniSiftCompressor(PRESETS["25%"], 32, selector).compress(aligned.clip)

    kept_audio = result.kept.audio.embeddings
    assert torch.equal(kept_audio, aligned.clip.audio.embeddings[result.audio_keep])
    weights = torch.randn_like(kept_audio)
    (kept_audio * weights).sum().backward()

    for name, parameter in selector.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_straight_through_mask_is_the_hard_mask_in_value():
    from omnisift_core.ste import straight_through_mask

    scores = torch.rand(20, dtype=torch.bfloat16, requires_grad=True)
    keep = torch.tensor([1, 4, 9])
    mask = straight_through_mask(scores, keep)
    assert mask.dtype == torch.float32
    assert torch.equal(mask.detach(), torch.zeros(20).index_fill_(0, keep, 1.0))
    mask.sum().backward()
    assert torch.equal(scores.grad, torch.ones(20, dtype=torch.bfloat16))


def test_wrong_hidden_size_is_refused():
    with pytest.raises(InvalidTokens, match="hidden size 32 does not match the compressor's 64"):
        OmniSiftCompressor(PRESETS["35%"], hidden_size=64).compress(random_clip(dim=32))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("modality", ["video", "audio"])
def test_non_finite_embeddings_are_refused(bad, modality):
    clip = random_clip()
    getattr(clip, modality).embeddings[3, 5] = bad
    with pytest.raises(InvalidTokens, match=f"{modality} embeddings contain NaN or inf"):
        OmniSiftCompressor(PRESETS["35%"]).compress(clip)


def test_empty_clip_is_refused():
    with pytest.raises(InvalidTokens, match="no video and no audio"):
        build_clip_tokens(torch.zeros(0, 16), VideoGrid(0, 4, 4), torch.zeros(0, 16))


def test_mismatched_token_shapes_are_refused():
    with pytest.raises(InvalidTokens, match="positions must be"):
        TokenStream(torch.zeros(4, 8), torch.zeros(3, 5, dtype=torch.long), torch.zeros(4), torch.zeros(4))
    with pytest.raises(InvalidTokens, match="needs 32"):
        build_clip_tokens(torch.zeros(30, 8), VideoGrid(2, 4, 4), torch.zeros(5, 8))


def test_an_already_compressed_clip_is_refused():
    clip = random_clip()
    kept = OmniSiftCompressor(PRESETS["35%"]).compress(clip).kept
    with pytest.raises(InvalidTokens, match="already compressed"):
        OmniSiftCompressor(PRESETS["35%"]).compress(kept)


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, float("nan")])
def test_removal_ratios_outside_zero_to_one_are_refused(ratio):
    with pytest.raises(InvalidConfig, match=r"removal ratio must be in \[0, 1\)"):
        RemovalRatios(video=ratio, audio=0.5)
    with pytest.raises(InvalidConfig, match=r"removal ratio must be in \[0, 1\)"):
        RemovalRatios(video=0.5, audio=ratio)


def test_unknown_preset_is_refused():
    with pytest.raises(InvalidConfig, match="unknown preset '50%'"):
        RemovalRatios.from_preset("50%")
