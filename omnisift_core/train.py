"""STE training of the OmniSIFT selector (docs/architecture.md, "Training the selector").

Examples arrive already encoded (the vision and audio encoders are frozen, so a clip is encoded once).
Each step compresses the clips with the selector, puts the kept tokens into the answer prompt and
takes the next-token loss of the target answer. The kept audio is gated by the straight-through mask,
so the forward pass is exactly the one the service runs, and the gradient reaches the selector's
scores through the tokens it kept. The language model stays frozen: training it as well (the paper's
recipe) needs a GPU and a checkpoint writer for 7B weights, which this module leaves to other tools.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from omnisift_core.backbone.language import LanguageHalf
from omnisift_core.backbone.prompt import ClipContext
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import NoveltyBudget, RemovalRatios
from omnisift_core.errors import InvalidConfig
from omnisift_core.tokens import ClipTokens
from omnisift_core.vgas import VisionGuidedAudioSelector

SELECTOR_PREFIX = "thinker.compressor."  # the published OmniSIFT-7B layout


@dataclass(frozen=True)
class TrainingExample:
    """Full (uncompressed) clips with their headers, a question about them and the answer to learn."""

    clips: tuple[ClipContext, ...]
    question: str
    answer: str


@dataclass(frozen=True)
class TrainingConfig:
    ratios: RemovalRatios
    learning_rate: float = 1e-5  # the paper's
    epochs: int = 1
    batch_size: int = 8  # examples per optimizer step (gradients are accumulated)
    seed: int = 0  # example order
    novelty: NoveltyBudget | None = None  # the video budget the selector will serve with

    def __post_init__(self) -> None:
        if self.ratios.audio == 0:
            raise InvalidConfig("the audio removal ratio is 0: every audio token is kept, so nothing to learn")


@dataclass(frozen=True)
class StepReport:
    step: int
    steps: int
    loss: float  # mean next-token loss of the step's examples
    learning_rate: float


def answer_loss(
    language: LanguageHalf,
    selector: VisionGuidedAudioSelector,
    ratios: RemovalRatios,
    example: TrainingExample,
    novelty: NoveltyBudget | None = None,
) -> Tensor:
    """Mean next-token cross-entropy of the answer (and its end token) over the selector-compressed clips.

    Clips may be kept anywhere (the CPU, say, for a large set); they are moved to the model's device here.
    """
    compressor = OmniSiftCompressor(ratios, selector=selector, novelty=novelty)
    kept = [
        replace(clip, tokens=compressor.compress(_autograd_ready(clip.tokens.to(language.device))).kept)
        for clip in example.clips
    ]
    prompt = language.prompt(example.question, kept)
    answer = language.tokenizer.encode(example.answer, add_special_tokens=False, split_special_tokens=True)
    target = [*answer, language.ids.im_end]
    sequence = prompt.followed_by(target)
    positions = sequence.positions[:, None, :].to(language.device)  # (3, 1, L)
    hidden = language.model.hidden_states(language.embed(sequence), positions)  # (1, L, D)
    predicting = hidden[0, len(prompt) - 1 : -1]  # the state before each target token
    logits = language.model.lm_head(predicting).float()
    return F.cross_entropy(logits, torch.tensor(target, device=logits.device))


def train_selector(
    language: LanguageHalf,
    selector: VisionGuidedAudioSelector,
    examples: Sequence[TrainingExample],
    config: TrainingConfig,
    on_step: Callable[[StepReport], None] | None = None,
) -> list[StepReport]:
    """AdamW on the selector with a cosine schedule; the language model is frozen (not updated)."""
    if not examples:
        raise InvalidConfig("no training examples")
    language.model.requires_grad_(False)
    selector.train()
    optimizer = torch.optim.AdamW(selector.parameters(), lr=config.learning_rate)
    steps = config.epochs * math.ceil(len(examples) / config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    reports = []
    for step, batch in enumerate(_batches(len(examples), config), start=1):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for index in batch:
            loss = answer_loss(language, selector, config.ratios, examples[index], config.novelty) / len(batch)
            loss.backward()
            total += loss.detach().item()
        learning_rate = schedule.get_last_lr()[0]
        optimizer.step()
        schedule.step()
        report = StepReport(step, steps, total, learning_rate)
        reports.append(report)
        if on_step is not None:
            on_step(report)
    selector.eval()
    return reports


def save_selector(selector: VisionGuidedAudioSelector, path: Path) -> None:
    """Selector weights as safetensors under the published key names, loadable with `load_selector`."""
    state = {SELECTOR_PREFIX + key: value.detach().cpu().contiguous() for key, value in selector.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", "hidden_size": str(selector.hidden_size)})


def _autograd_ready(tokens: ClipTokens) -> ClipTokens:
    """Encoder outputs are inference-mode tensors, which autograd may not save for backward; copies may be."""
    if not tokens.audio.embeddings.is_inference():
        return tokens
    return replace(
        tokens,
        video=replace(tokens.video, embeddings=tokens.video.embeddings.clone()),
        audio=replace(tokens.audio, embeddings=tokens.audio.embeddings.clone()),
    )


def _batches(count: int, config: TrainingConfig) -> Iterator[list[int]]:
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        order = torch.randperm(count, generator=generator).tolist()
        for start in range(0, count, config.batch_size):
            yield order[start : start + config.batch_size]
