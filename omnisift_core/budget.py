"""Removal ratios and the token counts they imply, shared by OmniSIFT and every baseline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from omnisift_core.errors import InvalidConfig


@dataclass(frozen=True)
class RemovalRatios:
    """Shares of tokens removed: rho_v of video, rho_a of audio, each in [0, 1)."""

    video: float
    audio: float

    def __post_init__(self) -> None:
        for name, value in (("video", self.video), ("audio", self.audio)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value < 1.0):
                raise InvalidConfig(f"{name} removal ratio must be in [0, 1), got {value!r}")

    @classmethod
    def from_preset(cls, name: str) -> RemovalRatios:
        try:
            return PRESETS[name]
        except KeyError:
            raise InvalidConfig(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


# The paper's operating points, named by the share of all tokens kept.
PRESETS: dict[str, RemovalRatios] = {
    "100%": RemovalRatios(video=0.0, audio=0.0),
    "35%": RemovalRatios(video=0.67, audio=0.4),
    "25%": RemovalRatios(video=0.77, audio=0.5),
}


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
