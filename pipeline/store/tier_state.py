"""Where a clip's tokens are and how far it was thinned, read from its metadata alone (torch-free: the planner and
the gateway read it without the codec). See docs/architecture.md, "Tiered storage"."""

from __future__ import annotations

from pipeline.records import ClipMeta
from pipeline.store.cold_tier import Location

WHOLE, FEWER, NONE = 0, 1, 2  # thinning levels: every kept token, a share of them, only metadata and scores


def tier_of(meta: ClipMeta) -> dict:
    """{"at": location json or None, "thinned": level}; a clip never moved nor thinned is hot and whole."""
    return {"at": None, "thinned": WHOLE, **meta.extra.get("tier", {})}


def cold_location(meta: ClipMeta) -> Location | None:
    at = tier_of(meta)["at"]
    return None if at is None else Location.from_json(at)


def is_cold(meta: ClipMeta) -> bool:
    return tier_of(meta)["at"] is not None


def thinned_level(meta: ClipMeta) -> int:
    return int(tier_of(meta)["thinned"])


def has_tokens(meta: ClipMeta) -> bool:
    return thinned_level(meta) < NONE and meta.kept_tokens > 0
