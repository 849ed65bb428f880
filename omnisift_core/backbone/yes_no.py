"""The probability that the language model answers "yes" to a question over clips' kept tokens, from one
prefill: the standing questions of alerts (docs/architecture.md, "Alerts").

The question goes through the same prompt as any answer (kept tokens at their original positions, headers
with the clips' times); the next token's distribution is read over the answer's first token, "Yes"/"yes"
against "No"/"no", so the result is P(yes | yes or no), in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from omnisift_core.backbone.language import LanguageHalf
from omnisift_core.backbone.prompt import ClipContext

INSTRUCTION = " Answer yes or no."


def first_token_ids(language: LanguageHalf, words: Sequence[str]) -> list[int]:
    """The distinct first token ids of `words` (e.g. "Yes", "yes") under the model's tokenizer."""
    ids = [language.tokenizer.encode(word, add_special_tokens=False)[0] for word in words]
    return sorted(set(ids))


@torch.inference_mode()
def yes_probability(language: LanguageHalf, question: str, clips: Sequence[ClipContext]) -> float:
    state = language.prefill(language.prompt(question.strip() + INSTRUCTION, clips))
    log_probs = state.logits.float().log_softmax(-1).flatten()  # (1, vocab) -> (vocab,)
    yes = torch.logsumexp(log_probs[first_token_ids(language, ("Yes", "yes"))], 0)
    no = torch.logsumexp(log_probs[first_token_ids(language, ("No", "no"))], 0)
    return float(torch.sigmoid(yes - no))  # = P(yes) / (P(yes) + P(no))
