"""What the store is told: its namespace, encoding and default retention, and each camera's own settings.

Torch-free, so the settings object (and the CLI) can build these without loading the model stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import InvalidRecord
from pipeline.identifiers import check_camera_id
from pipeline.store.connection import RetryPolicy
from pipeline.store.tier_config import TierConfig

Encoding = Literal["float16", "int8"]
ENCODINGS = ("float16", "int8")


@dataclass(frozen=True)
class RetentionPolicy:
    """How much of a camera's past the store keeps; None means no limit on that axis.

    Age is how long ago a clip was stored, by the server's clock: footage times never evict anything (a file
    uploaded with a wrong clock cannot erase a camera's history, and old footage uploaded today is kept
    for max_age from today). Bytes are the stored payload bytes, evicted oldest footage first; the newest
    clip is never evicted for size.
    """

    max_age: timedelta | None = timedelta(hours=24)
    max_bytes: int | None = 1 << 30

    def __post_init__(self) -> None:
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise InvalidRecord(f"retention max_age must be positive, got {self.max_age}")
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise InvalidRecord(f"retention max_bytes must be positive, got {self.max_bytes}")

    def to_json(self) -> dict:
        return {
            "max_age_s": None if self.max_age is None else self.max_age.total_seconds(),
            "max_bytes": self.max_bytes,
        }

    @classmethod
    def from_json(cls, data: dict) -> RetentionPolicy:
        age = data.get("max_age_s")
        return cls(None if age is None else timedelta(seconds=age), data.get("max_bytes"))


@dataclass(frozen=True)
class CameraSettings:
    """Per-camera settings the store keeps: the camera's timezone and its retention (None = store default)."""

    camera_id: str
    timezone: str = "UTC"
    retention: RetentionPolicy | None = None

    def __post_init__(self) -> None:
        check_camera_id(self.camera_id)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRecord(f"unknown timezone {self.timezone!r}; use an IANA name like 'Europe/Berlin'") from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class StoreConfig:
    namespace: str = "omnisift"
    encoding: Encoding = "float16"  # how new records store embeddings; reads handle both
    retention: RetentionPolicy = RetentionPolicy()  # for cameras without their own
    max_clip_seconds: float = 120.0  # longer clips are refused; bounds the look-back of range queries
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tiers: TierConfig | None = None  # cold tier, hot-tier size, thinning (None: every token stays in Redis)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise InvalidRecord(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if not self.namespace or any(c in self.namespace for c in "{}: "):
            raise InvalidRecord(f"namespace {self.namespace!r} must be non-empty without '{{', '}}', ':' or spaces")
