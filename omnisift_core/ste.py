"""Straight-through top-k: the forward pass uses the hard keep mask, the backward pass the scores."""

from __future__ import annotations

import torch
from torch import Tensor


def straight_through_mask(scores: Tensor, keep: Tensor) -> Tensor:
    """(N,) scores and the kept indices -> (N,) float32 mask.

    m = hard + (s - s.detach()) in fp32: its value is exactly the 0/1 hard mask, and its gradient is
    the gradient of the scores, so a loss on the kept tokens trains the scorer.
    """
    s = scores.float()
    hard = torch.zeros_like(s).index_fill_(0, keep, 1.0)
    return hard + (s - s.detach())


def gather_kept(tokens: Tensor, mask: Tensor, keep: Tensor) -> Tensor:
    """(N, D) tokens gated by the straight-through mask, then the kept rows: values exactly tokens[keep]."""
    return (tokens.float() * mask[:, None])[keep].to(tokens.dtype)
