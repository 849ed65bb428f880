"""Multi-clip prompts with the positions Qwen2.5-Omni's `get_rope_index` gives audio-in-video input.

Each clip is `header text, <|vision_bos|><|audio_bos|>, [video chunk 0][audio chunk 0][video chunk 1]...,
<|audio_eos|><|vision_eos|>`. Both bos tokens share one position p; the clip's kept tokens keep their
(t, h, w) positions shifted by p + 1 (gaps from pruning stay gaps); both eos tokens sit at the largest
kept position + 1, and text continues from there. Clips follow one another on the time axis, so the
wall-clock gap between them never pushes positions out of the trained range. With every token kept,
the ids and positions equal what the processor and `get_rope_index` produce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase, Qwen2_5OmniThinkerConfig

from omnisift_core.tokens import ClipTokens

DEFAULT_SYSTEM_PROMPT = "You watch security cameras. Answer from the clips; cite each one's camera and time."


@dataclass(frozen=True)
class ClipContext:
    """One clip for the prompt: its time header, kept tokens (positions from 0), and its size uncompressed."""

    header: str
    tokens: ClipTokens
    full_tokens: int  # video + audio tokens before compression


@dataclass(frozen=True)
class SpecialIds:
    im_start: int
    im_end: int
    end_of_text: int
    video: int
    audio: int
    vision_bos: int
    vision_eos: int
    audio_bos: int
    audio_eos: int

    @classmethod
    def resolve(cls, tokenizer: PreTrainedTokenizerBase, config: Qwen2_5OmniThinkerConfig) -> SpecialIds:
        def token(text: str) -> int:
            return tokenizer.convert_tokens_to_ids(text)

        return cls(
            im_start=token("<|im_start|>"),
            im_end=token("<|im_end|>"),
            end_of_text=token("<|endoftext|>"),
            video=config.video_token_id,
            audio=config.audio_token_id,
            vision_bos=token("<|vision_bos|>"),
            vision_eos=token("<|vision_eos|>"),
            audio_bos=config.audio_start_token_id,
            audio_eos=config.audio_end_token_id,
        )

    @property
    def stop(self) -> frozenset[int]:
        return frozenset({self.im_end, self.end_of_text})


@dataclass(frozen=True)
class Prompt:
    token_ids: Tensor  # (L,) long; media slots hold the video / audio placeholder ids
    positions: Tensor  # (3, L) long
    media: Tensor  # (M, D) embeddings for the media slots, in slot order
    media_mask: Tensor  # (L,) bool
    full_tokens: int  # the length a prompt of uncompressed clips would have

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def next_position(self) -> int:
        """Where decoding continues: the largest position + 1 (not the length; pruned positions leave gaps)."""
        return int(self.positions.max()) + 1

    def followed_by(self, token_ids: Sequence[int]) -> Prompt:
        """This prompt with text tokens appended at the next positions (an answer, for teacher forcing)."""
        ids = torch.tensor(token_ids, dtype=torch.long)
        positions = torch.arange(self.next_position, self.next_position + len(ids)).expand(3, -1)
        return Prompt(
            token_ids=torch.cat([self.token_ids, ids]),
            positions=torch.cat([self.positions, positions], dim=1),
            media=self.media,
            media_mask=torch.cat([self.media_mask, torch.zeros(len(ids), dtype=torch.bool)]),
            full_tokens=self.full_tokens + len(ids),
        )


class _Builder:
    def __init__(self) -> None:
        self.ids: list[Tensor] = []
        self.positions: list[Tensor] = []
        self.media: list[Tensor] = []
        self.media_mask: list[Tensor] = []
        self.next = 0

    def text(self, ids: Sequence[int]) -> None:
        n = len(ids)
        self._append(torch.tensor(ids, dtype=torch.long), torch.arange(self.next, self.next + n).expand(3, -1))
        self.next += n

    def shared(self, ids: Sequence[int]) -> None:
        """Tokens that share one position (the paired vision/audio bos and eos)."""
        self._append(torch.tensor(ids, dtype=torch.long), torch.full((3, len(ids)), self.next))
        self.next += 1

    def clip(self, tokens: ClipTokens, ids: SpecialIds) -> None:
        offset = self.next
        last = offset - 1
        for chunk in torch.unique(torch.cat([tokens.video.chunks, tokens.audio.chunks])).tolist():
            for stream, placeholder in ((tokens.video, ids.video), (tokens.audio, ids.audio)):
                in_chunk = stream.chunks == chunk
                if in_chunk.any():
                    positions = stream.positions[:, in_chunk].cpu() + offset
                    self._append(
                        torch.full((int(in_chunk.sum()),), placeholder), positions, stream.embeddings[in_chunk]
                    )
                    last = max(last, int(positions.max()))
        self.next = last + 1

    def _append(self, ids: Tensor, positions: Tensor, media: Tensor | None = None) -> None:
        self.ids.append(ids)
        self.positions.append(positions)
        self.media_mask.append(torch.full((len(ids),), media is not None))
        if media is not None:
            self.media.append(media)


def build_prompt(
    question: str,
    clips: Sequence[ClipContext],
    tokenizer: PreTrainedTokenizerBase,
    ids: SpecialIds,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
) -> Prompt:
    """The chat prompt asking `question` about `clips`, in the order given."""

    def text(value: str) -> list[int]:
        # user-supplied text never becomes control tokens: "<|im_end|>" in a question stays plain text
        return tokenizer.encode(value, add_special_tokens=False, split_special_tokens=True)

    builder = _Builder()
    newline = text("\n")
    builder.text([ids.im_start, *text("system\n" + system_prompt), ids.im_end, *newline, ids.im_start, *text("user\n")])
    for clip in clips:
        builder.text(text(clip.header + "\n"))
        builder.shared([ids.vision_bos, ids.audio_bos])
        builder.clip(clip.tokens, ids)
        builder.shared([ids.audio_eos, ids.vision_eos])
        builder.text(newline)
    builder.text([*text(question), ids.im_end, *newline, ids.im_start, *text("assistant\n")])

    token_ids = torch.cat(builder.ids)
    media = torch.cat(builder.media) if builder.media else torch.zeros(0, 0)
    kept = sum(len(c.tokens.video) + len(c.tokens.audio) for c in clips)
    return Prompt(
        token_ids=token_ids,
        positions=torch.cat(builder.positions, dim=1),
        media=media,
        media_mask=torch.cat(builder.media_mask),
        full_tokens=len(token_ids) - kept + sum(c.full_tokens for c in clips),
    )
