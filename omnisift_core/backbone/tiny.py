"""The `tiny` preset: a seeded random-weight Qwen2.5-Omni thinker and a byte-level tokenizer, built in code.

Tests, CI and the zero-setup demo use it; nothing is downloaded. Its answers are not language.
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

TINY_HIDDEN = 64
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
)
_BYTES = 256
_ID = {token: _BYTES + i for i, token in enumerate(SPECIAL_TOKENS)}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer (one token per byte) plus Qwen2.5-Omni's special tokens at ids 256+."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_thinker_config(**text_overrides) -> Qwen2_5OmniThinkerConfig:
    """A few layers of every part, with the real model's patching, merging and token-rate settings.

    `text_overrides` resize the language model (the prefill benchmark uses a mid-size one).
    """
    return Qwen2_5OmniThinkerConfig(
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "output_dim": TINY_HIDDEN,
            "n_window": 100,
            "max_source_positions": 1500,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "out_hidden_size": TINY_HIDDEN,
            "fullatt_block_indexes": [1],
        },
        text_config={
            "vocab_size": _BYTES + len(SPECIAL_TOKENS) + 6,
            "hidden_size": TINY_HIDDEN,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "eos_token_id": _ID["<|im_end|>"],
            "pad_token_id": _ID["<|endoftext|>"],
        }
        | text_overrides,
        audio_token_index=_ID["<|AUDIO|>"],
        image_token_index=_ID["<|IMAGE|>"],
        video_token_index=_ID["<|VIDEO|>"],
        audio_start_token_id=_ID["<|audio_bos|>"],
        audio_end_token_id=_ID["<|audio_eos|>"],
        vision_start_token_id=_ID["<|vision_bos|>"],
        vision_end_token_id=_ID["<|vision_eos|>"],
        position_id_per_seconds=25,
        seconds_per_chunk=2,
    )


def tiny_thinker(seed: int = 0) -> Qwen2_5OmniThinkerForConditionalGeneration:
    """The whole tiny thinker with seeded random weights (the reference the halves are cut from)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Qwen2_5OmniThinkerForConditionalGeneration(tiny_thinker_config()).eval()
