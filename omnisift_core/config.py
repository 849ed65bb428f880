"""The method's settings as plain frozen dataclasses, torch-free so configuration loads without torch.

RemovalRatios and PRESETS are the paper's operating points; FrameLimits bound a frame's pixels; ChangeTest
says when a chunk changed: its `active_share` is shared by the event timeline and the query planner, its
`change_threshold` (on embeddings) by the novelty budget (docs/architecture.md, "Activity"); NoveltyBudget
makes the video budget follow it;
MonitoringBudget spends the clip's tokens on what changed and what sounded (docs/architecture.md,
"The monitoring profile").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from omnisift_core.errors import InvalidConfig

MERGED_PATCH_PIXELS = 28  # one merged vision token covers 28 x 28 pixels (14-px patches, 2 x 2 merge)


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


@dataclass(frozen=True)
class FrameLimits:
    """Pixel bounds a frame is resized into. The paper caps a frame at 320 * 28 * 28 pixels."""

    min_pixels: int = 128 * MERGED_PATCH_PIXELS**2  # Qwen2.5-Omni processor default
    max_pixels: int = 320 * MERGED_PATCH_PIXELS**2

    def __post_init__(self) -> None:
        if not MERGED_PATCH_PIXELS**2 <= self.min_pixels <= self.max_pixels:
            raise InvalidConfig(
                f"need {MERGED_PATCH_PIXELS**2} <= min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}"
            )


@dataclass(frozen=True)
class ChangeTest:
    """When a 2-second chunk counts as changed: at least `active_share` of its video cells changed by more
    than `change_threshold` (1 - cos against the same cell one frame earlier)."""

    change_threshold: float = 0.1
    active_share: float = 0.02

    def __post_init__(self) -> None:
        if not (0.0 < self.change_threshold <= 2.0 and 0.0 < self.active_share <= 1.0):
            raise InvalidConfig(
                f"need 0 < change_threshold <= 2 and 0 < active_share <= 1, got {self.change_threshold}, "
                f"{self.active_share}"
            )


@dataclass(frozen=True)
class NoveltyBudget:
    """Video tokens follow novelty: a still chunk's frames keep `still_keep` of the fixed per-frame count
    (at least one token); the clip's first frame and changed chunks keep all of it. Opt-in: the paper's
    fixed ratios are the default."""

    change: ChangeTest = field(default_factory=ChangeTest)
    still_keep: float = 0.1

    @property
    def fingerprint(self) -> str:
        c = self.change
        return f"novelty(c={c.change_threshold:g},a={c.active_share:g},k={self.still_keep:g})"


@dataclass(frozen=True)
class MonitoringBudget:
    """Change-first video and salience-first audio inside the preset's token total per clip.

    A frame keeps its changed cells (up to the preset's per-frame count), else `still_keep` of that count;
    audio tokens whose sound salience reaches `salient_sound` are kept whatever the visual anchors say, paid
    from the clip's audio count plus what the video left unspent; every chunk keeps `quiet_audio_keep` of
    its audio count by VGAS's ranking. Opt-in (the "monitoring" profile): the paper's fixed ratios are the
    default.
    """

    still_keep: float = 0.05
    quiet_audio_keep: float = 0.05
    salient_sound: float = 0.2

    def __post_init__(self) -> None:
        for name in ("still_keep", "quiet_audio_keep", "salient_sound"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 < value <= 1.0):
                raise InvalidConfig(f"{name} must be in (0, 1], got {value!r}")

    @property
    def fingerprint(self) -> str:
        return f"monitoring(k={self.still_keep:g},q={self.quiet_audio_keep:g},s={self.salient_sound:g})"
