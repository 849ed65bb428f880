"""STE training of the selector on the tiny backbone: the training forward is the serving forward, the
gradient reaches the selector and nothing else, and the trained weights load back into the service path."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from omnisift_core.backbone import Checkpoint, ClipContext, ModelSource, load_encoder, load_language, load_selector
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS, FrameLimits
from omnisift_core.errors import ModelUnavailable
from omnisift_core.train import TrainingConfig, TrainingExample, answer_loss, save_selector, train_selector
from omnisift_core.vgas import VisionGuidedAudioSelector

LIMITS = FrameLimits(min_pixels=4 * 28 * 28, max_pixels=40 * 28 * 28)
RATIOS = PRESETS["25%"]
ANSWER = "A red car parks at 14:03."


@pytest.fixture(scope="module")
def checkpoint():
    return Checkpoint(ModelSource.parse("tiny"))


@pytest.fixture(scope="module")
def language(checkpoint):
    return load_language(checkpoint, torch.device("cpu"))


@pytest.fixture(scope="module")
def examples(checkpoint):
    encoder = load_encoder(checkpoint, torch.device("cpu"), LIMITS)
    rng = np.random.default_rng(3)
    made = []
    for n in range(2):
        frames = rng.integers(0, 256, size=(8, 112, 140, 3), dtype=np.uint8)  # 4 s: two 2-second chunks
        waveform = (0.1 * rng.standard_normal(4 * 16_000)).astype(np.float32)
        tokens = encoder.encode(frames, waveform)
        header = f"[lobby, 2026-11-23 14:0{n}:00-14:0{n}:04 UTC]"
        clip = ClipContext(header, tokens, len(tokens.video) + len(tokens.audio))
        made.append(TrainingExample((clip,), "What happened?", ANSWER))
    return made


def fresh_selector(hidden: int, seed: int = 0) -> VisionGuidedAudioSelector:
    torch.manual_seed(seed)
    return VisionGuidedAudioSelector(hidden)


def test_the_training_loss_is_the_serving_models_loss_of_the_answer(language, examples):
    example = examples[0]
    selector = fresh_selector(language.model.lm_head.in_features)
    loss = answer_loss(language, selector, RATIOS, example)

    # the service's path: compress, prefill, then feed the answer token by token through the KV cache
    compressor = OmniSiftCompressor(RATIOS, selector=selector)
    with torch.inference_mode():
        clip = example.clips[0]
        kept = ClipContext(clip.header, compressor.compress(clip.tokens).kept, clip.full_tokens)
    target = [*language.tokenizer.encode(ANSWER, add_special_tokens=False), language.ids.im_end]
    state = language.prefill(language.prompt(example.question, [kept]))
    nll = []
    for token in target:
        nll.append(-torch.log_softmax(state.logits[0].float(), -1)[token])
        language.step(state, token)
    assert loss.detach().item() == pytest.approx(torch.stack(nll).mean().item(), abs=1e-5)


def test_the_gradient_reaches_the_selector_and_not_the_language_model(language, examples):
    selector = fresh_selector(language.model.lm_head.in_features)
    language.model.requires_grad_(False)
    answer_loss(language, selector, RATIOS, examples[0]).backward()
    for name, parameter in selector.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in language.model.parameters())


def test_training_moves_the_selector_only_and_its_file_loads_back(language, examples, checkpoint, tmp_path):
    hidden = language.model.lm_head.in_features
    selector = fresh_selector(hidden)
    before = copy.deepcopy(selector.state_dict())
    language_before = {k: v.clone() for k, v in language.model.state_dict().items()}
    config = TrainingConfig(RATIOS, learning_rate=1e-3, epochs=2, batch_size=2)

    reports = train_selector(language, selector, examples, config)

    assert [r.step for r in reports] == [1, 2] and all(r.steps == 2 for r in reports)
    assert all(np.isfinite(r.loss) and r.loss > 0 for r in reports)
    assert reports[1].learning_rate < reports[0].learning_rate == pytest.approx(1e-3)  # cosine decay
    assert any(not torch.equal(before[k], v) for k, v in selector.state_dict().items())
    assert all(torch.equal(language_before[k], v) for k, v in language.model.state_dict().items())
    assert not selector.training

    path = tmp_path / "selector.safetensors"
    save_selector(selector, path)
    loaded = load_selector(checkpoint, torch.device("cpu"), path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in selector.state_dict().items())
    untrained = OmniSiftCompressor(RATIOS, hidden, fresh_selector(hidden))
    assert OmniSiftCompressor(RATIOS, hidden, loaded).fingerprint != untrained.fingerprint


def test_a_selector_file_that_is_unreadable_empty_or_for_another_size_is_refused(checkpoint, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not safetensors")
    with pytest.raises(ModelUnavailable, match="cannot read selector weights"):
        load_selector(checkpoint, torch.device("cpu"), garbage)

    other = tmp_path / "other.safetensors"
    save_file({"thinker.lm_head.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(ModelUnavailable, match="no selector weights"):
        load_selector(checkpoint, torch.device("cpu"), other)

    bigger = tmp_path / "bigger.safetensors"
    save_selector(VisionGuidedAudioSelector(checkpoint.config.text_config.hidden_size * 2), bigger)
    with pytest.raises(ModelUnavailable, match="another model size"):
        load_selector(checkpoint, torch.device("cpu"), bigger)


def test_a_selector_file_of_another_configuration_is_refused_with_a_reason(checkpoint, tmp_path):
    other = tmp_path / "other-dim.safetensors"
    save_selector(VisionGuidedAudioSelector(checkpoint.config.text_config.hidden_size, dim=256), other)
    with pytest.raises(ModelUnavailable, match="do not fit this selector"):
        load_selector(checkpoint, torch.device("cpu"), other)
