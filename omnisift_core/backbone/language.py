"""The language half: embeddings, decoder and lm_head of the thinker, answering over kept clip tokens.

Prefill takes inputs_embeds with explicit 3-axis positions, so the KV cache holds only kept tokens;
decoding continues from the largest kept position + 1. Greedy by default.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import DynamicCache, PreTrainedTokenizerBase, Qwen2_5OmniThinkerConfig
from transformers.initialization import no_init_weights
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerTextModel

from omnisift_core.backbone.checkpoint import Checkpoint, default_device, default_dtype, load_module_weights
from omnisift_core.backbone.prompt import DEFAULT_SYSTEM_PROMPT, ClipContext, Prompt, SpecialIds, build_prompt

_PREFIXES = ("model.language_model.", "lm_head.")


class OmniLanguageModel(nn.Module):
    def __init__(self, config: Qwen2_5OmniThinkerConfig):
        super().__init__()
        text = config.text_config
        self.language_model = Qwen2_5OmniThinkerTextModel._from_config(text)
        self.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=False)

    def forward(self, embeds: Tensor, positions: Tensor, cache: DynamicCache) -> Tensor:
        """(1, L, D) embeddings at (3, 1, L) positions -> (1, vocab) logits of the last token."""
        return self.lm_head(self.hidden_states(embeds, positions, cache)[:, -1])

    def hidden_states(self, embeds: Tensor, positions: Tensor, cache: DynamicCache | None = None) -> Tensor:
        """(1, L, D) embeddings at (3, 1, L) positions -> (1, L, D) final hidden states."""
        return self.language_model(
            inputs_embeds=embeds, position_ids=positions, cache=cache, use_cache=cache is not None
        ).last_hidden_state


@dataclass
class DecodeState:
    """A prefilled (or partly decoded) sequence: its cache, the next position and the last logits."""

    cache: DynamicCache
    next_position: int
    logits: Tensor  # (1, vocab)


@dataclass(frozen=True)
class Usage:
    full_tokens: int  # prompt length had every clip been sent uncompressed
    sent_tokens: int  # prompt length actually sent
    generated_tokens: int


@dataclass(frozen=True)
class Answer:
    text: str
    usage: Usage


class LanguageHalf:
    """Answers questions over clips: builds the prompt, prefills, decodes greedily, streams text."""

    def __init__(self, model: OmniLanguageModel, tokenizer: PreTrainedTokenizerBase, ids: SpecialIds):
        self.model = model
        self.tokenizer = tokenizer
        self.ids = ids
        self.system_prompt = DEFAULT_SYSTEM_PROMPT

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.lm_head.weight.dtype

    def prompt(self, question: str, clips: Sequence[ClipContext]) -> Prompt:
        return build_prompt(question, clips, self.tokenizer, self.ids, self.system_prompt)

    def embed(self, prompt: Prompt) -> Tensor:
        """(1, L, D): token embeddings with the clips' kept embeddings in the media slots."""
        ids = prompt.token_ids.to(self.device)
        embeds = self.model.language_model.embed_tokens(ids)
        mask = prompt.media_mask.to(self.device)
        embeds = embeds.masked_scatter(mask[:, None], prompt.media.to(self.device, self.dtype))
        return embeds[None]

    @torch.inference_mode()
    def prefill(self, prompt: Prompt) -> DecodeState:
        cache = DynamicCache(config=self.model.language_model.config)
        positions = prompt.positions[:, None, :].to(self.device)  # (3, 1, L)
        logits = self.model(self.embed(prompt), positions, cache)
        return DecodeState(cache=cache, next_position=prompt.next_position, logits=logits)

    @torch.inference_mode()
    def step(self, state: DecodeState, token: int) -> None:
        """Feed one generated token at the next position."""
        embeds = self.model.language_model.embed_tokens(torch.tensor([[token]], device=self.device))
        positions = torch.full((3, 1, 1), state.next_position, device=self.device)
        state.logits = self.model(embeds, positions, state.cache)
        state.next_position += 1

    def generate_ids(self, prompt: Prompt, max_new_tokens: int) -> Iterator[int]:
        """Greedy token ids until a stop token (not yielded) or `max_new_tokens`."""
        state = self.prefill(prompt)
        for produced in range(max_new_tokens):
            token = int(state.logits.argmax(-1))
            if token in self.ids.stop:
                return
            yield token
            if produced + 1 < max_new_tokens:
                self.step(state, token)

    def stream(self, question: str, clips: Sequence[ClipContext], max_new_tokens: int = 128) -> Iterator[str]:
        """Text pieces as they are generated (never a split multi-byte character)."""
        ids: list[int] = []
        emitted = ""
        for token in self.generate_ids(self.prompt(question, clips), max_new_tokens):
            ids.append(token)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if text.endswith("\ufffd"):
                continue
            if len(text) > len(emitted):
                yield text[len(emitted) :]
                emitted = text

    def answer(self, question: str, clips: Sequence[ClipContext], max_new_tokens: int = 128) -> Answer:
        prompt = self.prompt(question, clips)
        ids = list(self.generate_ids(prompt, max_new_tokens))
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Answer(text=text, usage=Usage(prompt.full_tokens, len(prompt), len(ids)))


def load_language(checkpoint: Checkpoint, device: torch.device | None = None) -> LanguageHalf:
    """The language half of `checkpoint` on `device` (CUDA when present), bf16 on GPU and fp32 on CPU."""
    device = device or default_device()
    config = checkpoint.config
    with no_init_weights():
        model = OmniLanguageModel(config)
    weights = {key.removeprefix("model."): value for key, value in checkpoint.weights(_PREFIXES).items()}
    if "lm_head.weight" not in weights and config.text_config.tie_word_embeddings:
        weights["lm_head.weight"] = weights.get("language_model.embed_tokens.weight")
    load_module_weights(model, {k: v for k, v in weights.items() if v is not None}, "language model")
    model = model.to(device=device, dtype=default_dtype(device)).eval()
    return LanguageHalf(model, checkpoint.tokenizer, SpecialIds.resolve(checkpoint.tokenizer, config))
