"""QueryPlanner: which stored clips a question's prompt gets, within a token budget.

Order of choice: (1) the clip(s) containing the asked instant, always; (2) clips with events, strongest
first; (3) the rest for coverage, each time the clip farthest from everything already chosen on its
camera (range edges count as chosen), so a quiet stretch is still seen. A clip costs its kept tokens
plus the text header the answerer puts before it, counted as an upper bound (`header_bound`) so a plan never
exceeds the budget. Clips thinned down to their scores have no tokens to send: the timeline summarises them.
The plan lists clips in time order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from pipeline.activity import ActivityConfig, clip_event_score, clip_has_event
from pipeline.errors import BudgetTooSmall
from pipeline.query.timeparse import TimeRange
from pipeline.query.wording import clip_header
from pipeline.records import ClipMeta, to_ms
from pipeline.store.tier_state import has_tokens

# Per clip besides its header text: "\n" after the header, <|vision_bos|><|audio_bos|>, <|audio_eos|><|vision_eos|>,
# "\n" after the clip (omnisift_core/backbone/prompt.py).
CLIP_FRAMING_TOKENS = 6
UTC = ZoneInfo("UTC")


def header_bound(meta: ClipMeta, tz: ZoneInfo) -> int:
    """Tokens a clip's header and framing take at most: Qwen's tokenizer (and the tiny one) is byte-level BPE,
    so a text never takes more tokens than its UTF-8 bytes."""
    return len(clip_header(meta, tz).encode()) + CLIP_FRAMING_TOKENS


Reason = Literal["instant", "event", "coverage"]


class ClipIndex(Protocol):
    """What the planner reads: clip metadata by camera and time (AnchorStore.clips)."""

    def clips(self, camera_id: str, start: datetime | None = None, end: datetime | None = None) -> list[ClipMeta]: ...


@dataclass(frozen=True)
class PlannerConfig:
    token_budget: int = 8192  # media + header tokens the prompt may spend on clips
    header_tokens: int | None = None  # per clip; None: header_bound, from the header's own text
    activity: ActivityConfig = field(default_factory=ActivityConfig)


@dataclass(frozen=True)
class PlannedClip:
    meta: ClipMeta
    tokens: int  # kept video + kept audio + header
    reason: Reason
    event_score: float


@dataclass(frozen=True)
class QueryPlan:
    time_range: TimeRange
    cameras: tuple[str, ...]
    clips: tuple[PlannedClip, ...]  # in time order
    candidates: int  # clips stored in the range
    token_budget: int

    @property
    def tokens(self) -> int:
        """Tokens the prompt will spend on the chosen clips (kept tokens + headers)."""
        return sum(c.tokens for c in self.clips)

    @property
    def full_tokens(self) -> int:
        """What the same clips would cost uncompressed."""
        return sum(c.meta.source_tokens + c.tokens - c.meta.kept_tokens for c in self.clips)

    @property
    def clip_ids(self) -> list[str]:
        return [c.meta.clip_id for c in self.clips]


class QueryPlanner:
    def __init__(self, index: ClipIndex, config: PlannerConfig | None = None):
        self.index = index
        self.config = config or PlannerConfig()

    def plan(self, time_range: TimeRange, cameras: Sequence[str]) -> QueryPlan:
        """Clips of `cameras` overlapping the range, chosen within the budget."""
        candidates = [m for camera in cameras for m in self.index.clips(camera, time_range.start, time_range.end)]
        return self.choose(time_range, candidates, cameras)

    def clip_tokens(self, meta: ClipMeta, timezones: Mapping[str, ZoneInfo] | None = None) -> int:
        header = self.config.header_tokens
        if header is None:
            header = header_bound(meta, (timezones or {}).get(meta.camera_id, UTC))
        return meta.kept_tokens + header

    def choose(
        self,
        time_range: TimeRange,
        candidates: Sequence[ClipMeta],
        cameras: Sequence[str] = (),
        timezones: Mapping[str, ZoneInfo] | None = None,
    ) -> QueryPlan:
        """The selection itself, on metadata alone; `timezones` are those the headers will be written in."""
        budget, activity = self.config.token_budget, self.config.activity
        in_range = len(candidates)
        candidates = sorted((m for m in candidates if has_tokens(m)), key=lambda m: (m.start_ms, m.camera_id))
        costs = [self.clip_tokens(m, timezones) for m in candidates]
        scores = [clip_event_score(m, activity) for m in candidates]
        chosen: dict[int, Reason] = {}
        spent = 0

        if time_range.instant is not None:
            must = [i for i, m in enumerate(candidates) if m.contains(time_range.instant)]
            cost = sum(costs[i] for i in must)
            if cost > budget:
                raise BudgetTooSmall(
                    f"the clip(s) containing {time_range.instant.isoformat()} need {cost} tokens but the token "
                    f"budget is {budget}; raise the planner token_budget to at least {cost}"
                )
            chosen.update({i: "instant" for i in must})
            spent += cost

        active = [i for i, m in enumerate(candidates) if i not in chosen and clip_has_event(m, activity)]
        for i in sorted(active, key=lambda i: (-scores[i], i)):
            if spent + costs[i] <= budget:
                chosen[i] = "event"
                spent += costs[i]

        spent = self._cover(time_range, candidates, costs, chosen, spent)
        clips = tuple(PlannedClip(candidates[i], costs[i], reason, scores[i]) for i, reason in sorted(chosen.items()))
        return QueryPlan(
            time_range=time_range,
            cameras=tuple(cameras) or tuple(sorted({m.camera_id for m in candidates})),
            clips=clips,
            candidates=in_range,
            token_budget=budget,
        )

    def _cover(
        self,
        time_range: TimeRange,
        candidates: Sequence[ClipMeta],
        clip_costs: Sequence[int],
        chosen: dict[int, Reason],
        spent: int,
    ):
        """Greedy farthest-point fill: each pick is the affordable clip farthest (in time) from the chosen
        clips of its camera and from the range edges."""
        if not candidates:
            return spent
        centers = np.array([(m.start_ms + m.end_ms) / 2 for m in candidates], dtype=np.float64)
        costs = np.array(clip_costs)
        cameras = np.array([m.camera_id for m in candidates])
        lo, hi = to_ms(time_range.start), to_ms(time_range.end)
        distance = np.minimum(np.abs(centers - lo), np.abs(hi - centers))  # (n,) to the nearest chosen thing
        for i in chosen:
            same = cameras == cameras[i]
            distance[same] = np.minimum(distance[same], np.abs(centers[same] - centers[i]))
        open_ = np.ones(len(candidates), dtype=bool)
        open_[list(chosen)] = False
        while True:
            open_ &= costs <= self.config.token_budget - spent
            if not open_.any():
                return spent
            pick = int(np.flatnonzero(open_)[np.argmax(distance[open_])])  # ties: the earliest
            chosen[pick] = "coverage"
            spent += int(costs[pick])
            open_[pick] = False
            same = cameras == cameras[pick]
            distance[same] = np.minimum(distance[same], np.abs(centers[same] - centers[pick]))
