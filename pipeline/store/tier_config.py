"""What the tiered store is told: where the cold tier lives, how much Redis may hold, and the thinning budget.

Torch-free, like the rest of the store's configuration (docs/architecture.md, "Tiered storage").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.activity import ActivityConfig
from pipeline.errors import InvalidRecord


@dataclass(frozen=True)
class ThinningPolicy:
    """Per camera, the token bytes (hot and cold) its clips may hold before older ones are thinned.

    Thinning goes in stages, each oldest first: quiet clips keep `keep_share` of their tokens, then quiet clips
    keep only their metadata (scores, stills); only then clips with events, the same two steps. Eviction of
    whole clips (retention) comes after all of that."""

    budget_bytes: int
    keep_share: float = 0.25

    def __post_init__(self) -> None:
        if self.budget_bytes <= 0:
            raise InvalidRecord(f"thinning budget_bytes must be positive, got {self.budget_bytes}")
        if not 0.0 < self.keep_share < 1.0:
            raise InvalidRecord(f"thinning keep_share must be in (0, 1), got {self.keep_share}")


@dataclass(frozen=True)
class TierConfig:
    """`cold_dir` holds per-camera segment files; `hot_bytes` bounds what the namespace's clips hold in Redis
    (metadata, indexes and the tokens still hot), shared equally by the cameras; None keeps every token hot."""

    cold_dir: Path
    hot_bytes: int | None = None
    thinning: ThinningPolicy | None = None
    segment_bytes: int = 64 << 20  # a segment file takes appends until it reaches this size
    index_overhead_bytes: int = 1024  # Redis bytes per clip besides its fields (measured about 900: key, hash, indexes)
    activity: ActivityConfig = field(default_factory=ActivityConfig)  # what keeps a clip's tokens longer

    def __post_init__(self) -> None:
        if self.hot_bytes is not None and self.hot_bytes <= 0:
            raise InvalidRecord(f"hot_bytes must be positive, got {self.hot_bytes}")
        if self.segment_bytes <= 0:
            raise InvalidRecord(f"segment_bytes must be positive, got {self.segment_bytes}")
