"""The token counts removal ratios imply, and top-k helpers, shared by OmniSIFT and every baseline."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def kept_count(n: int, ratio: float) -> int:
    """Tokens kept out of n at removal ratio `ratio`: n - int(n * ratio), as in the paper."""
    return n - int(n * ratio)


def top_k_sorted(scores: Tensor, k: int) -> Tensor:
    """Indices of the k highest scores along the last dim, ties to the lower index, in ascending order."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.sort(order, dim=-1).values


def evenly_spaced(n: int, k: int) -> Tensor:
    """k indices spread uniformly over range(n), centred in their strides."""
    return ((torch.arange(k, dtype=torch.float64) + 0.5) * n / max(k, 1)).long().clamp(max=max(n - 1, 0))


def keep_per_group(groups: Tensor, ratio: float, choose: Callable[[Tensor, int], Tensor]) -> Tensor:
    """Ascending indices keeping kept_count(n_g, ratio) tokens of every group id in `groups`.

    choose(members, k) returns the k positions (into `members`) to keep.
    """
    keeps = []
    for group in torch.unique(groups).tolist():
        members = (groups == group).nonzero().flatten()
        keeps.append(members[choose(members, kept_count(len(members), ratio))])
    return torch.sort(torch.cat(keeps)).values if keeps else torch.zeros(0, dtype=torch.long, device=groups.device)
