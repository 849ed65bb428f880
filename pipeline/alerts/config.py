"""How firings are delivered: attempts, jittered backoff, timeouts, allowed schemes (torch-free, built from the
settings; docs/architecture.md, "Alerts")."""

from __future__ import annotations

import random
from dataclasses import dataclass

SCHEMES = ("https", "http")


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff between attempts: the n-th retry waits between half and all of
    min(max_s, base_s * 2**(n-1)), so replicas retrying together spread out."""

    base_s: float = 1.0
    max_s: float = 300.0

    def delay_s(self, attempts: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.max_s, self.base_s * 2 ** max(0, attempts - 1))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class DeliveryConfig:
    max_attempts: int = 10  # a rule's webhook may set its own
    backoff: Backoff = Backoff()
    timeout_s: float = 10.0
    schemes: tuple[str, ...] = SCHEMES
    parallel: int = 8  # outboxes (receivers) served at once

    @property
    def lock_s(self) -> float:
        return 3 * self.timeout_s + 5  # one attempt fits well inside the outbox lock
