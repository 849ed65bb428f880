"""A firing: one time a rule's condition held, with its evidence (clips, footage times, peak scores, the rule's
version) and the state of its webhook delivery (docs/architecture.md, "Alerts")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from pipeline.query.timeparse import iso_utc
from pipeline.records import from_ms

DeliveryState = Literal["none", "pending", "delivered", "dead", "cancelled"]


def firing_id_of(rule_id: str, version: int, camera_id: str, start_ms: int) -> str:
    """The same event of the same rule version always gets the same id: re-evaluating a clip (after a crash,
    a re-ingest) cannot fire twice, and receivers deduplicate by it (the Idempotency-Key header)."""
    return hashlib.sha256(f"{rule_id}|{version}|{camera_id}|{start_ms}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Delivery:
    state: DeliveryState = "none"  # none: the rule has no webhook
    attempts: int = 0
    next_attempt_ms: int = 0  # server clock; 0: at once
    last_error: str | None = None
    delivered_ms: int | None = None


@dataclass(frozen=True)
class Firing:
    firing_id: str
    rule_id: str
    rule_version: int
    rule_name: str
    severity: str
    camera_id: str
    condition: str  # the condition's kind
    start_ms: int  # footage time the condition started to hold (may lie in an earlier clip)
    end_ms: int  # footage time it held until, within the clip that fired
    reached_ms: int  # footage time it had held for the rule's min_duration_s
    clip_ids: tuple[str, ...]
    scores: dict[str, float]  # peaks over the firing's chunks: activity, audio_salience, speech, or probability
    created_ms: int = 0  # server clock
    delivery: Delivery = field(default_factory=Delivery)

    def with_delivery(self, **changes) -> Firing:
        return replace(self, delivery=replace(self.delivery, **changes))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["clip_ids"] = list(self.clip_ids)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: str | bytes) -> Firing:
        data = json.loads(raw)
        return cls(**{**data, "clip_ids": tuple(data["clip_ids"]), "delivery": Delivery(**data["delivery"])})

    def public(self) -> dict:
        """The firing as receivers and the API see it: times as ISO 8601 UTC."""
        data = self.to_dict()
        for name in ("start", "end", "reached", "created"):
            data[name] = _iso(data.pop(f"{name}_ms"))
        delivery = data["delivery"]
        next_attempt = delivery.pop("next_attempt_ms")
        delivery["next_attempt"] = _iso(next_attempt) if delivery["state"] == "pending" else None
        delivered = delivery.pop("delivered_ms")
        delivery["delivered"] = None if delivered is None else _iso(delivered)
        return data


def _iso(ms: int) -> str:
    return iso_utc(from_ms(ms))
