"""Loading local checkpoints: the published OmniSIFT-7B layout, halves loading separately, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from omnisift_core.backbone import Checkpoint, ModelSource, load_encoder, load_language, load_selector
from omnisift_core.backbone.checkpoint import canonical_key
from omnisift_core.backbone.tiny import TINY_HIDDEN, tiny_thinker, tiny_thinker_config, tiny_tokenizer
from omnisift_core.errors import ModelUnavailable
from omnisift_core.vgas import VisionGuidedAudioSelector

CPU = torch.device("cpu")


def published_key(key: str) -> str:
    """transformers-5 thinker key -> the key in the published checkpoints (what `from_pretrained` renames)."""
    for new, old in (
        ("model.visual.", "visual."),
        ("model.audio_tower.", "audio_tower."),
        ("model.language_model.", "model."),
    ):
        if key.startswith(new):
            return "thinker." + old + key[len(new) :]
    return "thinker." + key


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny checkpoint written in the published layout, with selector weights and talker weights."""
    directory = tmp_path_factory.mktemp("omnisift-7b-layout")
    thinker = tiny_thinker(seed=3)
    torch.manual_seed(5)
    selector = VisionGuidedAudioSelector(TINY_HIDDEN)
    tensors = {published_key(k): v.contiguous() for k, v in thinker.state_dict().items()}
    tensors |= {f"thinker.compressor.{k}": v.contiguous() for k, v in selector.state_dict().items()}
    tensors["talker.model.embed_tokens.weight"] = torch.zeros(4, 4)
    half = len(tensors) // 2
    names = sorted(tensors)
    save_file({k: tensors[k] for k in names[:half]}, directory / "model-00001-of-00002.safetensors")
    save_file({k: tensors[k] for k in names[half:]}, directory / "model-00002-of-00002.safetensors")
    weight_map = {k: f"model-0000{1 + (i >= half)}-of-00002.safetensors" for i, k in enumerate(names)}
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = {"model_type": "qwen2_5_omni", "thinker_config": tiny_thinker_config().to_dict()}
    (directory / "config.json").write_text(json.dumps(config))
    tiny_tokenizer().save_pretrained(directory)
    return directory, thinker, selector


def test_published_layout_loads_backbone_and_selector_weights_exactly(published):
    directory, thinker, selector = published
    checkpoint = Checkpoint(ModelSource.parse(str(directory)))
    reference = thinker.state_dict()

    encoder = load_encoder(checkpoint, CPU)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, reference[f"model.{key}"]), key
    language = load_language(checkpoint, CPU)
    for key, value in language.model.state_dict().items():
        assert torch.equal(value, reference[key if key.startswith("lm_head") else f"model.{key}"]), key
    loaded = load_selector(checkpoint, CPU)
    assert loaded is not None
    for key, value in selector.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert language.tokenizer.convert_tokens_to_ids("<|VIDEO|>") == checkpoint.config.video_token_id


def test_halves_load_only_their_own_weights(published):
    directory, _, _ = published
    checkpoint = Checkpoint(ModelSource.parse(str(directory)))
    encoder_keys = checkpoint.weights(("model.visual.", "model.audio_tower."))
    language_keys = checkpoint.weights(("model.language_model.", "lm_head."))
    assert encoder_keys and language_keys
    assert not set(encoder_keys) & set(language_keys)
    assert all(k.startswith(("model.visual.", "model.audio_tower.")) for k in encoder_keys)


def test_fingerprint_is_stable_and_names_the_model(published):
    directory, _, _ = published
    first = Checkpoint(ModelSource.parse(str(directory))).fingerprint
    assert first == Checkpoint(ModelSource.parse(str(directory))).fingerprint
    assert first.startswith(directory.name)
    assert Checkpoint(ModelSource.parse("tiny:1")).fingerprint != Checkpoint(ModelSource.parse("tiny")).fingerprint


def test_stock_qwen_checkpoint_without_selector_weights_gives_training_free_mode():
    assert load_selector(Checkpoint(ModelSource.parse("tiny")), CPU) is None


@pytest.mark.parametrize(
    ("key", "canonical"),
    [
        ("thinker.visual.blocks.0.attn.qkv.weight", "model.visual.blocks.0.attn.qkv.weight"),
        ("thinker.audio_tower.conv1.weight", "model.audio_tower.conv1.weight"),
        ("thinker.model.layers.3.mlp.up_proj.weight", "model.language_model.layers.3.mlp.up_proj.weight"),
        ("thinker.model.embed_tokens.weight", "model.language_model.embed_tokens.weight"),
        ("thinker.lm_head.weight", "lm_head.weight"),
        ("thinker.compressor.score_head.0.weight", "compressor.score_head.0.weight"),
        ("model.language_model.norm.weight", "model.language_model.norm.weight"),
        ("talker.model.layers.0.mlp.up_proj.weight", None),
        ("token2wav.code2wav_dit_model.proj.weight", None),
    ],
)
def test_checkpoint_keys_map_to_canonical_names(key, canonical):
    assert canonical_key(key) == canonical


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist.*nothing is downloaded"):
        Checkpoint(ModelSource.parse(str(tmp_path / "Qwen2.5-Omni-7B")))


def test_directory_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="has no config.json"):
        Checkpoint(ModelSource.parse(str(tmp_path)))


def test_missing_shard_is_a_clear_error(published, tmp_path):
    directory, _, _ = published
    for file in directory.iterdir():
        if not file.name.startswith("model-00002"):
            (tmp_path / file.name).write_bytes(file.read_bytes())
    with pytest.raises(ModelUnavailable, match="incomplete: missing weight files model-00002-of-00002.safetensors"):
        Checkpoint(ModelSource.parse(str(tmp_path)))


def test_incomplete_weights_name_what_is_missing(published, tmp_path):
    directory, thinker, _ = published
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    tensors = {published_key(k): v.contiguous() for k, v in thinker.state_dict().items() if "layers.1." not in k}
    save_file(tensors, tmp_path / "model.safetensors")
    checkpoint = Checkpoint(ModelSource.parse(str(tmp_path)))
    with pytest.raises(ModelUnavailable, match=r"incomplete for the language model: \d+ weights missing, e.g. "):
        load_language(checkpoint, CPU)


def test_a_non_omni_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    save_file({"x": torch.zeros(1)}, tmp_path / "model.safetensors")
    with pytest.raises(ModelUnavailable, match="not a Qwen2.5-Omni checkpoint"):
        _ = Checkpoint(ModelSource.parse(str(tmp_path))).config


def test_bad_tiny_seed_is_refused():
    with pytest.raises(ModelUnavailable, match="seed must be a whole number"):
        ModelSource.parse("tiny:abc")
