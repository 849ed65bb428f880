"""The probability of "yes" over a clip's kept tokens, on the tiny model's real forward pass: a probability,
the same for the same inputs, and exactly the softmax of the full (uncached) forward's next-token logits.
The clips are OmniSIFT-compressed tokens of the model's hidden size (the encoder half is tested elsewhere)."""

from __future__ import annotations

import pytest
import torch

from omnisift_core.backbone import Checkpoint, ClipContext, ModelSource, load_language
from omnisift_core.backbone.yes_no import INSTRUCTION, first_token_ids, yes_probability
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS
from omnisift_core.layout import VideoGrid
from omnisift_core.tokens import build_clip_tokens

HEADER = "[door, 2026-11-23 14:03:00-14:03:04 UTC]"
GRID = VideoGrid(frames=4, rows=4, cols=5)


@pytest.fixture(scope="module")
def language_and_clips():
    language = load_language(Checkpoint(ModelSource.parse("tiny")))
    dim = language.model.lm_head.in_features
    compressor = OmniSiftCompressor(PRESETS["25%"])
    clips = []
    for seed in (0, 1):
        generator = torch.Generator().manual_seed(seed)
        video = torch.randn(GRID.num_tokens, dim, generator=generator)
        full = build_clip_tokens(video, GRID, torch.randn(100, dim, generator=generator))
        clips.append(ClipContext(HEADER, compressor.compress(full).kept, len(full.video) + len(full.audio)))
    return language, clips


def test_it_is_a_probability_and_the_same_for_the_same_inputs(language_and_clips):
    language, (clip, _) = language_and_clips
    first = yes_probability(language, "Is a person at the door?", [clip])
    assert 0.0 <= first <= 1.0
    assert yes_probability(language, "Is a person at the door?", [clip]) == first


def test_it_reads_the_full_forward_pass_over_yes_and_no(language_and_clips):
    language, (clip, _) = language_and_clips
    prompt = language.prompt("Is a person at the door?" + INSTRUCTION, [clip])
    with torch.inference_mode():  # one uncached forward over the whole prompt, at its explicit positions
        hidden = language.model.hidden_states(language.embed(prompt), prompt.positions[:, None, :])
        probs = language.model.lm_head(hidden[0, -1]).softmax(-1)
    yes = probs[first_token_ids(language, ("Yes", "yes"))].sum()
    no = probs[first_token_ids(language, ("No", "no"))].sum()
    expected = float(yes / (yes + no))
    assert yes_probability(language, "Is a person at the door?", [clip]) == pytest.approx(expected, abs=1e-5)


def test_the_question_and_the_clips_kept_tokens_both_reach_the_model(language_and_clips):
    language, (clip, other) = language_and_clips
    asked = yes_probability(language, "Is a person at the door?", [clip])
    assert yes_probability(language, "Is a car in the yard?", [clip]) != asked
    assert yes_probability(language, "Is a person at the door?", [other]) != asked
